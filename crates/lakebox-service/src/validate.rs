//! Checking a decoded request against its model's constraints, as AWS does before an operation
//! runs, and saying what failed in AWS's words:
//!
//! ```text
//! 2 validation errors detected: Value null at 'streamName' failed to satisfy constraint: Member
//! must not be null; Value '0' at 'shardCount' failed to satisfy constraint: Member must have
//! value greater than or equal to 1
//! ```
//!
//! The generated operation layer calls these; services never build that message themselves.
//! Paths are built on the stack and only rendered when something fails, so checking a
//! 500-record `PutRecords` allocates nothing.

use std::fmt::Write;
use std::sync::OnceLock;

use lakebox_core::ServiceError;
use regex::Regex;

/// Where a value sits in the request: `records.1.member.partitionKey`.
#[derive(Debug, Clone, Copy)]
pub enum Path<'a> {
    Root,
    Member(&'a Path<'a>, &'static str),
    /// A list element, numbered from 1 as AWS numbers them.
    Index(&'a Path<'a>, usize),
    Key(&'a Path<'a>, &'a str),
}

impl<'a> Path<'a> {
    pub fn root() -> Path<'static> {
        Path::Root
    }

    pub fn member(&'a self, name: &'static str) -> Path<'a> {
        Path::Member(self, name)
    }

    pub fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }

    pub fn key(&'a self, k: &'a str) -> Path<'a> {
        Path::Key(self, k)
    }

    fn render_into(&self, out: &mut String) {
        let (parent, seg): (&Path, String) = match self {
            Path::Root => return,
            Path::Member(p, name) => (p, (*name).to_owned()),
            Path::Index(p, i) => (p, format!("{i}.member")),
            Path::Key(p, k) => (p, (*k).to_owned()),
        };
        parent.render_into(out);
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&seg);
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        self.render_into(&mut s);
        s
    }

    /// The path as awsQuery spells it: `MetricData.member.2.Dimensions.member.1.Value`.
    pub fn render_query(&self) -> String {
        let (parent, seg): (&Path, String) = match self {
            Path::Root => return String::new(),
            Path::Member(p, name) => {
                let mut n = (*name).to_owned();
                if let Some(first) = n.get(0..1) {
                    n.replace_range(0..1, &first.to_ascii_uppercase());
                }
                (p, n)
            }
            Path::Index(p, i) => (p, format!("member.{i}")),
            Path::Key(p, k) => (p, (*k).to_owned()),
        };
        let mut out = parent.render_query();
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&seg);
        out
    }
}

/// A regular expression from the model, compiled the first time it is needed. The model's
/// patterns match the whole value, as Java's `String.matches` does.
pub struct Pattern {
    /// The model's pattern, as AWS's message quotes it.
    source: &'static str,
    /// What Lakebox enforces: the model's pattern, or one `services.toml` widens on purpose
    /// (`lakebox_patterns`, e.g. plain http:// to an endpoint on the local machine).
    enforced: &'static str,
    compiled: OnceLock<Option<Compiled>>,
}

/// A model pattern in Rust's regex dialect: the pattern itself, and the leading negative
/// look-ahead Java allows and Rust's engine lacks (`^(?!aws:)…`, `^(?!\s*$).+`), checked
/// as a separate regex that must not match at the start.
struct Compiled {
    whole: Regex,
    not_at_start: Option<Regex>,
}

impl Pattern {
    pub const fn new(source: &'static str) -> Self {
        Pattern::widened(source, source)
    }

    /// A pattern that accepts more than the model's, where Lakebox does so on purpose; a value
    /// neither accepts is still refused in the model's words.
    pub const fn widened(source: &'static str, enforced: &'static str) -> Self {
        Pattern {
            source,
            enforced,
            compiled: OnceLock::new(),
        }
    }

