//! Stream, shard, tag and retention operations.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use std::collections::BTreeMap;

use lakebox_core::{RequestContext, ServiceError, tags};
use lakebox_protocol::Timestamp;

use crate::errors;
use crate::hashing::even_ranges;
use crate::model::*;
use crate::sequence::SequenceNumber;
use crate::stream_name;
use crate::streams::{ShardRecord, StreamRecord, Streams};

pub const MIN_RETENTION_HOURS: i64 = 24;
pub const MAX_RETENTION_HOURS: i64 = 8760;
const ON_DEMAND_SHARDS: u32 = 4;
/// Kinesis keeps at most 50 tags on a stream or consumer.
pub const MAX_TAGS: usize = 50;

/// `KMS` once StartStreamEncryption was called, else `NONE`.
pub fn encryption_type(stream: &StreamRecord) -> EncryptionType {
    stream
        .encryption
        .as_ref()
        .map_or(EncryptionType::None, |(t, _)| EncryptionType::from(t.as_str()))
}

/// The stream's enhanced monitoring, as DescribeStream reports it.
fn enhanced_monitoring(stream: &StreamRecord) -> Vec<EnhancedMetrics> {
    vec![EnhancedMetrics {
        shard_level_metrics: Some(
            stream
                .enhanced_metrics
                .iter()
                .map(|m| MetricsName::from(m.as_str()))
                .collect(),
        ),
    }]
}

pub fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// The shard a client's shard id names, read as Kinesis reads it: the digits after the first
/// `-` (or the whole id when it has none) are the shard's index, so `shardId-000000000001`,
/// `shardId-1`, `shard-1` and `1` all name the same shard. `None` when that is not an index.
pub fn canonical_shard_id(id: &str) -> Option<String> {
    let digits = id.split('-').nth(1).unwrap_or(id);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let index: u64 = digits.parse().ok()?;
    u32::try_from(index)
        .ok()
        .filter(|i| *i <= i32::MAX as u32)
        .map(shard_id)
}

/// Kinesis's character rules for tag keys and values: Unicode letters, digits, white space and
/// `_ . / = + - @ :` — and, though the first message lists it, never `%`.
pub fn check_tag_characters<'a>(
    stream: &str,
    account: &str,
    tags: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), ServiceError> {
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || "_./-=+ @%:".contains(c)
            || ('\u{00C0}'..='\u{1FFF}').contains(&c)
            || ('\u{2C00}'..='\u{D7FF}').contains(&c)
    };
    let texts: Vec<&String> = tags.into_iter().flat_map(|(k, v)| [k, v]).collect();
    if texts.iter().any(|t| !t.chars().all(allowed)) {
        return Err(errors::invalid_argument(
            "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @ :.",
        ));
    }
    if texts.iter().any(|t| t.contains('%')) {
        return Err(errors::invalid_argument(format!(
            "Failed to add tags to stream {stream} under account {account} because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@',':'."
        )));
    }
    Ok(())
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

fn mode(stream: &StreamRecord) -> Option<StreamModeDetails> {
    Some(StreamModeDetails {
        stream_mode: StreamMode::from(stream.mode.as_str()),
    })
}

pub async fn create_stream(
    s: &Streams,
    ctx: &RequestContext,
    input: CreateStreamInput,
) -> Result<(), ServiceError> {
    // Name, ShardCount's range and the mode's values are checked by the model's constraints.
    let mode = input
        .stream_mode_details
        .map_or(StreamMode::Provisioned, |m| m.stream_mode);
    let count = match mode {
        StreamMode::OnDemand => i64::from(ON_DEMAND_SHARDS),
        _ => match input.shard_count {
            Some(n) => i64::from(n),
            None => {
                return Err(errors::invalid_argument(
                    "ShardCount must be specified for a PROVISIONED stream.",
                ));
            }
        },
    };
    let mode = mode.as_str().to_owned();
    if count > i64::from(s.settings.shard_limit) {
        return Err(errors::limit_exceeded(format!(
            "This request would exceed the shard limit for the account {} in {}. Limit: {}.",
            ctx.account_id, ctx.region, s.settings.shard_limit
        )));
    }
    let mut tags = BTreeMap::new();
    if let Some(t) = &input.tags {
        check_tag_characters(&input.stream_name, &ctx.account_id, t)?;
    }
    tags::apply(&mut tags, input.tags.unwrap_or_default(), &[], MAX_TAGS).map_err(|_| {
        errors::invalid_argument(format!(
            "Failed to create stream: too many tags (at most {MAX_TAGS})."
        ))
    })?;
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
        pending_reshard: None,
    })
    .await?;
    Ok(())
}

