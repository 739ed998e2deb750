//! Record processing before delivery, in Firehose's order: de-aggregation (KPL and JSON),
//! decompression, CloudWatch Logs extraction, metadata extraction with jq for dynamic
//! partitioning, and a delimiter appended to each record. The Lambda processor runs between
//! the first three and the last two (see `transform`).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use lakebox_core::ServiceError;
use lakebox_protocol::protobuf::{Field, Reader};
use md5::{Digest, Md5};
use serde_json::Value;

use crate::errors::invalid_argument;
use crate::source::KinesisOrigin;

/// KPL's aggregated-record magic number.
const KPL_MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// The processors of a ProcessingConfiguration, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Processing {
    /// `KPL` or `JSON` when RecordDeAggregation is on.
    pub deaggregate: Option<String>,
    pub decompress_gzip: bool,
    pub cloudwatch_logs: bool,
    pub metadata_query: Option<String>,
    pub delimiter: Option<Vec<u8>>,
    /// The Lambda processor: the function that transforms records, and how.
    pub lambda: Option<LambdaProcessor>,
}

/// A `Lambda` processor's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaProcessor {
    /// The function (an ARN, possibly qualified).
    pub arn: String,
    /// Most bytes of records per invocation (`BufferSizeInMBs`, 0.2–3, default 1).
    pub buffer_bytes: usize,
    /// Longest span of arrival times in one invocation (`BufferIntervalInSeconds`, 60–900,
    /// default 60): the processor's buffer is handed to the function when this much time has
    /// passed since its first record, as Firehose does.
    pub buffer_interval_millis: i64,
    /// `NumberOfRetries` (0–300, default 3).
    pub retries: u32,
}

fn params(p: &Value) -> BTreeMap<String, String> {
    p.get("Parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|kv| {
            Some((
                kv.get("ParameterName")?.as_str()?.to_owned(),
                kv.get("ParameterValue")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// `\n`, `\t`, `\r` and `\\` as written in a Delimiter parameter.
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push(b'\n'),
                Some('t') => out.push(b'\t'),
                Some('r') => out.push(b'\r'),
                Some('\\') => out.push(b'\\'),
                Some(o) => {
                    out.push(b'\\');
                    out.extend_from_slice(o.to_string().as_bytes());
                }
                None => out.push(b'\\'),
            }
        } else {
            out.extend_from_slice(c.to_string().as_bytes());
        }
    }
    out
}

