//! Mutation fuzzing of the request decoders: awsJson and CBOR bodies, awsQuery forms, and the
//! SigV4 `Authorization` header. Every mutant must get an answer (an error is fine), never a
//! panic or a stack overflow. `LAKEBOX_FUZZ_ITERS=1000000 cargo test -p lakebox-protocol --test
//! fuzz -- --nocapture` runs them at length (docs/fuzzing.md).

use std::collections::BTreeMap;

use lakebox_core::fuzz;
use lakebox_protocol::rpc::RpcEncoding;
use lakebox_protocol::{Blob, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    data: Option<Blob>,
    partition_key: Option<String>,
    at: Option<Timestamp>,
    nested: Option<Box<Entry>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Input {
    stream_name: Option<String>,
    limit: Option<i32>,
    records: Option<Vec<Entry>>,
    tags: Option<BTreeMap<String, String>>,
    flag: Option<bool>,
    ratio: Option<f64>,
}

const JSON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"\\u0000",
    b"\\ud800",
    b"\"Records\":[",
    b"{\"Nested\":",
    b"\"Data\":\"",
    b"==",
    b"\"At\":",
];

#[test]
fn json_bodies() {
    let corpus: &[&[u8]] = &[
        br#"{"StreamName":"s","Limit":10,"Records":[{"Data":"aGVsbG8=","PartitionKey":"k","At":1700000000.5}],"Tags":{"a":"b"},"Flag":true,"Ratio":0.5}"#,
        br#"{"Records":[{"Nested":{"Nested":{"Data":""}}}]}"#,
        b"{}",
    ];
    fuzz::run("rpc json", 1, 20_000, corpus, JSON_TOKENS, |body| {
        let _ = RpcEncoding::Json11.decode::<Input>(body);
    });
}

#[test]
fn cbor_bodies() {
    let sample = Input {
        stream_name: Some("s".into()),
        limit: Some(3),
        records: Some(vec![Entry {
            data: Some(Blob(vec![0, 1, 2])),
            partition_key: Some("k".into()),
            at: Some(Timestamp::from_millis(1)),
            nested: Some(Box::new(Entry::default())),
        }]),
        ..Default::default()
    };
    let encoded = RpcEncoding::Cbor.encode(&sample).unwrap();
    // CBOR's nesting bytes: array and map headers, indefinite lengths, tags.
    let tokens: &[&[u8]] = &[
        &[0x81],
        &[0xa1, 0x61, 0x41],
        &[0x9f],
        &[0xbf],
        &[0xff],
        &[0xc1],
        &[0x5f],
    ];
    fuzz::run("rpc cbor", 2, 20_000, &[&encoded], tokens, |body| {
        let _ = RpcEncoding::Cbor.decode::<Input>(body);
    });
}

#[test]
fn query_forms() {
    let corpus: &[&[u8]] = &[
        b"Action=GetCallerIdentity&Version=2011-06-15",
        b"Action=X&Tags.member.1.Key=a&Tags.member.1.Value=b&Attributes.entry.1.key=k&Attributes.entry.1.value=v",
    ];
    let tokens: &[&[u8]] = &[
        b"%",
        b"%zz",
        b"&",
        b"=",
        b".member.",
        b".entry.",
        b".1",
        b".99999999999",
        b"+",
    ];
    fuzz::run("query form", 3, 20_000, corpus, tokens, |body| {
        if let Ok(params) = lakebox_protocol::query::parse_form(body) {
            let _ = lakebox_protocol::query_serde::from_params::<BTreeMap<String, String>>(&params);
        }
    });
}

#[test]
fn sigv4_authorization_headers() {
    let corpus: &[&[u8]] = &[
        b"AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcdef0123",
        b"AWS AKID:c2lnbmF0dXJl",
    ];
    let tokens: &[&[u8]] = &[
        b"/",
        b",",
        b"=",
        b";",
        b"Credential=",
        b"SignedHeaders=",
        b"Signature=",
        b" ",
    ];
    fuzz::run("sigv4 header", 4, 20_000, corpus, tokens, |value| {
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            headers.insert(http::header::AUTHORIZATION, v);
            headers.insert("x-amz-date", http::HeaderValue::from_static("20260101T000000Z"));
            let _ = lakebox_protocol::sigv4::read_authorization(&headers, &[]);
        }
    });
}
