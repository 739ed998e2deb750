//! The durable record of every message transition: one append-only log for the whole service
//! (`lakebox_store::Log`, group commit: concurrent sends share one fsync), replayed at start.
//!
//! A message's sequence number is the offset of its `Sent` record. Everything that later
//! happens to it (received, made visible, deleted, purged) is a small record after that one,
//! so replaying the log in order rebuilds each queue. Whole segments older than the oldest
//! message still stored are deleted (`Log::truncate_before`); records in later segments about
//! messages already gone are skipped on replay.
//!
//! Records are written in `lakebox_store::codec`'s binary encoding behind a format marker;
//! journals written before it hold CBOR records, which are still read.

use lakebox_protocol::Blob;
use lakebox_store::codec::{Decoder, Encoder};
use serde::{Deserialize, Serialize};

use crate::api::MessageAttributeValue;
use crate::messages::Sent;

/// The first byte of a record in the binary encoding. A CBOR record (an externally tagged
/// enum: a one-entry map, 0xa1) never starts with it.
const BINARY: u8 = 0x01;

/// Each variant's tag in the binary encoding.
const SENT: u8 = 0;
const RECEIVED: u8 = 1;
const VISIBILITY: u8 = 2;
const DELETED: u8 = 3;
const PURGED: u8 = 4;

/// One transition. `queue` is the queue's incarnation id (a queue deleted and created again
/// under the same name is another queue, whose messages are its own). The serde derives read
/// the CBOR records of journals written before the binary encoding.
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
        let mut e = Encoder::with_capacity(match self {
            Event::Sent { sent, .. } => 64 + sent.weight(),
            _ => 32,
        });
        e.u8(BINARY);
        match self {
            Event::Sent {
                queue,
                visible_at,
                sent,
            } => {
                e.u8(SENT).u64(*queue).i64(*visible_at);
                encode_sent(&mut e, sent);
            }
            Event::Received {
                queue,
                seq,
                visible_at,
                count,
                first,
                receipt,
                attempt,
            } => {
                e.u8(RECEIVED)
                    .u64(*queue)
                    .u64(*seq)
                    .i64(*visible_at)
                    .u64(u64::from(*count))
                    .i64(*first)
                    .u64(*receipt)
                    .opt(attempt.as_ref(), |e, a| {
                        e.str(&a.id).i64(a.until);
                    });
            }
            Event::Visibility {
                queue,
                seq,
                visible_at,
            } => {
                e.u8(VISIBILITY).u64(*queue).u64(*seq).i64(*visible_at);
            }
            Event::Deleted { queue, seqs } => {
                e.u8(DELETED).u64(*queue).list(seqs, |e, s| {
                    e.u64(*s);
                });
            }
            Event::Purged { queue, below } => {
                e.u8(PURGED).u64(*queue).u64(*below);
            }
        }
        e.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<Event> {
        match bytes.split_first() {
            Some((&BINARY, rest)) => {
                let mut d = Decoder::new(rest);
                let event = decode_binary(&mut d)?;
                d.is_done().then_some(event)
            }
            _ => ciborium::from_reader(bytes).ok(),
        }
    }
}

fn decode_binary(d: &mut Decoder) -> Option<Event> {
    Some(match d.u8()? {
        SENT => Event::Sent {
            queue: d.u64()?,
            visible_at: d.i64()?,
            sent: Box::new(decode_sent(d)?),
        },
        RECEIVED => Event::Received {
            queue: d.u64()?,
            seq: d.u64()?,
            visible_at: d.i64()?,
            count: d.u32()?,
            first: d.i64()?,
            receipt: d.u64()?,
            attempt: d.opt(|d| {
                Some(ReceiveAttempt {
                    id: d.string()?,
                    until: d.i64()?,
                })
            })?,
        },
        VISIBILITY => Event::Visibility {
            queue: d.u64()?,
            seq: d.u64()?,
            visible_at: d.i64()?,
        },
        DELETED => Event::Deleted {
            queue: d.u64()?,
            seqs: d.list(Decoder::u64)?,
        },
        PURGED => Event::Purged {
            queue: d.u64()?,
            below: d.u64()?,
        },
        _ => return None,
    })
}

fn encode_sent(e: &mut Encoder, s: &Sent) {
    e.str(&s.message_id)
        .str(&s.body)
        .str(&s.md5_of_body)
        .list(&s.attributes, |e, (name, v)| {
            e.str(name);
            encode_attribute(e, v);
        })
        .opt_str(s.md5_of_attributes.as_deref())
        .opt_str(s.trace_header.as_deref())
        .opt_str(s.md5_of_system_attributes.as_deref())
        .str(&s.sender_id)
        .i64(s.sent_millis)
        .opt_str(s.dead_letter_source.as_deref())
        .opt_str(s.group_id.as_deref())
        .opt_str(s.dedup_id.as_deref())
        .opt_str(s.dedup_key.as_deref());
}

