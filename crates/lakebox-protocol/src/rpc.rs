//! awsJson 1.0 / 1.1 and the CBOR encoding of the same RPC shape.
//!
//! Both are "POST / with `X-Amz-Target: <Prefix>.<Operation>`"; only the body encoding differs.
//! Service crates write one serde struct per input and output; [`RpcEncoding::decode`] and
//! [`RpcEncoding::encode`] turn bytes into those structs and back, and [`Timestamp`] and
//! [`Blob`] pick their per-encoding form on their own.
//!
//! [`Timestamp`]: crate::Timestamp
//! [`Blob`]: crate::Blob

use bytes::Bytes;
use lakebox_core::ServiceError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The body encoding of an RPC request, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcEncoding {
    Json10,
    Json11,
    /// `application/x-amz-cbor-1.1`, sent by the Java SDK and KCL to Kinesis.
    Cbor,
    /// Smithy's rpc-v2-cbor (`POST /service/<Service>/operation/<Operation>` with
    /// `smithy-protocol: rpc-v2-cbor`): CBOR with timestamps in epoch seconds, spoken by today's
    /// SDKs to CloudWatch.
    RpcV2Cbor,
}

impl RpcEncoding {
    /// Recognises the content types AWS SDKs send. Plain `application/json` is accepted as
    /// JSON 1.1 because hand-written clients (curl, Postman) often send it.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "application/x-amz-json-1.0" => Some(RpcEncoding::Json10),
            "application/x-amz-json-1.1" | "application/json" => Some(RpcEncoding::Json11),
            "application/x-amz-cbor-1.1" | "application/cbor" => Some(RpcEncoding::Cbor),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            RpcEncoding::Json10 => "application/x-amz-json-1.0",
            RpcEncoding::Json11 => "application/x-amz-json-1.1",
            RpcEncoding::Cbor => "application/x-amz-cbor-1.1",
            RpcEncoding::RpcV2Cbor => "application/cbor",
        }
    }

    /// Decodes an operation's input. An empty body is an empty structure, as AWS reads it.
    /// Unknown members are ignored (clients newer than the model may send them); a body that
    /// is not valid JSON/CBOR, or whose members have the wrong type, is a
    /// `SerializationException`.
    pub fn decode<T: DeserializeOwned>(self, body: &[u8]) -> Result<T, ServiceError> {
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            match self {
                RpcEncoding::Cbor | RpcEncoding::RpcV2Cbor if body.is_empty() => &[0xa0], // empty map
                RpcEncoding::Cbor | RpcEncoding::RpcV2Cbor => body,
                _ => b"{}",
            }
        } else {
            body
        };
        match self {
            RpcEncoding::Json10 | RpcEncoding::Json11 => {
                // serde would read a top-level array as a struct's members by position; AWS
                // refuses anything but an object.
                match body.iter().find(|b| !b.is_ascii_whitespace()) {
                    Some(b'{') => {}
                    Some(b'[') => {
                        return Err(ServiceError::serialization(
                            "Start of list found where not expected",
                        ));
                    }
                    _ => return Err(ServiceError::serialization("")),
                }
                serde_json::from_slice(body).map_err(|e| ServiceError::serialization(json_error_message(&e)))
            }
            RpcEncoding::Cbor => ciborium::from_reader(body)
                .map_err(|e| ServiceError::serialization(format!("Could not parse CBOR body: {e}"))),
            RpcEncoding::RpcV2Cbor => crate::types::with_cbor_seconds(|| ciborium::from_reader(body))
                .map_err(|e| ServiceError::serialization(format!("Could not parse CBOR body: {e}"))),
        }
    }

    /// Decodes an input already gathered as JSON (restJson's bound members), with the same
    /// messages as [`RpcEncoding::decode`] for a member of the wrong type.
    pub fn decode_json_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ServiceError> {
        serde_json::from_value(value).map_err(|e| ServiceError::serialization(json_error_message(&e)))
    }

    /// Encodes an operation's output.
    pub fn encode<T: Serialize>(self, value: &T) -> Result<Bytes, ServiceError> {
        match self {
            RpcEncoding::Json10 | RpcEncoding::Json11 => serde_json::to_vec(value)
                .map(Bytes::from)
                .map_err(|e| ServiceError::internal(format!("could not encode response: {e}"))),
            RpcEncoding::Cbor | RpcEncoding::RpcV2Cbor => {
                let mut buf = Vec::with_capacity(256);
                let written = match self {
                    RpcEncoding::RpcV2Cbor => {
                        crate::types::with_cbor_seconds(|| ciborium::into_writer(value, &mut buf))
                    }
                    _ => ciborium::into_writer(value, &mut buf),
                };
                written.map_err(|e| ServiceError::internal(format!("could not encode response: {e}")))?;
                Ok(Bytes::from(buf))
            }
        }
    }

    /// The error body: `{"__type": "<Code>", "message": "<text>"}` (botocore reads the code from
    /// `__type`, also when it is prefixed with a `namespace#`), plus the error's modelled members
    /// (Athena's `AthenaErrorCode`, …), which botocore reads into the error response.
    pub fn encode_error(self, err: &ServiceError) -> Bytes {
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            #[serde(rename = "__type")]
            kind: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            message: &'a str,
            #[serde(flatten)]
            extra: std::collections::BTreeMap<&'a str, serde_json::Value>,
        }
        let mut extra: std::collections::BTreeMap<&str, serde_json::Value> = err
            .extra
            .iter()
            .map(|(k, v)| (*k, serde_json::Value::String(v.clone())))
            .collect();
        for (k, json) in err.extra_json.iter().flat_map(|v| v.iter()) {
            if let Ok(v) = serde_json::from_str(json) {
                extra.insert(*k, v);
            }
        }
        let body = ErrorBody {
            kind: &err.code,
            message: &err.message,
            extra,
        };
        // Encoding two strings cannot fail; fall back to an empty body rather than panic.
        self.encode(&body).unwrap_or_default()
    }
}