impl Processing {
    /// Reads a ProcessingConfiguration (absent or disabled: no processing).
    pub fn parse(config: Option<&Value>) -> Result<Processing, ServiceError> {
        let mut out = Processing::default();
        let Some(c) = config else { return Ok(out) };
        if c.get("Enabled").and_then(Value::as_bool) != Some(true) {
            return Ok(out);
        }
        for p in c
            .get("Processors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let kind = p.get("Type").and_then(Value::as_str).unwrap_or_default();
            let ps = params(p);
            match kind {
                "Lambda" => {
                    if out.lambda.is_some() {
                        return Err(invalid_argument("Only one Lambda processor is allowed."));
                    }
                    let arn = ps
                        .get("LambdaArn")
                        .filter(|a| a.starts_with("arn:") && a.contains(":lambda:"))
                        .ok_or_else(|| {
                            invalid_argument(
                                "The Lambda processor needs a LambdaArn parameter: a function ARN.",
                            )
                        })?;
                    let retries = match ps.get("NumberOfRetries") {
                        Some(n) => n.parse::<u32>().ok().filter(|n| *n <= 300).ok_or_else(|| {
                            invalid_argument(format!("NumberOfRetries must be from 0 to 300, not {n}."))
                        })?,
                        None => 3,
                    };
                    let mb = match ps.get("BufferSizeInMBs") {
                        Some(m) => m
                            .parse::<f64>()
                            .ok()
                            .filter(|m| (0.2..=3.0).contains(m))
                            .ok_or_else(|| {
                                invalid_argument(format!("BufferSizeInMBs must be from 0.2 to 3, not {m}."))
                            })?,
                        None => 1.0,
                    };
                    let interval = match ps.get("BufferIntervalInSeconds") {
                        Some(i) => i
                            .parse::<u32>()
                            .ok()
                            .filter(|i| (60..=900).contains(i))
                            .ok_or_else(|| {
                                invalid_argument(format!(
                                    "BufferIntervalInSeconds must be from 60 to 900, not {i}."
                                ))
                            })?,
                        None => 60,
                    };
                    out.lambda = Some(LambdaProcessor {
                        arn: arn.clone(),
                        buffer_bytes: (mb * 1024.0 * 1024.0) as usize,
                        buffer_interval_millis: i64::from(interval) * 1000,
                        retries,
                    });
                }
                "RecordDeAggregation" => {
                    let t = ps.get("SubRecordType").cloned().unwrap_or_else(|| "KPL".into());
                    if t != "KPL" && t != "JSON" {
                        return Err(invalid_argument(format!(
                            "SubRecordType must be JSON or KPL, not {t}."
                        )));
                    }
                    out.deaggregate = Some(t);
                }
                "Decompression" => {
                    let f = ps.get("CompressionFormat").map(String::as_str).unwrap_or("GZIP");
                    if f != "GZIP" {
                        return Err(invalid_argument(format!("Decompression supports GZIP, not {f}.")));
                    }
                    out.decompress_gzip = true;
                }
                "CloudWatchLogProcessing" => {
                    out.cloudwatch_logs = ps.get("DataMessageExtraction").map(String::as_str) == Some("true");
                }
                "MetadataExtraction" => {
                    let q = ps.get("MetadataExtractionQuery").ok_or_else(|| {
                        invalid_argument("MetadataExtraction needs a MetadataExtractionQuery.")
                    })?;
                    if let Some(engine) = ps.get("JsonParsingEngine")
                        && engine != "JQ-1.6"
                    {
                        return Err(invalid_argument(format!(
                            "JsonParsingEngine must be JQ-1.6, not {engine}."
                        )));
                    }
                    Jq::compile(q).map_err(|e| {
                        invalid_argument(format!("Invalid MetadataExtractionQuery '{q}': {e}"))
                    })?;
                    out.metadata_query = Some(q.clone());
                }
                "AppendDelimiterToRecord" => {
                    out.delimiter = Some(
                        ps.get("Delimiter")
                            .map(|d| unescape(d))
                            .unwrap_or_else(|| b"\n".to_vec()),
                    );
                }
                other => return Err(invalid_argument(format!("Unknown processor type {other}."))),
            }
        }
        Ok(out)
    }
}

/// How deeply a jq query, or a JSON record it runs on, may nest brackets. jaq parses and
/// evaluates recursively, so a short hostile query or record (`((((…))))` 10,000 deep) would
/// otherwise overflow the stack and abort the whole server.
pub const MAX_JQ_NESTING: usize = 100;
pub const MAX_RECORD_NESTING: usize = 1000;
/// The longest query: Firehose's ProcessorParameterValue holds at most 5,120 characters.
pub const MAX_JQ_LENGTH: usize = 5120;

/// Refuses text whose `(`, `[` and `{` nest deeper than `max`, without recursing. Brackets
/// inside double-quoted strings (JSON's and jq's, with backslash escapes) do not count.
fn check_nesting(text: &[u8], max: usize, what: &str) -> Result<(), String> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(format!("the {what} nests brackets more than {max} levels deep"));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// A compiled jq program (jaq, jq 1.6's language).
pub struct Jq {
    filter: jaq_core::Filter<jaq_core::data::JustLut<jaq_json::Val>>,
}

impl Jq {
    /// Compiles a query. jaq's parser and compiler recurse on more than brackets (`. | . | …`,
    /// `def f: def f: …`), so compiling runs on a thread with a big stack, and a query is at
    /// most [`MAX_JQ_LENGTH`] bytes (the model's limit for processor parameters).
    pub fn compile(code: &str) -> Result<Jq, String> {
        check_nesting(code.as_bytes(), MAX_JQ_NESTING, "query")?;
        if code.len() > MAX_JQ_LENGTH {
            return Err(format!("the query is longer than {MAX_JQ_LENGTH} bytes"));
        }
        lakebox_core::stack::on_big_stack(|| Jq::compile_here(code))
    }

