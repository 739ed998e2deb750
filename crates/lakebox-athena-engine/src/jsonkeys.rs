//! JSON keys as Athena's JSON SerDes match them to columns. Glue columns are lowercase; the
//! OpenX SerDe lowercases every key before matching (`case.insensitive`, default true), can
//! turn dots in keys into underscores (`dots.in.keys`) and renames keys with
//! `mapping.<column>` = `<key>`; Hive's JSON SerDe matches regardless of case too. DataFusion's
//! JSON reader matches keys exactly, so a file's keys are rewritten to the column names first:
//! `{"userId": 1}` reads as the column `userid`. With the OpenX SerDe's
//! `ignore.malformed.json`, a line that is not a JSON object reads as a row of NULLs (the
//! SerDe's own behaviour) instead of failing the query.

use std::collections::HashMap;

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
        }
    }

    /// Whether keys are matched to columns in lowercase.
    pub fn lowercases(&self) -> bool {
        self.lowercase
    }

    /// Whether any key or line could change (otherwise the file is read as it is).
    pub fn rewrites(&self) -> bool {
        self.lowercase || self.dots_to_underscores || !self.mapping.is_empty() || self.ignore_malformed
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

    /// JSON lines with every object key (nested ones too) renamed to its column. Values and
    /// malformed text pass through unchanged, for the reader to judge (unless malformed lines
    /// are ignored: then each is `{}`); each line starts afresh.
    pub fn rewrite(&self, input: &[u8]) -> Vec<u8> {
        if self.ignore_malformed {
            let objects = without_malformed_lines(input);
            return self.rename_keys(&objects);
        }
        self.rename_keys(input)
    }

    fn rename_keys(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        // The open containers (`{` or `[`), and whether the next string is an object key.
        let mut open: Vec<u8> = Vec::new();
        let mut key_next = false;
        let mut i = 0;
        while i < input.len() {
            let c = input[i];
            match c {
                b'"' => {
                    let end = string_end(input, i);
                    let token = &input[i..end];
                    if key_next && open.last() == Some(&b'{') {
                        self.push_key(token, &mut out);
                    } else {
                        out.extend_from_slice(token);
                    }
                    key_next = false;
                    i = end;
                    continue;
                }
                b'{' | b'[' => {
                    open.push(c);
                    key_next = c == b'{';
                }
                b'}' | b']' => {
                    open.pop();
                    key_next = false;
                }
                b',' => key_next = open.last() == Some(&b'{'),
                b':' => key_next = false,
                b'\n' => {
                    open.clear();
                    key_next = false;
                }
                _ => {}
            }
            out.push(c);
            i += 1;
        }
        out
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
        String::from_utf8(k.rewrite(s.as_bytes())).unwrap()
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
        assert!(!keys(true, &[("case.insensitive", "false")]).rewrites());
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
}
