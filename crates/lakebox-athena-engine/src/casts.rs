//! Trino's casts to nested types: `CAST(x AS ARRAY(INTEGER))`, `MAP(VARCHAR, DOUBLE)`,
//! `ROW(name VARCHAR, age INTEGER)`, nested at will, from a value of another nested type or
//! from JSON text (`CAST(json_parse(s) AS MAP(VARCHAR, VARCHAR))`, the usual way to take a
//! JSON document apart in Athena).
//!
//! Three pieces:
//! - `spellings` respells the types of each `CAST`/`TRY_CAST`, which the SQL parser does not
//!   take as Trino writes them: `ARRAY(…)` → `ARRAY<…>`, `ROW(…)` → `STRUCT<…>`, `MAP(K, V)`
//!   → `STRUCT<"$map_key" K, "$map_value" V>`.
//! - [`TrinoTypes`], a type planner: that struct is planned as a map (DataFusion's SQL planner
//!   has no map type of its own), and `JSON` as text marked as JSON.
//! - [`NestedCasts`], an analyzer rule: every cast to a nested type becomes a call of
//!   [`CastNested`], which reads JSON text into the type (as Trino casts JSON) and casts other
//!   nested values with row fields matched by position (`TRY_CAST`: NULL where a value does
//!   not fit); a cast to JSON becomes [`ToJson`], which serializes the value.

use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, new_null_array};
use datafusion::arrow::compute::{CastOptions, cast};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::nested_struct::cast_column;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast::{ArrayElemTypeDef, DataType as SqlType};

pub(crate) const MAP_KEY: &str = "$map_key";
pub(crate) const MAP_VALUE: &str = "$map_value";

/// Plans the map structs `spellings` writes as maps; every other type is DataFusion's.
#[derive(Debug, Default)]
pub struct TrinoTypes;

fn is_json(t: &SqlType) -> bool {
    match t {
        SqlType::JSON => true,
        SqlType::Custom(name, modifiers) => {
            modifiers.is_empty() && name.to_string().eq_ignore_ascii_case("json")
        }
        _ => false,
    }
}

impl TypePlanner for TrinoTypes {
    fn plan_type_field(&self, sql_type: &SqlType) -> Result<Option<FieldRef>> {
        if is_json(sql_type) {
            // JSON values are their text; the mark makes a cast to JSON serialize its value.
            return Ok(Some(Arc::new(
                Field::new("", DataType::Utf8, true).with_metadata(json_mark()),
            )));
        }
        if !is_map(sql_type) {
            return Ok(None);
        }
        Ok(Some(Arc::new(Field::new("", arrow_type(sql_type)?, true))))
    }
}

/// Field metadata naming the Trino type a field was planned from, where Arrow's type alone
/// does not say it (`json`).
const TRINO_TYPE: &str = "lakebox.trino_type";

fn json_mark() -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([(TRINO_TYPE.to_owned(), "json".to_owned())])
}

/// Athena's name for a result field's type: `json` for a value cast to JSON, else its
/// Arrow type's Trino name.
pub fn athena_type_of(field: &Field) -> String {
    match field.metadata().get(TRINO_TYPE) {
        Some(t) => t.clone(),
        None => crate::athena_type(field.data_type()),
    }
}

fn is_map(t: &SqlType) -> bool {
    matches!(t, SqlType::Struct(f, _) if f.len() == 2
        && f[0].field_name.as_ref().is_some_and(|n| n.value == MAP_KEY)
        && f[1].field_name.as_ref().is_some_and(|n| n.value == MAP_VALUE))
}

