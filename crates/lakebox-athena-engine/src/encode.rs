//! Writing the formats DataFusion has no writer for — ORC (orc-rust) and Avro (arrow-avro) —
//! for CTAS, INSERT INTO and UNLOAD: the rows split Hive-style by the partition columns
//! (`col=value/` folders, `__HIVE_DEFAULT_PARTITION__` for NULL), one file per partition.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow_avro::compression::CompressionCodec;
use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use lakebox_athena_ddl::{HIVE_DEFAULT_PARTITION, escape_path};
use object_store::ObjectStoreExt;
use object_store::path::Path;

/// A format this module writes, with its codec.
#[derive(Clone, Copy, Debug)]
pub enum Encoding {
    Orc(Option<orc_rust::compression::CompressionType>),
    Avro(Option<CompressionCodec>),
}

impl Encoding {
    /// The encoding for Athena's `format` and compression names, if this module writes it.
    /// Athena's defaults: ZLIB for ORC, DEFLATE for Avro.
    pub fn of(format: &str, compression: Option<&str>) -> Result<Option<Encoding>> {
        use orc_rust::compression::CompressionType as Orc;
        let unsupported = |c: &str| DataFusionError::Plan(format!("Unsupported {format} compression {c}"));
        Ok(Some(match format {
            "ORC" => Encoding::Orc(match compression.unwrap_or("ZLIB") {
                "ZLIB" => Some(Orc::Zlib),
                "SNAPPY" => Some(Orc::Snappy),
                "ZSTD" => Some(Orc::Zstd),
                "LZ4" => Some(Orc::Lz4),
                "NONE" | "UNCOMPRESSED" => None,
                c => return Err(unsupported(c)),
            }),
            "AVRO" => Encoding::Avro(match compression.unwrap_or("DEFLATE") {
                "DEFLATE" => Some(CompressionCodec::Deflate),
                "SNAPPY" => Some(CompressionCodec::Snappy),
                "ZSTD" => Some(CompressionCodec::ZStandard),
                "BZIP2" => Some(CompressionCodec::Bzip2),
                "NONE" | "UNCOMPRESSED" => None,
                c => return Err(unsupported(c)),
            }),
            _ => return Ok(None),
        }))
    }

    pub fn extension(self) -> &'static str {
        match self {
            Encoding::Orc(_) => "orc",
            Encoding::Avro(_) => "avro",
        }
    }

    /// One file holding `batch`.
    pub fn file(self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let failed = |e: String| DataFusionError::Execution(format!("HIVE_WRITER_DATA_ERROR: {e}"));
        let batch = &without_views(batch)?;
        let mut out = Vec::new();
        match self {
            Encoding::Orc(codec) => {
                let mut builder = orc_rust::arrow_writer::ArrowWriterBuilder::new(&mut out, batch.schema());
                if let Some(c) = codec {
                    builder = builder.with_compression(c);
                }
                let mut w = builder.try_build().map_err(|e| failed(e.to_string()))?;
                w.write(batch).map_err(|e| failed(e.to_string()))?;
                w.close().map_err(|e| failed(e.to_string()))?;
            }
            Encoding::Avro(codec) => {
                let schema = batch.schema().as_ref().clone();
                let mut w = datafusion::arrow_avro::writer::WriterBuilder::new(schema)
                    .with_compression(codec)
                    .build::<_, datafusion::arrow_avro::writer::format::AvroOcfFormat>(&mut out)
                    .map_err(|e| failed(e.to_string()))?;
                w.write(batch).map_err(|e| failed(e.to_string()))?;
                w.finish().map_err(|e| failed(e.to_string()))?;
            }
        }
        Ok(out)
    }
}

