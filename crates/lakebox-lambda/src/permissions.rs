//! A function's resource-based policy: AddPermission, RemovePermission, GetPolicy. Statements
//! are stored with the function and answered in AWS's policy document shape (`Sid`, `Effect`,
//! `Principal`, `Action`, `Resource`, `Condition` with `ArnLike` AWS:SourceArn and
//! `StringEquals` AWS:SourceAccount). Lakebox records the policy; it does not check it when
//! services invoke the function yet.

use lakebox_core::{RequestContext, ServiceError};

use crate::Lambda;
use crate::api::*;
use crate::functions::{invalid, user_error};

fn statement_of(input: &AddPermissionRequest, resource: &str) -> serde_json::Value {
    let principal = if input.principal == "*" {
        serde_json::json!("*")
    } else if input.principal.ends_with(".amazonaws.com") {
        serde_json::json!({ "Service": input.principal })
    } else if input.principal.chars().all(|c| c.is_ascii_digit()) {
        serde_json::json!({ "AWS": format!("arn:aws:iam::{}:root", input.principal) })
    } else {
        serde_json::json!({ "AWS": input.principal })
    };
    let mut condition = serde_json::Map::new();
    if let Some(arn) = &input.source_arn {
        condition.insert("ArnLike".into(), serde_json::json!({ "AWS:SourceArn": arn }));
    }
    let mut equals = serde_json::Map::new();
    if let Some(account) = &input.source_account {
        equals.insert("AWS:SourceAccount".into(), serde_json::json!(account));
    }
    if let Some(org) = &input.principal_org_id {
        equals.insert("aws:PrincipalOrgID".into(), serde_json::json!(org));
    }
    if let Some(token) = &input.event_source_token {
        equals.insert("lambda:EventSourceToken".into(), serde_json::json!(token));
    }
    if !equals.is_empty() {
        condition.insert("StringEquals".into(), serde_json::Value::Object(equals));
    }
    let mut statement = serde_json::json!({
        "Sid": input.statement_id,
        "Effect": "Allow",
        "Principal": principal,
        "Action": input.action,
        "Resource": resource,
    });
    if !condition.is_empty() {
        statement["Condition"] = serde_json::Value::Object(condition);
    }
    statement
}

/// A statement id already in a policy is refused, as AWS refuses it.
pub(crate) fn check_new_statement(policy: &[serde_json::Value], id: &str) -> Result<(), ServiceError> {
    if policy.iter().any(|s| s["Sid"] == id) {
        return Err(user_error(
            "ResourceConflictException",
            409,
            format!(
                "The statement id ({id}) provided already exists. Please provide a new statement id, or remove the existing statement."
            ),
        ));
    }
    Ok(())
}

/// A resource policy's document, as GetPolicy and GetLayerVersionPolicy answer it.
pub(crate) fn policy_document(statements: &[serde_json::Value]) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": statements,
    })
    .to_string()
}

fn check_revision(given: Option<&String>, current: Option<&String>) -> Result<(), ServiceError> {
    match (given, current) {
        (Some(g), Some(c)) if g != c => Err(user_error(
            "PreconditionFailedException",
            412,
            "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the latest Revision Id",
        )),
        _ => Ok(()),
    }
}

impl Lambda {
    pub(crate) fn add_permission_impl(
        &self,
        ctx: &RequestContext,
        input: AddPermissionRequest,
    ) -> Result<AddPermissionResponse, ServiceError> {
        let mut stored = self.existing(ctx, &input.function_name, input.qualifier.as_deref())?;
        check_revision(input.revision_id.as_ref(), stored.config.revision_id.as_ref())?;
        if !input.action.starts_with("lambda:") && input.action != "*" {
            return Err(invalid(format!(
                "1 validation error detected: Value '{}' at 'action' failed to satisfy constraint: Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])",
                input.action
            )));
        }
        check_new_statement(&stored.policy, &input.statement_id)?;
        let resource = match &input.qualifier {
            Some(q) => format!("{}:{q}", stored.arn()),
            None => stored.arn().to_owned(),
        };
        let statement = statement_of(&input, &resource);
        stored.policy.push(statement.clone());
        self.store(ctx, &stored)?;
        Ok(AddPermissionResponse {
            statement: Some(statement.to_string()),
        })
    }

    pub(crate) fn remove_permission_impl(
        &self,
        ctx: &RequestContext,
        input: RemovePermissionRequest,
    ) -> Result<(), ServiceError> {
        let mut stored = self.existing(ctx, &input.function_name, input.qualifier.as_deref())?;
        check_revision(input.revision_id.as_ref(), stored.config.revision_id.as_ref())?;
        let before = stored.policy.len();
        stored.policy.retain(|s| s["Sid"] != input.statement_id.as_str());
        if stored.policy.len() == before {
            return Err(user_error(
                "ResourceNotFoundException",
                404,
                format!(
                    "Statement {} is not found in resource policy.",
                    input.statement_id
                ),
            ));
        }
        self.store(ctx, &stored)
    }

    pub(crate) fn get_policy_impl(
        &self,
        ctx: &RequestContext,
        input: GetPolicyRequest,
    ) -> Result<GetPolicyResponse, ServiceError> {
        let stored = self.existing(ctx, &input.function_name, input.qualifier.as_deref())?;
        if stored.policy.is_empty() {
            return Err(user_error(
                "ResourceNotFoundException",
                404,
                "The resource you requested does not exist.",
            ));
        }
        Ok(GetPolicyResponse {
            policy: Some(policy_document(&stored.policy)),
            revision_id: stored.config.revision_id.clone(),
        })
    }
}
