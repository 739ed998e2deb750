//! Metric filters (matching events become CloudWatch metrics) and subscription filters
//! (matching events delivered to Kinesis streams and Firehose delivery streams in AWS's
//! gzip-compressed DATA_MESSAGE shape).
//!
//! Subscription delivery is at least once and survives restarts: each subscription keeps a
//! durable cursor into its group's log (the offset of the next record to deliver), advanced
//! only after the destination accepted a batch. A new subscription starts at the end of the
//! log, as AWS delivers only events that arrive after it exists.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use lakebox_core::{RequestContext, ServiceError};
use lakebox_service::events::{DeliveryError, Event, EventSink};
use lakebox_service::metrics::Recorder;
use serde::{Deserialize, Serialize};

use crate::api::*;
use crate::errors::*;
use crate::groups::existing;
use crate::pattern::{Fields, Pattern};
use crate::store::{Group, Store, decode, event_id, internal};

pub type MetricFilterConfig = MetricFilter;

/// A subscription filter as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionConfig {
    pub filter: SubscriptionFilter,
}

/// Durable delivery cursors, by group uid and filter name.
const CURSORS: &str = "cursors";
/// Metric filters on one group, and subscription filters.
const MAX_METRIC_FILTERS: usize = 100;
const MAX_SUBSCRIPTIONS: usize = 2;
/// How many log records one delivery batch reads.
const DELIVERY_RECORDS: usize = 64;
const PAGE: usize = 50;

fn cursor_key(group_uid: &str, filter: &str) -> Vec<u8> {
    format!("{group_uid}\0{filter}").into_bytes()
}

fn parse(pattern: &str) -> Result<Pattern, ServiceError> {
    Pattern::parse(pattern).map_err(|_| invalid_parameter("Invalid metric filter pattern"))
}

/// A transformation's value for a matched event: a number, or a field (`$.x`, `$name`) that
/// holds one. `None` when the field is missing or not a number (no datum, as in AWS).
fn metric_value(t: &MetricTransformation, fields: &Fields<'_>) -> Option<f64> {
    let v = t.metric_value.trim();
    if v.starts_with('$') {
        fields.get(v)?.trim().parse().ok()
    } else {
        v.parse().ok()
    }
}

fn check_transformation(t: &MetricTransformation) -> Result<(), ServiceError> {
    let v = t.metric_value.trim();
    if !v.starts_with('$') && v.parse::<f64>().is_err() {
        return Err(invalid_parameter(format!(
            "Invalid metric value: {}",
            t.metric_value
        )));
    }
    if t.default_value.is_some() && t.dimensions.as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(invalid_parameter(
            "You cannot specify both a default value and dimensions for a metric transformation.",
        ));
    }
    Ok(())
}

pub async fn put_metric_filter(
    store: &Store,
    ctx: &RequestContext,
    input: PutMetricFilterRequest,
) -> Result<(), ServiceError> {
    parse(&input.filter_pattern)?;
    for t in &input.metric_transformations {
        check_transformation(t)?;
    }
    let group = existing(store, ctx, &input.log_group_name)?;
    {
        let mut c = group.config.lock().unwrap();
        let filter = MetricFilter {
            filter_name: Some(input.filter_name.clone()),
            filter_pattern: Some(input.filter_pattern),
            metric_transformations: Some(input.metric_transformations),
            creation_time: Some(store.now()),
            log_group_name: Some(input.log_group_name),
            apply_on_transformed_logs: Some(input.apply_on_transformed_logs.unwrap_or(false)),
            field_selection_criteria: input.field_selection_criteria,
            emit_system_field_dimensions: input.emit_system_field_dimensions,
        };
        let count = c.metric_filters.len();
        match c
            .metric_filters
            .iter_mut()
            .find(|f| f.filter_name.as_deref() == Some(&input.filter_name))
        {
            Some(existing) => *existing = filter,
            None if count >= MAX_METRIC_FILTERS => {
                return Err(ServiceError::client(
                    "LimitExceededException",
                    "Resource limit exceeded.",
                ));
            }
            None => c.metric_filters.push(filter),
        }
    }
    store.save_group(&group).await
}

