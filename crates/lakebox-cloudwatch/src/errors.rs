//! CloudWatch's errors, by their awsQuery codes (the generated `json_error` gives awsJson and
//! rpc-v2-cbor clients the modelled shape name beside them).

use lakebox_core::ServiceError;

pub fn invalid_value(message: impl Into<String>) -> ServiceError {
    ServiceError::client("InvalidParameterValue", message)
}

pub fn invalid_combination(message: impl Into<String>) -> ServiceError {
    ServiceError::client("InvalidParameterCombination", message)
}

pub fn dashboard_not_found(message: impl Into<String>) -> ServiceError {
    ServiceError::new("ResourceNotFound", 404, message)
}

pub fn resource_not_found(arn: &str) -> ServiceError {
    ServiceError::new(
        "ResourceNotFoundException",
        404,
        format!("The resource {arn} does not exist."),
    )
}
