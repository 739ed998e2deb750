//! Retention: a background task deletes records older than each stream's retention period from
//! disk (whole log segments), so storage does not grow without bound. Reads already skip
//! expired records that are still in a partly expired segment.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::streams::Streams;

/// How often the sweeper looks: a sixtieth of an "hour", between 100 ms and one minute.
pub fn sweep_interval(hour_millis: i64) -> Duration {
    Duration::from_millis((hour_millis / 60).clamp(100, 60_000) as u64)
}

pub fn spawn_sweeper(streams: Arc<Streams>) -> tokio::task::JoinHandle<()> {
    let interval = sweep_interval(streams.settings.hour_millis);
    let weak: Weak<Streams> = Arc::downgrade(&streams);
    drop(streams);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(streams) = weak.upgrade() else { return };
            let work = tokio::task::spawn_blocking(move || sweep(&streams)).await;
            if let Ok(Err(e)) = work {
                tracing::warn!(error = %e, "Kinesis retention sweep failed; will retry");
            }
        }
    })
}

/// One pass: every shard of every stream drops segments past its stream's retention.
pub fn sweep(streams: &Arc<Streams>) -> Result<(), lakebox_core::ServiceError> {
    let now = streams.now_millis();
    for stream in streams.all()? {
        if stream.deleting_until_millis.is_some_and(|t| t <= now) {
            // A deletion whose purge was interrupted (by a restart, say).
            let (s2, st) = (streams.clone(), stream.clone());
            tokio::runtime::Handle::current()
                .block_on(async move { s2.purge(&st.account, &st.region, &st.name, &st.uid).await })?;
            continue;
        }
        if stream.pending_reshard.is_some() && stream.updating_until_millis <= now {
            // A reshard whose timer did not fire (a restart in its UPDATING period).
            let (s2, st) = (streams.clone(), stream.clone());
            tokio::runtime::Handle::current().block_on(async move {
                crate::reshard::settle(&s2, &st.account, &st.region, &st.name).await
            })?;
        }
        let cutoff = now - stream.retention_hours * streams.settings.hour_millis;
        for shard in &stream.shards {
            let log = streams.log(&stream, shard)?;
            let before = log.first_offset();
            match log.expire_older_than(cutoff) {
                Ok(first) if first > before => tracing::info!(
                    stream = %stream.name,
                    shard = %shard.id,
                    records = first - before,
                    "Kinesis retention removed expired records from disk"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(stream = %stream.name, shard = %shard.id, error = %e, "could not expire old records")
                }
            }
        }
    }
    Ok(())
}
