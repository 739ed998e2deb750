//! Conditions evaluated on an item, and projections of an item. A condition never fails: an
//! attribute that is missing or of another type makes a comparison false, as in DynamoDB.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::{Cmp, Cond, DocPath, Elem, Operand};
use crate::value::{AttributeValue, Item, compare, equal};

/// The value at `path` in `item`, if there is one.
pub fn resolve<'a>(item: &'a Item, path: &DocPath) -> Option<&'a AttributeValue> {
    let mut steps = path.0.iter();
    let Some(Elem::Name(first)) = steps.next() else {
        return None;
    };
    let mut cur = item.get(first)?;
    for step in steps {
        cur = match (step, cur) {
            (Elem::Name(n), AttributeValue::M(m)) => m.get(n)?,
            (Elem::Index(i), AttributeValue::L(l)) => l.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn operand<'a>(item: &'a Item, op: &'a Operand) -> Option<Cow<'a, AttributeValue>> {
    match op {
        Operand::Path(p) => resolve(item, p).map(Cow::Borrowed),
        Operand::Value(v) => Some(Cow::Borrowed(v)),
        Operand::Size(p) => {
            let n = match resolve(item, p)? {
                AttributeValue::S(s) => s.chars().count(),
                AttributeValue::B(b) => b.len(),
                AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.len(),
                AttributeValue::Bs(v) => v.len(),
                AttributeValue::M(m) => m.len(),
                AttributeValue::L(l) => l.len(),
                _ => return None,
            };
            Some(Cow::Owned(AttributeValue::N(n.to_string())))
        }
    }
}

/// Whether `item` (an empty one for an item that does not exist) satisfies `cond`.
pub fn matches(cond: &Cond, item: &Item) -> bool {
    match cond {
        Cond::True => true,
        Cond::And(a, b) => matches(a, item) && matches(b, item),
        Cond::Or(a, b) => matches(a, item) || matches(b, item),
        Cond::Not(c) => !matches(c, item),
        Cond::Exists(p) => resolve(item, p).is_some(),
        Cond::NotExists(p) => resolve(item, p).is_none(),
        Cond::Compare(a, cmp, b) => {
            let (a, b) = (operand(item, a), operand(item, b));
            match cmp {
                Cmp::Eq => matches!((&a, &b), (Some(a), Some(b)) if equal(a, b)),
                Cmp::Ne => !matches!((&a, &b), (Some(a), Some(b)) if equal(a, b)),
                _ => {
                    let (Some(a), Some(b)) = (a, b) else {
                        return false;
                    };
                    let Some(o) = compare(&a, &b) else {
                        return false;
                    };
                    match cmp {
                        Cmp::Lt => o == Ordering::Less,
                        Cmp::Le => o != Ordering::Greater,
                        Cmp::Gt => o == Ordering::Greater,
                        _ => o != Ordering::Less,
                    }
                }
            }
        }
        Cond::Between(v, low, high) => {
            let (Some(v), Some(low), Some(high)) =
                (operand(item, v), operand(item, low), operand(item, high))
            else {
                return false;
            };
            compare(&v, &low).is_some_and(|o| o != Ordering::Less)
                && compare(&v, &high).is_some_and(|o| o != Ordering::Greater)
        }
        Cond::In(v, list) => {
            let Some(v) = operand(item, v) else {
                return false;
            };
            list.iter()
                .any(|c| operand(item, c).is_some_and(|c| equal(&v, &c)))
        }
        Cond::Type(p, t) => {
            let (Some(v), Some(t)) = (resolve(item, p), operand(item, t)) else {
                return false;
            };
            matches!(t.as_ref(), AttributeValue::S(t) if t == v.type_name())
        }
        Cond::BeginsWith(a, b) => match (operand(item, a).as_deref(), operand(item, b).as_deref()) {
            (Some(AttributeValue::S(a)), Some(AttributeValue::S(b))) => a.starts_with(b.as_str()),
            (Some(AttributeValue::B(a)), Some(AttributeValue::B(b))) => a.starts_with(b),
            _ => false,
        },
        Cond::Contains(a, b) => {
            let (Some(a), Some(b)) = (operand(item, a), operand(item, b)) else {
                return false;
            };
            match (a.as_ref(), b.as_ref()) {
                (AttributeValue::S(a), AttributeValue::S(b)) => a.contains(b.as_str()),
                (AttributeValue::B(a), AttributeValue::B(b)) => {
                    b.is_empty() || a.windows(b.len()).any(|w| w == b.as_slice())
                }
                (AttributeValue::Ss(set), AttributeValue::S(b)) => set.contains(b),
                (AttributeValue::Bs(set), AttributeValue::B(b)) => set.contains(b),
                (AttributeValue::Ns(set), b @ AttributeValue::N(_)) => {
                    set.iter().any(|n| equal(&AttributeValue::N(n.clone()), b))
                }
                (AttributeValue::L(list), b) => list.iter().any(|e| equal(e, b)),
                _ => false,
            }
        }
    }
}

/// What a projection keeps, as a tree: lists are gathered by index and closed up at the end,
/// so `a[1], a[3]` gives a two-element list in the item's order.
enum Picked {
    Leaf(AttributeValue),
    Map(BTreeMap<String, Picked>),
    List(BTreeMap<usize, Picked>),
}

impl Picked {
    fn into_value(self) -> AttributeValue {
        match self {
            Picked::Leaf(v) => v,
            Picked::Map(m) => AttributeValue::M(m.into_iter().map(|(k, v)| (k, v.into_value())).collect()),
            Picked::List(l) => AttributeValue::L(l.into_values().map(Picked::into_value).collect()),
        }
    }
}

/// The item cut down to `paths` (paths that lead nowhere are left out).
pub fn project(item: &Item, paths: &[DocPath]) -> Item {
    let mut top: BTreeMap<String, Picked> = BTreeMap::new();
    for path in paths {
        let Some(value) = resolve(item, path) else {
            continue;
        };
        let Elem::Name(first) = &path.0[0] else {
            continue;
        };
        let rest = &path.0[1..];
        if rest.is_empty() {
            top.insert(first.clone(), Picked::Leaf(value.clone()));
            continue;
        }
        let slot = top.entry(first.clone()).or_insert_with(|| match rest[0] {
            Elem::Name(_) => Picked::Map(BTreeMap::new()),
            Elem::Index(_) => Picked::List(BTreeMap::new()),
        });
        insert(slot, rest, value);
    }
    top.into_iter().map(|(k, v)| (k, v.into_value())).collect()
}

fn insert(slot: &mut Picked, rest: &[Elem], value: &AttributeValue) {
    let next = |rest: &[Elem]| match rest.first() {
        None => Picked::Leaf(value.clone()),
        Some(Elem::Name(_)) => Picked::Map(BTreeMap::new()),
        Some(Elem::Index(_)) => Picked::List(BTreeMap::new()),
    };
    let child = match (slot, &rest[0]) {
        (Picked::Map(m), Elem::Name(n)) => m.entry(n.clone()).or_insert_with(|| next(&rest[1..])),
        (Picked::List(l), Elem::Index(i)) => l.entry(*i).or_insert_with(|| next(&rest[1..])),
        _ => return,
    };
    if rest.len() > 1 {
        insert(child, &rest[1..], value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::{Substitutions, parse_condition, parse_projection};

    fn item(json: &str) -> Item {
        serde_json::from_str(json).unwrap()
    }

    fn check(src: &str, values: &str, it: &Item) -> bool {
        let values: BTreeMap<String, AttributeValue> = serde_json::from_str(values).unwrap();
        let mut s = Substitutions::new(None, Some(&values)).unwrap();
        matches(&parse_condition("ConditionExpression", src, &mut s).unwrap(), it)
    }

    #[test]
    fn conditions() {
        let it = item(
            r#"{"a":{"N":"5"},"s":{"S":"hello"},"l":{"L":[{"S":"x"},{"N":"2"}]},"ss":{"SS":["p","q"]},"m":{"M":{"k":{"N":"10"}}}}"#,
        );
        assert!(check("a = :v", r#"{":v":{"N":"5.0"}}"#, &it));
        assert!(check("a < :v", r#"{":v":{"N":"10"}}"#, &it));
        assert!(!check("a < :v", r#"{":v":{"S":"10"}}"#, &it));
        assert!(check("nope <> :v", r#"{":v":{"N":"1"}}"#, &it));
        assert!(check(
            "a BETWEEN :x AND :y",
            r#"{":x":{"N":"1"},":y":{"N":"5"}}"#,
            &it
        ));
        assert!(check("a IN (:x, :y)", r#"{":x":{"N":"1"},":y":{"N":"5"}}"#, &it));
        assert!(check(
            "begins_with(s, :p) AND contains(s, :q)",
            r#"{":p":{"S":"he"},":q":{"S":"ll"}}"#,
            &it
        ));
        assert!(check(
            "contains(ss, :p) AND contains(l, :n)",
            r#"{":p":{"S":"q"},":n":{"N":"2"}}"#,
            &it
        ));
        assert!(check("size(s) = :n AND size(l) < :n", r#"{":n":{"N":"5"}}"#, &it));
        assert!(check(
            "m.k > :n AND l[1] = :t",
            r#"{":n":{"N":"9"},":t":{"N":"2"}}"#,
            &it
        ));
        assert!(check(
            "attribute_type(m, :t) AND NOT attribute_exists(l[5])",
            r#"{":t":{"S":"M"}}"#,
            &it
        ));
    }

    #[test]
    fn projections() {
        let it = item(
            r#"{"a":{"N":"5"},"l":{"L":[{"S":"x"},{"N":"2"},{"S":"z"}]},"m":{"M":{"k":{"N":"10"},"j":{"N":"1"}}}}"#,
        );
        let mut s = Substitutions::new(None, None).unwrap();
        let paths = parse_projection("l[2], l[0], m.k, nothere", &mut s).unwrap();
        let out = serde_json::to_string(&project(&it, &paths)).unwrap();
        assert_eq!(
            out,
            r#"{"l":{"L":[{"S":"x"},{"S":"z"}]},"m":{"M":{"k":{"N":"10"}}}}"#
        );
    }
}