/// The message AWS's JSON services give for a body that does not decode (measured against
/// AWS): none for text that is not JSON, and for a member of the wrong type the Coral parser's
/// words — `STRING_VALUE can not be converted to an Integer`, `Start of list found where not
/// expected`, `Expected list or null`.
fn json_error_message(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => String::new(),
        Category::Data => mistyped(&e.to_string()).unwrap_or_else(|| {
            // Our own types' messages (a Blob that is not base64, …) say what is wrong.
            let text = e.to_string();
            match text.rfind(" at line ") {
                Some(i) => text[..i].to_owned(),
                None => text,
            }
        }),
    }
}

/// serde's `invalid type: <found>, expected <wanted> at line L column C` in Coral's words.
fn mistyped(serde_message: &str) -> Option<String> {
    // A list given for a structure reaches serde as a struct read by position.
    if serde_message.starts_with("invalid length ") && serde_message.contains(", expected struct ") {
        return Some("Start of list found where not expected".into());
    }
    let rest = serde_message.strip_prefix("invalid type: ")?;
    let rest = rest.rfind(" at line ").map_or(rest, |i| &rest[..i]);
    let (found, wanted) = rest.split_once(", expected ")?;
    if found.starts_with("sequence") {
        return Some("Start of list found where not expected".into());
    }
    if found.starts_with("map") {
        return Some("Start of structure or map found where not expected.".into());
    }
    if wanted.starts_with("a sequence") {
        return Some("Expected list or null".into());
    }
    if wanted.starts_with("struct ") || wanted.starts_with("a map") {
        return Some("Expected null".into());
    }
    let found = match found {
        f if f.starts_with("string") => "STRING_VALUE",
        f if f.starts_with("integer") || f.starts_with("floating point") => "NUMBER_VALUE",
        "boolean `true`" => "TRUE_VALUE",
        "boolean `false`" => "FALSE_VALUE",
        _ => return None,
    };
    let wanted = match wanted {
        "i8" | "i16" | "i32" | "u8" | "u16" | "u32" => "an Integer",
        "i64" | "u64" | "i128" | "u128" => "a Long",
        "f32" => "a Float",
        "f64" => "a Double",
        "a boolean" => "a Boolean",
        w if w.contains("string") => "a String",
        w if w.contains("timestamp") => "a Timestamp",
        w if w.contains("base64") || w.contains("blob") => "a Blob",
        _ => return None,
    };
    Some(format!("{found} can not be converted to {wanted}"))
}

