//! Object keys: Firehose's custom prefix expressions (`!{timestamp:…}` with Java
//! DateTimeFormatter patterns, `!{firehose:random-string}`, `!{firehose:error-output-type}`,
//! `!{partitionKeyFromQuery:…}`), their validation rules, time zones, and the fixed suffix
//! `<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>`.

use std::collections::BTreeMap;

use chrono::{Datelike, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use lakebox_core::ServiceError;
use lakebox_core::javatime::JavaPattern;

use crate::errors::invalid_argument;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Timestamp(JavaPattern),
    RandomString,
    ErrorOutputType,
    PartitionKey(String),
}

/// A parsed prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct Prefix {
    parts: Vec<Part>,
}

/// Where an expression may appear.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Role {
    Prefix,
    ErrorOutputPrefix,
}

impl Prefix {
    pub fn parse(text: &str, role: Role) -> Result<Prefix, ServiceError> {
        let field = match role {
            Role::Prefix => "Prefix",
            Role::ErrorOutputPrefix => "ErrorOutputPrefix",
        };
        let bad = |why: String| invalid_argument(format!("{field} '{text}' is invalid: {why}"));
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("!{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| bad("an expression is not closed with '}'".into()))?;
            let expr = &after[..end];
            if expr.contains("!{") {
                return Err(bad("expressions cannot be nested".into()));
            }
            let (ns, value) = expr
                .split_once(':')
                .ok_or_else(|| bad(format!("'!{{{expr}}}' is not of the form !{{namespace:value}}")))?;
            let part = match (ns, value) {
                ("timestamp", pattern) => Part::Timestamp(JavaPattern::parse(pattern).map_err(&bad)?),
                ("firehose", "random-string") => Part::RandomString,
                ("firehose", "error-output-type") => {
                    if role == Role::Prefix {
                        return Err(bad(
                            "!{firehose:error-output-type} can be used only in ErrorOutputPrefix".into(),
                        ));
                    }
                    Part::ErrorOutputType
                }
                ("firehose", other) => return Err(bad(format!("unknown firehose expression '{other}'"))),
                ("partitionKeyFromQuery", key) if !key.is_empty() => {
                    if role == Role::ErrorOutputPrefix {
                        return Err(bad(
                            "partitionKeyFromQuery expressions cannot be used in ErrorOutputPrefix".into(),
                        ));
                    }
                    Part::PartitionKey(key.to_owned())
                }
                ("partitionKeyFromLambda", key) if !key.is_empty() => {
                    if role == Role::ErrorOutputPrefix {
                        return Err(bad(
                            "partitionKeyFromLambda expressions cannot be used in ErrorOutputPrefix".into(),
                        ));
                    }
                    Part::PartitionKey(crate::transform::lambda_key(key))
                }
                (other, _) => return Err(bad(format!("unknown namespace '{other}'"))),
            };
            parts.push(part);
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        let p = Prefix { parts };
        if role == Role::ErrorOutputPrefix && p.has_expressions() && !p.parts.contains(&Part::ErrorOutputType)
        {
            return Err(bad(
                "an ErrorOutputPrefix with expressions must include !{firehose:error-output-type}".into(),
            ));
        }
        Ok(p)
    }

    /// The prefixes Firehose writes under, by its semantic rules for custom prefixes: a Prefix
    /// with no expression (or none at all) is followed by `!{timestamp:yyyy/MM/dd/HH/}`, and
    /// without an ErrorOutputPrefix — allowed only when Prefix has no expression — failed records
    /// go under `<Prefix><error-output-type>/yyyy/MM/dd/HH/`.
    pub fn effective(data: Option<Prefix>, error: Option<Prefix>) -> (Prefix, Prefix) {
        let hourly = || Part::Timestamp(JavaPattern::parse("yyyy/MM/dd/HH/").expect("a valid pattern"));
        let plain = data.as_ref().filter(|p| !p.has_expressions());
        let error = error.unwrap_or_else(|| Prefix {
            parts: plain
                .map(|p| p.parts.clone())
                .unwrap_or_default()
                .into_iter()
                .chain([Part::ErrorOutputType, Part::Text("/".into()), hourly()])
                .collect(),
        });
        let data = match data {
            Some(p) if p.has_expressions() => p,
            p => Prefix {
                parts: p
                    .map(|p| p.parts)
                    .unwrap_or_default()
                    .into_iter()
                    .chain([hourly()])
                    .collect(),
            },
        };
        (data, error)
    }

    pub fn has_expressions(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Text(_)))
    }

    pub fn partition_keys(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::PartitionKey(k) => Some(k.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Evaluates the prefix for an object whose oldest record arrived at `millis`.
    pub fn evaluate(&self, millis: i64, tz: Tz, error_type: &str, keys: &BTreeMap<String, String>) -> String {
        let t = tz
            .timestamp_millis_opt(millis)
            .single()
            .unwrap_or_else(|| tz.timestamp_millis_opt(0).unwrap());
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Text(text) => s.push_str(text),
                Part::Timestamp(fmt) => s.push_str(&fmt.format(&t)),
                Part::RandomString => s.push_str(&random_string()),
                Part::ErrorOutputType => s.push_str(error_type),
                Part::PartitionKey(k) => s.push_str(keys.get(k).map(String::as_str).unwrap_or("")),
            }
        }
        s
    }
}

