//! The statements that write data: CREATE TABLE AS SELECT, INSERT INTO … SELECT and UNLOAD.
//! The query runs on the engine; DataFusion's writers put the files in Lakebox S3 (Hive-style
//! `key=value/` folders for `partitioned_by`); CTAS then registers the table through Athena's
//! own DDL (`lakebox-athena-ddl`), and CTAS and INSERT register new partitions as MSCK REPAIR
//! TABLE does. UNLOAD only writes files. A bucketed CTAS (`bucketed_by`, `bucket_count`)
//! collects the rows and writes one file per bucket and partition (see `buckets`).

use std::collections::HashMap;

use datafusion::arrow::array::{Array, UInt32Array, UInt64Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::{CsvOptions, JsonOptions, TableParquetOptions};
use datafusion::common::parsers::{CompressionTypeVariant, CsvQuoteStyle};
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{SessionContext, cast, ident};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    CreateTable, CreateTableOptions, Expr, Insert, ObjectName, Query, SqlOption, Statement, TableObject,
    Value,
};
use lakebox_athena_ddl::{ColumnDef, Name, RowFormat, StoredAs};
use lakebox_glue::model::Table;
use lakebox_service::lake::split_s3_url;
use object_store::ObjectStoreExt;

use crate::buckets::{self, Bucketing};
use crate::encode::{self, Encoding};
use crate::format::TableFormat;
use crate::session::Sessions;
use crate::table::with_slash;
use crate::types::hive_type;
use crate::{CATALOG, RunOptions};

/// A file format Athena writes, with its compression and (for text) delimiter.
struct Output {
    format: String,
    compression: Option<String>,
    delimiter: u8,
    partitioned_by: Vec<String>,
    bucketing: Option<Bucketing>,
}

fn plan_error(m: impl Into<String>) -> DataFusionError {
    DataFusionError::Plan(m.into())
}

fn literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            Value::Number(n, _) => Some(n.clone()),
            Value::Boolean(b) => Some(b.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// The `WITH (key = value, …)` properties, keys lowercased; arrays as lists.
fn properties(options: &[SqlOption]) -> Result<HashMap<String, Vec<String>>> {
    let mut out = HashMap::new();
    for o in options {
        let SqlOption::KeyValue { key, value } = o else {
            return Err(plan_error(format!("Unsupported table property {o}")));
        };
        let values = match value {
            Expr::Array(a) => a.elem.iter().map(literal).collect::<Option<Vec<_>>>(),
            other => literal(other).map(|v| vec![v]),
        }
        .ok_or_else(|| {
            plan_error(format!(
                "Property {key} must be a literal or ARRAY[…] of literals"
            ))
        })?;
        out.insert(key.value.to_lowercase(), values);
    }
    Ok(out)
}

fn output(props: &HashMap<String, Vec<String>>) -> Result<Output> {
    let one = |k: &str| props.get(k).and_then(|v| v.first()).cloned();
    if one("table_type").is_some_and(|t| t.eq_ignore_ascii_case("ICEBERG")) {
        return Err(DataFusionError::NotImplemented(
            "Iceberg tables are not supported by Lakebox's Athena yet.".into(),
        ));
    }
    let bucketing = match (props.get("bucketed_by"), one("bucket_count")) {
        (None, None) => None,
        (Some(columns), Some(count)) => {
            let count = count
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| plan_error(format!("bucket_count must be a positive integer, not {count}")))?;
            if columns.is_empty() {
                return Err(plan_error("bucketed_by needs at least one column"));
            }
            // CTAS writes text columns as Hive `string`s, whose hash starts from 0.
            let columns = columns.iter().map(|c| (c.to_lowercase(), false)).collect();
            Some(Bucketing { columns, count })
        }
        _ => return Err(plan_error("bucketed_by and bucket_count go together")),
    };
    let format = one("format").unwrap_or_else(|| "PARQUET".into()).to_uppercase();
    if !matches!(format.as_str(), "PARQUET" | "ORC" | "AVRO" | "TEXTFILE" | "JSON") {
        return Err(DataFusionError::NotImplemented(format!(
            "Writing format '{format}' is not supported by Lakebox's Athena yet (PARQUET, ORC, AVRO, TEXTFILE and JSON are)."
        )));
    }
    let compression = one("write_compression")
        .or_else(|| one("parquet_compression"))
        .or_else(|| one("compression"))
        .map(|c| c.to_uppercase());
    let delimiter = match one("field_delimiter") {
        None => 1u8,
        Some(d) if d.len() == 1 => d.as_bytes()[0],
        Some(d) => return Err(plan_error(format!("field_delimiter '{d}' must be one character"))),
    };
    Ok(Output {
        format,
        compression,
        delimiter,
        partitioned_by: props
            .get("partitioned_by")
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.to_lowercase())
            .collect(),
        bucketing,
    })
}