#[cfg(test)]
mod tests {

    #[test]
    fn rpc_v2_cbor_timestamps_count_seconds_where_aws_cbor_counts_milliseconds() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T {
            at: crate::Timestamp,
        }
        let t = T {
            at: crate::Timestamp::from_millis(1_700_000_000_500),
        };
        let v2 = RpcEncoding::RpcV2Cbor.encode(&t).unwrap();
        let value: ciborium::Value = ciborium::from_reader(&v2[..]).unwrap();
        let at = &value.as_map().unwrap()[0].1;
        assert_eq!(
            at,
            &ciborium::Value::Tag(1, Box::new(ciborium::Value::Float(1_700_000_000.5)))
        );
        assert_eq!(RpcEncoding::RpcV2Cbor.decode::<T>(&v2).unwrap(), t);
        let old = RpcEncoding::Cbor.encode(&t).unwrap();
        let value: ciborium::Value = ciborium::from_reader(&old[..]).unwrap();
        let at = &value.as_map().unwrap()[0].1;
        assert_eq!(
            at,
            &ciborium::Value::Tag(1, Box::new(ciborium::Value::Integer(1_700_000_000_500i64.into())))
        );
        assert_eq!(RpcEncoding::Cbor.decode::<T>(&old).unwrap(), t);
        // Whole seconds travel as integers, as the SDKs send them.
        let mut whole = Vec::new();
        ciborium::into_writer(
            &ciborium::Value::Map(vec![(
                ciborium::Value::Text("at".into()),
                ciborium::Value::Tag(1, Box::new(ciborium::Value::Integer(1_700_000_000i64.into()))),
            )]),
            &mut whole,
        )
        .unwrap();
        assert_eq!(
            RpcEncoding::RpcV2Cbor.decode::<T>(&whole).unwrap().at.as_millis(),
            1_700_000_000_000
        );
    }

    use super::*;
    use crate::{Blob, Timestamp};
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Serialize, PartialEq, Default)]
    #[serde(rename_all = "PascalCase")]
    struct PutRecord {
        stream_name: String,
        data: Blob,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        explicit_hash_key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tags: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<Timestamp>,
    }

    #[test]
    fn content_types() {
        assert_eq!(
            RpcEncoding::from_content_type("application/x-amz-json-1.1; charset=utf-8"),
            Some(RpcEncoding::Json11)
        );
        assert_eq!(
            RpcEncoding::from_content_type("application/x-amz-json-1.0"),
            Some(RpcEncoding::Json10)
        );
        assert_eq!(
            RpcEncoding::from_content_type("application/x-amz-cbor-1.1"),
            Some(RpcEncoding::Cbor)
        );
        assert_eq!(RpcEncoding::from_content_type("text/plain"), None);
    }

    #[test]
    fn empty_versus_absent_members() {
        let absent: PutRecord = RpcEncoding::Json11
            .decode(br#"{"StreamName":"s","Data":""}"#)
            .unwrap();
        assert_eq!(absent.explicit_hash_key, None);
        assert_eq!(absent.tags, None);
        assert_eq!(absent.data, Blob::default());
        let empty: PutRecord = RpcEncoding::Json11
            .decode(br#"{"StreamName":"","Data":"","ExplicitHashKey":"","Tags":[]}"#)
            .unwrap();
        assert_eq!(empty.explicit_hash_key.as_deref(), Some(""));
        assert_eq!(empty.tags, Some(vec![]));
        // Absent stays absent on the way out; empty stays empty.
        let out = RpcEncoding::Json11.encode(&absent).unwrap();
        assert_eq!(&out[..], br#"{"StreamName":"s","Data":""}"#);
        let out = RpcEncoding::Json11.encode(&empty).unwrap();
        assert!(std::str::from_utf8(&out).unwrap().contains(r#""Tags":[]"#));
    }

    #[test]
    fn empty_body_is_empty_structure() {
        #[derive(Deserialize)]
        struct ListStreams {
            #[serde(rename = "Limit")]
            limit: Option<u32>,
        }
        let v: ListStreams = RpcEncoding::Json11.decode(b"").unwrap();
        assert_eq!(v.limit, None);
        let v: ListStreams = RpcEncoding::Cbor.decode(b"").unwrap();
        assert_eq!(v.limit, None);
    }

    #[test]
    fn malformed_and_mistyped_bodies_are_serialization_errors() {
        let e = RpcEncoding::Json11
            .decode::<PutRecord>(b"{\"StreamName\":")
            .unwrap_err();
        assert_eq!(e.code, "SerializationException");
        assert_eq!(e.status, 400);
        let e = RpcEncoding::Json11
            .decode::<PutRecord>(br#"{"StreamName":5,"Data":""}"#)
            .unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let e = RpcEncoding::Cbor.decode::<PutRecord>(&[0xff, 0x00]).unwrap_err();
        assert_eq!(e.code, "SerializationException");
    }

    #[test]
    fn serialization_errors_say_what_aws_says() {
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "PascalCase")]
        #[allow(dead_code)]
        struct Inner {
            a: Option<i32>,
        }
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "PascalCase")]
        #[allow(dead_code)]
        struct Input {
            max_results: Option<i32>,
            next_token: Option<String>,
            params: Option<Vec<String>>,
            config: Option<Inner>,
            big: Option<i64>,
        }
        let message = |body: &str| {
            RpcEncoding::Json11
                .decode::<Input>(body.as_bytes())
                .unwrap_err()
                .message
        };
        assert_eq!(
            message(r#"{"MaxResults": "1"}"#),
            "STRING_VALUE can not be converted to an Integer"
        );
        assert_eq!(
            message(r#"{"MaxResults": true}"#),
            "TRUE_VALUE can not be converted to an Integer"
        );
        assert_eq!(
            message(r#"{"MaxResults": [1]}"#),
            "Start of list found where not expected"
        );
        assert_eq!(
            message(r#"{"MaxResults": {"a": 1}}"#),
            "Start of structure or map found where not expected."
        );
        assert_eq!(
            message(r#"{"NextToken": 1}"#),
            "NUMBER_VALUE can not be converted to a String"
        );
        assert_eq!(message(r#"{"Params": "x"}"#), "Expected list or null");
        assert_eq!(
            message(r#"{"Params": [1]}"#),
            "NUMBER_VALUE can not be converted to a String"
        );
        assert_eq!(message(r#"{"Config": "x"}"#), "Expected null");
        assert_eq!(
            message(r#"{"Big": "x"}"#),
            "STRING_VALUE can not be converted to a Long"
        );
        assert_eq!(message("[]"), "Start of list found where not expected");
        for not_json in ["{", "null", "\"x\"", r#"{"MaxResults": 1,}"#] {
            let e = RpcEncoding::Json11
                .decode::<Input>(not_json.as_bytes())
                .unwrap_err();
            assert_eq!(e.code, "SerializationException", "{not_json}");
            assert_eq!(e.message, "", "{not_json}");
        }
    }

    #[test]
    fn cbor_round_trip_uses_byte_strings() {
        let rec = PutRecord {
            stream_name: "s".into(),
            data: Blob(vec![0, 1, 2, 255]),
            at: Some(Timestamp::from_millis(1_700_000_000_123)),
            ..Default::default()
        };
        let bytes = RpcEncoding::Cbor.encode(&rec).unwrap();
        assert!(bytes.windows(5).any(|w| w == [0x44, 0, 1, 2, 255]));
        let back: PutRecord = RpcEncoding::Cbor.decode(&bytes).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn error_bodies() {
        let err = ServiceError::client("ResourceNotFoundException", "Stream s not found");
        let json = RpcEncoding::Json11.encode_error(&err);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["__type"], "ResourceNotFoundException");
        assert_eq!(v["message"], "Stream s not found");
        let athena = ServiceError::client("InvalidRequestException", "bad")
            .with_extra("AthenaErrorCode", "INVALID_INPUT");
        let v: serde_json::Value =
            serde_json::from_slice(&RpcEncoding::Json11.encode_error(&athena)).unwrap();
        assert_eq!(v["AthenaErrorCode"], "INVALID_INPUT");
        let cbor = RpcEncoding::Cbor.encode_error(&err);
        let v: std::collections::BTreeMap<String, String> = ciborium::from_reader(&cbor[..]).unwrap();
        assert_eq!(v["__type"], "ResourceNotFoundException");
    }
}
