//! Trino's string functions DataFusion lacks: `regexp_extract`, `regexp_extract_all` (Java-style
//! patterns, mostly shared with Rust's regex syntax), `split` and `format` (Java's
//! `String.format` for `%s`, `%d`, `%f`/`%.Nf`, `%x`, `%%`, with `-`/`0` flags and widths).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, ListBuilder, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::error::{DataFusionError, Result};
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
    reg(
        ctx,
        "lpad",
        &[3],
        |_| DataType::Utf8,
        |a, strict| pad(a, strict, Side::Left),
    );
    reg(
        ctx,
        "rpad",
        &[3],
        |_| DataType::Utf8,
        |a, strict| pad(a, strict, Side::Right),
    );
    reg(
        ctx,
        "format",
        &(1..=12).collect::<Vec<_>>(),
        |_| DataType::Utf8,
        format,
    );
}

/// One argument of a `format` row: its text, its integer or its number, as a specifier wants.
fn format_value(a: &ArrayRef, i: usize, spec: char) -> Result<String> {
    use datafusion::arrow::array::AsArray;
    let cast_to = |t: &DataType| datafusion::arrow::compute::cast(&a.slice(i, 1), t);
    Ok(match spec {
        'd' | 'x' | 'X' => {
            if !a.data_type().is_integer() {
                return Err(invalid(format!(
                    "%{spec} takes an integer, not {}",
                    crate::athena_type(a.data_type())
                )));
            }
            let v = cast_to(&DataType::Int64)?;
            let v = v
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0);
            match spec {
                'd' => v.to_string(),
                'x' => format!("{v:x}"),
                _ => format!("{v:X}"),
            }
        }
        'f' | 'e' => {
            if !a.data_type().is_numeric() {
                return Err(invalid(format!(
                    "%{spec} takes a number, not {}",
                    crate::athena_type(a.data_type())
                )));
            }
            let v = cast_to(&DataType::Float64)?;
            v.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(0)
                .to_string()
        }
        _ => {
            let options = datafusion::arrow::util::display::FormatOptions::default().with_null("null");
            datafusion::arrow::util::display::ArrayFormatter::try_new(a.as_ref(), &options)?
                .value(i)
                .to_string()
        }
    })
}

/// `format(pattern, args…)` as Java's `String.format` for the common specifiers.
fn format(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let patterns = arg(a, 0, &DataType::Utf8)?;
    let patterns = texts(&patterns);
    let mut out = Vec::with_capacity(patterns.len());
    for row in 0..patterns.len() {
        if patterns.is_null(row) {
            out.push(None);
            continue;
        }
        let mut text = String::new();
        let mut chars = patterns.value(row).chars().peekable();
        let mut next = 1;
        while let Some(c) = chars.next() {
            if c != '%' {
                text.push(c);
                continue;
            }
            // %[flags][width][.precision]conversion
            let mut flags = String::new();
            while let Some(&f) = chars.peek().filter(|f| matches!(f, '-' | '0' | '+' | ',')) {
                flags.push(f);
                chars.next();
            }
            let mut width = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                width.push(d);
                chars.next();
            }
            let mut precision = None;
            if chars.peek() == Some(&'.') {
                chars.next();
                let mut p = String::new();
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    p.push(d);
                    chars.next();
                }
                precision = p.parse::<usize>().ok();
            }
            let Some(spec) = chars.next() else {
                return Err(invalid("format pattern ends within a specifier".into()));
            };
            if spec == '%' {
                text.push('%');
                continue;
            }
            if spec == 'n' {
                text.push('\n');
                continue;
            }
            let value = a
                .get(next)
                .ok_or_else(|| invalid(format!("format has no argument for %{spec}")))?;
            next += 1;
            let mut v = format_value(value, row, spec.to_ascii_lowercase())?;
            if let (Some(p), 'f') = (precision, spec) {
                v = format!("{:.p$}", v.parse::<f64>().unwrap_or(0.0));
            } else if spec == 'f' {
                v = format!("{:.6}", v.parse::<f64>().unwrap_or(0.0));
            } else if let (Some(p), 's') = (precision, spec) {
                v = v.chars().take(p).collect();
            }
            if spec == 'S' || spec == 'X' {
                v = v.to_uppercase();
            }
            if flags.contains(',') && spec == 'd' {
                // Java's grouping separator, every three digits.
                let (sign, digits) = v.split_at(usize::from(v.starts_with('-')));
                let grouped: Vec<String> = digits
                    .as_bytes()
                    .rchunks(3)
                    .rev()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                v = format!("{sign}{}", grouped.join(","));
            }
            if flags.contains('+') && matches!(spec, 'd' | 'f') && !v.starts_with('-') {
                v.insert(0, '+');
            }
            let width = width.parse::<usize>().unwrap_or(0);
            let len = v.chars().count();
            if len < width {
                let pad = width - len;
                if flags.contains('-') {
                    v.push_str(&" ".repeat(pad));
                } else if flags.contains('0') && matches!(spec, 'd' | 'f' | 'x' | 'X') {
                    let sign = usize::from(v.starts_with(['-', '+']));
                    v.insert_str(sign, &"0".repeat(pad));
                } else {
                    v.insert_str(0, &" ".repeat(pad));
                }
            }
            text.push_str(&v);
        }
        out.push(Some(text));
    }
    Ok(Arc::new(StringArray::from(out)))
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