pub async fn delete_stream(
    s: &std::sync::Arc<Streams>,
    ctx: &RequestContext,
    input: DeleteStreamInput,
) -> Result<(), ServiceError> {
    let name = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn))?;
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
    Ok(())
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
    let name = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn))?;
    let stream = s.require(&ctx.account_id, &ctx.region, &name)?;
    // The model bounds Limit to 1..=10000.
    let limit = input.limit.map_or(100, |n| n as usize);
    // A stream still CREATING has no shards to show yet, as in Kinesis.
    let creating = stream.status(s.now_millis()) == "CREATING";
    let (shards, more) = page_shards(&stream, input.exclusive_start_shard_id.as_deref(), limit, &|_| {
        !creating
    });
    Ok(DescribeStreamOutput {
        stream_description: StreamDescription {
            stream_name: stream.name.clone(),
            stream_arn: stream.arn(),
            stream_status: stream.status(s.now_millis()).into(),
            stream_mode_details: mode(&stream),
            shards: shards.into_iter().map(|sh| shard_view(&stream, sh)).collect(),
            has_more_shards: more,
            retention_period_hours: stream.retention_hours as i32,
            stream_creation_timestamp: Timestamp::from_secs(stream.epoch_secs() as i64),
            enhanced_monitoring: enhanced_monitoring(&stream),
            encryption_type: Some(encryption_type(&stream)),
            key_id: stream.encryption.as_ref().map(|(_, k)| k.clone()),
        },
    })
}

pub fn describe_stream_summary(
    s: &Streams,
    ctx: &RequestContext,
    input: DescribeStreamSummaryInput,
) -> Result<DescribeStreamSummaryOutput, ServiceError> {
    let name = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn))?;
    let stream = s.require(&ctx.account_id, &ctx.region, &name)?;
    Ok(DescribeStreamSummaryOutput {
        stream_description_summary: StreamDescriptionSummary {
            stream_name: stream.name.clone(),
            stream_arn: stream.arn(),
            stream_status: stream.status(s.now_millis()).into(),
            stream_mode_details: mode(&stream),
            retention_period_hours: stream.retention_hours as i32,
            stream_creation_timestamp: Timestamp::from_secs(stream.epoch_secs() as i64),
            enhanced_monitoring: enhanced_monitoring(&stream),
            encryption_type: Some(encryption_type(&stream)),
            key_id: stream.encryption.as_ref().map(|(_, k)| k.clone()),
            open_shard_count: stream.open_shards().count() as i32,
            consumer_count: Some(stream.consumers.len() as i32),
            stream_id: None,
            warm_throughput: None,
            max_record_size_in_kib: None,
        },
    })
}

