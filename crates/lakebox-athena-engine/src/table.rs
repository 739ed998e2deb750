//! A Glue table as DataFusion reads it, the way Athena does: the files under the table's
//! location (recursively, skipping names that start with `_` or `.`), or, for a partitioned
//! table, the files under each partition's own location as registered in Glue (by a crawler,
//! ALTER TABLE ADD PARTITION or MSCK REPAIR TABLE), with the partition values as columns.
//! Partitions are pruned with the query's filters before anything is listed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, BooleanArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{FieldRef, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::GetExt;
use datafusion::common::{DFSchema, ScalarValue, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::listing::helpers::expr_applicable_for_cols;
use datafusion::datasource::listing::{ListingTableUrl, PartitionedFile};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use futures::{StreamExt, TryStreamExt};
use lakebox_athena_ddl::HIVE_DEFAULT_PARTITION;
use lakebox_glue::model::Table;
use lakebox_glue::{Catalog, Scope};
use object_store::ObjectStoreExt;
use object_store::memory::InMemory;

use crate::buckets::{self, Bucketing};
use crate::codecs::TextCodec;
use crate::format::TableFormat;
use crate::{codecs, columns, projection};

/// The compression of a text file, from its extension as Athena judges it.
fn compression_of(path: &str) -> Result<FileCompressionType> {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    Ok(match ext.as_str() {
        "gz" | "gzip" => FileCompressionType::GZIP,
        "bz2" => FileCompressionType::BZIP2,
        "zst" | "zstd" => FileCompressionType::ZSTD,
        "xz" => FileCompressionType::XZ,
        "lzo" => {
            return Err(DataFusionError::NotImplemented(format!(
                "{path}: LZO-compressed text files are not supported by Lakebox's Athena yet (gzip, bzip2, zstd, xz, deflate, snappy and lz4 are)."
            )));
        }
        _ => FileCompressionType::UNCOMPRESSED,
    })
}

/// A store of this query's own for files prepared while planning (decompressed, keys
/// renamed), registered with its runtime (which lives as long as the query) under a name no
/// other query uses.
fn prepared_store(state: &dyn Session) -> (ListingTableUrl, Arc<InMemory>) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let url = ListingTableUrl::parse(format!("lakebox-prepared://q{n}/")).expect("a valid URL");
    let memory = Arc::new(InMemory::new());
    state
        .runtime_env()
        .register_object_store(url.as_ref(), memory.clone());
    (url, memory)
}

pub struct GlueTable {
    table: Table,
    /// The table's format, or why it cannot be read (reported when a query scans it, so the
    /// table can still be listed and described).
    format: std::result::Result<TableFormat, Arc<DataFusionError>>,
    catalog: Arc<Catalog>,
    scope: Scope,
    file_schema: SchemaRef,
    partition_fields: Vec<FieldRef>,
    schema: SchemaRef,
}

impl std::fmt::Debug for GlueTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GlueTable({}.{})", self.table.database(), self.table.name)
    }
}

/// A location as a folder: ending with `/`.
pub(crate) fn with_slash(s: &str) -> String {
    if s.ends_with('/') {
        s.to_owned()
    } else {
        format!("{s}/")
    }
}

impl GlueTable {
    pub fn new(
        table: Table,
        format: Result<TableFormat>,
        catalog: Arc<Catalog>,
        scope: Scope,
        file_schema: SchemaRef,
        partition_fields: Vec<FieldRef>,
    ) -> Self {
        let mut fields: Vec<FieldRef> = file_schema.fields().iter().cloned().collect();
        fields.extend(partition_fields.iter().cloned());
        GlueTable {
            table,
            format: format.map_err(Arc::new),
            catalog,
            scope,
            file_schema,
            partition_fields,
            schema: Arc::new(Schema::new(fields)),
        }
    }

