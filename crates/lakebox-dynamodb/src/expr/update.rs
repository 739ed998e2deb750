//! Update expressions applied to an item. Every right-hand side reads the item as it was
//! before the update (DynamoDB's rule); paths never overlap (checked when parsed), so the
//! actions can then be applied one by one.

use super::eval::resolve;
use super::{Action, DocPath, Elem, SetOperand, SetValue, Update};
use crate::number::Number;
use crate::value::{AttributeValue, Item, equal};

const WRONG_TYPE: &str = "An operand in the update expression has an incorrect data type";
const BAD_PATH: &str = "The document path provided in the update expression is invalid for update";
const MISSING: &str = "The provided expression refers to an attribute that does not exist in the item";

enum Change {
    Put(DocPath, AttributeValue),
    Remove(DocPath),
}

/// The item after `update` (the old item is empty when there was none); the error is
/// DynamoDB's message.
pub fn apply_update(old: &Item, update: &Update) -> Result<Item, String> {
    let mut changes = Vec::with_capacity(update.actions.len());
    for action in &update.actions {
        changes.push(match action {
            Action::Set(path, value) => Change::Put(path.clone(), set_value(old, value)?),
            Action::Remove(path) => Change::Remove(path.clone()),
            Action::Add(path, value) => Change::Put(path.clone(), add(resolve(old, path), value)?),
            Action::Delete(path, value) => match resolve(old, path) {
                None => continue,
                Some(current) => match delete(current, value)? {
                    Some(v) => Change::Put(path.clone(), v),
                    None => Change::Remove(path.clone()),
                },
            },
        });
    }
    let mut item = old.clone();
    let mut removals = Vec::new();
    for change in changes {
        match change {
            Change::Put(path, value) => assign(&mut item, &path, value)?,
            Change::Remove(path) => removals.push(path),
        }
    }
    // Later list elements first, so each index still names the element it named before.
    removals.sort_by(|a, b| b.cmp(a));
    for path in removals {
        remove(&mut item, &path);
    }
    Ok(item)
}

fn set_value(old: &Item, value: &SetValue) -> Result<AttributeValue, String> {
    match value {
        SetValue::Operand(op) => set_operand(old, op),
        SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
            let (a, b) = (set_operand(old, a)?, set_operand(old, b)?);
            let (Some(x), Some(y)) = (number_of(&a), number_of(&b)) else {
                return Err(WRONG_TYPE.into());
            };
            let y = if matches!(value, SetValue::Minus(..)) {
                y.negate()
            } else {
                y
            };
            let sum = x.add(&y).map_err(|e| e.message())?;
            Ok(AttributeValue::N(sum.to_string()))
        }
    }
}

fn number_of(v: &AttributeValue) -> Option<Number> {
    v.number()
}

fn set_operand(old: &Item, op: &SetOperand) -> Result<AttributeValue, String> {
    match op {
        SetOperand::Value(v) => Ok(v.clone()),
        SetOperand::Path(p) => resolve(old, p).cloned().ok_or_else(|| MISSING.to_owned()),
        SetOperand::IfNotExists(p, fallback) => match resolve(old, p) {
            Some(v) => Ok(v.clone()),
            None => set_operand(old, fallback),
        },
        SetOperand::ListAppend(a, b) => match (set_operand(old, a)?, set_operand(old, b)?) {
            (AttributeValue::L(mut a), AttributeValue::L(b)) => {
                a.extend(b);
                Ok(AttributeValue::L(a))
            }
            _ => Err(WRONG_TYPE.into()),
        },
    }
}

/// ADD: a number added to (or set unioned with) what is there; what is added when nothing is.
fn add(current: Option<&AttributeValue>, value: &AttributeValue) -> Result<AttributeValue, String> {
    use AttributeValue::*;
    let Some(current) = current else {
        return Ok(value.clone());
    };
    Ok(match (current, value) {
        (N(a), N(b)) => {
            let sum = Number::parse(a)
                .and_then(|a| a.add(&Number::parse(b)?))
                .map_err(|e| e.message())?;
            N(sum.to_string())
        }
        (Ss(a), Ss(b)) => Ss(union(a, b, |x, y| x == y)),
        (Bs(a), Bs(b)) => Bs(union(a, b, |x, y| x == y)),
        (Ns(a), Ns(b)) => Ns(union(a, b, |x, y| equal(&N(x.clone()), &N(y.clone())))),
        _ => return Err(WRONG_TYPE.into()),
    })
}

fn union<T: Clone>(a: &[T], b: &[T], same: impl Fn(&T, &T) -> bool) -> Vec<T> {
    let mut out = a.to_vec();
    for x in b {
        if !out.iter().any(|y| same(x, y)) {
            out.push(x.clone());
        }
    }
    out
}

/// DELETE: the set without the given elements (`None` once it is empty).
fn delete(current: &AttributeValue, value: &AttributeValue) -> Result<Option<AttributeValue>, String> {
    use AttributeValue::*;
    let out = match (current, value) {
        (Ss(a), Ss(b)) => Ss(a.iter().filter(|x| !b.contains(x)).cloned().collect()),
        (Bs(a), Bs(b)) => Bs(a.iter().filter(|x| !b.contains(x)).cloned().collect()),
        (Ns(a), Ns(b)) => Ns(a
            .iter()
            .filter(|x| !b.iter().any(|y| equal(&N((*x).clone()), &N(y.clone()))))
            .cloned()
            .collect()),
        _ => return Err(WRONG_TYPE.into()),
    };
    let empty = match &out {
        Ss(v) | Ns(v) => v.is_empty(),
        Bs(v) => v.is_empty(),
        _ => false,
    };
    Ok((!empty).then_some(out))
}

