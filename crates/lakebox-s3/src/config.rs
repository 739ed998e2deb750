//! Bucket configuration documents (policy, CORS, lifecycle, …), bucket and object tagging, and
//! ACL reads.
//!
//! Configurations are validated for shape and stored as sent, then returned on GET, as S3 does.
//! What Lakebox does not yet *act on* (notifications, …) is listed in docs/s3.md; versioning is never reported as enabled because it is not implemented.

use std::sync::Arc;

use http::{Method, Response, StatusCode};
use lakebox_core::ServiceError;
use lakebox_core::tags::TagError;
use lakebox_protocol::xml::{self, XmlElement};
use lakebox_service::Body;

use crate::api::{S3Request, empty_response, set_header, xml_response};
use crate::errors;
use crate::errors::malformed_document as malformed;
use crate::store::ObjectStore;
use crate::xml::doc;

/// How a bucket subresource is stored and what a GET answers when none was set.
struct ConfigKind {
    sub: &'static str,
    /// The AWS operations' name after their verb: `Put`/`Get`/`Delete` + this.
    operation: &'static str,
    /// Root element of the XML document; `None` for JSON (the bucket policy).
    root: Option<&'static str>,
    /// GET without a stored document: an error (code, message) …
    missing: Option<(&'static str, &'static str)>,
    /// … or this default document.
    default: Option<&'static str>,
    deletable: bool,
}

const CONFIGS: &[ConfigKind] = &[
    // Request metrics configurations are many per bucket, by id: `request_metrics` handles them.
    ConfigKind {
        sub: "metrics",
        operation: "BucketMetricsConfiguration",
        root: Some("MetricsConfiguration"),
        missing: Some((
            "NoSuchConfiguration",
            "The specified configuration does not exist.",
        )),
        default: None,
        deletable: true,
    },
    ConfigKind {
        sub: "policy",
        operation: "BucketPolicy",
        root: None,
        missing: Some(("NoSuchBucketPolicy", "The bucket policy does not exist")),
        default: None,
        deletable: true,
    },
    ConfigKind {
        sub: "cors",
        operation: "BucketCors",
        root: Some("CORSConfiguration"),
        missing: Some(("NoSuchCORSConfiguration", "The CORS configuration does not exist")),
        default: None,
        deletable: true,
    },
    ConfigKind {
        sub: "lifecycle",
        operation: "BucketLifecycleConfiguration",
        root: Some("LifecycleConfiguration"),
        missing: Some((
            "NoSuchLifecycleConfiguration",
            "The lifecycle configuration does not exist",
        )),
        default: None,
        deletable: true,
    },
    ConfigKind {
        sub: "encryption",
        operation: "BucketEncryption",
        root: Some("ServerSideEncryptionConfiguration"),
        missing: Some((
            "ServerSideEncryptionConfigurationNotFoundError",
            "The server side encryption configuration was not found",
        )),
        default: None,
        deletable: true,
    },
    ConfigKind {
        sub: "tagging",
        operation: "BucketTagging",
        root: Some("Tagging"),
        missing: Some(("NoSuchTagSet", "The TagSet does not exist")),
        default: None,
        deletable: true,
    },
    ConfigKind {
        sub: "website",
        operation: "BucketWebsite",
        root: Some("WebsiteConfiguration"),
        missing: Some((
            "NoSuchWebsiteConfiguration",
            "The specified bucket does not have a website configuration",
        )),
        default: None,
        deletable: true,
    },
    ConfigKind {
        sub: "notification",
        operation: "BucketNotificationConfiguration",
        root: Some("NotificationConfiguration"),
        missing: None,
        default: Some(
            "<NotificationConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></NotificationConfiguration>",
        ),
        deletable: false,
    },
    // New buckets default to BucketOwnerEnforced and to blocking all public access, as in AWS.
    ConfigKind {
        sub: "ownershipControls",
        operation: "BucketOwnershipControls",
        root: Some("OwnershipControls"),
        missing: None,
        default: Some(
            "<OwnershipControls xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule></OwnershipControls>",
        ),
        deletable: true,
    },
    ConfigKind {
        sub: "publicAccessBlock",
        operation: "PublicAccessBlock",
        root: Some("PublicAccessBlockConfiguration"),
        missing: None,
        default: Some(
            "<PublicAccessBlockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>",
        ),
        deletable: true,
    },
    ConfigKind {
        sub: "object-lock",
        operation: "ObjectLockConfiguration",
        root: Some("ObjectLockConfiguration"),
        missing: Some((
            "ObjectLockConfigurationNotFoundError",
            "Object Lock configuration does not exist for this bucket",
        )),
        default: None,
        deletable: false,
    },
    ConfigKind {
        sub: "logging",
        operation: "BucketLogging",
        root: Some("BucketLoggingStatus"),
        missing: None,
        default: Some(
            "<BucketLoggingStatus xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></BucketLoggingStatus>",
        ),
        deletable: false,
    },
    ConfigKind {
        sub: "requestPayment",
        operation: "BucketRequestPayment",
        root: Some("RequestPaymentConfiguration"),
        missing: None,
        default: Some(
            "<RequestPaymentConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Payer>BucketOwner</Payer></RequestPaymentConfiguration>",
        ),
        deletable: false,
    },
    ConfigKind {
        sub: "accelerate",
        operation: "BucketAccelerateConfiguration",
        root: Some("AccelerateConfiguration"),
        missing: None,
        default: Some(
            "<AccelerateConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></AccelerateConfiguration>",
        ),
        deletable: false,
    },
];

