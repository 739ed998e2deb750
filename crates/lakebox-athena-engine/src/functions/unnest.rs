//! `trino_unnest_rows(e, 'alias', n)`: what Trino's `UNNEST(e) AS alias(c1, …, cn)` unnests
//! when its elements have fields — an array of rows (one column per field) or a map (a key
//! column and a value column) — as an array of structs whose fields are named `f1` … `fn` by
//! position, so that the rewritten query (see `rewrite`) can name them `c1` … `cn` without
//! knowing the types. A field count other than `n` fails the query as Trino does.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

pub const NAME: &str = "trino_unnest_rows";

#[derive(Debug, PartialEq, Eq, Hash)]
struct UnnestRows {
    signature: Signature,
}

pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(UnnestRows {
        signature: Signature::any(3, Volatility::Immutable),
    }));
}

/// The element fields of an array of rows or a map, or why it has none.
fn element_fields(t: &DataType) -> Option<(&Fields, bool)> {
    match t {
        DataType::List(f) | DataType::LargeList(f) => match f.data_type() {
            DataType::Struct(fields) => Some((fields, matches!(t, DataType::LargeList(_)))),
            _ => None,
        },
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) => Some((kv, false)),
            _ => None,
        },
        _ => None,
    }
}

/// The fields renamed `f1` … `fn`.
fn positional(fields: &Fields) -> Fields {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| Arc::new(f.as_ref().clone().with_name(format!("f{}", i + 1))))
        .collect()
}

fn list_of(fields: Fields, large: bool) -> DataType {
    let item = Arc::new(Field::new("item", DataType::Struct(fields), true));
    if large {
        DataType::LargeList(item)
    } else {
        DataType::List(item)
    }
}

impl ScalarUDFImpl for UnnestRows {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Err(DataFusionError::Internal(format!(
            "{NAME} types its result from its arguments"
        )))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let literal = |i: usize| args.scalar_arguments.get(i).copied().flatten();
        let alias = match literal(1) {
            Some(ScalarValue::Utf8(Some(s))) => s.clone(),
            _ => String::new(),
        };
        let wanted = match literal(2) {
            Some(v) => v.cast_to(&DataType::Int64).ok().and_then(|v| match v {
                ScalarValue::Int64(Some(n)) => Some(n as usize),
                _ => None,
            }),
            None => None,
        };
        let t = args.arg_fields[0].data_type();
        let (fields, large) = element_fields(t).ok_or_else(|| {
            DataFusionError::Plan(format!(
                "Column alias list has {} entries but '{alias}' has 1 columns available",
                wanted.unwrap_or(0)
            ))
        })?;
        if wanted != Some(fields.len()) {
            return Err(DataFusionError::Plan(format!(
                "Column alias list has {} entries but '{alias}' has {} columns available",
                wanted.unwrap_or(0),
                fields.len()
            )));
        }
        Ok(Arc::new(Field::new(
            NAME,
            list_of(positional(fields), large),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let array = match &args.args[0] {
            ColumnarValue::Array(a) => a.clone(),
            ColumnarValue::Scalar(s) => s.to_array_of_size(args.number_rows)?,
        };
        // A map's entries are a list of (key, value) rows; either list's rows then take the
        // positional field names of the return type (the same buffers, relabelled).
        let rows: ArrayRef = match array.data_type() {
            DataType::Map(_, _) => {
                let m = array.as_map();
                let entries: ArrayRef = Arc::new(m.entries().clone());
                let item = Arc::new(Field::new("item", entries.data_type().clone(), true));
                Arc::new(ListArray::try_new(
                    item,
                    m.offsets().clone(),
                    entries,
                    m.nulls().cloned(),
                )?)
            }
            DataType::List(_) | DataType::LargeList(_) => array,
            other => return Err(DataFusionError::Internal(format!("{NAME} cannot unnest {other}"))),
        };
        let out = crate::columns::relabeled(&rows, args.return_field.data_type())?;
        Ok(ColumnarValue::Array(out))
    }
}