/// Eleven random characters of `[a-z0-9]`, like Firehose's random-string.
fn random_string() -> String {
    let u = uuid::Uuid::new_v4();
    let mut n = u.as_u128();
    (0..11)
        .map(|_| {
            let c = b"abcdefghijklmnopqrstuvwxyz0123456789"[(n % 36) as usize] as char;
            n /= 36;
            c
        })
        .collect()
}

/// `<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>` for an object written at `millis`.
pub fn suffix(stream: &str, version: u64, millis: i64, tz: Tz) -> String {
    let t = tz
        .timestamp_millis_opt(millis)
        .single()
        .unwrap_or_else(|| tz.timestamp_millis_opt(0).unwrap());
    format!(
        "{stream}-{version}-{:04}-{:02}-{:02}-{:02}-{:02}-{:02}-{}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        uuid::Uuid::new_v4()
    )
}

/// A `CustomTimeZone` (an IANA name); empty or absent is UTC.
pub fn time_zone(name: Option<&str>) -> Result<Tz, ServiceError> {
    match name.filter(|n| !n.is_empty()) {
        None => Ok(Tz::UTC),
        Some(n) => n
            .parse::<Tz>()
            .map_err(|_| invalid_argument(format!("CustomTimeZone '{n}' is not a valid time zone."))),
    }
}

pub fn now_utc_millis() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_123; // 2023-11-14T22:13:20.123Z, a Tuesday

    #[test]
    fn timestamp_patterns() {
        let p = Prefix::parse(
            "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/!{timestamp:HH-mm-ss.SSS}/",
            Role::Prefix,
        )
        .unwrap();
        assert_eq!(
            p.evaluate(T, Tz::UTC, "", &BTreeMap::new()),
            "year=2023/month=11/day=14/22-13-20.123/"
        );
        let p = Prefix::parse("!{timestamp:EEE MMM yy 'at' h a}", Role::Prefix).unwrap();
        assert_eq!(
            p.evaluate(T, Tz::UTC, "", &BTreeMap::new()),
            "Tue Nov 23 at 10 PM"
        );
        let tokyo = time_zone(Some("Asia/Tokyo")).unwrap();
        assert_eq!(
            Prefix::parse("!{timestamp:dd-HH}", Role::Prefix)
                .unwrap()
                .evaluate(T, tokyo, "", &BTreeMap::new()),
            "15-07"
        );
        assert!(suffix("s", 1, T, Tz::UTC).starts_with("s-1-2023-11-14-22-13-20-"));
    }

    #[test]
    fn firehose_and_partition_keys() {
        let p = Prefix::parse(
            "data/!{partitionKeyFromQuery:customer}/!{firehose:random-string}/",
            Role::Prefix,
        )
        .unwrap();
        let keys = BTreeMap::from([("customer".to_string(), "acme".to_string())]);
        let out = p.evaluate(T, Tz::UTC, "", &keys);
        assert!(
            out.starts_with("data/acme/") && out.len() == "data/acme/".len() + 12,
            "{out}"
        );
        assert_eq!(p.partition_keys(), ["customer"]);
        let e = Prefix::parse("err/!{firehose:error-output-type}/", Role::ErrorOutputPrefix).unwrap();
        assert_eq!(
            e.evaluate(T, Tz::UTC, "processing-failed", &keys),
            "err/processing-failed/"
        );
    }

    #[test]
    fn prefixes_without_expressions_get_the_hour_folders() {
        let eval = |p: &Prefix, error: &str| p.evaluate(T, Tz::UTC, error, &BTreeMap::new());
        let (data, error) = Prefix::effective(None, None);
        assert_eq!(eval(&data, ""), "2023/11/14/22/");
        assert_eq!(
            eval(&error, "processing-failed"),
            "processing-failed/2023/11/14/22/"
        );
        let raw = Prefix::parse("raw/", Role::Prefix).unwrap();
        let (data, error) = Prefix::effective(Some(raw), None);
        assert_eq!(eval(&data, ""), "raw/2023/11/14/22/");
        assert_eq!(
            eval(&error, "format-conversion-failed"),
            "raw/format-conversion-failed/2023/11/14/22/"
        );
        // A Prefix with expressions is used as written, and so is an ErrorOutputPrefix.
        let custom = Prefix::parse("dt=!{timestamp:yyyy-MM-dd}/", Role::Prefix).unwrap();
        let err = Prefix::parse("errors/", Role::ErrorOutputPrefix).unwrap();
        let (data, error) = Prefix::effective(Some(custom), Some(err));
        assert_eq!(eval(&data, ""), "dt=2023-11-14/");
        assert_eq!(eval(&error, "processing-failed"), "errors/");
    }

    #[test]
    fn aws_rules() {
        for (text, role) in [
            ("x/!{firehose:error-output-type}/", Role::Prefix),
            (
                "x/!{partitionKeyFromQuery:a}/!{firehose:error-output-type}",
                Role::ErrorOutputPrefix,
            ),
            ("x/!{timestamp:yyyy}/", Role::ErrorOutputPrefix),
            ("x/!{nope:yyyy}/", Role::Prefix),
            ("x/!{timestamp:yyyy/", Role::Prefix),
            ("x/!{timestamp:qq}/", Role::Prefix),
            ("x/!{firehose:other}/", Role::Prefix),
        ] {
            assert!(Prefix::parse(text, role).is_err(), "{text}");
        }
        assert!(time_zone(Some("Mars/Olympus")).is_err());
        assert_eq!(time_zone(Some("")).unwrap(), Tz::UTC);
    }
}
