//! JSON records to Parquet or ORC, with the columns of a Glue table. Each record is first read the
//! way the configured SerDe reads it (OpenX: case-insensitive keys, ColumnToJsonKeyMappings,
//! dots in keys as underscores; Hive JSON SerDe: its timestamp formats) and checked against
//! the column types; a record that does not fit goes to the error output
//! (`format-conversion-failed`), the rest are written.

use std::sync::Arc;

use arrow_schema::{Field, Schema};
use lakebox_glue::infer::types::{self, HiveType};
use lakebox_glue::model::Table;
use orc_rust::compression::CompressionType;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel};
use parquet::file::properties::WriterProperties;
use serde_json::{Map, Value};

use crate::convert::{Conversion, JsonInput, Output};
use crate::process::{Failed, Outgoing};

const MALFORMED: &str = "DataFormatConversion.MalformedData";
const INVALID_SCHEMA: &str = "DataFormatConversion.InvalidSchema";

/// The key of a JSON object that holds `column` under the SerDe's rules.
fn lookup<'a>(obj: &'a Map<String, Value>, column: &str, input: &JsonInput, top: bool) -> Option<&'a Value> {
    let wanted = if top {
        input
            .column_to_key
            .get(&column.to_lowercase())
            .map(String::as_str)
            .unwrap_or(column)
    } else {
        column
    };
    if let Some(v) = obj.get(wanted) {
        return Some(v);
    }
    let norm = |k: &str| {
        let k = if input.dots_to_underscores {
            k.replace('.', "_")
        } else {
            k.to_owned()
        };
        if input.case_insensitive {
            k.to_lowercase()
        } else {
            k
        }
    };
    let target = norm(wanted);
    obj.iter().find(|(k, _)| norm(k) == target).map(|(_, v)| v)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    lakebox_protocol::types::days_from_civil(y, m, d)
}

/// `yyyy-MM-dd`, checked.
fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (
        s[..4].parse().ok()?,
        s[5..7].parse().ok()?,
        s[8..10].parse().ok()?,
    );
    ((1..=12).contains(&m) && (1..=lakebox_protocol::types::days_in_month(y, m)).contains(&d))
        .then(|| days_from_civil(y, m, d))
}

/// Timestamps as the SerDes read them: `yyyy-MM-dd HH:mm:ss[.f…]` (Hive's default), ISO 8601
/// with `T` and an optional `Z` or offset, and with the Hive JSON SerDe its TimestampFormats
/// (Joda patterns, or `millis` for epoch milliseconds). Numbers are epoch milliseconds.
fn parse_timestamp(v: &Value, formats: &[String]) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => {
            for f in formats {
                if f == "millis" {
                    if let Ok(n) = s.parse::<i64>() {
                        return Some(n);
                    }
                } else if let Some(t) = parse_with_pattern(s, f) {
                    return Some(t);
                }
            }
            lakebox_protocol::Timestamp::parse_iso8601(&s.replacen(' ', "T", 1))
                .or_else(|| {
                    lakebox_protocol::Timestamp::parse_iso8601(&format!("{}Z", s.replacen(' ', "T", 1)))
                })
                .map(|t| t.as_millis())
        }
        _ => None,
    }
}

