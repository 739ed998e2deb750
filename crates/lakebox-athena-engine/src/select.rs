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
use lakebox_s3::lake::Lake;
use lakebox_s3::select::{
    Compression, FileHeader, InputFormat, OutputFormat, SelectEngine, SelectFuture, SelectRequest,
    SelectResult,
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

fn csv_table(
    data: &[u8],
    header: FileHeader,
    delimiter: u8,
    quote: u8,
    comment: Option<u8>,
) -> Result<Vec<RecordBatch>, ServiceError> {
    let bad = |e: datafusion::arrow::error::ArrowError| client("CSVParsingError", e.to_string());
    let mut format = Format::default()
        .with_header(header != FileHeader::None)
        .with_delimiter(delimiter)
        .with_quote(quote);
    if let Some(c) = comment {
        format = format.with_comment(c);
    }
    let (inferred, _) = format.infer_schema(Cursor::new(data), Some(1)).map_err(bad)?;
    // Every CSV field is text; columns are named by the header (USE) or by position.
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = if header == FileHeader::Use {
                f.name().clone()
            } else {
                format!("_{}", i + 1)
            };
            Field::new(name, DataType::Utf8, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let mut builder = CsvReader::new(schema)
        .with_header(header != FileHeader::None)
        .with_delimiter(delimiter)
        .with_quote(quote)
        .with_truncated_rows(true);
    if let Some(c) = comment {
        builder = builder.with_comment(c);
    }
    builder
        .build(Cursor::new(data))
        .map_err(bad)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)
}

fn json_table(data: &[u8]) -> Result<Vec<RecordBatch>, ServiceError> {
    let bad = |m: String| client("JSONParsingError", m);
    // LINES and DOCUMENT alike: JSON values one after another.
    let values = serde_json::Deserializer::from_slice(data)
        .into_iter::<serde_json::Value>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let schema = arrow_json::reader::infer_json_schema_from_iterator(values.iter().map(Ok))
        .map_err(|e| bad(e.to_string()))?;
    let mut decoder = arrow_json::ReaderBuilder::new(Arc::new(schema))
        .build_decoder()
        .map_err(|e| bad(e.to_string()))?;
    decoder.serialize(&values).map_err(|e| bad(e.to_string()))?;
    Ok(decoder
        .flush()
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .collect())
}

fn parquet_table(data: Vec<u8>) -> Result<Vec<RecordBatch>, ServiceError> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bad = |e: String| {
        client(
            "InvalidFileFormat",
            format!("The object is not a Parquet file: {e}"),
        )
    };
    ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(data))
        .map_err(|e| bad(e.to_string()))?
        .build()
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))
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

async fn run(lake: Lake, req: SelectRequest, stop: Arc<AtomicBool>) -> Result<SelectResult, ServiceError> {
    let (_, mut rx) = lake.get(&req.bucket, &req.key, None)?;
    let mut data = Vec::new();
    while let Some(chunk) = rx.recv().await {
        data.extend_from_slice(&chunk.map_err(|e| ServiceError::internal(e.to_string()))?);
    }
    let bytes_scanned = data.len() as u64;
    let data = decompress(data, req.compression)?;
    let bytes_processed = data.len() as u64;
    let batches = match req.input {
        InputFormat::Csv {
            header,
            field_delimiter,
            quote,
            comments,
        } => csv_table(&data, header, field_delimiter, quote, comments)?,
        InputFormat::Json { .. } => json_table(&data)?,
        InputFormat::Parquet => parquet_table(data)?,
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
