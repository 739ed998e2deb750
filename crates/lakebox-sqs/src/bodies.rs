//! Message content read back from the journal: a message sent while the service held as much
//! content as it may ([`Holding`](crate::messages::Holding)) is kept only as its `Sent` record,
//! at its sequence; receiving it (or moving it) reads that record again.
//!
//! A queue is drained oldest first, so when there is room to hold content again a read goes on
//! past the messages asked for and returns the queue's next ones too: draining a deep backlog
//! reads the journal in long runs instead of a record at a time.

use std::collections::HashMap;
use std::sync::Arc;

use lakebox_core::ServiceError;
use lakebox_store::{Log, StoreError};

use crate::journal::Event;
use crate::messages::{Message, Sent};
use crate::queues::Queue;
use crate::{Sqs, errors};

/// How much content the service holds in memory across its queues, by default, before new
/// messages are kept in the journal only.
pub const DEFAULT_MEMORY_BYTES: usize = 64 * 1024 * 1024;
/// How far one read of the journal goes (records, payload bytes).
const RUN_RECORDS: usize = 2048;
const RUN_BYTES: usize = 2 * 1024 * 1024;

/// The `Sent` records of `queue` at the sequences `wanted` (sorted, distinct), and, with
/// `ahead`, those of its messages after them within the same runs of the journal.
fn read(log: &Log, queue: u64, wanted: &[u64], ahead: bool) -> Result<Vec<(u64, Sent)>, StoreError> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&from) = wanted.get(i) {
        // Without read-ahead, one read covers the wanted sequences close to this one.
        let span = if ahead {
            RUN_RECORDS
        } else {
            let last = wanted[i..]
                .iter()
                .take_while(|s| **s - from < RUN_RECORDS as u64)
                .last()
                .copied()
                .unwrap_or(from);
            (last - from + 1) as usize
        };
        let records = log.read(from, span, RUN_BYTES)?;
        let Some(end) = records.last().map(|r| r.offset) else {
            break;
        };
        for rec in records {
            if rec.offset < from || !(ahead || wanted[i..].binary_search(&rec.offset).is_ok()) {
                continue;
            }
            if let Some(Event::Sent { queue: q, sent, .. }) = Event::decode(&rec.payload)
                && q == queue
            {
                out.push((rec.offset, *sent));
            }
        }
        i += wanted[i..].partition_point(|s| *s <= end);
    }
    Ok(out)
}

impl Sqs {
    /// Fills in the content of the messages that hold none, from the journal; with room to
    /// hold content, the queue's messages after them are read too and held for the receives
    /// to come.
    pub(crate) async fn fill_bodies<'a>(
        &self,
        q: &Queue,
        messages: impl IntoIterator<Item = (u64, &'a mut Message)>,
    ) -> Result<(), ServiceError> {
        let mut missing: Vec<(u64, &mut Message)> =
            messages.into_iter().filter(|(_, m)| m.sent.is_none()).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut wanted: Vec<u64> = missing.iter().map(|(s, _)| *s).collect();
        wanted.sort_unstable();
        wanted.dedup();
        // One read-ahead at a time per queue: concurrent receivers that miss while it runs
        // read only their own messages, rather than all reading the same run.
        let reading = if self.holding.has_room() {
            q.reading_ahead.try_lock().ok()
        } else {
            None
        };
        let ahead = reading.is_some();
        let (log, queue) = (self.journal().map_err(errors::store)?, q.id);
        let found = tokio::task::spawn_blocking(move || read(&log, queue, &wanted, ahead))
            .await
            .map_err(|e| ServiceError::internal(e.to_string()))?
            .map_err(errors::store)?;
        let mut found: HashMap<u64, Arc<Sent>> =
            found.into_iter().map(|(s, sent)| (s, Arc::new(sent))).collect();
        for (seq, m) in &mut missing {
            let Some(sent) = found.remove(seq) else {
                return Err(ServiceError::internal(format!(
                    "the content of message {seq} is missing from the SQS journal"
                )));
            };
            m.sent = Some(sent);
        }
        if !found.is_empty() {
            let mut next: Vec<(u64, Arc<Sent>)> = found.into_iter().collect();
            next.sort_unstable_by_key(|(s, _)| *s);
            let mut held = q.messages.lock().unwrap();
            for (seq, sent) in next {
                if !held.hold(seq, sent) {
                    break;
                }
            }
        }
        drop(reading);
        Ok(())
    }
}