pub fn describe_metric_filters(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeMetricFiltersRequest,
) -> Result<DescribeMetricFiltersResponse, ServiceError> {
    if input.metric_name.is_some() != input.metric_namespace.is_some() {
        return Err(invalid_parameter(
            "metricName and metricNamespace must be specified together.",
        ));
    }
    let groups = match &input.log_group_name {
        Some(name) => vec![existing(store, ctx, name)?],
        None => store.groups_of(&ctx.account_id, &ctx.region),
    };
    let mut filters = Vec::new();
    for g in groups {
        for f in &g.config.lock().unwrap().metric_filters {
            let name = f.filter_name.clone().unwrap_or_default();
            let prefix_ok = input
                .filter_name_prefix
                .as_ref()
                .is_none_or(|p| name.starts_with(p.as_str()));
            let metric_ok = match (&input.metric_name, &input.metric_namespace) {
                (Some(n), Some(ns)) => f
                    .metric_transformations
                    .iter()
                    .flatten()
                    .any(|t| &t.metric_name == n && &t.metric_namespace == ns),
                _ => true,
            };
            if prefix_ok && metric_ok {
                filters.push((format!("{}\0{name}", g.key.2), f.clone()));
            }
        }
    }
    filters.sort_by(|a, b| a.0.cmp(&b.0));
    let limit = input.limit.map_or(PAGE, |l| l as usize);
    let (page, next) =
        lakebox_core::paging::page(filters, |f| f.0.clone(), input.next_token.as_deref(), limit)
            .map_err(|_| invalid_token())?;
    Ok(DescribeMetricFiltersResponse {
        metric_filters: Some(page.into_iter().map(|(_, f)| f).collect()),
        next_token: next,
    })
}

pub async fn delete_metric_filter(
    store: &Store,
    ctx: &RequestContext,
    input: DeleteMetricFilterRequest,
) -> Result<(), ServiceError> {
    let group = existing(store, ctx, &input.log_group_name)?;
    {
        let mut c = group.config.lock().unwrap();
        let before = c.metric_filters.len();
        c.metric_filters
            .retain(|f| f.filter_name.as_deref() != Some(&input.filter_name));
        if c.metric_filters.len() == before {
            return Err(ServiceError::client(
                "ResourceNotFoundException",
                "The specified resource does not exist.",
            ));
        }
    }
    store.save_group(&group).await
}

pub fn test_metric_filter(input: TestMetricFilterRequest) -> Result<TestMetricFilterResponse, ServiceError> {
    let pattern = parse(&input.filter_pattern)?;
    let mut matches = Vec::new();
    for (i, message) in input.log_event_messages.iter().enumerate() {
        let Some(fields) = pattern.fields(message) else {
            continue;
        };
        // The fields the pattern names, as `$name` / `$.path` with what each took.
        let extracted: BTreeMap<String, String> = match &fields {
            Fields::Space(words) => words
                .iter()
                .map(|(n, w)| (format!("${n}"), w.to_string()))
                .collect(),
            Fields::Json(_) => pattern
                .selectors()
                .into_iter()
                .filter_map(|s| fields.get(&s).map(|v| (s, v)))
                .collect(),
            Fields::None => BTreeMap::new(),
        };
        matches.push(MetricFilterMatchRecord {
            event_number: Some(i as i64 + 1),
            event_message: Some(message.clone()),
            extracted_values: Some(extracted),
        });
    }
    Ok(TestMetricFilterResponse {
        matches: Some(matches),
    })
}