fn text_compression(c: Option<&str>) -> Result<CompressionTypeVariant> {
    Ok(match c {
        None | Some("NONE") => CompressionTypeVariant::UNCOMPRESSED,
        Some("GZIP") => CompressionTypeVariant::GZIP,
        Some("BZIP2") => CompressionTypeVariant::BZIP2,
        Some("ZSTD") => CompressionTypeVariant::ZSTD,
        Some(other) => return Err(plan_error(format!("Unsupported text compression {other}"))),
    })
}

/// Writes the query's rows under `location`; the number of rows written.
async fn write(ctx: &SessionContext, df: DataFrame, location: &str, out: &Output) -> Result<u64> {
    if let Some(b) = &out.bucketing {
        return write_buckets(ctx, df, location, out, b).await;
    }
    if let Some(encoding) = Encoding::of(&out.format, out.compression.as_deref())? {
        return encode::write(df, location, &out.partitioned_by, encoding).await;
    }
    let options = DataFrameWriteOptions::new()
        .with_single_file_output(false)
        .with_partition_by(out.partitioned_by.clone());
    let counts = write_with_datafusion(df, location, out, options).await?;
    let mut rows = 0;
    for b in counts {
        if let Some(c) = b.column(0).as_any().downcast_ref::<UInt64Array>() {
            rows += c.iter().flatten().sum::<u64>();
        }
    }
    Ok(rows)
}

/// Writes the rows to `target` (a folder, or one file) with DataFusion's writer for the format.
async fn write_with_datafusion(
    df: DataFrame,
    target: &str,
    out: &Output,
    options: DataFrameWriteOptions,
) -> Result<Vec<datafusion::arrow::array::RecordBatch>> {
    Ok(match out.format.as_str() {
        "PARQUET" => {
            let mut p = TableParquetOptions::default();
            // Athena's CTAS default for Parquet is GZIP.
            p.global.compression = Some(
                match out.compression.as_deref().unwrap_or("GZIP") {
                    "GZIP" => "gzip(6)",
                    "SNAPPY" => "snappy",
                    "ZSTD" => "zstd(3)",
                    "LZ4" => "lz4_raw",
                    "NONE" | "UNCOMPRESSED" => "uncompressed",
                    other => return Err(plan_error(format!("Unsupported Parquet compression {other}"))),
                }
                .into(),
            );
            df.write_parquet(target, options, Some(p)).await?
        }
        "TEXTFILE" => {
            let csv = CsvOptions {
                has_header: Some(false),
                delimiter: out.delimiter,
                quote_style: CsvQuoteStyle::Never,
                compression: text_compression(out.compression.as_deref())?,
                timestamp_format: Some("%Y-%m-%d %H:%M:%S%.3f".into()),
                ..Default::default()
            };
            df.write_csv(target, options, Some(csv)).await?
        }
        _ => {
            let json = JsonOptions {
                compression: text_compression(out.compression.as_deref())?,
                ..Default::default()
            };
            df.write_json(target, options, Some(json)).await?
        }
    })
}

