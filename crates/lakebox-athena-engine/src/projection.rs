//! Athena's partition projection: with `projection.enabled` the partitions are not read from
//! Glue but computed from the table properties — `enum` values, `integer` ranges (with
//! `interval` and `digits`), `date` ranges (Java date `format`, `NOW±N<UNIT>` bounds, `interval`
//! and `interval.unit`) and `injected` values taken from the query's equality filters — and
//! each partition's location comes from `storage.location.template` (`${column}` placeholders)
//! or, without one, the Hive-style `<location>/column=value/`.

use chrono::{Duration, Months, NaiveDateTime, Utc};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use lakebox_core::javatime::JavaPattern;
use lakebox_glue::model::Table;

/// Partitions a query may enumerate before Athena's own limit would stop it.
const MAX_PARTITIONS: usize = 1_000_000;

fn error(m: impl Into<String>) -> DataFusionError {
    DataFusionError::Plan(format!("HIVE_METASTORE_ERROR: {}", m.into()))
}

pub fn enabled(t: &Table) -> bool {
    t.parameter("projection.enabled")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// `NOW`, `NOW-3YEARS`, `NOW+1DAYS`: a moment relative to now.
fn relative(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    let rest = t.strip_prefix("NOW").or_else(|| t.strip_prefix("now"))?;
    let now = Utc::now().naive_utc();
    if rest.is_empty() {
        return Some(now);
    }
    let (sign, rest) = match rest.as_bytes().first()? {
        b'+' => (1i64, &rest[1..]),
        b'-' => (-1i64, &rest[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let n: i64 = digits.parse().ok()?;
    add(now, sign * n, &rest[digits.len()..].to_ascii_uppercase())
}

fn add(t: NaiveDateTime, n: i64, unit: &str) -> Option<NaiveDateTime> {
    let months = |m: i64| {
        if m >= 0 {
            t.checked_add_months(Months::new(u32::try_from(m).ok()?))
        } else {
            t.checked_sub_months(Months::new(u32::try_from(-m).ok()?))
        }
    };
    match unit.trim_end_matches('S') {
        "YEAR" => months(n * 12),
        "MONTH" => months(n),
        "WEEK" => t.checked_add_signed(Duration::weeks(n)),
        "DAY" => t.checked_add_signed(Duration::days(n)),
        "HOUR" => t.checked_add_signed(Duration::hours(n)),
        "MINUTE" => t.checked_add_signed(Duration::minutes(n)),
        "SECOND" => t.checked_add_signed(Duration::seconds(n)),
        _ => None,
    }
}

/// The values `injected` columns get from `column = 'v'` or `column IN (…)` filters.
fn injected(column: &str, filters: &[Expr]) -> Vec<String> {
    let mut out = Vec::new();
    let literal = |e: &Expr| match e {
        Expr::Literal(v, _) if !v.is_null() => Some(v.to_string()),
        _ => None,
    };
    let is_col = |e: &Expr| matches!(e, Expr::Column(c) if c.name == column);
    for f in filters {
        match f {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => {
                if is_col(left) {
                    out.extend(literal(right));
                } else if is_col(right) {
                    out.extend(literal(left));
                }
            }
            Expr::InList(l) if !l.negated && is_col(&l.expr) => out.extend(l.list.iter().filter_map(literal)),
            _ => {}
        }
    }
    out
}

/// The values a projected column takes.
fn values(t: &Table, column: &str, filters: &[Expr]) -> Result<Vec<String>> {
    let prop = |k: &str| t.parameter(&format!("projection.{column}.{k}")).map(str::trim);
    let kind =
        prop("type").ok_or_else(|| error(format!("Column {column} has no projection.{column}.type")))?;
    let list = |k: &str| -> Result<Vec<String>> {
        Ok(prop(k)
            .ok_or_else(|| error(format!("projection.{column}.{k} is required for type {kind}")))?
            .split(',')
            .map(|v| v.trim().to_owned())
            .collect())
    };
    match kind.to_ascii_lowercase().as_str() {
        "enum" => list("values"),
        "injected" => {
            let v = injected(column, filters);
            if v.is_empty() {
                return Err(DataFusionError::Plan(format!(
                    "CONSTRAINT_VIOLATION: For the injected projected partition column {column}, the WHERE clause must contain only static equality conditions, and at least one such condition must be present."
                )));
            }
            Ok(v)
        }
        "integer" => {
            let range = list("range")?;
            let [lo, hi] = range.as_slice() else {
                return Err(error(format!("projection.{column}.range must be 'low,high'")));
            };
            let (lo, hi): (i64, i64) = (
                lo.parse().map_err(|_| error(format!("Bad integer {lo}")))?,
                hi.parse().map_err(|_| error(format!("Bad integer {hi}")))?,
            );
            let step: i64 = prop("interval")
                .map(str::parse)
                .transpose()
                .map_err(|_| error("Bad interval"))?
                .unwrap_or(1);
            let digits: usize = prop("digits")
                .map(str::parse)
                .transpose()
                .map_err(|_| error("Bad digits"))?
                .unwrap_or(0);
            if step <= 0 || ((hi - lo) / step) as usize > MAX_PARTITIONS {
                return Err(error(format!(
                    "projection.{column}: the range has too many values"
                )));
            }
            Ok((lo..=hi)
                .step_by(step as usize)
                .map(|v| format!("{v:0digits$}"))
                .collect())
        }
        "date" => {
            let format =
                prop("format").ok_or_else(|| error(format!("projection.{column}.format is required")))?;
            let pattern =
                JavaPattern::parse(format).map_err(|e| error(format!("projection.{column}.format: {e}")))?;
            let range = list("range")?;
            let [lo, hi] = range.as_slice() else {
                return Err(error(format!("projection.{column}.range must be 'start,end'")));
            };
            let bound = |s: &str| {
                relative(s).or_else(|| pattern.parse_datetime(s)).ok_or_else(|| {
                    error(format!(
                        "'{s}' is neither NOW±N<UNIT> nor a date in format {format}"
                    ))
                })
            };
            let (lo, hi) = (bound(lo)?, bound(hi)?);
            let unit = prop("interval.unit")
                .map(str::to_ascii_uppercase)
                .unwrap_or_else(|| {
                    // Without a unit, the finest field of the format.
                    if format.contains('s') {
                        "SECONDS"
                    } else if format.contains('m') {
                        "MINUTES"
                    } else if format.contains('H') || format.contains('h') || format.contains('k') {
                        "HOURS"
                    } else if format.contains('d') || format.contains('D') {
                        "DAYS"
                    } else if format.contains('M') {
                        "MONTHS"
                    } else {
                        "YEARS"
                    }
                    .into()
                });
            let step: i64 = prop("interval")
                .map(str::parse)
                .transpose()
                .map_err(|_| error("Bad interval"))?
                .unwrap_or(1);
            let mut out = Vec::new();
            let mut i = 0;
            while let Some(t) = add(lo, step * i, &unit) {
                if t > hi {
                    break;
                }
                out.push(pattern.format(&t.and_utc()));
                i += 1;
                if out.len() > MAX_PARTITIONS || step <= 0 {
                    return Err(error(format!(
                        "projection.{column}: the range has too many values"
                    )));
                }
            }
            out.dedup();
            Ok(out)
        }
        other => Err(error(format!(
            "Unknown projection type '{other}' for column {column}"
        ))),
    }
}

/// Every projected partition: its location and its values (as text, in key order).
pub fn partitions(t: &Table, filters: &[Expr]) -> Result<Vec<(String, Vec<String>)>> {
    let keys: Vec<String> = t.partition_keys().iter().map(|k| k.name.to_lowercase()).collect();
    let per_key = keys
        .iter()
        .map(|k| values(t, k, filters))
        .collect::<Result<Vec<_>>>()?;
    let total = per_key.iter().try_fold(1usize, |acc, v| acc.checked_mul(v.len()));
    if total.is_none_or(|n| n > MAX_PARTITIONS) {
        return Err(error(format!(
            "Partition projection of {}.{} yields more than {MAX_PARTITIONS} partitions; narrow the ranges.",
            t.database(),
            t.name
        )));
    }
    let template = t.parameter("storage.location.template").map(str::to_owned);
    let base = t.location().unwrap_or_default().trim_end_matches('/').to_owned();
    let mut out = Vec::new();
    let mut combo = vec![0usize; keys.len()];
    if per_key.iter().any(Vec::is_empty) {
        return Ok(out);
    }
    loop {
        let values: Vec<String> = combo
            .iter()
            .enumerate()
            .map(|(i, &j)| per_key[i][j].clone())
            .collect();
        let location = match &template {
            Some(tpl) => keys
                .iter()
                .zip(&values)
                .fold(tpl.clone(), |acc, (k, v)| acc.replace(&format!("${{{k}}}"), v)),
            None => format!(
                "{base}/{}",
                keys.iter()
                    .zip(&values)
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("/")
            ),
        };
        out.push((location, values));
        // Next combination, last key fastest.
        let mut i = keys.len();
        loop {
            if i == 0 {
                return Ok(out);
            }
            i -= 1;
            combo[i] += 1;
            if combo[i] < per_key[i].len() {
                break;
            }
            combo[i] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(props: &[(&str, &str)], keys: &[&str]) -> Table {
        let params: serde_json::Map<String, serde_json::Value> = props
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect();
        serde_json::from_value(serde_json::json!({
            "Name": "t", "DatabaseName": "d", "CreateTime": 0, "UpdateTime": 0, "CatalogId": "0", "VersionId": "0",
            "StorageDescriptor": {"Location": "s3://b/t/"},
            "PartitionKeys": keys.iter().map(|k| serde_json::json!({"Name": k, "Type": "string"})).collect::<Vec<_>>(),
            "Parameters": params,
        }))
        .unwrap()
    }

    #[test]
    fn enum_integer_and_date_projections() {
        let t = table(
            &[
                ("projection.enabled", "true"),
                ("projection.region.type", "enum"),
                ("projection.region.values", "eu,us"),
                ("projection.day.type", "date"),
                ("projection.day.format", "yyyy/MM/dd"),
                ("projection.day.range", "2024/02/28,2024/03/01"),
                ("projection.n.type", "integer"),
                ("projection.n.range", "1,3"),
                ("projection.n.interval", "2"),
                ("projection.n.digits", "2"),
                ("storage.location.template", "s3://b/logs/${region}/${day}/${n}/"),
            ],
            &["region", "day", "n"],
        );
        let p = partitions(&t, &[]).unwrap();
        assert_eq!(p.len(), 2 * 3 * 2);
        assert_eq!(
            p[0],
            (
                "s3://b/logs/eu/2024/02/28/01/".into(),
                vec!["eu".into(), "2024/02/28".into(), "01".into()]
            )
        );
        assert_eq!(p[3].1, vec!["eu".to_string(), "2024/02/29".into(), "03".into()]);
        let hive = table(
            &[
                ("projection.enabled", "true"),
                ("projection.dt.type", "date"),
                ("projection.dt.format", "yyyy-MM-dd"),
                ("projection.dt.range", "NOW-2DAYS,NOW"),
            ],
            &["dt"],
        );
        let p = partitions(&hive, &[]).unwrap();
        assert_eq!(p.len(), 3);
        assert!(p[0].0.starts_with("s3://b/t/dt="));
    }

    #[test]
    fn injected_values_come_from_equality_filters() {
        use datafusion::prelude::{col, lit};
        let t = table(
            &[("projection.enabled", "true"), ("projection.id.type", "injected")],
            &["id"],
        );
        assert!(partitions(&t, &[]).is_err());
        let p = partitions(&t, &[col("id").eq(lit("a1"))]).unwrap();
        assert_eq!(p, vec![("s3://b/t/id=a1".to_string(), vec!["a1".to_string()])]);
        let p = partitions(&t, &[col("id").in_list(vec![lit("x"), lit("y")], false)]).unwrap();
        assert_eq!(p.len(), 2);
    }
}
