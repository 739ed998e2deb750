//! Log groups and log streams: create, describe, delete; retention, KMS keys, classes,
//! deletion protection and tags.

use std::sync::Arc;

use lakebox_core::paging;
use lakebox_core::tags::{self, TagError};
use lakebox_core::{Arn, RequestContext, ServiceError};

use crate::api::*;
use crate::errors::*;
use crate::store::{Group, GroupConfig, GroupKey, Store};

/// The retention periods CloudWatch Logs accepts, in days.
pub const RETENTION_DAYS: &[i32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];
/// Tags on one log group.
const MAX_TAGS: usize = 50;
/// DescribeLogGroups' and DescribeLogStreams' default and largest page.
const PAGE: usize = 50;

pub fn key(ctx: &RequestContext, name: &str) -> GroupKey {
    (ctx.account_id.clone(), ctx.region.clone(), name.to_owned())
}

/// The group a request names, or CloudWatch Logs' "does not exist".
pub fn existing(store: &Store, ctx: &RequestContext, name: &str) -> Result<Arc<Group>, ServiceError> {
    store.group(&key(ctx, name)).ok_or_else(group_not_found)
}

/// The group named by `logGroupName` or `logGroupIdentifier` (a name or an ARN), exactly one.
pub fn identified(
    store: &Store,
    ctx: &RequestContext,
    name: Option<&str>,
    identifier: Option<&str>,
) -> Result<Arc<Group>, ServiceError> {
    match (name, identifier) {
        (Some(n), None) => existing(store, ctx, n),
        (None, Some(id)) => existing(store, ctx, &group_name_of(id)),
        (Some(_), Some(_)) => Err(invalid_parameter(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
        )),
        (None, None) => Err(invalid_parameter(
            "Should provide either name or ARN of a LogGroup.",
        )),
    }
}

/// A log group's name from its name or ARN (`…:log-group:<name>` with or without `:*`).
pub fn group_name_of(identifier: &str) -> String {
    match Arn::parse(identifier) {
        Some(arn) => {
            let name = arn.resource.strip_prefix("log-group:").unwrap_or(&arn.resource);
            name.strip_suffix(":*").unwrap_or(name).to_owned()
        }
        None => identifier.to_owned(),
    }
}

fn tag_error(e: TagError) -> ServiceError {
    match e {
        TagError::TooMany { max } => ServiceError::client(
            "TooManyTagsException",
            format!("A resource can have no more than {max} tags."),
        ),
        TagError::Reserved(k) => {
            invalid_parameter(format!("Tag keys prefixed with 'aws:' are reserved: {k}"))
        }
        TagError::Duplicate(k) => invalid_parameter(format!("Duplicate tag key: {k}")),
        TagError::KeyLength(k) => invalid_parameter(format!("Invalid tag key: {k}")),
        TagError::ValueLength(k) => invalid_parameter(format!("Invalid tag value for key: {k}")),
    }
}

