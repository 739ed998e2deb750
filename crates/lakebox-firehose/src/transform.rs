//! Data transformation with Lambda: the records of a buffer, after de-aggregation and
//! decompression, go to the processor's function in invocations of at most its
//! `BufferSizeInMBs`, in Firehose's event shape (`invocationId`, `deliveryStreamArn`, `region`,
//! `records[]` with `recordId`, `approximateArrivalTimestamp` and base64 `data`). The function
//! answers each record by id: `Ok` with its new `data` (and `metadata.partitionKeys` for
//! `partitionKeyFromLambda`), `Dropped`, or `ProcessingFailed`. An invocation that fails, or
//! answers what Firehose cannot use, is retried `NumberOfRetries` times; then its records go to
//! the `processing-failed` error prefix with Firehose's error code.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lakebox_service::links::FunctionInvoker;
use serde_json::{Value, json};

use crate::process::{self, Failed, Incoming, LambdaProcessor, Outgoing, Processing};

/// The key a `partitionKeyFromLambda:<name>` expression reads (kept apart from jq's keys).
pub fn lambda_key(name: &str) -> String {
    format!("lambda\0{name}")
}

/// The delivery stream whose records a function transforms, as its event names it.
pub struct Caller<'a> {
    pub stream_arn: &'a str,
    pub region: &'a str,
    /// The Kinesis stream it reads, when it has one (`sourceKinesisStreamArn`).
    pub source_arn: Option<&'a str>,
}

/// Runs the whole processing chain on a buffer: the processors before Lambda, the function,
/// then those after it.
pub async fn process_all(
    p: &Processing,
    functions: Option<&Arc<dyn FunctionInvoker>>,
    caller: &Caller<'_>,
    raw: Vec<Incoming>,
) -> (Vec<Outgoing>, Vec<Failed>) {
    // jq evaluates recursively: the processors run on a thread with a big stack.
    let Some(lp) = &p.lambda else {
        return lakebox_core::stack::on_big_stack(|| process::apply(p, raw));
    };
    let (prepared, mut failed) = process::prepare(p, raw);
    let (transformed, more) = transform(functions, lp, caller, prepared).await;
    failed.extend(more);
    let (ok, more) = lakebox_core::stack::on_big_stack(|| process::finish(p, transformed));
    failed.extend(more);
    (ok, failed)
}

type Keyed = (Vec<u8>, i64, BTreeMap<String, String>);

