//! Trino's date and time functions: MySQL-style `date_parse`/`date_format`, ISO 8601 and Unix
//! time conversions, `date_add`/`date_diff` by unit, and the field extractors (`year`, `hour`,
//! `day_of_week`, …). Timestamps are Trino's `timestamp(3)`: milliseconds.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveDateTime, Timelike};
use datafusion::arrow::array::{
    Array, ArrayRef, Date32Array, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use lakebox_core::javatime::JavaPattern;

use super::{arg, invalid, register as reg, utc};

const TS: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);
const EPOCH_DAYS_CE: i32 = 719_163;

fn ts_tz() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, utc())
}

pub fn register(ctx: &SessionContext) {
    reg(ctx, "date_parse", &[2], |_| TS, date_parse);
    reg(ctx, "date_format", &[2], |_| DataType::Utf8, date_format);
    reg(ctx, "format_datetime", &[2], |_| DataType::Utf8, format_datetime);
    reg(ctx, "parse_datetime", &[2], |_| ts_tz(), parse_datetime);
    reg(
        ctx,
        "from_iso8601_timestamp",
        &[1],
        |_| ts_tz(),
        from_iso8601_timestamp,
    );
    reg(
        ctx,
        "from_iso8601_date",
        &[1],
        |_| DataType::Date32,
        from_iso8601_date,
    );
    reg(ctx, "from_unixtime", &[1], |_| ts_tz(), from_unixtime);
    reg(ctx, "to_unixtime", &[1], |_| DataType::Float64, to_unixtime);
    reg(
        ctx,
        "date_add",
        &[3],
        |t| {
            if t.get(2) == Some(&DataType::Date32) {
                DataType::Date32
            } else {
                t.get(2).cloned().unwrap_or(TS)
            }
        },
        date_add,
    );
    reg(ctx, "date_diff", &[3], |_| DataType::Int64, date_diff);
    reg(ctx, "to_iso8601", &[1], |_| DataType::Utf8, to_iso8601);
    reg(
        ctx,
        "last_day_of_month",
        &[1],
        |_| DataType::Date32,
        last_day_of_month,
    );
    for (name, extract) in FIELDS {
        ctx.register_udf(ScalarUDF::new_from_impl(Field {
            name,
            extract: *extract,
            signature: Signature::any(1, Volatility::Immutable),
        }));
    }
}

/// MySQL format specifiers (Trino's `date_parse`/`date_format`) in chrono's spelling.
pub fn mysql_to_chrono(format: &str) -> String {
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = match chars.next() {
            Some('Y') => "%Y",
            Some('y') => "%y",
            Some('m') | Some('c') => "%m",
            Some('d') | Some('e') => "%d",
            Some('H') | Some('k') => "%H",
            Some('h') | Some('I') | Some('l') => "%I",
            Some('i') => "%M",
            Some('s') | Some('S') => "%S",
            Some('f') => "%6f",
            Some('p') => "%p",
            Some('a') => "%a",
            Some('W') => "%A",
            Some('b') => "%b",
            Some('M') => "%B",
            Some('j') => "%j",
            Some('T') => "%H:%M:%S",
            Some('r') => "%I:%M:%S %p",
            Some('%') => "%%",
            Some(other) => {
                out.push(other);
                continue;
            }
            None => break,
        };
        out.push_str(spec);
    }
    out
}

fn millis(dt: NaiveDateTime) -> i64 {
    dt.and_utc().timestamp_millis()
}

fn naive(ms: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_millis(ms).map(|d| d.naive_utc())
}

/// Each row's text (argument 1) parsed by `parse`, given the row's format (argument 2) when
/// the function takes one; text that does not parse fails the query with `error` unless the
/// call is lenient (`try`).
fn parse_rows<T>(
    a: &[ArrayRef],
    strict: bool,
    with_format: bool,
    parse: impl Fn(&str, &str) -> Option<T>,
    error: impl Fn(&str, &str) -> String,
) -> Result<Vec<Option<T>>> {
    let s = arg(a, 0, &DataType::Utf8)?;
    let s = strings(&s);
    let f = if with_format {
        Some(arg(a, 1, &DataType::Utf8)?)
    } else {
        None
    };
    let f = f.as_ref().map(strings);
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || f.is_some_and(|f| f.is_null(i)) {
            out.push(None);
            continue;
        }
        let (v, fmt) = (s.value(i), f.map_or("", |f| f.value(i)));
        match parse(v, fmt) {
            Some(x) => out.push(Some(x)),
            None if strict => return Err(invalid(error(v, fmt))),
            None => out.push(None),
        }
    }
    Ok(out)
}

