//! Attribute values: the ten types in their JSON form (`{"S": "x"}`), DynamoDB's checks of
//! what a client sends (with its messages), the size DynamoDB counts, and key encoding.
//!
//! A value that arrives malformed in a way JSON can express (no type, two types, `NULL:
//! false`) still deserializes, as [`AttributeValue::Invalid`], so the request can be refused
//! with DynamoDB's ValidationException instead of a parse error.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::number::Number;

pub type Item = BTreeMap<String, AttributeValue>;

#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    S(String),
    /// Canonical text once checked ([`canonicalize`]).
    N(String),
    B(Vec<u8>),
    Ss(Vec<String>),
    Ns(Vec<String>),
    Bs(Vec<Vec<u8>>),
    M(Item),
    L(Vec<AttributeValue>),
    Null,
    Bool(bool),
    Invalid(Invalid),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Empty,
    Several,
    NullFalse,
}

impl AttributeValue {
    /// The type's name as DynamoDB writes it (`attribute_type`, error messages).
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
            AttributeValue::M(_) => "M",
            AttributeValue::L(_) => "L",
            AttributeValue::Null => "NULL",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Invalid(_) => "",
        }
    }

    pub fn number(&self) -> Option<Number> {
        match self {
            AttributeValue::N(s) => Number::parse(s).ok(),
            _ => None,
        }
    }

    /// The size DynamoDB counts for this value (without its name): strings and binaries by
    /// their bytes, a number about one byte per two significant digits plus one, one byte for
    /// a boolean or null, three bytes for a list or map plus one per element.
    pub fn size(&self) -> usize {
        match self {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(s) => number_size(s),
            AttributeValue::B(b) => b.len(),
            AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
            AttributeValue::Ns(v) => v.iter().map(|s| number_size(s)).sum(),
            AttributeValue::Bs(v) => v.iter().map(Vec::len).sum(),
            AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + v.size() + 1).sum::<usize>(),
            AttributeValue::L(l) => 3 + l.iter().map(|v| v.size() + 1).sum::<usize>(),
            AttributeValue::Null | AttributeValue::Bool(_) => 1,
            AttributeValue::Invalid(_) => 0,
        }
    }

    /// Bytes whose order is DynamoDB's order for key values (strings and binaries by unsigned
    /// bytes, numbers by value), self-delimiting. Only S, N and B are key types.
    pub fn key_bytes(&self, out: &mut Vec<u8>) {
        let escaped = |bytes: &[u8], out: &mut Vec<u8>| {
            for &b in bytes {
                out.push(b);
                if b == 0 {
                    out.push(0xFF);
                }
            }
            out.extend_from_slice(&[0, 0]);
        };
        match self {
            AttributeValue::S(s) => escaped(s.as_bytes(), out),
            AttributeValue::B(b) => escaped(b, out),
            AttributeValue::N(s) => Number::parse(s).unwrap_or_else(|_| Number::zero()).key_bytes(out),
            _ => {}
        }
    }
}

fn number_size(s: &str) -> usize {
    let digits = Number::parse(s).map_or(1, |n| n.significant_digits());
    digits.div_ceil(2) + 1
}

/// The size of an item as DynamoDB counts it: each attribute's name and value.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

/// Deepest nesting of lists and maps DynamoDB stores.
const MAX_DEPTH: usize = 32;

/// Checks a value a client sent and rewrites its numbers (and number sets) in canonical form;
/// the error is DynamoDB's message.
pub fn canonicalize(v: &mut AttributeValue) -> Result<(), String> {
    canonicalize_at(v, 0)
}

