//! Event filtering (an event source mapping's `FilterCriteria`): EventBridge-style patterns a
//! record must match to reach the function. A record matches when any filter's pattern does; a
//! pattern is an object whose keys name fields (nested objects go deeper) and whose leaves are
//! lists of matchers, any of which may match: a value (string, number, boolean, null), or
//! `{"prefix": …}`, `{"suffix": …}`, `{"equals-ignore-case": …}`, `{"anything-but": …}`,
//! `{"numeric": [op, n, …]}`, `{"exists": bool}`. A field holding a list matches when any of its
//! items does.

use serde_json::Value;

use crate::functions::invalid;
use lakebox_core::ServiceError;

/// The patterns of a mapping's FilterCriteria, parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters(Vec<Value>);

impl Filters {
    /// Parses `FilterCriteria.Filters[].Pattern`; AWS's error for one that is not a pattern.
    pub fn parse(criteria: Option<&crate::api::FilterCriteria>) -> Result<Filters, ServiceError> {
        let mut out = Vec::new();
        for f in criteria.and_then(|c| c.filters.as_ref()).into_iter().flatten() {
            let Some(text) = f.pattern.as_deref() else {
                continue;
            };
            let pattern = serde_json::from_str::<Value>(text)
                .ok()
                .filter(|p: &Value| p.is_object() && valid(p))
                .ok_or_else(|| invalid(format!("Invalid filter pattern definition. {text}")))?;
            out.push(pattern);
        }
        Ok(Filters(out))
    }

    /// Whether `record` passes: no filters, or any filter's pattern matches it.
    /// Whether there are no filters (every record passes).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn pass(&self, record: &Value) -> bool {
        self.0.is_empty() || self.0.iter().any(|p| matches_object(p, record))
    }
}

/// A pattern's leaves are lists; its inner nodes objects.
fn valid(p: &Value) -> bool {
    match p {
        Value::Object(o) => o.values().all(|v| match v {
            Value::Array(_) => true,
            Value::Object(_) => valid(v),
            _ => false,
        }),
        _ => false,
    }
}

fn matches_object(pattern: &Value, value: &Value) -> bool {
    let Value::Object(fields) = pattern else {
        return false;
    };
    fields.iter().all(|(key, want)| {
        let got = value.get(key);
        match want {
            Value::Object(_) => got.is_some_and(|g| match g {
                Value::Array(items) => items.iter().any(|i| matches_object(want, i)),
                _ => matches_object(want, g),
            }),
            Value::Array(matchers) => matchers.iter().any(|m| matches_leaf(m, got)),
            _ => false,
        }
    })
}

/// One matcher against a field (`None`: the field is absent).
fn matches_leaf(matcher: &Value, got: Option<&Value>) -> bool {
    if let Value::Object(m) = matcher {
        if let Some(exists) = m.get("exists").and_then(Value::as_bool) {
            return got.is_some() == exists;
        }
        let Some(got) = got else { return false };
        return any_item(got, |v| matches_operator(m, v));
    }
    match got {
        None => false,
        Some(g) => any_item(g, |v| equal(matcher, v)),
    }
}

/// A list field matches when one of its items does.
fn any_item(got: &Value, f: impl Fn(&Value) -> bool) -> bool {
    match got {
        Value::Array(items) => items.iter().any(&f),
        other => f(other),
    }
}

fn equal(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => want == got,
    }
}

fn matches_operator(m: &serde_json::Map<String, Value>, v: &Value) -> bool {
    let text = v.as_str();
    if let Some(p) = m.get("prefix") {
        return match (p, text) {
            (Value::String(p), Some(t)) => t.starts_with(p.as_str()),
            (Value::Object(o), Some(t)) => o
                .get("equals-ignore-case")
                .and_then(Value::as_str)
                .is_some_and(|p| t.to_lowercase().starts_with(&p.to_lowercase())),
            _ => false,
        };
    }
    if let Some(Value::String(s)) = m.get("suffix") {
        return text.is_some_and(|t| t.ends_with(s.as_str()));
    }
    if let Some(Value::String(s)) = m.get("equals-ignore-case") {
        return text.is_some_and(|t| t.eq_ignore_ascii_case(s));
    }
    if let Some(but) = m.get("anything-but") {
        return match but {
            Value::Array(items) => !items.iter().any(|i| equal(i, v)),
            Value::Object(o) => match (o.get("prefix").and_then(Value::as_str), text) {
                (Some(p), Some(t)) => !t.starts_with(p),
                _ => true,
            },
            single => !equal(single, v),
        };
    }
    if let Some(Value::Array(ops)) = m.get("numeric") {
        let Some(n) = v.as_f64() else { return false };
        return ops.chunks(2).all(|pair| match pair {
            [Value::String(op), bound] => bound.as_f64().is_some_and(|b| match op.as_str() {
                "=" => n == b,
                "<" => n < b,
                "<=" => n <= b,
                ">" => n > b,
                ">=" => n >= b,
                _ => false,
            }),
            _ => false,
        });
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filters(patterns: &[Value]) -> Filters {
        Filters(patterns.to_vec())
    }

    #[test]
    fn values_and_nesting() {
        let f = filters(&[json!({"data": {"kind": ["order"], "qty": [3]}})]);
        assert!(f.pass(&json!({"data": {"kind": "order", "qty": 3.0}})));
        assert!(!f.pass(&json!({"data": {"kind": "refund", "qty": 3}})));
        assert!(!f.pass(&json!({"data": {"kind": "order"}})));
        assert!(!f.pass(&json!({"other": 1})));
        // Any filter may match; no filters pass everything.
        let f = filters(&[json!({"a": [1]}), json!({"b": [2]})]);
        assert!(f.pass(&json!({"b": 2})));
        assert!(Filters::default().pass(&json!({})));
    }

    #[test]
    fn operators() {
        let r = json!({"name": "Order-17", "n": 12, "tags": ["x", "vip"], "nothing": null});
        let pass = |p: Value| filters(&[p]).pass(&r);
        assert!(pass(json!({"name": [{"prefix": "Order"}]})));
        assert!(pass(json!({"name": [{"suffix": "-17"}]})));
        assert!(pass(json!({"name": [{"equals-ignore-case": "order-17"}]})));
        assert!(pass(json!({"name": [{"anything-but": ["a", "b"]}]})));
        assert!(!pass(json!({"name": [{"anything-but": {"prefix": "Order"}}]})));
        assert!(pass(json!({"n": [{"numeric": [">", 10, "<=", 12]}]})));
        assert!(!pass(json!({"n": [{"numeric": ["<", 10]}]})));
        assert!(pass(json!({"missing": [{"exists": false}]})));
        assert!(pass(json!({"n": [{"exists": true}]})));
        assert!(pass(json!({"tags": ["vip"]})));
        assert!(pass(json!({"nothing": [null]})));
    }

    #[test]
    fn bad_patterns_are_refused() {
        let c = |p: &str| crate::api::FilterCriteria {
            filters: Some(vec![crate::api::Filter {
                pattern: Some(p.to_owned()),
            }]),
        };
        assert!(Filters::parse(Some(&c(r#"{"a": ["x"]}"#))).is_ok());
        assert!(Filters::parse(Some(&c(r#"{"a": "x"}"#))).is_err());
        assert!(Filters::parse(Some(&c("not json"))).is_err());
    }
}