/// The bucket subresource this request addresses, if it is a stored configuration.
pub fn bucket_config_sub(req: &S3Request) -> Option<&'static str> {
    CONFIGS.iter().find(|c| req.has(c.sub)).map(|c| c.sub)
}

/// The operation name of a bucket subresource (`BucketCors` for `?cors`).
pub fn bucket_config_operation(sub: &str) -> &'static str {
    CONFIGS
        .iter()
        .find(|c| c.sub == sub)
        .map_or("BucketConfiguration", |c| c.operation)
}

pub async fn bucket_config(
    store: &Arc<ObjectStore>,
    mut req: S3Request,
    sub: &str,
) -> Result<Response<Body>, ServiceError> {
    if sub == "metrics" {
        return crate::request_metrics::configuration(store, req).await;
    }
    let kind = CONFIGS
        .iter()
        .find(|c| c.sub == sub)
        .expect("sub comes from CONFIGS");
    let bucket = req.bucket.clone().unwrap_or_default();
    let owner = store.existing_bucket(&bucket)?.owner;
    match req.method {
        Method::PUT => {
            let body = req.xml_body().await?;
            match kind.root {
                None => {
                    if check_bucket_policy(&bucket, &body)?
                        && store.consulted(&bucket).access.block.block_public_policy
                    {
                        return Err(ServiceError::new(
                            "AccessDenied",
                            403,
                            format!(
                                "User: arn:aws:iam::{}:root is not authorized to perform: s3:PutBucketPolicy on resource: \"arn:aws:s3:::{bucket}\" because public policies are blocked by the BlockPublicPolicy block public access setting.",
                                req.ctx.account_id
                            ),
                        ));
                    }
                }
                Some(root) => {
                    let doc = xml::parse(&body).map_err(|_| malformed())?;
                    if doc.name != root {
                        return Err(malformed());
                    }
                    if sub == "tagging" {
                        parse_tag_set(&doc, 50)?;
                    }
                    if sub == "lifecycle" {
                        crate::lifecycle::parse(&body)?;
                    }
                    if sub == "notification" {
                        validate_notification(&doc)?;
                    }
                    if sub == "cors" {
                        crate::cors::parse(&doc)?;
                    }
                    if sub == "object-lock" {
                        let versioning = store.existing_bucket(&bucket)?.versioning;
                        crate::object_lock::check_configuration(&doc, versioning.as_deref())?;
                    }
                    if sub == "logging"
                        && let Some(target) = crate::access_log::Target::of(&body)
                    {
                        check_log_target(store, &target.bucket, &owner)?;
                    }
                }
            }
            let body = if sub == "lifecycle" {
                crate::lifecycle::with_rule_ids(&body)?
            } else {
                body.to_vec()
            };
            // S3 sends each destination an s3:TestEvent, and refuses a configuration whose
            // destination does not take it.
            if sub == "notification"
                && let Err(arn) =
                    crate::notify::test_destinations(store, &bucket, &body, &req.ctx.request_id).await
            {
                return Err(ServiceError::client(
                    "InvalidArgument",
                    "Unable to validate the following destination configurations",
                )
                .with_extra("ArgumentName1", arn)
                .with_extra(
                    "ArgumentValue1",
                    "The destination does not exist or does not accept notifications from this bucket",
                ));
            }
            store.set_bucket_config(&bucket, sub, Some(body)).await?;
            Ok(empty_response(if kind.root.is_none() {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::OK
            }))
        }
        Method::GET => match store.bucket_config(&bucket, sub)? {
            // A public access block that was deleted (new buckets have one until then).
            Some(stored) if stored.is_empty() => Err(ServiceError::new(
                "NoSuchPublicAccessBlockConfiguration",
                404,
                "The public access block configuration was not found",
            )
            .with_extra("BucketName", bucket)),
            Some(stored) => {
                let mut resp = Response::new(lakebox_service::body::full(stored));
                let ct = if kind.root.is_none() {
                    "application/json"
                } else {
                    "application/xml"
                };
                set_header(&mut resp, "content-type", ct);
                Ok(resp)
            }
            None => match (kind.missing, kind.default) {
                (Some((code, msg)), _) => {
                    Err(ServiceError::new(code, 404, msg).with_extra("BucketName", bucket))
                }
                (None, Some(default)) => Ok(xml_response(
                    StatusCode::OK,
                    format!("{}{default}", xml::XML_DECLARATION),
                )),
                (None, None) => Err(errors::not_implemented(sub)),
            },
        },
        Method::DELETE if kind.deletable => {
            // New buckets block public access until the block is deleted: an empty document
            // records the deletion (absent means the default block).
            let gone = (sub == "publicAccessBlock").then(Vec::new);
            store.set_bucket_config(&bucket, sub, gone).await?;
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
        _ => Err(errors::method_not_allowed()),
    }
}

/// A bucket policy as S3 checks it: the IAM policy language (lakebox-policy), every statement
/// naming a principal, S3 actions only, and resources in this bucket. Answers whether the
/// policy is public.
fn check_bucket_policy(bucket: &str, body: &[u8]) -> Result<bool, ServiceError> {
    let malformed = |msg: &str| ServiceError::client("MalformedPolicy", msg);
    let text = std::str::from_utf8(body)
        .map_err(|_| malformed("Policies must be valid JSON and the first byte must be '{'"))?;
    let policy = lakebox_policy::Policy::parse(text).map_err(|e| malformed(&e.0))?;
    let own = format!("arn:aws:s3:::{bucket}");
    for st in &policy.statements {
        if !st.names_principal() {
            return Err(malformed("Missing required field Principal"));
        }
        if st
            .actions()
            .iter()
            .any(|a| a != "*" && !a.to_ascii_lowercase().starts_with("s3:"))
        {
            return Err(malformed("Policy has invalid action"));
        }
        if st.resources().is_empty() {
            return Err(malformed("Missing required field Resource"));
        }
        for r in st.resources() {
            let in_bucket = r == &own || r.strip_prefix(&own).is_some_and(|rest| rest.starts_with('/'));
            if !r.starts_with("arn:aws:s3:::") {
                return Err(malformed("Policy has invalid resource"));
            }
            if !in_bucket
                && !lakebox_policy::wildcard_match(r, &own)
                && !lakebox_policy::wildcard_match(r, &format!("{own}/x"))
            {
                return Err(malformed("Action does not apply to any resource(s) in statement"));
            }
        }
    }
    Ok(policy.is_public())
}

/// GetBucketPolicyStatus: whether the bucket's policy grants anything to everyone.
pub fn policy_status(store: &ObjectStore, req: &S3Request) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.clone().unwrap_or_default();
    store.existing_bucket(&bucket)?;
    let Some(stored) = store.bucket_config(&bucket, "policy")? else {
        return Err(
            ServiceError::new("NoSuchBucketPolicy", 404, "The bucket policy does not exist")
                .with_extra("BucketName", bucket),
        );
    };
    let public = std::str::from_utf8(&stored)
        .ok()
        .and_then(|t| lakebox_policy::Policy::parse(t).ok())
        .is_some_and(|p| p.is_public());
    Ok(xml_response(
        StatusCode::OK,
        format!(
            "{}<PolicyStatus xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsPublic>{public}</IsPublic></PolicyStatus>",
            xml::XML_DECLARATION
        ),
    ))
}

