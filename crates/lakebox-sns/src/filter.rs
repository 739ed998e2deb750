//! Subscription filter policies: which messages a subscription receives, by the message's
//! attributes (scope `MessageAttributes`, the default) or the fields of its JSON body (scope
//! `MessageBody`). A policy is parsed (and checked) once, when it is set.
//!
//! Supported as AWS documents them: exact strings and numbers, `prefix`, `suffix`,
//! `equals-ignore-case`, `anything-but` (values, or a `prefix` / `suffix`), `numeric`
//! comparisons and ranges, `exists`, `cidr`, `$or`, nested keys (body scope), and array values
//! matching when any element matches.

use std::collections::BTreeMap;
use std::net::IpAddr;

use lakebox_core::ServiceError;
use lakebox_core::net::{in_cidr, parse_cidr};
use serde_json::Value;

use crate::errors::invalid_parameter;

/// The most keys a policy may name, and the most value combinations it may expand to.
const MAX_KEYS: usize = 5;
const MAX_COMBINATIONS: usize = 150;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    MessageAttributes,
    MessageBody,
}

impl Scope {
    pub fn parse(s: Option<&str>) -> Result<Scope, ServiceError> {
        match s {
            None | Some("MessageAttributes") => Ok(Scope::MessageAttributes),
            Some("MessageBody") => Ok(Scope::MessageBody),
            Some(_) => Err(invalid_parameter(
                "FilterPolicyScope: Invalid filter policy scope",
            )),
        }
    }
}

/// A parsed policy: every key's conditions must hold (and one branch of each `$or`).
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPolicy {
    scope: Scope,
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
struct Node {
    /// key → what its value must satisfy.
    keys: Vec<(String, Rule)>,
    /// `$or` branches: at least one must match.
    any_of: Vec<Vec<Node>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    /// Any one of these must match the value.
    Leaf(Vec<Cond>),
    /// A nested object (body scope).
    Nested(Node),
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Exact(String),
    Number(f64),
    Bool(bool),
    Null,
    Prefix(String),
    Suffix(String),
    IgnoreCase(String),
    AnythingBut(Vec<Cond>),
    Numeric(Vec<(Op, f64)>),
    Exists(bool),
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

fn bad(why: impl std::fmt::Display) -> ServiceError {
    invalid_parameter(format!("FilterPolicy: {why}"))
}

/// A message value a condition is tested against.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Text(String),
    Number(f64),
    Bool(bool),
    Null,
}

impl FilterPolicy {
    pub fn parse(text: &str, scope: Scope) -> Result<FilterPolicy, ServiceError> {
        let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("failed to parse JSON. {e}")))?;
        let Value::Object(obj) = v else {
            return Err(bad("Filter policy must be a JSON object"));
        };
        let root = parse_node(&obj, scope)?;
        let keys = count_keys(&root);
        if scope == Scope::MessageAttributes && keys > MAX_KEYS {
            return Err(bad(format!(
                "Filter policy can not have more than {MAX_KEYS} keys"
            )));
        }
        if combinations(&root) > MAX_COMBINATIONS {
            return Err(bad("Filter policy is too complex"));
        }
        Ok(FilterPolicy { scope, root })
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// Whether a message with these attributes (name → type, value) matches.
    pub fn matches_attributes(&self, attrs: &BTreeMap<String, (String, String)>) -> bool {
        let lookup = |path: &[&str]| -> Option<Vec<Field>> {
            let (data_type, value) = attrs.get(path[0])?;
            Some(attribute_fields(data_type, value))
        };
        node_matches(&self.root, &mut Vec::new(), &lookup)
    }

    /// Whether a message whose body is `body` matches (a body that is not a JSON object never
    /// does).
    pub fn matches_body(&self, body: &str) -> bool {
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(body) else {
            return false;
        };
        let lookup = |path: &[&str]| -> Option<Vec<Field>> {
            let v = obj.get(path[0])?;
            body_fields(v, &path[1..])
        };
        node_matches(&self.root, &mut Vec::new(), &lookup)
    }
}

