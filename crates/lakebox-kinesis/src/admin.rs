//! Stream, shard, tag and retention operations.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::Timestamp;

use crate::errors;
use crate::hashing::even_ranges;
use crate::model::*;
use crate::sequence::SequenceNumber;
use crate::streams::{ShardRecord, StreamRecord, Streams};
use crate::{stream_name, validate_stream_name};

pub const MIN_RETENTION_HOURS: i64 = 24;
pub const MAX_RETENTION_HOURS: i64 = 8760;
const ON_DEMAND_SHARDS: u32 = 4;

/// `KMS` once StartStreamEncryption was called, else `NONE`.
pub fn encryption_type(stream: &StreamRecord) -> String {
    stream
        .encryption
        .as_ref()
        .map_or_else(|| "NONE".to_owned(), |(t, _)| t.clone())
}

pub fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

pub fn shard_view(stream: &StreamRecord, s: &ShardRecord) -> Shard {
    let seq = |offset| {
        SequenceNumber {
            stream_epoch: stream.epoch_secs(),
            shard_index: s.index,
            offset,
        }
        .format()
    };
    Shard {
        shard_id: s.id.clone(),
        parent_shard_id: s.parent.clone(),
        adjacent_parent_shard_id: s.adjacent_parent.clone(),
        hash_key_range: HashKeyRange {
            starting_hash_key: s.start_hash.clone(),
            ending_hash_key: s.end_hash.clone(),
        },
        sequence_number_range: SequenceNumberRange {
            starting_sequence_number: seq(0),
            ending_sequence_number: s.closed.map(|c| seq(c.end_offset.saturating_sub(1))),
        },
    }
}

fn mode(stream: &StreamRecord) -> StreamModeDetails {
    StreamModeDetails {
        stream_mode: stream.mode.clone(),
    }
}

pub async fn create_stream(
    s: &Streams,
    ctx: &RequestContext,
    input: CreateStreamInput,
) -> Result<Empty, ServiceError> {
    validate_stream_name(&input.stream_name)?;
    let mode = input
        .stream_mode_details
        .map(|m| m.stream_mode)
        .unwrap_or_else(|| "PROVISIONED".into());
    let count = match mode.as_str() {
        "PROVISIONED" => match input.shard_count {
            Some(n) if n >= 1 => n,
            Some(n) => {
                return Err(errors::validation(
                    "shardCount",
                    "Member must have value greater than or equal to 1",
                    n,
                ));
            }
            None => {
                return Err(errors::invalid_argument(
                    "ShardCount must be specified for a PROVISIONED stream.",
                ));
            }
        },
        "ON_DEMAND" => i64::from(ON_DEMAND_SHARDS),
        other => {
            return Err(errors::validation(
                "streamModeDetails.streamMode",
                "Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]",
                other,
            ));
        }
    };
    if count > i64::from(s.settings.shard_limit) {
        return Err(errors::limit_exceeded(format!(
            "This request would exceed the shard limit for the account {} in {}. Limit: {}.",
            ctx.account_id, ctx.region, s.settings.shard_limit
        )));
    }
    let tags = input.tags.unwrap_or_default();
    if tags.len() > 50 {
        return Err(errors::invalid_argument(
            "Failed to create stream: too many tags (at most 50).",
        ));
    }
    let now = s.now_millis();
    let shards = even_ranges(count as u32)
        .into_iter()
        .enumerate()
        .map(|(i, (start, end))| ShardRecord {
            id: shard_id(i as u32),
            index: i as u32,
            start_hash: start.to_string(),
            end_hash: end.to_string(),
            parent: None,
            adjacent_parent: None,
            closed: None,
        })
        .collect();
    s.create(StreamRecord {
        name: input.stream_name,
        uid: Streams::new_uid(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        created_millis: now,
        ready_millis: now + s.settings.create_delay_millis,
        retention_hours: MIN_RETENTION_HOURS,
        mode,
        shards,
        tags,
        updating_until_millis: 0,
        encryption: None,
        enhanced_metrics: Vec::new(),
        policy: None,
        consumers: Vec::new(),
        deleting_until_millis: None,
    })
    .await?;
    Ok(Empty {})
}

pub async fn delete_stream(
    s: &std::sync::Arc<Streams>,
    ctx: &RequestContext,
    input: DeleteStreamInput,
) -> Result<Empty, ServiceError> {
    let name = stream_name(ctx, &input.stream)?;
    let stream = s.require(&ctx.account_id, &ctx.region, &name)?;
    if !stream.consumers.is_empty() && !input.enforce_consumer_deletion.unwrap_or(false) {
        return Err(ServiceError::client(
            "ResourceInUseException",
            format!(
                "Stream {name} under account {} has registered consumers; set EnforceConsumerDeletion to delete it.",
                ctx.account_id
            ),
        ));
    }
    s.delete(&ctx.account_id, &ctx.region, &name).await?;
    Ok(Empty {})
}

/// Shards after `exclusive_start` (by id order), at most `limit`; plus whether more remain.
fn page_shards<'a>(
    stream: &'a StreamRecord,
    exclusive_start: Option<&str>,
    limit: usize,
    keep: &dyn Fn(&ShardRecord) -> bool,
) -> (Vec<&'a ShardRecord>, bool) {
    let all: Vec<&ShardRecord> = stream
        .shards
        .iter()
        .filter(|sh| exclusive_start.is_none_or(|start| sh.id.as_str() > start) && keep(sh))
        .collect();
    let more = all.len() > limit;
    (all.into_iter().take(limit).collect(), more)
}

