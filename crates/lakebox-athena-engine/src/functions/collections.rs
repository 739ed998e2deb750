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
        "sequence_stop",
        &[2, 3],
        |args| args[1].clone(),
        sequence_stop,
    );
    reg(
        ctx,
        "sequence_step",
        &[1],
        |args| default_step_type(&args[0]),
        sequence_step,
    );
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

/// Trino's `sequence(start, stop)` steps by 1, or by a day between dates; `generate_series`
/// wants the day spelled out.
fn default_step_type(start: &DataType) -> DataType {
    match start {
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => {
            DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano)
        }
        _ => DataType::Int64,
    }
}

fn sequence_step(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let one = match default_step_type(a[0].data_type()) {
        DataType::Int64 => ScalarValue::Int64(Some(1)),
        _ => ScalarValue::IntervalMonthDayNano(Some(
            datafusion::arrow::datatypes::IntervalMonthDayNano::new(0, 1, 0),
        )),
    };
    one.to_array_of_size(a[0].len())
}

/// Most entries `sequence` builds, as in Trino.
const MAX_SEQUENCE_ENTRIES: i128 = 10_000;

/// `sequence_stop(start, stop[, step])`: `stop`, once the sequence from `start` to `stop` is
/// known to have at most [`MAX_SEQUENCE_ENTRIES`] entries (Trino's limit; DataFusion's
/// `generate_series` would build any size, 16 GB for `sequence(1, 2e9)`). Counted exactly for
/// numbers, days and month steps; other interval steps count a month as 28 days, so the count
/// is never under-estimated.
fn sequence_stop(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let (start, stop) = (&a[0], &a[1]);
    for i in 0..start.len() {
        if start.is_null(i) || stop.is_null(i) || a.get(2).is_some_and(|s| s.is_null(i)) {
            continue;
        }
        let step = a.get(2).map(|s| ScalarValue::try_from_array(s, i)).transpose()?;
        let entries = sequence_entries(
            &ScalarValue::try_from_array(start, i)?,
            &ScalarValue::try_from_array(stop, i)?,
            step.as_ref(),
        )?;
        if entries.is_some_and(|n| n > MAX_SEQUENCE_ENTRIES) {
            return Err(super::invalid(format!(
                "result of sequence function must not have more than {MAX_SEQUENCE_ENTRIES} entries"
            )));
        }
    }
    Ok(stop.clone())
}

/// How many entries a sequence has (an upper bound for day-and-time steps with months);
/// `None` where `generate_series` answers for itself (a zero step, unknown types).
fn sequence_entries(
    start: &ScalarValue,
    stop: &ScalarValue,
    step: Option<&ScalarValue>,
) -> Result<Option<i128>> {
    const DAY_NANOS: i128 = 86_400_000_000_000;
    let count = |span: i128, step: i128| (step != 0).then(|| span.abs() / step.abs() + 1);
    // A step as (months, nanoseconds): `None` for no step.
    let step_parts = match step {
        None => None,
        Some(ScalarValue::IntervalYearMonth(Some(m))) => Some((i128::from(*m), 0)),
        Some(ScalarValue::IntervalDayTime(Some(v))) => Some((
            0,
            i128::from(v.days) * DAY_NANOS + i128::from(v.milliseconds) * 1_000_000,
        )),
        Some(ScalarValue::IntervalMonthDayNano(Some(v))) => Some((
            i128::from(v.months),
            i128::from(v.days) * DAY_NANOS + i128::from(v.nanoseconds),
        )),
        Some(other) if other.data_type().is_integer() => {
            let ScalarValue::Int64(Some(s)) = other.cast_to(&DataType::Int64)? else {
                return Ok(None);
            };
            Some((0, i128::from(s)))
        }
        Some(_) => return Ok(None),
    };
    // A date or timestamp in nanoseconds, wide enough for any year.
    let as_nanos = |v: &ScalarValue| -> Result<Option<i128>> {
        Ok(match v {
            ScalarValue::Date32(Some(d)) => Some(i128::from(*d) * DAY_NANOS),
            ScalarValue::Date64(Some(ms)) => Some(i128::from(*ms) * 1_000_000),
            ScalarValue::TimestampSecond(Some(s), _) => Some(i128::from(*s) * 1_000_000_000),
            ScalarValue::TimestampMillisecond(Some(ms), _) => Some(i128::from(*ms) * 1_000_000),
            ScalarValue::TimestampMicrosecond(Some(us), _) => Some(i128::from(*us) * 1_000),
            ScalarValue::TimestampNanosecond(Some(ns), _) => Some(i128::from(*ns)),
            _ => None,
        })
    };
    let dt = start.data_type();
    if dt.is_integer() {
        let (ScalarValue::Int64(Some(x)), ScalarValue::Int64(Some(y))) =
            (start.cast_to(&DataType::Int64)?, stop.cast_to(&DataType::Int64)?)
        else {
            return Ok(None);
        };
        let step = step_parts.map_or(1, |(_, s)| s);
        return Ok(count(i128::from(y) - i128::from(x), step));
    }
    if !matches!(dt, DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)) {
        return Ok(None);
    }
    let (Some(x), Some(y)) = (as_nanos(start)?, as_nanos(stop)?) else {
        return Ok(None);
    };
    let (months, nanos) = step_parts.unwrap_or((0, DAY_NANOS));
    if nanos == 0 && months != 0 {
        // Whole months: counted on the calendar.
        let month_of = |n: i128| {
            let secs = i64::try_from(n.div_euclid(1_000_000_000)).unwrap_or(0);
            chrono::DateTime::from_timestamp(secs, 0).map(|d| {
                use chrono::Datelike;
                i128::from(d.year()) * 12 + i128::from(d.month0())
            })
        };
        return Ok(match (month_of(x), month_of(y)) {
            (Some(a), Some(b)) => count(b - a, months),
            _ => None,
        });
    }
    Ok(count(y - x, months * 28 * DAY_NANOS + nanos))
}