/// An attribute's value as fields: String.Array as its elements, Number as a number.
fn attribute_fields(data_type: &str, value: &str) -> Vec<Field> {
    if data_type.starts_with("String.Array") {
        if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(value) {
            return items.iter().flat_map(json_fields).collect();
        }
        return vec![Field::Text(value.to_owned())];
    }
    if data_type.starts_with("Number")
        && let Ok(n) = value.trim().parse::<f64>()
    {
        return vec![Field::Number(n)];
    }
    if data_type.starts_with("Binary") {
        return Vec::new();
    }
    vec![Field::Text(value.to_owned())]
}

/// The values at `path` below `v`; arrays of objects are looked into element by element, as
/// SNS flattens them.
fn body_fields(v: &Value, path: &[&str]) -> Option<Vec<Field>> {
    let Some((first, rest)) = path.split_first() else {
        return Some(json_fields(v));
    };
    match v {
        Value::Object(o) => body_fields(o.get(*first)?, rest),
        Value::Array(items) => {
            let found: Vec<Field> = items
                .iter()
                .filter_map(|i| body_fields(i, path))
                .flatten()
                .collect();
            (!found.is_empty()).then_some(found)
        }
        _ => None,
    }
}

fn json_fields(v: &Value) -> Vec<Field> {
    match v {
        Value::String(s) => vec![Field::Text(s.clone())],
        Value::Number(n) => n.as_f64().map(Field::Number).into_iter().collect(),
        Value::Bool(b) => vec![Field::Bool(*b)],
        Value::Null => vec![Field::Null],
        Value::Array(items) => items.iter().flat_map(json_fields).collect(),
        Value::Object(_) => Vec::new(),
    }
}

fn parse_node(obj: &serde_json::Map<String, Value>, scope: Scope) -> Result<Node, ServiceError> {
    if obj.is_empty() {
        return Err(bad("Filter policy can not be empty"));
    }
    let mut node = Node {
        keys: Vec::new(),
        any_of: Vec::new(),
    };
    for (k, v) in obj {
        if k == "$or" {
            let Value::Array(branches) = v else {
                return Err(bad("$or must be an array of objects"));
            };
            if branches.len() < 2 {
                return Err(bad("$or must have at least two branches"));
            }
            let mut parsed = Vec::new();
            for b in branches {
                let Value::Object(o) = b else {
                    return Err(bad("$or must be an array of objects"));
                };
                parsed.push(parse_node(o, scope)?);
            }
            node.any_of.push(parsed);
            continue;
        }
        let rule = match v {
            Value::Array(conds) => Rule::Leaf(parse_conds(k, conds)?),
            Value::Object(o) if scope == Scope::MessageBody => Rule::Nested(parse_node(o, scope)?),
            Value::Object(_) => {
                return Err(bad(format!(
                    "\"{k}\": nested keys are only allowed with FilterPolicyScope MessageBody"
                )));
            }
            _ => return Err(bad(format!("\"{k}\" must be an object or an array"))),
        };
        node.keys.push((k.clone(), rule));
    }
    Ok(node)
}

fn parse_conds(key: &str, conds: &[Value]) -> Result<Vec<Cond>, ServiceError> {
    if conds.is_empty() {
        return Err(bad(format!("\"{key}\": Empty arrays are not allowed")));
    }
    conds.iter().map(|c| parse_cond(key, c)).collect()
}