pub async fn create_group(
    store: &Store,
    ctx: &RequestContext,
    input: CreateLogGroupRequest,
) -> Result<(), ServiceError> {
    if input.log_group_name.to_ascii_lowercase().starts_with("aws/") {
        return Err(invalid_parameter(
            "Log groups starting with AWS/ are reserved for AWS.",
        ));
    }
    let tags = input.tags.unwrap_or_default();
    tags::check(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(tag_error)?;
    if tags.len() > MAX_TAGS {
        return Err(tag_error(TagError::TooMany { max: MAX_TAGS }));
    }
    let class = input.log_group_class.unwrap_or(LogGroupClass::Standard);
    let config = GroupConfig {
        name: input.log_group_name.clone(),
        created: store.now(),
        // Delivery-class groups keep events one day, and say so.
        retention_days: matches!(class, LogGroupClass::Delivery).then_some(1),
        kms_key_id: input.kms_key_id,
        class: class.as_str().to_owned(),
        deletion_protection: input.deletion_protection_enabled.unwrap_or(false),
        tags,
        ..GroupConfig::default()
    };
    if store
        .create_group(key(ctx, &input.log_group_name), config)
        .await?
    {
        Ok(())
    } else {
        Err(ServiceError::client(
            "ResourceAlreadyExistsException",
            "The specified log group already exists",
        ))
    }
}

pub async fn delete_group(store: &Store, ctx: &RequestContext, name: &str) -> Result<(), ServiceError> {
    let group = existing(store, ctx, name)?;
    if group.config.lock().unwrap().deletion_protection {
        return Err(ServiceError::client(
            "ValidationException",
            format!("Log group {name} has deletion protection enabled and cannot be deleted."),
        ));
    }
    store.delete_group(&group).await
}

/// A group as DescribeLogGroups reports it.
fn describe_one(store: &Store, group: &Group) -> LogGroup {
    let c = group.config.lock().unwrap().clone();
    let retained_from = group.retained_from(store.now());
    let stored: i64 = group
        .streams
        .read()
        .unwrap()
        .values()
        .map(|s| {
            let d = s.data.read().unwrap();
            // Events past retention no longer count, even before the sweep removes them.
            d.stored_bytes - d.bytes_before(retained_from)
        })
        .sum();
    let arn = group.arn();
    LogGroup {
        log_group_name: Some(c.name),
        creation_time: Some(c.created),
        retention_in_days: c.retention_days,
        metric_filter_count: Some(c.metric_filters.len() as i32),
        arn: Some(format!("{arn}:*")),
        stored_bytes: Some(stored),
        kms_key_id: c.kms_key_id,
        log_group_class: Some(LogGroupClass::from(c.class.as_str())),
        log_group_arn: Some(arn),
        deletion_protection_enabled: Some(c.deletion_protection),
        ..LogGroup::default()
    }
}

pub fn describe_groups(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeLogGroupsRequest,
) -> Result<DescribeLogGroupsResponse, ServiceError> {
    if input.log_group_name_prefix.is_some() && input.log_group_name_pattern.is_some() {
        return Err(invalid_parameter(
            "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
        ));
    }
    let wanted: Option<Vec<String>> = input
        .log_group_identifiers
        .map(|ids| ids.iter().map(|i| group_name_of(i)).collect());
    let groups: Vec<Arc<Group>> = store
        .groups_of(&ctx.account_id, &ctx.region)
        .into_iter()
        .filter(|g| {
            let name = &g.key.2;
            input
                .log_group_name_prefix
                .as_ref()
                .is_none_or(|p| name.starts_with(p.as_str()))
                && input
                    .log_group_name_pattern
                    .as_ref()
                    .is_none_or(|p| name.contains(p.as_str()))
                && wanted.as_ref().is_none_or(|w| w.contains(name))
                && input
                    .log_group_class
                    .as_ref()
                    .is_none_or(|c| g.config.lock().unwrap().class == c.as_str())
        })
        .collect();
    let limit = input.limit.map_or(PAGE, |l| l as usize);
    let (page, next) = paging::page(groups, |g| g.key.2.clone(), input.next_token.as_deref(), limit)
        .map_err(|_| invalid_token())?;
    let pattern_only = input.log_group_name_pattern.is_some();
    Ok(DescribeLogGroupsResponse {
        log_groups: Some(
            page.iter()
                .map(|g| {
                    let full = describe_one(store, g);
                    if pattern_only {
                        // With a name pattern, only the ARN, creation time and name come back.
                        LogGroup {
                            log_group_name: full.log_group_name,
                            creation_time: full.creation_time,
                            arn: full.arn,
                            ..LogGroup::default()
                        }
                    } else {
                        full
                    }
                })
                .collect(),
        ),
        next_token: next,
    })
}

pub fn list_groups(
    store: &Store,
    ctx: &RequestContext,
    input: ListLogGroupsRequest,
) -> Result<ListLogGroupsResponse, ServiceError> {
    let groups: Vec<Arc<Group>> = store
        .groups_of(&ctx.account_id, &ctx.region)
        .into_iter()
        .filter(|g| {
            let c = g.config.lock().unwrap();
            input
                .log_group_name_pattern
                .as_ref()
                .is_none_or(|p| regex::Regex::new(p).map(|r| r.is_match(&c.name)).unwrap_or(false))
                && input
                    .log_group_class
                    .as_ref()
                    .is_none_or(|k| c.class == k.as_str())
                && input.log_group_tags.as_ref().is_none_or(|filters| {
                    filters.iter().all(|f| {
                        c.tags
                            .get(&f.key)
                            .is_some_and(|v| f.values.as_ref().is_none_or(|want| want.contains(v)))
                    })
                })
        })
        .collect();
    let limit = input.limit.map_or(PAGE, |l| l as usize);
    let (page, next) = paging::page(groups, |g| g.key.2.clone(), input.next_token.as_deref(), limit)
        .map_err(|_| invalid_token())?;
    Ok(ListLogGroupsResponse {
        log_groups: Some(
            page.iter()
                .map(|g| LogGroupSummary {
                    log_group_name: Some(g.key.2.clone()),
                    log_group_arn: Some(g.arn()),
                    log_group_class: Some(LogGroupClass::from(g.config.lock().unwrap().class.as_str())),
                })
                .collect(),
        ),
        next_token: next,
    })
}

pub async fn create_stream(
    store: &Store,
    ctx: &RequestContext,
    input: CreateLogStreamRequest,
) -> Result<(), ServiceError> {
    let group = existing(store, ctx, &input.log_group_name)?;
    if store.create_stream(&group, &input.log_stream_name).await? {
        Ok(())
    } else {
        Err(ServiceError::client(
            "ResourceAlreadyExistsException",
            "The specified log stream already exists",
        ))
    }
}

pub async fn delete_stream(
    store: &Store,
    ctx: &RequestContext,
    input: DeleteLogStreamRequest,
) -> Result<(), ServiceError> {
    let group = existing(store, ctx, &input.log_group_name)?;
    if group.stream(&input.log_stream_name).is_none() {
        return Err(stream_not_found());
    }
    store.delete_stream(&group, &input.log_stream_name).await
}

pub fn describe_streams(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeLogStreamsRequest,
) -> Result<DescribeLogStreamsResponse, ServiceError> {
    let group = identified(
        store,
        ctx,
        input.log_group_name.as_deref(),
        input.log_group_identifier.as_deref(),
    )?;
    let by_time = matches!(input.order_by, Some(OrderBy::LastEventTime));
    if by_time && input.log_stream_name_prefix.is_some() {
        return Err(invalid_parameter(
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    let retained_from = group.retained_from(store.now());
    let arn = group.arn();
    let mut streams: Vec<(String, LogStream)> = group
        .streams_with_prefix(input.log_stream_name_prefix.as_deref())
        .into_iter()
        .map(|s| {
            let d = s.data.read().unwrap();
            let mut live = d.since(retained_from);
            let first = live.next().map(|e| e.timestamp);
            let last = live.next_back().map_or(first, |e| Some(e.timestamp));
            let stream = LogStream {
                log_stream_name: Some(s.name.clone()),
                creation_time: Some(s.created),
                first_event_timestamp: first,
                last_event_timestamp: last,
                last_ingestion_time: d.last_ingestion,
                // Sequence tokens are ignored by PutLogEvents; one is still reported.
                upload_sequence_token: Some(format!("{:056}", d.last_ingestion.unwrap_or(0))),
                arn: Some(format!("{arn}:log-stream:{}", s.name)),
                stored_bytes: Some(d.stored_bytes - d.bytes_before(retained_from)),
            };
            (s.name.clone(), stream)
        })
        .collect();
    // The sort key doubles as the page token: unique, and in the order pages walk.
    let descending = input.descending.unwrap_or(false);
    let sort_key = |(name, s): &(String, LogStream)| -> String {
        if by_time {
            let t = s.last_event_timestamp.unwrap_or(0);
            let t = if descending { i64::MAX - t } else { t };
            format!("{t:020}\0{name}")
        } else {
            name.clone()
        }
    };
    streams.sort_by_key(&sort_key);
    if descending && !by_time {
        streams.reverse();
    }
    let limit = input.limit.map_or(PAGE, |l| l as usize);
    let (page, next) = if descending && !by_time {
        // Names descending: the token still names the last item; "after" means smaller.
        let after = match input.next_token.as_deref() {
            Some(t) => Some(paging::decode(t).map_err(|_| invalid_token())?),
            None => None,
        };
        let mut rest: Vec<_> = streams
            .into_iter()
            .filter(|(n, _)| after.as_ref().is_none_or(|a| n < a))
            .take(limit + 1)
            .collect();
        let next = (rest.len() > limit).then(|| {
            rest.truncate(limit);
            paging::encode(&rest.last().unwrap().0)
        });
        (rest, next)
    } else {
        paging::page(streams, sort_key, input.next_token.as_deref(), limit).map_err(|_| invalid_token())?
    };
    Ok(DescribeLogStreamsResponse {
        log_streams: Some(page.into_iter().map(|(_, s)| s).collect()),
        next_token: next,
    })
}

pub async fn put_retention(
    store: &Store,
    ctx: &RequestContext,
    input: PutRetentionPolicyRequest,
) -> Result<(), ServiceError> {
    if !RETENTION_DAYS.contains(&input.retention_in_days) {
        let set = RETENTION_DAYS
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(invalid_parameter(format!(
            "1 validation error detected: Value '{}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [{set}]",
            input.retention_in_days
        )));
    }
    let group = existing(store, ctx, &input.log_group_name)?;
    group.config.lock().unwrap().retention_days = Some(input.retention_in_days);
    store.save_group(&group).await
}

pub async fn delete_retention(store: &Store, ctx: &RequestContext, name: &str) -> Result<(), ServiceError> {
    let group = existing(store, ctx, name)?;
    group.config.lock().unwrap().retention_days = None;
    store.save_group(&group).await
}

pub async fn set_kms_key(
    store: &Store,
    ctx: &RequestContext,
    name: Option<String>,
    resource: Option<String>,
    key: Option<String>,
) -> Result<(), ServiceError> {
    let name = match (name, resource) {
        (Some(n), None) => n,
        (None, Some(r)) => group_name_of(&r),
        _ => {
            return Err(invalid_parameter(
                "Exactly one of logGroupName and resourceIdentifier must be specified.",
            ));
        }
    };
    if let Some(k) = &key
        && Arn::parse(k).is_none_or(|a| a.service != "kms")
    {
        return Err(invalid_parameter(format!(
            "Specified KMS key {k} is not a valid KMS key ARN."
        )));
    }
    let group = existing(store, ctx, &name)?;
    group.config.lock().unwrap().kms_key_id = key;
    store.save_group(&group).await
}

/// Changes a group's tags (TagLogGroup / TagResource and their opposites).
pub async fn change_tags(
    store: &Store,
    group: &Group,
    add: std::collections::BTreeMap<String, String>,
    remove: &[String],
) -> Result<(), ServiceError> {
    tags::check(add.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(tag_error)?;
    {
        let mut c = group.config.lock().unwrap();
        tags::apply(&mut c.tags, add, remove, MAX_TAGS).map_err(tag_error)?;
    }
    store.save_group(group).await
}

/// The group a tagging ARN names (`arn:aws:logs:<region>:<account>:log-group:<name>`).
pub fn tagged(store: &Store, ctx: &RequestContext, arn: &str) -> Result<Arc<Group>, ServiceError> {
    let parsed = Arn::parse(arn).filter(|a| a.service == "logs" && a.resource.starts_with("log-group:"));
    let Some(parsed) = parsed else {
        return Err(invalid_parameter(format!("Invalid resource ARN: {arn}")));
    };
    let key = (
        parsed.account_id.clone(),
        parsed.region.clone(),
        group_name_of(arn),
    );
    if parsed.account_id != ctx.account_id {
        return Err(ServiceError::client(
            "ResourceNotFoundException",
            format!("The specified resource does not exist: {arn}"),
        ));
    }
    store.group(&key).ok_or_else(group_not_found)
}