fn decode_sent(d: &mut Decoder) -> Option<Sent> {
    Some(Sent {
        message_id: d.string()?,
        body: d.string()?,
        md5_of_body: d.string()?,
        attributes: d.list(|d| Some((d.string()?, decode_attribute(d)?)))?,
        md5_of_attributes: d.opt_string()?,
        trace_header: d.opt_string()?,
        md5_of_system_attributes: d.opt_string()?,
        sender_id: d.string()?,
        sent_millis: d.i64()?,
        dead_letter_source: d.opt_string()?,
        group_id: d.opt_string()?,
        dedup_id: d.opt_string()?,
        dedup_key: d.opt_string()?,
    })
}

fn encode_attribute(e: &mut Encoder, v: &MessageAttributeValue) {
    e.str(&v.data_type)
        .opt_str(v.string_value.as_deref())
        .opt(v.binary_value.as_ref(), |e, b| {
            e.bytes(&b.0);
        })
        .opt(v.string_list_values.as_deref(), |e, l| {
            e.list(l, |e, s| {
                e.str(s);
            });
        })
        .opt(v.binary_list_values.as_deref(), |e, l| {
            e.list(l, |e, b| {
                e.bytes(&b.0);
            });
        });
}

fn decode_attribute(d: &mut Decoder) -> Option<MessageAttributeValue> {
    let blob = |d: &mut Decoder| d.bytes().map(|b| Blob(b.to_vec()));
    Some(MessageAttributeValue {
        data_type: d.string()?,
        string_value: d.opt_string()?,
        binary_value: d.opt(blob)?,
        string_list_values: d.opt(|d| d.list(Decoder::string))?,
        binary_list_values: d.opt(|d| d.list(blob))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One record of each kind, with every optional field both set and not.
    fn samples() -> Vec<Event> {
        let plain = Sent {
            message_id: "0b5c8a2e-7f6d-4b52-9d7e-0e3f7a1c2b4d".into(),
            body: "héllo ✓".into(),
            md5_of_body: "d41d8cd98f00b204e9800998ecf8427e".into(),
            attributes: vec![],
            md5_of_attributes: None,
            trace_header: None,
            md5_of_system_attributes: None,
            sender_id: "AIDAEXAMPLE".into(),
            sent_millis: 1_700_000_000_123,
            dead_letter_source: None,
            group_id: None,
            dedup_id: None,
            dedup_key: None,
        };
        let full = Sent {
            attributes: vec![
                (
                    "s".into(),
                    MessageAttributeValue {
                        data_type: "String".into(),
                        string_value: Some("v".into()),
                        binary_value: None,
                        string_list_values: None,
                        binary_list_values: None,
                    },
                ),
                (
                    "b".into(),
                    MessageAttributeValue {
                        data_type: "Binary.png".into(),
                        string_value: None,
                        binary_value: Some(Blob(vec![0, 255, 7])),
                        string_list_values: Some(vec!["x".into(), "".into()]),
                        binary_list_values: Some(vec![Blob(vec![]), Blob(vec![1])]),
                    },
                ),
            ],
            md5_of_attributes: Some("a".repeat(32)),
            trace_header: Some("Root=1-5759e988-bd862e3fe1be46a994272793".into()),
            md5_of_system_attributes: Some("b".repeat(32)),
            dead_letter_source: Some("arn:aws:sqs:us-east-1:000000000000:src".into()),
            group_id: Some("g1".into()),
            dedup_id: Some("d1".into()),
            dedup_key: Some("g1/d1".into()),
            ..plain.clone()
        };
        let received = |attempt| Event::Received {
            queue: 1,
            seq: 2,
            visible_at: 3,
            count: 1,
            first: 3,
            receipt: 9,
            attempt,
        };
        vec![
            Event::Sent {
                queue: 7,
                visible_at: 1_700_000_000_123,
                sent: Box::new(plain),
            },
            Event::Sent {
                queue: u64::MAX,
                visible_at: -1,
                sent: Box::new(full),
            },
            received(None),
            received(Some(ReceiveAttempt {
                id: "a-1".into(),
                until: 300_000,
            })),
            Event::Visibility {
                queue: 3,
                seq: 1 << 40,
                visible_at: 0,
            },
            Event::Deleted {
                queue: 7,
                seqs: vec![1, 2, 300],
            },
            Event::Deleted {
                queue: 7,
                seqs: vec![],
            },
            Event::Purged { queue: 7, below: 99 },
        ]
    }

    #[test]
    fn events_round_trip() {
        for e in samples() {
            let bytes = e.encode();
            assert_eq!(bytes[0], BINARY);
            assert_eq!(Event::decode(&bytes), Some(e));
        }
        assert_eq!(Event::decode(b"\xff\x00"), None);
        assert_eq!(Event::decode(b""), None);
    }

    #[test]
    fn a_torn_or_extended_record_reads_as_none() {
        for e in samples() {
            let bytes = e.encode();
            for cut in 0..bytes.len() {
                assert_eq!(Event::decode(&bytes[..cut]), None, "{e:?} cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(Event::decode(&longer), None);
        }
        // An unknown variant tag.
        assert_eq!(Event::decode(&[BINARY, 9, 0]), None);
    }

    const CBOR_RECORDS: [&str; 8] = [
        "a16453656e74a3657175657565076a76697369626c655f61741b0000018bcfe5687b6473656e74ad6a6d6573736167655f6964782430623563386132652d376636642d346235322d396437652d30653366376131633262346464626f64796a68c3a96c6c6f20e29c936b6d64355f6f665f626f6479782064343164386364393866303062323034653938303039393865636638343237656a6174747269627574657380716d64355f6f665f61747472696275746573f66c74726163655f686561646572f678186d64355f6f665f73797374656d5f61747472696275746573f66973656e6465725f69646b414944414558414d504c456b73656e745f6d696c6c69731b0000018bcfe5687b72646561645f6c65747465725f736f75726365f66867726f75705f6964f66864656475705f6964f66964656475705f6b6579f6",
        "a16453656e74a36571756575651bffffffffffffffff6a76697369626c655f6174206473656e74ad6a6d6573736167655f6964782430623563386132652d376636642d346235322d396437652d30653366376131633262346464626f64796a68c3a96c6c6f20e29c936b6d64355f6f665f626f6479782064343164386364393866303062323034653938303039393865636638343237656a6174747269627574657382826173a26b537472696e6756616c7565617668446174615479706566537472696e67826162a46b42696e61727956616c75654300ff0770537472696e674c69737456616c756573826178607042696e6172794c69737456616c756573824041016844617461547970656a42696e6172792e706e67716d64355f6f665f61747472696275746573782061616161616161616161616161616161616161616161616161616161616161616c74726163655f6865616465727828526f6f743d312d35373539653938382d62643836326533666531626534366139393432373237393378186d64355f6f665f73797374656d5f61747472696275746573782062626262626262626262626262626262626262626262626262626262626262626973656e6465725f69646b414944414558414d504c456b73656e745f6d696c6c69731b0000018bcfe5687b72646561645f6c65747465725f736f75726365782661726e3a6177733a7371733a75732d656173742d313a3030303030303030303030303a7372636867726f75705f69646267316864656475705f69646264316964656475705f6b65796567312f6431",
        "a1685265636569766564a66571756575650163736571026a76697369626c655f61740365636f756e740165666972737403677265636569707409",
        "a1685265636569766564a76571756575650163736571026a76697369626c655f61740365636f756e74016566697273740367726563656970740967617474656d7074a262696463612d3165756e74696c1a000493e0",
        "a16a5669736962696c697479a365717565756503637365711b00000100000000006a76697369626c655f617400",
        "a16744656c65746564a265717565756507647365717383010219012c",
        "a16744656c65746564a265717565756507647365717380",
        "a166507572676564a2657175657565076562656c6f771863",
    ];

    #[test]
    fn journals_written_in_cbor_are_still_read() {
        // Records as the service wrote them before the binary encoding (CBOR through serde),
        // in the order of `samples()`.
        for (hex, e) in CBOR_RECORDS.iter().zip(samples()) {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(Event::decode(&bytes), Some(e));
        }
    }

    #[test]
    #[ignore]
    fn speed() {
        let Event::Sent { sent, .. } = &samples()[0] else {
            unreachable!()
        };
        let e = Event::Sent {
            queue: 3,
            visible_at: 1_700_000_000_000,
            sent: Box::new(Sent {
                body: "x".repeat(1024),
                ..(**sent).clone()
            }),
        };
        let n = 200_000;
        let mut cbor = Vec::new();
        ciborium::into_writer(&e, &mut cbor).unwrap();
        for (name, bytes) in [("binary", e.encode()), ("cbor", cbor)] {
            let t = std::time::Instant::now();
            for _ in 0..n {
                std::hint::black_box(Event::decode(std::hint::black_box(&bytes)));
            }
            println!(
                "decode {name}: {:?} a 1 KiB message ({} bytes)",
                t.elapsed() / n,
                bytes.len()
            );
        }
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(std::hint::black_box(&e).encode());
        }
        println!("encode binary: {:?}", t.elapsed() / n);
    }
}