pub fn list_streams(
    s: &Streams,
    ctx: &RequestContext,
    input: ListStreamsInput,
) -> Result<ListStreamsOutput, ServiceError> {
    // The model bounds Limit to 1..=10000.
    let limit = input.limit.map_or(100, |n| n as usize);
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
        stream_summaries: Some(
            page.iter()
                .map(|st| StreamSummary {
                    stream_name: st.name.clone(),
                    stream_arn: st.arn(),
                    stream_status: st.status(now).into(),
                    stream_mode_details: mode(st),
                    stream_creation_timestamp: Some(Timestamp::from_secs(st.epoch_secs() as i64)),
                })
                .collect(),
        ),
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
            if input.stream_name.is_some() || input.exclusive_start_shard_id.is_some() {
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
            stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn))?,
            input.exclusive_start_shard_id.clone(),
        ),
    };
    // The model bounds MaxResults to 1..=10000.
    let limit = input.max_results.map_or(1000, |n| n as usize);
    let stream = s.require(&ctx.account_id, &ctx.region, &name)?;
    // Which shards a ShardFilter keeps (all of them without one).
    let keep: Box<dyn Fn(&ShardRecord) -> bool> = match &input.shard_filter {
        None => Box::new(|_| true),
        Some(f) => match &f.r#type {
            ShardFilterType::AtLatest => Box::new(|sh| sh.is_open()),
            // No shard has aged out of retention yet: every shard is at or after the horizon.
            ShardFilterType::AtTrimHorizon | ShardFilterType::FromTrimHorizon => Box::new(|_| true),
            ShardFilterType::AtTimestamp | ShardFilterType::FromTimestamp => {
                let at = f
                    .timestamp
                    .ok_or_else(|| {
                        errors::invalid_argument("Timestamp is required for this ShardFilter type.")
                    })?
                    .as_millis();
                // Shards open at (or, FROM_, after) the timestamp.
                Box::new(move |sh| sh.closed.is_none_or(|c| c.closed_millis >= at))
            }
            ShardFilterType::AfterShardId => {
                let id = f
                    .shard_id
                    .clone()
                    .ok_or_else(|| errors::invalid_argument("ShardId is required for AFTER_SHARD_ID."))?;
                start = Some(start.map_or(id.clone(), |s| s.max(id)));
                Box::new(|_| true)
            }
            ShardFilterType::Unknown(other) => {
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
        shards: Some(shards.into_iter().map(|sh| shard_view(&stream, sh)).collect()),
        next_token,
    })
}

pub async fn add_tags(
    s: &Streams,
    ctx: &RequestContext,
    input: AddTagsToStreamInput,
) -> Result<(), ServiceError> {
    let name = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn))?;
    if input.tags.len() > 10 {
        return Err(errors::invalid_argument(
            "Failed to add tags: at most 10 tags per request.",
        ));
    }
    check_tag_characters(&name, &ctx.account_id, &input.tags)?;
    s.update(&ctx.account_id, &ctx.region, &name, move |st| {
        tags::apply(&mut st.tags, input.tags, &[], MAX_TAGS).map_err(|_| {
            errors::invalid_argument(format!(
                "Failed to add tags: a stream can have at most {MAX_TAGS} tags."
            ))
        })
    })
    .await?;
    Ok(())
}

pub async fn remove_tags(
    s: &Streams,
    ctx: &RequestContext,
    input: RemoveTagsFromStreamInput,
) -> Result<(), ServiceError> {
    let name = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn))?;
    s.update(&ctx.account_id, &ctx.region, &name, move |st| {
        for k in &input.tag_keys {
            st.tags.remove(k);
        }
        Ok(())
    })
    .await?;
    Ok(())
}

pub fn list_tags(
    s: &Streams,
    ctx: &RequestContext,
    input: ListTagsForStreamInput,
) -> Result<ListTagsForStreamOutput, ServiceError> {
    let name = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn))?;
    let stream = s.require(&ctx.account_id, &ctx.region, &name)?;
    let limit = input.limit.unwrap_or(50).clamp(1, 50) as usize;
    let rest: Vec<(String, String)> = stream
        .tags
        .into_iter()
        .filter(|(k, _)| input.exclusive_start_tag_key.as_ref().is_none_or(|s| k > s))
        .collect();
    Ok(ListTagsForStreamOutput {
        has_more_tags: rest.len() > limit,
        tags: rest
            .into_iter()
            .take(limit)
            .map(|(key, value)| Tag {
                key,
                value: Some(value),
            })
            .collect(),
    })
}

pub async fn change_retention(
    s: &Streams,
    ctx: &RequestContext,
    stream: StreamRef<'_>,
    hours: i32,
    increase: bool,
) -> Result<(), ServiceError> {
    let name = stream_name(ctx, &stream)?;
    let hours = i64::from(hours);
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
    Ok(())
}

pub fn describe_limits(s: &Streams, ctx: &RequestContext) -> Result<DescribeLimitsOutput, ServiceError> {
    let streams = s.list(&ctx.account_id, &ctx.region)?;
    Ok(DescribeLimitsOutput {
        shard_limit: s.settings.shard_limit as i32,
        open_shard_count: streams.iter().map(|st| st.open_shards().count() as i32).sum(),
        on_demand_stream_count: streams.iter().filter(|st| st.mode == "ON_DEMAND").count() as i32,
        on_demand_stream_count_limit: 50,
    })
}
