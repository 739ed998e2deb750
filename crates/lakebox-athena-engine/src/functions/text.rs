//! Trino's string functions DataFusion lacks: `regexp_extract`, `regexp_extract_all` (Java-style
//! patterns, mostly shared with Rust's regex syntax) and `split`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, ListBuilder, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use regex::Regex;

use super::{arg, invalid, register as reg};

fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

pub fn register(ctx: &SessionContext) {
    reg(ctx, "regexp_extract", &[2, 3], |_| DataType::Utf8, regexp_extract);
    reg(
        ctx,
        "regexp_extract_all",
        &[2, 3],
        |_| string_list(),
        regexp_extract_all,
    );
    reg(ctx, "split", &[2, 3], |_| string_list(), split);
}

fn texts(a: &ArrayRef) -> &StringArray {
    a.as_any().downcast_ref::<StringArray>().expect("cast to Utf8")
}

/// The string, pattern and group arguments; the group defaults to the whole match.
fn regex_args(a: &[ArrayRef]) -> Result<(ArrayRef, ArrayRef, Option<ArrayRef>)> {
    let group = if a.len() > 2 {
        Some(arg(a, 2, &DataType::Int64)?)
    } else {
        None
    };
    Ok((arg(a, 0, &DataType::Utf8)?, arg(a, 1, &DataType::Utf8)?, group))
}

/// Compiled patterns, cached while the pattern stays the same (it is usually a literal).
struct Patterns(Option<(String, Regex)>);

impl Patterns {
    fn get(&mut self, p: &str) -> Result<&Regex> {
        if self.0.as_ref().is_none_or(|(s, _)| s != p) {
            let r = Regex::new(p).map_err(|e| invalid(format!("Invalid regular expression '{p}': {e}")))?;
            self.0 = Some((p.to_owned(), r));
        }
        Ok(&self.0.as_ref().expect("set above").1)
    }
}

fn group_of(g: &Option<ArrayRef>, i: usize) -> usize {
    g.as_ref()
        .and_then(|g| g.as_any().downcast_ref::<Int64Array>().map(|g| g.value(i)))
        .unwrap_or(0)
        .max(0) as usize
}

fn regexp_extract(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let (s, p, g) = regex_args(a)?;
    let (s, p) = (texts(&s), texts(&p));
    let mut cache = Patterns(None);
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || p.is_null(i) {
            out.push(None);
            continue;
        }
        let re = cache.get(p.value(i))?;
        let group = group_of(&g, i);
        if group >= re.captures_len() {
            return Err(invalid(format!(
                "Pattern has {} groups. Cannot access group {group}",
                re.captures_len() - 1
            )));
        }
        out.push(
            re.captures(s.value(i))
                .and_then(|c| c.get(group))
                .map(|m| m.as_str().to_owned()),
        );
    }
    Ok(Arc::new(StringArray::from(out)))
}

fn regexp_extract_all(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let (s, p, g) = regex_args(a)?;
    let (s, p) = (texts(&s), texts(&p));
    let mut cache = Patterns(None);
    let mut out = ListBuilder::new(StringBuilder::new());
    for i in 0..s.len() {
        if s.is_null(i) || p.is_null(i) {
            out.append_null();
            continue;
        }
        let re = cache.get(p.value(i))?;
        let group = group_of(&g, i);
        for c in re.captures_iter(s.value(i)) {
            out.values().append_option(c.get(group).map(|m| m.as_str()));
        }
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}

fn split(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let (s, d) = (arg(a, 0, &DataType::Utf8)?, arg(a, 1, &DataType::Utf8)?);
    let limit = if a.len() > 2 {
        Some(arg(a, 2, &DataType::Int64)?)
    } else {
        None
    };
    let (s, d) = (texts(&s), texts(&d));
    let mut out = ListBuilder::new(StringBuilder::new());
    for i in 0..s.len() {
        if s.is_null(i) || d.is_null(i) {
            out.append_null();
            continue;
        }
        let n = limit
            .as_ref()
            .and_then(|l| l.as_any().downcast_ref::<Int64Array>().map(|l| l.value(i)))
            .unwrap_or(0);
        let parts: Vec<&str> = if n > 0 {
            s.value(i).splitn(n as usize, d.value(i)).collect()
        } else {
            s.value(i).split(d.value(i)).collect()
        };
        for part in parts {
            out.values().append_value(part);
        }
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}