fn parse_cond(key: &str, c: &Value) -> Result<Cond, ServiceError> {
    Ok(match c {
        Value::String(s) => Cond::Exact(s.clone()),
        Value::Number(n) => Cond::Number(n.as_f64().ok_or_else(|| bad("numbers must be finite"))?),
        Value::Bool(b) => Cond::Bool(*b),
        Value::Null => Cond::Null,
        Value::Array(_) => {
            return Err(bad(format!(
                "\"{key}\": Match value must be String, number, true, false, or null"
            )));
        }
        Value::Object(o) => {
            let mut it = o.iter();
            let (Some((op, arg)), None) = (it.next(), it.next()) else {
                return Err(bad(format!(
                    "\"{key}\": a match object holds exactly one operator"
                )));
            };
            let text = |what: &str| -> Result<String, ServiceError> {
                arg.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(format!("\"{key}\": {what} match pattern must be a string")))
            };
            match op.as_str() {
                "prefix" => Cond::Prefix(text("prefix")?),
                "suffix" => Cond::Suffix(text("suffix")?),
                "equals-ignore-case" => Cond::IgnoreCase(text("equals-ignore-case")?),
                "exists" => match arg {
                    Value::Bool(b) => Cond::Exists(*b),
                    _ => {
                        return Err(bad(format!(
                            "\"{key}\": exists match pattern must be either true or false."
                        )));
                    }
                },
                "anything-but" => Cond::AnythingBut(match arg {
                    Value::Array(items) if !items.is_empty() => items
                        .iter()
                        .map(|i| match i {
                            Value::String(s) => Ok(Cond::Exact(s.clone())),
                            Value::Number(n) => Ok(Cond::Number(n.as_f64().unwrap_or(f64::NAN))),
                            _ => Err(bad(format!(
                                "\"{key}\": Inside anything but list, start|null|boolean is not supported."
                            ))),
                        })
                        .collect::<Result<_, _>>()?,
                    Value::String(s) => vec![Cond::Exact(s.clone())],
                    Value::Number(n) => vec![Cond::Number(n.as_f64().unwrap_or(f64::NAN))],
                    Value::Object(inner) if inner.len() == 1 => {
                        let (iop, iarg) = inner.iter().next().unwrap_or((op, arg));
                        let s = iarg
                            .as_str()
                            .ok_or_else(|| bad(format!("\"{key}\": {iop} match pattern must be a string")))?;
                        match iop.as_str() {
                            "prefix" => vec![Cond::Prefix(s.to_owned())],
                            "suffix" => vec![Cond::Suffix(s.to_owned())],
                            "equals-ignore-case" => vec![Cond::IgnoreCase(s.to_owned())],
                            other => {
                                return Err(bad(format!(
                                    "\"{key}\": Unsupported anything-but pattern: {other}"
                                )));
                            }
                        }
                    }
                    _ => {
                        return Err(bad(format!(
                            "\"{key}\": Value of anything-but must be an array or single string/number value."
                        )));
                    }
                }),
                "numeric" => Cond::Numeric(parse_numeric(key, arg)?),
                "cidr" => {
                    let s = text("cidr")?;
                    if !s.contains('/') {
                        return Err(bad(format!("\"{key}\": Malformed CIDR, one '/' required")));
                    }
                    let (ip, bits) =
                        parse_cidr(&s).ok_or_else(|| bad(format!("\"{key}\": Malformed CIDR: {s}")))?;
                    Cond::Cidr(ip, bits)
                }
                other => return Err(bad(format!("\"{key}\": Unrecognized match type {other}"))),
            }
        }
    })
}

fn parse_numeric(key: &str, arg: &Value) -> Result<Vec<(Op, f64)>, ServiceError> {
    let Value::Array(items) = arg else {
        return Err(bad(format!("\"{key}\": Value of numeric must be an array.")));
    };
    if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
        return Err(bad(format!("\"{key}\": Invalid member in numeric match")));
    }
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let op = match pair[0].as_str() {
            Some("=") => Op::Eq,
            Some("<") => Op::Lt,
            Some("<=") => Op::Le,
            Some(">") => Op::Gt,
            Some(">=") => Op::Ge,
            _ => {
                return Err(bad(format!(
                    "\"{key}\": Unrecognized numeric range operator: {}",
                    pair[0]
                )));
            }
        };
        let n = pair[1]
            .as_f64()
            .ok_or_else(|| bad(format!("\"{key}\": Value of {} must be numeric", pair[0])))?;
        out.push((op, n));
    }
    // A range is one lower bound then one upper bound.
    if out.len() == 2 {
        let lower = matches!(out[0].0, Op::Gt | Op::Ge);
        let upper = matches!(out[1].0, Op::Lt | Op::Le);
        if !lower || !upper || out[0].1 >= out[1].1 {
            return Err(bad(format!("\"{key}\": Bad numeric range operator")));
        }
    } else if out[0].0 == Op::Eq && items.len() > 2 {
        return Err(bad(format!("\"{key}\": Bad numeric range operator")));
    }
    Ok(out)
}