/// A logging target must be an existing bucket of the same owner, as S3 requires.
fn check_log_target(store: &ObjectStore, target: &str, account: &str) -> Result<(), ServiceError> {
    let refused = |message: &str| {
        ServiceError::client("InvalidTargetBucketForLogging", message).with_extra("TargetBucket", target)
    };
    match store.bucket(target)? {
        None => Err(refused("The target bucket for logging does not exist")),
        Some(b) if b.owner != account => Err(refused(
            "The owner for the bucket to be logged and the target bucket must be the same.",
        )),
        Some(_) => Ok(()),
    }
}

/// Get/PutBucketVersioning: `Enabled` or `Suspended`; a bucket never configured reports no
/// status. MFA delete is not supported.
pub async fn versioning(
    store: &Arc<ObjectStore>,
    mut req: S3Request,
) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.clone().unwrap_or_default();
    let b = store.existing_bucket(&bucket)?;
    match req.method {
        Method::GET => {
            let mut w = doc("VersioningConfiguration");
            if let Some(status) = &b.versioning {
                w.element("Status", status);
            }
            w.end("VersioningConfiguration");
            Ok(xml_response(StatusCode::OK, w.finish()))
        }
        Method::PUT => {
            let body = req.xml_body().await?;
            let doc = xml::parse(&body).map_err(|_| malformed())?;
            if doc.name != "VersioningConfiguration" {
                return Err(malformed());
            }
            if doc.child_text("MfaDelete").is_some_and(|m| m.trim() == "Enabled") {
                return Err(errors::not_implemented("MFA delete"));
            }
            match doc.child_text("Status").map(str::trim) {
                Some("Suspended") if store.consulted(&bucket).lock.is_some() => Err(ServiceError::new(
                    "InvalidBucketState",
                    409,
                    "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.",
                )),
                Some(s @ ("Enabled" | "Suspended")) => {
                    store.set_versioning(&bucket, s).await?;
                    Ok(empty_response(StatusCode::OK))
                }
                None => Ok(empty_response(StatusCode::OK)),
                Some(_) => Err(malformed()),
            }
        }
        _ => Err(errors::method_not_allowed()),
    }
}

