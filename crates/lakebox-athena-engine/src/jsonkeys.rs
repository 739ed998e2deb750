//! JSON keys as Athena's JSON SerDes match them to columns. Glue columns are lowercase; the
//! OpenX SerDe lowercases every key before matching (`case.insensitive`, default true), can
//! turn dots in keys into underscores (`dots.in.keys`) and renames keys with
//! `mapping.<column>` = `<key>`; Hive's JSON SerDe matches regardless of case too. DataFusion's
//! JSON reader matches keys exactly, so a file's keys are rewritten to the column names first:
//! `{"userId": 1}` reads as the column `userid`.
//!
//! Values are read as the SerDes read them too: a number, `true` or an object in a `string`
//! column is its text (`{"id": 123}` fills a string `id` with `123`, where DataFusion's reader
//! would fail the query). With OpenX's `use.null.for.invalid.data` a value that does not fit its
//! column's type is NULL, and with `ignore.malformed.json` a line that is not a JSON object
//! reads as a row of NULLs (both as the SerDe does) instead of failing the query.

use std::collections::HashMap;

use datafusion::arrow::datatypes::{DataType, Fields, Schema};
use lakebox_glue::model::StorageDescriptor;

/// How one table's JSON keys become its column names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JsonKeys {
    lowercase: bool,
    dots_to_underscores: bool,
    /// Key (lowercased when `lowercase`) → column, from `mapping.<column>` properties.
    mapping: HashMap<String, String>,
    /// OpenX `ignore.malformed.json`: a line that is not a JSON object becomes `{}`.
    ignore_malformed: bool,
    /// OpenX `use.null.for.invalid.data`: a value that does not fit its column is NULL.
    null_for_invalid: bool,
}

/// What the values inside an open object or array are read as (`None`: not a column's).
#[derive(Clone, Copy)]
enum Frame<'a> {
    /// A struct's fields by name.
    Object(Option<&'a Fields>),
    /// A map: every value of one type.
    Map(Option<&'a DataType>),
    List(Option<&'a DataType>),
}

fn is_text(t: Option<&DataType>) -> bool {
    matches!(t, Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View))
}

/// Whether a bare JSON scalar (a number, `true`, `false`) or a string's text fits a column
/// type as DataFusion's reader parses it (text fits anything textual; other types are
/// assumed to).
fn fits(text: &str, t: &DataType) -> bool {
    match t {
        t if t.is_integer() => text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok(),
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => text.parse::<f64>().is_ok(),
        DataType::Boolean => text == "true" || text == "false",
        DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_) | DataType::Map(..) => false,
        _ => true,
    }
}

impl JsonKeys {
    /// The rules a table's SerDe properties ask for; `openx` for the OpenX SerDe (whose
    /// case matching and dots can be switched off or on), else Hive's.
    pub fn of(sd: &StorageDescriptor, openx: bool) -> JsonKeys {
        let flag = |k: &str, default: bool| {
            sd.serde_parameter(k)
                .map(|v| v.trim().eq_ignore_ascii_case("true"))
                .unwrap_or(default)
        };
        let lowercase = !openx || flag("case.insensitive", true);
        let mapping = sd
            .serde_info
            .iter()
            .flat_map(|s| s.parameters.iter().flatten())
            .filter_map(|(k, v)| {
                let column = k.strip_prefix("mapping.")?;
                let key = if lowercase { v.to_lowercase() } else { v.clone() };
                Some((key, column.to_lowercase()))
            })
            .collect();
        JsonKeys {
            lowercase,
            dots_to_underscores: openx && flag("dots.in.keys", false),
            mapping,
            ignore_malformed: openx && flag("ignore.malformed.json", false),
            null_for_invalid: openx && flag("use.null.for.invalid.data", false),
        }
    }

    /// Whether keys are matched to columns in lowercase.
    pub fn lowercases(&self) -> bool {
        self.lowercase
    }

