//! Kinesis error codes and messages.

use lakebox_core::ServiceError;
use lakebox_service::validate::single_failure_message;

pub fn stream_not_found(name: &str, account: &str) -> ServiceError {
    ServiceError::client(
        "ResourceNotFoundException",
        format!("Stream {name} under account {account} not found."),
    )
}

pub fn stream_in_use(name: &str, account: &str) -> ServiceError {
    ServiceError::client(
        "ResourceInUseException",
        format!("Stream {name} under account {account} already exists."),
    )
}

/// A storage failure: AWS's 500 `InternalFailure`, or 503 `ServiceUnavailable` while the disk is
/// full.
pub fn internal(e: impl std::fmt::Display + 'static) -> ServiceError {
    if lakebox_store::space::is_full_error(&e) {
        return ServiceError::disk_full();
    }
    tracing::error!(error = %e, "Kinesis storage failure");
    ServiceError::new("InternalFailure", 500, format!("storage failure: {e}"))
}

pub fn invalid_argument(message: impl Into<String>) -> ServiceError {
    ServiceError::client("InvalidArgumentException", message)
}

pub fn validation(field: &str, constraint: &str, value: impl std::fmt::Display) -> ServiceError {
    ServiceError::validation(single_failure_message(field, value, constraint))
}

pub fn shard_not_found(shard: &str, stream: &str, account: &str) -> ServiceError {
    ServiceError::client(
        "ResourceNotFoundException",
        format!("Shard {shard} in stream {stream} under account {account} does not exist"),
    )
}

pub fn throughput_exceeded(shard: &str, stream: &str, account: &str) -> ServiceError {
    ServiceError::client(
        "ProvisionedThroughputExceededException",
        format!("Rate exceeded for shard {shard} in stream {stream} under account {account}."),
    )
}

pub fn limit_exceeded(message: impl Into<String>) -> ServiceError {
    ServiceError::client("LimitExceededException", message)
}
