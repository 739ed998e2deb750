//! Sequence numbers: 56-digit decimal strings, strictly increasing within a shard.
//!
//! Layout: `49` · stream epoch (10 digits, seconds the stream was created) · shard index
//! (6 digits) · record offset in the shard's log (20 digits) · 18 zeros. Equal-length decimal
//! strings order like their numbers, so ordering by offset within a shard is ordering by
//! sequence number, and a sequence number names its shard and record.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceNumber {
    pub stream_epoch: u64,
    pub shard_index: u32,
    pub offset: u64,
}

impl SequenceNumber {
    pub fn format(&self) -> String {
        format!(
            "49{:010}{:06}{:020}{:018}",
            self.stream_epoch % 10_000_000_000,
            self.shard_index,
            self.offset,
            0
        )
    }

    pub fn parse(s: &str) -> Option<SequenceNumber> {
        if s.len() != 56 || !s.bytes().all(|b| b.is_ascii_digit()) || !s.starts_with("49") {
            return None;
        }
        Some(SequenceNumber {
            stream_epoch: s[2..12].parse().ok()?,
            shard_index: s[12..18].parse().ok()?,
            offset: s[18..38].parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let a = SequenceNumber {
            stream_epoch: 1_700_000_000,
            shard_index: 3,
            offset: 9,
        };
        let b = SequenceNumber { offset: 10, ..a };
        assert_eq!(a.format().len(), 56);
        assert_eq!(SequenceNumber::parse(&a.format()), Some(a));
        assert!(a.format() < b.format());
        assert_eq!(SequenceNumber::parse("123"), None);
        assert_eq!(SequenceNumber::parse(&"1".repeat(56)), None);
    }
}