pub fn describe_stream(
    s: &Streams,
    ctx: &RequestContext,
    input: DescribeStreamInput,
) -> Result<DescribeStreamOutput, ServiceError> {
    let name = stream_name(ctx, &input.stream)?;
    let stream = s.require(&ctx.account_id, &ctx.region, &name)?;
    let limit = match input.limit {
        None => 100,
        Some(n) if (1..=10_000).contains(&n) => n as usize,
        Some(n) => {
            return Err(errors::validation(
                "limit",
                "Member must have value between 1 and 10000",
                n,
            ));
        }
    };
    let (shards, more) = page_shards(&stream, input.exclusive_start_shard_id.as_deref(), limit, &|_| {
        true
    });
    Ok(DescribeStreamOutput {
        stream_description: StreamDescription {
            stream_name: stream.name.clone(),
            stream_arn: stream.arn(),
            stream_status: stream.status(s.now_millis()).into(),
            stream_mode_details: mode(&stream),
            shards: shards.into_iter().map(|sh| shard_view(&stream, sh)).collect(),
            has_more_shards: more,
            retention_period_hours: stream.retention_hours,
            stream_creation_timestamp: Timestamp::from_secs(stream.epoch_secs() as i64),
            enhanced_monitoring: vec![EnhancedMetrics {
                shard_level_metrics: stream.enhanced_metrics.clone(),
            }],
            encryption_type: encryption_type(&stream),
            key_id: stream.encryption.as_ref().map(|(_, k)| k.clone()),
        },
    })
}

pub fn describe_stream_summary(
    s: &Streams,
    ctx: &RequestContext,
    input: StreamRef,
) -> Result<DescribeStreamSummaryOutput, ServiceError> {
    let name = stream_name(ctx, &input)?;
    let stream = s.require(&ctx.account_id, &ctx.region, &name)?;
    Ok(DescribeStreamSummaryOutput {
        stream_description_summary: StreamDescriptionSummary {
            stream_name: stream.name.clone(),
            stream_arn: stream.arn(),
            stream_status: stream.status(s.now_millis()).into(),
            stream_mode_details: mode(&stream),
            retention_period_hours: stream.retention_hours,
            stream_creation_timestamp: Timestamp::from_secs(stream.epoch_secs() as i64),
            enhanced_monitoring: vec![EnhancedMetrics {
                shard_level_metrics: stream.enhanced_metrics.clone(),
            }],
            encryption_type: encryption_type(&stream),
            key_id: stream.encryption.as_ref().map(|(_, k)| k.clone()),
            open_shard_count: stream.open_shards().count() as i64,
            consumer_count: stream.consumers.len() as i64,
        },
    })
}