/// A key or value type inside a map: nested types here, other types by their Hive names
/// (`VARCHAR`, `INTEGER`, `DECIMAL(10,2)`, … as Glue columns are typed).
fn arrow_type(t: &SqlType) -> Result<DataType> {
    // JSON values are text, marked as JSON (see `stringify_json`).
    let field = |name: &str, t: &SqlType| {
        let f = Field::new(name, arrow_type(t)?, true);
        Ok::<_, DataFusionError>(if is_json(t) {
            f.with_metadata(json_mark())
        } else {
            f
        })
    };
    Ok(match t {
        t if is_json(t) => DataType::Utf8,
        SqlType::Struct(f, _) if is_map(t) => {
            let entries = Fields::from(vec![
                Field::new("key", arrow_type(&f[0].field_type)?, false),
                field("value", &f[1].field_type)?,
            ]);
            DataType::Map(
                Arc::new(Field::new("entries", DataType::Struct(entries), false)),
                false,
            )
        }
        SqlType::Struct(fields, _) => DataType::Struct(
            fields
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let name = f
                        .field_name
                        .as_ref()
                        .map_or(format!("field{i}"), |n| n.value.to_lowercase());
                    field(&name, &f.field_type)
                })
                .collect::<Result<Fields>>()?,
        ),
        SqlType::Array(ArrayElemTypeDef::AngleBracket(inner)) => {
            DataType::List(Arc::new(field("item", inner)?))
        }
        other => crate::catalog::hive(&other.to_string())?,
    })
}

fn nested(t: &DataType) -> bool {
    matches!(
        t,
        DataType::List(_) | DataType::LargeList(_) | DataType::Struct(_) | DataType::Map(..)
    )
}

/// The analyzer rule that routes casts to nested types through [`CastNested`].
#[derive(Debug, Default)]
pub struct NestedCasts;

impl AnalyzerRule for NestedCasts {
    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|p| {
            // The rewritten expressions keep their names, so the nodes above still find them.
            let names = NamePreserver::new(&p);
            p.map_expressions(|e| {
                let name = names.save(&e);
                Ok(e.transform_up(cast_nested)?.update_data(|e| name.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "lakebox_nested_casts"
    }
}

/// A cast to JSON as a call of [`ToJson`], a cast to a nested type as one of [`CastNested`].
fn cast_nested(e: Expr) -> Result<Transformed<Expr>> {
    let json = |f: &FieldRef| f.metadata().get(TRINO_TYPE).is_some_and(|t| t == "json");
    let ours = |f: &FieldRef| json(f) || nested(f.data_type());
    let (expr, field, strict) = match e {
        Expr::Cast(c) if ours(&c.field) => (c.expr, c.field, true),
        Expr::TryCast(c) if ours(&c.field) => (c.expr, c.field, false),
        other => return Ok(Transformed::no(other)),
    };
    let udf = if json(&field) {
        ScalarUDF::new_from_impl(ToJson {
            signature: Signature::any(1, Volatility::Immutable),
        })
    } else {
        ScalarUDF::new_from_impl(CastNested::new(field.data_type().clone(), strict))
    };
    Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(udf),
        vec![*expr],
    ))))
}

/// The type `to` with each struct's fields named as `from`'s fields in the same positions
/// (rows cast by position in Trino, whatever their names), so a cast by name pairs them.
fn by_position(from: &DataType, to: &DataType) -> DataType {
    let child = |f: &FieldRef, t: &FieldRef| {
        Arc::new(
            t.as_ref()
                .clone()
                .with_data_type(by_position(f.data_type(), t.data_type())),
        )
    };
    match (from, to) {
        (DataType::Struct(ff), DataType::Struct(tf)) if ff.len() == tf.len() => DataType::Struct(
            ff.iter()
                .zip(tf.iter())
                .map(|(f, t)| Arc::new(child(f, t).as_ref().clone().with_name(f.name())))
                .collect(),
        ),
        (DataType::List(f), DataType::List(t)) => DataType::List(child(f, t)),
        (DataType::LargeList(f), DataType::LargeList(t)) => DataType::LargeList(child(f, t)),
        (DataType::Map(f, _), DataType::Map(t, sorted)) => DataType::Map(child(f, t), *sorted),
        _ => to.clone(),
    }
}

