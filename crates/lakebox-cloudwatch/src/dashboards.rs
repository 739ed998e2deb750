//! Dashboards (Put/Get/List/DeleteDashboards) and the tags of CloudWatch resources, in the
//! metadata store. Dashboards belong to an account, not a region, as in CloudWatch (their ARN
//! has no region).

use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use lakebox_store::MetaStore;
use serde::{Deserialize, Serialize};

use crate::api::*;
use crate::errors::{dashboard_not_found, resource_not_found};

const DASHBOARDS: &str = "dashboards";
/// ListDashboards' page.
const PAGE: usize = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    body: String,
    last_modified_millis: i64,
    #[serde(default)]
    tags: Vec<(String, String)>,
}

fn key(account: &str, name: &str) -> Vec<u8> {
    format!("{account}/{name}").into_bytes()
}

fn arn(account: &str, name: &str) -> String {
    format!("arn:aws:cloudwatch::{account}:dashboard/{name}")
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal(format!("dashboard store: {e}"))
}

/// A dashboard body as CloudWatch checks it: a JSON object whose `widgets`, when present, is a
/// list of objects. The messages name the offending place as CloudWatch's do.
fn check_body(body: &str) -> Result<(), ServiceError> {
    // CloudWatch lists where and why in DashboardValidationMessages; its message says what.
    let invalid = |_path: &str, _why: &str| {
        ServiceError::client(
            "InvalidParameterInput",
            "The field DashboardBody must be a valid JSON object",
        )
    };
    let doc: serde_json::Value =
        serde_json::from_str(body).map_err(|_| invalid("/", "Should be a valid JSON object"))?;
    let obj = doc.as_object().ok_or_else(|| invalid("/", "Should be object"))?;
    if let Some(w) = obj.get("widgets") {
        let list = w
            .as_array()
            .ok_or_else(|| invalid("/widgets", "Should be array"))?;
        for (i, item) in list.iter().enumerate() {
            if !item.is_object() {
                return Err(invalid(&format!("/widgets/{i}"), "Should be object"));
            }
        }
    }
    Ok(())
}

pub async fn put(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: PutDashboardInput,
    now: i64,
) -> Result<PutDashboardOutput, ServiceError> {
    check_body(&input.dashboard_body)?;
    let k = key(&ctx.account_id, &input.dashboard_name);
    let old: Option<Stored> = meta
        .get(DASHBOARDS, &k)
        .map_err(internal)?
        .and_then(|v| serde_json::from_slice(&v).ok());
    let mut tags = old.map(|o| o.tags).unwrap_or_default();
    merge_tags(&mut tags, input.tags.unwrap_or_default());
    let stored = Stored {
        body: input.dashboard_body,
        last_modified_millis: now,
        tags,
    };
    let value = serde_json::to_vec(&stored).map_err(internal)?;
    meta.write_async(move |b| b.put(DASHBOARDS, &k, &value))
        .await
        .map_err(internal)?;
    Ok(PutDashboardOutput {
        dashboard_validation_messages: Some(Vec::new()),
    })
}

fn load(meta: &MetaStore, account: &str, name: &str) -> Result<Option<Stored>, ServiceError> {
    Ok(meta
        .get(DASHBOARDS, &key(account, name))
        .map_err(internal)?
        .and_then(|v| serde_json::from_slice(&v).ok()))
}

pub fn get(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: GetDashboardInput,
) -> Result<GetDashboardOutput, ServiceError> {
    let stored = load(meta, &ctx.account_id, &input.dashboard_name)?
        .ok_or_else(|| dashboard_not_found(format!("Dashboard {} does not exist", input.dashboard_name)))?;
    Ok(GetDashboardOutput {
        dashboard_arn: Some(arn(&ctx.account_id, &input.dashboard_name)),
        dashboard_body: Some(stored.body),
        dashboard_name: Some(input.dashboard_name),
    })
}

