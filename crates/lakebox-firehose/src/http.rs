//! The HTTP endpoint destination: batches POSTed in Firehose's HTTP endpoint request format
//! (`{"requestId", "timestamp", "records": [{"data": base64}]}` with the
//! `X-Amz-Firehose-*` headers and the access key), the endpoint's answer checked (200 and the
//! same requestId), retried with backoff for RetryOptions.DurationInSeconds, and what could not
//! be delivered (or everything, with S3BackupMode AllData) written to the S3 configuration.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::Full;
use lakebox_core::ServiceError;
use lakebox_service::outbound::{self, Answer};
use serde_json::{Value, json};

use crate::destination::{MIB, S3Destination};
use crate::errors::invalid_argument;
use crate::process::Processing;

const DEFAULT_SIZE_MB: u64 = 5;
const DEFAULT_INTERVAL_S: u64 = 300;
const DEFAULT_RETRY_S: u64 = 300;
/// One attempt may take this long before it counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct HttpDestination {
    pub url: String,
    pub access_key: Option<String>,
    pub gzip: bool,
    pub common_attributes: BTreeMap<String, String>,
    pub size_bytes: u64,
    pub interval_millis: i64,
    pub retry_millis: i64,
    pub all_data_to_s3: bool,
    pub processing: Processing,
    /// Where failed (or, with AllData, all) records go.
    pub s3: S3Destination,
}

fn hint(c: &Value, field: &str) -> Option<u64> {
    c.get("BufferingHints")
        .and_then(|b| b.get(field))
        .and_then(Value::as_u64)
}