pub fn list_streams(
    s: &Streams,
    ctx: &RequestContext,
    input: ListStreamsInput,
) -> Result<ListStreamsOutput, ServiceError> {
    let limit = match input.limit {
        None => 100,
        Some(n) if (1..=10_000).contains(&n) => n as usize,
        Some(n) => {
            return Err(errors::validation(
                "limit",
                "Member must have value between 1 and 10000",
                n,
            ));
        }
    };
    let start = match &input.next_token {
        Some(t) => {
            if input.exclusive_start_stream_name.is_some() {
                return Err(errors::invalid_argument(
                    "NextToken and ExclusiveStartStreamName cannot both be provided.",
                ));
            }
            let raw = TOKEN.decode(t).ok().and_then(|b| String::from_utf8(b).ok());
            Some(raw.ok_or_else(|| errors::invalid_argument("Invalid NextToken."))?)
        }
        None => input.exclusive_start_stream_name.clone(),
    };
    let mut all = s.list(&ctx.account_id, &ctx.region)?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let rest: Vec<StreamRecord> = all
        .into_iter()
        .filter(|st| start.as_ref().is_none_or(|x| st.name > *x))
        .collect();
    let more = rest.len() > limit;
    let page: Vec<StreamRecord> = rest.into_iter().take(limit).collect();
    let now = s.now_millis();
    Ok(ListStreamsOutput {
        stream_names: page.iter().map(|st| st.name.clone()).collect(),
        has_more_streams: more,
        next_token: if more {
            page.last().map(|l| TOKEN.encode(&l.name))
        } else {
            None
        },
        stream_summaries: page
            .iter()
            .map(|st| StreamSummary {
                stream_name: st.name.clone(),
                stream_arn: st.arn(),
                stream_status: st.status(now).into(),
                stream_mode_details: mode(st),
                stream_creation_timestamp: Timestamp::from_secs(st.epoch_secs() as i64),
            })
            .collect(),
    })
}

/// ListShards' NextToken carries the stream name and the last shard returned.
fn list_shards_token(stream: &str, last_shard: &str) -> String {
    TOKEN.encode(format!("{stream}\n{last_shard}"))
}

pub fn list_shards(
    s: &Streams,
    ctx: &RequestContext,
    input: ListShardsInput,
) -> Result<ListShardsOutput, ServiceError> {
    let (name, mut start) = match &input.next_token {
        Some(t) => {
            if input.stream.stream_name.is_some() || input.exclusive_start_shard_id.is_some() {
                return Err(errors::invalid_argument(
                    "NextToken and StreamName or ExclusiveStartShardId cannot be provided together.",
                ));
            }
            let raw = TOKEN
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            let (n, last) = raw
                .split_once('\n')
                .ok_or_else(|| errors::invalid_argument("Invalid NextToken."))?;
            (n.to_owned(), Some(last.to_owned()))
        }
        None => (
            stream_name(ctx, &input.stream)?,
            input.exclusive_start_shard_id.clone(),
        ),
    };
    let limit = match input.max_results {
        None => 1000,
        Some(n) if (1..=10_000).contains(&n) => n as usize,
        Some(n) => {
            return Err(errors::validation(
                "maxResults",
                "Member must have value between 1 and 10000",
                n,
            ));
        }
    };
    let stream = s.require(&ctx.account_id, &ctx.region, &name)?;
    // Which shards a ShardFilter keeps (all of them without one).
    let keep: Box<dyn Fn(&ShardRecord) -> bool> = match &input.shard_filter {
        None => Box::new(|_| true),
        Some(f) => match f.kind.as_str() {
            "AT_LATEST" => Box::new(|sh| sh.is_open()),
            // No shard has aged out of retention yet: every shard is at or after the horizon.
            "AT_TRIM_HORIZON" | "FROM_TRIM_HORIZON" => Box::new(|_| true),
            "AT_TIMESTAMP" | "FROM_TIMESTAMP" => {
                let at = f
                    .timestamp
                    .ok_or_else(|| {
                        errors::invalid_argument("Timestamp is required for this ShardFilter type.")
                    })?
                    .as_millis();
                // Shards open at (or, FROM_, after) the timestamp.
                Box::new(move |sh| sh.closed.is_none_or(|c| c.closed_millis >= at))
            }
            "AFTER_SHARD_ID" => {
                let id = f
                    .shard_id
                    .clone()
                    .ok_or_else(|| errors::invalid_argument("ShardId is required for AFTER_SHARD_ID."))?;
                start = Some(start.map_or(id.clone(), |s| s.max(id)));
                Box::new(|_| true)
            }
            other => {
                return Err(errors::invalid_argument(format!(
                    "Invalid ShardFilter type {other}."
                )));
            }
        },
    };
    let (shards, more) = page_shards(&stream, start.as_deref(), limit, &*keep);
    let next_token = if more {
        shards.last().map(|l| list_shards_token(&stream.name, &l.id))
    } else {
        None
    };
    Ok(ListShardsOutput {
        shards: shards.into_iter().map(|sh| shard_view(&stream, sh)).collect(),
        next_token,
    })
}

