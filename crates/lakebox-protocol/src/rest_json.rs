//! restJson1: the operation named by the method and a URI template, its input members bound to
//! path labels, query parameters, headers and the JSON body (or a raw payload), its output to
//! the status code, headers and body.
//!
//! The generated dispatchers (scripts/codegen) call these pieces: [`route`] picks the operation,
//! [`Input`] gathers the bound members into the JSON object the model's `…Raw` shape decodes
//! from (so one set of shapes and one validation serve every protocol), and [`body_without`]
//! writes an output's body without the members bound elsewhere.

use bytes::Bytes;
use lakebox_core::ServiceError;
use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Timestamp;

/// One operation's place in the URL space: `path` is the model's `requestUri` (labels in
/// braces, `{Name+}` for a greedy one; a `?name=value` literal the query must carry).
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub operation: &'static str,
}

/// The path labels a matched route bound, by label name.
pub type Labels = Vec<(&'static str, String)>;

/// Splits a raw query string into decoded pairs (`+` is a space), in order, duplicates kept.
pub fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

/// The operation whose method and URI template match, and its labels (percent-decoded). Where
/// two match, the one with more literal text wins (`/functions/{F}/policy` over a greedy
/// label), as the model's templates are written to be told apart that way.
pub fn route(
    routes: &'static [Route],
    method: &str,
    path: &str,
    query: &[(String, String)],
) -> Option<(&'static Route, Labels)> {
    let mut best: Option<(usize, &'static Route, Labels)> = None;
    for r in routes.iter().filter(|r| r.method == method) {
        if let Some(labels) = match_template(r.path, path, query) {
            let literal = r.path.len() - labels.iter().map(|(n, _)| n.len() + 2).sum::<usize>();
            if best.as_ref().is_none_or(|(l, _, _)| literal > *l) {
                best = Some((literal, r, labels));
            }
        }
    }
    best.map(|(_, r, labels)| (r, labels))
}

fn match_template(template: &'static str, path: &str, query: &[(String, String)]) -> Option<Labels> {
    let (tpath, tquery) = template.split_once('?').unwrap_or((template, ""));
    // The literal query the template names (`?find=LayerVersion`, `?List=ALL`) must be there.
    for lit in tquery.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = lit.split_once('=').unwrap_or((lit, ""));
        if !query.iter().any(|(qk, qv)| qk == k && (v.is_empty() || qv == v)) {
            return None;
        }
    }
    let mut labels = Vec::new();
    let mut rest = path.strip_prefix('/')?;
    let segments: Vec<&'static str> = tpath.trim_start_matches('/').split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if let Some(greedy) = name.strip_suffix('+') {
                // A greedy label takes the rest, less what the template's later segments need.
                let tail = segments[i + 1..].join("/");
                let value = if tail.is_empty() {
                    rest
                } else {
                    rest.strip_suffix(&format!("/{tail}"))?
                };
                if value.is_empty() {
                    return None;
                }
                labels.push((greedy, decode(value)?));
                return Some(labels);
            }
            let (value, after) = rest.split_once('/').unwrap_or((rest, ""));
            if value.is_empty() {
                return None;
            }
            labels.push((name, decode(value)?));
            rest = after;
        } else {
            let (value, after) = rest.split_once('/').unwrap_or((rest, ""));
            if value != *seg {
                return None;
            }
            rest = after;
        }
    }
    rest.is_empty().then_some(labels)
}

fn decode(s: &str) -> Option<String> {
    percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

/// How a bound member's text becomes the JSON value its shape decodes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    String,
    Integer,
    Boolean,
    Double,
    /// ISO 8601 in a query string or path, an HTTP date in a header (the protocol's defaults).
    Timestamp,
    /// A header holding base64 JSON (`jsonvalue` trait).
    JsonValue,
}

/// The members of an operation's input, gathered from where the model binds them.
pub struct Input {
    members: Map<String, Value>,
}