    pub fn source(&self) -> &'static str {
        self.source
    }

    /// `None` when the model's (Java) pattern uses something this translation and Rust's regex
    /// engine lack (look-behind, back-references, look-ahead other than leading); such a pattern
    /// is not enforced. The generated `patterns_compile` test lists every pattern of a service,
    /// so none is skipped unnoticed.
    pub fn regex(&self) -> Option<&Regex> {
        self.compiled().map(|c| &c.whole)
    }

    fn compiled(&self) -> Option<&Compiled> {
        self.compiled
            .get_or_init(|| {
                let java = java_classes_as_ascii(self.enforced);
                let (negative, rest) = split_leading_lookahead(&java);
                Some(Compiled {
                    whole: Regex::new(&format!(r"\A(?:{rest})\z")).ok()?,
                    not_at_start: match negative {
                        Some(n) => Some(Regex::new(&format!(r"\A(?:{n})")).ok()?),
                        None => None,
                    },
                })
            })
            .as_ref()
    }

    pub fn matches(&self, value: &str) -> bool {
        self.compiled().is_none_or(|c| {
            c.whole.is_match(value) && !c.not_at_start.as_ref().is_some_and(|n| n.is_match(value))
        })
    }
}

/// Java's `\w`, `\d` and `\s` (and their negations) are ASCII-only; Rust's are Unicode, which
/// would both accept what AWS refuses and, under a `{1,255}`, outgrow the regex size limit.
/// Rust nests classes, so the same bracketed replacement works inside and outside `[…]`.
fn java_classes_as_ascii(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 16);
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('s') => out.push_str(r"[\t\n\x0B\x0C\r ]"),
            Some('S') => out.push_str(r"[^\t\n\x0B\x0C\r ]"),
            // A UTF-16 surrogate pair (`\uD800\uDC00`) is one code point in Java's patterns;
            // Rust's engine knows code points, not surrogates.
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                let unit = u32::from_str_radix(&hex, 16).ok().filter(|_| hex.len() == 4);
                let low = {
                    let mut after = chars.clone().skip(4);
                    let (b, u) = (after.next(), after.next());
                    let h: String = after.take(4).collect();
                    (b == Some('\\') && u == Some('u') && h.len() == 4)
                        .then(|| u32::from_str_radix(&h, 16).ok())
                        .flatten()
                };
                match (unit, low) {
                    (Some(hi @ 0xD800..=0xDBFF), Some(lo @ 0xDC00..=0xDFFF)) => {
                        let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                        out.push_str(&format!("\\x{{{c:X}}}"));
                        chars.nth(9);
                    }
                    _ => out.push_str("\\u"),
                }
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Splits `^(?!X)REST` into `(Some(X), "^REST")`; anything else is returned whole.
fn split_leading_lookahead(source: &str) -> (Option<&str>, String) {
    let caret = source.starts_with('^');
    let body = &source[usize::from(caret)..];
    let Some(inner) = body.strip_prefix("(?!") else {
        return (None, source.to_owned());
    };
    let (mut depth, mut escaped, mut in_class) = (1usize, false, false);
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' => in_class = true,
            ']' => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => {
                depth -= 1;
                if depth == 0 {
                    let rest = &inner[i + 1..];
                    return (
                        Some(&inner[..i]),
                        format!("{}{rest}", if caret { "^" } else { "" }),
                    );
                }
            }
            _ => {}
        }
    }
    (None, source.to_owned())
}

/// Collects every constraint a request breaks.
#[derive(Debug, Default)]
pub struct Validator {
    failures: Vec<String>,
    /// The members found missing, as their paths render, and as awsQuery spells them.
    missing: Vec<String>,
    missing_query: Vec<String>,
}

/// Turns a checked optional member (`Some(None)`: present but invalid) into the member itself,
/// or `None` to abandon building the typed value.
pub fn lift<T>(x: Option<Option<T>>) -> Option<Option<T>> {
    match x {
        Some(None) => None,
        Some(Some(v)) => Some(Some(v)),
        None => Some(None),
    }
}

