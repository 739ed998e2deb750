//! Who may do what to a bucket: S3's authorization of each request, from the bucket policy
//! (decided by `lakebox-policy`) and the bucket's public access block.
//!
//! Every caller acts as the root of its account (Lakebox has no IAM users yet), so, as AWS
//! decides it: an explicit deny in the bucket policy refuses anyone; the bucket owner's account
//! may do everything else; another account, or an anonymous caller, needs a statement that
//! allows it — unless the policy is public and the bucket's `RestrictPublicBuckets` is on, which
//! leaves a public policy to the owner's own account.

use std::sync::Arc;

use lakebox_core::ServiceError;
use lakebox_policy::{Context, Decision, Policy, Principal};

use crate::api::{Endpoint, S3Request};
use crate::errors;
use crate::store::ObjectStore;

/// What a bucket's requests are authorized against, parsed once (see `ObjectStore::consulted`).
#[derive(Debug, Default)]
pub struct BucketAccess {
    pub policy: Option<Arc<Policy>>,
    /// The policy grants something to everyone (GetBucketPolicyStatus's IsPublic).
    pub public_policy: bool,
    pub block: PublicAccessBlock,
}

/// A bucket's public access block settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl Default for PublicAccessBlock {
    /// New buckets block all public access, as in AWS.
    fn default() -> Self {
        PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        }
    }
}

impl PublicAccessBlock {
    /// Each setting on where either has it on.
    pub fn or(self, other: PublicAccessBlock) -> PublicAccessBlock {
        PublicAccessBlock {
            block_public_acls: self.block_public_acls || other.block_public_acls,
            ignore_public_acls: self.ignore_public_acls || other.ignore_public_acls,
            block_public_policy: self.block_public_policy || other.block_public_policy,
            restrict_public_buckets: self.restrict_public_buckets || other.restrict_public_buckets,
        }
    }

    /// From the stored document: absent is the default block, empty a deleted one (all off).
    pub fn of(doc: Option<&[u8]>) -> PublicAccessBlock {
        let Some(doc) = doc else {
            return PublicAccessBlock::default();
        };
        let parsed = lakebox_protocol::xml::parse(doc).ok();
        let flag = |name: &str| {
            parsed
                .as_ref()
                .and_then(|d| d.child_text(name))
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        };
        PublicAccessBlock {
            block_public_acls: flag("BlockPublicAcls"),
            ignore_public_acls: flag("IgnorePublicAcls"),
            block_public_policy: flag("BlockPublicPolicy"),
            restrict_public_buckets: flag("RestrictPublicBuckets"),
        }
    }
}

impl BucketAccess {
    /// From the bucket's stored policy and public access block, and its owner's account-wide
    /// block (S3 Control), if any.
    pub fn of(policy: Option<&[u8]>, block: Option<&[u8]>, account_block: Option<&[u8]>) -> BucketAccess {
        let policy = policy
            .and_then(|p| std::str::from_utf8(p).ok())
            .and_then(|p| Policy::parse(p).ok());
        BucketAccess {
            public_policy: policy.as_ref().is_some_and(Policy::is_public),
            policy: policy.map(Arc::new),
            block: match account_block {
                Some(a) => PublicAccessBlock::of(block).or(PublicAccessBlock::of(Some(a))),
                None => PublicAccessBlock::of(block),
            },
        }
    }
}

/// Who makes a request, as policies see it.
pub fn requester(req: &S3Request) -> Principal {
    if req.anonymous {
        return Principal::Anonymous;
    }
    Principal::root_of(req.ctx.account_id.clone())
}

