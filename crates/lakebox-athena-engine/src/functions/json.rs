//! Trino's JSON functions over JSON text: `json_extract_scalar`, `json_extract`, `json_parse`,
//! `json_format`, `json_array_length`, `json_size`, with Trino's JSONPath subset (`$`, `.key`,
//! `["key"]`, `[index]`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use serde_json::Value;

use super::{arg, invalid, register as reg};

pub fn register(ctx: &SessionContext) {
    reg(
        ctx,
        "json_extract_scalar",
        &[2],
        |_| DataType::Utf8,
        |a, s| extract(a, s, true),
    );
    reg(
        ctx,
        "json_extract",
        &[2],
        |_| DataType::Utf8,
        |a, s| extract(a, s, false),
    );
    reg(ctx, "json_parse", &[1], |_| DataType::Utf8, json_parse);
    reg(ctx, "json_format", &[1], |_| DataType::Utf8, json_parse);
    reg(
        ctx,
        "json_array_length",
        &[1],
        |_| DataType::Int64,
        json_array_length,
    );
    reg(ctx, "json_size", &[2], |_| DataType::Int64, json_size);
    reg(
        ctx,
        "json_array_contains",
        &[2],
        |_| DataType::Boolean,
        json_array_contains,
    );
    reg(ctx, "json_array_get", &[2], |_| DataType::Utf8, json_array_get);
}

/// The JSON arrays of argument 0 (NULL where it is not one).
fn arrays(a: &[ArrayRef]) -> Result<Vec<Option<Vec<Value>>>> {
    let j = arg(a, 0, &DataType::Utf8)?;
    let j = json_strings(&j);
    Ok((0..j.len())
        .map(|i| match serde_json::from_str::<Value>(j.value(i)).ok() {
            Some(Value::Array(x)) if !j.is_null(i) => Some(x),
            _ => None,
        })
        .collect())
}

/// `json_array_contains(json, value)`: whether the JSON array holds the value (a number,
/// boolean or string compared as Trino does, by value).
fn json_array_contains(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let wanted: Vec<Option<Value>> = match a[1].data_type() {
        DataType::Boolean => arg(a, 1, &DataType::Boolean)?
            .as_any()
            .downcast_ref::<datafusion::arrow::array::BooleanArray>()
            .expect("cast to boolean")
            .iter()
            .map(|v| v.map(Value::Bool))
            .collect(),
        t if t.is_numeric() => arg(a, 1, &DataType::Float64)?
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Float64Array>()
            .expect("cast to double")
            .iter()
            .map(|v| v.map(|v| serde_json::json!(v)))
            .collect(),
        _ => {
            let t = arg(a, 1, &DataType::Utf8)?;
            json_strings(&t)
                .iter()
                .map(|v| v.map(|v| Value::String(v.to_owned())))
                .collect()
        }
    };
    let same = |x: &Value, w: &Value| match (x, w) {
        (Value::Number(x), Value::Number(w)) => x.as_f64() == w.as_f64(),
        _ => x == w,
    };
    let out: datafusion::arrow::array::BooleanArray = arrays(a)?
        .into_iter()
        .zip(wanted)
        .map(|(arr, w)| {
            let (arr, w) = (arr?, w?);
            Some(arr.iter().any(|x| same(x, &w)))
        })
        .collect();
    Ok(Arc::new(out))
}

/// `json_array_get(json, index)`: the element at `index` (from 0; negative from the end) as
/// JSON text.
fn json_array_get(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let idx = arg(a, 1, &DataType::Int64)?;
    let idx = idx.as_any().downcast_ref::<Int64Array>().expect("cast to bigint");
    let out: StringArray = arrays(a)?
        .into_iter()
        .enumerate()
        .map(|(i, arr)| {
            let arr = arr?;
            let n = idx.is_valid(i).then(|| idx.value(i))?;
            let at = if n < 0 { arr.len() as i64 + n } else { n };
            arr.get(usize::try_from(at).ok()?).map(Value::to_string)
        })
        .collect();
    Ok(Arc::new(out))
}