impl Validator {
    /// Runs `check`, which builds the typed value and records failures; any failure is the
    /// service's `ValidationException` with every failure listed.
    pub fn run<T>(check: impl FnOnce(&mut Validator) -> Option<T>) -> Result<T, ServiceError> {
        Self::run_with("ValidationException", check)
    }

    /// As [`run`](Self::run), with the error code the service's protocol uses
    /// (`ValidationError` for awsQuery services).
    pub fn run_with<T>(
        code: &'static str,
        check: impl FnOnce(&mut Validator) -> Option<T>,
    ) -> Result<T, ServiceError> {
        let mut v = Validator::default();
        let out = check(&mut v);
        match (out, v.failures.is_empty()) {
            (Some(t), true) => Ok(t),
            _ => Err(ServiceError::client(code, v.message())),
        }
    }

    /// As [`run_with`](Self::run_with) for the services of the classic awsQuery era (SQS),
    /// which answer a missing member with `MissingParameter` ("The request must contain the
    /// parameter QueueUrl.") and any other broken constraint with `InvalidParameterValue`.
    pub fn run_missing_parameter<T>(
        check: impl FnOnce(&mut Validator) -> Option<T>,
    ) -> Result<T, ServiceError> {
        let mut v = Validator::default();
        let out = check(&mut v);
        if let Some(path) = v.missing.first() {
            // The member's own name: the last segment of its path, as the model spells it.
            let last = path.rsplit(['.', '[']).next().unwrap_or(path);
            let mut name = last.trim_end_matches(']').to_owned();
            if let Some(first) = name.get(0..1) {
                name.replace_range(0..1, &first.to_ascii_uppercase());
            }
            return Err(ServiceError::client(
                "MissingParameter",
                format!("The request must contain the parameter {name}."),
            ));
        }
        match (out, v.failures.is_empty()) {
            (Some(t), true) => Ok(t),
            _ => Err(ServiceError::client("InvalidParameterValue", v.message())),
        }
    }

    /// As [`run_missing_parameter`](Self::run_missing_parameter) for the services that name
    /// the missing member by its awsQuery path, every one of them (CloudWatch: "The parameter
    /// MetricData.member.2.MetricName is required.", one line each).
    pub fn run_missing_parameter_query<T>(
        check: impl FnOnce(&mut Validator) -> Option<T>,
    ) -> Result<T, ServiceError> {
        let mut v = Validator::default();
        let out = check(&mut v);
        if !v.missing_query.is_empty() {
            let lines: Vec<String> = v
                .missing_query
                .iter()
                .map(|p| format!("The parameter {p} is required."))
                .collect();
            return Err(ServiceError::client("MissingParameter", lines.join("\n")));
        }
        match (out, v.failures.is_empty()) {
            (Some(t), true) => Ok(t),
            _ => Err(ServiceError::client("InvalidParameterValue", v.message())),
        }
    }

    /// AWS's message for the failures so far.
    pub fn message(&self) -> String {
        let n = self.failures.len();
        let mut msg = format!("{n} validation error{} detected: ", if n == 1 { "" } else { "s" });
        msg.push_str(&self.failures.join("; "));
        msg
    }

    fn fail(&mut self, value: Option<&str>, path: &Path<'_>, constraint: impl std::fmt::Display) {
        self.failures.push(failure(value, &path.render(), constraint));
    }

    /// A required member that is absent.
    pub fn missing(&mut self, path: &Path<'_>) {
        self.missing.push(path.render());
        self.missing_query.push(path.render_query());
        self.fail(None, path, "Member must not be null");
    }

    /// One failure per bound `measured` is outside of; `what` is "length" or "value", and
    /// `shown` renders the value as AWS prints it (only when something failed).
    fn bounds<T: PartialOrd + std::fmt::Display>(
        &mut self,
        measured: T,
        min: Option<T>,
        max: Option<T>,
        what: &str,
        shown: impl Fn() -> String,
        path: &Path<'_>,
    ) {
        if let Some(m) = min.filter(|m| measured < *m) {
            self.fail(
                Some(&shown()),
                path,
                format_args!("Member must have {what} greater than or equal to {m}"),
            );
        }
        if let Some(m) = max.filter(|m| measured > *m) {
            self.fail(
                Some(&shown()),
                path,
                format_args!("Member must have {what} less than or equal to {m}"),
            );
        }
    }

