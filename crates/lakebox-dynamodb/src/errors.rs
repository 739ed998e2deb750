//! DynamoDB's errors and messages.

use lakebox_core::ServiceError;
use lakebox_store::StoreError;

pub fn validation(message: impl Into<String>) -> ServiceError {
    ServiceError::validation(message)
}

/// "One or more parameter values were invalid: …"
pub fn invalid(detail: &str) -> ServiceError {
    validation(format!("One or more parameter values were invalid: {detail}"))
}

/// What the item operations answer for a table that does not exist (or is not ACTIVE).
pub fn resource_not_found() -> ServiceError {
    ServiceError::client("ResourceNotFoundException", "Requested resource not found")
}

/// What the table operations answer for a table that does not exist.
pub fn table_not_found(name: &str) -> ServiceError {
    ServiceError::client(
        "ResourceNotFoundException",
        format!("Requested resource not found: Table: {name} not found"),
    )
}

pub fn conditional_check_failed() -> ServiceError {
    ServiceError::client(
        "ConditionalCheckFailedException",
        "The conditional request failed",
    )
}

pub fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::new("InternalServerError", 500, format!("Internal server error: {e}"))
}

pub fn store(e: StoreError) -> ServiceError {
    if e.is_full() {
        ServiceError::disk_full()
    } else {
        internal(e)
    }
}