    /// The buckets a query's filters confine a bucketed table's rows to (Hive bucketing, the
    /// default; a table marked `bucketing_format` = `spark` is read whole).
    fn wanted_buckets(&self, filters: &[Expr]) -> Option<Vec<u32>> {
        let sd = self.table.storage_descriptor.as_ref()?;
        let columns = sd.bucket_columns.as_ref().filter(|c| !c.is_empty())?;
        let buckets = sd.number_of_buckets.unwrap_or(0);
        if buckets <= 0
            || self
                .table
                .parameter("bucketing_format")
                .is_some_and(|f| !f.eq_ignore_ascii_case("hive"))
        {
            return None;
        }
        let mut named = Vec::new();
        let mut types = Vec::new();
        for c in columns {
            let name = c.to_lowercase();
            let column = self
                .table
                .columns()
                .iter()
                .find(|t| t.name.eq_ignore_ascii_case(c))?;
            let varchar = column
                .type_name()
                .trim()
                .to_ascii_lowercase()
                .starts_with("varchar");
            types.push(self.file_schema.field_with_name(&name).ok()?.data_type().clone());
            named.push((name, varchar));
        }
        let bucketing = Bucketing {
            columns: named,
            count: buckets as u32,
        };
        bucketing.wanted(filters, &types)
    }

    fn partition_names(&self) -> Vec<&str> {
        self.partition_fields.iter().map(|f| f.name().as_str()).collect()
    }

    /// The locations to read, each with its partition values: the table's own location, or the
    /// Glue partitions that pass the filters on partition columns.
    fn locations(&self, state: &dyn Session, filters: &[Expr]) -> Result<Vec<(String, Vec<ScalarValue>)>> {
        if self.partition_fields.is_empty() {
            let location = self.table.location().ok_or_else(|| {
                DataFusionError::Plan(format!("Table {} has no location.", self.table.name))
            })?;
            return Ok(vec![(with_slash(location), Vec::new())]);
        }
        // Projected partitions are computed from the table properties; the others are Glue's.
        let partitions: Vec<(String, Vec<String>)> = if projection::enabled(&self.table) {
            projection::partitions(&self.table, filters)?
        } else {
            self.catalog
                .list_partitions(&self.scope, self.table.database(), &self.table.name, None)
                .map_err(|e| DataFusionError::External(e.message.into()))?
                .1
                .into_iter()
                .filter_map(|p| Some((p.location()?.to_owned(), p.values?)))
                .collect()
        };
        let mut rows = Vec::with_capacity(partitions.len());
        for (location, partition_values) in &partitions {
            let values = self
                .partition_fields
                .iter()
                .zip(partition_values)
                .map(|(f, v)| {
                    if v == HIVE_DEFAULT_PARTITION {
                        return ScalarValue::try_from(f.data_type());
                    }
                    ScalarValue::try_from_string(v.clone(), f.data_type())
                })
                .collect::<Result<Vec<_>>>()?;
            rows.push((with_slash(location), values));
        }
        let names = self.partition_names();
        let pruning: Vec<&Expr> = filters
            .iter()
            .filter(|f| expr_applicable_for_cols(&names, f))
            .collect();
        if pruning.is_empty() || rows.is_empty() {
            return Ok(rows);
        }
        // Evaluate the partition filters over one row per partition.
        let schema = Arc::new(Schema::new(self.partition_fields.clone()));
        let columns = (0..self.partition_fields.len())
            .map(|i| ScalarValue::iter_to_array(rows.iter().map(|(_, v)| v[i].clone())))
            .collect::<Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let df_schema = DFSchema::try_from(schema)?;
        let mut keep = vec![true; rows.len()];
        for f in pruning {
            let expr = create_physical_expr(
                f,
                &df_schema,
                state.execution_props(),
                &PhysicalPlanningContext::default(),
            )?;
            let result = expr.evaluate(&batch)?.into_array(batch.num_rows())?;
            let Some(mask) = result.as_any().downcast_ref::<BooleanArray>() else {
                continue;
            };
            for (i, k) in keep.iter_mut().enumerate() {
                *k &= mask.is_valid(i) && mask.value(i);
            }
        }
        Ok(rows
            .into_iter()
            .zip(keep)
            .filter_map(|(r, k)| k.then_some(r))
            .collect())
    }
}