pub fn list(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: ListDashboardsInput,
) -> Result<ListDashboardsOutput, ServiceError> {
    let prefix = format!("{}/", ctx.account_id);
    let name_prefix = input.dashboard_name_prefix.unwrap_or_default();
    let after = input.next_token.map(|t| key(&ctx.account_id, &t));
    let rows = meta
        .scan_prefix(
            DASHBOARDS,
            format!("{prefix}{name_prefix}").as_bytes(),
            after.as_deref(),
            PAGE + 1,
        )
        .map_err(internal)?;
    let more = rows.len() > PAGE;
    let entries: Vec<DashboardEntry> = rows
        .into_iter()
        .take(PAGE)
        .filter_map(|(k, v)| {
            let name = String::from_utf8(k).ok()?.strip_prefix(&prefix)?.to_owned();
            let s: Stored = serde_json::from_slice(&v).ok()?;
            Some(DashboardEntry {
                dashboard_arn: Some(arn(&ctx.account_id, &name)),
                last_modified: Some(Timestamp::from_millis(s.last_modified_millis)),
                size: Some(s.body.len() as i64),
                dashboard_name: Some(name),
            })
        })
        .collect();
    let next_token = if more {
        entries.last().and_then(|e| e.dashboard_name.clone())
    } else {
        None
    };
    Ok(ListDashboardsOutput {
        dashboard_entries: Some(entries),
        next_token,
    })
}

pub async fn delete(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: DeleteDashboardsInput,
) -> Result<(), ServiceError> {
    // All or nothing: a name that does not exist deletes none, as in CloudWatch.
    for name in &input.dashboard_names {
        if load(meta, &ctx.account_id, name)?.is_none() {
            return Err(dashboard_not_found(format!(
                "The specified dashboard does not exist. [{name}]"
            )));
        }
    }
    let keys: Vec<Vec<u8>> = input
        .dashboard_names
        .iter()
        .map(|n| key(&ctx.account_id, n))
        .collect();
    meta.write_async(move |b| {
        for k in &keys {
            b.delete(DASHBOARDS, k)?;
        }
        Ok(())
    })
    .await
    .map_err(internal)?;
    Ok(())
}

/// Sets tags, a new value replacing the old for the same key.
pub(crate) fn merge_tags(tags: &mut Vec<(String, String)>, new: Vec<Tag>) {
    for t in new {
        match tags.iter_mut().find(|(k, _)| *k == t.key) {
            Some(existing) => existing.1 = t.value,
            None => tags.push((t.key, t.value)),
        }
    }
}

/// The dashboard an ARN names in the caller's account.
fn dashboard_of<'a>(ctx: &RequestContext, resource_arn: &'a str) -> Option<&'a str> {
    let rest = resource_arn.strip_prefix("arn:aws:cloudwatch::")?;
    let (account, name) = rest.split_once(":dashboard/")?;
    (account == ctx.account_id).then_some(name)
}

/// Changes a resource's tags (dashboards: the resources with tags Lakebox keeps so far).
pub async fn change_tags(
    meta: &MetaStore,
    ctx: &RequestContext,
    resource_arn: &str,
    change: impl FnOnce(&mut Vec<(String, String)>),
) -> Result<(), ServiceError> {
    let name = dashboard_of(ctx, resource_arn).ok_or_else(|| resource_not_found(resource_arn))?;
    let mut stored = load(meta, &ctx.account_id, name)?.ok_or_else(|| resource_not_found(resource_arn))?;
    change(&mut stored.tags);
    if stored.tags.len() > 50 {
        return Err(ServiceError::client(
            "LimitExceededException",
            "The maximum number of tags is 50.",
        ));
    }
    let (k, value) = (
        key(&ctx.account_id, name),
        serde_json::to_vec(&stored).map_err(internal)?,
    );
    meta.write_async(move |b| b.put(DASHBOARDS, &k, &value))
        .await
        .map_err(internal)
}

pub async fn tag(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: TagResourceInput,
) -> Result<(), ServiceError> {
    change_tags(meta, ctx, &input.resource_arn, |tags| {
        merge_tags(tags, input.tags)
    })
    .await
}

pub async fn untag(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: UntagResourceInput,
) -> Result<(), ServiceError> {
    let keys = input.tag_keys;
    change_tags(meta, ctx, &input.resource_arn, move |tags| {
        tags.retain(|(k, _)| !keys.contains(k))
    })
    .await
}

pub fn list_tags(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: ListTagsForResourceInput,
) -> Result<ListTagsForResourceOutput, ServiceError> {
    let arn = &input.resource_arn;
    let name = dashboard_of(ctx, arn).ok_or_else(|| resource_not_found(arn))?;
    let stored = load(meta, &ctx.account_id, name)?.ok_or_else(|| resource_not_found(arn))?;
    Ok(ListTagsForResourceOutput {
        tags: Some(
            stored
                .tags
                .into_iter()
                .map(|(key, value)| Tag { key, value })
                .collect(),
        ),
    })
}
