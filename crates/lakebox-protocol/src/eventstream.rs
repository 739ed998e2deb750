//! The `application/vnd.amazon.eventstream` message framing used by streaming responses
//! (Kinesis SubscribeToShard, S3 SelectObjectContent, …):
//!
//! ```text
//! u32 total length | u32 headers length | u32 CRC32(prelude) | headers | payload | u32 CRC32(all before)
//! ```
//!
//! (big-endian). Each header is `u8 name length | name | u8 type | value`; only string values
//! (type 7, `u16 length | bytes`) are needed here.

pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// Encodes one message with string headers.
pub fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An `event` message of the given type.
pub fn event(event_type: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_message(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", content_type),
        ],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_self_consistent() {
        let m = encode_message(&[(":message-type", "event"), (":event-type", "X")], b"{}");
        let total = u32::from_be_bytes(m[0..4].try_into().unwrap()) as usize;
        let headers = u32::from_be_bytes(m[4..8].try_into().unwrap()) as usize;
        assert_eq!(total, m.len());
        assert_eq!(
            u32::from_be_bytes(m[8..12].try_into().unwrap()),
            crc32fast::hash(&m[0..8])
        );
        assert_eq!(&m[12 + headers..total - 4], b"{}");
        assert_eq!(
            u32::from_be_bytes(m[total - 4..].try_into().unwrap()),
            crc32fast::hash(&m[..total - 4])
        );
        // First header: name length, name, type 7, u16 length, value.
        assert_eq!(m[12] as usize, ":message-type".len());
        assert_eq!(&m[13..26], b":message-type");
        assert_eq!(m[26], 7);
    }

    #[test]
    fn empty_message_matches_the_aws_test_vector() {
        // The "empty_message" vector of the AWS event stream test suite.
        assert_eq!(
            encode_message(&[], b""),
            vec![
                0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff
            ]
        );
    }
}
