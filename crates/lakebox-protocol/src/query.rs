//! awsQuery: `Action=…&Version=…&Name.member.1=…` form bodies in, XML documents out.
//!
//! Lists and maps are flattened into dotted keys whose exact spelling depends on the service
//! model (`Attributes.member.1` for wrapped lists, `Attribute.1` for flattened ones,
//! `Tags.entry.1.key`/`.value` for maps, `Attribute.1.Name`/`.Value` for SQS). [`QueryRequest`]
//! reads every spelling, so a service asks for a member by name and need not care.

use std::collections::BTreeMap;

use lakebox_core::ServiceError;
use percent_encoding::percent_decode;

use crate::xml::{XML_DECLARATION, XmlWriter, escape};

/// A decoded awsQuery request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    pub action: String,
    pub version: Option<String>,
    params: BTreeMap<String, String>,
    /// The URL path the form was posted to: `/` usually; SQS's old SDKs post to the queue's
    /// URL and leave `QueueUrl` out of the form.
    pub path: String,
}

/// Decodes `application/x-www-form-urlencoded` (`+` is a space, `%XX` escapes). Later
/// duplicates win, as AWS's front end does.
pub fn parse_form(body: &[u8]) -> Result<BTreeMap<String, String>, ServiceError> {
    let mut out = BTreeMap::new();
    for pair in body.split(|b| *b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        out.insert(form_decode(k)?, form_decode(v)?);
    }
    Ok(out)
}

fn form_decode(raw: &[u8]) -> Result<String, ServiceError> {
    let plus_as_space: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    percent_decode(&plus_as_space)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ServiceError::client("MalformedQueryString", "Request is not valid UTF-8"))
}

impl QueryRequest {
    /// Builds a request from decoded form parameters; `Action` is required.
    pub fn from_params(mut params: BTreeMap<String, String>) -> Result<Self, ServiceError> {
        let action = params
            .remove("Action")
            .filter(|a| !a.is_empty())
            .ok_or_else(|| ServiceError::client("MissingAction", "Could not find operation to perform"))?;
        let version = params.remove("Version");
        Ok(QueryRequest {
            action,
            version,
            params,
            path: "/".to_owned(),
        })
    }

    /// The request as posted to `path`.
    pub fn at_path(mut self, path: &str) -> Self {
        path.clone_into(&mut self.path);
        self
    }

    /// Sets a parameter the form left out (one the URL carries instead).
    pub fn set_default(&mut self, name: &str, value: impl Into<String>) {
        self.params.entry(name.to_owned()).or_insert_with(|| value.into());
    }

    pub fn parse(body: &[u8]) -> Result<Self, ServiceError> {
        Self::from_params(parse_form(body)?)
    }

    /// Every parameter but `Action` and `Version`, as decoded from the form.
    pub fn params(&self) -> &BTreeMap<String, String> {
        &self.params
    }

    /// A scalar member. `Some("")` when sent empty, `None` when absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A required scalar member, or AWS's `MissingParameter`.
    pub fn required(&self, name: &str) -> Result<&str, ServiceError> {
        self.get(name).ok_or_else(|| {
            ServiceError::client(
                "MissingParameter",
                format!("The request must contain the parameter {name}"),
            )
        })
    }

    /// The prefixes of a list's items in index order, e.g. `Tags.member.1`, `Tags.member.2`.
    /// `None` when the list is absent; `Some(vec![])` when sent as an explicitly empty list
    /// (`Tags=`), which botocore does for `[]`.
    pub fn list_prefixes(&self, name: &str) -> Option<Vec<String>> {
        for wrapper in [format!("{name}.member."), format!("{name}.")] {
            let mut indexes: Vec<u32> = self
                .params
                .range(wrapper.clone()..)
                .take_while(|(k, _)| k.starts_with(&wrapper))
                .filter_map(|(k, _)| k[wrapper.len()..].split('.').next()?.parse().ok())
                .collect();
            if !indexes.is_empty() {
                indexes.sort_unstable();
                indexes.dedup();
                return Some(indexes.into_iter().map(|i| format!("{wrapper}{i}")).collect());
            }
        }
        self.params.contains_key(name).then(Vec::new)
    }

    /// A list of scalars, in index order.
    pub fn list(&self, name: &str) -> Option<Vec<&str>> {
        let prefixes = self.list_prefixes(name)?;
        Some(prefixes.iter().filter_map(|p| self.get(p)).collect())
    }

    /// A map, read from `Name.entry.N.key/value` or the flattened `Name.N.Name/Value` and
    /// `Name.N.Key/Value` spellings.
    pub fn map(&self, name: &str) -> Option<Vec<(&str, &str)>> {
        let (mut entries, mut found) = (Vec::new(), false);
        for wrapper in [format!("{name}.entry"), name.to_owned()] {
            let Some(prefixes) = self.list_prefixes(&wrapper) else {
                continue;
            };
            found = true;
            for p in prefixes {
                let key = ["key", "Key", "Name"]
                    .iter()
                    .find_map(|k| self.get(&format!("{p}.{k}")));
                let value = ["value", "Value"]
                    .iter()
                    .find_map(|k| self.get(&format!("{p}.{k}")));
                if let (Some(k), v) = (key, value) {
                    entries.push((k, v.unwrap_or("")));
                }
            }
            if !entries.is_empty() {
                break;
            }
        }
        found.then_some(entries)
    }
}

