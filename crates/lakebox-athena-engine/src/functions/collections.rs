//! Trino's `element_at` for arrays (1-based; negative counts from the end; NULL past the end)
//! and maps (the value for a key, NULL when absent), where DataFusion's covers maps only.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

use super::register as reg;

pub fn register(ctx: &SessionContext) {
    reg(ctx, "element_at", &[2], element_type, element_at);
}

fn element_type(args: &[DataType]) -> DataType {
    match args.first() {
        Some(DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)) => {
            f.data_type().clone()
        }
        Some(DataType::Map(f, _)) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => kv[1].data_type().clone(),
            _ => DataType::Null,
        },
        _ => DataType::Null,
    }
}

fn element_at(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let (container, key) = (&a[0], &a[1]);
    let out_type = element_type(&[container.data_type().clone()]);
    let mut out = Vec::with_capacity(container.len());
    for i in 0..container.len() {
        let k = ScalarValue::try_from_array(key, i)?;
        if container.is_null(i) || k.is_null() {
            out.push(ScalarValue::try_from(&out_type)?);
            continue;
        }
        let found = match container.data_type() {
            DataType::List(_) => {
                let items = container.as_list::<i32>().value(i);
                let n = items.len() as i64;
                let idx = match k.cast_to(&DataType::Int64)? {
                    ScalarValue::Int64(Some(0)) => {
                        return Err(DataFusionError::Execution(
                            "INVALID_FUNCTION_ARGUMENT: SQL array indices start at 1".into(),
                        ));
                    }
                    ScalarValue::Int64(Some(x)) if x > 0 => x - 1,
                    ScalarValue::Int64(Some(x)) => n + x,
                    _ => -1,
                };
                (0..n)
                    .contains(&idx)
                    .then(|| ScalarValue::try_from_array(&items, idx as usize))
                    .transpose()?
            }
            DataType::Map(..) => {
                let entries = container.as_map().value(i);
                let keys = entries.column(0);
                let k = k.cast_to(keys.data_type())?;
                let mut found = None;
                for j in 0..keys.len() {
                    if ScalarValue::try_from_array(keys, j)? == k {
                        found = Some(ScalarValue::try_from_array(entries.column(1), j)?);
                        break;
                    }
                }
                found
            }
            other => {
                return Err(DataFusionError::Plan(format!(
                    "element_at takes an array or a map, not {other}"
                )));
            }
        };
        out.push(match found {
            Some(v) => v,
            None => ScalarValue::try_from(&out_type)?,
        });
    }
    ScalarValue::iter_to_array(out)
}
