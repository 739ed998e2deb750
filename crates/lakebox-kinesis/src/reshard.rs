//! SplitShard, MergeShards and UpdateShardCount: parent shards close at their current end, new
//! shards take over their hash ranges, and the lineage (parent, adjacent parent) is recorded so
//! consumers can finish parents before children.

use std::sync::Arc;

use lakebox_core::{RequestContext, ServiceError};

use crate::admin::shard_id;
use crate::errors;
use crate::hashing::{even_ranges, parse_hash_key};
use crate::model::*;
use crate::stream_name;
use crate::streams::{ClosedShard, PendingReshard, ShardRecord, StreamRecord, Streams};

/// A stream that can be resharded now: ACTIVE (not CREATING or still UPDATING).
fn reshardable(s: &Streams, ctx: &RequestContext, name: &str) -> Result<StreamRecord, ServiceError> {
    let stream = s.require(&ctx.account_id, &ctx.region, name)?;
    match stream.status(s.now_millis()) {
        "ACTIVE" => Ok(stream),
        other => Err(ServiceError::client(
            "ResourceInUseException",
            format!(
                "Stream {name} under account {} not ACTIVE, instead in state {other}",
                ctx.account_id
            ),
        )),
    }
}

fn open_shard<'a>(
    stream: &'a StreamRecord,
    id: &str,
    account: &str,
) -> Result<&'a ShardRecord, ServiceError> {
    let shard = crate::records::find_shard(stream, id, account)?;
    if !shard.is_open() {
        return Err(ServiceError::client(
            "ResourceInUseException",
            format!("Shard {id} in stream {} is not open.", stream.name),
        ));
    }
    Ok(shard)
}

/// Checks the account-wide open-shard limit for `added` more open shards.
fn check_limit(s: &Streams, ctx: &RequestContext, added: i64) -> Result<(), ServiceError> {
    if added <= 0 {
        return Ok(());
    }
    let open: i64 = s
        .list(&ctx.account_id, &ctx.region)?
        .iter()
        .map(|st| st.open_shards().count() as i64)
        .sum();
    let limit = i64::from(s.settings.shard_limit);
    if open + added > limit {
        return Err(errors::limit_exceeded(format!(
            "This request would exceed the shard limit for the account {} in {}. Current shard count for the account: {open}. Limit: {limit}. Number of additional shards that would have resulted from this request: {added}.",
            ctx.account_id, ctx.region
        )));
    }
    Ok(())
}

/// Starts a reshard: the stream is UPDATING for the configured delay, and when that ends
/// `parents` close at their logs' ends and `children` take over, as in Kinesis, where a split
/// or merge takes effect when the stream returns to ACTIVE. With no delay it takes effect now.
async fn apply(
    s: &Arc<Streams>,
    ctx: &RequestContext,
    stream: &StreamRecord,
    parents: Vec<String>,
    children: Vec<ShardRecord>,
) -> Result<(), ServiceError> {
    let delay = s.settings.create_delay_millis;
    let pending = PendingReshard { parents, children };
    if delay <= 0 {
        // Under the caller's exclusive reshard lock: no append is in flight to a parent.
        return take_effect(
            s,
            &ctx.account_id,
            &ctx.region,
            &stream.name,
            &stream.uid,
            pending,
        )
        .await;
    }
    let until = s.now_millis() + delay;
    let uid = stream.uid.clone();
    s.update(&ctx.account_id, &ctx.region, &stream.name, move |st| {
        if st.uid != uid {
            return Err(errors::stream_not_found(&st.name, &st.account));
        }
        st.pending_reshard = Some(pending);
        st.updating_until_millis = until;
        Ok(())
    })
    .await?;
    let (s, account, region, name) = (
        s.clone(),
        ctx.account_id.clone(),
        ctx.region.clone(),
        stream.name.clone(),
    );
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(delay as u64)).await;
        if let Err(e) = settle(&s, &account, &region, &name).await {
            tracing::warn!(stream = %name, error = %e, "could not finish a reshard; the sweeper will retry");
        }
    });
    Ok(())
}

/// Finishes a stream's pending reshard if its UPDATING period is over (the timer set by
/// [`apply`], or the retention sweeper after a restart).
pub async fn settle(s: &Arc<Streams>, account: &str, region: &str, name: &str) -> Result<(), ServiceError> {
    let Some(stream) = s.get(account, region, name)? else {
        return Ok(());
    };
    let lock = s.reshard_lock(&stream.uid);
    let _guard = lock.write().await;
    let Some(stream) = s.get(account, region, name)? else {
        return Ok(());
    };
    match stream.pending_reshard.clone() {
        Some(pending) if s.now_millis() >= stream.updating_until_millis => {
            take_effect(s, account, region, name, &stream.uid, pending).await
        }
        _ => Ok(()),
    }
}