/// A Joda/Java date pattern of `yyyy MM dd HH mm ss SSS` and literal text.
fn parse_with_pattern(s: &str, pattern: &str) -> Option<i64> {
    let (mut y, mut mo, mut d, mut h, mut mi, mut se, mut ms) = (1970i64, 1u32, 1u32, 0i64, 0i64, 0i64, 0i64);
    let pb: Vec<char> = pattern.chars().collect();
    let sb: Vec<char> = s.chars().collect();
    let (mut i, mut j) = (0, 0);
    while i < pb.len() {
        let c = pb[i];
        if c == '\'' {
            let end = pb[i + 1..].iter().position(|&x| x == '\'')? + i + 1;
            for &lit in &pb[i + 1..end] {
                if sb.get(j) != Some(&lit) {
                    return None;
                }
                j += 1;
            }
            i = end + 1;
            continue;
        }
        if c.is_ascii_alphabetic() {
            let mut n = 1;
            while i + n < pb.len() && pb[i + n] == c {
                n += 1;
            }
            let digits: String = sb[j..]
                .iter()
                .take(n.max(if c == 'y' { 4 } else { n }))
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if digits.is_empty() {
                return None;
            }
            j += digits.len();
            let v: i64 = digits.parse().ok()?;
            match c {
                'y' => y = v,
                'M' => mo = v as u32,
                'd' => d = v as u32,
                'H' => h = v,
                'm' => mi = v,
                's' => se = v,
                'S' => {
                    ms = v * 10i64.pow(3u32.saturating_sub(digits.len() as u32))
                        / if digits.len() > 3 {
                            10i64.pow(digits.len() as u32 - 3)
                        } else {
                            1
                        }
                }
                _ => return None,
            }
            i += n;
        } else {
            if sb.get(j) != Some(&c) {
                return None;
            }
            i += 1;
            j += 1;
        }
    }
    if j != sb.len() || !(1..=12).contains(&mo) || d == 0 || d > lakebox_protocol::types::days_in_month(y, mo)
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400_000 + ((h * 60 + mi) * 60 + se) * 1000 + ms)
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The value as the column's type reads it, or why not.
fn normalize(v: &Value, t: &HiveType, input: &JsonInput) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let bad = || format!("value {v} cannot be read as {t}");
    Ok(match t {
        HiveType::Unknown | HiveType::String => Value::String(as_text(v)),
        HiveType::Boolean => match v {
            Value::Bool(b) => Value::Bool(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => {
                Value::Bool(s.eq_ignore_ascii_case("true"))
            }
            _ => return Err(bad()),
        },
        HiveType::TinyInt | HiveType::SmallInt | HiveType::Int | HiveType::BigInt => {
            let n: i64 = match v {
                Value::Number(n) => n.as_i64().ok_or_else(bad)?,
                Value::String(s) => s.trim().parse().map_err(|_| bad())?,
                _ => return Err(bad()),
            };
            let (lo, hi) = match t {
                HiveType::TinyInt => (i8::MIN as i64, i8::MAX as i64),
                HiveType::SmallInt => (i16::MIN as i64, i16::MAX as i64),
                HiveType::Int => (i32::MIN as i64, i32::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            if n < lo || n > hi {
                return Err(format!("value {n} is out of range for {t}"));
            }
            Value::from(n)
        }
        HiveType::Float | HiveType::Double => {
            let f: f64 = match v {
                Value::Number(n) => n.as_f64().ok_or_else(bad)?,
                Value::String(s) => s.trim().parse().map_err(|_| bad())?,
                _ => return Err(bad()),
            };
            serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(bad)?
        }
        HiveType::Decimal(..) => match v {
            Value::Number(n) => Value::String(n.to_string()),
            Value::String(s) if s.trim().parse::<f64>().is_ok() => Value::String(s.trim().to_owned()),
            _ => return Err(bad()),
        },
        HiveType::Timestamp => Value::from(parse_timestamp(v, &input.timestamp_formats).ok_or_else(bad)?),
        HiveType::Date => match v {
            Value::String(s) => Value::from(parse_date(s).ok_or_else(bad)?),
            Value::Number(n) => Value::from(n.as_i64().ok_or_else(bad)?),
            _ => return Err(bad()),
        },
        HiveType::Binary => Value::String(as_text(v)),
        HiveType::Array(e) => match v {
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| normalize(i, e, input))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(bad()),
        },
        HiveType::Map(k, val) => match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (key, x) in m {
                    let key = match normalize(&Value::String(key.clone()), k, input)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    out.insert(key, normalize(x, val, input)?);
                }
                Value::Object(out)
            }
            _ => return Err(bad()),
        },
        HiveType::Struct(fields) => match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (name, ft) in fields {
                    let x = lookup(m, name, input, false).unwrap_or(&Value::Null);
                    out.insert(name.clone(), normalize(x, ft, input)?);
                }
                Value::Object(out)
            }
            _ => return Err(bad()),
        },
    })
}

fn fail(r: &Outgoing, code: &str, message: String) -> Failed {
    Failed {
        data: r.data.clone(),
        arrival_millis: r.arrival_millis,
        code: code.into(),
        message,
        lambda: None,
    }
}

/// Whether the ORC writer can write a column of this type (orc-rust writes flat columns:
/// numbers, strings, binary, booleans, dates and timestamps).
fn orc_writable(t: &HiveType) -> bool {
    !matches!(
        t,
        HiveType::Decimal(..) | HiveType::Array(_) | HiveType::Map(..) | HiveType::Struct(_)
    )
}