/// Reads a `<TagSet>` (S3's tag rules: ≤ `max` tags, keys 1–128 and values ≤ 256 characters,
/// no duplicate keys, no `aws:` prefix).
/// The events S3 can notify about (botocore's `Event` enum).
const NOTIFICATION_EVENTS: &[&str] = &[
    "s3:ReducedRedundancyLostObject",
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationNotTracked",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectAcl:Put",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
];

/// Checks a notification configuration as S3 does before storing it: known events, at least
/// one per destination, destination ARNs of the right service, `prefix`/`suffix` filters.
/// (Whether the destinations exist is checked once Lakebox has SQS, SNS and Lambda.)
fn validate_notification(doc: &XmlElement) -> Result<(), ServiceError> {
    for (element, destination, service) in [
        ("QueueConfiguration", "Queue", "sqs"),
        ("TopicConfiguration", "Topic", "sns"),
        ("CloudFunctionConfiguration", "CloudFunction", "lambda"),
    ] {
        for config in doc.children_named(element) {
            let arn = config.child_text(destination).unwrap_or_default().trim();
            let parts: Vec<&str> = arn.splitn(6, ':').collect();
            if parts.len() < 6 || parts[0] != "arn" || parts[2] != service || parts[5].is_empty() {
                return Err(errors::invalid_argument(
                    "The ARN is not well formed",
                    destination,
                    arn,
                ));
            }
            let events: Vec<&str> = config.children_named("Event").map(|e| e.text.as_str()).collect();
            if events.is_empty() {
                return Err(errors::invalid_argument(
                    "A notification configuration must name at least one event",
                    "Event",
                    "",
                ));
            }
            if let Some(bad) = events.iter().find(|e| !NOTIFICATION_EVENTS.contains(&e.trim())) {
                return Err(errors::invalid_argument(
                    "The event is not supported for notifications",
                    "Event",
                    bad,
                ));
            }
            let rules = config
                .child("Filter")
                .and_then(|f| f.child("S3Key"))
                .map(|k| k.children_named("FilterRule").collect::<Vec<_>>())
                .unwrap_or_default();
            for rule in rules {
                let name = rule.child_text("Name").unwrap_or_default();
                if !name.eq_ignore_ascii_case("prefix") && !name.eq_ignore_ascii_case("suffix") {
                    return Err(errors::invalid_argument(
                        "filter rule name must be either prefix or suffix",
                        "FilterRule",
                        name,
                    ));
                }
            }
        }
    }
    Ok(())
}

pub fn parse_tag_set(doc: &XmlElement, max: usize) -> Result<Vec<(String, String)>, ServiceError> {
    let set = doc.child("TagSet").ok_or_else(malformed)?;
    let mut tags: Vec<(String, String)> = Vec::new();
    for t in set.children_named("Tag") {
        let k = t.child_text("Key").ok_or_else(malformed)?.to_owned();
        let v = t.child_text("Value").unwrap_or("").to_owned();
        tags.push((k, v));
    }
    validate_tags(&tags, max)?;
    Ok(tags)
}

