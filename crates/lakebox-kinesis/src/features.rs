//! Stream settings that do not touch records: stream mode, encryption flags, enhanced
//! monitoring flags, resource tags and policies by ARN, and enhanced fan-out consumers.
//!
//! Encryption and monitoring are recorded and reported as AWS reports them; Lakebox does not
//! yet encrypt records at rest (that comes with KMS) or publish metrics (CloudWatch).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use lakebox_core::{Arn, RequestContext, ServiceError};
use lakebox_protocol::Timestamp;

use crate::errors;
use crate::model::*;
use crate::stream_name;
use crate::streams::{ConsumerRecord, StreamRecord, Streams};

const MAX_CONSUMERS: usize = 20;

fn by_arn(arn: &str) -> StreamRef<'_> {
    StreamRef::by_arn(arn)
}

/// What Start/StopStreamEncryption ask for.
pub struct EncryptionChange {
    pub encryption_type: EncryptionType,
    pub key_id: String,
}

pub async fn update_stream_mode(
    s: &Streams,
    ctx: &RequestContext,
    input: UpdateStreamModeInput,
) -> Result<(), ServiceError> {
    let name = stream_name(ctx, &by_arn(&input.stream_arn))?;
    // The model's enum constraint has refused any other mode.
    let mode = input.stream_mode_details.stream_mode.as_str().to_owned();
    let now = s.now_millis();
    let delay = s.settings.create_delay_millis;
    s.update(&ctx.account_id, &ctx.region, &name, move |st| {
        if st.status(now) != "ACTIVE" {
            return Err(ServiceError::client(
                "ResourceInUseException",
                format!("Stream {} is not ACTIVE.", st.name),
            ));
        }
        st.mode = mode;
        st.updating_until_millis = now + delay;
        Ok(())
    })
    .await?;
    Ok(())
}

pub async fn set_encryption(
    s: &Streams,
    ctx: &RequestContext,
    stream: StreamRef<'_>,
    change: EncryptionChange,
    start: bool,
) -> Result<(), ServiceError> {
    let name = stream_name(ctx, &stream)?;
    // The model allows NONE too, but only KMS can be started or stopped.
    if change.encryption_type != EncryptionType::Kms {
        return Err(errors::invalid_argument(format!(
            "Encryption type {} is not supported; use KMS.",
            change.encryption_type
        )));
    }
    s.update(&ctx.account_id, &ctx.region, &name, move |st| {
        st.encryption = if start {
            Some((change.encryption_type.as_str().to_owned(), change.key_id))
        } else {
            None
        };
        Ok(())
    })
    .await?;
    Ok(())
}

pub async fn set_monitoring(
    s: &Streams,
    ctx: &RequestContext,
    stream: StreamRef<'_>,
    metrics: &[MetricsName],
    enable: bool,
) -> Result<EnhancedMonitoringOutput, ServiceError> {
    let name = stream_name(ctx, &stream)?;
    // The model's enum constraint has refused names it does not list.
    let mut wanted = Vec::new();
    for m in metrics {
        if *m == MetricsName::All {
            // ALL stands for every metric the model lists.
            wanted.extend(
                MetricsName::VALUES
                    .iter()
                    .filter(|x| **x != MetricsName::All.as_str())
                    .map(|x| x.to_string()),
            );
        } else {
            wanted.push(m.as_str().to_owned());
        }
    }
    let mut before = Vec::new();
    let stream = {
        let before_ref = &mut before;
        let current = s.require(&ctx.account_id, &ctx.region, &name)?;
        *before_ref = current.enhanced_metrics.clone();
        s.update(&ctx.account_id, &ctx.region, &name, move |st| {
            if enable {
                for m in wanted {
                    if !st.enhanced_metrics.contains(&m) {
                        st.enhanced_metrics.push(m);
                    }
                }
            } else {
                st.enhanced_metrics.retain(|m| !wanted.contains(m));
            }
            st.enhanced_metrics.sort();
            Ok(())
        })
        .await?
    };
    let names = |v: &[String]| Some(v.iter().map(|m| MetricsName::from(m.as_str())).collect());
    Ok(EnhancedMonitoringOutput {
        stream_name: Some(stream.name.clone()),
        current_shard_level_metrics: names(&before),
        desired_shard_level_metrics: names(&stream.enhanced_metrics),
        stream_arn: Some(stream.arn()),
    })
}