impl HttpDestination {
    pub fn parse(c: &Value) -> Result<HttpDestination, ServiceError> {
        let endpoint = c
            .get("EndpointConfiguration")
            .ok_or_else(|| invalid_argument("EndpointConfiguration is required."))?;
        let url = endpoint
            .get("Url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let parsed: http::Uri = url
            .parse()
            .map_err(|_| invalid_argument(format!("Url {url} is not a valid URL.")))?;
        // AWS requires https; Lakebox also accepts http for endpoints on the local machine
        // (the model pattern is widened to allow exactly that in services.toml).
        if !matches!(parsed.scheme_str(), Some("https" | "http")) || parsed.host().is_none() {
            return Err(invalid_argument(format!(
                "Url {url} must be an https:// (or http://) URL."
            )));
        }
        if c.pointer("/SecretsManagerConfiguration/Enabled")
            .and_then(Value::as_bool)
            == Some(true)
        {
            return Err(invalid_argument(
                "SecretsManagerConfiguration is not supported by Lakebox yet; use AccessKey.",
            ));
        }
        let size_mb = hint(c, "SizeInMBs").unwrap_or(DEFAULT_SIZE_MB);
        if !(1..=64).contains(&size_mb) {
            return Err(invalid_argument(format!(
                "BufferingHints.SizeInMBs must be between 1 and 64, got {size_mb}."
            )));
        }
        let interval = hint(c, "IntervalInSeconds").unwrap_or(DEFAULT_INTERVAL_S);
        if interval > 900 {
            return Err(invalid_argument(format!(
                "BufferingHints.IntervalInSeconds must be between 0 and 900, got {interval}."
            )));
        }
        let retry = c
            .pointer("/RetryOptions/DurationInSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_RETRY_S);
        if retry > 7200 {
            return Err(invalid_argument(format!(
                "RetryOptions.DurationInSeconds must be between 0 and 7200, got {retry}."
            )));
        }
        let gzip = match c
            .pointer("/RequestConfiguration/ContentEncoding")
            .and_then(Value::as_str)
        {
            None | Some("NONE") => false,
            Some("GZIP") => true,
            Some(other) => return Err(invalid_argument(format!("Invalid ContentEncoding {other}."))),
        };
        let common_attributes = c
            .pointer("/RequestConfiguration/CommonAttributes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| {
                Some((
                    a.get("AttributeName")?.as_str()?.to_owned(),
                    a.get("AttributeValue")?.as_str()?.to_owned(),
                ))
            })
            .collect();
        let all_data_to_s3 = match c.get("S3BackupMode").and_then(Value::as_str) {
            None | Some("FailedDataOnly") => false,
            Some("AllData") => true,
            Some(other) => return Err(invalid_argument(format!("Invalid S3BackupMode {other}."))),
        };
        let s3 = S3Destination::parse(c.get("S3Configuration").ok_or_else(|| {
            invalid_argument("S3Configuration is required for an HTTP endpoint destination.")
        })?)?;
        Ok(HttpDestination {
            url,
            access_key: endpoint
                .get("AccessKey")
                .and_then(Value::as_str)
                .map(str::to_owned),
            gzip,
            common_attributes,
            size_bytes: size_mb * MIB,
            interval_millis: (interval * 1000) as i64,
            retry_millis: (retry * 1000) as i64,
            all_data_to_s3,
            processing: Processing::parse(c.get("ProcessingConfiguration"))?,
            s3,
        })
    }
}

/// DescribeDeliveryStream's HttpEndpointDestinationDescription: the access key is never
/// returned, defaults are filled in.
pub fn describe(c: &Value) -> Value {
    let mut d = c.clone();
    if let Some(e) = d.get_mut("EndpointConfiguration").and_then(Value::as_object_mut) {
        e.remove("AccessKey");
    }
    d["BufferingHints"] = json!({
        "SizeInMBs": hint(c, "SizeInMBs").unwrap_or(DEFAULT_SIZE_MB),
        "IntervalInSeconds": hint(c, "IntervalInSeconds").unwrap_or(DEFAULT_INTERVAL_S),
    });
    if d.get("RetryOptions").is_none() {
        d["RetryOptions"] = json!({"DurationInSeconds": DEFAULT_RETRY_S});
    }
    if d.get("S3BackupMode").is_none() {
        d["S3BackupMode"] = json!("FailedDataOnly");
    }
    if d.get("RequestConfiguration").is_none() {
        d["RequestConfiguration"] = json!({"ContentEncoding": "NONE"});
    }
    if let Some(s3) = d.as_object_mut().and_then(|o| o.remove("S3Configuration")) {
        d["S3DestinationDescription"] = crate::destination::describe_plain(&s3);
    }
    d
}

/// One POST of a batch; `Ok` when the endpoint accepted it.
pub async fn post(
    dest: &HttpDestination,
    source_arn: &str,
    records: &[Vec<u8>],
    now_millis: i64,
) -> Result<(), String> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let doc = json!({
        "requestId": request_id,
        "timestamp": now_millis,
        "records": records.iter().map(|r| json!({"data": B64.encode(r)})).collect::<Vec<_>>(),
    });
    let mut payload = doc.to_string().into_bytes();
    if dest.gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&payload).map_err(|e| e.to_string())?;
        payload = e.finish().map_err(|e| e.to_string())?;
    }
    let mut req = http::Request::post(&dest.url)
        .header("Content-Type", "application/json")
        .header("User-Agent", "Amazon Kinesis Data Firehose Agent/1.0")
        .header("X-Amz-Firehose-Protocol-Version", "1.0")
        .header("X-Amz-Firehose-Request-Id", &request_id)
        .header("X-Amz-Firehose-Source-Arn", source_arn);
    if let Some(k) = &dest.access_key {
        req = req.header("X-Amz-Firehose-Access-Key", k);
    }
    if !dest.common_attributes.is_empty() {
        req = req.header(
            "X-Amz-Firehose-Common-Attributes",
            json!({"commonAttributes": dest.common_attributes}).to_string(),
        );
    }
    if dest.gzip {
        req = req.header("Content-Encoding", "gzip");
    }
    let req = req
        .body(Full::new(Bytes::from(payload)))
        .map_err(|e| e.to_string())?;
    let Answer { status, body } = outbound::send(req, ATTEMPT_TIMEOUT).await?;
    if status != http::StatusCode::OK {
        return Err(format!(
            "the endpoint answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let answer: Value =
        serde_json::from_slice(&body).map_err(|_| "the endpoint's answer is not JSON".to_string())?;
    if answer.get("requestId").and_then(Value::as_str) != Some(request_id.as_str()) {
        return Err("the endpoint's answer does not carry the request's requestId".into());
    }
    Ok(())
}
