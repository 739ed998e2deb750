//! A Glue table as DataFusion reads it, the way Athena does: the files under the table's
//! location (recursively, skipping names that start with `_` or `.`), or, for a partitioned
//! table, the files under each partition's own location as registered in Glue (by a crawler,
//! ALTER TABLE ADD PARTITION or MSCK REPAIR TABLE), with the partition values as columns.
//! Partitions are pruned with the query's filters before anything is listed.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::io::Read;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::{FieldRef, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::GetExt;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::FileFormat;
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
use futures::TryStreamExt;
use lakebox_glue::model::Table;
use lakebox_glue::{Catalog, Scope};
use object_store::ObjectStoreExt;

use crate::projection;

/// The format a table's files are read with, given their compression.
pub type FormatFn = fn(&Table, FileCompressionType) -> Result<Arc<dyn FileFormat>>;

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
        "snappy" | "lz4" | "deflate" | "lzo" => {
            return Err(DataFusionError::NotImplemented(format!(
                "{path}: {ext}-compressed text files are not supported by Lakebox's Athena yet (gzip, bzip2, zstd and xz are)."
            )));
        }
        _ => FileCompressionType::UNCOMPRESSED,
    })
}

/// The `input.regex` of a RegexSerDe table, anchored as Hive matches it (the whole line) and
/// case-insensitive when `input.regex.case.insensitive` says so.
fn regex_serde(t: &Table) -> Option<String> {
    let sd = t.storage_descriptor.as_ref()?;
    let library = sd.serde_info.as_ref()?.serialization_library.as_deref()?;
    if !library.ends_with("RegexSerDe") {
        return None;
    }
    let pattern = sd.serde_parameter("input.regex")?;
    let flags = if sd
        .serde_parameter("input.regex.case.insensitive")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        "(?i)"
    } else {
        ""
    };
    Some(format!("{flags}^(?:{pattern})$"))
}

/// Hive's name for a NULL partition value.
const HIVE_NULL: &str = "__HIVE_DEFAULT_PARTITION__";

pub struct GlueTable {
    table: Table,
    catalog: Arc<Catalog>,
    scope: Scope,
    format: FormatFn,
    file_schema: SchemaRef,
    partition_fields: Vec<FieldRef>,
    schema: SchemaRef,
}