    fn compile_here(code: &str) -> Result<Jq, String> {
        use jaq_core::load::{Arena, File, Loader};
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
        let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code, path: () })
            .map_err(|e| format!("cannot parse the query: {e:?}"))?;
        let filter = jaq_core::Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|e| format!("cannot compile the query: {e:?}"))?;
        Ok(Jq { filter })
    }

    /// The query's first output for one JSON record.
    pub fn run(&self, input: &[u8]) -> Result<Value, String> {
        use jaq_core::{Ctx, Vars, data::JustLut, unwrap_valr};
        check_nesting(input, MAX_RECORD_NESTING, "record")?;
        let v = jaq_json::read::parse_single(input).map_err(|e| format!("the record is not JSON: {e}"))?;
        let ctx = Ctx::<JustLut<jaq_json::Val>>::new(&self.filter.lut, Vars::new([]));
        let mut out = self.filter.id.run((ctx, v)).map(unwrap_valr);
        match out.next() {
            Some(Ok(v)) => serde_json::from_str(&v.to_string()).map_err(|e| e.to_string()),
            Some(Err(e)) => Err(format!("the query failed: {e}")),
            None => Err("the query produced no output".into()),
        }
    }
}

/// One record on its way to S3.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub data: Vec<u8>,
    pub arrival_millis: i64,
    pub keys: BTreeMap<String, String>,
}

/// A record that could not be processed, with Firehose's error code and message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Failed {
    pub data: Vec<u8>,
    pub arrival_millis: i64,
    pub code: String,
    pub message: String,
    /// For a record the Lambda processor failed: the function, and how often it was tried.
    pub lambda: Option<(String, u32)>,
}

/// Splits a KPL aggregated record into its user records (a plain record passes through).
pub fn deaggregate_kpl(data: &[u8]) -> Vec<Vec<u8>> {
    if data.len() < 4 + 16 || data[..4] != KPL_MAGIC {
        return vec![data.to_vec()];
    }
    let (body, digest) = data[4..].split_at(data.len() - 4 - 16);
    if Md5::digest(body).as_slice() != digest {
        return vec![data.to_vec()];
    }
    let mut out = Vec::new();
    let mut r = Reader::new(body);
    while let Some((no, f)) = r.next_field() {
        if let (3, Field::Bytes(rec)) = (no, f) {
            let mut rr = Reader::new(rec);
            while let Some((n, f)) = rr.next_field() {
                if let (3, Field::Bytes(d)) = (n, f) {
                    out.push(d.to_vec());
                }
            }
        }
    }
    out
}

/// Splits concatenated JSON objects (`{…}{…}` or one per line) into one record each.
pub fn deaggregate_json(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(data).into_iter::<serde::de::IgnoredAny>();
    let mut start = 0;
    while let Some(v) = stream.next() {
        v.map_err(|e| format!("not a sequence of JSON objects: {e}"))?;
        let end = stream.byte_offset();
        // The original bytes of each object, without the whitespace between objects.
        out.push(data[start..end].trim_ascii().to_vec());
        start = end;
    }
    Ok(out)
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .map_err(|e| format!("not gzip data: {e}"))?;
    Ok(out)
}