/// A cast to one nested type; `strict` fails the query on a value that does not convert
/// (Trino's INVALID_CAST_ARGUMENT), otherwise that value is NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CastNested {
    name: String,
    to: DataType,
    strict: bool,
    signature: Signature,
}

impl CastNested {
    fn new(to: DataType, strict: bool) -> Self {
        let name = if strict { "cast" } else { "try_cast" };
        CastNested {
            name: format!("{name}_to_{}", crate::athena_type(&to)),
            to,
            strict,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }

    fn invalid(&self, value: &str, why: impl std::fmt::Display) -> DataFusionError {
        DataFusionError::Execution(format!(
            "INVALID_CAST_ARGUMENT: Cannot cast '{value}' to {}: {why}",
            crate::athena_type(&self.to)
        ))
    }

    /// JSON texts read into the type, one value per text.
    fn read_json_texts(&self, texts: &ArrayRef) -> Result<ArrayRef> {
        let texts = cast(texts, &DataType::Utf8)?;
        let texts = texts.as_string::<i32>();
        let schema = Arc::new(Schema::new(vec![Field::new("v", self.to.clone(), true)]));
        let mut lines = String::new();
        for text in texts.iter() {
            lines.push_str("{\"v\":");
            match text {
                // Checked first, so that one text cannot spill into the next row.
                Some(t) => match serde_json::from_str::<serde_json::Value>(t) {
                    Ok(v) if has_json(&self.to) => lines.push_str(&stringify_json(v, &self.to).to_string()),
                    Ok(_) => lines.push_str(t),
                    Err(e) if self.strict => return Err(self.invalid(t, e)),
                    Err(_) => lines.push_str("null"),
                },
                None => lines.push_str("null"),
            }
            lines.push_str("}\n");
        }
        match read_json(&schema, &lines, texts.len()) {
            Ok(a) => Ok(a),
            // Name the value that does not fit.
            Err(e) if self.strict => Err(texts
                .iter()
                .flatten()
                .find_map(|t| {
                    read_json(&schema, &format!("{{\"v\":{t}}}\n"), 1)
                        .err()
                        .map(|e| self.invalid(t, e))
                })
                .unwrap_or_else(|| self.invalid("…", e))),
            // Some value did not fit the type: read them one by one, NULL where one fails.
            Err(_) => {
                let one = |t: Option<&str>| {
                    let line = format!(
                        "{{\"v\":{}}}\n",
                        t.filter(|t| serde_json::from_str::<serde_json::Value>(t).is_ok())
                            .unwrap_or("null")
                    );
                    read_json(&schema, &line, 1).unwrap_or_else(|_| new_null_array(&self.to, 1))
                };
                let parts: Vec<ArrayRef> = texts.iter().map(one).collect();
                let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
                Ok(datafusion::arrow::compute::concat(&refs)?)
            }
        }
    }
}

fn marked_json(f: &Field) -> bool {
    f.metadata().get(TRINO_TYPE).is_some_and(|t| t == "json")
}

/// Whether a type holds a JSON-marked field (`ARRAY(JSON)`, `MAP(VARCHAR, JSON)`, …).
fn has_json(t: &DataType) -> bool {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::Map(f, _) => {
            marked_json(f) || has_json(f.data_type())
        }
        DataType::Struct(fields) => fields.iter().any(|f| marked_json(f) || has_json(f.data_type())),
        _ => false,
    }
}

/// A JSON value shaped for the type `t`: where `t` holds a JSON-marked field, the value there
/// becomes its JSON text (a string), which Arrow's JSON reader then reads as text. Trino's
/// `CAST(json AS ARRAY(JSON))` keeps each element as JSON in the same way.
fn stringify_json(v: serde_json::Value, t: &DataType) -> serde_json::Value {
    use serde_json::Value as J;
    let one = |v: J, f: &Field| match v {
        J::Null => J::Null,
        v if marked_json(f) => J::String(v.to_string()),
        v => stringify_json(v, f.data_type()),
    };
    match (v, t) {
        (J::Array(items), DataType::List(f) | DataType::LargeList(f)) => {
            J::Array(items.into_iter().map(|i| one(i, f)).collect())
        }
        (J::Object(o), DataType::Map(entries, _)) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                J::Object(o.into_iter().map(|(k, v)| (k, one(v, &kv[1]))).collect())
            }
            _ => J::Object(o),
        },
        (J::Object(o), DataType::Struct(fields)) => J::Object(
            o.into_iter()
                .map(|(k, v)| match fields.iter().find(|f| f.name() == &k) {
                    Some(f) => (k, one(v, f)),
                    None => (k, v),
                })
                .collect(),
        ),
        (v, _) => v,
    }
}

