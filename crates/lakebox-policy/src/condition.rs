//! The `Condition` element: `{ "Operator": { "key": value-or-values } }`. Operators are ANDed,
//! so are keys under one operator; a key's values are ORed (NORed for negated operators). A key
//! missing from the request makes a condition false, a negated one true; `…IfExists` makes it
//! true; `Null` tests presence. `ForAllValues:` / `ForAnyValue:` compare every / some of a
//! multivalued key's values.

use std::net::IpAddr;

use base64::Engine;
use serde_json::{Map, Value};

use lakebox_core::net::{in_cidr, parse_cidr};

use crate::matching::{compile, tokens_match};
use crate::{Context, PolicyError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    ArnLike,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    /// Single-valued: some value of the key matches.
    None,
    ForAllValues,
    ForAnyValue,
}

/// One operator applied to one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    kind: Kind,
    negated: bool,
    if_exists: bool,
    set: SetOp,
    key: String,
    values: Vec<String>,
}

/// The operator's name → its kind and whether it is the negated form.
fn operator(name: &str) -> Option<(Kind, bool)> {
    use Kind::*;
    Some(match name {
        "StringEquals" => (StringEquals, false),
        "StringNotEquals" => (StringEquals, true),
        "StringEqualsIgnoreCase" => (StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (StringEqualsIgnoreCase, true),
        "StringLike" => (StringLike, false),
        "StringNotLike" => (StringLike, true),
        "NumericEquals" => (NumericEquals, false),
        "NumericNotEquals" => (NumericEquals, true),
        "NumericLessThan" => (NumericLessThan, false),
        "NumericLessThanEquals" => (NumericLessThanEquals, false),
        "NumericGreaterThan" => (NumericGreaterThan, false),
        "NumericGreaterThanEquals" => (NumericGreaterThanEquals, false),
        "DateEquals" => (DateEquals, false),
        "DateNotEquals" => (DateEquals, true),
        "DateLessThan" => (DateLessThan, false),
        "DateLessThanEquals" => (DateLessThanEquals, false),
        "DateGreaterThan" => (DateGreaterThan, false),
        "DateGreaterThanEquals" => (DateGreaterThanEquals, false),
        "Bool" => (Bool, false),
        "BinaryEquals" => (BinaryEquals, false),
        "IpAddress" => (IpAddress, false),
        "NotIpAddress" => (IpAddress, true),
        "ArnEquals" | "ArnLike" => (ArnLike, false),
        "ArnNotEquals" | "ArnNotLike" => (ArnLike, true),
        "Null" => (Null, false),
        _ => return None,
    })
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Condition {
    pub(crate) fn parse_block(block: &Map<String, Value>) -> Result<Vec<Condition>, PolicyError> {
        let mut out = Vec::new();
        for (name, keys) in block {
            let (set, rest) = if let Some(r) = name.strip_prefix("ForAllValues:") {
                (SetOp::ForAllValues, r)
            } else if let Some(r) = name.strip_prefix("ForAnyValue:") {
                (SetOp::ForAnyValue, r)
            } else {
                (SetOp::None, name.as_str())
            };
            let (base, if_exists) = match rest.strip_suffix("IfExists") {
                Some(b) if b != "Null" => (b, true),
                _ => (rest, false),
            };
            let (kind, negated) =
                operator(base).ok_or_else(|| PolicyError(format!("Invalid Condition type : {name}")))?;
            let Value::Object(keys) = keys else {
                return Err(PolicyError(format!(
                    "Invalid Condition : {name} must map keys to values"
                )));
            };
            for (key, v) in keys {
                let values: Vec<String> = match v {
                    Value::Array(items) => items.iter().map(scalar).collect::<Option<_>>(),
                    other => scalar(other).map(|s| vec![s]),
                }
                .ok_or_else(|| PolicyError(format!("Invalid Condition value for {key}")))?;
                if kind == Kind::IpAddress {
                    for v in &values {
                        parse_cidr(v)
                            .ok_or_else(|| PolicyError(format!("Invalid IP address or CIDR: {v}")))?;
                    }
                }
                out.push(Condition {
                    kind,
                    negated,
                    if_exists,
                    set,
                    key: key.clone(),
                    values,
                });
            }
        }
        Ok(out)
    }

    /// Whether a grant under this condition is still open to anyone (a public policy): only
    /// conditions on who or where the caller is close it.
    pub(crate) fn is_open(&self) -> bool {
        let key = self.key.to_ascii_lowercase();
        let closes = matches!(
            key.as_str(),
            "aws:sourceip"
                | "aws:sourcevpc"
                | "aws:sourcevpce"
                | "aws:sourcearn"
                | "aws:sourceaccount"
                | "aws:sourceowner"
                | "aws:principalaccount"
                | "aws:principalarn"
                | "aws:principalorgid"
                | "aws:userid"
                | "aws:username"
                | "s3:dataaccesspointaccount"
                | "s3:dataaccesspointarn"
        );
        !closes || self.negated
    }

    pub(crate) fn holds(&self, ctx: &Context) -> bool {
        let present = ctx.get(&self.key).filter(|v| !v.is_empty());
        if self.kind == Kind::Null {
            let want_absent = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return present.is_none() == want_absent;
        }
        let Some(actual) = present else {
            return match self.set {
                // Every one of no values matches.
                SetOp::ForAllValues => true,
                SetOp::ForAnyValue => false,
                SetOp::None => self.if_exists || self.negated,
            };
        };
        // Does one request value match the policy's values (any of them; for a negated
        // operator, none of them)?
        let matches = |value: &str| {
            let any = self.values.iter().any(|p| self.compare(p, value, ctx));
            any != self.negated
        };
        match self.set {
            SetOp::ForAllValues => actual.iter().all(|v| matches(v)),
            SetOp::ForAnyValue | SetOp::None => actual.iter().any(|v| matches(v)),
        }
    }

    fn compare(&self, policy: &str, value: &str, ctx: &Context) -> bool {
        let num = |s: &str| s.trim().parse::<f64>().ok();
        let date = |s: &str| parse_date(s);
        match self.kind {
            // Variables are substituted; `*` and `?` are plain characters here.
            Kind::StringEquals => compile(policy, Some(ctx)).is_some_and(|p| tokens_to_string(&p) == value),
            Kind::StringEqualsIgnoreCase => compile(policy, Some(ctx))
                .is_some_and(|p| tokens_to_string(&p).to_lowercase() == value.to_lowercase()),
            Kind::StringLike => compile(policy, Some(ctx)).is_some_and(|p| tokens_match(&p, value)),
            Kind::NumericEquals => num(policy).zip(num(value)).is_some_and(|(p, v)| v == p),
            Kind::NumericLessThan => num(policy).zip(num(value)).is_some_and(|(p, v)| v < p),
            Kind::NumericLessThanEquals => num(policy).zip(num(value)).is_some_and(|(p, v)| v <= p),
            Kind::NumericGreaterThan => num(policy).zip(num(value)).is_some_and(|(p, v)| v > p),
            Kind::NumericGreaterThanEquals => num(policy).zip(num(value)).is_some_and(|(p, v)| v >= p),
            Kind::DateEquals => date(policy).zip(date(value)).is_some_and(|(p, v)| v == p),
            Kind::DateLessThan => date(policy).zip(date(value)).is_some_and(|(p, v)| v < p),
            Kind::DateLessThanEquals => date(policy).zip(date(value)).is_some_and(|(p, v)| v <= p),
            Kind::DateGreaterThan => date(policy).zip(date(value)).is_some_and(|(p, v)| v > p),
            Kind::DateGreaterThanEquals => date(policy).zip(date(value)).is_some_and(|(p, v)| v >= p),
            Kind::Bool => policy.eq_ignore_ascii_case(value),
            Kind::BinaryEquals => {
                let b64 = base64::engine::general_purpose::STANDARD;
                b64.decode(policy)
                    .ok()
                    .zip(b64.decode(value).ok())
                    .is_some_and(|(p, v)| p == v)
            }
            Kind::IpAddress => match (parse_cidr(policy), value.parse::<IpAddr>()) {
                (Some((net, bits)), Ok(ip)) => in_cidr(ip, net, bits),
                _ => false,
            },
            // ARNs compare segment by segment, each with wildcards.
            Kind::ArnLike => {
                let (p, v): (Vec<&str>, Vec<&str>) =
                    (policy.splitn(6, ':').collect(), value.splitn(6, ':').collect());
                p.len() == 6
                    && v.len() == 6
                    && p.iter()
                        .zip(&v)
                        .all(|(ps, vs)| compile(ps, Some(ctx)).is_some_and(|t| tokens_match(&t, vs)))
            }
            Kind::Null => false,
        }
    }
}

fn tokens_to_string(p: &[crate::matching::Tok]) -> String {
    p.iter()
        .map(|t| match t {
            crate::matching::Tok::Any => '*',
            crate::matching::Tok::One => '?',
            crate::matching::Tok::Char(c) => *c,
        })
        .collect()
}

/// An ISO 8601 date-time or epoch seconds, as seconds.
fn parse_date(s: &str) -> Option<f64> {
    if let Ok(n) = s.trim().parse::<f64>() {
        return Some(n);
    }
    lakebox_protocol::Timestamp::parse_iso8601(s.trim())
        .or_else(|| lakebox_protocol::Timestamp::parse_iso8601(&format!("{}T00:00:00Z", s.trim())))
        .map(|t| t.as_millis() as f64 / 1000.0)
}