fn canonicalize_at(v: &mut AttributeValue, depth: usize) -> Result<(), String> {
    const INVALID: &str = "One or more parameter values were invalid: ";
    if depth > MAX_DEPTH {
        return Err(
            "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit"
                .into(),
        );
    }
    match v {
        AttributeValue::Invalid(Invalid::Empty) => {
            Err("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes".into())
        }
        AttributeValue::Invalid(Invalid::Several) => Err(
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
                .into(),
        ),
        AttributeValue::Invalid(Invalid::NullFalse) => {
            Err(format!("{INVALID}Null attribute value types must have the value of true"))
        }
        AttributeValue::N(s) => {
            *s = Number::parse(s).map_err(|e| e.message())?.to_string();
            Ok(())
        }
        AttributeValue::Ss(set) => {
            if set.is_empty() {
                return Err(format!("{INVALID}An string set  may not be empty"));
            }
            let mut seen = std::collections::HashSet::new();
            if !set.iter().all(|s| seen.insert(s.as_str())) {
                return Err(format!("{INVALID}Input collection [{}] contains duplicates.", set.join(", ")));
            }
            Ok(())
        }
        AttributeValue::Ns(set) => {
            if set.is_empty() {
                return Err(format!("{INVALID}An number set  may not be empty"));
            }
            let mut numbers = Vec::with_capacity(set.len());
            for s in set.iter() {
                numbers.push(Number::parse(s).map_err(|e| e.message())?);
            }
            let mut sorted = numbers.clone();
            sorted.sort();
            if sorted.windows(2).any(|w| w[0] == w[1]) {
                return Err("Input collection contains duplicates".into());
            }
            *set = numbers.iter().map(Number::to_string).collect();
            Ok(())
        }
        AttributeValue::Bs(set) => {
            if set.is_empty() {
                return Err(format!("{INVALID}Binary sets should not be empty"));
            }
            let mut seen = std::collections::HashSet::new();
            if !set.iter().all(|b| seen.insert(b.as_slice())) {
                let shown: Vec<String> = set.iter().map(|b| BASE64.encode(b)).collect();
                return Err(format!("{INVALID}Input collection [{}]of type BS contains duplicates.", shown.join(", ")));
            }
            Ok(())
        }
        AttributeValue::M(m) => m.values_mut().try_for_each(|v| canonicalize_at(v, depth + 1)),
        AttributeValue::L(l) => l.iter_mut().try_for_each(|v| canonicalize_at(v, depth + 1)),
        _ => Ok(()),
    }
}

/// [`canonicalize`] over every value of an item.
pub fn canonicalize_item(item: &mut Item) -> Result<(), String> {
    item.values_mut().try_for_each(canonicalize)
}

/// Two values are equal as DynamoDB compares them: numbers by value, sets regardless of order.
pub fn equal(a: &AttributeValue, b: &AttributeValue) -> bool {
    use AttributeValue::*;
    match (a, b) {
        (N(x), N(y)) => Number::parse(x).ok() == Number::parse(y).ok(),
        (Ss(x), Ss(y)) => x.len() == y.len() && x.iter().all(|e| y.contains(e)),
        (Bs(x), Bs(y)) => x.len() == y.len() && x.iter().all(|e| y.contains(e)),
        (Ns(x), Ns(y)) => {
            let parse = |v: &Vec<String>| {
                let mut n: Vec<Number> = v.iter().filter_map(|s| Number::parse(s).ok()).collect();
                n.sort();
                n
            };
            parse(x) == parse(y)
        }
        (M(x), M(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w))),
        (L(x), L(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| equal(v, w)),
        _ => a == b,
    }
}

/// The order of two scalar values of one type (S, N, B); `None` for any other pair.
pub fn compare(a: &AttributeValue, b: &AttributeValue) -> Option<std::cmp::Ordering> {
    use AttributeValue::*;
    match (a, b) {
        (S(x), S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (B(x), B(y)) => Some(x.cmp(y)),
        (N(x), N(y)) => Some(Number::parse(x).ok()?.cmp(&Number::parse(y).ok()?)),
        _ => None,
    }
}

impl Serialize for AttributeValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            AttributeValue::S(s) => map.serialize_entry("S", s)?,
            AttributeValue::N(s) => map.serialize_entry("N", s)?,
            AttributeValue::B(b) => map.serialize_entry("B", &BASE64.encode(b))?,
            AttributeValue::Ss(v) => map.serialize_entry("SS", v)?,
            AttributeValue::Ns(v) => map.serialize_entry("NS", v)?,
            AttributeValue::Bs(v) => {
                let v: Vec<String> = v.iter().map(|b| BASE64.encode(b)).collect();
                map.serialize_entry("BS", &v)?
            }
            AttributeValue::M(m) => map.serialize_entry("M", m)?,
            AttributeValue::L(l) => map.serialize_entry("L", l)?,
            AttributeValue::Null => map.serialize_entry("NULL", &true)?,
            AttributeValue::Bool(b) => map.serialize_entry("BOOL", b)?,
            // Never stored or answered: refused when the request is checked.
            AttributeValue::Invalid(_) => {}
        }
        map.end()
    }
}

struct Base64Bytes(Vec<u8>);

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BASE64.decode(s.as_bytes()).map(Base64Bytes).map_err(|_| {
            de::Error::custom("Base64 encoded length is expected a multiple of 4 bytes but found: invalid")
        })
    }
}