pub fn validate_tags(tags: &[(String, String)], max: usize) -> Result<(), ServiceError> {
    if tags.len() > max {
        return Err(ServiceError::client(
            "BadRequest",
            format!("Object tags cannot be greater than {max}"),
        ));
    }
    let invalid = |message: &str| ServiceError::client("InvalidTag", message);
    lakebox_core::tags::check(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(|e| match e {
        TagError::KeyLength(_) => invalid("The TagKey you have provided is invalid"),
        TagError::ValueLength(_) => invalid("The TagValue you have provided is invalid"),
        TagError::Reserved(_) => invalid("System tags cannot be added/updated by requester"),
        TagError::Duplicate(_) | TagError::TooMany { .. } => {
            invalid("Cannot provide multiple Tags with the same key")
        }
    })
}

/// `x-amz-tagging: k1=v1&k2=v2` (URL-encoded), on PutObject, CopyObject and
/// CreateMultipartUpload.
pub fn tagging_header(req: &S3Request) -> Result<Vec<(String, String)>, ServiceError> {
    let Some(raw) = req.header("x-amz-tagging") else {
        return Ok(Vec::new());
    };
    let dec = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| ServiceError::client("InvalidArgument", "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates."))
    };
    let mut tags = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        tags.push((dec(k)?, dec(v)?));
    }
    validate_tags(&tags, 10)?;
    Ok(tags)
}

fn tagging_doc(tags: &[(String, String)]) -> String {
    let mut w = doc("Tagging");
    w.start("TagSet");
    for (k, v) in tags {
        w.start("Tag").element("Key", k).element("Value", v).end("Tag");
    }
    w.end("TagSet").end("Tagging");
    w.finish()
}

pub async fn object_tagging(
    store: &Arc<ObjectStore>,
    mut req: S3Request,
) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.clone().unwrap_or_default();
    let key = req.key.clone().unwrap_or_default();
    store.existing_bucket(&bucket)?;
    match req.method {
        Method::GET => {
            let rec = store
                .object(&bucket, &key)?
                .filter(|r| !r.delete_marker)
                .ok_or_else(|| errors::no_such_key(&key))?;
            Ok(xml_response(StatusCode::OK, tagging_doc(&rec.tags)))
        }
        Method::PUT => {
            let body = req.xml_body().await?;
            let doc = xml::parse(&body).map_err(|_| malformed())?;
            if doc.name != "Tagging" {
                return Err(malformed());
            }
            let tags = parse_tag_set(&doc, 10)?;
            store.update_object(&bucket, &key, |r| r.tags = tags).await?;
            Ok(empty_response(StatusCode::OK))
        }
        Method::DELETE => {
            store.update_object(&bucket, &key, |r| r.tags.clear()).await?;
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
        _ => Err(errors::method_not_allowed()),
    }
}

/// Get/PutBucketAcl and Get/PutObjectAcl (see the acl module). Object ACLs act on the
/// current version.
pub async fn acl(store: &Arc<ObjectStore>, mut req: S3Request) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.clone().unwrap_or_default();
    let b = store.existing_bucket(&bucket)?;
    let object = match &req.key {
        Some(key) => Some(
            store
                .object(&bucket, key)?
                .filter(|o| !o.delete_marker)
                .ok_or_else(|| errors::no_such_key(key))?,
        ),
        None => None,
    };
    let consulted = store.consulted(&bucket);
    let current = match &object {
        Some(o) => o.acl.clone(),
        None => consulted.acl.clone(),
    }
    .unwrap_or_else(|| crate::acl::Acl::private(&b.owner));
    match req.method {
        Method::GET => Ok(xml_response(StatusCode::OK, current.to_document())),
        Method::PUT => {
            let body = req.xml_body().await?;
            let doc = if body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                let d = xml::parse(&body).map_err(|_| malformed())?;
                if d.name != "AccessControlPolicy" {
                    return Err(malformed());
                }
                Some(d)
            };
            let Some(acl) = crate::acl::requested(&consulted, &req, doc.as_ref(), &current.owner)? else {
                return Ok(empty_response(StatusCode::OK));
            };
            match &req.key {
                Some(key) => {
                    let private = acl == crate::acl::Acl::private(&b.owner);
                    store
                        .update_object(&bucket, key, move |rec| rec.acl = (!private).then_some(acl))
                        .await?;
                }
                None => {
                    let doc = serde_json::to_vec(&acl).map_err(|e| ServiceError::internal(e.to_string()))?;
                    store.set_bucket_config(&bucket, "acl", Some(doc)).await?;
                }
            }
            Ok(empty_response(StatusCode::OK))
        }
        _ => Err(errors::method_not_allowed()),
    }
}