/// Publishes what a batch's events make of the group's metric filters: each matching event's
/// value, or (when none matched) a filter's default value once.
pub fn publish_metrics(recorder: &Recorder, group: &Group, events: &[(i64, &str)]) {
    let filters = group.config.lock().unwrap().metric_filters.clone();
    if filters.is_empty() {
        return;
    }
    let (account, region, _) = &group.key;
    for f in &filters {
        let Some(pattern) = f.filter_pattern.as_deref().and_then(|p| Pattern::parse(p).ok()) else {
            continue;
        };
        let transformations = f.metric_transformations.as_deref().unwrap_or_default();
        let mut matched = false;
        for (_, message) in events {
            let Some(fields) = pattern.fields(message) else {
                continue;
            };
            matched = true;
            for t in transformations {
                let Some(value) = metric_value(t, &fields) else {
                    continue;
                };
                let dims: Vec<(String, String)> = t
                    .dimensions
                    .iter()
                    .flatten()
                    .filter_map(|(k, v)| {
                        let value = if v.starts_with('$') {
                            fields.get(v)?
                        } else {
                            v.clone()
                        };
                        Some((k.clone(), value))
                    })
                    .collect();
                let dims: Vec<(&str, &str)> = dims.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let unit = t.unit.as_ref().map_or("None", |u| u.as_str());
                recorder.record_many(
                    account,
                    region,
                    &t.metric_namespace,
                    &dims,
                    &[(&t.metric_name, unit, value)],
                );
            }
        }
        if !matched {
            for t in transformations {
                if let Some(default) = t.default_value {
                    let unit = t.unit.as_ref().map_or("None", |u| u.as_str());
                    recorder.record_many(
                        account,
                        region,
                        &t.metric_namespace,
                        &[],
                        &[(&t.metric_name, unit, default)],
                    );
                }
            }
        }
    }
}

pub async fn put_subscription_filter(
    store: &Store,
    ctx: &RequestContext,
    input: PutSubscriptionFilterRequest,
    sink: Option<&Arc<dyn EventSink>>,
) -> Result<(), ServiceError> {
    Pattern::parse(&input.filter_pattern).map_err(|_| invalid_pattern())?;
    let dest = lakebox_core::Arn::parse(&input.destination_arn)
        .filter(|a| matches!(a.service.as_str(), "kinesis" | "firehose" | "lambda" | "logs"));
    let Some(dest) = dest else {
        return Err(invalid_parameter(format!(
            "Invalid destination ARN: {}",
            input.destination_arn
        )));
    };
    if dest.service == "logs" {
        return Err(invalid_parameter(format!(
            "Lakebox does not deliver subscriptions to {} destinations yet.",
            dest.service
        )));
    }
    let group = existing(store, ctx, &input.log_group_name)?;
    // AWS checks the destination by sending it a control message (a function only by checking
    // it is there); a destination that does not exist fails the call.
    if let Some(sink) = sink
        && dest.service == "lambda"
    {
        sink.deliver(
            input.destination_arn.clone(),
            Event {
                probe: true,
                ..Event::default()
            },
        )
        .await
        .map_err(|_| {
            invalid_parameter(format!(
                "Could not execute the lambda function. Make sure you have given CloudWatch Logs permission to execute your function. ({})",
                input.destination_arn
            ))
        })?;
    } else if let Some(sink) = sink {
        let control = message(
            "CONTROL_MESSAGE",
            "CloudWatchLogs",
            "",
            "",
            &[],
            &[serde_json::json!({
                "id": "",
                "timestamp": store.now(),
                "message": format!(
                    "CWL CONTROL MESSAGE: Checking health of destination {}.",
                    if dest.service == "kinesis" { "Kinesis stream" } else { "Firehose stream" }
                ),
            })],
        )?;
        sink.deliver(
            input.destination_arn.clone(),
            Event {
                data: Some(control),
                ..Event::default()
            },
        )
        .await
        .map_err(|e| match e {
            DeliveryError::NoSuchTarget => invalid_parameter(format!(
                "Could not deliver test message to specified destination. Check if the destination is valid: {}",
                input.destination_arn
            )),
            other => invalid_parameter(format!(
                "Could not deliver test message to specified destination: {other}"
            )),
        })?;
    }
    let log_end = group.log().map_err(internal)?.next_offset();
    let uid = group.config.lock().unwrap().uid.clone();
    let is_new = {
        let mut c = group.config.lock().unwrap();
        let filter = SubscriptionFilter {
            filter_name: Some(input.filter_name.clone()),
            log_group_name: Some(input.log_group_name.clone()),
            filter_pattern: Some(input.filter_pattern),
            destination_arn: Some(input.destination_arn),
            role_arn: input.role_arn,
            distribution: Some(input.distribution.unwrap_or(Distribution::ByLogStream)),
            apply_on_transformed_logs: Some(input.apply_on_transformed_logs.unwrap_or(false)),
            creation_time: Some(store.now()),
            field_selection_criteria: input.field_selection_criteria,
            emit_system_fields: input.emit_system_fields,
        };
        let count = c.subscriptions.len();
        match c
            .subscriptions
            .iter_mut()
            .find(|s| s.filter.filter_name.as_deref() == Some(&input.filter_name))
        {
            Some(existing) => {
                existing.filter = filter;
                false
            }
            None if count >= MAX_SUBSCRIPTIONS => {
                return Err(ServiceError::client(
                    "LimitExceededException",
                    "Resource limit exceeded.",
                ));
            }
            None => {
                c.subscriptions.push(SubscriptionConfig { filter });
                true
            }
        }
    };
    if is_new {
        let k = cursor_key(&uid, &input.filter_name);
        store
            .meta
            .write_async(move |b| b.put(CURSORS, &k, &log_end.to_le_bytes()))
            .await
            .map_err(internal)?;
    }
    store.save_group(&group).await
}

