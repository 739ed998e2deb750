//! The one error type every service returns; each protocol codec renders it in its own shape.

use std::borrow::Cow;
use std::fmt;

/// What a write refused for a full disk says.
pub const DISK_FULL_MESSAGE: &str = "Lakebox cannot store more data: the disk holding its data directory is full. \
     Delete data or free space; writes resume without a restart.";

/// An AWS error: the code clients switch on, a message for humans, and the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The AWS error code, e.g. `ResourceNotFoundException` or `NoSuchBucket`.
    pub code: Cow<'static, str>,
    pub message: String,
    pub status: u16,
    /// Query protocol's `<Type>`: `Sender` for client faults, `Receiver` for server faults.
    pub sender_fault: bool,
    /// Extra top-level fields some errors carry (S3's `<BucketName>`, `<Key>`, …).
    pub extra: Vec<(&'static str, String)>,
    /// Extra top-level fields whose value is structured, as JSON text (DynamoDB's `Item` on
    /// a failed condition, `CancellationReasons` on a cancelled transaction). Boxed: rare, and
    /// every `Result` carrying this error pays for its size.
    pub extra_json: Option<Box<Vec<(&'static str, String)>>>,
    /// Response headers some errors carry (S3's `x-amz-delete-marker` on a deleted key, …).
    pub headers: Vec<(&'static str, String)>,
}

impl ServiceError {
    pub fn new(code: impl Into<Cow<'static, str>>, status: u16, message: impl Into<String>) -> Self {
        ServiceError {
            code: code.into(),
            message: message.into(),
            status,
            sender_fault: status < 500,
            extra: Vec::new(),
            extra_json: None,
            headers: Vec::new(),
        }
    }

    /// A 400 client error.
    pub fn client(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(code, 400, message)
    }

    pub fn with_extra(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }

    /// A structured extra field; `json` must be valid JSON text.
    pub fn with_json_extra(mut self, name: &'static str, json: impl Into<String>) -> Self {
        self.extra_json.get_or_insert_default().push((name, json.into()));
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A 500 with AWS's generic code; the message never leaks internals beyond what is given.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalFailure", 500, message)
    }

    /// A write refused because the disk holding the data directory is full: 503
    /// `ServiceUnavailable` (AWS's common error for a temporary failure), so SDKs retry, and
    /// a message that says what to do.
    pub fn disk_full() -> Self {
        Self::new("ServiceUnavailable", 503, DISK_FULL_MESSAGE)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::client("ValidationException", message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::client("SerializationException", message)
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for ServiceError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_follows_status() {
        assert!(ServiceError::client("X", "m").sender_fault);
        assert!(!ServiceError::internal("m").sender_fault);
        let e = ServiceError::client("NoSuchKey", "gone").with_extra("Key", "a/b");
        assert_eq!(e.extra, vec![("Key", "a/b".to_owned())]);
        assert_eq!(e.to_string(), "NoSuchKey (400): gone");
    }
}
