//! S3 Select (SelectObjectContent) on the Athena engine: the object is read whole (and
//! decompressed), made a table named `S3Object` — CSV columns as text named by the header or
//! `_1`, `_2`, …; JSON documents with their inferred types; Parquet as written — and the SQL
//! runs on DataFusion with the Trino functions; rows come back as CSV or JSON lines.

use std::io::{Cursor, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::ReaderBuilder as CsvReader;
use datafusion::arrow::csv::reader::Format;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use lakebox_core::ServiceError;
use lakebox_service::lake::Lake;
use lakebox_service::select::{
    self, Compression, FileHeader, InputFormat, OutputFormat, ScanRange, SelectEngine, SelectFuture,
    SelectRequest, SelectResult,
};

use crate::functions;
use crate::pool::QueryPool;

pub struct S3Select {
    lake: Lake,
    pool: Arc<QueryPool>,
}

impl S3Select {
    pub fn new(lake: Lake, pool: Arc<QueryPool>) -> Self {
        S3Select { lake, pool }
    }
}

impl SelectEngine for S3Select {
    /// Runs on the query pool; a client that disconnects drops this future, which stops it:
    /// the task is aborted, and the stop flag every operator checks ends work that never
    /// yields (see `cancel`).
    fn select(&self, request: SelectRequest) -> SelectFuture {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_on_drop = StopOnDrop(stop.clone());
        let task = self.pool.run(run(self.lake.clone(), request, stop));
        Box::pin(async move {
            let _stop_on_drop = stop_on_drop;
            task.await.unwrap_or_else(|| {
                Err(ServiceError::new(
                    "InternalError",
                    500,
                    "The query stopped unexpectedly.".to_owned(),
                ))
            })
        })
    }
}

/// Sets the query's stop flag when the request's future goes away (finished or abandoned).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn client(code: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::new(code, 400, message.into())
}

/// S3 Select's error codes for what went wrong with the query.
fn query_error(e: DataFusionError) -> ServiceError {
    let message = e.to_string();
    match e.find_root() {
        DataFusionError::SQL(..) => client("ParseUnexpectedToken", message),
        DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => client("InvalidQuery", message),
        DataFusionError::ArrowError(..) if message.contains("Cast") || message.contains("parse") => {
            client("CastFailed", message)
        }
        _ => client("ExternalEvalException", message),
    }
}

fn decompress(data: Vec<u8>, c: Compression) -> Result<Vec<u8>, ServiceError> {
    let mut out = Vec::new();
    let bad = |e: std::io::Error| {
        client(
            "InvalidCompressionFormat",
            format!("The object is not valid compressed data: {e}"),
        )
    };
    match c {
        Compression::None => return Ok(data),
        Compression::Gzip => flate2::read::MultiGzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .map_err(bad)?,
        Compression::Bzip2 => bzip2::read::MultiBzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .map_err(bad)?,
    };
    Ok(out)
}

struct CsvInput {
    header: FileHeader,
    delimiter: u8,
    quote: u8,
    comment: Option<u8>,
}

/// The CSV records of `body` as text columns named by the header (USE) or by position. With
/// `first` (a scan range's view of the object's first line) the columns come from that line and
/// `body` holds records only; without it `body` is the whole object, header included.
fn csv_table(first: Option<&[u8]>, body: &[u8], csv: &CsvInput) -> Result<Vec<RecordBatch>, ServiceError> {
    let bad = |e: datafusion::arrow::error::ArrowError| client("CSVParsingError", e.to_string());
    let named = csv.header != FileHeader::None;
    let mut format = Format::default()
        .with_header(named)
        .with_delimiter(csv.delimiter)
        .with_quote(csv.quote);
    if let Some(c) = csv.comment {
        format = format.with_comment(c);
    }
    let (inferred, _) = format
        .infer_schema(Cursor::new(first.unwrap_or(body)), Some(1))
        .map_err(bad)?;
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = if csv.header == FileHeader::Use {
                f.name().clone()
            } else {
                format!("_{}", i + 1)
            };
            Field::new(name, DataType::Utf8, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let mut builder = CsvReader::new(schema.clone())
        .with_header(named && first.is_none())
        .with_delimiter(csv.delimiter)
        .with_quote(csv.quote)
        .with_truncated_rows(true);
    if let Some(c) = csv.comment {
        builder = builder.with_comment(c);
    }
    let batches = builder
        .build(Cursor::new(body))
        .map_err(bad)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    // No record in range: the columns still exist, with no rows.
    Ok(if batches.is_empty() {
        vec![RecordBatch::new_empty(schema)]
    } else {
        batches
    })
}

/// JSON documents as a table with inferred column types; `hint` (a scan range's view of the
/// object's first line) joins the inference so a range's columns do not depend on which lines
/// it happens to hold.
fn json_table(hint: Option<&[u8]>, data: &[u8]) -> Result<Vec<RecordBatch>, ServiceError> {
    let bad = |m: String| client("JSONParsingError", m);
    let parse = |bytes: &[u8]| {
        serde_json::Deserializer::from_slice(bytes)
            .into_iter::<serde_json::Value>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))
    };
    // LINES and DOCUMENT alike: JSON values one after another.
    let values = parse(data)?;
    let hint = hint.map(parse).transpose()?.unwrap_or_default();
    let schema =
        arrow_json::reader::infer_json_schema_from_iterator(hint.iter().chain(values.iter()).map(Ok))
            .map_err(|e| bad(e.to_string()))?;
    let schema = Arc::new(schema);
    let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
        .build_decoder()
        .map_err(|e| bad(e.to_string()))?;
    decoder.serialize(&values).map_err(|e| bad(e.to_string()))?;
    Ok(decoder
        .flush()
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .chain(values.is_empty().then(|| RecordBatch::new_empty(schema)))
        .collect())
}