    /// A string's length, in characters.
    /// A string's length in characters, as the models count it. Counting costs a pass over
    /// the string, so it is skipped when the byte length alone settles it (a string of `n`
    /// bytes has between `n / 4` and `n` characters): large batches of long strings (a
    /// PutLogEvents of 10,000 messages) are checked without reading them.
    pub fn length(&mut self, value: &str, min: Option<u64>, max: Option<u64>, path: &Path<'_>) {
        let bytes = value.len() as u64;
        let surely_long_enough = min.is_none_or(|m| bytes.div_ceil(4) >= m);
        let surely_short_enough = max.is_none_or(|m| bytes <= m);
        if surely_long_enough && surely_short_enough {
            return;
        }
        let len = value.chars().count() as u64;
        self.bounds(len, min, max, "length", || value.to_owned(), path);
    }

    /// A blob's length in bytes; the value is shown as the Java buffer AWS prints.
    pub fn blob_length(&mut self, len: u64, min: Option<u64>, max: Option<u64>, path: &Path<'_>) {
        let shown = || format!("java.nio.HeapByteBuffer[pos=0 lim={len} cap={len}]");
        self.bounds(len, min, max, "length", shown, path);
    }

    /// The number of entries of a list or map.
    pub fn size(&mut self, len: u64, min: Option<u64>, max: Option<u64>, path: &Path<'_>) {
        self.bounds(len, min, max, "length", || "[…]".to_owned(), path);
    }

    pub fn range_i64(&mut self, value: i64, min: Option<i64>, max: Option<i64>, path: &Path<'_>) {
        self.bounds(value, min, max, "value", || value.to_string(), path);
    }

    pub fn range_f64(&mut self, value: f64, min: Option<f64>, max: Option<f64>, path: &Path<'_>) {
        self.bounds(value, min, max, "value", || value.to_string(), path);
    }

    pub fn pattern(&mut self, value: &str, pattern: &Pattern, path: &Path<'_>) {
        if !pattern.matches(value) {
            self.fail(
                Some(value),
                path,
                format_args!(
                    "Member must satisfy regular expression pattern: {}",
                    pattern.source()
                ),
            );
        }
    }

    /// An enum member whose value the model does not list.
    pub fn enum_value(&mut self, value: &str, allowed: &[&str], unknown: bool, path: &Path<'_>) {
        if unknown {
            self.fail(
                Some(value),
                path,
                format_args!("Member must satisfy enum value set: [{}]", allowed.join(", ")),
            );
        }
    }
}

/// One failure as AWS words it: `Value 'x' at 'field' failed to satisfy constraint: …`.
fn failure(value: Option<&str>, field: &str, constraint: impl std::fmt::Display) -> String {
    let mut s = String::from("Value ");
    match value {
        Some(v) => {
            let _ = write!(s, "'{v}'");
        }
        None => s.push_str("null"),
    }
    let _ = write!(s, " at '{field}' failed to satisfy constraint: {constraint}");
    s
}

/// AWS's message for a single failed constraint, for the checks a service makes by hand beyond
/// its model's (the generated layer builds the same words through [`Validator`]).
pub fn single_failure_message(field: &str, value: impl std::fmt::Display, constraint: &str) -> String {
    format!(
        "1 validation error detected: {}",
        failure(Some(&value.to_string()), field, constraint)
    )
}

