//! Column names as Athena matches them: a table's columns are lowercase in Glue, while files
//! written by Spark, pandas or Firehose keep names such as `userId`. Athena (Hive's readers)
//! matches a table column to a file column regardless of case; DataFusion matches exactly and
//! would read such a column as NULL. This module resolves the names per file: the expression
//! adapter renames column references to the file's spelling before DataFusion's own adapter
//! does its casts, and file statistics are taken under the same spelling (otherwise a column
//! missing under its lowercase name would count as "all NULL" and could wrongly answer
//! `count(col)` or prune the file).
//!
//! The same holds inside struct columns: Glue (and Athena DDL) spell struct fields in
//! lowercase, a Spark file may say `geo.CountryCode`. DataFusion casts a file's struct to the
//! table's by exact field names, so the adapter casts to the table's type spelled as the file
//! spells it ([`respelled`]) and then puts the table's names back on the result ([`Relabel`],
//! which renames without copying any data).
//!
//! With `parquet.column.index.access` = `true` a table reads Parquet columns by position
//! instead (the table's third column is the file's third, whatever their names).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeListArray, LargeListArray, ListArray, MapArray, RecordBatch,
    StructArray,
};
use datafusion::arrow::compute::CastOptions;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::Statistics;
use datafusion::common::nested_struct::cast_column;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::ColumnarValue;
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

/// The table's type `to` with its struct fields (at any depth) spelled as the file's type
/// `from` spells them where they differ only in case, so that a cast by field name finds them.
pub(crate) fn respelled(from: &DataType, to: &DataType) -> DataType {
    let child = |from: &FieldRef, to: &FieldRef| {
        Arc::new(
            to.as_ref()
                .clone()
                .with_data_type(respelled(from.data_type(), to.data_type())),
        )
    };
    match (from, to) {
        (DataType::Struct(file), DataType::Struct(table)) => DataType::Struct(
            table
                .iter()
                .map(|t| {
                    let found = file
                        .iter()
                        .find(|f| f.name() == t.name())
                        .or_else(|| file.iter().find(|f| f.name().eq_ignore_ascii_case(t.name())));
                    match found {
                        Some(f) => Arc::new(child(f, t).as_ref().clone().with_name(f.name())),
                        None => t.clone(),
                    }
                })
                .collect::<Fields>(),
        ),
        (DataType::List(f), DataType::List(t)) => DataType::List(child(f, t)),
        (DataType::LargeList(f), DataType::LargeList(t)) => DataType::LargeList(child(f, t)),
        (DataType::FixedSizeList(f, _), DataType::FixedSizeList(t, n)) => {
            DataType::FixedSizeList(child(f, t), *n)
        }
        // A map's entries are (key, value) by position, whatever their names; only the value
        // (a struct, say) can hold field names.
        (DataType::Map(f, _), DataType::Map(t, sorted)) => match (f.data_type(), t.data_type()) {
            (DataType::Struct(fkv), DataType::Struct(tkv)) if fkv.len() == 2 && tkv.len() == 2 => {
                let entries = Fields::from(vec![tkv[0].clone(), child(&fkv[1], &tkv[1])]);
                DataType::Map(
                    Arc::new(t.as_ref().clone().with_data_type(DataType::Struct(entries))),
                    *sorted,
                )
            }
            _ => to.clone(),
        },
        _ => to.clone(),
    }
}