/// CloudWatch Logs subscription data: DATA_MESSAGE's log events become records;
/// CONTROL_MESSAGE records are dropped.
fn cloudwatch_messages(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let v: Value = serde_json::from_slice(data).map_err(|e| format!("not CloudWatch Logs data: {e}"))?;
    if v.get("messageType").and_then(Value::as_str) == Some("CONTROL_MESSAGE") {
        return Ok(Vec::new());
    }
    Ok(v.get("logEvents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("message").and_then(Value::as_str))
        .map(|m| m.as_bytes().to_vec())
        .collect())
}

/// A partition key's value as text (strings without quotes).
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A record a processor could not handle, as the `processing-failed` prefix keeps it.
fn processing_failed(data: Vec<u8>, arrival_millis: i64, message: String) -> Failed {
    Failed {
        data,
        arrival_millis,
        code: "Processor.ProcessingFailed".into(),
        message,
        lambda: None,
    }
}

/// A record as it reaches the processors: its data, when it arrived, and where in a Kinesis
/// stream it came from when the delivery stream reads one.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub data: Vec<u8>,
    pub arrival_millis: i64,
    pub origin: Option<Arc<KinesisOrigin>>,
}

impl Incoming {
    /// A buffered log entry (a Kinesis-source stream's entries carry their origin).
    pub fn from_log(r: &lakebox_store::LogRecord) -> Incoming {
        let (origin, data) = crate::source::unframe(&r.payload);
        Incoming {
            data: data.to_vec(),
            arrival_millis: r.timestamp_millis,
            origin: origin.map(Arc::new),
        }
    }
}

/// Applies the processors to a batch of records (without the Lambda processor; see
/// `transform` for the whole chain).
pub fn apply(p: &Processing, records: Vec<Incoming>) -> (Vec<Outgoing>, Vec<Failed>) {
    let (prepared, mut failed) = prepare(p, records);
    let (ok, more) = finish(
        p,
        prepared
            .into_iter()
            .map(|r| (r.data, r.arrival_millis, BTreeMap::new()))
            .collect(),
    );
    failed.extend(more);
    (ok, failed)
}

/// The processors that run before the Lambda processor: de-aggregation, decompression,
/// CloudWatch Logs extraction.
pub fn prepare(p: &Processing, records: Vec<Incoming>) -> (Vec<Incoming>, Vec<Failed>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for Incoming {
        data,
        arrival_millis: arrival,
        origin,
    } in records
    {
        let fail = |failed: &mut Vec<Failed>, data: Vec<u8>, msg: String| {
            failed.push(processing_failed(data, arrival, msg))
        };
        let mut parts = match p.deaggregate.as_deref() {
            Some("KPL") => deaggregate_kpl(&data),
            Some(_) => match deaggregate_json(&data) {
                Ok(v) => v,
                Err(e) => {
                    fail(&mut failed, data, e);
                    continue;
                }
            },
            None => vec![data],
        };
        if p.decompress_gzip {
            let mut out = Vec::new();
            for d in parts {
                match gunzip(&d) {
                    Ok(v) => out.push(v),
                    Err(e) => fail(&mut failed, d, e),
                }
            }
            parts = out;
        }
        if p.cloudwatch_logs {
            let mut out = Vec::new();
            for d in parts {
                match cloudwatch_messages(&d) {
                    Ok(v) => out.extend(v),
                    Err(e) => fail(&mut failed, d, e),
                }
            }
            parts = out;
        }
        ok.extend(parts.into_iter().map(|data| Incoming {
            data,
            arrival_millis: arrival,
            origin: origin.clone(),
        }));
    }
    (ok, failed)
}