fn count_keys(n: &Node) -> usize {
    let own: usize = n
        .keys
        .iter()
        .map(|(_, r)| match r {
            Rule::Leaf(_) => 1,
            Rule::Nested(inner) => count_keys(inner),
        })
        .sum();
    let or: usize = n
        .any_of
        .iter()
        .map(|b| b.iter().map(count_keys).max().unwrap_or(0))
        .sum();
    own + or
}

/// The product of each key's number of values, summed over `$or` branches, as AWS counts a
/// policy's complexity.
fn combinations(n: &Node) -> usize {
    let mut total: usize = 1;
    for (_, r) in &n.keys {
        let c = match r {
            Rule::Leaf(conds) => conds.len(),
            Rule::Nested(inner) => combinations(inner),
        };
        total = total.saturating_mul(c.max(1));
    }
    for branches in &n.any_of {
        let sum: usize = branches.iter().map(combinations).sum();
        total = total.saturating_mul(sum.max(1));
    }
    total
}

fn node_matches<'a>(
    n: &'a Node,
    path: &mut Vec<&'a str>,
    lookup: &dyn Fn(&[&str]) -> Option<Vec<Field>>,
) -> bool {
    for (k, rule) in &n.keys {
        path.push(k);
        let ok = match rule {
            Rule::Leaf(conds) => leaf_matches(conds, lookup(path)),
            Rule::Nested(inner) => node_matches(inner, path, lookup),
        };
        path.pop();
        if !ok {
            return false;
        }
    }
    n.any_of
        .iter()
        .all(|branches| branches.iter().any(|b| node_matches(b, path, lookup)))
}

fn leaf_matches(conds: &[Cond], value: Option<Vec<Field>>) -> bool {
    conds.iter().any(|c| match (c, &value) {
        (Cond::Exists(want), v) => v.is_some() == *want,
        (_, None) => false,
        // Like every condition, anything-but holds when one of the values (an array's
        // elements) satisfies it.
        (Cond::AnythingBut(not), Some(fields)) => {
            fields.iter().any(|f| !not.iter().any(|n| cond_matches(n, f)))
        }
        (c, Some(fields)) => fields.iter().any(|f| cond_matches(c, f)),
    })
}