/// Closes the parents at their logs' current ends and adds the children, atomically. The
/// caller holds the stream's exclusive reshard lock, so no append is in flight to a parent.
async fn take_effect(
    s: &Streams,
    account: &str,
    region: &str,
    name: &str,
    uid: &str,
    pending: PendingReshard,
) -> Result<(), ServiceError> {
    let stream = s.require(account, region, name)?;
    let now = s.now_millis();
    let mut ends = Vec::with_capacity(pending.parents.len());
    for id in &pending.parents {
        let shard = stream
            .shards
            .iter()
            .find(|sh| sh.id == *id)
            .ok_or_else(|| errors::shard_not_found(id, name, account))?;
        ends.push((id.clone(), s.log(&stream, shard)?.next_offset()));
    }
    let parents = pending.parents.clone();
    let children: Vec<String> = pending.children.iter().map(|c| c.id.clone()).collect();
    let uid = uid.to_owned();
    s.update(account, region, name, move |st| {
        if st.uid != uid {
            return Err(errors::stream_not_found(&st.name, &st.account));
        }
        for (id, end) in &ends {
            let shard = st
                .shards
                .iter_mut()
                .find(|sh| sh.id == *id)
                .expect("parents exist");
            if shard.closed.is_some() {
                return Err(ServiceError::client(
                    "ResourceInUseException",
                    format!("Shard {id} is not open."),
                ));
            }
            shard.closed = Some(ClosedShard {
                end_offset: *end,
                closed_millis: now,
            });
        }
        st.shards.extend(pending.children);
        st.pending_reshard = None;
        Ok(())
    })
    .await?;
    tracing::info!(stream = %name, closed = ?parents, opened = ?children, "Kinesis reshard took effect");
    Ok(())
}

fn next_index(stream: &StreamRecord) -> u32 {
    stream.shards.iter().map(|sh| sh.index + 1).max().unwrap_or(0)
}

fn child(index: u32, start: u128, end: u128, parent: &str, adjacent: Option<&str>) -> ShardRecord {
    ShardRecord {
        id: shard_id(index),
        index,
        start_hash: start.to_string(),
        end_hash: end.to_string(),
        parent: Some(parent.to_owned()),
        adjacent_parent: adjacent.map(str::to_owned),
        closed: None,
    }
}

pub async fn split_shard(
    s: &Arc<Streams>,
    ctx: &RequestContext,
    input: SplitShardInput,
) -> Result<(), ServiceError> {
    let name = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn))?;
    let lock = s.reshard_lock(&reshardable(s, ctx, &name)?.uid);
    let _guard = lock.write().await;
    let stream = reshardable(s, ctx, &name)?;
    let shard = open_shard(&stream, &input.shard_to_split, &ctx.account_id)?;
    let new_start = parse_hash_key(&input.new_starting_hash_key).ok_or_else(|| {
        errors::invalid_argument(format!(
            "NewStartingHashKey {} is not a valid hash key.",
            input.new_starting_hash_key
        ))
    })?;
    let (start, end) = (shard.start(), shard.end());
    if !(new_start > start.saturating_add(1) && new_start < end) {
        return Err(errors::invalid_argument(format!(
            "NewStartingHashKey {new_start} used in SplitShard() on shard {} in stream {name} under account {} is not both greater than one plus the shard's StartingHashKey {start} and less than the shard's EndingHashKey {end}.",
            shard.id, ctx.account_id
        )));
    }
    check_limit(s, ctx, 1)?;
    let i = next_index(&stream);
    let children = vec![
        child(i, start, new_start - 1, &shard.id, None),
        child(i + 1, new_start, end, &shard.id, None),
    ];
    apply(s, ctx, &stream, vec![shard.id.clone()], children).await?;
    Ok(())
}