    /// The column a key names.
    fn column(&self, key: &str) -> Option<String> {
        let mut k = if self.lowercase {
            key.to_lowercase()
        } else {
            key.to_owned()
        };
        if let Some(c) = self.mapping.get(&k) {
            return Some(c.clone());
        }
        if self.dots_to_underscores {
            k = k.replace('.', "_");
        }
        (k != key).then_some(k)
    }

    /// JSON lines as the table's `schema` reads them: every object key (nested ones too)
    /// renamed to its column, values coerced as the SerDes do (see the module's comment).
    /// Malformed text passes through for the reader to judge (unless malformed lines are
    /// ignored: then each is `{}`); each line starts afresh.
    pub fn rewrite(&self, input: &[u8], schema: &Schema) -> Vec<u8> {
        if self.ignore_malformed {
            let objects = without_malformed_lines(input);
            return self.rewrite_lines(&objects, schema);
        }
        self.rewrite_lines(input, schema)
    }

    fn rewrite_lines(&self, input: &[u8], schema: &Schema) -> Vec<u8> {
        let top = DataType::Struct(schema.fields().clone());
        let mut out = Vec::with_capacity(input.len() + input.len() / 8);
        let mut frames: Vec<Frame> = Vec::new();
        // Whether the next string is an object key, and the type of the next value.
        let mut key_next = false;
        let mut value: Option<&DataType> = Some(&top);
        let mut i = 0;
        while i < input.len() {
            let c = input[i];
            match c {
                b'"' => {
                    let end = string_end(input, i);
                    let token = &input[i..end];
                    if key_next && matches!(frames.last(), Some(Frame::Object(_) | Frame::Map(_))) {
                        let start = out.len();
                        self.push_key(token, &mut out);
                        value = match frames.last() {
                            Some(Frame::Object(Some(fields))) => {
                                let key = out
                                    .get(start + 1..out.len().saturating_sub(1))
                                    .unwrap_or_default();
                                fields
                                    .iter()
                                    .find(|f| f.name().as_bytes() == key)
                                    .map(|f| f.data_type())
                            }
                            Some(Frame::Map(t)) => *t,
                            _ => None,
                        };
                    } else {
                        self.push_string(token, value, &mut out);
                    }
                    key_next = false;
                    i = end;
                    continue;
                }
                b'{' | b'[' if is_text(value) && !frames.is_empty() => {
                    // An object or array in a text column: its JSON text, as a string.
                    let end = value_end(input, i);
                    let text = String::from_utf8_lossy(&input[i..end]);
                    out.extend_from_slice(serde_json::to_string(&text).unwrap_or_default().as_bytes());
                    i = end;
                    continue;
                }
                b'{' => {
                    frames.push(match value {
                        Some(DataType::Struct(fields)) => Frame::Object(Some(fields)),
                        Some(DataType::Map(entries, _)) => Frame::Map(match entries.data_type() {
                            DataType::Struct(kv) if kv.len() == 2 => Some(kv[1].data_type()),
                            _ => None,
                        }),
                        _ => Frame::Object(None),
                    });
                    key_next = true;
                }
                b'[' => {
                    let item = match value {
                        Some(DataType::List(f) | DataType::LargeList(f)) => Some(f.data_type()),
                        _ => None,
                    };
                    frames.push(Frame::List(item));
                    value = item;
                }
                b'}' | b']' => {
                    frames.pop();
                    key_next = false;
                    value = None;
                }
                b',' => match frames.last() {
                    Some(Frame::List(item)) => value = *item,
                    Some(_) => key_next = true,
                    None => {}
                },
                b':' => key_next = false,
                b'\n' => {
                    frames.clear();
                    key_next = false;
                    value = Some(&top);
                }
                b'-' | b'0'..=b'9' | b't' | b'f' if !frames.is_empty() => {
                    let end = scalar_end(input, i);
                    self.push_scalar(&input[i..end], value, &mut out);
                    i = end;
                    continue;
                }
                _ => {}
            }
            out.push(c);
            i += 1;
        }
        out
    }

