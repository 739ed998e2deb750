//! The durable record of every message transition: one append-only log for the whole service
//! (`lakebox_store::Log`, group commit: concurrent sends share one fsync), replayed at start.
//!
//! A message's sequence number is the offset of its `Sent` record. Everything that later
//! happens to it (received, made visible, deleted, purged) is a small record after that one,
//! so replaying the log in order rebuilds each queue. Whole segments older than the oldest
//! message still stored are deleted (`Log::truncate_before`); records in later segments about
//! messages already gone are skipped on replay.

use serde::{Deserialize, Serialize};

use crate::messages::Sent;

/// One transition. `queue` is the queue's incarnation id (a queue deleted and created again
/// under the same name is another queue, whose messages are its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Sent {
        queue: u64,
        visible_at: i64,
        sent: Box<Sent>,
    },
    Received {
        queue: u64,
        seq: u64,
        visible_at: i64,
        count: u32,
        first: i64,
        receipt: u64,
        /// The FIFO receive's ReceiveRequestAttemptId, so a retry after a restart gets the
        /// same messages (absent in records written before it was kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<ReceiveAttempt>,
    },
    Visibility {
        queue: u64,
        seq: u64,
        visible_at: i64,
    },
    Deleted {
        queue: u64,
        seqs: Vec<u64>,
    },
    Purged {
        queue: u64,
        below: u64,
    },
}

/// A FIFO receive's ReceiveRequestAttemptId and until when a retry of it is answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiveAttempt {
    pub id: String,
    pub until: i64,
}

impl Event {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        ciborium::into_writer(self, &mut out).expect("encoding to memory cannot fail");
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Event> {
        ciborium::from_reader(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let e = Event::Deleted {
            queue: 7,
            seqs: vec![1, 2],
        };
        assert_eq!(Event::decode(&e.encode()), Some(e));
        assert_eq!(Event::decode(b"\xff\x00"), None);
    }

    #[test]
    fn a_received_record_without_an_attempt_reads_as_before() {
        let received = |attempt| Event::Received {
            queue: 1,
            seq: 2,
            visible_at: 3,
            count: 1,
            first: 3,
            receipt: 9,
            attempt,
        };
        let plain = received(None);
        let with = received(Some(ReceiveAttempt {
            id: "a-1".into(),
            until: 300_000,
        }));
        assert_eq!(Event::decode(&with.encode()), Some(with.clone()));
        // Records written before attempts were kept have no such field at all.
        assert!(plain.encode().len() < with.encode().len());
        assert_eq!(Event::decode(&plain.encode()), Some(plain));
    }
}