/// The IAM action a request needs on its bucket or object (ListBuckets and CreateBucket need
/// none of a bucket; DeleteObjects and form uploads are decided per key by their handlers).
fn action(endpoint: Endpoint, req: &S3Request) -> Option<&'static str> {
    use http::Method;
    let versioned = req.has("versionId");
    let (get, put) = (
        req.method == Method::GET || req.method == Method::HEAD,
        req.method == Method::PUT,
    );
    let pick = |g: &'static str, p: &'static str, d: &'static str| {
        Some(if get {
            g
        } else if put {
            p
        } else {
            d
        })
    };
    match endpoint {
        Endpoint::ListBuckets | Endpoint::CreateBucket | Endpoint::DeleteObjects | Endpoint::PostObject => {
            None
        }
        Endpoint::BucketVersioning => pick("s3:GetBucketVersioning", "s3:PutBucketVersioning", ""),
        Endpoint::BucketAcl => pick("s3:GetBucketAcl", "s3:PutBucketAcl", ""),
        Endpoint::GetBucketPolicyStatus => Some("s3:GetBucketPolicyStatus"),
        Endpoint::BucketConfig(sub) => {
            let (g, p, d) = config_actions(sub);
            pick(g, p, d)
        }
        Endpoint::ObjectTagging if versioned => pick(
            "s3:GetObjectVersionTagging",
            "s3:PutObjectVersionTagging",
            "s3:DeleteObjectVersionTagging",
        ),
        Endpoint::ObjectTagging => pick(
            "s3:GetObjectTagging",
            "s3:PutObjectTagging",
            "s3:DeleteObjectTagging",
        ),
        Endpoint::ObjectAcl if versioned => pick("s3:GetObjectVersionAcl", "s3:PutObjectVersionAcl", ""),
        Endpoint::ObjectAcl => pick("s3:GetObjectAcl", "s3:PutObjectAcl", ""),
        Endpoint::ObjectRetention => pick("s3:GetObjectRetention", "s3:PutObjectRetention", ""),
        Endpoint::ObjectLegalHold => pick("s3:GetObjectLegalHold", "s3:PutObjectLegalHold", ""),
        Endpoint::GetObjectAttributes if versioned => Some("s3:GetObjectVersionAttributes"),
        Endpoint::GetObjectAttributes => Some("s3:GetObjectAttributes"),
        Endpoint::HeadBucket | Endpoint::ListObjects => Some("s3:ListBucket"),
        Endpoint::DeleteBucket => Some("s3:DeleteBucket"),
        Endpoint::GetBucketLocation => Some("s3:GetBucketLocation"),
        Endpoint::ListMultipartUploads => Some("s3:ListBucketMultipartUploads"),
        Endpoint::ListObjectVersions => Some("s3:ListBucketVersions"),
        Endpoint::UploadPart
        | Endpoint::CopyObject
        | Endpoint::PutObject
        | Endpoint::CreateMultipartUpload
        | Endpoint::CompleteMultipartUpload => Some("s3:PutObject"),
        Endpoint::ListParts => Some("s3:ListMultipartUploadParts"),
        Endpoint::GetObject if versioned => Some("s3:GetObjectVersion"),
        Endpoint::GetObject | Endpoint::SelectObjectContent => Some("s3:GetObject"),
        Endpoint::AbortMultipartUpload => Some("s3:AbortMultipartUpload"),
        Endpoint::DeleteObject if versioned => Some("s3:DeleteObjectVersion"),
        Endpoint::DeleteObject => Some("s3:DeleteObject"),
        Endpoint::RestoreObject => Some("s3:RestoreObject"),
    }
}

