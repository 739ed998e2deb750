//! Grok patterns for custom classifiers: `%{PATTERN:field:type}` expanded from Glue's named
//! built-in patterns (the commonly used subset) and the classifier's own `CustomPatterns`.

use std::collections::HashMap;

use regex::Regex;

use super::types::HiveType;

/// Built-in patterns, in grok's syntax. Written for Rust's regex engine (no look-around).
const BUILTIN: &[(&str, &str)] = &[
    ("USERNAME", r"[a-zA-Z0-9._-]+"),
    ("USER", r"%{USERNAME}"),
    ("INT", r"[+-]?[0-9]+"),
    ("BASE10NUM", r"[+-]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"),
    ("NUMBER", r"%{BASE10NUM}"),
    ("BASE16NUM", r"[+-]?(?:0x)?[0-9A-Fa-f]+"),
    ("POSINT", r"[1-9][0-9]*"),
    ("NONNEGINT", r"[0-9]+"),
    ("WORD", r"\w+"),
    ("NOTSPACE", r"\S+"),
    ("SPACE", r"\s*"),
    ("DATA", r".*?"),
    ("GREEDYDATA", r".*"),
    ("QUOTEDSTRING", r#""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"#),
    ("QS", r"%{QUOTEDSTRING}"),
    ("UUID", r"[A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}"),
    ("IPV4", r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}"),
    ("IPV6", r"[0-9A-Fa-f:]*:[0-9A-Fa-f:.]+"),
    ("IP", r"(?:%{IPV6}|%{IPV4})"),
    (
        "HOSTNAME",
        r"[0-9A-Za-z][0-9A-Za-z-]{0,62}(?:\.[0-9A-Za-z][0-9A-Za-z-]{0,62})*\.?",
    ),
    ("HOST", r"%{HOSTNAME}"),
    ("IPORHOST", r"(?:%{IP}|%{HOSTNAME})"),
    ("HOSTPORT", r"%{IPORHOST}:%{POSINT}"),
    ("UNIXPATH", r"(?:/[\w_%!$@:.,~-]*)+"),
    ("PATH", r"%{UNIXPATH}"),
    ("URIPROTO", r"[A-Za-z]+(?:\+[A-Za-z+]+)?"),
    ("URIHOST", r"%{IPORHOST}(?::%{POSINT})?"),
    ("URIPATH", r"(?:/[A-Za-z0-9$.+!*'(){},~:;=@#%_\-]*)+"),
    ("URIPARAM", r"\?[A-Za-z0-9$.+!*'|(){},~@#%&/=:;_?\-\[\]<>]*"),
    ("URIPATHPARAM", r"%{URIPATH}(?:%{URIPARAM})?"),
    (
        "URI",
        r"%{URIPROTO}://(?:%{USER}(?::[^@]*)?@)?(?:%{URIHOST})?(?:%{URIPATHPARAM})?",
    ),
    (
        "MONTH",
        r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)",
    ),
    ("MONTHNUM", r"(?:0?[1-9]|1[0-2])"),
    ("MONTHDAY", r"(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])"),
    (
        "DAY",
        r"(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)",
    ),
    ("YEAR", r"[0-9]{2,4}"),
    ("HOUR", r"(?:2[0123]|[01]?[0-9])"),
    ("MINUTE", r"(?:[0-5][0-9])"),
    ("SECOND", r"(?:(?:[0-5]?[0-9]|60)(?:[:.,][0-9]+)?)"),
    ("TIME", r"%{HOUR}:%{MINUTE}(?::%{SECOND})?"),
    ("DATE_US", r"%{MONTHNUM}[/-]%{MONTHDAY}[/-]%{YEAR}"),
    ("DATE_EU", r"%{MONTHDAY}[./-]%{MONTHNUM}[./-]%{YEAR}"),
    ("DATE", r"(?:%{DATE_US}|%{DATE_EU})"),
    ("ISO8601_TIMEZONE", r"(?:Z|[+-]%{HOUR}(?::?%{MINUTE}))"),
    (
        "TIMESTAMP_ISO8601",
        r"%{YEAR}-%{MONTHNUM}-%{MONTHDAY}[T ]%{HOUR}:?%{MINUTE}(?::?%{SECOND})?%{ISO8601_TIMEZONE}?",
    ),
    ("DATESTAMP", r"%{DATE}[- ]%{TIME}"),
    ("HTTPDATE", r"%{MONTHDAY}/%{MONTH}/%{YEAR}:%{TIME} %{INT}"),
    ("SYSLOGTIMESTAMP", r"%{MONTH} +%{MONTHDAY} %{TIME}"),
    (
        "LOGLEVEL",
        r"(?:[Aa]lert|ALERT|[Tt]race|TRACE|[Dd]ebug|DEBUG|[Nn]otice|NOTICE|[Ii]nfo|INFO|[Ww]arn(?:ing)?|WARN(?:ING)?|[Ee]rr(?:or)?|ERR(?:OR)?|[Cc]rit(?:ical)?|CRIT(?:ICAL)?|[Ff]atal|FATAL|[Ss]evere|SEVERE|EMERG(?:ENCY)?|[Ee]merg(?:ency)?)",
    ),
    ("EMAILLOCALPART", r"[a-zA-Z][a-zA-Z0-9_.+-=:]+"),
    ("EMAILADDRESS", r"%{EMAILLOCALPART}@%{HOSTNAME}"),
    (
        "COMMONAPACHELOG",
        r#"%{IPORHOST:clientip} %{USER:ident} %{USER:auth} \[%{HTTPDATE:timestamp}\] "(?:%{WORD:verb} %{NOTSPACE:request}(?: HTTP/%{NUMBER:httpversion})?|%{DATA:rawrequest})" %{NUMBER:response} (?:%{NUMBER:bytes}|-)"#,
    ),
    (
        "COMBINEDAPACHELOG",
        r#"%{COMMONAPACHELOG} %{QS:referrer} %{QS:agent}"#,
    ),
];

