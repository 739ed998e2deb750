//! SQS's errors, with the codes its awsQuery era gave them (what the SDKs show in both
//! protocols; the awsJson side renames `__type` in `api::json_error`) and AWS's messages.

use lakebox_core::ServiceError;

pub fn queue_does_not_exist() -> ServiceError {
    ServiceError::client(
        "AWS.SimpleQueueService.NonExistentQueue",
        "The specified queue does not exist.",
    )
}

pub fn invalid_parameter(message: impl Into<String>) -> ServiceError {
    ServiceError::client("InvalidParameterValue", message)
}

/// `Value … for parameter … is invalid. Reason: …`, SQS's words for an out-of-range value.
pub fn invalid_value(parameter: &str, value: impl std::fmt::Display, reason: &str) -> ServiceError {
    invalid_parameter(format!(
        "Value {value} for parameter {parameter} is invalid. Reason: {reason}"
    ))
}

pub fn missing_parameter(name: &str) -> ServiceError {
    ServiceError::client(
        "MissingParameter",
        format!("The request must contain the parameter {name}."),
    )
}

pub fn unknown_attribute(name: &str) -> ServiceError {
    ServiceError::client("InvalidAttributeName", format!("Unknown Attribute {name}."))
}

pub fn invalid_attribute_value(name: &str) -> ServiceError {
    ServiceError::client(
        "InvalidAttributeValue",
        format!("Invalid value for the parameter {name}."),
    )
}

pub fn queue_name_exists(attribute: &str) -> ServiceError {
    ServiceError::client(
        "QueueAlreadyExists",
        format!("A queue already exists with the same name and a different value for attribute {attribute}"),
    )
}

pub fn queue_deleted_recently() -> ServiceError {
    ServiceError::client(
        "AWS.SimpleQueueService.QueueDeletedRecently",
        "You must wait 60 seconds after deleting a queue before you can create another with the same name.",
    )
}

pub fn purge_in_progress(queue: &str) -> ServiceError {
    ServiceError::new(
        "AWS.SimpleQueueService.PurgeQueueInProgress",
        403,
        format!("Only one PurgeQueue operation on {queue} is allowed every 60 seconds."),
    )
}

pub fn receipt_handle_invalid(handle: &str) -> ServiceError {
    ServiceError::client(
        "ReceiptHandleIsInvalid",
        format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
    )
}

pub fn message_not_inflight() -> ServiceError {
    ServiceError::client(
        "AWS.SimpleQueueService.MessageNotInflight",
        "Message does not exist or is not available for visibility timeout change.",
    )
}

pub fn empty_batch(entry: &str) -> ServiceError {
    ServiceError::client(
        "AWS.SimpleQueueService.EmptyBatchRequest",
        format!("There should be at least one {entry} in the request."),
    )
}

pub fn too_many_entries(sent: usize) -> ServiceError {
    ServiceError::client(
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        format!("Maximum number of entries per request are 10. You have sent {sent}."),
    )
}

pub fn ids_not_distinct(id: &str) -> ServiceError {
    ServiceError::client(
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        format!("Id {id} repeated."),
    )
}

pub fn invalid_batch_id() -> ServiceError {
    ServiceError::client(
        "AWS.SimpleQueueService.InvalidBatchEntryId",
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
    )
}

pub fn batch_too_long(limit: usize, sent: usize) -> ServiceError {
    ServiceError::client(
        "AWS.SimpleQueueService.BatchRequestTooLong",
        format!("Batch requests cannot be longer than {limit} bytes. You have sent {sent} bytes."),
    )
}

/// A storage failure: the full disk as AWS's retryable unavailability, anything else as a 500.
pub fn store(e: lakebox_store::StoreError) -> ServiceError {
    if e.is_full() {
        ServiceError::disk_full()
    } else {
        ServiceError::internal(e.to_string())
    }
}