/// The actions of a bucket configuration subresource: (GET, PUT, DELETE).
fn config_actions(sub: &str) -> (&'static str, &'static str, &'static str) {
    match sub {
        "policy" => (
            "s3:GetBucketPolicy",
            "s3:PutBucketPolicy",
            "s3:DeleteBucketPolicy",
        ),
        "cors" => ("s3:GetBucketCORS", "s3:PutBucketCORS", "s3:PutBucketCORS"),
        "lifecycle" => (
            "s3:GetLifecycleConfiguration",
            "s3:PutLifecycleConfiguration",
            "s3:PutLifecycleConfiguration",
        ),
        "encryption" => (
            "s3:GetEncryptionConfiguration",
            "s3:PutEncryptionConfiguration",
            "s3:PutEncryptionConfiguration",
        ),
        "tagging" => (
            "s3:GetBucketTagging",
            "s3:PutBucketTagging",
            "s3:PutBucketTagging",
        ),
        "website" => (
            "s3:GetBucketWebsite",
            "s3:PutBucketWebsite",
            "s3:DeleteBucketWebsite",
        ),
        "notification" => ("s3:GetBucketNotification", "s3:PutBucketNotification", ""),
        "ownershipControls" => (
            "s3:GetBucketOwnershipControls",
            "s3:PutBucketOwnershipControls",
            "s3:PutBucketOwnershipControls",
        ),
        "publicAccessBlock" => (
            "s3:GetBucketPublicAccessBlock",
            "s3:PutBucketPublicAccessBlock",
            "s3:PutBucketPublicAccessBlock",
        ),
        "logging" => ("s3:GetBucketLogging", "s3:PutBucketLogging", ""),
        "metrics" => (
            "s3:GetMetricsConfiguration",
            "s3:PutMetricsConfiguration",
            "s3:PutMetricsConfiguration",
        ),
        "requestPayment" => ("s3:GetBucketRequestPayment", "s3:PutBucketRequestPayment", ""),
        "accelerate" => (
            "s3:GetAccelerateConfiguration",
            "s3:PutAccelerateConfiguration",
            "",
        ),
        "object-lock" => (
            "s3:GetBucketObjectLockConfiguration",
            "s3:PutBucketObjectLockConfiguration",
            "",
        ),
        _ => ("", "", ""),
    }
}

/// Whether the endpoint acts on an object (its resource is `bucket/key`).
fn on_object(endpoint: Endpoint) -> bool {
    !matches!(
        endpoint,
        Endpoint::BucketVersioning
            | Endpoint::BucketAcl
            | Endpoint::GetBucketPolicyStatus
            | Endpoint::BucketConfig(_)
            | Endpoint::HeadBucket
            | Endpoint::ListObjects
            | Endpoint::DeleteBucket
            | Endpoint::GetBucketLocation
            | Endpoint::ListMultipartUploads
            | Endpoint::ListObjectVersions
    )
}

/// Decides a request before its handler runs: `AccessDenied` unless its caller may do it.
pub fn authorize(store: &ObjectStore, req: &S3Request, endpoint: Endpoint) -> Result<(), ServiceError> {
    let who = requester(req);
    let Some(bucket) = req.bucket.as_deref() else {
        // ListBuckets lists the caller's own buckets; an anonymous caller has none.
        return match who {
            Principal::Anonymous => Err(errors::access_denied()),
            _ => Ok(()),
        };
    };
    if endpoint == Endpoint::CreateBucket {
        return match who {
            Principal::Anonymous => Err(errors::access_denied()),
            _ => Ok(()),
        };
    }
    let Some(action) = action(endpoint, req) else {
        return Ok(());
    };
    let key = req.key.as_deref().filter(|_| on_object(endpoint));
    check(store, Some(req), &who, action, bucket, key)
}