pub async fn merge_shards(
    s: &Arc<Streams>,
    ctx: &RequestContext,
    input: MergeShardsInput,
) -> Result<(), ServiceError> {
    let name = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn))?;
    let lock = s.reshard_lock(&reshardable(s, ctx, &name)?.uid);
    let _guard = lock.write().await;
    let stream = reshardable(s, ctx, &name)?;
    let a = open_shard(&stream, &input.shard_to_merge, &ctx.account_id)?;
    let b = open_shard(&stream, &input.adjacent_shard_to_merge, &ctx.account_id)?;
    // ShardToMerge must be the lower of the two: its range ends where the adjacent one's begins.
    if a.end().checked_add(1) != Some(b.start()) {
        return Err(errors::invalid_argument(format!(
            "Shards {} and {} in stream {name} under account {} are not an adjacent pair of shards eligible for merging",
            a.id, b.id, ctx.account_id
        )));
    }
    let merged = child(
        next_index(&stream),
        a.start().min(b.start()),
        a.end().max(b.end()),
        &a.id,
        Some(&b.id),
    );
    apply(s, ctx, &stream, vec![a.id.clone(), b.id.clone()], vec![merged]).await?;
    Ok(())
}

pub async fn update_shard_count(
    s: &Arc<Streams>,
    ctx: &RequestContext,
    input: UpdateShardCountInput,
) -> Result<UpdateShardCountOutput, ServiceError> {
    // ScalingType's values and TargetShardCount's range are checked by the model.
    let name = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn))?;
    let lock = s.reshard_lock(&reshardable(s, ctx, &name)?.uid);
    let _guard = lock.write().await;
    let stream = reshardable(s, ctx, &name)?;
    let mut open: Vec<&ShardRecord> = stream.open_shards().collect();
    open.sort_by_key(|sh| sh.start());
    let current = open.len() as i64;
    let target = i64::from(input.target_shard_count);
    if target > current * 2 {
        return Err(errors::limit_exceeded(format!(
            "UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: {current} Target shard count: {target}"
        )));
    }
    if target * 2 < current {
        return Err(errors::limit_exceeded(format!(
            "UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: {current} Target shard count: {target}"
        )));
    }
    check_limit(s, ctx, target - current)?;
    let out = UpdateShardCountOutput {
        stream_name: Some(name.clone()),
        current_shard_count: Some(current as i32),
        target_shard_count: Some(target as i32),
        stream_arn: Some(stream.arn()),
    };
    if target == current {
        return Ok(out);
    }
    // As AWS does for UNIFORM_SCALING: split the open shards at every new boundary inside
    // them, then merge neighbouring pieces into each new range. Intermediate shards close at
    // once (they never receive records), and every shard keeps at most a parent and an
    // adjacent parent, so consumers can follow the lineage.
    let targets = even_ranges(target as u32);
    let now = s.now_millis();
    let intermediate = ClosedShard {
        end_offset: 0,
        closed_millis: now,
    };
    let mut next = next_index(&stream);
    let mut created: Vec<ShardRecord> = Vec::new();
    let mut pieces: Vec<ShardRecord> = Vec::new(); // open after the splits, in hash order
    for p in &open {
        let cuts: Vec<u128> = targets
            .iter()
            .map(|(start, _)| *start)
            .filter(|b| *b > p.start() && *b <= p.end())
            .collect();
        if cuts.is_empty() {
            pieces.push((*p).clone());
            continue;
        }
        let (mut rest_start, mut rest_parent) = (p.start(), p.id.clone());
        for (k, cut) in cuts.iter().enumerate() {
            let left = child(next, rest_start, cut - 1, &rest_parent, None);
            let mut right = child(next + 1, *cut, p.end(), &rest_parent, None);
            next += 2;
            pieces.push(left.clone());
            created.push(left);
            rest_start = *cut;
            rest_parent = right.id.clone();
            if k + 1 < cuts.len() {
                right.closed = Some(intermediate); // split again right away
            } else {
                pieces.push(right.clone());
            }
            created.push(right);
        }
    }
    let mut finals: Vec<String> = Vec::new();
    for (start, end) in &targets {
        let mut group: Vec<ShardRecord> = pieces
            .iter()
            .filter(|p| p.start() >= *start && p.end() <= *end)
            .cloned()
            .collect();
        group.sort_by_key(|p| p.start());
        let mut acc = group.remove(0);
        for piece in group {
            let merged = child(next, acc.start(), piece.end(), &acc.id, Some(&piece.id));
            next += 1;
            for c in created.iter_mut().filter(|c| c.id == acc.id || c.id == piece.id) {
                c.closed = Some(intermediate);
            }
            created.push(merged.clone());
            acc = merged;
        }
        finals.push(acc.id);
    }
    // The current shards that did not survive unchanged close with their records.
    let closing: Vec<String> = open
        .iter()
        .filter(|o| !finals.contains(&o.id))
        .map(|o| o.id.clone())
        .collect();
    apply(s, ctx, &stream, closing, created).await?;
    Ok(out)
}
