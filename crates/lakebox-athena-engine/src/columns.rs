//! Column names as Athena matches them: a table's columns are lowercase in Glue, while files
//! written by Spark, pandas or Firehose keep names such as `userId`. Athena (Hive's readers)
//! matches a table column to a file column regardless of case; DataFusion matches exactly and
//! would read such a column as NULL. This module resolves the names per file: the expression
//! adapter renames column references to the file's spelling before DataFusion's own adapter
//! does its casts, and file statistics are taken under the same spelling (otherwise a column
//! missing under its lowercase name would count as "all NULL" and could wrongly answer
//! `count(col)` or prune the file).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::Statistics;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::error::Result;
use datafusion::parquet::arrow::parquet_to_arrow_schema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};
use object_store::{ObjectMeta, ObjectStore};

/// For each table column absent from the file under its own name but present under another
/// case, the file's name. Empty when every name matches exactly (the common case).
fn file_spellings(table: &Schema, file: &Schema) -> HashMap<String, String> {
    table
        .fields()
        .iter()
        .filter(|f| file.field_with_name(f.name()).is_err())
        .filter_map(|f| {
            let found = file
                .fields()
                .iter()
                .find(|p| p.name().eq_ignore_ascii_case(f.name()))?;
            Some((f.name().clone(), found.name().clone()))
        })
        .collect()
}

/// `schema` with its fields renamed as `names` says.
fn renamed(schema: &Schema, names: &HashMap<String, String>) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match names.get(f.name()) {
            Some(n) => f.as_ref().clone().with_name(n),
            None => f.as_ref().clone(),
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// Builds [`CaseInsensitiveAdapter`]s: DataFusion's default adapter, after renaming.
#[derive(Debug)]
pub struct CaseInsensitiveColumns;

impl PhysicalExprAdapterFactory for CaseInsensitiveColumns {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> Result<Arc<dyn PhysicalExprAdapter>> {
        let names = file_spellings(&logical_file_schema, &physical_file_schema);
        if names.is_empty() {
            return DefaultPhysicalExprAdapterFactory.create(logical_file_schema, physical_file_schema);
        }
        let logical = Arc::new(renamed(&logical_file_schema, &names));
        Ok(Arc::new(CaseInsensitiveAdapter {
            inner: DefaultPhysicalExprAdapterFactory.create(logical, physical_file_schema)?,
            names,
        }))
    }
}

#[derive(Debug)]
struct CaseInsensitiveAdapter {
    inner: Arc<dyn PhysicalExprAdapter>,
    names: HashMap<String, String>,
}

impl PhysicalExprAdapter for CaseInsensitiveAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
        let expr = expr
            .transform(|e| {
                if let Some(c) = e.downcast_ref::<Column>()
                    && let Some(name) = self.names.get(c.name())
                {
                    return Ok(Transformed::yes(
                        Arc::new(Column::new(name, c.index())) as Arc<dyn PhysicalExpr>
                    ));
                }
                Ok(Transformed::no(e))
            })
            .data()?;
        self.inner.rewrite(expr)
    }
}

/// A Parquet file's statistics (row count, per-column min/max/nulls from its footer) for the
/// table's columns, matched to the file's columns as the adapter matches them. The footer goes
/// through the session's metadata cache, so the scan that follows does not read it again.
pub async fn parquet_statistics(
    state: &dyn Session,
    store: &dyn ObjectStore,
    file_schema: &SchemaRef,
    meta: &ObjectMeta,
) -> Result<Statistics> {
    let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
    let metadata = DFParquetMetadata::new(store, meta)
        .with_file_metadata_cache(Some(cache))
        .fetch_metadata()
        .await?;
    let file = metadata.file_metadata();
    let physical = parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())?;
    let names = file_spellings(file_schema, &physical);
    let schema = if names.is_empty() {
        file_schema.clone()
    } else {
        Arc::new(renamed(file_schema, &names))
    };
    DFParquetMetadata::statistics_from_parquet_metadata(&metadata, &schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;

    fn schema(names: &[&str]) -> Schema {
        Schema::new(
            names
                .iter()
                .map(|n| Field::new(*n, DataType::Int64, true))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn only_columns_missing_under_their_own_name_are_respelled() {
        let table = schema(&["userid", "id", "gone"]);
        let file = schema(&["userId", "id", "Other"]);
        let names = file_spellings(&table, &file);
        assert_eq!(names.len(), 1);
        assert_eq!(names["userid"], "userId");
        let r = renamed(&table, &names);
        assert_eq!(r.field(0).name(), "userId");
        assert_eq!(r.field(2).name(), "gone");
        assert!(file_spellings(&table, &schema(&["userid", "id"])).is_empty());
    }

    #[test]
    fn the_adapter_reads_a_mixed_case_file_column() {
        let table = Arc::new(schema(&["id", "userid"]));
        let file = Arc::new(schema(&["userId", "id"]));
        let adapter = CaseInsensitiveColumns.create(table, file).unwrap();
        let expr = adapter.rewrite(Arc::new(Column::new("userid", 1))).unwrap();
        let col = expr
            .downcast_ref::<Column>()
            .expect("a column, not a NULL literal");
        assert_eq!((col.name(), col.index()), ("userId", 0));
    }
}