    /// A bare scalar (number, `true`, `false`): quoted in a text column, NULL where it does
    /// not fit its column and invalid data is NULL.
    fn push_scalar(&self, token: &[u8], t: Option<&DataType>, out: &mut Vec<u8>) {
        if is_text(t) {
            out.push(b'"');
            out.extend_from_slice(token);
            out.push(b'"');
        } else if self.null_for_invalid
            && let Some(t) = t
            && !fits(&String::from_utf8_lossy(token), t)
        {
            out.extend_from_slice(b"null");
        } else {
            out.extend_from_slice(token);
        }
    }

    /// A string value: NULL where its text does not fit its column and invalid data is NULL.
    fn push_string(&self, token: &[u8], t: Option<&DataType>, out: &mut Vec<u8>) {
        if self.null_for_invalid
            && let Some(t) = t.filter(|t| !is_text(Some(t)))
            && !serde_json::from_slice::<String>(token).is_ok_and(|text| fits(&text, t))
        {
            out.extend_from_slice(b"null");
        } else {
            out.extend_from_slice(token);
        }
    }

    /// A quoted key, renamed if it names a column differently.
    fn push_key(&self, token: &[u8], out: &mut Vec<u8>) {
        let plain = !token.contains(&b'\\') && token.is_ascii();
        if plain && self.lowercase && self.mapping.is_empty() && !self.dots_to_underscores {
            // The common case: lowercase the ASCII letters in place.
            out.extend(token.iter().map(u8::to_ascii_lowercase));
            return;
        }
        let Ok(key) = serde_json::from_slice::<String>(token) else {
            out.extend_from_slice(token);
            return;
        };
        match self.column(&key) {
            Some(c) => out.extend_from_slice(serde_json::to_string(&c).unwrap_or_default().as_bytes()),
            None => out.extend_from_slice(token),
        }
    }
}

/// The index just past the bare scalar that starts at `start`.
fn scalar_end(input: &[u8], start: usize) -> usize {
    input[start..]
        .iter()
        .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(input.len(), |n| start + n)
}

