//! Firehose's error codes.

use lakebox_core::ServiceError;
use lakebox_service::validate::single_failure_message;

pub fn invalid_argument(message: impl Into<String>) -> ServiceError {
    ServiceError::client("InvalidArgumentException", message)
}

pub fn not_found(name: &str, account: &str) -> ServiceError {
    ServiceError::client(
        "ResourceNotFoundException",
        format!("Firehose {name} under account {account} not found."),
    )
}

pub fn in_use(message: impl Into<String>) -> ServiceError {
    ServiceError::client("ResourceInUseException", message)
}

pub fn validation(field: &str, constraint: &str, value: impl std::fmt::Display) -> ServiceError {
    ServiceError::validation(single_failure_message(field, value, constraint))
}

pub fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::new("ServiceUnavailableException", 500, e.to_string())
}
