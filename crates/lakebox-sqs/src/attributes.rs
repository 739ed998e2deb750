//! Queue attributes: which exist, their defaults and ranges, and how a request's values are
//! checked and normalised (AWS compares them as given when CreateQueue is repeated).

use std::collections::BTreeMap;

use lakebox_core::ServiceError;
use serde_json::Value;

use crate::errors;

/// The largest message (and batch) SQS accepts, in bytes: 1 MiB since 2025.
pub const MAX_MESSAGE_BYTES: i64 = 1_048_576;

/// An attribute a caller may set, with its default (as GetQueueAttributes reports it when the
/// queue never set it).
struct Settable {
    name: &'static str,
    default: Option<&'static str>,
    check: fn(&str) -> bool,
    fifo_only: bool,
}

fn range(lo: i64, hi: i64) -> impl Fn(&str) -> bool {
    move |v| v.parse::<i64>().is_ok_and(|n| (lo..=hi).contains(&n))
}

fn boolean(v: &str) -> bool {
    v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")
}

fn json_object(v: &str) -> bool {
    serde_json::from_str::<Value>(v).is_ok_and(|j| j.is_object())
}

fn any(_: &str) -> bool {
    true
}

macro_rules! settable {
    ($name:expr, $default:expr, $check:expr) => {
        Settable {
            name: $name,
            default: $default,
            check: $check,
            fifo_only: false,
        }
    };
    ($name:expr, $default:expr, $check:expr, fifo) => {
        Settable {
            name: $name,
            default: $default,
            check: $check,
            fifo_only: true,
        }
    };
}

const SETTABLE: &[Settable] = &[
    settable!("DelaySeconds", Some("0"), |v| range(0, 900)(v)),
    settable!("MaximumMessageSize", Some("1048576"), |v| range(
        1024,
        MAX_MESSAGE_BYTES
    )(v)),
    settable!(
        "MessageRetentionPeriod",
        Some("345600"),
        |v| range(60, 1_209_600)(v)
    ),
    settable!("ReceiveMessageWaitTimeSeconds", Some("0"), |v| range(0, 20)(v)),
    settable!("VisibilityTimeout", Some("30"), |v| range(0, 43_200)(v)),
    settable!("Policy", None, json_object),
    settable!("RedrivePolicy", None, redrive_policy_ok),
    settable!("RedriveAllowPolicy", None, redrive_allow_ok),
    settable!("KmsMasterKeyId", None, any),
    settable!("KmsDataKeyReusePeriodSeconds", None, |v| range(60, 86_400)(v)),
    settable!("SqsManagedSseEnabled", Some("true"), boolean),
    settable!("FifoQueue", None, boolean, fifo),
    settable!("ContentBasedDeduplication", Some("false"), boolean, fifo),
    settable!(
        "DeduplicationScope",
        Some("queue"),
        |v| v == "messageGroup" || v == "queue",
        fifo
    ),
    settable!(
        "FifoThroughputLimit",
        Some("perQueue"),
        |v| v == "perQueue" || v == "perMessageGroupId",
        fifo
    ),
];

/// The attributes SQS computes; asking to set one is `InvalidAttributeName`.
pub const COMPUTED: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

fn redrive_policy_ok(v: &str) -> bool {
    let Ok(Value::Object(o)) = serde_json::from_str::<Value>(v) else {
        return false;
    };
    let arn_ok = o
        .get("deadLetterTargetArn")
        .and_then(Value::as_str)
        .is_some_and(|a| a.starts_with("arn:") && a.split(':').count() == 6);
    let count_ok = o.get("maxReceiveCount").is_some_and(|c| {
        let n = c.as_i64().or_else(|| c.as_str().and_then(|s| s.parse().ok()));
        n.is_some_and(|n| (1..=1000).contains(&n))
    });
    arn_ok && count_ok
}

fn redrive_allow_ok(v: &str) -> bool {
    let Ok(Value::Object(o)) = serde_json::from_str::<Value>(v) else {
        return false;
    };
    match o.get("redrivePermission").and_then(Value::as_str) {
        Some("allowAll") | Some("denyAll") => true,
        Some("byQueue") => o
            .get("sourceQueueArns")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty() && a.len() <= 10),
        _ => false,
    }
}

/// The attributes an empty value removes, as AWS takes it.
pub fn removed_by_empty(name: &str, value: &str) -> bool {
    value.is_empty() && matches!(name, "Policy" | "RedrivePolicy" | "RedriveAllowPolicy")
}