/// The success envelope: `<{Action}Response xmlns=…><{Action}Result>…</{Action}Result>
/// <ResponseMetadata><RequestId>…</RequestId></ResponseMetadata></{Action}Response>`.
/// `result` writes the members inside `<{Action}Result>`; `None` leaves the Result element out
/// (operations with no output, as AWS does).
pub fn response_xml(
    action: &str,
    namespace: &str,
    request_id: &str,
    result: Option<&dyn Fn(&mut XmlWriter)>,
) -> String {
    let mut w = XmlWriter::with_declaration();
    let response = format!("{action}Response");
    w.start_with_attrs(&response, &[("xmlns", namespace)]);
    if let Some(write) = result {
        let result_el = format!("{action}Result");
        w.start(&result_el);
        write(&mut w);
        w.end(&result_el);
    }
    w.start("ResponseMetadata")
        .element("RequestId", request_id)
        .end("ResponseMetadata")
        .end(&response);
    w.finish()
}

/// The error document botocore's query parser reads, in the service's namespace when known
/// (AWS writes `<ErrorResponse xmlns="…">`).
pub fn error_xml(err: &ServiceError, request_id: &str, namespace: Option<&str>) -> String {
    let kind = if err.sender_fault { "Sender" } else { "Receiver" };
    let xmlns = namespace.map_or_else(String::new, |ns| format!(" xmlns=\"{}\"", escape(ns)));
    format!(
        "{XML_DECLARATION}<ErrorResponse{xmlns}><Error><Type>{kind}</Type><Code>{}</Code>\
         <Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(&err.code),
        escape(&err.message),
        escape(request_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_form_encoding() {
        let q =
            QueryRequest::parse(b"Action=Publish&Version=2010-03-31&Message=a+b%26c%3D%F0%9F%98%80&Subject=")
                .unwrap();
        assert_eq!(q.action, "Publish");
        assert_eq!(q.version.as_deref(), Some("2010-03-31"));
        assert_eq!(q.get("Message"), Some("a b&c=😀"));
        assert_eq!(q.get("Subject"), Some(""));
        assert_eq!(q.get("TopicArn"), None);
        assert_eq!(q.required("TopicArn").unwrap_err().code, "MissingParameter");
    }

    #[test]
    fn missing_action_and_bad_utf8() {
        assert_eq!(
            QueryRequest::parse(b"Version=1").unwrap_err().code,
            "MissingAction"
        );
        assert_eq!(QueryRequest::parse(b"Action=").unwrap_err().code, "MissingAction");
        assert_eq!(
            QueryRequest::parse(b"Action=X&A=%FF").unwrap_err().code,
            "MalformedQueryString"
        );
    }

    #[test]
    fn lists_in_every_spelling_sorted_numerically() {
        let q = QueryRequest::parse(b"Action=X&A.member.10=j&A.member.2=b&A.member.1=a&B.1=x&B.2=y&Empty=")
            .unwrap();
        assert_eq!(q.list("A").unwrap(), vec!["a", "b", "j"]);
        assert_eq!(q.list("B").unwrap(), vec!["x", "y"]);
        assert_eq!(q.list("Empty").unwrap(), Vec::<&str>::new());
        assert_eq!(q.list("Absent"), None);
    }

    #[test]
    fn lists_of_structures() {
        let q = QueryRequest::parse(
            b"Action=TagResource&Tags.member.1.Key=k1&Tags.member.1.Value=v1&Tags.member.2.Key=k2&Tags.member.2.Value=",
        )
        .unwrap();
        let p = q.list_prefixes("Tags").unwrap();
        assert_eq!(p, vec!["Tags.member.1", "Tags.member.2"]);
        assert_eq!(q.get(&format!("{}.Value", p[1])), Some(""));
    }

    #[test]
    fn maps_in_every_spelling() {
        let q = QueryRequest::parse(
            b"Action=X&Attributes.entry.1.key=Policy&Attributes.entry.1.value=p&Attribute.1.Name=DelaySeconds&Attribute.1.Value=5",
        )
        .unwrap();
        assert_eq!(q.map("Attributes").unwrap(), vec![("Policy", "p")]);
        assert_eq!(q.map("Attribute").unwrap(), vec![("DelaySeconds", "5")]);
        assert_eq!(q.map("Nope"), None);
    }

    #[test]
    fn envelopes() {
        let ok = response_xml(
            "GetCallerIdentity",
            "https://sts.amazonaws.com/doc/2011-06-15/",
            "rid",
            Some(&|w: &mut XmlWriter| {
                w.element("Account", "000000000000");
            }),
        );
        let root = crate::xml::parse(ok.as_bytes()).unwrap();
        assert_eq!(root.name, "GetCallerIdentityResponse");
        assert_eq!(
            root.child("GetCallerIdentityResult")
                .unwrap()
                .child_text("Account"),
            Some("000000000000")
        );
        assert_eq!(
            root.child("ResponseMetadata").unwrap().child_text("RequestId"),
            Some("rid")
        );
        let empty = response_xml("DeleteTopic", "ns", "rid", None);
        assert!(!empty.contains("DeleteTopicResult"));

        let err = error_xml(&ServiceError::client("InvalidAction", "bad <x>"), "rid", None);
        let root = crate::xml::parse(err.as_bytes()).unwrap();
        let e = root.child("Error").unwrap();
        assert_eq!(e.child_text("Type"), Some("Sender"));
        assert_eq!(e.child_text("Code"), Some("InvalidAction"));
        assert_eq!(e.child_text("Message"), Some("bad <x>"));
        let in_ns = error_xml(
            &ServiceError::client("X", "m"),
            "rid",
            Some("https://sts.amazonaws.com/doc/2011-06-15/"),
        );
        assert!(in_ns.contains("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"));
    }
}