/// Whether Athena reads the object at `relative` (its key below the location): not a folder
/// marker, and no path segment hidden with a leading `_` or `.`.
fn is_data_file(relative: &str, size: u64) -> bool {
    !(relative.is_empty()
        || (relative.ends_with('/') && size == 0)
        || relative.ends_with("$folder$")
        || relative
            .split('/')
            .any(|s| s.starts_with('_') || s.starts_with('.')))
}

impl GlueTable {
    /// Files DataFusion has no reader for (RegexSerDe, ORC): each read whole, decoded into
    /// batches of the file columns, given its partition values, and served from memory.
    async fn scan_decoded(
        &self,
        state: &dyn Session,
        format: &TableFormat,
        groups: Vec<(ListingTableUrl, FileCompressionType, Vec<PartitionedFile>)>,
        projection: Option<&Vec<usize>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut batches = Vec::new();
        for (url, compression, files) in groups {
            let store = state.runtime_env().object_store(url.object_store())?;
            for f in files {
                let data = store.get(&f.object_meta.location).await?.bytes().await?;
                let path = f.object_meta.location.as_ref();
                for batch in format.decode(path, data, compression, &self.file_schema)? {
                    let rows = batch.num_rows();
                    let mut columns = batch.columns().to_vec();
                    for v in &f.partition_values {
                        columns.push(v.to_array_of_size(rows)?);
                    }
                    let options = RecordBatchOptions::new().with_row_count(Some(rows));
                    batches.push(RecordBatch::try_new_with_options(
                        self.schema.clone(),
                        columns,
                        &options,
                    )?);
                }
            }
        }
        let exec = datafusion::datasource::memory::MemorySourceConfig::try_new_exec(
            &[batches],
            self.schema.clone(),
            projection.cloned(),
        )?;
        Ok(exec)
    }
}