/// A stream or consumer ARN, as (stream name, consumer name).
fn resource(ctx: &RequestContext, arn: &str) -> Result<(String, Option<String>), ServiceError> {
    let parsed = Arn::parse(arn)
        .filter(|a| a.service == "kinesis")
        .ok_or_else(|| errors::invalid_argument(format!("Invalid ResourceARN: {arn}")))?;
    let rest = parsed
        .resource
        .strip_prefix("stream/")
        .ok_or_else(|| errors::invalid_argument(format!("Invalid ResourceARN: {arn}")))?;
    let (stream, consumer) = match rest.split_once("/consumer/") {
        Some((s, c)) => (s, Some(c.split(':').next().unwrap_or(c).to_owned())),
        None => (rest, None),
    };
    if parsed.account_id != ctx.account_id || parsed.region != ctx.region {
        return Err(errors::stream_not_found(stream, &parsed.account_id));
    }
    Ok((stream.to_owned(), consumer))
}

fn consumer_mut<'a>(st: &'a mut StreamRecord, name: &str) -> Result<&'a mut ConsumerRecord, ServiceError> {
    let stream = st.name.clone();
    st.consumers.iter_mut().find(|c| c.name == name).ok_or_else(|| {
        ServiceError::client(
            "ResourceNotFoundException",
            format!("Consumer {name} under stream {stream} not found."),
        )
    })
}

pub async fn tag_resource(
    s: &Streams,
    ctx: &RequestContext,
    resource_arn: &str,
    tags: std::collections::BTreeMap<String, String>,
    keys: Vec<String>,
) -> Result<(), ServiceError> {
    let (stream, consumer) = resource(ctx, resource_arn)?;
    crate::admin::check_tag_characters(&stream, &ctx.account_id, &tags)?;
    s.update(&ctx.account_id, &ctx.region, &stream, move |st| {
        let target = match &consumer {
            Some(c) => &mut consumer_mut(st, c)?.tags,
            None => &mut st.tags,
        };
        lakebox_core::tags::apply(target, tags, &keys, crate::admin::MAX_TAGS).map_err(|_| {
            errors::invalid_argument(format!(
                "A resource can have at most {} tags.",
                crate::admin::MAX_TAGS
            ))
        })
    })
    .await?;
    Ok(())
}

pub fn list_tags_for_resource(
    s: &Streams,
    ctx: &RequestContext,
    resource_arn: &str,
) -> Result<ListTagsForResourceOutput, ServiceError> {
    let (stream, consumer) = resource(ctx, resource_arn)?;
    let mut st = s.require(&ctx.account_id, &ctx.region, &stream)?;
    let tags = match &consumer {
        Some(c) => consumer_mut(&mut st, c)?.tags.clone(),
        None => st.tags.clone(),
    };
    Ok(ListTagsForResourceOutput {
        tags: Some(
            tags.into_iter()
                .map(|(key, value)| Tag {
                    key,
                    value: Some(value),
                })
                .collect(),
        ),
    })
}

pub async fn put_policy(
    s: &Streams,
    ctx: &RequestContext,
    resource_arn: &str,
    policy: Option<String>,
) -> Result<(), ServiceError> {
    let (stream, consumer) = resource(ctx, resource_arn)?;
    if let Some(p) = &policy
        && !serde_json::from_str::<serde_json::Value>(p).is_ok_and(|v| v.is_object())
    {
        return Err(errors::invalid_argument("Policy must be a valid JSON document."));
    }
    s.update(&ctx.account_id, &ctx.region, &stream, move |st| {
        match &consumer {
            Some(c) => consumer_mut(st, c)?.policy = policy,
            None => st.policy = policy,
        }
        Ok(())
    })
    .await?;
    Ok(())
}

pub fn get_policy(
    s: &Streams,
    ctx: &RequestContext,
    resource_arn: &str,
) -> Result<GetResourcePolicyOutput, ServiceError> {
    let (stream, consumer) = resource(ctx, resource_arn)?;
    let mut st = s.require(&ctx.account_id, &ctx.region, &stream)?;
    let policy = match &consumer {
        Some(c) => consumer_mut(&mut st, c)?.policy.clone(),
        None => st.policy.clone(),
    };
    // A resource without a policy answers an empty policy document.
    Ok(GetResourcePolicyOutput {
        policy: policy.unwrap_or_else(|| "{}".into()),
    })
}

fn consumer_view(st: &StreamRecord, c: &ConsumerRecord, now: i64) -> Consumer {
    let status = if now < c.created_millis + st.ready_millis - st.created_millis {
        ConsumerStatus::Creating
    } else {
        ConsumerStatus::Active
    };
    Consumer {
        consumer_name: c.name.clone(),
        consumer_arn: c.arn.clone(),
        consumer_status: status,
        consumer_creation_timestamp: Timestamp::from_secs(c.created_millis / 1000),
    }
}

