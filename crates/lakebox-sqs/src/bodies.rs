//! Message content read back from the journal: a message sent while the service held as much
//! content as it may ([`Holding`](crate::messages::Holding)) is kept only as its `Sent` record,
//! at its sequence; receiving it (or moving it) reads that record again.
//!
//! A queue is drained oldest first, so when the receives near content memory does not hold
//! (and there is room to hold it), one background read per queue reads the next run of the
//! journal and holds the queue's messages from it: draining a deep backlog reads the journal in
//! long runs ahead of the receives instead of a few records at a time in each.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
pub(crate) const RUN_BYTES: usize = 2 * 1024 * 1024;

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
    /// Fills in the content of the messages that hold none, from the journal.
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
        let (log, queue) = (self.journal().map_err(errors::store)?, q.id);
        let found = tokio::task::spawn_blocking(move || read(&log, queue, &wanted, false))
            .await
            .map_err(|e| ServiceError::internal(e.to_string()))?
            .map_err(errors::store)?;
        let mut found: HashMap<u64, Sent> = found.into_iter().collect();
        for (seq, m) in &mut missing {
            let Some(sent) = found.remove(seq) else {
                return Err(ServiceError::internal(format!(
                    "the content of message {seq} is missing from the SQS journal"
                )));
            };
            m.sent = Some(Arc::new(sent));
        }
        Ok(())
    }

    /// Reads the queue's messages from `from` on back from the journal in the background and
    /// holds their content, so the receives to come find it in memory. One read at a time per
    /// queue; [`Messages::unheld_ahead`](crate::messages::Messages::unheld_ahead) asks for one
    /// only with room for a good part of a run (a read that could hold a handful of messages
    /// would cost a run's decoding for little).
    pub(crate) fn read_ahead(&self, q: &Arc<Queue>, from: u64) {
        if q.reading_ahead.swap(true, Ordering::Acquire) {
            return;
        }
        let Ok(log) = self.journal() else {
            q.reading_ahead.store(false, Ordering::Release);
            return;
        };
        let q = q.clone();
        tokio::task::spawn_blocking(move || {
            match read(&log, q.id, &[from], true) {
                Ok(found) => {
                    let mut held = q.messages.lock().unwrap();
                    for (seq, sent) in found {
                        if !held.hold(seq, Arc::new(sent)) {
                            break;
                        }
                    }
                }
                // The receives read what they need themselves.
                Err(e) => tracing::warn!(error = %e, "could not read ahead in the SQS journal"),
            }
            q.reading_ahead.store(false, Ordering::Release);
        });
    }
}
