//! The parameters older SDKs still send instead of expressions — `Expected`,
//! `AttributeUpdates`, `KeyConditions`, `QueryFilter` / `ScanFilter`, `AttributesToGet` —
//! turned into the same trees expressions parse into.

use std::collections::BTreeMap;

use lakebox_core::ServiceError;

use crate::api::{
    AttributeAction, AttributeValueUpdate, ComparisonOperator, Condition, ConditionalOperator,
    ExpectedAttributeValue,
};
use crate::errors::{invalid, validation};
use crate::expr::{Action, Cmp, Cond, DocPath, Operand, SetOperand, SetValue, Update};
use crate::value::{AttributeValue, canonicalize};

/// Refuses a request that mixes the two styles, in DynamoDB's words.
pub fn not_both(legacy: &[(&str, bool)], expressions: &[(&str, bool)]) -> Result<(), ServiceError> {
    let l: Vec<&str> = legacy.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect();
    let e: Vec<&str> = expressions
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
    if !l.is_empty() && !e.is_empty() {
        return Err(validation(format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
            l.join(", "),
            e.join(", ")
        )));
    }
    Ok(())
}

fn join(conds: Vec<Cond>, op: Option<&ConditionalOperator>) -> Cond {
    let or = matches!(op, Some(ConditionalOperator::Or));
    conds
        .into_iter()
        .reduce(|a, b| {
            if or {
                Cond::Or(Box::new(a), Box::new(b))
            } else {
                Cond::And(Box::new(a), Box::new(b))
            }
        })
        .unwrap_or(Cond::True)
}

fn checked(mut v: AttributeValue) -> Result<AttributeValue, ServiceError> {
    canonicalize(&mut v).map_err(validation)?;
    Ok(v)
}

/// One `ComparisonOperator` with its `AttributeValueList` as a condition on `name`.
pub fn comparison(
    name: &str,
    op: &ComparisonOperator,
    values: Vec<AttributeValue>,
) -> Result<Cond, ServiceError> {
    let path = || Operand::Path(DocPath::attribute(name));
    let want = match op {
        ComparisonOperator::NotNull | ComparisonOperator::Null => 0,
        ComparisonOperator::Between => 2,
        ComparisonOperator::In => usize::MAX,
        _ => 1,
    };
    let count_ok = if want == usize::MAX {
        !values.is_empty()
    } else {
        values.len() == want
    };
    if !count_ok {
        return Err(invalid(&format!(
            "Invalid number of argument(s) for the {} ComparisonOperator",
            op.as_str()
        )));
    }
    let values = values.into_iter().map(checked).collect::<Result<Vec<_>, _>>()?;
    let v = |i: usize| Operand::Value(values[i].clone());
    let cmp = |c| Cond::Compare(path(), c, v(0));
    Ok(match op {
        ComparisonOperator::Eq => cmp(Cmp::Eq),
        ComparisonOperator::Ne => cmp(Cmp::Ne),
        ComparisonOperator::Lt => cmp(Cmp::Lt),
        ComparisonOperator::Le => cmp(Cmp::Le),
        ComparisonOperator::Gt => cmp(Cmp::Gt),
        ComparisonOperator::Ge => cmp(Cmp::Ge),
        ComparisonOperator::NotNull => Cond::Exists(DocPath::attribute(name)),
        ComparisonOperator::Null => Cond::NotExists(DocPath::attribute(name)),
        ComparisonOperator::Contains => Cond::Contains(path(), v(0)),
        ComparisonOperator::NotContains => Cond::Not(Box::new(Cond::Contains(path(), v(0)))),
        ComparisonOperator::BeginsWith => Cond::BeginsWith(path(), v(0)),
        ComparisonOperator::Between => Cond::Between(path(), v(0), v(1)),
        ComparisonOperator::In => Cond::In(path(), values.iter().cloned().map(Operand::Value).collect()),
        ComparisonOperator::Unknown(s) => {
            return Err(validation(format!(
                "Unsupported operator on ExpectedAttributeValue: {s}"
            )));
        }
    })
}

