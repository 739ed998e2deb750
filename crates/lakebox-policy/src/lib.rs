//! The IAM policy language: parsing a policy document and deciding a request against it, as
//! AWS's policy evaluation logic documents it. Shared by every service that keeps resource
//! policies (S3 bucket policies now; SQS queue, SNS topic, Kinesis stream and KMS key policies,
//! and IAM identity policies, later).
//!
//! - [`Policy::parse`] reads `Version`, `Statement` (one or a list), `Sid`, `Effect`,
//!   `Principal` / `NotPrincipal` (`*`, `AWS` accounts and ARNs, `Service`, `Federated`,
//!   `CanonicalUser`), `Action` / `NotAction` and `Resource` / `NotResource` (with `*` and `?`
//!   wildcards and `${…}` policy variables), and `Condition` with every documented operator,
//!   `…IfExists`, `ForAllValues:` / `ForAnyValue:`.
//! - [`Policy::evaluate`] answers [`Decision::Deny`] when a statement denies (an explicit deny
//!   wins), [`Decision::Allow`] when one allows, and [`Decision::NotApplicable`] (the implicit
//!   deny) otherwise. How identity and resource policies combine, and across accounts, is the
//!   calling service's business ([`combine`] does the common part).

mod condition;
mod matching;

use std::collections::HashMap;

use serde_json::Value;

pub use crate::condition::Condition;
pub use crate::matching::wildcard_match;
use crate::matching::{compile, tokens_match};

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError(msg.into()))
}

/// What a policy says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// An explicit deny: nothing else can allow the request.
    Deny,
    /// No statement applies (an implicit deny unless another policy allows).
    NotApplicable,
}

/// Combines decisions of several policies: any deny wins, then any allow.
pub fn combine(decisions: impl IntoIterator<Item = Decision>) -> Decision {
    let mut out = Decision::NotApplicable;
    for d in decisions {
        match d {
            Decision::Deny => return Decision::Deny,
            Decision::Allow => out = Decision::Allow,
            Decision::NotApplicable => {}
        }
    }
    out
}

/// Who makes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An unsigned request.
    Anonymous,
    /// An IAM identity: its account and ARN (`arn:aws:iam::123456789012:root`, `…:user/x`,
    /// `arn:aws:sts::…:assumed-role/r/s`).
    Aws { account: String, arn: String },
    /// An AWS service acting itself (`s3.amazonaws.com`).
    Service(String),
}

impl Principal {
    /// An account's root user (every signed caller, as Lakebox has no IAM users yet).
    pub fn root_of(account: String) -> Principal {
        Principal::Aws {
            arn: format!("arn:aws:iam::{account}:root"),
            account,
        }
    }
}

/// A request as policies see it. Condition keys are matched case-insensitively; `context`
/// holds each key's values (most keys have one).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    /// `service:Action`, e.g. `s3:GetObject`.
    pub action: &'a str,
    /// The resource's ARN.
    pub resource: &'a str,
    pub context: &'a Context,
}

/// The request context: condition keys (lower-cased) to values.
#[derive(Debug, Clone, Default)]
pub struct Context(HashMap<String, Vec<String>>);

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.0.insert(key.to_ascii_lowercase(), vec![value.into()]);
        self
    }

    pub fn set_all(&mut self, key: &str, values: Vec<String>) -> &mut Self {
        self.0.insert(key.to_ascii_lowercase(), values);
        self
    }

    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.0.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A statement's `Principal` (or, negated, `NotPrincipal`).
#[derive(Debug, Clone, PartialEq)]
enum Principals {
    Any,
    Listed {
        aws: Vec<String>,
        service: Vec<String>,
        other: Vec<String>,
    },
}

/// A list that may be negated (`NotAction`, `NotResource`, `NotPrincipal`).
#[derive(Debug, Clone, PartialEq)]
struct Element<T> {
    negated: bool,
    items: T,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    principal: Option<Element<Principals>>,
    action: Element<Vec<String>>,
    resource: Option<Element<Vec<String>>>,
    condition: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub version: Option<String>,
    pub statements: Vec<Statement>,
}

/// A string or a list of strings.
fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| PolicyError(format!("Policy has invalid {what}")))
            })
            .collect(),
        _ => err(format!("Policy has invalid {what}")),
    }
}

fn parse_principals(v: &Value) -> Result<Principals, PolicyError> {
    match v {
        Value::String(s) if s == "*" => Ok(Principals::Any),
        Value::Object(o) if !o.is_empty() => {
            let (mut aws, mut service, mut other) = (Vec::new(), Vec::new(), Vec::new());
            for (k, v) in o {
                let values =
                    strings(v, "principal").map_err(|_| PolicyError("Invalid principal in policy".into()))?;
                match k.as_str() {
                    "AWS" if values.iter().any(|p| p == "*") => return Ok(Principals::Any),
                    "AWS" => {
                        for p in &values {
                            let account_id = p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit());
                            if !account_id
                                && !p.starts_with("arn:aws:iam::")
                                && !p.starts_with("arn:aws:sts::")
                            {
                                return err("Invalid principal in policy");
                            }
                        }
                        aws.extend(values);
                    }
                    "Service" => service.extend(values),
                    "Federated" | "CanonicalUser" => other.extend(values),
                    _ => return err("Invalid principal in policy"),
                }
            }
            Ok(Principals::Listed { aws, service, other })
        }
        _ => err("Invalid principal in policy"),
    }
}