/// The file extension of one bucket's file: the format's, then the compression's for text.
fn extension(out: &Output) -> Result<String> {
    if let Some(encoding) = Encoding::of(&out.format, out.compression.as_deref())? {
        return Ok(encoding.extension().to_owned());
    }
    let text = |base: &str| -> Result<String> {
        Ok(match text_compression(out.compression.as_deref())? {
            CompressionTypeVariant::GZIP => format!("{base}.gz"),
            CompressionTypeVariant::BZIP2 => format!("{base}.bz2"),
            CompressionTypeVariant::ZSTD => format!("{base}.zst"),
            _ => base.to_owned(),
        })
    };
    match out.format.as_str() {
        "PARQUET" => Ok("parquet".into()),
        "TEXTFILE" => text("txt"),
        _ => text("json"),
    }
}

/// A bucketed table's files: the rows collected, split by partition and then by Hive bucket,
/// each bucket of each partition one file named for its bucket.
async fn write_buckets(
    ctx: &SessionContext,
    df: DataFrame,
    location: &str,
    out: &Output,
    b: &Bucketing,
) -> Result<u64> {
    let Some(all) = encode::collected(df).await? else {
        return Ok(0);
    };
    let stem = lakebox_core::ids::random_hex(32);
    let extension = extension(out)?;
    let encoding = Encoding::of(&out.format, out.compression.as_deref())?;
    let (store, prefix) = encode::store_for(ctx.runtime_env().as_ref(), location)?;
    for (folder, rows) in encode::split(&all, &out.partitioned_by)? {
        let columns = b
            .columns
            .iter()
            .map(|(c, _)| {
                rows.column_by_name(c)
                    .cloned()
                    .ok_or_else(|| plan_error(format!("Bucket column {c} is not among the query's columns")))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut by_bucket: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        for (row, id) in b.of_rows(&columns)?.into_iter().enumerate() {
            by_bucket.entry(id).or_default().push(row as u32);
        }
        for (id, picked) in by_bucket {
            let part = take_record_batch(&rows, &UInt32Array::from(picked))?;
            let name = format!("{folder}{}", buckets::file_name(&stem, id, &extension));
            match encoding {
                Some(e) => {
                    let key = object_store::path::Path::from(format!("{prefix}{name}"));
                    store.put(&key, e.file(&part)?.into()).await?;
                }
                None => {
                    let options = DataFrameWriteOptions::new().with_single_file_output(true);
                    let file = format!("{}{name}", with_slash(location));
                    write_with_datafusion(ctx.read_batch(part)?, &file, out, options).await?;
                }
            }
        }
    }
    Ok(all.num_rows() as u64)
}

/// What a CTAS, INSERT INTO or UNLOAD wrote: its rows, and the files (`s3://` URLs with their
/// sizes) for the query's data manifest.
#[derive(Debug, Default)]
pub struct Written {
    pub rows: u64,
    pub files: Vec<(String, u64)>,
}

/// The objects under `location` (a folder), as `s3://` URLs with their sizes.
fn files_under(sessions: &Sessions, location: &str) -> Result<std::collections::BTreeMap<String, u64>> {
    let (bucket, prefix) =
        split_s3_url(location).ok_or_else(|| plan_error(format!("{location} is not an s3:// location")))?;
    let mut out = std::collections::BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = sessions
            .lake
            .list(bucket, prefix, after.as_deref(), 1000)
            .map_err(|e| plan_error(format!("Cannot list {location}: {}", e.message)))?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        // Folder markers (`…/`) are not data files.
        out.extend(
            page.into_iter()
                .filter(|o| !o.key.ends_with('/'))
                .map(|o| (format!("s3://{bucket}/{}", o.key), o.size)),
        );
    }
    Ok(out)
}

/// The files `location` holds now that it did not hold `before`.
fn written_since(
    sessions: &Sessions,
    location: &str,
    before: &std::collections::BTreeMap<String, u64>,
) -> Result<Vec<(String, u64)>> {
    Ok(files_under(sessions, location)?
        .into_iter()
        .filter(|(url, _)| !before.contains_key(url))
        .collect())
}

/// The files under a location that was empty before the statement: all of them are its own.
fn written_into_empty(sessions: &Sessions, location: &str) -> Result<Vec<(String, u64)>> {
    Ok(files_under(sessions, location)?.into_iter().collect())
}

/// Athena refuses to write where data already is.
async fn ensure_empty(sessions: &Sessions, location: &str) -> Result<()> {
    let (bucket, prefix) =
        split_s3_url(location).ok_or_else(|| plan_error(format!("{location} is not an s3:// location")))?;
    let found = sessions
        .lake
        .list(bucket, prefix, None, 1)
        .map_err(|e| plan_error(format!("Cannot list {location}: {}", e.message)))?;
    if !found.is_empty() {
        return Err(plan_error(format!(
            "HIVE_PATH_ALREADY_EXISTS: Target directory for table or UNLOAD already exists: {location}. You may need to manually clean the data at location '{location}' before retrying. Athena will not delete data in your account."
        )));
    }
    Ok(())
}

fn name_parts(name: &ObjectName, database: &str) -> Result<Name> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.to_string().trim_matches('"').to_lowercase())
        .collect();
    match parts.as_slice() {
        [t] => Ok(Name {
            database: Some(database.to_lowercase()),
            name: t.clone(),
        }),
        [d, t] => Ok(Name {
            database: Some(d.clone()),
            name: t.clone(),
        }),
        [c, d, t] if c == CATALOG => Ok(Name {
            database: Some(d.clone()),
            name: t.clone(),
        }),
        _ => Err(plan_error(format!("Invalid table name {name}"))),
    }
}

