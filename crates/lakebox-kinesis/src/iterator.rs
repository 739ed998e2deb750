//! Shard iterators: opaque to clients, bound to a stream (by its unique id) and shard, valid for
//! five minutes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

/// How long an iterator may be used after it was issued.
pub const ITERATOR_TTL_MILLIS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardIterator {
    #[serde(rename = "n")]
    pub stream_name: String,
    /// The stream's unique id (a deleted and re-created stream gets a new one).
    #[serde(rename = "u")]
    pub stream_uid: String,
    #[serde(rename = "s")]
    pub shard_id: String,
    /// The next record offset to read.
    #[serde(rename = "o")]
    pub offset: u64,
    #[serde(rename = "t")]
    pub issued_millis: i64,
}

impl ShardIterator {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("iterators serialize");
        // A checksum makes a mangled iterator an error rather than a different position.
        let sum = json.iter().fold(0u32, |a, b| a.rotate_left(5) ^ u32::from(*b));
        let mut raw = sum.to_be_bytes().to_vec();
        raw.extend(json);
        format!("AAAAAAAAAAE{}", B64.encode(raw))
    }

    pub fn decode(s: &str) -> Option<ShardIterator> {
        let raw = B64.decode(s.strip_prefix("AAAAAAAAAAE")?).ok()?;
        if raw.len() < 4 {
            return None;
        }
        let (sum, json) = raw.split_at(4);
        let expected = json.iter().fold(0u32, |a, b| a.rotate_left(5) ^ u32::from(*b));
        if sum != expected.to_be_bytes() {
            return None;
        }
        serde_json::from_slice(json).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let it = ShardIterator {
            stream_name: "s".into(),
            stream_uid: "u1".into(),
            shard_id: "shardId-000000000000".into(),
            offset: 42,
            issued_millis: 7,
        };
        let s = it.encode();
        assert_eq!(ShardIterator::decode(&s), Some(it));
        let mut bad = s.clone().into_bytes();
        let last = bad.len() - 3;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(ShardIterator::decode(&String::from_utf8(bad).unwrap()), None);
        assert_eq!(ShardIterator::decode("garbage"), None);
    }
}