/// `array` under the type `to`, which differs from its own only in the names of fields (as
/// [`respelled`] makes them): the same buffers, relabelled.
pub(crate) fn relabeled(array: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    if array.data_type() == to {
        return Ok(array.clone());
    }
    Ok(match to {
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let columns = s
                .columns()
                .iter()
                .zip(fields.iter())
                .map(|(c, f)| relabeled(c, f.data_type()))
                .collect::<Result<Vec<_>>>()?;
            Arc::new(StructArray::try_new_with_length(
                fields.clone(),
                columns,
                s.nulls().cloned(),
                s.len(),
            )?)
        }
        DataType::List(f) => {
            let l = array.as_list::<i32>();
            let values = relabeled(l.values(), f.data_type())?;
            Arc::new(ListArray::try_new(
                f.clone(),
                l.offsets().clone(),
                values,
                l.nulls().cloned(),
            )?)
        }
        DataType::LargeList(f) => {
            let l = array.as_list::<i64>();
            let values = relabeled(l.values(), f.data_type())?;
            Arc::new(LargeListArray::try_new(
                f.clone(),
                l.offsets().clone(),
                values,
                l.nulls().cloned(),
            )?)
        }
        DataType::FixedSizeList(f, n) => {
            let l = array.as_fixed_size_list();
            let values = relabeled(l.values(), f.data_type())?;
            Arc::new(FixedSizeListArray::try_new(
                f.clone(),
                *n,
                values,
                l.nulls().cloned(),
            )?)
        }
        DataType::Map(f, sorted) => {
            let m = array.as_map();
            let entries: ArrayRef = Arc::new(m.entries().clone());
            let entries = relabeled(&entries, f.data_type())?.as_struct().clone();
            Arc::new(MapArray::try_new(
                f.clone(),
                m.offsets().clone(),
                entries,
                m.nulls().cloned(),
                *sorted,
            )?)
        }
        other => {
            return Err(DataFusionError::Internal(format!(
                "cannot relabel {} as {other}",
                array.data_type()
            )));
        }
    })
}

/// `array` (a file's column) cast to the table's type `to`, struct fields matched by name
/// regardless of case (missing ones NULL), under the table's names.
pub(crate) fn cast_respelled(array: &ArrayRef, to: &DataType, options: &CastOptions) -> Result<ArrayRef> {
    let via = respelled(array.data_type(), to);
    relabeled(&cast_column(array, &via, options)?, to)
}

/// An expression's value under the table's type: a file column cast to the table's type as the
/// file spells its fields, given the table's field names back.
#[derive(Debug, Eq)]
struct Relabel {
    expr: Arc<dyn PhysicalExpr>,
    to: DataType,
}

impl PartialEq for Relabel {
    fn eq(&self, other: &Self) -> bool {
        self.expr.eq(&other.expr) && self.to == other.to
    }
}

impl std::hash::Hash for Relabel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.expr.hash(state);
        self.to.hash(state);
    }
}

impl fmt::Display for Relabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expr)
    }
}

impl PhysicalExpr for Relabel {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        let field = self.expr.return_field(input_schema)?;
        Ok(Arc::new(field.as_ref().clone().with_data_type(self.to.clone())))
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        match self.expr.evaluate(batch)? {
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(relabeled(&a, &self.to)?)),
            ColumnarValue::Scalar(s) => {
                let a = relabeled(&s.to_array()?, &self.to)?;
                Ok(ColumnarValue::Scalar(
                    datafusion::common::ScalarValue::try_from_array(&a, 0)?,
                ))
            }
        }
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.expr]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let expr = children
            .into_iter()
            .next()
            .ok_or_else(|| DataFusionError::Internal("Relabel takes one child".into()))?;
        Ok(Arc::new(Relabel {
            expr,
            to: self.to.clone(),
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt_sql(f)
    }
}

/// How one file's columns differ from the table's: top-level names (table name → file name)
/// and nested field names (table name → the table's type, read under [`respelled`]).
struct Spellings {
    names: HashMap<String, String>,
    nested: HashMap<String, DataType>,
}

impl Spellings {
    /// Matched by name regardless of case, or (`by_position`) the table's i-th column to the
    /// file's i-th, a column the file does not have reading as NULL.
    fn of(table: &Schema, file: &Schema, by_position: bool) -> Self {
        let names = if by_position {
            table
                .fields()
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let name = file
                        .fields()
                        .get(i)
                        .map_or_else(|| format!("__lakebox_absent_{i}"), |f| f.name().clone());
                    (t.name().clone(), name)
                })
                .filter(|(t, f)| t != f)
                .collect()
        } else {
            file_spellings(table, file)
        };
        let nested = table
            .fields()
            .iter()
            .filter_map(|t| {
                let name = names.get(t.name()).unwrap_or(t.name());
                let f = file.field_with_name(name).ok()?;
                (respelled(f.data_type(), t.data_type()) != *t.data_type())
                    .then(|| (t.name().clone(), t.data_type().clone()))
            })
            .collect();
        Spellings { names, nested }
    }

    fn is_empty(&self) -> bool {
        self.names.is_empty() && self.nested.is_empty()
    }

    /// `table` as the file spells it: renamed columns, struct fields respelled.
    fn apply(&self, table: &Schema, file: &Schema) -> Schema {
        let fields: Vec<Field> = table
            .fields()
            .iter()
            .map(|t| {
                let name = self.names.get(t.name()).unwrap_or(t.name());
                let mut field = t.as_ref().clone().with_name(name);
                if self.nested.contains_key(t.name())
                    && let Ok(f) = file.field_with_name(name)
                {
                    field = field.with_data_type(respelled(f.data_type(), t.data_type()));
                }
                field
            })
            .collect();
        Schema::new_with_metadata(fields, table.metadata().clone())
    }
}