fn cond_matches(c: &Cond, f: &Field) -> bool {
    match (c, f) {
        (Cond::Exact(s), Field::Text(t)) => s == t,
        (Cond::Number(n), Field::Number(m)) => n == m,
        (Cond::Bool(b), Field::Bool(v)) => b == v,
        (Cond::Null, Field::Null) => true,
        (Cond::Prefix(p), Field::Text(t)) => t.starts_with(p.as_str()),
        (Cond::Suffix(s), Field::Text(t)) => t.ends_with(s.as_str()),
        (Cond::IgnoreCase(s), Field::Text(t)) => s.to_lowercase() == t.to_lowercase(),
        (Cond::Numeric(ops), Field::Number(m)) => ops.iter().all(|(op, n)| match op {
            Op::Eq => m == n,
            Op::Lt => m < n,
            Op::Le => m <= n,
            Op::Gt => m > n,
            Op::Ge => m >= n,
        }),
        (Cond::Cidr(net, bits), Field::Text(t)) => {
            t.parse::<IpAddr>().is_ok_and(|ip| in_cidr(ip, *net, *bits))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str, &str)]) -> BTreeMap<String, (String, String)> {
        pairs
            .iter()
            .map(|(n, t, v)| ((*n).to_owned(), ((*t).to_owned(), (*v).to_owned())))
            .collect()
    }

    #[test]
    fn attribute_policies_match_as_documented() {
        let p = FilterPolicy::parse(
            r#"{"store":["example_corp"],"event":[{"anything-but":"order_cancelled"}],"price_usd":[{"numeric":[">=",100]}],"customer_interests":["rugby","football"]}"#,
            Scope::MessageAttributes,
        )
        .unwrap();
        let yes = attrs(&[
            ("store", "String", "example_corp"),
            ("event", "String", "order_placed"),
            ("price_usd", "Number", "210.75"),
            (
                "customer_interests",
                "String.Array",
                r#"["soccer","rugby","hockey"]"#,
            ),
        ]);
        assert!(p.matches_attributes(&yes));
        let mut no = yes.clone();
        no.insert("event".into(), ("String".into(), "order_cancelled".into()));
        assert!(!p.matches_attributes(&no));
        let mut cheap = yes.clone();
        cheap.insert("price_usd".into(), ("Number".into(), "99".into()));
        assert!(!p.matches_attributes(&cheap));
        let mut missing = yes;
        missing.remove("store");
        assert!(!p.matches_attributes(&missing));
    }

    #[test]
    fn operators_prefix_suffix_exists_cidr_and_or() {
        let p = FilterPolicy::parse(
            r#"{"source":[{"prefix":"order-"},{"suffix":".csv"}],"ip":[{"cidr":"10.0.0.0/24"}],"opt":[{"exists":false}]}"#,
            Scope::MessageAttributes,
        )
        .unwrap();
        assert!(p.matches_attributes(&attrs(&[
            ("source", "String", "x.csv"),
            ("ip", "String", "10.0.0.7")
        ])));
        assert!(!p.matches_attributes(&attrs(&[
            ("source", "String", "x.csv"),
            ("ip", "String", "10.0.1.7")
        ])));
        assert!(!p.matches_attributes(&attrs(&[
            ("source", "String", "order-1"),
            ("ip", "String", "10.0.0.7"),
            ("opt", "String", "y")
        ])));
        let or = FilterPolicy::parse(
            r#"{"$or":[{"a":["1"]},{"b":[{"numeric":[">",0,"<=",5]}]}]}"#,
            Scope::MessageAttributes,
        )
        .unwrap();
        assert!(or.matches_attributes(&attrs(&[("b", "Number", "5")])));
        assert!(!or.matches_attributes(&attrs(&[("b", "Number", "6")])));
        assert!(or.matches_attributes(&attrs(&[("a", "String", "1")])));
    }

    #[test]
    fn body_scope_reads_nested_keys() {
        let p = FilterPolicy::parse(
            r#"{"order":{"status":["paid"],"total":[{"numeric":[">",10]}]},"tags":["vip"]}"#,
            Scope::MessageBody,
        )
        .unwrap();
        assert!(p.matches_body(r#"{"order":{"status":"paid","total":12.5},"tags":["new","vip"]}"#));
        assert!(!p.matches_body(r#"{"order":{"status":"paid","total":2},"tags":["vip"]}"#));
        assert!(!p.matches_body("not json"));
    }

    #[test]
    fn bad_policies_are_refused() {
        for (bad, scope) in [
            ("[]", Scope::MessageAttributes),
            (r#"{"a":[]}"#, Scope::MessageAttributes),
            (r#"{"a":[{"numeric":["<"]}]}"#, Scope::MessageAttributes),
            (r#"{"a":[{"nope":1}]}"#, Scope::MessageAttributes),
            (r#"{"a":{"b":["x"]}}"#, Scope::MessageAttributes),
            (
                r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}"#,
                Scope::MessageAttributes,
            ),
        ] {
            let e = FilterPolicy::parse(bad, scope).unwrap_err();
            assert_eq!(e.code, "InvalidParameter", "{bad}");
            assert!(
                e.message.starts_with("Invalid parameter: FilterPolicy: "),
                "{}",
                e.message
            );
        }
    }
}