/// A compiled grok classifier: the regex and its named fields with their types.
#[derive(Debug, Clone)]
pub struct Grok {
    pub regex: Regex,
    pub fields: Vec<(String, HiveType)>,
}

fn field_type(t: &str) -> HiveType {
    match t.to_ascii_lowercase().as_str() {
        "byte" => HiveType::TinyInt,
        "boolean" => HiveType::Boolean,
        "double" => HiveType::Double,
        "short" => HiveType::SmallInt,
        "int" => HiveType::Int,
        "long" => HiveType::BigInt,
        "float" => HiveType::Float,
        "timestamp" => HiveType::Timestamp,
        "date" => HiveType::Date,
        _ => HiveType::String,
    }
}

/// Parses `CustomPatterns`: one `NAME regex` per line.
fn custom_patterns(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (name, pattern) = l.split_once(char::is_whitespace)?;
            (!name.is_empty() && !name.starts_with('#')).then(|| (name.to_owned(), pattern.trim().to_owned()))
        })
        .collect()
}

fn expand(
    pattern: &str,
    library: &HashMap<String, String>,
    fields: &mut Vec<(String, HiveType)>,
    depth: usize,
) -> Result<String, String> {
    if depth > 32 {
        return Err("grok patterns nest too deeply (a pattern refers to itself?)".into());
    }
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or("unterminated %{ in grok pattern")?;
        let spec = &after[..end];
        let mut parts = spec.splitn(3, ':');
        let name = parts.next().unwrap_or_default();
        let field = parts.next().filter(|f| !f.is_empty());
        let ty = parts.next();
        let body = library
            .get(name)
            .ok_or_else(|| format!("unknown grok pattern {name}"))?;
        let inner = expand(body, library, fields, depth + 1)?;
        match field {
            Some(f) => {
                let group = f.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_");
                if fields.iter().any(|(n, _)| n == &group) {
                    // A repeated name: the regex needs unique groups, keep the first.
                    out.push_str(&format!("(?:{inner})"));
                } else {
                    fields.push((group.clone(), ty.map(field_type).unwrap_or(HiveType::String)));
                    out.push_str(&format!("(?P<{group}>{inner})"));
                }
            }
            None => out.push_str(&format!("(?:{inner})")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Grok {
    pub fn compile(pattern: &str, custom: Option<&str>) -> Result<Grok, String> {
        let mut library: HashMap<String, String> = BUILTIN
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        library.extend(custom_patterns(custom.unwrap_or("")));
        let mut fields = Vec::new();
        // Named fields inside built-ins (COMMONAPACHELOG's) are fields too, in order.
        let re = expand(pattern, &library, &mut fields, 0)?;
        let regex = Regex::new(&format!("^{re}$")).map_err(|e| format!("invalid grok pattern: {e}"))?;
        Ok(Grok { regex, fields })
    }

    /// Whether every non-empty line of the sample matches (the classifier's certainty 1.0).
    pub fn matches_sample(&self, text: &str, truncated: bool) -> Option<usize> {
        let mut lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        if truncated && !text.ends_with('\n') {
            lines.pop();
        }
        (!lines.is_empty() && lines.iter().all(|l| self.regex.is_match(l))).then_some(lines.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apache_log_lines_and_custom_patterns() {
        let g = Grok::compile("%{COMMONAPACHELOG}", None).unwrap();
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
        assert_eq!(g.matches_sample(line, false), Some(1));
        assert_eq!(g.fields[0].0, "clientip");
        let g = Grok::compile(
            "%{MYID:id:int} %{LOGLEVEL:level} %{GREEDYDATA:msg}",
            Some("MYID [0-9]{3}"),
        )
        .unwrap();
        assert_eq!(
            g.fields
                .iter()
                .map(|(n, t)| format!("{n}:{t}"))
                .collect::<Vec<_>>(),
            ["id:int", "level:string", "msg:string"]
        );
        assert_eq!(
            g.matches_sample("123 INFO started\n456 WARN slow\n", false),
            Some(2)
        );
        assert_eq!(g.matches_sample("12 INFO started\n", false), None);
        assert!(Grok::compile("%{NOPE:x}", None).is_err());
    }
}