pub fn describe_subscription_filters(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeSubscriptionFiltersRequest,
) -> Result<DescribeSubscriptionFiltersResponse, ServiceError> {
    let group = existing(store, ctx, &input.log_group_name)?;
    let filters: Vec<SubscriptionFilter> = group
        .config
        .lock()
        .unwrap()
        .subscriptions
        .iter()
        .map(|s| s.filter.clone())
        .filter(|f| {
            input
                .filter_name_prefix
                .as_ref()
                .is_none_or(|p| f.filter_name.as_deref().unwrap_or("").starts_with(p.as_str()))
        })
        .collect();
    let limit = input.limit.map_or(PAGE, |l| l as usize);
    let (page, next) = lakebox_core::paging::page(
        filters,
        |f| f.filter_name.clone().unwrap_or_default(),
        input.next_token.as_deref(),
        limit,
    )
    .map_err(|_| invalid_token())?;
    Ok(DescribeSubscriptionFiltersResponse {
        subscription_filters: Some(page),
        next_token: next,
    })
}

pub async fn delete_subscription_filter(
    store: &Store,
    ctx: &RequestContext,
    input: DeleteSubscriptionFilterRequest,
) -> Result<(), ServiceError> {
    let group = existing(store, ctx, &input.log_group_name)?;
    let uid = {
        let mut c = group.config.lock().unwrap();
        let before = c.subscriptions.len();
        c.subscriptions
            .retain(|s| s.filter.filter_name.as_deref() != Some(&input.filter_name));
        if c.subscriptions.len() == before {
            return Err(ServiceError::client(
                "ResourceNotFoundException",
                "The specified resource does not exist.",
            ));
        }
        c.uid.clone()
    };
    store.save_group(&group).await?;
    let k = cursor_key(&uid, &input.filter_name);
    store
        .meta
        .write_async(move |b| {
            b.freeing();
            b.delete(CURSORS, &k).map(drop)
        })
        .await
        .map_err(internal)
}

