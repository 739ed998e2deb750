//! Trino's `element_at` for arrays (1-based; negative counts from the end; NULL past the end)
//! and maps (the value for a key, NULL when absent), where DataFusion's covers maps only; and
//! Trino's `repeat`, which builds an array (DataFusion's repeats a string, and with any count).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, UInt32Array};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

use super::register as reg;

pub fn register(ctx: &SessionContext) {
    reg(ctx, "element_at", &[2], element_type, element_at);
    reg(
        ctx,
        "repeat",
        &[2],
        |args| {
            let element = args.first().cloned().unwrap_or(DataType::Null);
            DataType::List(Arc::new(Field::new_list_field(element, true)))
        },
        repeat,
    );
}

/// Most copies `repeat` makes, as in Trino.
const MAX_REPEAT_ENTRIES: i64 = 10_000;
/// Largest array `repeat` builds, as in Trino.
const MAX_REPEAT_BYTES: usize = 1_000_000;

/// `repeat(element, count)`: an array of `count` copies of `element` (NULL count: NULL).
fn repeat(a: &[ArrayRef], strict: bool) -> Result<ArrayRef> {
    let element = &a[0];
    let counts = super::arg(a, 1, &DataType::Int64)?;
    let counts = counts.as_primitive::<Int64Type>();
    let mut indices: Vec<u32> = Vec::new();
    let mut offsets: Vec<i32> = Vec::with_capacity(counts.len() + 1);
    offsets.push(0);
    let mut valid = Vec::with_capacity(counts.len());
    for i in 0..counts.len() {
        let n = if counts.is_null(i) {
            None
        } else {
            Some(counts.value(i))
        };
        let problem = match n {
            Some(n) if n > MAX_REPEAT_ENTRIES => Some(format!(
                "count argument of repeat function must be less than or equal to {MAX_REPEAT_ENTRIES}"
            )),
            Some(n) if n < 0 => {
                Some("count argument of repeat function must be greater than or equal to 0".to_owned())
            }
            Some(n) if value_bytes(element, i).saturating_mul(n as usize) > MAX_REPEAT_BYTES => Some(
                format!("result of repeat function must not take more than {MAX_REPEAT_BYTES} bytes"),
            ),
            _ => None,
        };
        match (n, problem) {
            (_, Some(message)) if strict => return Err(super::invalid(message)),
            (Some(n), None) => {
                indices.extend(std::iter::repeat_n(i as u32, n as usize));
                valid.push(true);
            }
            _ => valid.push(false),
        }
        offsets.push(indices.len() as i32);
    }
    let values = take(element.as_ref(), &UInt32Array::from(indices), None)?;
    let field = Arc::new(Field::new_list_field(element.data_type().clone(), true));
    Ok(Arc::new(ListArray::try_new(
        field,
        OffsetBuffer::new(offsets.into()),
        values,
        Some(NullBuffer::from(valid)),
    )?))
}

/// The bytes row `i` of `a` holds (its data, not the array's shared buffers).
fn value_bytes(a: &ArrayRef, i: usize) -> usize {
    a.slice(i, 1).to_data().get_slice_memory_size().unwrap_or(8)
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