impl Policy {
    pub fn parse(doc: &str) -> Result<Policy, PolicyError> {
        let v: Value = serde_json::from_str(doc)
            .map_err(|_| PolicyError("Policies must be valid JSON and the first byte must be '{'".into()))?;
        let Value::Object(o) = &v else {
            return err("Policies must be valid JSON and the first byte must be '{'");
        };
        let version = match o.get("Version") {
            None => None,
            Some(Value::String(s)) if s == "2012-10-17" || s == "2008-10-17" => Some(s.clone()),
            Some(_) => return err("The policy must contain a valid version string"),
        };
        let statements = match o.get("Statement") {
            Some(Value::Array(items)) if !items.is_empty() => {
                items.iter().map(Statement::parse).collect::<Result<_, _>>()?
            }
            Some(s @ Value::Object(_)) => vec![Statement::parse(s)?],
            _ => return err("Missing required field Statement"),
        };
        Ok(Policy { version, statements })
    }

    pub fn evaluate(&self, req: &Request) -> Decision {
        // Policy variables exist from version 2012-10-17 on; before, `${` is literal.
        let variables = self.version.as_deref() == Some("2012-10-17");
        combine(self.statements.iter().map(|s| s.evaluate(req, variables)))
    }

    /// Whether the policy grants anything to everyone: an `Allow` with principal `*` whose
    /// conditions do not narrow it to known callers (S3's GetBucketPolicyStatus "IsPublic").
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow
                && matches!(
                    &s.principal,
                    Some(Element {
                        negated: false,
                        items: Principals::Any
                    })
                )
                && s.condition.iter().all(Condition::is_open)
        })
    }
}

impl Statement {
    /// Whether the statement names a principal (resource policies must).
    pub fn names_principal(&self) -> bool {
        self.principal.is_some()
    }

    /// The Resource or NotResource patterns, if any.
    pub fn resources(&self) -> &[String] {
        self.resource.as_ref().map_or(&[], |r| r.items.as_slice())
    }

    /// The Action or NotAction patterns.
    pub fn actions(&self) -> &[String] {
        &self.action.items
    }

    fn parse(v: &Value) -> Result<Statement, PolicyError> {
        let Value::Object(o) = v else {
            return err("Policy has an invalid statement");
        };
        let effect = match o.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            Some(_) => return err("Invalid effect"),
            None => return err("Missing required field Effect"),
        };
        let pick = |yes: &str, no: &str| -> Result<Option<(bool, &Value)>, PolicyError> {
            match (o.get(yes), o.get(no)) {
                (Some(_), Some(_)) => err(format!("Statement has both {yes} and {no}")),
                (Some(v), None) => Ok(Some((false, v))),
                (None, Some(v)) => Ok(Some((true, v))),
                (None, None) => Ok(None),
            }
        };
        let principal = match pick("Principal", "NotPrincipal")? {
            Some((negated, v)) => Some(Element {
                negated,
                items: parse_principals(v)?,
            }),
            None => None,
        };
        let action = match pick("Action", "NotAction")? {
            Some((negated, v)) => {
                let items = strings(v, "action")?;
                for a in &items {
                    if a != "*" && !a.contains(':') {
                        return err("Policy has invalid action");
                    }
                }
                Element { negated, items }
            }
            None => return err("Missing required field Action"),
        };
        let resource = match pick("Resource", "NotResource")? {
            Some((negated, v)) => Some(Element {
                negated,
                items: strings(v, "resource")?,
            }),
            None => None,
        };
        let condition = match o.get("Condition") {
            None => Vec::new(),
            Some(Value::Object(c)) => Condition::parse_block(c)?,
            Some(_) => return err("Policy has an invalid condition"),
        };
        Ok(Statement {
            sid: o.get("Sid").and_then(Value::as_str).map(str::to_owned),
            effect,
            principal,
            action,
            resource,
            condition,
        })
    }

    /// This statement's effect when it applies to the request.
    fn evaluate(&self, req: &Request, variables: bool) -> Decision {
        let applies = self.principal_matches(req.principal)
            && self.action_matches(req.action)
            && self.resource_matches(req, variables)
            && self.condition.iter().all(|c| c.holds(req.context));
        match (applies, self.effect) {
            (false, _) => Decision::NotApplicable,
            (true, Effect::Allow) => Decision::Allow,
            (true, Effect::Deny) => Decision::Deny,
        }
    }

    fn principal_matches(&self, who: &Principal) -> bool {
        let Some(p) = &self.principal else {
            // Identity policies name no principal: they apply to whoever they are attached to.
            return true;
        };
        let listed = match (&p.items, who) {
            (Principals::Any, _) => true,
            (Principals::Listed { .. }, Principal::Anonymous) => false,
            (Principals::Listed { aws, .. }, Principal::Aws { account, arn }) => aws
                .iter()
                .any(|a| a == account || *a == format!("arn:aws:iam::{account}:root") || a == arn),
            (Principals::Listed { service, .. }, Principal::Service(s)) => service.iter().any(|x| x == s),
        };
        listed != p.negated
    }

    fn action_matches(&self, action: &str) -> bool {
        let hit = self
            .action
            .items
            .iter()
            .any(|pattern| wildcard_match(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase()));
        hit != self.action.negated
    }

    fn resource_matches(&self, req: &Request, variables: bool) -> bool {
        let Some(r) = &self.resource else {
            // Resource policies may leave Resource out: the resource they are attached to.
            return true;
        };
        let hit = r.items.iter().any(|pattern| {
            compile(pattern, variables.then_some(req.context)).is_some_and(|p| tokens_match(&p, req.resource))
        });
        hit != r.negated
    }
}

#[cfg(test)]
mod tests;