/// The processor's buffers: invocations of at most its buffer size, each holding records that
/// arrived within its buffer interval of the first (at least one record each).
fn chunks(lp: &LambdaProcessor, records: Vec<Incoming>) -> Vec<Vec<Incoming>> {
    let mut chunk: Vec<Incoming> = Vec::new();
    let mut size = 0usize;
    let mut chunks = Vec::new();
    for r in records {
        let full = size + r.data.len() > lp.buffer_bytes;
        let late = chunk
            .first()
            .is_some_and(|first| r.arrival_millis - first.arrival_millis >= lp.buffer_interval_millis);
        if !chunk.is_empty() && (full || late) {
            chunks.push(std::mem::take(&mut chunk));
            size = 0;
        }
        size += r.data.len();
        chunk.push(r);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

async fn transform(
    functions: Option<&Arc<dyn FunctionInvoker>>,
    lp: &LambdaProcessor,
    caller: &Caller<'_>,
    records: Vec<Incoming>,
) -> (Vec<Keyed>, Vec<Failed>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for chunk in chunks(lp, records) {
        let (o, f) = invoke_chunk(functions, lp, caller, chunk).await;
        ok.extend(o);
        failed.extend(f);
    }
    (ok, failed)
}

/// Why an invocation's answer cannot be used: Firehose's error code and message.
type Refusal = (&'static str, String);

async fn invoke_chunk(
    functions: Option<&Arc<dyn FunctionInvoker>>,
    lp: &LambdaProcessor,
    caller: &Caller<'_>,
    chunk: Vec<Incoming>,
) -> (Vec<Keyed>, Vec<Failed>) {
    let ids: Vec<String> = (0..chunk.len())
        .map(|i| format!("{}{i:08}", uuid::Uuid::new_v4().simple()))
        .collect();
    let mut attempts = 0u32;
    let refusal: Refusal = loop {
        attempts += 1;
        let mut event = json!({
            "invocationId": uuid::Uuid::new_v4().to_string(),
            "deliveryStreamArn": caller.stream_arn,
            "region": caller.region,
            "records": chunk.iter().zip(&ids).map(|(r, id)| record_event(r, id)).collect::<Vec<_>>(),
        });
        if let Some(source) = caller.source_arn {
            event["sourceKinesisStreamArn"] = json!(source);
        }
        let answer = match functions {
            None => Err((
                "Lambda.ResourceNotFound",
                "Lakebox's Lambda is not running.".to_owned(),
            )),
            Some(f) => match f.invoke(&lp.arn, event.to_string().into_bytes()).await {
                Err(e) if e.code == "TooManyRequestsException" => {
                    Err(("Lambda.InvokeLimitExceeded", e.message))
                }
                Err(e) if e.status == 404 => Err(("Lambda.ResourceNotFound", e.message)),
                Err(e) => Err(("Lambda.ServiceException", e.message)),
                Ok(r) if r.function_error.is_some() => Err((
                    "Lambda.FunctionError",
                    format!(
                        "The Lambda function was successfully invoked but it returned an error result. {}",
                        String::from_utf8_lossy(&r.payload)
                    ),
                )),
                Ok(r) => read_answer(&r.payload, &ids),
            },
        };
        match answer {
            Ok(results) => return apply_results(lp, chunk, &ids, results, attempts),
            Err(refusal) if attempts > lp.retries => break refusal,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempts.min(20) as u64)).await;
            }
        }
    };
    let failed = chunk
        .into_iter()
        .map(|r| Failed {
            data: r.data,
            arrival_millis: r.arrival_millis,
            code: refusal.0.into(),
            message: refusal.1.clone(),
            lambda: Some((lp.arn.clone(), attempts)),
        })
        .collect();
    (Vec::new(), failed)
}

/// A record as the function's event has it (with `kinesisRecordMetadata` when it came from a
/// Kinesis stream).
fn record_event(r: &Incoming, id: &str) -> Value {
    let mut event = json!({
        "recordId": id,
        "approximateArrivalTimestamp": r.arrival_millis,
        "data": B64.encode(&r.data),
    });
    if let Some(o) = &r.origin {
        event["kinesisRecordMetadata"] = json!({
            "shardId": o.shard_id,
            "partitionKey": o.partition_key,
            "approximateArrivalTimestamp": r.arrival_millis,
            "sequenceNumber": o.sequence_number,
            "subsequenceNumber": o.subsequence_number,
        });
    }
    event
}

/// One record's answer.
struct Answer {
    result: String,
    data: Option<Vec<u8>>,
    keys: BTreeMap<String, String>,
}

/// Reads the function's answer, every record id once.
fn read_answer(payload: &[u8], ids: &[String]) -> Result<HashMap<String, Answer>, Refusal> {
    let bad = |why: &str| {
        (
            "Lambda.JsonProcessingException",
            format!("The response from the Lambda function was not what Firehose expects: {why}"),
        )
    };
    let doc: Value = serde_json::from_slice(payload).map_err(|e| bad(&e.to_string()))?;
    let records = doc
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("it has no records array"))?;
    let mut out = HashMap::new();
    for r in records {
        let id = r
            .get("recordId")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a record has no recordId"))?;
        let result = r
            .get("result")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a record has no result"))?;
        if !matches!(result, "Ok" | "Dropped" | "ProcessingFailed") {
            return Err(bad(&format!(
                "result {result} is not Ok, Dropped or ProcessingFailed"
            )));
        }
        let data = match r.get("data").and_then(Value::as_str) {
            Some(d) => Some(B64.decode(d).map_err(|_| bad("a record's data is not base64"))?),
            None => None,
        };
        if result == "Ok" && data.is_none() {
            return Err(bad("a record with result Ok has no data"));
        }
        let keys = r
            .pointer("/metadata/partitionKeys")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        let text = match v {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            Value::Bool(b) => b.to_string(),
                            _ => return None,
                        };
                        Some((lambda_key(k), text))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let answer = Answer {
            result: result.to_owned(),
            data,
            keys,
        };
        if out.insert(id.to_owned(), answer).is_some() {
            return Err((
                "Lambda.DuplicatedRecordId",
                "One or more records were returned with the same record ID. Ensure that the Lambda function returns unique record IDs for each record.".into(),
            ));
        }
    }
    if ids.iter().any(|id| !out.contains_key(id)) || out.len() != ids.len() {
        return Err((
            "Lambda.MissingRecordId",
            "One or more record Ids were not returned. Ensure that the Lambda function returns all received record Ids.".into(),
        ));
    }
    Ok(out)
}

