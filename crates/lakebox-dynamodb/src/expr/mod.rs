//! DynamoDB's expression language: condition, filter, key-condition, projection and update
//! expressions, parsed into trees (with `#name` and `:value` references resolved against the
//! request's ExpressionAttributeNames / Values) and evaluated against items.
//!
//! - `lex`: tokens.
//! - `parse`: the grammar, with DynamoDB's messages for what it refuses.
//! - `eval`: conditions on an item, projections of an item.
//! - `update`: update expressions applied to an item.

mod eval;
mod lex;
mod parse;
mod update;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::value::AttributeValue;

pub use eval::{matches, project};
pub use lex::too_deep;
pub use parse::{parse_condition, parse_projection, parse_update};
pub use update::apply_update;

/// One step of a document path: an attribute or map key, or a list index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Elem {
    Name(String),
    Index(usize),
}

/// A document path: `a.b[2].c`. Never empty; the first step is a name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DocPath(pub Vec<Elem>);

impl DocPath {
    pub fn attribute(name: &str) -> DocPath {
        DocPath(vec![Elem::Name(name.to_owned())])
    }

    /// The top-level attribute the path starts at.
    pub fn root(&self) -> &str {
        match &self.0[0] {
            Elem::Name(n) => n,
            Elem::Index(_) => "",
        }
    }

    /// Whether one path is the other or leads into it (DynamoDB's "overlap").
    pub fn overlaps(&self, other: &DocPath) -> bool {
        let n = self.0.len().min(other.0.len());
        self.0[..n] == other.0[..n]
    }
}

/// As DynamoDB prints paths in messages: `[a, b, [2]]`.
impl fmt::Display for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| match e {
                Elem::Name(n) => n.clone(),
                Elem::Index(i) => format!("[{i}]"),
            })
            .collect();
        write!(f, "[{}]", parts.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Path(DocPath),
    Value(AttributeValue),
    /// `size(path)`.
    Size(DocPath),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Compare(Operand, Cmp, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Exists(DocPath),
    NotExists(DocPath),
    Type(DocPath, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
    /// Always true: a legacy condition with nothing in it.
    True,
}

/// The value side of a SET action.
#[derive(Debug, Clone, PartialEq)]
pub enum SetValue {
    Operand(SetOperand),
    Plus(SetOperand, SetOperand),
    Minus(SetOperand, SetOperand),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SetOperand {
    Path(DocPath),
    Value(AttributeValue),
    IfNotExists(DocPath, Box<SetOperand>),
    ListAppend(Box<SetOperand>, Box<SetOperand>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Set(DocPath, SetValue),
    Remove(DocPath),
    Add(DocPath, AttributeValue),
    Delete(DocPath, AttributeValue),
}

/// An update expression: its actions in the order written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Update {
    pub actions: Vec<Action>,
}

impl Update {
    /// Every path the update writes (for the key-attribute check).
    pub fn targets(&self) -> impl Iterator<Item = &DocPath> {
        self.actions.iter().map(|a| match a {
            Action::Set(p, _) | Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _) => p,
        })
    }
}

/// The request's ExpressionAttributeNames and Values, and which of them the request's
/// expressions used: DynamoDB refuses a request that defines one it never uses.
pub struct Substitutions<'a> {
    names: Option<&'a BTreeMap<String, String>>,
    values: Option<&'a BTreeMap<String, AttributeValue>>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
}

impl<'a> Substitutions<'a> {
    /// Checks the maps themselves (not empty, values well-formed) as DynamoDB does before it
    /// reads any expression. `values` must have been canonicalized by the caller.
    pub fn new(
        names: Option<&'a BTreeMap<String, String>>,
        values: Option<&'a BTreeMap<String, AttributeValue>>,
    ) -> Result<Self, String> {
        if names.is_some_and(BTreeMap::is_empty) {
            return Err("ExpressionAttributeNames must not be empty".into());
        }
        if values.is_some_and(BTreeMap::is_empty) {
            return Err("ExpressionAttributeValues must not be empty".into());
        }
        Ok(Substitutions {
            names,
            values,
            used_names: BTreeSet::new(),
            used_values: BTreeSet::new(),
        })
    }

    /// Whether the request carries either map (DynamoDB wants an expression then).
    pub fn given(&self) -> (bool, bool) {
        (self.names.is_some(), self.values.is_some())
    }

    /// After every expression of the request is parsed: any name or value it never used is
    /// refused.
    pub fn check_all_used(&self) -> Result<(), String> {
        let unused = |defined: Option<Vec<&String>>, used: &BTreeSet<String>| -> Vec<String> {
            defined
                .unwrap_or_default()
                .into_iter()
                .filter(|k| !used.contains(*k))
                .cloned()
                .collect()
        };
        let names = unused(self.names.map(|m| m.keys().collect()), &self.used_names);
        if !names.is_empty() {
            return Err(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                names.join(", ")
            ));
        }
        let values = unused(self.values.map(|m| m.keys().collect()), &self.used_values);
        if !values.is_empty() {
            return Err(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                values.join(", ")
            ));
        }
        Ok(())
    }

    fn name(&mut self, reference: &str) -> Option<String> {
        let n = self.names?.get(reference)?.clone();
        self.used_names.insert(reference.to_owned());
        Some(n)
    }

    fn value(&mut self, reference: &str) -> Option<AttributeValue> {
        let v = self.values?.get(reference)?.clone();
        self.used_values.insert(reference.to_owned());
        Some(v)
    }
}
