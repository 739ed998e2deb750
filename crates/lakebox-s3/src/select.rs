//! SelectObjectContent (S3 Select): the request's serializations parsed from XML, the query run
//! by a [`SelectEngine`] the server plugs in (Lakebox's Athena engine, so this crate stays free
//! of it), and the answer streamed as the event stream boto3 reads: `Records` events, `Stats`,
//! `End`.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use lakebox_core::ServiceError;
use lakebox_protocol::eventstream;
use lakebox_protocol::xml::XmlElement;
use lakebox_service::Body;

use lakebox_service::body::full;
pub use lakebox_service::select::{
    Compression, FileHeader, InputFormat, OutputFormat, ScanRange, SelectEngine, SelectRequest, SelectResult,
};

use crate::api::S3Request;
use crate::errors;
use crate::store::ObjectStore;

fn one_byte(v: Option<&str>, default: u8, name: &str) -> Result<u8, ServiceError> {
    match v {
        None => Ok(default),
        Some(s) if s.len() == 1 => Ok(s.as_bytes()[0]),
        Some(s) => Err(errors::invalid_argument(
            format!("{name} must be a single character"),
            name,
            s,
        )),
    }
}

fn input(doc: &XmlElement) -> Result<(InputFormat, Compression), ServiceError> {
    let ser = doc
        .child("InputSerialization")
        .ok_or_else(errors::malformed_document)?;
    // S3 reads these enumerations in any case (awswrangler's documentation sends `Use`, `Lines`).
    let upper = |v: Option<&str>, default: &str| v.unwrap_or(default).to_ascii_uppercase();
    let compression = match upper(ser.child_text("CompressionType"), "NONE").as_str() {
        "NONE" => Compression::None,
        "GZIP" => Compression::Gzip,
        "BZIP2" => Compression::Bzip2,
        other => {
            return Err(errors::invalid_argument(
                "Invalid compression type",
                "CompressionType",
                other,
            ));
        }
    };
    let format = if let Some(csv) = ser.child("CSV") {
        let header = match upper(csv.child_text("FileHeaderInfo"), "NONE").as_str() {
            "USE" => FileHeader::Use,
            "IGNORE" => FileHeader::Ignore,
            "NONE" => FileHeader::None,
            other => {
                return Err(errors::invalid_argument(
                    "Invalid FileHeaderInfo",
                    "FileHeaderInfo",
                    other,
                ));
            }
        };
        InputFormat::Csv {
            header,
            field_delimiter: one_byte(csv.child_text("FieldDelimiter"), b',', "FieldDelimiter")?,
            quote: one_byte(csv.child_text("QuoteCharacter"), b'"', "QuoteCharacter")?,
            comments: csv
                .child_text("Comments")
                .map(|c| one_byte(Some(c), b'#', "Comments"))
                .transpose()?,
        }
    } else if let Some(json) = ser.child("JSON") {
        InputFormat::Json {
            lines: match upper(json.child_text("Type"), "DOCUMENT").as_str() {
                "LINES" => true,
                "DOCUMENT" => false,
                other => return Err(errors::invalid_argument("Invalid JSON type", "Type", other)),
            },
        }
    } else if ser.child("Parquet").is_some() {
        if compression != Compression::None {
            return Err(errors::invalid_request(
                "Parquet input does not take a CompressionType.",
            ));
        }
        InputFormat::Parquet
    } else {
        return Err(errors::invalid_request(
            "InputSerialization names no format (CSV, JSON or Parquet).",
        ));
    };
    Ok((format, compression))
}

fn output(doc: &XmlElement) -> Result<OutputFormat, ServiceError> {
    let ser = doc
        .child("OutputSerialization")
        .ok_or_else(errors::malformed_document)?;
    if let Some(csv) = ser.child("CSV") {
        return Ok(OutputFormat::Csv {
            field_delimiter: csv.child_text("FieldDelimiter").unwrap_or(",").to_owned(),
            record_delimiter: csv.child_text("RecordDelimiter").unwrap_or("\n").to_owned(),
            quote_always: csv
                .child_text("QuoteFields")
                .is_some_and(|q| q.eq_ignore_ascii_case("ALWAYS")),
            quote: csv
                .child_text("QuoteCharacter")
                .and_then(|q| q.chars().next())
                .unwrap_or('"'),
        });
    }
    if let Some(json) = ser.child("JSON") {
        return Ok(OutputFormat::Json {
            record_delimiter: json.child_text("RecordDelimiter").unwrap_or("\n").to_owned(),
        });
    }
    Err(errors::invalid_request(
        "OutputSerialization names no format (CSV or JSON).",
    ))
}

