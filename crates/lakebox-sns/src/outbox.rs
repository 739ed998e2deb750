//! The outbox: every published message (and every confirmation request) is appended to one
//! group-committed log before the request is answered; the delivery task reads it from its
//! checkpoint. So an acknowledged Publish is delivered at least once, also across a crash.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Outgoing {
    Publish(Box<Published>),
    /// A SubscriptionConfirmation for a pending HTTP/S or email subscription.
    Confirm {
        subscription_arn: String,
    },
}

/// One message published to a topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Published {
    pub topic_arn: String,
    pub message_id: String,
    pub message: String,
    pub subject: Option<String>,
    /// `MessageStructure=json`: `message` holds one message per protocol.
    pub per_protocol: bool,
    pub attributes: Vec<Attribute>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub sequence_number: Option<String>,
    pub timestamp_millis: i64,
    /// Where the publisher reached Lakebox: the envelope's links point there.
    pub base_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    pub data_type: String,
    pub text: Option<String>,
    pub binary: Option<Vec<u8>>,
}

impl Published {
    /// The message a subscriber of `protocol` receives: with MessageStructure=json, its own
    /// entry or `default`.
    pub fn message_for(&self, protocol: &str) -> String {
        if !self.per_protocol {
            return self.message.clone();
        }
        let parsed: serde_json::Value = serde_json::from_str(&self.message).unwrap_or_default();
        parsed
            .get(protocol)
            .or_else(|| parsed.get("default"))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    }
}

impl Outgoing {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = ciborium::into_writer(self, &mut out);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Outgoing> {
        ciborium::from_reader(bytes).ok()
    }
}