async fn plan_query(sessions: &Sessions, ctx: &SessionContext, query: &Query) -> Result<DataFrame> {
    let plan = sessions
        .plan(
            ctx,
            DFStatement::Statement(Box::new(Statement::Query(Box::new(query.clone())))),
        )
        .await?;
    ctx.execute_logical_plan(plan).await
}

async fn ddl(sessions: &Sessions, database: &str, statement: lakebox_athena_ddl::Statement) -> Result<()> {
    lakebox_athena_ddl::execute(
        &sessions.catalog,
        &sessions.lake,
        &sessions.scope,
        database,
        statement,
    )
    .await
    .map(|_| ())
    .map_err(|e| plan_error(e.message))
}

/// Adds the `key=value/` folders just written as partitions, as MSCK REPAIR TABLE does.
async fn register_partitions(sessions: &Sessions, db: &str, table: Name, out: &Output) -> Result<()> {
    if out.partitioned_by.is_empty() {
        return Ok(());
    }
    ddl(sessions, db, lakebox_athena_ddl::Statement::RepairTable { table }).await
}

/// CREATE TABLE … [WITH (…)] AS SELECT … [WITH NO DATA].
pub async fn create_table_as(
    sessions: &Sessions,
    ctx: &SessionContext,
    database: &str,
    ct: &CreateTable,
    no_data: bool,
    run: &RunOptions,
) -> Result<Written> {
    let name = name_parts(&ct.name, database)?;
    let db = name.database.clone().unwrap_or_default();
    if sessions
        .catalog
        .get_table(&sessions.scope, &db, &name.name)
        .is_ok()
    {
        return Err(plan_error(format!("Table {db}.{} already exists", name.name)));
    }
    let options = match &ct.table_options {
        CreateTableOptions::With(o) => o.clone(),
        CreateTableOptions::None => Vec::new(),
        other => return Err(plan_error(format!("Unsupported table options {other}"))),
    };
    let props = properties(&options)?;
    let out = output(&props)?;
    let location = with_slash(
        &props
            .get("external_location")
            .and_then(|v| v.first().cloned())
            .or_else(|| run.default_table_location.clone())
            .ok_or_else(|| plan_error("CTAS needs external_location or a query output location"))?,
    );
    let query = ct
        .query
        .as_ref()
        .ok_or_else(|| plan_error("CTAS without a query"))?;
    let df = plan_query(sessions, ctx, query).await?;
    let fields: Vec<_> = df.schema().fields().iter().cloned().collect();
    for p in &out.partitioned_by {
        if !fields.iter().any(|f| f.name() == p) {
            return Err(plan_error(format!(
                "Partition column {p} is not in the query's columns"
            )));
        }
    }
    for (c, _) in out.bucketing.iter().flat_map(|b| &b.columns) {
        if !fields.iter().any(|f| f.name() == c) || out.partitioned_by.contains(c) {
            return Err(plan_error(format!(
                "Bucket column {c} must be one of the query's columns and not a partition column"
            )));
        }
    }
    ensure_empty(sessions, &location).await?;
    let rows = if no_data {
        0
    } else {
        write(ctx, df, &location, &out).await?
    };
    let files = written_into_empty(sessions, &location)?;
    let column = |f: &std::sync::Arc<datafusion::arrow::datatypes::Field>| -> Result<ColumnDef> {
        Ok(ColumnDef {
            name: f.name().to_lowercase(),
            type_: hive_type(f.data_type())?,
            comment: None,
        })
    };
    let columns = fields
        .iter()
        .filter(|f| !out.partitioned_by.contains(f.name()))
        .map(column)
        .collect::<Result<Vec<_>>>()?;
    let partitioned_by = out
        .partitioned_by
        .iter()
        .map(|p| column(fields.iter().find(|f| f.name() == p).expect("checked above")))
        .collect::<Result<Vec<_>>>()?;
    let mut table = lakebox_athena_ddl::CreateTable {
        external: true,
        name: name.clone(),
        columns,
        partitioned_by,
        location: Some(location.clone()),
        buckets: out.bucketing.as_ref().map(|b| lakebox_athena_ddl::Buckets {
            columns: b.columns.iter().map(|(c, _)| c.clone()).collect(),
            sorted: Vec::new(),
            count: b.count as i32,
        }),
        ..Default::default()
    };
    match out.format.as_str() {
        "PARQUET" => {
            table.stored_as = Some(StoredAs::Named("PARQUET".into()));
            table.properties.push((
                "parquet.compression".into(),
                out.compression.clone().unwrap_or_else(|| "GZIP".into()),
            ));
        }
        "ORC" | "AVRO" => table.stored_as = Some(StoredAs::Named(out.format.clone())),
        "TEXTFILE" => {
            table.stored_as = Some(StoredAs::Named("TEXTFILE".into()));
            table.row_format = Some(RowFormat::Delimited {
                fields: Some((out.delimiter as char).to_string()),
                escaped: None,
                collection: None,
                map_keys: None,
                lines: None,
                // Empty fields are NULL, as DataFusion writes NULL.
                null: Some(String::new()),
            });
        }
        _ => {
            table.row_format = Some(RowFormat::Serde {
                class: "org.openx.data.jsonserde.JsonSerDe".into(),
                properties: Vec::new(),
            });
        }
    }
    if let Some(c) = &out.compression {
        table.properties.push(("write.compression".into(), c.clone()));
    }
    ddl(
        sessions,
        &db,
        lakebox_athena_ddl::Statement::CreateTable(Box::new(table)),
    )
    .await?;
    register_partitions(sessions, &db, name, &out).await?;
    Ok(Written { rows, files })
}