/// Converts a group of records into one Parquet or ORC file; returns the file (if any record
/// made it) and the records that could not be converted.
pub fn write(table: &Table, conv: &Conversion, records: &[Outgoing]) -> (Option<Vec<u8>>, Vec<Failed>) {
    let columns: Result<Vec<(String, HiveType)>, String> = table
        .columns()
        .iter()
        .map(|c| types::parse(c.type_name()).map(|t| (c.name.to_lowercase(), t)))
        .collect();
    let columns = match columns {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => {
            let msg = "The schema is invalid. The specified table has no columns.".to_string();
            return (
                None,
                records
                    .iter()
                    .map(|r| fail(r, INVALID_SCHEMA, msg.clone()))
                    .collect(),
            );
        }
        Err(e) => {
            let msg = format!("The schema is invalid: {e}");
            return (
                None,
                records
                    .iter()
                    .map(|r| fail(r, INVALID_SCHEMA, msg.clone()))
                    .collect(),
            );
        }
    };
    if let Output::Orc { .. } = conv.output
        && let Some((name, t)) = columns.iter().find(|(_, t)| !orc_writable(t))
    {
        let msg = format!(
            "Column {name} has type {t}, which Lakebox cannot write to ORC yet (decimal and nested types); use ParquetSerDe for this table."
        );
        return (
            None,
            records
                .iter()
                .map(|r| fail(r, INVALID_SCHEMA, msg.clone()))
                .collect(),
        );
    }
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, t)| Field::new(n.clone(), t.arrow_type(), true))
            .collect::<Vec<_>>(),
    ));
    let mut rows = Vec::with_capacity(records.len());
    let mut failed = Vec::new();
    for r in records {
        let doc: Value = match serde_json::from_slice(r.data.trim_ascii()) {
            Ok(Value::Object(m)) => Value::Object(m),
            Ok(_) => {
                failed.push(fail(r, MALFORMED, "The record is not a JSON object.".into()));
                continue;
            }
            Err(e) => {
                failed.push(fail(r, MALFORMED, format!("The record is not valid JSON: {e}")));
                continue;
            }
        };
        let obj = doc.as_object().expect("checked above");
        let mut row = Map::new();
        let mut error = None;
        for (name, t) in &columns {
            let v = lookup(obj, name, &conv.input, true).unwrap_or(&Value::Null);
            match normalize(v, t, &conv.input) {
                Ok(x) => {
                    row.insert(name.clone(), x);
                }
                Err(e) => {
                    error = Some(format!("Column {name}: {e}"));
                    break;
                }
            }
        }
        match error {
            Some(e) => failed.push(fail(r, MALFORMED, e)),
            None => rows.push(Value::Object(row)),
        }
    }
    if rows.is_empty() {
        return (None, failed);
    }
    match encode(schema, &rows, conv) {
        Ok(bytes) => (Some(bytes), failed),
        Err(e) => {
            let msg = format!("Conversion failed: {e}");
            failed.extend(records.iter().map(|r| fail(r, MALFORMED, msg.clone())));
            (None, failed)
        }
    }
}

fn encode(schema: Arc<Schema>, rows: &[Value], conv: &Conversion) -> Result<Vec<u8>, String> {
    let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len().max(1))
        .build_decoder()
        .map_err(|e| e.to_string())?;
    decoder.serialize(rows).map_err(|e| e.to_string())?;
    let batch = decoder.flush().map_err(|e| e.to_string())?.ok_or("no rows")?;
    let mut out = Vec::new();
    match &conv.output {
        Output::Parquet { compression } => {
            let compression = match compression.as_str() {
                "UNCOMPRESSED" => Compression::UNCOMPRESSED,
                "GZIP" => Compression::GZIP(GzipLevel::default()),
                _ => Compression::SNAPPY,
            };
            let props = WriterProperties::builder().set_compression(compression).build();
            let mut writer =
                ArrowWriter::try_new(&mut out, schema, Some(props)).map_err(|e| e.to_string())?;
            writer.write(&batch).map_err(|e| e.to_string())?;
            writer.close().map_err(|e| e.to_string())?;
        }
        Output::Orc { compression } => {
            let mut builder = orc_rust::ArrowWriterBuilder::new(&mut out, schema);
            match compression.as_str() {
                "ZLIB" => builder = builder.with_compression(CompressionType::Zlib),
                "SNAPPY" => builder = builder.with_compression(CompressionType::Snappy),
                _ => {}
            }
            let mut writer = builder.try_build().map_err(|e| e.to_string())?;
            writer.write(&batch).map_err(|e| e.to_string())?;
            writer.close().map_err(|e| e.to_string())?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_dates() {
        assert_eq!(
            parse_timestamp(&Value::from("1970-01-01 00:00:01.5"), &[]),
            Some(1500)
        );
        assert_eq!(
            parse_timestamp(&Value::from("1970-01-01T00:00:02Z"), &[]),
            Some(2000)
        );
        assert_eq!(parse_timestamp(&Value::from(1234), &[]), Some(1234));
        let f = vec!["yyyy/MM/dd'T'HH:mm".to_string(), "millis".to_string()];
        assert_eq!(
            parse_timestamp(&Value::from("1970/01/02T00:01"), &f),
            Some(86_460_000)
        );
        assert_eq!(parse_timestamp(&Value::from("99"), &f), Some(99));
        assert_eq!(parse_date("1970-01-11"), Some(10));
        assert_eq!(parse_date("1970-02-30"), None);
    }

    #[test]
    fn openx_lookup_rules() {
        let obj: Map<String, Value> = serde_json::from_str(r#"{"User.Name": "a", "ID": 5}"#).unwrap();
        let mut input = JsonInput {
            case_insensitive: true,
            dots_to_underscores: true,
            ..Default::default()
        };
        assert_eq!(lookup(&obj, "user_name", &input, true), Some(&Value::from("a")));
        assert_eq!(lookup(&obj, "id", &input, true), Some(&Value::from(5)));
        input.case_insensitive = false;
        assert_eq!(lookup(&obj, "id", &input, true), None);
        input.column_to_key.insert("ident".into(), "ID".into());
        assert_eq!(lookup(&obj, "ident", &input, true), Some(&Value::from(5)));
    }
}