/// The index just past the object or array that opens at `start` (or the line's end).
fn value_end(input: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < input.len() {
        match input[i] {
            b'"' => {
                i = string_end(input, i);
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b'\n' => return i,
            _ => {}
        }
        i += 1;
    }
    input.len()
}

/// `input` with every non-blank line that is not a JSON object replaced by `{}`.
fn without_malformed_lines(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for line in input.split_inclusive(|b| *b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let blank = text.iter().all(u8::is_ascii_whitespace);
        if blank || matches!(serde_json::from_slice(text), Ok(serde_json::Value::Object(_))) {
            out.extend_from_slice(line);
        } else {
            out.extend_from_slice(b"{}\n");
        }
    }
    out
}

/// The index just past the string token that opens at `start` (or the line's end, if it is
/// never closed).
fn string_end(input: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < input.len() {
        match input[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' => return i,
            _ => i += 1,
        }
    }
    input.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(openx: bool, params: &[(&str, &str)]) -> JsonKeys {
        JsonKeys::of(&crate::format::tests::storage("", "", params), openx)
    }

    fn rewrite(k: &JsonKeys, s: &str) -> String {
        String::from_utf8(k.rewrite(s.as_bytes(), &Schema::empty())).unwrap()
    }

    fn typed(k: &JsonKeys, s: &str, schema: &Schema) -> String {
        String::from_utf8(k.rewrite(s.as_bytes(), schema)).unwrap()
    }

    #[test]
    fn keys_are_lowercased_at_every_depth_and_values_are_not() {
        let k = keys(true, &[]);
        assert_eq!(
            rewrite(
                &k,
                "{\"userId\": \"MixedCase\", \"Tags\": [\"A\", {\"Inner\": \"B\"}], \"N\": {\"X\": 1}}\n{\"A\":2}"
            ),
            "{\"userid\": \"MixedCase\", \"tags\": [\"A\", {\"inner\": \"B\"}], \"n\": {\"x\": 1}}\n{\"a\":2}"
        );
        // Escapes in keys and strings with braces, quotes or colons inside.
        assert_eq!(
            rewrite(&k, r#"{"K\"Ey": "{\"Not\": 1}", "\u0041b": ":,}"}"#),
            r#"{"k\"ey": "{\"Not\": 1}", "ab": ":,}"}"#
        );
        // A line left open does not leak into the next.
        assert_eq!(
            rewrite(&k, "{\"A\": [\"B\n\"C\": 1\n{\"D\": 1}"),
            "{\"a\": [\"B\n\"C\": 1\n{\"d\": 1}"
        );
    }

    #[test]
    fn openx_properties_switch_case_dots_and_mappings() {
        let k = keys(
            true,
            &[("case.insensitive", "FALSE"), ("mapping.userid", "userId")],
        );
        assert_eq!(
            rewrite(&k, r#"{"userId": 1, "Other": 2}"#),
            r#"{"userid": 1, "Other": 2}"#
        );
        let k = keys(true, &[("dots.in.keys", "true"), ("mapping.ts", "@Timestamp")]);
        assert_eq!(
            rewrite(&k, r#"{"a.B": 1, "@timestamp": "t"}"#),
            r#"{"a_b": 1, "ts": "t"}"#
        );
        // Hive's SerDe always ignores case and has no dots property.
        let k = keys(false, &[("case.insensitive", "false"), ("dots.in.keys", "true")]);
        assert_eq!(rewrite(&k, r#"{"A.B": 1}"#), r#"{"a.b": 1}"#);
    }

    #[test]
    fn malformed_lines_become_empty_objects_only_when_asked() {
        let k = keys(true, &[("ignore.malformed.json", "TRUE")]);
        assert_eq!(
            rewrite(&k, "{\"A\": 1}\n{\"A\": \nnot json\n[1]\n\n{\"a\": {\"B\": 2}}"),
            "{\"a\": 1}\n{}\n{}\n{}\n\n{\"a\": {\"b\": 2}}"
        );
        let k = keys(true, &[]);
        assert_eq!(rewrite(&k, "not json\n"), "not json\n");
    }

    #[test]
    fn values_are_read_as_the_serdes_read_them() {
        use datafusion::arrow::datatypes::Field;
        let inner = Fields::from(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]);
        let schema = Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Int32, true),
            Field::new(
                "tags",
                DataType::List(std::sync::Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
            Field::new("o", DataType::Struct(inner), true),
            Field::new("raw", DataType::Utf8, true),
        ]);
        // Numbers, booleans, objects and arrays in text columns become their text, at any
        // depth; other values are left to the reader.
        let k = keys(true, &[]);
        assert_eq!(
            typed(
                &k,
                r#"{"Id": 123, "n": "7", "tags": [1, true, "x"], "o": {"S": -1.5e3, "n": 2}, "raw": {"a": [1, "}"]}}"#,
                &schema
            ),
            r#"{"id": "123", "n": "7", "tags": ["1", "true", "x"], "o": {"s": "-1.5e3", "n": 2}, "raw": "{\"a\": [1, \"}\"]}"}"#
        );
        assert_eq!(
            typed(&k, r#"{"n": "x", "id": null}"#, &schema),
            r#"{"n": "x", "id": null}"#
        );
        // use.null.for.invalid.data: a value that does not fit its column is NULL.
        let k = keys(true, &[("use.null.for.invalid.data", "true")]);
        assert_eq!(
            typed(&k, r#"{"n": "x", "o": {"n": 1.5}}"#, &schema),
            r#"{"n": null, "o": {"n": null}}"#
        );
        assert_eq!(
            typed(&k, r#"{"n": "12", "id": 5, "o": 3}"#, &schema),
            r#"{"n": "12", "id": "5", "o": null}"#
        );
    }
}