/// `batch` with string and binary views (how Parquet strings are read) as plain strings and
/// binaries, which the ORC and Avro writers take.
fn without_views(batch: &RecordBatch) -> Result<RecordBatch> {
    let plain = |t: &DataType| match t {
        DataType::Utf8View => Some(DataType::Utf8),
        DataType::BinaryView => Some(DataType::Binary),
        _ => None,
    };
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| plain(f.data_type()).is_some())
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        match plain(f.data_type()) {
            Some(t) => {
                columns.push(cast(c, &t)?);
                fields.push(f.as_ref().clone().with_data_type(t));
            }
            None => {
                columns.push(c.clone());
                fields.push(f.as_ref().clone());
            }
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// Writes the query's rows under `location` (an `s3://bucket/prefix/` folder); the rows written.
pub async fn write(
    df: DataFrame,
    location: &str,
    partitioned_by: &[String],
    encoding: Encoding,
) -> Result<u64> {
    let ctx = df.task_ctx();
    let Some(all) = collected(df).await? else {
        return Ok(0);
    };
    let (store, prefix) = store_for(ctx.runtime_env().as_ref(), location)?;
    let name = format!("{}.{}", lakebox_core::ids::random_hex(32), encoding.extension());
    for (folder, batch) in split(&all, partitioned_by)? {
        let body = encoding.file(&batch)?;
        let key = format!("{prefix}{folder}{name}");
        store.put(&Path::from(key), body.into()).await?;
    }
    Ok(all.num_rows() as u64)
}

/// The query's rows in one batch, or `None` when there are none.
pub(crate) async fn collected(df: DataFrame) -> Result<Option<RecordBatch>> {
    let batches = df.collect().await?;
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let all = concat_batches(&first.schema(), &batches)?;
    Ok((all.num_rows() > 0).then_some(all))
}

/// The store of an `s3://bucket/prefix/` location and the prefix its keys start with
/// (`prefix/`, no leading slash).
pub(crate) fn store_for(
    runtime: &datafusion::execution::runtime_env::RuntimeEnv,
    location: &str,
) -> Result<(Arc<dyn object_store::ObjectStore>, String)> {
    let (bucket, prefix) = lakebox_service::lake::split_s3_url(location)
        .ok_or_else(|| DataFusionError::Plan(format!("{location} is not an s3:// location")))?;
    let store = runtime.object_store(ObjectStoreUrl::parse(format!("s3://{bucket}"))?)?;
    Ok((
        store,
        crate::table::with_slash(prefix)
            .trim_start_matches('/')
            .to_owned(),
    ))
}

/// The rows grouped by their partition values, each group as its `a=1/b=x/` folder and a batch
/// without the partition columns.
pub(crate) fn split(all: &RecordBatch, partitioned_by: &[String]) -> Result<Vec<(String, RecordBatch)>> {
    let schema = all.schema();
    let keep: Vec<usize> = (0..schema.fields().len())
        .filter(|i| !partitioned_by.contains(schema.field(*i).name()))
        .collect();
    let data = all.project(&keep)?;
    if partitioned_by.is_empty() {
        return Ok(vec![(String::new(), data)]);
    }
    let values = partitioned_by
        .iter()
        .map(|p| {
            let column = all.column_by_name(p).ok_or_else(|| {
                DataFusionError::Plan(format!("Partition column {p} is not among the query's columns"))
            })?;
            Ok(cast(column, &DataType::Utf8)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for row in 0..all.num_rows() {
        let mut folder = String::new();
        for (name, v) in partitioned_by.iter().zip(&values) {
            let text = v
                .as_any()
                .downcast_ref::<datafusion::arrow::array::StringArray>()
                .expect("cast to Utf8");
            let value = if text.is_null(row) {
                HIVE_DEFAULT_PARTITION
            } else {
                text.value(row)
            };
            folder.push_str(&format!("{name}={}/", escape_path(value)));
        }
        groups.entry(folder).or_default().push(row as u32);
    }
    groups
        .into_iter()
        .map(|(folder, rows)| Ok((folder, take_record_batch(&data, &UInt32Array::from(rows))?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringViewArray};
    use datafusion::arrow::datatypes::Field;

    fn batch() -> RecordBatch {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, true),
                // A string view, as Parquet strings are read, which the writers do not take.
                Field::new("day", DataType::Utf8View, true),
            ])),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringViewArray::from(vec![Some("a/b"), None, Some("a/b")])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn rows_split_into_hive_partition_folders() {
        let groups = split(&batch(), &["day".to_string()]).unwrap();
        let folders: Vec<&str> = groups.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(folders, ["day=__HIVE_DEFAULT_PARTITION__/", "day=a%2Fb/"]);
        assert_eq!(groups[1].1.num_rows(), 2);
        assert_eq!(groups[1].1.num_columns(), 1);
    }

    #[test]
    fn orc_and_avro_files_read_back() {
        let b = batch();
        let orc = Encoding::of("ORC", None).unwrap().unwrap().file(&b).unwrap();
        let back = orc_rust::arrow_reader::ArrowReaderBuilder::try_new(bytes::Bytes::from(orc))
            .unwrap()
            .build()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(back.num_rows(), 3);
        let avro = Encoding::of("AVRO", Some("SNAPPY"))
            .unwrap()
            .unwrap()
            .file(&b)
            .unwrap();
        assert!(avro.starts_with(b"Obj\x01"));
        assert!(Encoding::of("ORC", Some("BROTLI")).is_err());
        assert!(Encoding::of("PARQUET", None).unwrap().is_none());
    }
}