/// Builds [`FileColumnsAdapter`]s: DataFusion's default adapter, after renaming each table
/// column to the file column it reads (by name regardless of case, or by position).
#[derive(Debug, Default)]
pub struct FileColumns {
    pub by_position: bool,
}

impl PhysicalExprAdapterFactory for FileColumns {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> Result<Arc<dyn PhysicalExprAdapter>> {
        let spellings = Spellings::of(&logical_file_schema, &physical_file_schema, self.by_position);
        if spellings.is_empty() {
            return DefaultPhysicalExprAdapterFactory.create(logical_file_schema, physical_file_schema);
        }
        let logical = Arc::new(spellings.apply(&logical_file_schema, &physical_file_schema));
        Ok(Arc::new(FileColumnsAdapter {
            inner: DefaultPhysicalExprAdapterFactory.create(logical, physical_file_schema)?,
            spellings,
        }))
    }
}

struct FileColumnsAdapter {
    inner: Arc<dyn PhysicalExprAdapter>,
    spellings: Spellings,
}

impl fmt::Debug for FileColumnsAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileColumnsAdapter")
    }
}

impl PhysicalExprAdapter for FileColumnsAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
        let expr = expr
            .transform(|e| {
                let Some(c) = e.downcast_ref::<Column>() else {
                    return Ok(Transformed::no(e));
                };
                let name = self
                    .spellings
                    .names
                    .get(c.name())
                    .map_or(c.name(), String::as_str);
                let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(name, c.index()));
                Ok(Transformed::yes(match self.spellings.nested.get(c.name()) {
                    Some(to) => Arc::new(Relabel {
                        expr: column,
                        to: to.clone(),
                    }),
                    None => column,
                }))
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
    by_position: bool,
) -> Result<Statistics> {
    let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
    let metadata = DFParquetMetadata::new(store, meta)
        .with_file_metadata_cache(Some(cache))
        .fetch_metadata()
        .await?;
    let file = metadata.file_metadata();
    let physical = parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())?;
    let spellings = Spellings::of(file_schema, &physical, by_position);
    let schema = if spellings.is_empty() {
        file_schema.clone()
    } else {
        Arc::new(spellings.apply(file_schema, &physical))
    };
    DFParquetMetadata::statistics_from_parquet_metadata(&metadata, &schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
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
        let r = Spellings::of(&table, &file, false).apply(&table, &file);
        assert_eq!(r.field(0).name(), "userId");
        assert_eq!(r.field(2).name(), "gone");
        assert!(file_spellings(&table, &schema(&["userid", "id"])).is_empty());
    }

    #[test]
    fn by_position_the_nth_column_is_the_files_nth() {
        let table = schema(&["x", "y", "z"]);
        let file = schema(&["a", "b"]);
        let s = Spellings::of(&table, &file, true);
        assert_eq!((s.names["x"].as_str(), s.names["y"].as_str()), ("a", "b"));
        // Past the file's columns: a name the file does not have, so NULL.
        assert!(file.field_with_name(&s.names["z"]).is_err());
        assert!(Spellings::of(&file, &file, true).is_empty());
    }

    #[test]
    fn the_adapter_reads_a_mixed_case_file_column() {
        let table = Arc::new(schema(&["id", "userid"]));
        let file = Arc::new(schema(&["userId", "id"]));
        let adapter = FileColumns::default().create(table, file).unwrap();
        let expr = adapter.rewrite(Arc::new(Column::new("userid", 1))).unwrap();
        let col = expr
            .downcast_ref::<Column>()
            .expect("a column, not a NULL literal");
        assert_eq!((col.name(), col.index()), ("userId", 0));
    }

    fn strukt(fields: &[(&str, DataType)]) -> DataType {
        DataType::Struct(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Fields>(),
        )
    }

    #[test]
    fn struct_fields_are_respelled_at_any_depth_and_relabelled_back() {
        let file_geo = strukt(&[("CountryCode", DataType::Utf8), ("Zip", DataType::Int64)]);
        let table_geo = strukt(&[("countrycode", DataType::Utf8View), ("city", DataType::Utf8)]);
        let list = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
        let respelled_geo = respelled(&list(file_geo.clone()), &list(table_geo.clone()));
        // The file's spelling where the names differ only in case; a field the file lacks keeps
        // the table's name (a cast fills it with NULL); the table's types are kept.
        assert_eq!(
            respelled_geo,
            list(strukt(&[
                ("CountryCode", DataType::Utf8View),
                ("city", DataType::Utf8)
            ]))
        );
        assert_eq!(respelled(&table_geo, &table_geo), table_geo);

        let DataType::Struct(fields) = strukt(&[("CountryCode", DataType::Utf8), ("Zip", DataType::Int64)])
        else {
            unreachable!()
        };
        let read: ArrayRef = Arc::new(StructArray::new(
            fields,
            vec![
                Arc::new(StringArray::from(vec!["DE", "FR"])),
                Arc::new(Int64Array::from(vec![1, 2])),
            ],
            None,
        ));
        let to = strukt(&[("countrycode", DataType::Utf8), ("zip", DataType::Int64)]);
        let back = relabeled(&read.slice(1, 1), &to).unwrap();
        assert_eq!(back.data_type(), &to);
        assert_eq!(back.as_struct().column(0).as_string::<i32>().value(0), "FR");
    }

    #[test]
    fn the_adapter_relabels_a_struct_column_spelled_otherwise_in_the_file() {
        let table_geo = strukt(&[("countrycode", DataType::Utf8)]);
        let file_geo = strukt(&[("CountryCode", DataType::Utf8)]);
        let table = Arc::new(Schema::new(vec![Field::new("geo", table_geo.clone(), true)]));
        let file = Arc::new(Schema::new(vec![Field::new("Geo", file_geo, true)]));
        let adapter = FileColumns::default()
            .create(table.clone(), file.clone())
            .unwrap();
        let expr = adapter.rewrite(Arc::new(Column::new("geo", 0))).unwrap();
        assert_eq!(expr.data_type(&file).unwrap(), table_geo);
        let batch = RecordBatch::try_new(
            file,
            vec![Arc::new(StructArray::new(
                match strukt(&[("CountryCode", DataType::Utf8)]) {
                    DataType::Struct(f) => f,
                    _ => unreachable!(),
                },
                vec![Arc::new(StringArray::from(vec![Some("DE"), None]))],
                None,
            ))],
        )
        .unwrap();
        let value = expr.evaluate(&batch).unwrap().into_array(2).unwrap();
        assert_eq!(value.data_type(), &table_geo);
        let codes = value.as_struct().column(0).as_string::<i32>().clone();
        assert_eq!((codes.value(0), codes.is_null(1)), ("DE", true));
    }
}