#[async_trait]
impl TableProvider for GlueTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Partition filters prune partitions and file filters go to the Parquet reader, but
        // DataFusion still applies both to the rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Text files are grouped by compression (one reader each); columnar files carry theirs.
        let format = self
            .format
            .as_ref()
            .map_err(|e| DataFusionError::Shared(e.clone()))?;
        let parquet = matches!(format, TableFormat::Parquet { .. });
        let by_position = matches!(format, TableFormat::Parquet { by_position: true });
        // JSON whose keys are renamed to the columns (see `jsonkeys`).
        let json_keys = match &format {
            TableFormat::Json(keys) => Some(keys),
            _ => None,
        };
        let mut by_store: BTreeMap<
            (String, String),
            (ListingTableUrl, FileCompressionType, Vec<PartitionedFile>),
        > = BTreeMap::new();
        let mut prepared: Option<(ListingTableUrl, Arc<InMemory>)> = None;
        let buckets = self.wanted_buckets(filters);
        for (location, values) in self.locations(state, filters)? {
            let url = ListingTableUrl::parse(&location)?;
            let store = state.runtime_env().object_store(url.object_store())?;
            let prefix = url.prefix().clone();
            let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
            for meta in objects {
                let relative = meta
                    .location
                    .as_ref()
                    .strip_prefix(prefix.as_ref())
                    .unwrap_or(meta.location.as_ref())
                    .trim_start_matches('/');
                if !is_data_file(relative, meta.size) {
                    continue;
                }
                // A bucket file the filters rule out (files not named for a bucket are read).
                if let (Some(wanted), Some(b)) = (&buckets, buckets::of_file(relative))
                    && !wanted.contains(&b)
                {
                    continue;
                }
                let path = meta.location.as_ref();
                let compression = if format.self_compressed() {
                    FileCompressionType::UNCOMPRESSED
                } else {
                    compression_of(path)?
                };
                let codec = (!format.self_compressed()).then(|| TextCodec::of(path)).flatten();
                if codec.is_some() || json_keys.is_some() {
                    // Snappy and LZ4 text, and JSON whose keys are renamed: prepared now, as
                    // plain text, in this query's own store.
                    let (url, memory) = prepared.get_or_insert_with(|| prepared_store(state));
                    let data = store.get(&meta.location).await?.bytes().await?;
                    let mut plain = match codec {
                        Some(codec) => codec.decompress(path, &data)?,
                        None => codecs::decompress(compression, path, data)?,
                    };
                    if let Some(keys) = json_keys {
                        plain = keys.rewrite(&plain, &self.file_schema);
                    }
                    memory.put(&meta.location, plain.into()).await?;
                    let meta = memory.head(&meta.location).await?;
                    by_store
                        .entry((url.object_store().as_str().to_owned(), String::new()))
                        .or_insert_with(|| (url.clone(), FileCompressionType::UNCOMPRESSED, Vec::new()))
                        .2
                        .push(PartitionedFile::new_from_meta(meta).with_partition_values(values.clone()));
                    continue;
                }
                let key = (url.object_store().as_str().to_owned(), compression.get_ext());
                by_store
                    .entry(key)
                    .or_insert_with(|| (url.clone(), compression, Vec::new()))
                    .2
                    .push(PartitionedFile::new_from_meta(meta).with_partition_values(values.clone()));
            }
        }
        if format.decoded() {
            let groups = by_store.into_values().collect();
            return self.scan_decoded(state, format, groups, projection).await;
        }
        if parquet {
            // Footer statistics let DataFusion answer count(*) and min/max from metadata and
            // skip files whose ranges a filter excludes; the footers stay cached for the scan.
            for (url, _, files) in by_store.values_mut() {
                let store = state.runtime_env().object_store(url.object_store())?;
                let (store, schema) = (&store, &self.file_schema);
                let metas: Vec<_> = files.iter().map(|f| f.object_meta.clone()).collect();
                let stats: Vec<Statistics> = futures::stream::iter(metas)
                    .map(|m| async move {
                        columns::parquet_statistics(state, store.as_ref(), schema, &m, by_position).await
                    })
                    .buffered(16)
                    .try_collect()
                    .await?;
                for (f, s) in files.iter_mut().zip(stats) {
                    *f = std::mem::replace(f, PartitionedFile::new("", 0)).with_statistics(Arc::new(s));
                }
            }
        }
        let groups_wanted = state.config().target_partitions().max(1);
        let mut plans = Vec::new();
        for (_, (url, compression, files)) in by_store {
            let Some(reader) = format.reader(compression) else {
                continue;
            };
            if files.is_empty() {
                continue;
            }
            let statistics = if parquet {
                Some(Statistics::try_merge_iter(
                    files.iter().filter_map(|f| f.statistics.as_deref()),
                    &self.schema,
                )?)
            } else {
                None
            };
            let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups_wanted.min(files.len())];
            let n = groups.len();
            for (i, f) in files.into_iter().enumerate() {
                groups[i % n].push(f);
            }
            let source = reader.file_source(
                TableSchema::builder(self.file_schema.clone())
                    .with_table_partition_cols(self.partition_fields.clone())
                    .build(),
            );
            let mut config = FileScanConfigBuilder::new(url.object_store(), source)
                .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .with_expr_adapter(Some(Arc::new(columns::FileColumns { by_position })));
            if let Some(s) = statistics {
                config = config.with_statistics(s);
            }
            let config = config.build();
            plans.push(reader.create_physical_plan(state, config).await?);
        }
        if plans.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        UnionExec::try_new(plans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_files_and_folder_markers_are_skipped() {
        assert!(is_data_file("part-0.parquet", 10));
        assert!(is_data_file("sub/part-0.parquet", 10));
        assert!(!is_data_file("_SUCCESS", 0));
        assert!(!is_data_file(".hidden/x.csv", 5));
        assert!(!is_data_file("_temporary/0/x.csv", 5));
        assert!(!is_data_file("folder/", 0));
        assert!(!is_data_file("x_$folder$", 0));
    }
}
