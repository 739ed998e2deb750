//! S3's error codes, messages and statuses, in one place.

use lakebox_core::ServiceError;

pub fn no_such_bucket(bucket: &str) -> ServiceError {
    ServiceError::new("NoSuchBucket", 404, "The specified bucket does not exist")
        .with_extra("BucketName", bucket)
}

pub const NO_SUCH_KEY: &str = "NoSuchKey";
pub const PRECONDITION_FAILED: &str = "PreconditionFailed";

pub fn no_such_key(key: &str) -> ServiceError {
    ServiceError::new(NO_SUCH_KEY, 404, "The specified key does not exist.").with_extra("Key", key)
}

pub fn no_such_upload(upload_id: &str) -> ServiceError {
    ServiceError::new(
        "NoSuchUpload",
        404,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
    .with_extra("UploadId", upload_id)
}

pub fn access_denied() -> ServiceError {
    ServiceError::new("AccessDenied", 403, "Access Denied")
}

pub fn invalid_bucket_name(bucket: &str) -> ServiceError {
    ServiceError::client("InvalidBucketName", "The specified bucket is not valid.")
        .with_extra("BucketName", bucket)
}

pub fn bucket_already_exists(bucket: &str) -> ServiceError {
    ServiceError::new(
        "BucketAlreadyExists",
        409,
        "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
    )
    .with_extra("BucketName", bucket)
}

pub fn bucket_already_owned_by_you(bucket: &str) -> ServiceError {
    ServiceError::new(
        "BucketAlreadyOwnedByYou",
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    )
    .with_extra("BucketName", bucket)
}

pub fn bucket_not_empty(bucket: &str) -> ServiceError {
    ServiceError::new(
        "BucketNotEmpty",
        409,
        "The bucket you tried to delete is not empty",
    )
    .with_extra("BucketName", bucket)
}

pub fn precondition_failed(condition: &str) -> ServiceError {
    ServiceError::new(
        PRECONDITION_FAILED,
        412,
        "At least one of the pre-conditions you specified did not hold",
    )
    .with_extra("Condition", condition)
}

pub fn invalid_range(size: u64) -> ServiceError {
    ServiceError::new("InvalidRange", 416, "The requested range is not satisfiable")
        .with_extra("ActualObjectSize", size.to_string())
}

pub fn bad_digest(what: &str) -> ServiceError {
    ServiceError::client(
        "BadDigest",
        format!("The {what} you specified did not match the calculated checksum."),
    )
}

pub fn invalid_digest() -> ServiceError {
    ServiceError::client("InvalidDigest", "The Content-MD5 you specified was invalid.")
}

pub fn sha256_mismatch(claimed: &str, computed: &str) -> ServiceError {
    ServiceError::client(
        "XAmzContentSHA256Mismatch",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    )
    .with_extra("ClientComputedContentSHA256", claimed)
    .with_extra("S3ComputedContentSHA256", computed)
}

pub fn entity_too_large(size: u64, max: u64) -> ServiceError {
    ServiceError::client(
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size",
    )
    .with_extra("ProposedSize", size.to_string())
    .with_extra("MaxSizeAllowed", max.to_string())
}

pub fn entity_too_small(size: u64) -> ServiceError {
    ServiceError::client(
        "EntityTooSmall",
        "Your proposed upload is smaller than the minimum allowed object size.",
    )
    .with_extra("ProposedSize", size.to_string())
    .with_extra("MinSizeAllowed", crate::store::MIN_PART_SIZE.to_string())
}

pub fn invalid_part() -> ServiceError {
    ServiceError::client(
        "InvalidPart",
        "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
    )
}

pub fn invalid_part_order() -> ServiceError {
    ServiceError::client(
        "InvalidPartOrder",
        "The list of parts was not in ascending order. Parts must be ordered by part number.",
    )
}

pub fn key_too_long(len: usize) -> ServiceError {
    ServiceError::client("KeyTooLongError", "Your key is too long")
        .with_extra("Size", len.to_string())
        .with_extra("MaxSizeAllowed", "1024")
}

pub fn malformed_xml(message: &str) -> ServiceError {
    ServiceError::client("MalformedXML", message)
}

/// S3's answer to a request document it cannot read or that has the wrong shape.
pub fn malformed_document() -> ServiceError {
    malformed_xml("The XML you provided was not well-formed or did not validate against our published schema")
}

pub fn invalid_argument(message: impl Into<String>, name: &str, value: &str) -> ServiceError {
    ServiceError::client("InvalidArgument", message)
        .with_extra("ArgumentName", name)
        .with_extra("ArgumentValue", value)
}

pub fn invalid_request(message: impl Into<String>) -> ServiceError {
    ServiceError::client("InvalidRequest", message)
}

pub fn not_implemented(what: &str) -> ServiceError {
    ServiceError::new(
        "NotImplemented",
        501,
        format!("{what} is not implemented by Lakebox yet."),
    )
}

pub fn method_not_allowed() -> ServiceError {
    ServiceError::new(
        "MethodNotAllowed",
        405,
        "The specified method is not allowed against this resource.",
    )
}

pub fn incomplete_body() -> ServiceError {
    ServiceError::client(
        "IncompleteBody",
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    )
}

pub fn invalid_part_number(requested: usize, count: usize) -> ServiceError {
    ServiceError::new(
        "InvalidPartNumber",
        416,
        "The requested partnumber is not satisfiable",
    )
    .with_extra("PartNumberRequested", requested.to_string())
    .with_extra("ActualPartCount", count.to_string())
}

pub fn invalid_object_state(storage_class: &str) -> ServiceError {
    ServiceError::new(
        "InvalidObjectState",
        403,
        "The operation is not valid for the object's storage class",
    )
    .with_extra("StorageClass", storage_class)
}

pub fn no_such_version(key: &str, version_id: &str) -> ServiceError {
    ServiceError::new("NoSuchVersion", 404, "The specified version does not exist.")
        .with_extra("Key", key)
        .with_extra("VersionId", version_id)
}