impl Input {
    /// Starts from the JSON body (an empty body is an empty object), for inputs whose
    /// unbound members travel in it.
    pub fn from_body(body: &[u8]) -> Result<Self, ServiceError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::empty());
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(members)) => Ok(Input { members }),
            _ => Err(ServiceError::serialization("")),
        }
    }

    /// An input with nothing in its body (its payload is raw, or it has no body members).
    pub fn empty() -> Self {
        Input { members: Map::new() }
    }

    /// Binds `member` to `text` read as `kind`; text that is not of that kind is AWS's
    /// SerializationException, naming the member.
    pub fn set(&mut self, member: &str, text: Option<&str>, kind: Scalar) -> Result<(), ServiceError> {
        if let Some(text) = text {
            let value = scalar(member, text, kind)?;
            self.members.insert(member.to_owned(), value);
        }
        Ok(())
    }

    /// Binds a list member to every value given (repeated query parameters; a header's
    /// comma-separated items).
    pub fn set_list<'a>(
        &mut self,
        member: &str,
        texts: impl IntoIterator<Item = &'a str>,
        kind: Scalar,
    ) -> Result<(), ServiceError> {
        let values: Vec<Value> = texts
            .into_iter()
            .map(|t| scalar(member, t, kind))
            .collect::<Result<_, _>>()?;
        if !values.is_empty() {
            self.members.insert(member.to_owned(), Value::Array(values));
        }
        Ok(())
    }

    /// Binds a map member (prefixed headers, or the query parameters no other member takes).
    pub fn set_map<'a>(&mut self, member: &str, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let map: Map<String, Value> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect();
        if !map.is_empty() {
            self.members.insert(member.to_owned(), Value::Object(map));
        }
    }

    /// Binds a structure payload: the whole body is that member's JSON.
    pub fn set_payload_json(&mut self, member: &str, body: &[u8]) -> Result<(), ServiceError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let value: Value = serde_json::from_slice(body).map_err(|_| ServiceError::serialization(""))?;
        self.members.insert(member.to_owned(), value);
        Ok(())
    }

    /// Decodes the gathered members into the input's `…Raw` shape, in the JSON codec's words
    /// for a member of the wrong type.
    pub fn decode<T: DeserializeOwned>(self) -> Result<T, ServiceError> {
        crate::rpc::RpcEncoding::decode_json_value(Value::Object(self.members))
    }
}

fn scalar(member: &str, text: &str, kind: Scalar) -> Result<Value, ServiceError> {
    let bad = || {
        ServiceError::serialization(format!(
            "The value '{text}' of {member} cannot be read as {kind:?}."
        ))
    };
    Ok(match kind {
        Scalar::String => Value::String(text.to_owned()),
        Scalar::Integer => Value::from(text.trim().parse::<i64>().map_err(|_| bad())?),
        Scalar::Double => serde_json::Number::from_f64(text.trim().parse::<f64>().map_err(|_| bad())?)
            .map(Value::Number)
            .ok_or_else(bad)?,
        Scalar::Boolean => match text.trim() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad()),
        },
        Scalar::Timestamp => {
            let t = Timestamp::parse_iso8601(text)
                .or_else(|| Timestamp::parse_http_date(text))
                .or_else(|| {
                    text.parse::<f64>()
                        .ok()
                        .and_then(Timestamp::from_epoch_seconds_f64)
                })
                .ok_or_else(bad)?;
            serde_json::Number::from_f64(t.as_epoch_seconds_f64())
                .map(Value::Number)
                .ok_or_else(bad)?
        }
        Scalar::JsonValue => {
            let raw = crate::Blob::from_base64(text).ok_or_else(bad)?;
            serde_json::from_slice(&raw.0).map_err(|_| bad())?
        }
    })
}

/// A bound output member's text in a header.
pub trait HeaderText {
    fn header_text(&self) -> String;
}

impl HeaderText for String {
    fn header_text(&self) -> String {
        self.clone()
    }
}

