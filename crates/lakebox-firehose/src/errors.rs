//! Firehose's error codes.

use lakebox_core::ServiceError;

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

pub fn internal(e: impl std::fmt::Display + 'static) -> ServiceError {
    if lakebox_store::space::is_full_error(&e) {
        // Firehose models its own code for "unavailable, retry".
        let mut e = ServiceError::disk_full();
        e.code = "ServiceUnavailableException".into();
        return e;
    }
    ServiceError::new("ServiceUnavailableException", 500, e.to_string())
}
