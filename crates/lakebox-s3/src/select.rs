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
    /// Only the records that start inside this byte range (`ScanRange`).
    pub scan_range: Option<ScanRange>,
}

/// `ScanRange`: the part of the object whose records a request reads, as S3 documents it.
/// Both ends are inclusive byte offsets; `Start` alone reads from there to the end, `End` alone
/// reads the last `End` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanRange {
    pub start: Option<u64>,
    pub end: Option<u64>,
}

impl ScanRange {
    /// The inclusive byte bounds in an object of `size` bytes, or `None` when no byte of the
    /// object lies in the range.
    pub fn bounds(&self, size: u64) -> Option<(u64, u64)> {
        let last = size.checked_sub(1)?;
        let (start, end) = match (self.start, self.end) {
            (Some(s), Some(e)) => (s, e.min(last)),
            (Some(s), None) => (s, last),
            (None, Some(n)) => (size.checked_sub(n.min(size))?, last),
            (None, None) => (0, last),
        };
        (start <= end && start <= last && !(self.start.is_none() && self.end == Some(0)))
            .then_some((start, end))
    }
}

/// Of `window` (the object's bytes from offset `start` on), the whole lines that begin inside
/// `start..=end`. A line `start` falls inside is left to the range before it (unless `start` is
/// 0), and so is a line beginning exactly at `start`: the range before ends where this one
/// begins when a client splits an object into ranges `(i, i + chunk)` as awswrangler does, and
/// the line that begins at its inclusive end is read there. The last line that begins at or
/// before `end` is read to its end, past `end` if need be.
pub fn line_span(window: &[u8], start: u64, end: u64) -> std::ops::Range<usize> {
    let after_newline = |from: usize| {
        window[from.min(window.len())..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(window.len(), |i| from + i + 1)
    };
    let first = if start == 0 { 0 } else { after_newline(0) };
    let last = usize::try_from(end - start).unwrap_or(usize::MAX);
    let to = if last >= window.len() {
        window.len()
    } else {
        after_newline(last)
    };
    first..to.max(first)
}

/// Whether `window` (the object's bytes from `start` on) reaches far enough for [`line_span`]:
/// past `end` and to the end of the line there.
pub fn line_span_complete(window: &[u8], start: u64, end: u64) -> bool {
    let last = usize::try_from(end - start).unwrap_or(usize::MAX);
    window.len() > last && window[last..].contains(&b'\n')
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

#[cfg(test)]
mod tests {
    use super::*;

    const OBJECT: &[u8] = b"A,B\nC,D\nD,E\nE,F\n";

    fn lines(start: u64, end: u64) -> &'static str {
        let window = &OBJECT[start as usize..];
        std::str::from_utf8(&window[line_span(window, start, end)]).unwrap()
    }

    #[test]
    fn the_documented_example_reads_the_record_starting_inside_the_range() {
        // S3's user guide: Start 1, End 4 of "A,B\nC,D\n…" returns "C,D".
        assert_eq!(lines(1, 4), "C,D\n");
    }

    #[test]
    fn ranges_that_meet_see_every_record_once() {
        for chunk in 1..=OBJECT.len() as u64 {
            let mut seen = String::new();
            let mut i = 0;
            while i < OBJECT.len() as u64 {
                let end = (i + chunk).min(OBJECT.len() as u64 - 1);
                seen.push_str(lines(i, end));
                i += chunk;
            }
            assert_eq!(seen.as_bytes(), OBJECT, "chunk {chunk}");
        }
    }

    #[test]
    fn a_range_inside_one_record_is_empty() {
        assert_eq!(lines(5, 6), "");
        assert_eq!(lines(0, 0), "A,B\n");
    }

    #[test]
    fn bounds_follow_the_documented_defaults() {
        let r = |start, end| ScanRange { start, end };
        assert_eq!(r(Some(50), None).bounds(100), Some((50, 99)));
        assert_eq!(r(None, Some(30)).bounds(100), Some((70, 99)));
        assert_eq!(r(None, Some(300)).bounds(100), Some((0, 99)));
        assert_eq!(r(Some(10), Some(1000)).bounds(100), Some((10, 99)));
        assert_eq!(r(Some(100), Some(200)).bounds(100), None);
        assert_eq!(r(None, Some(0)).bounds(100), None);
        assert_eq!(r(Some(0), None).bounds(0), None);
    }

    #[test]
    fn completeness_needs_the_line_end_after_end() {
        assert!(!line_span_complete(b"C,D", 4, 5));
        assert!(line_span_complete(b"C,D\nE", 4, 5));
        assert!(!line_span_complete(b"C,D\n", 4, 9));
    }
}
