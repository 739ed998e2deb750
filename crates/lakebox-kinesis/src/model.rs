//! What the handlers share beyond the generated shapes ([`crate::api`]): the two ways an
//! operation names its stream or its consumer.

pub use crate::api::*;

/// An operation's stream, by `StreamName` or `StreamARN`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StreamRef<'a> {
    pub stream_name: Option<&'a str>,
    pub stream_arn: Option<&'a str>,
}

impl<'a> StreamRef<'a> {
    pub fn new(stream_name: &'a Option<String>, stream_arn: &'a Option<String>) -> Self {
        StreamRef {
            stream_name: stream_name.as_deref(),
            stream_arn: stream_arn.as_deref(),
        }
    }

    /// A stream named by ARN alone.
    pub fn by_arn(arn: &'a str) -> Self {
        StreamRef {
            stream_name: None,
            stream_arn: Some(arn),
        }
    }
}

/// A consumer, by `ConsumerARN` or by `StreamARN` and `ConsumerName`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConsumerRef<'a> {
    pub stream_arn: Option<&'a str>,
    pub consumer_name: Option<&'a str>,
    pub consumer_arn: Option<&'a str>,
}