/// The format a Glue table's files are written in.
fn table_output(t: &Table) -> Result<Output> {
    let (format, delimiter) = match TableFormat::of(t)? {
        TableFormat::Parquet { .. } => ("PARQUET", 1),
        TableFormat::Orc { .. } => ("ORC", 1),
        TableFormat::Avro => ("AVRO", 1),
        TableFormat::Json(_) => ("JSON", 1),
        TableFormat::Text(text) if text.quote.is_none() => ("TEXTFILE", text.delimiter),
        other => {
            return Err(DataFusionError::NotImplemented(format!(
                "INSERT INTO a {} table is not supported by Lakebox's Athena yet.",
                match other {
                    TableFormat::Regex(_) => "RegexSerDe",
                    _ => "OpenCSVSerde",
                }
            )));
        }
    };
    Ok(Output {
        format: format.into(),
        compression: t
            .parameter("write.compression")
            .or_else(|| t.parameter("parquet.compression"))
            .map(str::to_uppercase),
        delimiter,
        partitioned_by: t.partition_keys().iter().map(|k| k.name.to_lowercase()).collect(),
        bucketing: None,
    })
}

/// INSERT INTO table [(columns)] SELECT …: the query's columns by position, cast to the
/// table's types, written under the table's location.
pub async fn insert(
    sessions: &Sessions,
    ctx: &SessionContext,
    database: &str,
    ins: &Insert,
) -> Result<Written> {
    let TableObject::TableName(table_name) = &ins.table else {
        return Err(plan_error("INSERT INTO a table function is not supported"));
    };
    let name = name_parts(table_name, database)?;
    let db = name.database.clone().unwrap_or_default();
    let t = sessions
        .catalog
        .get_table(&sessions.scope, &db, &name.name)
        .map_err(|_| plan_error(format!("Table {db}.{} not found", name.name)))?;
    if t.is_view() {
        return Err(plan_error(format!(
            "{db}.{} is a view; INSERT INTO needs a table",
            name.name
        )));
    }
    if t.storage_descriptor
        .as_ref()
        .is_some_and(|sd| sd.number_of_buckets.unwrap_or(0) > 0)
    {
        return Err(DataFusionError::NotImplemented(format!(
            "Inserting into bucketed table {db}.{} is not supported (nor is it by Athena).",
            name.name
        )));
    }
    let source = ins
        .source
        .as_ref()
        .ok_or_else(|| plan_error("INSERT without a query"))?;
    let df = plan_query(sessions, ctx, source).await?;
    let target: Vec<(String, DataType)> = t
        .columns()
        .iter()
        .chain(t.partition_keys())
        .map(|c| {
            let ty = lakebox_glue::infer::types::parse(c.type_name())
                .map(|h| h.arrow_type())
                .map_err(|e| plan_error(format!("Unsupported column type {}: {e}", c.type_name())))?;
            Ok((c.name.to_lowercase(), ty))
        })
        .collect::<Result<_>>()?;
    let names: Vec<String> = if ins.columns.is_empty() {
        target.iter().map(|(n, _)| n.clone()).collect()
    } else {
        ins.columns.iter().map(|c| c.to_string().to_lowercase()).collect()
    };
    if names.len() != df.schema().fields().len() {
        return Err(plan_error(format!(
            "Insert query has {} columns, the table {db}.{} expects {}",
            df.schema().fields().len(),
            name.name,
            names.len()
        )));
    }
    let source_cols: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
    // Columns not listed are NULL, as in Trino.
    let exprs = target
        .iter()
        .map(|(n, ty)| match names.iter().position(|x| x == n) {
            Some(i) => cast(ident(&source_cols[i]), ty.clone()).alias(n),
            None => cast(
                datafusion::prelude::lit(datafusion::common::ScalarValue::Null),
                ty.clone(),
            )
            .alias(n),
        })
        .collect::<Vec<_>>();
    let df = df.select(exprs)?;
    let out = table_output(&t)?;
    let location = with_slash(
        t.location()
            .ok_or_else(|| plan_error("The table has no location"))?,
    );
    // The table's location holds earlier data: the statement's files are the new ones.
    let before = files_under(sessions, &location)?;
    let rows = write(ctx, df, &location, &out).await?;
    let files = written_since(sessions, &location, &before)?;
    register_partitions(sessions, &db, name, &out).await?;
    Ok(Written { rows, files })
}

/// UNLOAD (SELECT …) TO 's3://…' WITH (format = …, compression = …, partitioned_by = …).
pub async fn unload(
    sessions: &Sessions,
    ctx: &SessionContext,
    query: &Query,
    to: &str,
    with: &[SqlOption],
) -> Result<Written> {
    let props = properties(with)?;
    let out = output(&props)?;
    if out.bucketing.is_some() {
        return Err(plan_error("UNLOAD does not take bucketed_by or bucket_count"));
    }
    let location = with_slash(to);
    ensure_empty(sessions, &location).await?;
    let df = plan_query(sessions, ctx, query).await?;
    let rows = write(ctx, df, &location, &out).await?;
    let files = written_into_empty(sessions, &location)?;
    Ok(Written { rows, files })
}