/// Newline-separated `{"v": …}` objects read as a column of `schema`'s one field.
fn read_json(schema: &Arc<Schema>, lines: &str, rows: usize) -> Result<ArrayRef> {
    let reader = arrow_json::ReaderBuilder::new(schema.clone())
        .with_coerce_primitive(true)
        .with_batch_size(rows.max(1))
        .build(Cursor::new(lines.as_bytes()))?;
    let batches = reader.collect::<std::result::Result<Vec<RecordBatch>, _>>()?;
    let columns: Vec<ArrayRef> = batches.iter().map(|b| b.column(0).clone()).collect();
    let refs: Vec<&dyn Array> = columns.iter().map(|a| a.as_ref()).collect();
    let out = if refs.is_empty() {
        new_null_array(schema.field(0).data_type(), 0)
    } else {
        datafusion::arrow::compute::concat(&refs)?
    };
    if out.len() != rows {
        return Err(DataFusionError::Execution(format!(
            "{} JSON values for {rows} rows",
            out.len()
        )));
    }
    Ok(out)
}

impl ScalarUDFImpl for CastNested {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.to.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = match &args.args[0] {
            ColumnarValue::Array(a) => a.clone(),
            ColumnarValue::Scalar(s) => s.to_array_of_size(args.number_rows)?,
        };
        let out = match input.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => self.read_json_texts(&input)?,
            DataType::Null => new_null_array(&self.to, input.len()),
            _ => {
                let options = CastOptions {
                    safe: !self.strict,
                    ..Default::default()
                };
                let via = by_position(input.data_type(), &self.to);
                let out = cast_column(&input, &via, &options).map_err(|e| self.invalid("…", e))?;
                crate::columns::relabeled(&out, &self.to)?
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// `CAST(x AS JSON)`: the value as JSON text, as Trino serializes it (`{"a":1}`, `[1,2]`, a
/// string as a JSON string); NULL stays NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToJson {
    signature: Signature,
}

impl ScalarUDFImpl for ToJson {
    fn name(&self) -> &str {
        "cast_to_json"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    // Marked as JSON, so the result column is reported as Athena reports it (`json`).
    fn return_field_from_args(&self, _: datafusion::logical_expr::ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(
            Field::new(self.name(), DataType::Utf8, true).with_metadata(json_mark()),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = match &args.args[0] {
            ColumnarValue::Array(a) => a.clone(),
            ColumnarValue::Scalar(s) => s.to_array_of_size(args.number_rows)?,
        };
        Ok(ColumnarValue::Array(Arc::new(json_texts(&input)?)))
    }
}

/// Each value of `array` as JSON text (written as `{"v": …}` lines by Arrow's JSON writer).
fn json_texts(array: &ArrayRef) -> Result<datafusion::arrow::array::StringArray> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "v",
        array.data_type().clone(),
        true,
    )]));
    let batch = RecordBatch::try_new(schema, vec![array.clone()])?;
    let mut writer = arrow_json::LineDelimitedWriter::new(Vec::new());
    writer.write(&batch)?;
    writer.finish()?;
    let lines = writer.into_inner();
    let texts = lines
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut row: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line)
                .map_err(|e| DataFusionError::Execution(format!("JSON of a value: {e}")))?;
            Ok(row.remove("v").map(|v| v.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(texts.into_iter().collect())
}
