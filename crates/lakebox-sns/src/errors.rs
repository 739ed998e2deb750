//! SNS's errors, with its awsQuery codes and the messages AWS gives.

use lakebox_core::ServiceError;
use lakebox_store::StoreError;

/// `InvalidParameter` with SNS's "Invalid parameter: …" wording.
pub fn invalid_parameter(what: impl std::fmt::Display) -> ServiceError {
    ServiceError::client("InvalidParameter", format!("Invalid parameter: {what}"))
}

/// `InvalidParameter` for a parameter and why: "Invalid parameter: X Reason: …".
pub fn invalid_because(parameter: &str, reason: impl std::fmt::Display) -> ServiceError {
    invalid_parameter(format!("{parameter} Reason: {reason}"))
}

pub fn topic_not_found() -> ServiceError {
    ServiceError::new("NotFound", 404, "Topic does not exist")
}

pub fn subscription_not_found() -> ServiceError {
    ServiceError::new("NotFound", 404, "Subscription does not exist")
}

pub fn resource_not_found() -> ServiceError {
    ServiceError::new("ResourceNotFound", 404, "Resource does not exist")
}

/// A store failure: a full disk answers as every service answers it.
pub fn store(e: StoreError) -> ServiceError {
    if e.is_full() {
        ServiceError::disk_full()
    } else {
        ServiceError::internal(e.to_string())
    }
}