/// A subscription message, gzip-compressed, as destinations receive it.
fn message(
    kind: &str,
    owner: &str,
    group: &str,
    stream: &str,
    filters: &[&str],
    events: &[serde_json::Value],
) -> Result<Vec<u8>, ServiceError> {
    let doc = serde_json::json!({
        "messageType": kind,
        "owner": owner,
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": filters,
        "logEvents": events,
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(doc.to_string().as_bytes()).map_err(internal)?;
    gz.finish().map_err(internal)
}

/// Delivers new events of every subscribed group until the server stops; woken after each
/// PutLogEvents, and once a second to retry destinations that failed.
pub async fn run_delivery(store: Arc<Store>, sink: Arc<dyn EventSink>, wake: Arc<tokio::sync::Notify>) {
    loop {
        let mut pending = false;
        for group in store.all_groups() {
            let subs = group.config.lock().unwrap().subscriptions.clone();
            for sub in subs {
                match deliver_some(&store, &group, &sub.filter, &sink).await {
                    Ok(more) => pending |= more,
                    Err(e) => tracing::warn!(group = %group.key.2, "subscription delivery: {e}"),
                }
            }
        }
        if !pending {
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
        }
    }
}

/// Delivers one batch of a subscription; `true` when more records wait.
async fn deliver_some(
    store: &Store,
    group: &Group,
    filter: &SubscriptionFilter,
    sink: &Arc<dyn EventSink>,
) -> Result<bool, ServiceError> {
    let Some(log) = group.opened_log() else {
        return Ok(false);
    };
    let name = filter.filter_name.clone().unwrap_or_default();
    let uid = group.config.lock().unwrap().uid.clone();
    let k = cursor_key(&uid, &name);
    let cursor = match store.meta.get(CURSORS, &k).map_err(internal)? {
        Some(v) if v.len() == 8 => u64::from_le_bytes(v[..8].try_into().unwrap()),
        _ => return Ok(false),
    };
    if cursor >= log.next_offset() {
        return Ok(false);
    }
    let records = {
        let log = log.clone();
        tokio::task::spawn_blocking(move || log.read(cursor, DELIVERY_RECORDS, 4 * 1024 * 1024))
            .await
            .map_err(internal)?
            .map_err(internal)?
    };
    let Some(last) = records.last() else {
        return Ok(false);
    };
    let next = last.offset + 1;
    let pattern =
        Pattern::parse(filter.filter_pattern.as_deref().unwrap_or("")).map_err(|_| invalid_pattern())?;
    let names: BTreeMap<u64, String> = group
        .streams
        .read()
        .unwrap()
        .values()
        .map(|s| (s.uid, s.name.clone()))
        .collect();
    let dest = filter.destination_arn.clone().unwrap_or_default();
    let random = matches!(filter.distribution, Some(Distribution::Random));
    for r in &records {
        let Some((stream_uid, events)) = decode(&r.payload) else {
            continue;
        };
        let Some(stream) = names.get(&stream_uid) else {
            continue;
        };
        let matched: Vec<serde_json::Value> = events
            .iter()
            .enumerate()
            .filter(|(_, (_, m))| pattern.matches(m))
            .map(|(i, (ts, m))| {
                serde_json::json!({
                    "id": format!("{:056}", event_id(r.offset, i)),
                    "timestamp": ts,
                    "message": m,
                })
            })
            .collect();
        if matched.is_empty() {
            continue;
        }
        let data = message(
            "DATA_MESSAGE",
            &group.key.0,
            &group.key.2,
            stream,
            &[name.as_str()],
            &matched,
        )?;
        let event = if dest.starts_with("arn:aws:lambda:") {
            // A function is invoked with the gzip-compressed message, base64, under `awslogs`.
            let data = base64::engine::general_purpose::STANDARD.encode(&data);
            Event::text(
                "logs.amazonaws.com",
                serde_json::json!({ "awslogs": { "data": data } }).to_string(),
            )
        } else {
            Event {
                data: Some(data),
                partition_key: (!random).then(|| stream.clone()),
                ..Event::default()
            }
        };
        match sink.deliver(dest.clone(), event).await {
            Ok(()) => {}
            Err(DeliveryError::Failed(why)) => {
                // Keep the cursor here: the destination may come back.
                tracing::warn!(destination = %dest, "subscription delivery failed, will retry: {why}");
                return save_cursor(store, k, r.offset).await.map(|_| false);
            }
            Err(e) => tracing::warn!(destination = %dest, "subscription delivery dropped: {e}"),
        }
    }
    save_cursor(store, k, next).await?;
    Ok(next < log.next_offset())
}

async fn save_cursor(store: &Store, k: Vec<u8>, offset: u64) -> Result<(), ServiceError> {
    store
        .meta
        .write_async(move |b| b.put(CURSORS, &k, &offset.to_le_bytes()))
        .await
        .map_err(internal)
}