/// The processors that run after the Lambda processor: metadata extraction (partition keys
/// added to those the function gave) and the delimiter.
pub fn finish(
    p: &Processing,
    records: Vec<(Vec<u8>, i64, BTreeMap<String, String>)>,
) -> (Vec<Outgoing>, Vec<Failed>) {
    let jq = p.metadata_query.as_deref().map(Jq::compile);
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (d, arrival, mut keys) in records {
        let fail = |failed: &mut Vec<Failed>, data: Vec<u8>, msg: String| {
            failed.push(processing_failed(data, arrival, msg))
        };
        if let Some(jq) = &jq {
            let result = match jq {
                Ok(jq) => jq.run(&d),
                Err(e) => Err(e.clone()),
            };
            match result {
                Ok(Value::Object(m)) => {
                    let mut bad = None;
                    for (k, v) in m {
                        match key_text(&v) {
                            Some(t) => {
                                keys.insert(k, t);
                            }
                            None => bad = Some(format!("partition key {k} is {v}, not a string or number")),
                        }
                    }
                    if let Some(msg) = bad {
                        fail(&mut failed, d, msg);
                        continue;
                    }
                }
                Ok(other) => {
                    fail(
                        &mut failed,
                        d,
                        format!("the query must produce an object, it produced {other}"),
                    );
                    continue;
                }
                Err(e) => {
                    fail(&mut failed, d, e);
                    continue;
                }
            }
        }
        let mut data = d;
        if let Some(delim) = &p.delimiter {
            data.extend_from_slice(delim);
        }
        ok.push(Outgoing {
            data,
            arrival_millis: arrival,
            keys,
        });
    }
    (ok, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(processors: Value) -> Processing {
        Processing::parse(Some(
            &serde_json::json!({"Enabled": true, "Processors": processors}),
        ))
        .unwrap()
    }

    #[test]
    fn deep_queries_and_records_are_refused_without_recursing() {
        let deep = format!("{}.a{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(Jq::compile(&deep).err().unwrap().contains("more than 100 levels"));
        let jq = Jq::compile("{k: .a}").unwrap();
        let record = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(
            jq.run(record.as_bytes())
                .unwrap_err()
                .contains("more than 1000 levels")
        );
        // Brackets inside strings do not count.
        let quoted = format!("{{\"a\": \"{}\"}}", "(".repeat(5000));
        assert!(jq.run(quoted.as_bytes()).is_ok());
    }

    #[test]
    fn jq_partition_keys_and_delimiter() {
        let p = proc(serde_json::json!([
            {"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer: .customer.id, year: (.ts | tostring | .[0:4])}"},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
            {"Type": "AppendDelimiterToRecord"}
        ]));
        let (ok, failed) = apply(
            &p,
            [
                (br#"{"customer": {"id": "acme"}, "ts": 20240101}"#.to_vec(), 1),
                (b"not json".to_vec(), 2),
                (br#"{"customer": {"id": 7}, "ts": 2023}"#.to_vec(), 3),
            ]
            .into_iter()
            .map(|(data, arrival_millis)| Incoming {
                data,
                arrival_millis,
                origin: None,
            })
            .collect(),
        );
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].keys["customer"], "acme");
        assert_eq!(ok[0].keys["year"], "2024");
        assert_eq!(ok[1].keys["customer"], "7");
        assert!(ok[0].data.ends_with(b"}\n"));
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].data, b"not json");
        assert!(Processing::parse(Some(&serde_json::json!({"Enabled": true, "Processors": [
            {"Type": "MetadataExtraction", "Parameters": [{"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{a: .b"}]}]}))).is_err());
        assert!(
            Processing::parse(Some(
                &serde_json::json!({"Enabled": true, "Processors": [{"Type": "Lambda"}]})
            ))
            .is_err()
        );
    }

    #[test]
    fn deaggregation() {
        assert_eq!(
            deaggregate_json(b"{\"a\":1}{\"a\":2}\n{\"a\":3}").unwrap().len(),
            3
        );
        // A KPL aggregate: records "x" and "yz".
        let rec = |d: &[u8]| {
            let mut r = vec![0x08, 0x00, 0x1a, d.len() as u8];
            r.extend_from_slice(d);
            r
        };
        let mut body = vec![0x0a, 0x01, b'k'];
        for d in [&b"x"[..], b"yz"] {
            let r = rec(d);
            body.push(0x1a);
            body.push(r.len() as u8);
            body.extend(r);
        }
        let mut agg = KPL_MAGIC.to_vec();
        agg.extend_from_slice(&body);
        agg.extend_from_slice(&Md5::digest(&body));
        assert_eq!(deaggregate_kpl(&agg), vec![b"x".to_vec(), b"yz".to_vec()]);
        assert_eq!(deaggregate_kpl(b"plain"), vec![b"plain".to_vec()]);
        assert_eq!(unescape("\\n"), b"\n");
    }
}