/// Serde and `Display` for a generated string enum (one with `as_str` and `From<&str>`), which
/// travels as its plain string in every protocol.
#[macro_export]
macro_rules! string_enum {
    ($t:ty) => {
        impl ::serde::Serialize for $t {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> ::serde::Deserialize<'de> for $t {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                Ok(<$t>::from(&*s))
            }
        }
        impl ::std::fmt::Display for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_patterns_keep_their_meaning() {
        static TAG: Pattern = Pattern::new(r"^(?!aws:)[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$");
        assert!(TAG.matches("team:data") && TAG.matches("Å 1"));
        assert!(!TAG.matches("aws:owner") && !TAG.matches("a*b"));
        static NOT_BLANK: Pattern = Pattern::new(r"^(?!\s*$).+");
        assert!(NOT_BLANK.matches(" x") && !NOT_BLANK.matches("  ") && !NOT_BLANK.matches(""));
        static BUCKET: Pattern = Pattern::new(r"arn:.*:s3:::[\w\.\-]{1,255}");
        assert!(BUCKET.regex().is_some(), "ASCII \\w stays small");
        assert!(BUCKET.matches("arn:aws:s3:::my-lake.1") && !BUCKET.matches("arn:aws:s3:::lake/x"));
        assert!(!BUCKET.matches("arn:aws:s3:::caf\u{e9}"), "Java's \\w is ASCII");
        static XML_CHARS: Pattern = Pattern::new(r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*");
        assert!(XML_CHARS.regex().is_some(), "surrogate pairs become code points");
        assert!(XML_CHARS.matches("a \u{1F600}\t") && !XML_CHARS.matches("\u{1}"));
        static LOOKBEHIND: Pattern = Pattern::new(r"(?<!-)x");
        assert!(LOOKBEHIND.regex().is_none() && LOOKBEHIND.matches("anything"));
    }

    #[test]
    fn paths_render_as_aws_writes_them() {
        let root = Path::root();
        let records = root.member("records");
        let first = records.index(1);
        let key = first.member("partitionKey");
        assert_eq!(key.render(), "records.1.member.partitionKey");
        assert_eq!(root.member("streamName").render(), "streamName");
    }

    #[test]
    fn every_failure_is_listed() {
        let err = Validator::run(|v| {
            let root = Path::root();
            v.missing(&root.member("streamName"));
            v.range_i64(0, Some(1), None, &root.member("shardCount"));
            None::<()>
        })
        .unwrap_err();
        assert_eq!(err.code, "ValidationException");
        assert_eq!(
            err.message,
            "2 validation errors detected: Value null at 'streamName' failed to satisfy constraint: \
             Member must not be null; Value '0' at 'shardCount' failed to satisfy constraint: \
             Member must have value greater than or equal to 1"
        );
        let one = Validator::run_with("ValidationError", |v| {
            v.length("", Some(1), Some(128), &Path::root().member("streamName"));
            Some(())
        })
        .unwrap_err();
        assert_eq!(one.code, "ValidationError");
        assert_eq!(
            one.message,
            "1 validation error detected: Value '' at 'streamName' failed to satisfy constraint: \
             Member must have length greater than or equal to 1"
        );
    }

    #[test]
    fn lengths_count_characters_only_when_bytes_do_not_settle_it() {
        let check = |value: &str, min, max| {
            Validator::run_with("ValidationError", |v| {
                v.length(value, min, max, &Path::root().member("x"));
                Some(())
            })
            .is_ok()
        };
        // Six bytes, three characters: within a maximum of three.
        assert!(check("ééé", None, Some(3)));
        assert!(!check("éééé", None, Some(3)));
        // Two bytes, one character: short of a minimum of two.
        assert!(!check("é", Some(2), None));
        assert!(check(&"x".repeat(200), Some(1), None));
    }

    #[test]
    fn patterns_match_whole_values() {
        static P: Pattern = Pattern::new("[a-zA-Z0-9_.-]+");
        assert!(P.matches("ok.name-1"));
        assert!(!P.matches("bad name"));
        static LOOKAHEAD: Pattern = Pattern::new("(?!x).*");
        assert!(LOOKAHEAD.matches("anything") && !LOOKAHEAD.matches("xyz"));
    }
}