/// The Parquet object's rows — with a `ScanRange`, those of the row groups that start inside
/// the range, as S3 documents — and the bytes of the row groups read.
fn parquet_table(data: Vec<u8>, scan: Option<ScanRange>) -> Result<(Vec<RecordBatch>, u64), ServiceError> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bad = |e: String| {
        client(
            "InvalidFileFormat",
            format!("The object is not a Parquet file: {e}"),
        )
    };
    let size = data.len() as u64;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(data)).map_err(|e| bad(e.to_string()))?;
    let groups = builder.metadata().row_groups();
    let bounds = scan.map(|s| s.bounds(size));
    let chosen: Vec<usize> = (0..groups.len())
        .filter(|&i| match bounds {
            None => true,
            Some(None) => false,
            Some(Some((start, end))) => {
                let first = groups[i].column(0);
                let offset = first
                    .dictionary_page_offset()
                    .map_or(first.data_page_offset(), |d| d.min(first.data_page_offset()));
                (start..=end).contains(&u64::try_from(offset).unwrap_or(0))
            }
        })
        .collect();
    let processed = chosen
        .iter()
        .map(|&i| u64::try_from(groups[i].compressed_size()).unwrap_or(0))
        .sum();
    let schema = builder.schema().clone();
    let mut batches = builder
        .with_row_groups(chosen)
        .build()
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if batches.is_empty() {
        // No row group in range: the columns still exist, with no rows.
        batches.push(RecordBatch::new_empty(schema));
    }
    Ok((batches, processed))
}

fn serialize(batches: &[RecordBatch], output: &OutputFormat) -> Result<Vec<u8>, ServiceError> {
    let internal = |e: datafusion::arrow::error::ArrowError| ServiceError::internal(e.to_string());
    match output {
        OutputFormat::Json { record_delimiter } => {
            let mut w = arrow_json::LineDelimitedWriter::new(Vec::new());
            for b in batches {
                w.write(b).map_err(internal)?;
            }
            w.finish().map_err(internal)?;
            let text = String::from_utf8_lossy(&w.into_inner()).into_owned();
            Ok(text
                .lines()
                .flat_map(|l| [l, record_delimiter.as_str()])
                .collect::<String>()
                .into_bytes())
        }
        OutputFormat::Csv {
            field_delimiter,
            record_delimiter,
            quote_always,
            quote,
        } => {
            let options = FormatOptions::default().with_null("");
            let mut out = String::new();
            for b in batches {
                let formatters = b
                    .columns()
                    .iter()
                    .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(internal)?;
                for row in 0..b.num_rows() {
                    let fields: Vec<String> = formatters
                        .iter()
                        .map(|f| {
                            let v = f.value(row).to_string();
                            let needs = v.contains(field_delimiter.as_str())
                                || v.contains(*quote)
                                || v.contains('\n')
                                || v.contains('\r');
                            if *quote_always || needs {
                                let q = quote.to_string();
                                format!("{q}{}{q}", v.replace(*quote, &format!("{q}{q}")))
                            } else {
                                v
                            }
                        })
                        .collect();
                    out.push_str(&fields.join(field_delimiter));
                    out.push_str(record_delimiter);
                }
            }
            Ok(out.into_bytes())
        }
    }
}