/// `KeyConditions`, `QueryFilter`, `ScanFilter`.
pub fn conditions(
    map: &BTreeMap<String, Condition>,
    op: Option<&ConditionalOperator>,
) -> Result<Cond, ServiceError> {
    let mut out = Vec::new();
    for (name, c) in map {
        out.push(comparison(
            name,
            &c.comparison_operator,
            c.attribute_value_list.clone().unwrap_or_default(),
        )?);
    }
    Ok(join(out, op))
}

/// `Expected`.
pub fn expected(
    map: &BTreeMap<String, ExpectedAttributeValue>,
    op: Option<&ConditionalOperator>,
) -> Result<Cond, ServiceError> {
    let mut out = Vec::new();
    for (name, e) in map {
        let cond = match (&e.comparison_operator, e.exists, &e.value) {
            (Some(op), _, None) => comparison(name, op, e.attribute_value_list.clone().unwrap_or_default())?,
            (Some(_), _, Some(_)) => {
                return Err(invalid(&format!(
                    "Value and ComparisonOperator cannot be used together for Attribute: {name}"
                )));
            }
            (None, Some(false), Some(_)) => {
                return Err(invalid(&format!(
                    "Value cannot be used when Exists is false for Attribute: {name}"
                )));
            }
            (None, Some(false), None) => Cond::NotExists(DocPath::attribute(name)),
            (None, _, Some(v)) => Cond::Compare(
                Operand::Path(DocPath::attribute(name)),
                Cmp::Eq,
                Operand::Value(checked(v.clone())?),
            ),
            (None, _, None) => {
                return Err(invalid(&format!(
                    "Value must be provided when Exists is true for Attribute: {name}"
                )));
            }
        };
        out.push(cond);
    }
    Ok(join(out, op))
}

/// `AttributeUpdates`: PUT, ADD (numbers, sets, and lists appended) and DELETE.
pub fn attribute_updates(map: &BTreeMap<String, AttributeValueUpdate>) -> Result<Update, ServiceError> {
    let mut actions = Vec::new();
    for (name, u) in map {
        let path = DocPath::attribute(name);
        let value = u.value.clone().map(checked).transpose()?;
        let action = u.action.clone().unwrap_or(AttributeAction::Put);
        actions.push(match (action, value) {
            (AttributeAction::Put, Some(v)) => Action::Set(path, SetValue::Operand(SetOperand::Value(v))),
            (AttributeAction::Delete, None) => Action::Remove(path),
            (
                AttributeAction::Delete,
                Some(v @ (AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_))),
            ) => Action::Delete(path, v),
            (AttributeAction::Add, Some(AttributeValue::L(l))) => Action::Set(
                path.clone(),
                SetValue::Operand(SetOperand::ListAppend(
                    Box::new(SetOperand::IfNotExists(
                        path,
                        Box::new(SetOperand::Value(AttributeValue::L(Vec::new()))),
                    )),
                    Box::new(SetOperand::Value(AttributeValue::L(l))),
                )),
            ),
            (
                AttributeAction::Add,
                Some(
                    v @ (AttributeValue::N(_)
                    | AttributeValue::Ss(_)
                    | AttributeValue::Ns(_)
                    | AttributeValue::Bs(_)),
                ),
            ) => Action::Add(path, v),
            (AttributeAction::Put | AttributeAction::Add, None) => {
                return Err(invalid(&format!(
                    "Only DELETE action is allowed when no attribute value is specified: {name}"
                )));
            }
            (AttributeAction::Add, Some(_)) => {
                return Err(invalid(&format!(
                    "ADD action is not supported for the type of the attribute value: {name}"
                )));
            }
            (AttributeAction::Delete, Some(_)) => {
                return Err(invalid(&format!(
                    "DELETE action with value is not supported for the type of the attribute value: {name}"
                )));
            }
            (AttributeAction::Unknown(s), _) => {
                return Err(validation(format!("Unsupported action: {s}")));
            }
        });
    }
    Ok(Update { actions })
}

/// `AttributesToGet`: top-level names, no duplicates.
pub fn attributes_to_get(names: &[String]) -> Result<Vec<DocPath>, ServiceError> {
    let mut seen = std::collections::BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(invalid(&format!("Duplicate value in attribute name: {n}")));
        }
    }
    Ok(names.iter().map(|n| DocPath::attribute(n)).collect())
}