/// The stream and consumer an input names: StreamARN + ConsumerName, or ConsumerARN.
fn named_consumer(ctx: &RequestContext, input: &ConsumerRef<'_>) -> Result<(String, String), ServiceError> {
    match (input.consumer_arn, input.stream_arn, input.consumer_name) {
        (Some(arn), _, _) => match resource(ctx, arn)? {
            (stream, Some(c)) => Ok((stream, c)),
            _ => Err(errors::invalid_argument(format!("Invalid ConsumerARN: {arn}"))),
        },
        (None, Some(sa), Some(name)) => Ok((stream_name(ctx, &by_arn(sa))?, name.to_owned())),
        _ => Err(errors::invalid_argument(
            "Either ConsumerARN or both StreamARN and ConsumerName must be provided.",
        )),
    }
}

pub async fn register_consumer(
    s: &Streams,
    ctx: &RequestContext,
    input: RegisterStreamConsumerInput,
) -> Result<RegisterStreamConsumerOutput, ServiceError> {
    // Presence, length and pattern of both are checked by the model's constraints.
    let stream_arn = input.stream_arn;
    let name = input.consumer_name;
    let stream = stream_name(ctx, &by_arn(&stream_arn))?;
    let now = s.now_millis();
    let tags = input.tags.unwrap_or_default();
    let cname = name.clone();
    let st = s
        .update(&ctx.account_id, &ctx.region, &stream, move |st| {
            if st.consumers.iter().any(|c| c.name == cname) {
                return Err(ServiceError::client(
                    "ResourceInUseException",
                    format!("Consumer {cname} under stream {} already exists.", st.name),
                ));
            }
            if st.consumers.len() >= MAX_CONSUMERS {
                return Err(errors::limit_exceeded(format!(
                    "Stream {} already has {MAX_CONSUMERS} registered consumers.",
                    st.name
                )));
            }
            let arn = format!("{}/consumer/{cname}:{}", st.arn(), now / 1000);
            st.consumers.push(ConsumerRecord {
                name: cname,
                arn,
                created_millis: now,
                tags,
                policy: None,
            });
            Ok(())
        })
        .await?;
    let c = st
        .consumers
        .iter()
        .find(|c| c.name == name)
        .expect("just registered");
    Ok(RegisterStreamConsumerOutput {
        consumer: consumer_view(&st, c, now),
    })
}

pub fn describe_consumer(
    s: &Streams,
    ctx: &RequestContext,
    input: ConsumerRef<'_>,
) -> Result<DescribeStreamConsumerOutput, ServiceError> {
    let (stream, name) = named_consumer(ctx, &input)?;
    let mut st = s.require(&ctx.account_id, &ctx.region, &stream)?;
    let c = consumer_mut(&mut st, &name)?.clone();
    let v = consumer_view(&st, &c, s.now_millis());
    Ok(DescribeStreamConsumerOutput {
        consumer_description: ConsumerDescription {
            consumer_name: v.consumer_name,
            consumer_arn: v.consumer_arn,
            consumer_status: v.consumer_status,
            consumer_creation_timestamp: v.consumer_creation_timestamp,
            stream_arn: st.arn(),
        },
    })
}

pub fn list_consumers(
    s: &Streams,
    ctx: &RequestContext,
    input: ListStreamConsumersInput,
) -> Result<ListStreamConsumersOutput, ServiceError> {
    let stream_arn = input.stream_arn;
    let st = s.require(
        &ctx.account_id,
        &ctx.region,
        &stream_name(ctx, &by_arn(&stream_arn))?,
    )?;
    let limit = input.max_results.unwrap_or(100).clamp(1, 10_000) as usize;
    let after = match &input.next_token {
        Some(t) => Some(
            TOKEN
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| errors::invalid_argument("Invalid NextToken."))?,
        ),
        None => None,
    };
    let mut all: Vec<&ConsumerRecord> = st
        .consumers
        .iter()
        .filter(|c| after.as_ref().is_none_or(|a| c.name > *a))
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let more = all.len() > limit;
    let page: Vec<&ConsumerRecord> = all.into_iter().take(limit).collect();
    let now = s.now_millis();
    Ok(ListStreamConsumersOutput {
        next_token: if more {
            page.last().map(|c| TOKEN.encode(&c.name))
        } else {
            None
        },
        consumers: Some(page.into_iter().map(|c| consumer_view(&st, c, now)).collect()),
    })
}

pub async fn deregister_consumer(
    s: &Streams,
    ctx: &RequestContext,
    input: ConsumerRef<'_>,
) -> Result<(), ServiceError> {
    let (stream, name) = named_consumer(ctx, &input)?;
    s.update(&ctx.account_id, &ctx.region, &stream, move |st| {
        consumer_mut(st, &name)?;
        st.consumers.retain(|c| c.name != name);
        Ok(())
    })
    .await?;
    Ok(())
}