/// Reads `range` of the object, stopping early once `enough` says the bytes read suffice.
async fn read(
    lake: &Lake,
    req: &SelectRequest,
    range: Option<std::ops::Range<u64>>,
    enough: impl Fn(&[u8]) -> bool,
) -> Result<Vec<u8>, ServiceError> {
    let (_, mut rx) = lake.get(&req.bucket, &req.key, range)?;
    let mut data = Vec::new();
    while let Some(chunk) = rx.recv().await {
        data.extend_from_slice(&chunk.map_err(|e| ServiceError::internal(e.to_string()))?);
        if enough(&data) {
            break;
        }
    }
    Ok(data)
}

/// What a line-based object (CSV, JSON lines) gives the query: with a `ScanRange`, the lines
/// that start inside the range (`body`) and the object's first line (`first`), which names the
/// CSV columns or shows their number, and seeds JSON's inferred columns, whatever the range;
/// without one, the whole object as `body`.
struct Lines {
    first: Option<Vec<u8>>,
    body: Vec<u8>,
}

async fn line_records(lake: &Lake, req: &SelectRequest) -> Result<Lines, ServiceError> {
    let Some(scan) = req.scan_range else {
        let body = read(lake, req, None, |_| false).await?;
        return Ok(Lines { first: None, body });
    };
    let size = lake
        .head(&req.bucket, &req.key)?
        .ok_or_else(|| client("NoSuchKey", "The specified key does not exist."))?
        .size;
    let first_line = |bytes: &[u8]| {
        bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| i + 1)
    };
    let Some((start, end)) = scan.bounds(size) else {
        let first = read(lake, req, Some(0..size), |w| w.contains(&b'\n')).await?;
        let first = first[..first_line(&first)].to_vec();
        return Ok(Lines {
            first: Some(first),
            body: Vec::new(),
        });
    };
    let window = read(lake, req, Some(start..size), |w| {
        select::line_span_complete(w, start, end)
    })
    .await?;
    // From the start, the window already holds the first line (it reads on past `end`'s line).
    let first = if start == 0 {
        window[..first_line(&window)].to_vec()
    } else {
        let head = read(lake, req, Some(0..size), |w| w.contains(&b'\n')).await?;
        head[..first_line(&head)].to_vec()
    };
    let mut span = select::line_span(&window, start, end);
    // The CSV header is `first`, never a record.
    let header = matches!(req.input, InputFormat::Csv { header, .. } if header != FileHeader::None);
    if header && start == 0 {
        span.start = span.start.max(first.len().min(span.end));
    }
    Ok(Lines {
        first: Some(first),
        body: window[span].to_vec(),
    })
}

async fn run(lake: Lake, req: SelectRequest, stop: Arc<AtomicBool>) -> Result<SelectResult, ServiceError> {
    let (batches, bytes_scanned, bytes_processed) = match req.input {
        InputFormat::Parquet => {
            let data = read(&lake, &req, None, |_| false).await?;
            let scanned = data.len() as u64;
            let (batches, processed) = parquet_table(data, req.scan_range)?;
            (batches, scanned, processed)
        }
        InputFormat::Csv {
            header,
            field_delimiter,
            quote,
            comments,
        } => {
            let lines = line_records(&lake, &req).await?;
            let scanned = lines.body.len() as u64;
            let body = decompress(lines.body, req.compression)?;
            let csv = CsvInput {
                header,
                delimiter: field_delimiter,
                quote,
                comment: comments,
            };
            let batches = csv_table(lines.first.as_deref(), &body, &csv)?;
            (batches, scanned, body.len() as u64)
        }
        InputFormat::Json { .. } => {
            let lines = line_records(&lake, &req).await?;
            let scanned = lines.body.len() as u64;
            let body = decompress(lines.body, req.compression)?;
            (
                json_table(lines.first.as_deref(), &body)?,
                scanned,
                body.len() as u64,
            )
        }
    };
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    let table = MemTable::try_new(schema, vec![batches]).map_err(query_error)?;
    // The same per-query memory limit as Athena's queries.
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(crate::session::query_memory_limit(), 1.0)
        .build_arc()
        .map_err(query_error)?;
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
    functions::register_all(&ctx);
    // `FROM S3Object` (any case, unquoted) reaches DataFusion as `s3object`.
    ctx.register_table("s3object", Arc::new(table))
        .map_err(query_error)?;
    let statement = crate::depth::parse(&ctx, &req.expression).map_err(query_error)?;
    let plan = ctx
        .state()
        .statement_to_plan(statement)
        .await
        .map_err(query_error)?;
    let physical = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(query_error)?
        .create_physical_plan()
        .await
        .map_err(query_error)?;
    let physical = crate::cancel::wrap(physical, &stop).map_err(query_error)?;
    let rows = datafusion::physical_plan::collect(physical, ctx.task_ctx())
        .await
        .map_err(query_error)?;
    Ok(SelectResult {
        records: serialize(&rows, &req.output)?,
        bytes_scanned,
        bytes_processed,
    })
}