/// Whether `who` may do `action` to `bucket` (or its object `key`); a bucket that does not
/// exist is left to the handler's `NoSuchBucket`.
pub fn check(
    store: &ObjectStore,
    req: Option<&S3Request>,
    who: &Principal,
    action: &str,
    bucket: &str,
    key: Option<&str>,
) -> Result<(), ServiceError> {
    let consulted = store.consulted(bucket);
    let Some(owner) = consulted.owner.as_deref() else {
        return Ok(());
    };
    let access = &consulted.access;
    let resource = match key {
        Some(k) => format!("arn:aws:s3:::{bucket}/{k}"),
        None => format!("arn:aws:s3:::{bucket}"),
    };
    let decision = match &access.policy {
        Some(policy) => policy.evaluate(&lakebox_policy::Request {
            principal: who,
            action,
            resource: &resource,
            context: &context(req, who, owner, store.now_millis()),
        }),
        None => Decision::NotApplicable,
    };
    let own = matches!(who, Principal::Aws { account, .. } if account == owner);
    let explicit_deny = || {
        denied(
            who,
            action,
            &resource,
            own,
            "with an explicit deny in a resource-based policy",
        )
    };
    let acl = acl_for(store, &consulted, action, bucket, key)?;
    if let Some(granted) = acl_decision(&consulted, who, acl.as_ref()) {
        return match decision {
            Decision::Deny => Err(explicit_deny()),
            _ if granted => Ok(()),
            _ => Err(errors::access_denied()),
        };
    }
    match decision {
        // The owner's root user can always manage the policy itself, so no policy locks the
        // bucket for good (as in AWS).
        Decision::Deny
            if own
                && matches!(
                    action,
                    "s3:GetBucketPolicy" | "s3:PutBucketPolicy" | "s3:DeleteBucketPolicy"
                ) =>
        {
            Ok(())
        }
        Decision::Deny => Err(explicit_deny()),
        _ if own => Ok(()),
        Decision::Allow if !(access.public_policy && access.block.restrict_public_buckets) => Ok(()),
        _ if acl
            .as_ref()
            .is_some_and(|s| s.acl.allows(who, s.permissions, access.block.ignore_public_acls)) =>
        {
            Ok(())
        }
        _ => Err(denied(
            who,
            action,
            &resource,
            own,
            &format!("because no resource-based policy allows the {action} action"),
        )),
    }
}

/// An ACL that speaks for a request: whether it is the object's, the ACL, and the permissions
/// that grant the request's action.
struct Speaking {
    on_object: bool,
    acl: crate::acl::Acl,
    permissions: &'static [&'static str],
}

/// The ACL that speaks for a request where Object Ownership enables ACLs: the object's for
/// reads of an object, the bucket's for the rest; `None` where ACLs are disabled or the action
/// is not one an ACL grants. With the permissions that grant the action.
fn acl_for(
    store: &ObjectStore,
    consulted: &crate::store::Consulted,
    action: &str,
    bucket: &str,
    key: Option<&str>,
) -> Result<Option<Speaking>, ServiceError> {
    if consulted.ownership == crate::acl::Ownership::BucketOwnerEnforced {
        return Ok(None);
    }
    let Some((on_object, permissions)) = crate::acl::permissions_for(action) else {
        return Ok(None);
    };
    let acl = if on_object {
        key.map(|k| store.object(bucket, k))
            .transpose()?
            .flatten()
            .and_then(|r| r.acl)
    } else {
        consulted.acl.clone()
    };
    Ok(acl.map(|acl| Speaking {
        on_object,
        acl,
        permissions,
    }))
}

/// Reads of an object another account owns are decided by its ACL alone, as S3 decides them:
/// `Some(granted)` then, `None` for every other request.
fn acl_decision(
    consulted: &crate::store::Consulted,
    who: &Principal,
    speaking: Option<&Speaking>,
) -> Option<bool> {
    let s = speaking?;
    if !s.on_object || consulted.owner.as_deref() == Some(s.acl.owner.as_str()) {
        return None;
    }
    let writer = matches!(who, Principal::Aws { account, .. } if *account == s.acl.owner);
    Some(
        writer
            || s.acl
                .allows(who, s.permissions, consulted.access.block.ignore_public_acls),
    )
}

/// S3's AccessDenied: with the reason for callers of the bucket owner's account (as AWS gives
/// it within an account), the bare "Access Denied" for everyone else.
fn denied(who: &Principal, action: &str, resource: &str, own: bool, why: &str) -> ServiceError {
    match who {
        Principal::Aws { arn, .. } if own => ServiceError::new(
            "AccessDenied",
            403,
            format!("User: {arn} is not authorized to perform: {action} on resource: \"{resource}\" {why}"),
        ),
        _ => errors::access_denied(),
    }
}

