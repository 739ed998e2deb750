//! S3 Select as a link: the request S3 parses from SelectObjectContent and hands to the engine
//! the binary plugs in (Lakebox's Athena engine), and what the engine answers. S3 owns the wire
//! (XML request, event-stream answer); the engine owns the SQL; neither names the other's crate.

use std::future::Future;
use std::pin::Pin;

use lakebox_core::ServiceError;

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
