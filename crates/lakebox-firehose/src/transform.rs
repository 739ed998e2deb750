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

use crate::process::{self, Failed, LambdaProcessor, Outgoing, Processing};

/// The key a `partitionKeyFromLambda:<name>` expression reads (kept apart from jq's keys).
pub fn lambda_key(name: &str) -> String {
    format!("lambda\0{name}")
}

/// Runs the whole processing chain on a buffer: the processors before Lambda, the function,
/// then those after it.
pub async fn process_all(
    p: &Processing,
    functions: Option<&Arc<dyn FunctionInvoker>>,
    stream_arn: &str,
    region: &str,
    raw: Vec<(Vec<u8>, i64)>,
) -> (Vec<Outgoing>, Vec<Failed>) {
    // jq evaluates recursively: the processors run on a thread with a big stack.
    let Some(lp) = &p.lambda else {
        return lakebox_core::stack::on_big_stack(|| process::apply(p, raw));
    };
    let (prepared, mut failed) = process::prepare(p, raw);
    let (transformed, more) = transform(functions, lp, stream_arn, region, prepared).await;
    failed.extend(more);
    let (ok, more) = lakebox_core::stack::on_big_stack(|| process::finish(p, transformed));
    failed.extend(more);
    (ok, failed)
}

type Keyed = (Vec<u8>, i64, BTreeMap<String, String>);

async fn transform(
    functions: Option<&Arc<dyn FunctionInvoker>>,
    lp: &LambdaProcessor,
    stream_arn: &str,
    region: &str,
    records: Vec<(Vec<u8>, i64)>,
) -> (Vec<Keyed>, Vec<Failed>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    // Invocations of at most the processor's buffer size (at least one record each).
    let mut chunk: Vec<(Vec<u8>, i64)> = Vec::new();
    let mut size = 0usize;
    let mut chunks = Vec::new();
    for r in records {
        if !chunk.is_empty() && size + r.0.len() > lp.buffer_bytes {
            chunks.push(std::mem::take(&mut chunk));
            size = 0;
        }
        size += r.0.len();
        chunk.push(r);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    for chunk in chunks {
        let (o, f) = invoke_chunk(functions, lp, stream_arn, region, chunk).await;
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
    stream_arn: &str,
    region: &str,
    chunk: Vec<(Vec<u8>, i64)>,
) -> (Vec<Keyed>, Vec<Failed>) {
    let ids: Vec<String> = (0..chunk.len())
        .map(|i| format!("{}{i:08}", uuid::Uuid::new_v4().simple()))
        .collect();
    let mut attempts = 0u32;
    let refusal: Refusal = loop {
        attempts += 1;
        let event = json!({
            "invocationId": uuid::Uuid::new_v4().to_string(),
            "deliveryStreamArn": stream_arn,
            "region": region,
            "records": chunk.iter().zip(&ids).map(|((data, arrival), id)| json!({
                "recordId": id,
                "approximateArrivalTimestamp": arrival,
                "data": B64.encode(data),
            })).collect::<Vec<_>>(),
        });
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
        .map(|(data, arrival)| Failed {
            data,
            arrival_millis: arrival,
            code: refusal.0.into(),
            message: refusal.1.clone(),
            lambda: Some((lp.arn.clone(), attempts)),
        })
        .collect();
    (Vec::new(), failed)
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
    chunk: Vec<(Vec<u8>, i64)>,
    ids: &[String],
    mut results: HashMap<String, Answer>,
    attempts: u32,
) -> (Vec<Keyed>, Vec<Failed>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for ((data, arrival), id) in chunk.into_iter().zip(ids) {
        let Some(a) = results.remove(id) else { continue };
        match a.result.as_str() {
            "Ok" => ok.push((a.data.unwrap_or_default(), arrival, a.keys)),
            "Dropped" => {}
            _ => failed.push(Failed {
                data,
                arrival_millis: arrival,
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
