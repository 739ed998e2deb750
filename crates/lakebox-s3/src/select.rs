//! SelectObjectContent (S3 Select): the request's serializations parsed from XML, the query run
//! by a [`SelectEngine`] the server plugs in (Lakebox's Athena engine, so this crate stays free
//! of it), and the answer streamed as the event stream boto3 reads: `Records` events, `Stats`,
//! `End`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use lakebox_core::ServiceError;
use lakebox_protocol::eventstream;
use lakebox_protocol::xml::XmlElement;
use lakebox_service::Body;

use lakebox_service::body::full;

use crate::api::S3Request;
use crate::errors;
use crate::store::ObjectStore;

/// `FileHeaderInfo` of CSV input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileHeader {
    /// The first line names the columns.
    Use,
    /// The first line is skipped; columns are `_1`, `_2`, …
    Ignore,
    /// No header; columns are `_1`, `_2`, …
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InputFormat {
    Csv {
        header: FileHeader,
        field_delimiter: u8,
        quote: u8,
        comments: Option<u8>,
    },
    Json {
        /// `LINES` (one document per line) or `DOCUMENT` (documents one after another).
        lines: bool,
    },
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    Csv {
        field_delimiter: String,
        record_delimiter: String,
        /// `ALWAYS` quotes every field; `ASNEEDED` only those that need it.
        quote_always: bool,
        quote: char,
    },
    Json {
        record_delimiter: String,
    },
}

#[derive(Debug, Clone)]
pub struct SelectRequest {
    pub bucket: String,
    pub key: String,
    pub expression: String,
    pub input: InputFormat,
    pub compression: Compression,
    pub output: OutputFormat,
}

/// What the query produced, already serialized as the output format asks.
#[derive(Debug, Clone, Default)]
pub struct SelectResult {
    pub records: Vec<u8>,
    pub bytes_scanned: u64,
    pub bytes_processed: u64,
}

pub type SelectFuture = Pin<Box<dyn Future<Output = Result<SelectResult, ServiceError>> + Send>>;

/// Runs S3 Select SQL over one object.
pub trait SelectEngine: Send + Sync {
    fn select(&self, request: SelectRequest) -> SelectFuture;
}

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
    let compression = match ser.child_text("CompressionType").unwrap_or("NONE") {
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
        let header = match csv.child_text("FileHeaderInfo").unwrap_or("NONE") {
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
            lines: match json.child_text("Type").unwrap_or("DOCUMENT") {
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
            quote_always: csv.child_text("QuoteFields") == Some("ALWAYS"),
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

/// The most a `Records` event carries.
const EVENT_BYTES: usize = 64 * 1024;

pub async fn select_object_content(
    store: &Arc<ObjectStore>,
    engine: Option<Arc<dyn SelectEngine>>,
    mut req: S3Request,
) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.clone().unwrap_or_default();
    let key = req.key.clone().unwrap_or_default();
    store.owned_bucket(&bucket, &req.ctx.account_id)?;
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
    if doc.child("ScanRange").is_some() {
        return Err(errors::not_implemented("S3 Select ScanRange"));
    }
    let (input, compression) = input(&doc)?;
    let output = output(&doc)?;
    let engine = engine.ok_or_else(|| errors::not_implemented("S3 Select without a query engine"))?;
    let result = engine
        .select(SelectRequest {
            bucket,
            key,
            expression,
            input,
            compression,
            output,
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