impl<'de> Deserialize<'de> for AttributeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AttributeValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attribute value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttributeValue, A::Error> {
                let mut found: Option<AttributeValue> = None;
                let mut several = false;
                while let Some(key) = map.next_key::<String>()? {
                    let value = match key.as_str() {
                        "S" => AttributeValue::S(map.next_value()?),
                        "N" => AttributeValue::N(map.next_value()?),
                        "B" => AttributeValue::B(map.next_value::<Base64Bytes>()?.0),
                        "SS" => AttributeValue::Ss(map.next_value()?),
                        "NS" => AttributeValue::Ns(map.next_value()?),
                        "BS" => AttributeValue::Bs(
                            map.next_value::<Vec<Base64Bytes>>()?
                                .into_iter()
                                .map(|b| b.0)
                                .collect(),
                        ),
                        "M" => AttributeValue::M(map.next_value()?),
                        "L" => AttributeValue::L(map.next_value()?),
                        "NULL" => {
                            if map.next_value::<bool>()? {
                                AttributeValue::Null
                            } else {
                                AttributeValue::Invalid(Invalid::NullFalse)
                            }
                        }
                        "BOOL" => AttributeValue::Bool(map.next_value()?),
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    if found.is_some() {
                        several = true;
                    }
                    found = Some(value);
                }
                Ok(match found {
                    _ if several => AttributeValue::Invalid(Invalid::Several),
                    Some(v) => v,
                    None => AttributeValue::Invalid(Invalid::Empty),
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// An item a Query, Scan, BatchGetItem or PartiQL SELECT answers: the stored JSON as it was
/// read, copied into the answer unchanged (what they answer when nothing is projected: no
/// decoded copy is made and encoded again), or an item built here (a projection).
#[derive(Debug, Clone)]
pub enum ListedItem {
    /// The item's JSON as stored, already canonical. DynamoDB speaks JSON only, so nothing
    /// serializes it in another format.
    Stored(Box<RawValue>),
    Built(Item),
}

impl ListedItem {
    /// A stored item's JSON (checked to be JSON: one scan, no allocation per attribute).
    pub fn stored(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice::<Box<RawValue>>(json).map(ListedItem::Stored)
    }

    pub fn into_item(self) -> Result<Item, serde_json::Error> {
        match self {
            ListedItem::Stored(json) => serde_json::from_str(json.get()),
            ListedItem::Built(item) => Ok(item),
        }
    }
}

impl PartialEq for ListedItem {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ListedItem::Stored(a), ListedItem::Stored(b)) => a.get() == b.get(),
            (ListedItem::Built(a), ListedItem::Built(b)) => a == b,
            _ => false,
        }
    }
}

impl Serialize for ListedItem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ListedItem::Stored(json) => json.serialize(s),
            ListedItem::Built(item) => item.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ListedItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Item::deserialize(d).map(ListedItem::Built)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> AttributeValue {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn json_round_trip() {
        for json in [
            r#"{"S":"x"}"#,
            r#"{"N":"1.5"}"#,
            r#"{"B":"AAEC"}"#,
            r#"{"SS":["a","b"]}"#,
            r#"{"BS":["AA=="]}"#,
            r#"{"M":{"a":{"L":[{"NULL":true},{"BOOL":false}]}}}"#,
        ] {
            assert_eq!(serde_json::to_string(&parse(json)).unwrap(), json);
        }
    }

    #[test]
    fn malformed_values_in_dynamodb_words() {
        let check = |json: &str| canonicalize(&mut parse(json)).unwrap_err();
        assert!(check("{}").starts_with("Supplied AttributeValue is empty"));
        assert!(
            check(r#"{"S":"a","N":"1"}"#).starts_with("Supplied AttributeValue has more than one datatypes")
        );
        assert!(
            check(r#"{"NULL":false}"#).ends_with("Null attribute value types must have the value of true")
        );
        assert!(check(r#"{"SS":[]}"#).ends_with("An string set  may not be empty"));
        assert!(check(r#"{"SS":["a","a"]}"#).ends_with("Input collection [a, a] contains duplicates."));
        assert_eq!(
            check(r#"{"NS":["1","1.0"]}"#),
            "Input collection contains duplicates"
        );
        assert!(check(r#"{"M":{"a":{}}}"#).starts_with("Supplied AttributeValue is empty"));
        let mut v = parse(r#"{"NS":["1e2","0.50"]}"#);
        canonicalize(&mut v).unwrap();
        assert_eq!(v, AttributeValue::Ns(vec!["100".into(), "0.5".into()]));
    }

    #[test]
    fn sizes_as_dynamodb_counts_them() {
        let mut item = Item::new();
        item.insert("name".into(), AttributeValue::S("abc".into())); // 4 + 3
        item.insert("n".into(), AttributeValue::N("12345".into())); // 1 + 3 + 1
        item.insert("m".into(), parse(r#"{"M":{"k":{"BOOL":true}}}"#)); // 1 + 3 + (1 + 1 + 1)
        assert_eq!(item_size(&item), 7 + 5 + 7);
    }
}