macro_rules! header_text_display {
    ($($t:ty),*) => {$(
        impl HeaderText for $t {
            fn header_text(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
header_text_display!(i32, i64, bool, f32, f64);

impl HeaderText for Timestamp {
    fn header_text(&self) -> String {
        self.to_http_date()
    }
}

impl HeaderText for serde_json::Value {
    fn header_text(&self) -> String {
        crate::Blob(self.to_string().into_bytes()).to_base64()
    }
}

/// An output's JSON body without the members bound to the status line and headers.
pub fn body_without<T: Serialize>(output: &T, bound: &[&str]) -> Result<Bytes, ServiceError> {
    let mut value = serde_json::to_value(output)
        .map_err(|e| ServiceError::internal(format!("encoding the response: {e}")))?;
    if let Value::Object(m) = &mut value {
        for name in bound {
            m.remove(*name);
        }
    }
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|e| ServiceError::internal(format!("encoding the response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    static ROUTES: &[Route] = &[
        Route {
            method: "GET",
            path: "/2015-03-31/functions/{FunctionName}",
            operation: "GetFunction",
        },
        Route {
            method: "GET",
            path: "/2015-03-31/functions/{FunctionName}/policy",
            operation: "GetPolicy",
        },
        Route {
            method: "GET",
            path: "/2015-03-31/functions",
            operation: "ListFunctions",
        },
        Route {
            method: "GET",
            path: "/2018-10-31/layers",
            operation: "ListLayers",
        },
        Route {
            method: "GET",
            path: "/2018-10-31/layers?find=LayerVersion",
            operation: "GetLayerVersionByArn",
        },
        Route {
            method: "GET",
            path: "/2017-03-31/tags/{Resource}",
            operation: "ListTags",
        },
        Route {
            method: "GET",
            path: "/objects/{Key+}/meta",
            operation: "Greedy",
        },
    ];

    fn op(method: &str, path: &str, query: &[(&str, &str)]) -> Option<(&'static str, Labels)> {
        let q: Vec<(String, String)> = query.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        route(ROUTES, method, path, &q).map(|(r, l)| (r.operation, l))
    }

    #[test]
    fn routes_by_method_template_and_literal_query() {
        assert_eq!(
            op("GET", "/2015-03-31/functions", &[]).unwrap().0,
            "ListFunctions"
        );
        let (name, labels) = op("GET", "/2015-03-31/functions/my-fn", &[]).unwrap();
        assert_eq!(
            (name, labels),
            ("GetFunction", vec![("FunctionName", "my-fn".to_owned())])
        );
        assert_eq!(
            op("GET", "/2015-03-31/functions/f/policy", &[]).unwrap().0,
            "GetPolicy"
        );
        assert!(op("POST", "/2015-03-31/functions/f/policy", &[]).is_none());
        assert!(op("GET", "/2015-03-31/functions/f/policy/x", &[]).is_none());
        assert_eq!(op("GET", "/2018-10-31/layers", &[]).unwrap().0, "ListLayers");
        assert_eq!(
            op("GET", "/2018-10-31/layers", &[("find", "LayerVersion")])
                .unwrap()
                .0,
            "GetLayerVersionByArn"
        );
        // An ARN label arrives percent-encoded.
        let (_, labels) = op(
            "GET",
            "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af",
            &[],
        )
        .unwrap();
        assert_eq!(labels[0].1, "arn:aws:lambda:us-east-1:1:function:f");
        let (_, labels) = op("GET", "/objects/a/b/c/meta", &[]).unwrap();
        assert_eq!(labels[0], ("Key", "a/b/c".to_owned()));
    }

    #[test]
    fn bound_members_take_their_types() {
        let mut input = Input::from_body(br#"{"Body":1}"#).unwrap();
        input.set("MaxItems", Some("50"), Scalar::Integer).unwrap();
        input.set("Flag", Some("true"), Scalar::Boolean).unwrap();
        input.set("Absent", None, Scalar::String).unwrap();
        input.set_list("Keys", ["a", "b"], Scalar::String).unwrap();
        let v: Value = input.decode().unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Body": 1, "MaxItems": 50, "Flag": true, "Keys": ["a", "b"]})
        );
        let mut input = Input::empty();
        let err = input.set("MaxItems", Some("ten"), Scalar::Integer).unwrap_err();
        assert_eq!(err.code, "SerializationException");
        assert!(Input::from_body(b"[1]").is_err());
    }

    #[test]
    fn bound_output_members_leave_the_body() {
        #[derive(Serialize)]
        struct Out {
            #[serde(rename = "StatusCode")]
            status: i32,
            #[serde(rename = "Name")]
            name: &'static str,
        }
        let b = body_without(
            &Out {
                status: 201,
                name: "x",
            },
            &["StatusCode"],
        )
        .unwrap();
        assert_eq!(&b[..], br#"{"Name":"x"}"#);
    }
}