/// Checks attributes a request sets: each must be known, settable and in range.
/// `fifo` is whether the queue is (or is being created as) a FIFO queue.
pub fn check(attributes: &BTreeMap<String, String>, fifo: bool) -> Result<(), ServiceError> {
    for (name, value) in attributes {
        let Some(s) = SETTABLE.iter().find(|s| s.name == name) else {
            return Err(errors::unknown_attribute(name));
        };
        if s.fifo_only && !fifo && !(name == "FifoQueue" && value.eq_ignore_ascii_case("false")) {
            return Err(errors::unknown_attribute(name));
        }
        if !(s.check)(value) && !removed_by_empty(name, value) {
            return Err(errors::invalid_attribute_value(name));
        }
    }
    Ok(())
}

/// A queue's value of a settable attribute, or its default.
pub fn value<'a>(set: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    set.get(name)
        .map(String::as_str)
        .or_else(|| SETTABLE.iter().find(|s| s.name == name).and_then(|s| s.default))
}

/// A numeric attribute's value (they are checked on the way in, so parse failures cannot
/// happen for stored ones; the default covers them anyway).
pub fn number(set: &BTreeMap<String, String>, name: &str) -> i64 {
    value(set, name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Whether a queue of this kind has the attribute (FIFO's only on FIFO queues).
pub fn applies(name: &str, fifo: bool) -> bool {
    fifo || SETTABLE
        .iter()
        .find(|s| s.name == name)
        .is_none_or(|s| !s.fifo_only)
}

/// Every attribute name GetQueueAttributes knows, settable and computed, in AWS's order.
pub fn all_names() -> impl Iterator<Item = &'static str> {
    SETTABLE.iter().map(|s| s.name).chain(COMPUTED.iter().copied())
}

/// Whether GetQueueAttributes may name `name` (a known attribute, or `All`).
pub fn is_known(name: &str) -> bool {
    name == "All" || all_names().any(|n| n == name)
}

/// The redrive policy of a queue: its dead-letter queue's ARN and the receive count that
/// moves a message there.
pub fn redrive(set: &BTreeMap<String, String>) -> Option<(String, u32)> {
    let o: Value = serde_json::from_str(set.get("RedrivePolicy")?).ok()?;
    let arn = o.get("deadLetterTargetArn")?.as_str()?.to_owned();
    let c = o.get("maxReceiveCount")?;
    let n = c.as_i64().or_else(|| c.as_str().and_then(|s| s.parse().ok()))?;
    Some((arn, n as u32))
}

/// What AWS keeps of a set attribute: numbers and booleans as given, JSON policies as given
/// (AWS answers them as sent). A RedrivePolicy's count is normalised to a number, as AWS
/// reports it.
pub fn normalise(name: &str, value: &str) -> String {
    if name == "RedrivePolicy"
        && let Ok(Value::Object(mut o)) = serde_json::from_str::<Value>(value)
    {
        if let Some(n) = o
            .get("maxReceiveCount")
            .and_then(|c| c.as_i64().or_else(|| c.as_str().and_then(|s| s.parse().ok())))
        {
            o.insert("maxReceiveCount".into(), n.into());
        }
        return Value::Object(o).to_string();
    }
    value.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn ranges_names_and_fifo_only_attributes() {
        assert!(check(&attrs(&[("VisibilityTimeout", "43200")]), false).is_ok());
        assert_eq!(
            check(&attrs(&[("VisibilityTimeout", "43201")]), false)
                .unwrap_err()
                .code,
            "InvalidAttributeValue"
        );
        assert_eq!(
            check(&attrs(&[("Bogus", "1")]), false).unwrap_err().code,
            "InvalidAttributeName"
        );
        assert_eq!(
            check(&attrs(&[("ContentBasedDeduplication", "true")]), false)
                .unwrap_err()
                .code,
            "InvalidAttributeName"
        );
        assert!(check(&attrs(&[("ContentBasedDeduplication", "true")]), true).is_ok());
        let policy =
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"3"}"#;
        assert!(check(&attrs(&[("RedrivePolicy", policy)]), false).is_ok());
        assert_eq!(
            redrive(&attrs(&[("RedrivePolicy", &normalise("RedrivePolicy", policy))])),
            Some(("arn:aws:sqs:us-east-1:000000000000:dlq".into(), 3))
        );
        assert_eq!(value(&BTreeMap::new(), "VisibilityTimeout"), Some("30"));
    }
}