/// The condition keys a request carries (the global `aws:` keys and S3's own; only the
/// caller's and the clock's for another service's in-process access, `req` `None`).
fn context(req: Option<&S3Request>, who: &Principal, owner: &str, now_millis: i64) -> Context {
    let mut c = Context::new();
    c.set("aws:SecureTransport", "false");
    c.set(
        "aws:CurrentTime",
        lakebox_protocol::types::Timestamp::from_millis(now_millis).to_iso8601(),
    );
    c.set("aws:EpochTime", (now_millis / 1000).to_string());
    c.set("aws:ResourceAccount", owner);
    c.set("s3:ResourceAccount", owner);
    match who {
        Principal::Aws { account, arn } => {
            c.set("aws:PrincipalAccount", account.clone());
            c.set("aws:PrincipalArn", arn.clone());
            c.set("aws:PrincipalType", "Account");
            c.set("aws:userid", account.clone());
        }
        Principal::Anonymous => {
            c.set("aws:PrincipalType", "Anonymous");
        }
        Principal::Service(_) => {}
    }
    let Some(req) = req else {
        return c;
    };
    if let Some(ip) = req.remote_ip {
        c.set("aws:SourceIp", ip.to_string());
    }
    for (header, key) in [
        ("user-agent", "aws:UserAgent"),
        ("referer", "aws:Referer"),
        ("x-amz-server-side-encryption", "s3:x-amz-server-side-encryption"),
        (
            "x-amz-server-side-encryption-aws-kms-key-id",
            "s3:x-amz-server-side-encryption-aws-kms-key-id",
        ),
        ("x-amz-acl", "s3:x-amz-acl"),
        ("x-amz-storage-class", "s3:x-amz-storage-class"),
        ("x-amz-copy-source", "s3:x-amz-copy-source"),
        ("x-amz-metadata-directive", "s3:x-amz-metadata-directive"),
        ("x-amz-content-sha256", "s3:x-amz-content-sha256"),
        ("x-amz-grant-read", "s3:x-amz-grant-read"),
        ("x-amz-grant-write", "s3:x-amz-grant-write"),
        ("x-amz-grant-read-acp", "s3:x-amz-grant-read-acp"),
        ("x-amz-grant-write-acp", "s3:x-amz-grant-write-acp"),
        ("x-amz-grant-full-control", "s3:x-amz-grant-full-control"),
        ("x-amz-object-lock-mode", "s3:object-lock-mode"),
        (
            "x-amz-object-lock-retain-until-date",
            "s3:object-lock-retain-until-date",
        ),
        ("x-amz-object-lock-legal-hold", "s3:object-lock-legal-hold"),
    ] {
        if let Some(v) = req.header(header) {
            c.set(key, v);
        }
    }
    for (param, key) in [
        ("prefix", "s3:prefix"),
        ("delimiter", "s3:delimiter"),
        ("max-keys", "s3:max-keys"),
        ("versionId", "s3:VersionId"),
    ] {
        if let Some(v) = req.query(param) {
            c.set(key, v);
        }
    }
    let auth = req.header("authorization").unwrap_or("");
    let (signature, auth_type) = if auth.starts_with("AWS4-") {
        (Some("AWS4-HMAC-SHA256"), "REST-HEADER")
    } else if auth.starts_with("AWS ") {
        (Some("AWS"), "REST-HEADER")
    } else if req.has("X-Amz-Signature") {
        (Some("AWS4-HMAC-SHA256"), "REST-QUERY-STRING")
    } else if req.has("Signature") {
        (Some("AWS"), "REST-QUERY-STRING")
    } else if req.form_auth.is_some() {
        (None, "POST")
    } else {
        (None, "")
    };
    if let Some(s) = signature {
        c.set("s3:signatureversion", s);
    }
    if !auth_type.is_empty() {
        c.set("s3:authType", auth_type);
    }
    c
}