/// Writes `value` at `path`: the path's parent must exist (a list index past the end
/// appends).
fn assign(item: &mut Item, path: &DocPath, value: AttributeValue) -> Result<(), String> {
    let (last, parents) = path.0.split_last().expect("paths are never empty");
    if parents.is_empty() {
        let Elem::Name(n) = last else {
            return Err(BAD_PATH.into());
        };
        item.insert(n.clone(), value);
        return Ok(());
    }
    let Elem::Name(first) = &parents[0] else {
        return Err(BAD_PATH.into());
    };
    let mut cur = item.get_mut(first).ok_or(BAD_PATH)?;
    for step in &parents[1..] {
        cur = match (step, cur) {
            (Elem::Name(n), AttributeValue::M(m)) => m.get_mut(n).ok_or(BAD_PATH)?,
            (Elem::Index(i), AttributeValue::L(l)) => l.get_mut(*i).ok_or(BAD_PATH)?,
            _ => return Err(BAD_PATH.into()),
        };
    }
    match (last, cur) {
        (Elem::Name(n), AttributeValue::M(m)) => {
            m.insert(n.clone(), value);
        }
        (Elem::Index(i), AttributeValue::L(l)) => {
            if *i < l.len() {
                l[*i] = value;
            } else {
                l.push(value);
            }
        }
        _ => return Err(BAD_PATH.into()),
    }
    Ok(())
}

/// Removes what is at `path`; a path that leads nowhere changes nothing.
fn remove(item: &mut Item, path: &DocPath) {
    let (last, parents) = path.0.split_last().expect("paths are never empty");
    if parents.is_empty() {
        if let Elem::Name(n) = last {
            item.remove(n);
        }
        return;
    }
    let Elem::Name(first) = &parents[0] else {
        return;
    };
    let Some(mut cur) = item.get_mut(first) else {
        return;
    };
    for step in &parents[1..] {
        let next = match (step, cur) {
            (Elem::Name(n), AttributeValue::M(m)) => m.get_mut(n),
            (Elem::Index(i), AttributeValue::L(l)) => l.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else {
            return;
        };
        cur = next;
    }
    match (last, cur) {
        (Elem::Name(n), AttributeValue::M(m)) => {
            m.remove(n);
        }
        (Elem::Index(i), AttributeValue::L(l)) if *i < l.len() => {
            l.remove(*i);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::expr::{Substitutions, parse_update};

    fn run(old: &str, src: &str, values: &str) -> Result<String, String> {
        let old: Item = serde_json::from_str(old).unwrap();
        let values: BTreeMap<String, AttributeValue> = serde_json::from_str(values).unwrap();
        let mut s = Substitutions::new(None, (!values.is_empty()).then_some(&values)).unwrap();
        let u = parse_update(src, &mut s).unwrap();
        apply_update(&old, &u).map(|i| serde_json::to_string(&i).unwrap())
    }

    #[test]
    fn set_arithmetic_and_functions() {
        assert_eq!(
            run(
                r#"{"n":{"N":"5"}}"#,
                "SET n = n + :one, c = if_not_exists(c, :zero) - :one",
                r#"{":one":{"N":"1"},":zero":{"N":"0"}}"#
            )
            .unwrap(),
            r#"{"c":{"N":"-1"},"n":{"N":"6"}}"#
        );
        assert_eq!(
            run(
                r#"{"l":{"L":[{"N":"1"}]}}"#,
                "SET l = list_append(l, :more)",
                r#"{":more":{"L":[{"N":"2"}]}}"#
            )
            .unwrap(),
            r#"{"l":{"L":[{"N":"1"},{"N":"2"}]}}"#
        );
        assert_eq!(
            run(r#"{"s":{"S":"x"}}"#, "SET n = s + :v", r#"{":v":{"N":"1"}}"#).unwrap_err(),
            WRONG_TYPE
        );
        assert_eq!(run("{}", "SET n = nothere", "{}").unwrap_err(), MISSING);
    }

    #[test]
    fn nested_paths_remove_add_delete() {
        let old = r#"{"m":{"M":{"a":{"N":"1"}}},"l":{"L":[{"N":"0"},{"N":"1"},{"N":"2"},{"N":"3"}]},"ss":{"SS":["a","b"]}}"#;
        let out = run(
            old,
            "SET m.b = :v, l[9] = :v REMOVE l[0], l[2] ADD cnt :v",
            r#"{":v":{"N":"7"}}"#,
        )
        .unwrap();
        assert_eq!(
            out,
            r#"{"cnt":{"N":"7"},"l":{"L":[{"N":"1"},{"N":"3"},{"N":"7"}]},"m":{"M":{"a":{"N":"1"},"b":{"N":"7"}}},"ss":{"SS":["a","b"]}}"#
        );
        assert_eq!(
            run(old, "ADD ss :more", r#"{":more":{"SS":["c","a"]}}"#).unwrap(),
            r#"{"l":{"L":[{"N":"0"},{"N":"1"},{"N":"2"},{"N":"3"}]},"m":{"M":{"a":{"N":"1"}}},"ss":{"SS":["a","b","c"]}}"#
        );
        assert!(
            run(old, "DELETE ss :gone", r#"{":gone":{"SS":["a","b"]}}"#)
                .unwrap()
                .find("\"ss\"")
                .is_none()
        );
        assert_eq!(
            run(old, "SET nope.x = :v", r#"{":v":{"N":"7"}}"#).unwrap_err(),
            BAD_PATH
        );
    }
}