/// `ScanRange`, where the object's format allows one: uncompressed CSV without quoted record
/// delimiters, JSON LINES, and Parquet (by row group), as S3 documents scan ranges.
fn scan_range(
    doc: &XmlElement,
    input: &InputFormat,
    compression: Compression,
) -> Result<Option<ScanRange>, ServiceError> {
    let Some(range) = doc.child("ScanRange") else {
        return Ok(None);
    };
    let invalid = || {
        ServiceError::new(
            "InvalidScanRange",
            400,
            "The provided scan range is not valid.".to_owned(),
        )
    };
    let offset = |name: &str| {
        range
            .child_text(name)
            .map(|v| v.trim().parse::<u64>().map_err(|_| invalid()))
            .transpose()
    };
    let scan = ScanRange {
        start: offset("Start")?,
        end: offset("End")?,
    };
    match (scan.start, scan.end) {
        (None, None) => return Err(invalid()),
        (Some(s), Some(e)) if s > e => return Err(invalid()),
        _ => {}
    }
    let quoted_delimiters = doc
        .child("InputSerialization")
        .and_then(|s| s.child("CSV"))
        .and_then(|c| c.child_text("AllowQuotedRecordDelimiter"))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let supported = compression == Compression::None
        && match input {
            InputFormat::Csv { .. } => !quoted_delimiters,
            InputFormat::Json { lines } => *lines,
            InputFormat::Parquet => true,
        };
    if !supported {
        return Err(ServiceError::new(
            "UnsupportedScanRangeInput",
            400,
            "Scan range queries are not supported on this type of object.".to_owned(),
        ));
    }
    Ok(Some(scan))
}

/// The most a `Records` event carries.
const EVENT_BYTES: usize = 64 * 1024;

pub async fn select_object_content(
    store: &Arc<ObjectStore>,
    engine: Option<Arc<dyn SelectEngine>>,
    mut req: S3Request,
) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.clone().unwrap_or_default();
    let key = req.key.clone().unwrap_or_default();
    store.existing_bucket(&bucket)?;
    let doc = req.xml_document("SelectObjectContentRequest").await?;
    if store
        .object(&bucket, &key)?
        .filter(|r| !r.delete_marker)
        .is_none()
    {
        return Err(errors::no_such_key(&key));
    }
    let expression = doc
        .child_text("Expression")
        .ok_or_else(errors::malformed_document)?
        .to_owned();
    if doc.child_text("ExpressionType") != Some("SQL") {
        return Err(errors::invalid_request("ExpressionType must be SQL."));
    }
    let (input, compression) = input(&doc)?;
    let output = output(&doc)?;
    let scan_range = scan_range(&doc, &input, compression)?;
    let engine = engine.ok_or_else(|| errors::not_implemented("S3 Select without a query engine"))?;
    let result = engine
        .select(SelectRequest {
            bucket,
            key,
            expression,
            input,
            compression,
            output,
            scan_range,
        })
        .await?;
    let mut stream = Vec::new();
    for chunk in result.records.chunks(EVENT_BYTES) {
        stream.extend(eventstream::event("Records", "application/octet-stream", chunk));
    }
    let stats = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Stats><BytesScanned>{}</BytesScanned><BytesProcessed>{}</BytesProcessed><BytesReturned>{}</BytesReturned></Stats>",
        result.bytes_scanned,
        result.bytes_processed,
        result.records.len()
    );
    stream.extend(eventstream::event("Stats", "text/xml", stats.as_bytes()));
    stream.extend(eventstream::encode_message(
        &[(":message-type", "event"), (":event-type", "End")],
        b"",
    ));
    let mut r = Response::new(full(Bytes::from(stream)));
    *r.status_mut() = StatusCode::OK;
    Ok(r)
}