#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parses Trino's JSONPath: `$.a.b[0]["c d"]`.
fn path(p: &str) -> Option<Vec<Step>> {
    let mut rest = p.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            if let Some(q) = inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                steps.push(Step::Key(q.to_owned()));
            } else if let Some(q) = inner.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
                steps.push(Step::Key(q.to_owned()));
            } else {
                steps.push(Step::Index(inner.parse().ok()?));
            }
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

fn walk<'v>(v: &'v Value, steps: &[Step]) -> Option<&'v Value> {
    steps.iter().try_fold(v, |v, s| match s {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(*i),
    })
}

fn json_strings(a: &ArrayRef) -> &StringArray {
    a.as_any().downcast_ref::<StringArray>().expect("cast to Utf8")
}

/// For each row, `f` applied to the value at the row's JSON path (`None` when the text is not
/// JSON or nothing is at the path); an invalid path fails the query unless lenient.
fn at_path<T>(a: &[ArrayRef], strict: bool, f: impl Fn(&Value) -> Option<T>) -> Result<Vec<Option<T>>> {
    let (j, p) = (arg(a, 0, &DataType::Utf8)?, arg(a, 1, &DataType::Utf8)?);
    let (j, p) = (json_strings(&j), json_strings(&p));
    let mut out = Vec::with_capacity(j.len());
    for i in 0..j.len() {
        if j.is_null(i) || p.is_null(i) {
            out.push(None);
            continue;
        }
        let Some(steps) = path(p.value(i)) else {
            if strict {
                return Err(invalid(format!("Invalid JSON path: '{}'", p.value(i))));
            }
            out.push(None);
            continue;
        };
        // Text that is not JSON has no value at any path.
        let doc = serde_json::from_str::<Value>(j.value(i)).ok();
        out.push(doc.as_ref().and_then(|d| walk(d, &steps)).and_then(&f));
    }
    Ok(out)
}

fn extract(a: &[ArrayRef], strict: bool, scalar: bool) -> Result<ArrayRef> {
    let out = at_path(a, strict, |v| match v {
        Value::String(s) if scalar => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) if scalar => Some(v.to_string()),
        Value::Array(_) | Value::Object(_) | Value::Null if scalar => None,
        _ => Some(v.to_string()),
    })?;
    Ok(Arc::new(StringArray::from(out)))
}

fn json_parse(a: &[ArrayRef], strict: bool) -> Result<ArrayRef> {
    let j = arg(a, 0, &DataType::Utf8)?;
    let j = json_strings(&j);
    let mut out = Vec::with_capacity(j.len());
    for i in 0..j.len() {
        if j.is_null(i) {
            out.push(None);
            continue;
        }
        match serde_json::from_str::<Value>(j.value(i)) {
            Ok(v) => out.push(Some(v.to_string())),
            Err(e) if strict => return Err(invalid(format!("Cannot convert '{}' to JSON: {e}", j.value(i)))),
            Err(_) => out.push(None),
        }
    }
    Ok(Arc::new(StringArray::from(out)))
}

fn json_array_length(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let j = arg(a, 0, &DataType::Utf8)?;
    let j = json_strings(&j);
    let out: Int64Array = (0..j.len())
        .map(|i| {
            if j.is_null(i) {
                return None;
            }
            match serde_json::from_str::<Value>(j.value(i)).ok()? {
                Value::Array(x) => Some(x.len() as i64),
                _ => None,
            }
        })
        .collect();
    Ok(Arc::new(out))
}

fn json_size(a: &[ArrayRef], strict: bool) -> Result<ArrayRef> {
    let out = at_path(a, strict, |v| {
        Some(match v {
            Value::Array(x) => x.len() as i64,
            Value::Object(x) => x.len() as i64,
            _ => 0,
        })
    })?;
    Ok(Arc::new(Int64Array::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        assert_eq!(
            path("$.a[2][\"b c\"].d"),
            Some(vec![
                Step::Key("a".into()),
                Step::Index(2),
                Step::Key("b c".into()),
                Step::Key("d".into())
            ])
        );
        assert_eq!(path("$"), Some(vec![]));
        assert_eq!(path("a.b"), None);
    }
}
