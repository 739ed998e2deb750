//! Glue's built-in JSON classifier (one object per record: JSON lines or concatenated
//! objects) and custom JSON path classifiers (`$[*]`, `$.records[*]`, …).

use serde_json::Value;

use super::types::{HiveType, merge_fields};

/// The type of one JSON value, nested structures included.
pub fn value_type(v: &Value) -> HiveType {
    match v {
        Value::Null => HiveType::Unknown,
        Value::Bool(_) => HiveType::Boolean,
        Value::Number(n) => match n.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => HiveType::Int,
            Some(_) => HiveType::BigInt,
            None if n.is_u64() => HiveType::BigInt,
            None => HiveType::Double,
        },
        Value::String(_) => HiveType::String,
        Value::Array(items) => HiveType::Array(Box::new(
            items
                .iter()
                .map(value_type)
                .fold(HiveType::Unknown, HiveType::merge),
        )),
        Value::Object(m) => HiveType::Struct(m.iter().map(|(k, v)| (k.clone(), value_type(v))).collect()),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JsonSchema {
    pub columns: Vec<(String, HiveType)>,
    pub records: usize,
}

/// Top-level values of the sample; a value cut off by the end of a truncated sample is
/// ignored, any other syntax error means the file is not JSON.
fn documents(text: &str, truncated: bool) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        match stream.next() {
            None => break,
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) if truncated && e.is_eof() => break,
            Some(Err(_)) => return None,
        }
    }
    Some(out)
}

/// The records a JSON path selects from one document. Supports the forms Glue documents
/// for classifiers: `$`, `$[*]`, `$.a.b`, `$.a[*]`, `$['a']`.
fn select<'a>(doc: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![doc];
    let mut rest = path.trim().strip_prefix('$').unwrap_or(path);
    while !rest.is_empty() {
        let (step, tail): (&str, &str) = if let Some(r) = rest.strip_prefix("[*]") {
            ("*", r)
        } else if let Some(r) = rest.strip_prefix("['") {
            match r.find("']") {
                Some(end) => (&r[..end], &r[end + 2..]),
                None => return Vec::new(),
            }
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            (&r[..end], &r[end..])
        } else {
            return Vec::new();
        };
        current = current
            .into_iter()
            .flat_map(|v| -> Vec<&Value> {
                match (step, v) {
                    ("*", Value::Array(items)) => items.iter().collect(),
                    ("*", Value::Object(m)) => m.values().collect(),
                    (key, Value::Object(m)) => m.get(key).into_iter().collect(),
                    _ => Vec::new(),
                }
            })
            .collect();
        rest = tail;
    }
    current
}

/// Infers the schema of JSON records; `json_path` selects records inside each document
/// (a custom classifier), otherwise each top-level object is a record.
pub fn infer(text: &str, truncated: bool, json_path: Option<&str>) -> Option<JsonSchema> {
    let docs = documents(text, truncated)?;
    let records: Vec<&Value> = match json_path {
        Some(p) => docs.iter().flat_map(|d| select(d, p)).collect(),
        None => docs.iter().collect(),
    };
    if records.is_empty() {
        return None;
    }
    let mut columns: Vec<(String, HiveType)> = Vec::new();
    for r in &records {
        match r {
            Value::Object(m) => {
                let fields = m.iter().map(|(k, v)| (k.to_lowercase(), value_type(v))).collect();
                columns = merge_fields(columns, fields);
            }
            // The built-in classifier reads a file holding one top-level array as one column.
            Value::Array(_) if json_path.is_none() => {
                columns = merge_fields(columns, vec![("array".into(), value_type(r))]);
            }
            _ => return None,
        }
    }
    Some(JsonSchema {
        columns: columns.into_iter().map(|(n, t)| (n, t.resolved())).collect(),
        records: records.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(s: &JsonSchema) -> Vec<String> {
        s.columns.iter().map(|(n, t)| format!("{n}:{t}")).collect()
    }

    #[test]
    fn json_lines_with_nesting() {
        let text = "{\"id\": 1, \"User\": {\"name\": \"a\", \"age\": 3}, \"tags\": [\"x\"]}\n{\"id\": 5000000000, \"score\": 1.5, \"tags\": [], \"ok\": null}\n";
        let s = infer(text, false, None).unwrap();
        assert_eq!(
            cols(&s),
            [
                "id:bigint",
                "user:struct<name:string,age:int>",
                "tags:array<string>",
                "score:double",
                "ok:string"
            ]
        );
        assert_eq!(s.records, 2);
    }

    #[test]
    fn truncation_and_non_json() {
        assert_eq!(
            infer("{\"a\": 1}\n{\"a\": 2}\n{\"a\":", true, None)
                .unwrap()
                .records,
            2
        );
        assert!(infer("a,b\n1,2\n", false, None).is_none());
        assert!(infer("{\"a\": 1}\n{\"a\": 2}\n{\"a\":", false, None).is_none());
    }

    #[test]
    fn json_paths() {
        let text = "{\"records\": [{\"a\": 1}, {\"a\": 2, \"b\": \"x\"}]}";
        let s = infer(text, false, Some("$.records[*]")).unwrap();
        assert_eq!(cols(&s), ["a:int", "b:string"]);
        assert_eq!(s.records, 2);
        let s = infer("[{\"a\": true}]", false, Some("$[*]")).unwrap();
        assert_eq!(cols(&s), ["a:boolean"]);
    }
}