impl std::fmt::Debug for GlueTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GlueTable({}.{})", self.table.database_name, self.table.name)
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
        catalog: Arc<Catalog>,
        scope: Scope,
        format: FormatFn,
        file_schema: SchemaRef,
        partition_fields: Vec<FieldRef>,
    ) -> Self {
        let mut fields: Vec<FieldRef> = file_schema.fields().iter().cloned().collect();
        fields.extend(partition_fields.iter().cloned());
        GlueTable {
            table,
            catalog,
            scope,
            format,
            file_schema,
            partition_fields,
            schema: Arc::new(Schema::new(fields)),
        }
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
                .list_partitions(&self.scope, &self.table.database_name, &self.table.name, None)
                .map_err(|e| DataFusionError::External(e.message.into()))?
                .1
                .into_iter()
                .filter_map(|p| Some((p.location()?.to_owned(), p.values)))
                .collect()
        };
        let mut rows = Vec::with_capacity(partitions.len());
        for (location, partition_values) in &partitions {
            let values = self
                .partition_fields
                .iter()
                .zip(partition_values)
                .map(|(f, v)| {
                    if v == HIVE_NULL {
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
    /// RegexSerDe: each line of each file matched against the pattern, group N filling column
    /// N (a line that does not match is all NULL, missing groups are NULL, values that do not
    /// convert to the column's type are NULL), as Hive reads it.
    async fn scan_regex(
        &self,
        state: &dyn Session,
        pattern: &str,
        groups: Vec<(ListingTableUrl, FileCompressionType, Vec<PartitionedFile>)>,
        projection: Option<&Vec<usize>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let re = fancy_regex::Regex::new(pattern)
            .map_err(|e| DataFusionError::Plan(format!("HIVE_BAD_DATA: invalid input.regex: {e}")))?;
        let columns = self.file_schema.fields().len();
        let mut text: Vec<Vec<Option<String>>> = vec![Vec::new(); columns];
        let mut partition_values: Vec<Vec<ScalarValue>> = vec![Vec::new(); self.partition_fields.len()];
        for (url, compression, files) in groups {
            let store = state.runtime_env().object_store(url.object_store())?;
            for f in files {
                let data = store.get(&f.object_meta.location).await?.bytes().await?;
                let mut body = String::new();
                compression
                    .convert_read(std::io::Cursor::new(data))?
                    .read_to_string(&mut body)
                    .map_err(|e| DataFusionError::Execution(format!("{}: {e}", f.object_meta.location)))?;
                for line in body.lines() {
                    let caps = re.captures(line).ok().flatten();
                    for (i, col) in text.iter_mut().enumerate() {
                        col.push(
                            caps.as_ref()
                                .and_then(|c| c.get(i + 1))
                                .map(|m| m.as_str().to_owned()),
                        );
                    }
                    for (i, v) in f.partition_values.iter().enumerate() {
                        partition_values[i].push(v.clone());
                    }
                }
            }
        }
        let rows = text.first().map_or(0, Vec::len);
        let mut arrays = Vec::with_capacity(self.schema.fields().len());
        for (values, field) in text.into_iter().zip(self.file_schema.fields()) {
            let strings: datafusion::arrow::array::ArrayRef =
                Arc::new(datafusion::arrow::array::StringArray::from(values));
            // Hive turns a value that is not a number (or date…) into NULL.
            let options = datafusion::arrow::compute::CastOptions {
                safe: true,
                ..Default::default()
            };
            arrays.push(datafusion::arrow::compute::cast_with_options(
                &strings,
                field.data_type(),
                &options,
            )?);
        }
        for (values, field) in partition_values.into_iter().zip(&self.partition_fields) {
            arrays.push(if values.is_empty() {
                datafusion::arrow::array::new_empty_array(field.data_type())
            } else {
                ScalarValue::iter_to_array(values)?
            });
        }
        let batch = if columns == 0 {
            RecordBatch::try_new_with_options(
                self.schema.clone(),
                arrays,
                &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
            )?
        } else {
            RecordBatch::try_new(self.schema.clone(), arrays)?
        };
        let exec = datafusion::datasource::memory::MemorySourceConfig::try_new_exec(
            &[vec![batch]],
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
        let regex = regex_serde(&self.table);
        let columnar = regex.is_none()
            && (self.format)(&self.table, FileCompressionType::UNCOMPRESSED)?.get_ext() == "parquet";
        let mut by_store: BTreeMap<
            (String, String),
            (ListingTableUrl, FileCompressionType, Vec<PartitionedFile>),
        > = BTreeMap::new();
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
                let compression = if columnar {
                    FileCompressionType::UNCOMPRESSED
                } else {
                    compression_of(meta.location.as_ref())?
                };
                let key = (url.object_store().as_str().to_owned(), compression.get_ext());
                by_store
                    .entry(key)
                    .or_insert_with(|| (url.clone(), compression, Vec::new()))
                    .2
                    .push(PartitionedFile::new_from_meta(meta).with_partition_values(values.clone()));
            }
        }
        if let Some(pattern) = regex {
            let groups = by_store.into_values().collect();
            return self.scan_regex(state, &pattern, groups, projection).await;
        }
        let groups_wanted = state.config().target_partitions().max(1);
        let mut plans = Vec::new();
        for (_, (url, compression, files)) in by_store {
            let format = (self.format)(&self.table, compression)?;
            if files.is_empty() {
                continue;
            }
            let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups_wanted.min(files.len())];
            let n = groups.len();
            for (i, f) in files.into_iter().enumerate() {
                groups[i % n].push(f);
            }
            let source = format.file_source(
                TableSchema::builder(self.file_schema.clone())
                    .with_table_partition_cols(self.partition_fields.clone())
                    .build(),
            );
            let config = FileScanConfigBuilder::new(url.object_store(), source)
                .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
            plans.push(format.create_physical_plan(state, config).await?);
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