fn date_parse(a: &[ArrayRef], strict: bool) -> Result<ArrayRef> {
    let parse = |v: &str, mysql: &str| {
        let fmt = mysql_to_chrono(mysql);
        NaiveDateTime::parse_from_str(v, &fmt)
            .ok()
            .or_else(|| {
                NaiveDate::parse_from_str(v, &fmt)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
            .or_else(|| {
                // A year alone (`%Y`) or year and month: the first day.
                NaiveDate::parse_from_str(&format!("{v}-01-01"), &format!("{fmt}-%m-%d"))
                    .ok()
                    .or_else(|| NaiveDate::parse_from_str(&format!("{v}-01"), &format!("{fmt}-%d")).ok())
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
            .map(millis)
    };
    let error = |v: &str, f: &str| format!("Invalid format: \"{v}\" does not match \"{f}\"");
    let out = parse_rows(a, strict, true, parse, error)?;
    Ok(Arc::new(TimestampMillisecondArray::from(out)))
}

fn strings(a: &ArrayRef) -> &StringArray {
    a.as_any().downcast_ref::<StringArray>().expect("cast to Utf8")
}

fn timestamps(a: &[ArrayRef], i: usize) -> Result<TimestampMillisecondArray> {
    let t = arg(a, i, &TS)?;
    Ok(t.as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .expect("cast to timestamp")
        .clone())
}

fn date_format(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let (t, f) = (timestamps(a, 0)?, arg(a, 1, &DataType::Utf8)?);
    let f = strings(&f);
    let out: StringArray = (0..t.len())
        .map(|i| {
            if t.is_null(i) || f.is_null(i) {
                return None;
            }
            naive(t.value(i)).map(|d| d.format(&mysql_to_chrono(f.value(i))).to_string())
        })
        .collect();
    Ok(Arc::new(out))
}

/// `format_datetime(timestamp, 'yyyy-MM-dd HH:mm')`: Joda/Java pattern letters.
fn format_datetime(a: &[ArrayRef], strict: bool) -> Result<ArrayRef> {
    let (t, f) = (timestamps(a, 0)?, arg(a, 1, &DataType::Utf8)?);
    let f = strings(&f);
    let mut out = Vec::with_capacity(t.len());
    for i in 0..t.len() {
        if t.is_null(i) || f.is_null(i) {
            out.push(None);
            continue;
        }
        let pattern = match JavaPattern::parse(f.value(i)) {
            Ok(p) => p,
            Err(e) if strict => return Err(invalid(format!("Invalid format '{}': {e}", f.value(i)))),
            Err(_) => {
                out.push(None);
                continue;
            }
        };
        out.push(naive(t.value(i)).map(|d| pattern.format(&d.and_utc())));
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// `parse_datetime(text, 'yyyy-MM-dd HH:mm')` → timestamp with time zone (UTC).
fn parse_datetime(a: &[ArrayRef], strict: bool) -> Result<ArrayRef> {
    let parse = |v: &str, f: &str| JavaPattern::parse(f).ok()?.parse_datetime(v).map(millis);
    let error = |v: &str, f: &str| format!("Invalid format: \"{v}\" is malformed for \"{f}\"");
    let out = parse_rows(a, strict, true, parse, error)?;
    Ok(Arc::new(
        TimestampMillisecondArray::from(out).with_timezone("UTC"),
    ))
}

/// ISO 8601 as Trino reads it: a date, or a date and time with optional fraction and zone
/// (`Z`, `+02:00`, `+0200`); no zone means UTC.
fn parse_iso(v: &str) -> Option<i64> {
    let v = v.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(v) {
        return Some(d.timestamp_millis());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H%:z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(v, f) {
            return Some(d.timestamp_millis());
        }
    }
    let v = v.trim_end_matches('Z');
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(v, f) {
            return Some(millis(d));
        }
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .or_else(|| NaiveDate::parse_from_str(&format!("{v}-01"), "%Y-%m-%d").ok())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(millis)
}

fn from_iso8601_timestamp(a: &[ArrayRef], strict: bool) -> Result<ArrayRef> {
    let error = |v: &str, _: &str| format!("Invalid format: \"{v}\"");
    let out = parse_rows(a, strict, false, |v, _| parse_iso(v), error)?;
    Ok(Arc::new(
        TimestampMillisecondArray::from(out).with_timezone("UTC"),
    ))
}

fn from_iso8601_date(a: &[ArrayRef], strict: bool) -> Result<ArrayRef> {
    let parse = |v: &str, _: &str| {
        NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
            .ok()
            .map(|d| d.num_days_from_ce() - EPOCH_DAYS_CE)
    };
    let error = |v: &str, _: &str| format!("Invalid format: \"{v}\"");
    let out = parse_rows(a, strict, false, parse, error)?;
    Ok(Arc::new(Date32Array::from(out)))
}

fn from_unixtime(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let secs = arg(a, 0, &DataType::Float64)?;
    let secs = secs
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("cast to double");
    let out: TimestampMillisecondArray = secs
        .iter()
        .map(|s| s.map(|s| (s * 1000.0).round() as i64))
        .collect();
    Ok(Arc::new(out.with_timezone("UTC")))
}

fn to_unixtime(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let t = timestamps(a, 0)?;
    let out: Float64Array = t.iter().map(|v| v.map(|ms| ms as f64 / 1000.0)).collect();
    Ok(Arc::new(out))
}

fn unit_millis(unit: &str) -> Option<i64> {
    Some(match unit {
        "millisecond" => 1,
        "second" => 1_000,
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        "week" => 7 * 86_400_000,
        _ => return None,
    })
}

fn unit_months(unit: &str) -> Option<i64> {
    Some(match unit {
        "month" => 1,
        "quarter" => 3,
        "year" => 12,
        _ => return None,
    })
}

fn add(ms: i64, unit: &str, n: i64) -> Option<i64> {
    if let Some(u) = unit_millis(unit) {
        return ms.checked_add(n.checked_mul(u)?);
    }
    let months = n.checked_mul(unit_months(unit)?)?;
    let d = naive(ms)?;
    let moved = if months >= 0 {
        d.checked_add_months(Months::new(u32::try_from(months).ok()?))?
    } else {
        d.checked_sub_months(Months::new(u32::try_from(-months).ok()?))?
    };
    Some(millis(moved))
}

fn date_add(a: &[ArrayRef], strict: bool) -> Result<ArrayRef> {
    let unit = arg(a, 0, &DataType::Utf8)?;
    let unit = strings(&unit);
    let n = arg(a, 1, &DataType::Int64)?;
    let n = n.as_any().downcast_ref::<Int64Array>().expect("cast to bigint");
    let is_date = a.get(2).map(|x| x.data_type()) == Some(&DataType::Date32);
    let original_type = a.get(2).map(|x| x.data_type().clone()).unwrap_or(TS);
    let t = timestamps(a, 2)?;
    let mut out = Vec::with_capacity(t.len());
    for i in 0..t.len() {
        if t.is_null(i) || n.is_null(i) || unit.is_null(i) {
            out.push(None);
            continue;
        }
        let u = unit.value(i).to_lowercase();
        match add(t.value(i), &u, n.value(i)) {
            Some(v) => out.push(Some(v)),
            None if strict => {
                return Err(invalid(format!(
                    "'{u}' is not a valid unit, or the result is out of range"
                )));
            }
            None => out.push(None),
        }
    }
    let result: ArrayRef = Arc::new(TimestampMillisecondArray::from(out));
    if is_date {
        return Ok(datafusion::arrow::compute::cast(&result, &DataType::Date32)?);
    }
    Ok(datafusion::arrow::compute::cast(&result, &original_type)?)
}

/// Whole `unit`s from `a` to `b`, truncated toward zero as Trino counts them.
fn diff(a: i64, b: i64, unit: &str) -> Option<i64> {
    if let Some(u) = unit_millis(unit) {
        return Some((b - a) / u);
    }
    let per = unit_months(unit)?;
    let (da, db) = (naive(a)?, naive(b)?);
    let mut months = (db.year() as i64 - da.year() as i64) * 12 + (db.month() as i64 - da.month() as i64);
    // A month only counts once the day and time of day are reached.
    let rest = |d: NaiveDateTime| (d.day(), d.time());
    if months > 0 && rest(db) < rest(da) {
        months -= 1;
    } else if months < 0 && rest(db) > rest(da) {
        months += 1;
    }
    Some(months / per)
}

fn date_diff(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let unit = arg(a, 0, &DataType::Utf8)?;
    let unit = strings(&unit);
    let (x, y) = (timestamps(a, 1)?, timestamps(a, 2)?);
    let mut out = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        if x.is_null(i) || y.is_null(i) || unit.is_null(i) {
            out.push(None);
            continue;
        }
        let u = unit.value(i).to_lowercase();
        out.push(Some(
            diff(x.value(i), y.value(i), &u).ok_or_else(|| invalid(format!("'{u}' is not a valid unit")))?,
        ));
    }
    Ok(Arc::new(Int64Array::from(out)))
}

type Extract = fn(NaiveDateTime) -> i64;

const FIELDS: &[(&str, Extract)] = &[
    ("year", |d| d.year() as i64),
    ("quarter", |d| (d.month0() / 3 + 1) as i64),
    ("month", |d| d.month() as i64),
    ("week", |d| d.iso_week().week() as i64),
    ("week_of_year", |d| d.iso_week().week() as i64),
    ("year_of_week", |d| d.iso_week().year() as i64),
    ("yow", |d| d.iso_week().year() as i64),
    ("day", |d| d.day() as i64),
    ("day_of_month", |d| d.day() as i64),
    ("day_of_week", |d| d.weekday().number_from_monday() as i64),
    ("dow", |d| d.weekday().number_from_monday() as i64),
    ("day_of_year", |d| d.ordinal() as i64),
    ("doy", |d| d.ordinal() as i64),
    ("hour", |d| d.hour() as i64),
    ("minute", |d| d.minute() as i64),
    ("second", |d| d.second() as i64),
    ("millisecond", |d| (d.nanosecond() / 1_000_000) as i64),
];

/// A field extractor (`year(x)`, `hour(x)`, …) over dates and timestamps.
#[derive(Debug)]
struct Field {
    name: &'static str,
    extract: Extract,
    signature: Signature,
}

impl PartialEq for Field {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Field {}

impl std::hash::Hash for Field {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for Field {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let t = timestamps(&arrays, 0)?;
        let out: Int64Array = t.iter().map(|v| v.and_then(naive).map(self.extract)).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `to_iso8601(x)`: a date as `2024-01-31`, a timestamp as `2024-01-31T08:00:00.000` (with `Z`
/// when it has a zone), as Trino writes them.
fn to_iso8601(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let zoned = matches!(a[0].data_type(), DataType::Timestamp(_, Some(_)));
    let out: StringArray = if matches!(a[0].data_type(), DataType::Date32 | DataType::Date64) {
        let d = arg(a, 0, &DataType::Date32)?;
        d.as_any()
            .downcast_ref::<datafusion::arrow::array::Date32Array>()
            .expect("cast to date")
            .iter()
            .map(|v| {
                v.and_then(|v| naive(i64::from(v) * 86_400_000))
                    .map(|d| d.format("%Y-%m-%d").to_string())
            })
            .collect()
    } else {
        let zone = if zoned { "Z" } else { "" };
        timestamps(a, 0)?
            .iter()
            .map(|v| {
                v.and_then(naive)
                    .map(|d| format!("{}{zone}", d.format("%Y-%m-%dT%H:%M:%S%.3f")))
            })
            .collect()
    };
    Ok(Arc::new(out))
}

/// `last_day_of_month(x)`: the last day of the month `x` falls in.
fn last_day_of_month(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let out: datafusion::arrow::array::Date32Array = timestamps(a, 0)?
        .iter()
        .map(|v| {
            let d = naive(v?)?.date();
            let first_next = if d.month() == 12 {
                NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)?
            };
            let last = first_next.pred_opt()?;
            Some(last.num_days_from_ce() - EPOCH_DAYS_CE)
        })
        .collect();
    Ok(Arc::new(out))
}