fn apply_results(
    lp: &LambdaProcessor,
    chunk: Vec<Incoming>,
    ids: &[String],
    mut results: HashMap<String, Answer>,
    attempts: u32,
) -> (Vec<Keyed>, Vec<Failed>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (r, id) in chunk.into_iter().zip(ids) {
        let Some(a) = results.remove(id) else { continue };
        match a.result.as_str() {
            "Ok" => ok.push((a.data.unwrap_or_default(), r.arrival_millis, a.keys)),
            "Dropped" => {}
            _ => failed.push(Failed {
                data: r.data,
                arrival_millis: r.arrival_millis,
                code: "Lambda.ProcessingFailedStatus".into(),
                message: "ProcessingFailed status set for record".into(),
                lambda: Some((lp.arn.clone(), attempts)),
            }),
        }
    }
    (ok, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_record_id() {
        let ids = vec!["a".to_owned(), "b".to_owned()];
        let ok = json!({"records": [
            {"recordId": "b", "result": "Dropped"},
            {"recordId": "a", "result": "Ok", "data": B64.encode(b"new"), "metadata": {"partitionKeys": {"day": "mon", "n": 3}}},
        ]});
        let got = read_answer(ok.to_string().as_bytes(), &ids).unwrap();
        assert_eq!(got["a"].data.as_deref(), Some(&b"new"[..]));
        assert_eq!(got["a"].keys[&lambda_key("n")], "3");
        let missing = json!({"records": [{"recordId": "a", "result": "Ok", "data": ""}]});
        assert_eq!(
            read_answer(missing.to_string().as_bytes(), &ids).err().unwrap().0,
            "Lambda.MissingRecordId"
        );
        let twice = json!({"records": [
            {"recordId": "a", "result": "Dropped"}, {"recordId": "a", "result": "Dropped"}]});
        assert_eq!(
            read_answer(twice.to_string().as_bytes(), &ids).err().unwrap().0,
            "Lambda.DuplicatedRecordId"
        );
        assert_eq!(
            read_answer(b"nope", &ids).err().unwrap().0,
            "Lambda.JsonProcessingException"
        );
    }
}

#[cfg(test)]
mod chunking {
    use super::*;

    fn record(size: usize, arrival_millis: i64) -> Incoming {
        Incoming {
            data: vec![b'x'; size],
            arrival_millis,
            origin: None,
        }
    }

    #[test]
    fn invocations_hold_one_buffer_size_and_one_buffer_interval() {
        let lp = LambdaProcessor {
            arn: "f".into(),
            buffer_bytes: 100,
            buffer_interval_millis: 60_000,
            retries: 0,
        };
        let sizes = |chunks: Vec<Vec<Incoming>>| chunks.iter().map(Vec::len).collect::<Vec<_>>();
        // By size: 60 + 40 fill one; the next starts another.
        let by_size = vec![record(60, 0), record(40, 1), record(1, 2)];
        assert_eq!(sizes(chunks(&lp, by_size)), [2, 1]);
        // By arrival: a record a minute after the chunk's first starts the next one.
        let by_time = vec![
            record(1, 0),
            record(1, 59_999),
            record(1, 60_000),
            record(1, 61_000),
        ];
        assert_eq!(sizes(chunks(&lp, by_time)), [2, 2]);
        // A record bigger than the buffer still goes, alone.
        assert_eq!(sizes(chunks(&lp, vec![record(500, 0), record(1, 0)])), [1, 1]);
    }
}