enum Side {
    Left,
    Right,
}

/// Trino's `lpad`/`rpad(string, size, padstring)`: `string` padded (or cut) to `size` code
/// points. Unlike DataFusion's, the values one call builds count against the query's memory
/// limit: `lpad('x', 2000000000, 'y')` fails the query instead of taking gigabytes.
fn pad(a: &[ArrayRef], strict: bool, side: Side) -> Result<ArrayRef> {
    let s = arg(a, 0, &DataType::Utf8)?;
    let size = arg(a, 1, &DataType::Int64)?;
    let fill = arg(a, 2, &DataType::Utf8)?;
    let (s, size, fill) = (
        s.as_string::<i32>(),
        size.as_primitive::<Int64Type>(),
        fill.as_string::<i32>(),
    );
    let budget = crate::session::query_memory_limit();
    let mut built = 0usize;
    let mut out = StringBuilder::new();
    for i in 0..s.len() {
        if s.is_null(i) || size.is_null(i) || fill.is_null(i) {
            out.append_null();
            continue;
        }
        let (text, target, filler) = (s.value(i), size.value(i), fill.value(i));
        let problem = if !(0..=i64::from(i32::MAX)).contains(&target) {
            Some(format!("Target length must be in the range [0..{}]", i32::MAX))
        } else if filler.is_empty() {
            Some("Padding string must not be empty".to_owned())
        } else {
            None
        };
        if let Some(message) = problem {
            if strict {
                return Err(invalid(message));
            }
            out.append_null();
            continue;
        }
        let target = target as usize;
        let have = text.chars().count();
        if target <= have {
            let end = text.char_indices().nth(target).map_or(text.len(), |(b, _)| b);
            out.append_value(&text[..end]);
            continue;
        }
        // Bytes this value will take: the text plus the padding's share of the filler.
        let fill_chars = filler.chars().count();
        let missing = target - have;
        let bytes = text.len() + missing.div_ceil(fill_chars) * filler.len();
        built = built.saturating_add(bytes);
        if built > budget {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{} would build more than the query's memory limit of {budget} bytes",
                match side {
                    Side::Left => "lpad",
                    Side::Right => "rpad",
                }
            )));
        }
        let padding: String = filler.chars().cycle().take(missing).collect();
        match side {
            Side::Left => out.append_value(padding + text),
            Side::Right => out.append_value(text.to_owned() + &padding),
        }
    }
    Ok(Arc::new(out.finish()))
}
