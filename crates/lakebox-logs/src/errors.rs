//! CloudWatch Logs' errors, in its words.

use lakebox_core::ServiceError;

pub fn invalid_parameter(message: impl Into<String>) -> ServiceError {
    ServiceError::client("InvalidParameterException", message)
}

pub fn group_not_found() -> ServiceError {
    ServiceError::client(
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
}

pub fn stream_not_found() -> ServiceError {
    ServiceError::client(
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    )
}

pub fn invalid_token() -> ServiceError {
    invalid_parameter("The specified nextToken is invalid.")
}

pub fn invalid_pattern() -> ServiceError {
    invalid_parameter("Invalid filter pattern")
}