pub async fn add_tags(s: &Streams, ctx: &RequestContext, input: AddTagsInput) -> Result<Empty, ServiceError> {
    let name = stream_name(ctx, &input.stream)?;
    if input.tags.len() > 10 {
        return Err(errors::invalid_argument(
            "Failed to add tags: at most 10 tags per request.",
        ));
    }
    s.update(&ctx.account_id, &ctx.region, &name, move |st| {
        st.tags.extend(input.tags);
        if st.tags.len() > 50 {
            return Err(errors::invalid_argument(
                "Failed to add tags: a stream can have at most 50 tags.",
            ));
        }
        Ok(())
    })
    .await?;
    Ok(Empty {})
}

pub async fn remove_tags(
    s: &Streams,
    ctx: &RequestContext,
    input: RemoveTagsInput,
) -> Result<Empty, ServiceError> {
    let name = stream_name(ctx, &input.stream)?;
    s.update(&ctx.account_id, &ctx.region, &name, move |st| {
        for k in &input.tag_keys {
            st.tags.remove(k);
        }
        Ok(())
    })
    .await?;
    Ok(Empty {})
}

pub fn list_tags(
    s: &Streams,
    ctx: &RequestContext,
    input: ListTagsInput,
) -> Result<ListTagsOutput, ServiceError> {
    let name = stream_name(ctx, &input.stream)?;
    let stream = s.require(&ctx.account_id, &ctx.region, &name)?;
    let limit = input.limit.unwrap_or(50).clamp(1, 50) as usize;
    let rest: Vec<(String, String)> = stream
        .tags
        .into_iter()
        .filter(|(k, _)| input.exclusive_start_tag_key.as_ref().is_none_or(|s| k > s))
        .collect();
    Ok(ListTagsOutput {
        has_more_tags: rest.len() > limit,
        tags: rest
            .into_iter()
            .take(limit)
            .map(|(key, value)| Tag { key, value })
            .collect(),
    })
}

pub async fn change_retention(
    s: &Streams,
    ctx: &RequestContext,
    input: RetentionInput,
    increase: bool,
) -> Result<Empty, ServiceError> {
    let name = stream_name(ctx, &input.stream)?;
    let hours = input.retention_period_hours;
    if !(MIN_RETENTION_HOURS..=MAX_RETENTION_HOURS).contains(&hours) {
        return Err(errors::invalid_argument(format!(
            "Minimum allowed retention period is {MIN_RETENTION_HOURS} hours. Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested retention period ({hours} hours) is out of range."
        )));
    }
    s.update(&ctx.account_id, &ctx.region, &name, move |st| {
        let current = st.retention_hours;
        if increase && hours < current {
            return Err(errors::invalid_argument(format!(
                "Requested retention period ({hours} hours) for stream {} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API.",
                st.name
            )));
        }
        if !increase && hours > current {
            return Err(errors::invalid_argument(format!(
                "Requested retention period ({hours} hours) for stream {} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API.",
                st.name
            )));
        }
        st.retention_hours = hours;
        Ok(())
    })
    .await?;
    Ok(Empty {})
}

pub fn describe_limits(s: &Streams, ctx: &RequestContext) -> Result<DescribeLimitsOutput, ServiceError> {
    let streams = s.list(&ctx.account_id, &ctx.region)?;
    Ok(DescribeLimitsOutput {
        shard_limit: i64::from(s.settings.shard_limit),
        open_shard_count: streams.iter().map(|st| st.open_shards().count() as i64).sum(),
        on_demand_stream_count: streams.iter().filter(|st| st.mode == "ON_DEMAND").count() as i64,
        on_demand_stream_count_limit: 50,
    })
}
