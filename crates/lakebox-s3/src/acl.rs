//! Access control lists and object ownership.
//!
//! A bucket's Object Ownership decides whether ACLs exist at all: `BucketOwnerEnforced` (every
//! new bucket's default) disables them — the bucket owner owns every object and requests that
//! set any ACL but the owner's full control are `AccessControlListNotSupported`; with
//! `BucketOwnerPreferred` or `ObjectWriter` ACLs are stored (canned, `x-amz-grant-*` headers or
//! an `AccessControlPolicy` document), reported, and grant what S3's permission table says. An
//! object written by another account is that account's under `ObjectWriter` (and under
//! `BucketOwnerPreferred` unless written with `bucket-owner-full-control`).

use lakebox_core::ServiceError;
use lakebox_policy::Principal;
use lakebox_protocol::xml::{XmlElement, XmlWriter};
use serde::{Deserialize, Serialize};

use crate::api::S3Request;
use crate::xml::canonical_id;

pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
pub const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

const PERMISSIONS: [&str; 5] = ["FULL_CONTROL", "WRITE", "WRITE_ACP", "READ", "READ_ACP"];

/// A bucket's Object Ownership setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ownership {
    #[default]
    BucketOwnerEnforced,
    BucketOwnerPreferred,
    ObjectWriter,
}

impl Ownership {
    /// From the stored `OwnershipControls` document (absent: the default).
    pub fn of(doc: Option<&[u8]>) -> Ownership {
        let rule = doc
            .and_then(|d| lakebox_protocol::xml::parse(d).ok())
            .and_then(|d| {
                d.child("Rule")
                    .and_then(|r| r.child_text("ObjectOwnership"))
                    .map(|s| s.trim().to_owned())
            });
        Ownership::named(rule.as_deref().unwrap_or("BucketOwnerEnforced")).unwrap_or_default()
    }

    pub fn named(name: &str) -> Option<Ownership> {
        Some(match name {
            "BucketOwnerEnforced" => Ownership::BucketOwnerEnforced,
            "BucketOwnerPreferred" => Ownership::BucketOwnerPreferred,
            "ObjectWriter" => Ownership::ObjectWriter,
            _ => return None,
        })
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Grantee {
    /// A canonical user id.
    User(String),
    /// A predefined group's URI.
    Group(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: String,
}

/// An ACL: the owning account and its grants.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Acl {
    pub owner: String,
    pub grants: Vec<Grant>,
}

fn grant(grantee: Grantee, permission: &str) -> Grant {
    Grant {
        grantee,
        permission: permission.to_owned(),
    }
}

fn not_supported() -> ServiceError {
    ServiceError::client("AccessControlListNotSupported", "The bucket does not allow ACLs")
}

impl Acl {
    /// The owner's full control, and nothing else.
    pub fn private(owner: &str) -> Acl {
        Acl {
            owner: owner.to_owned(),
            grants: vec![grant(Grantee::User(canonical_id(owner)), "FULL_CONTROL")],
        }
    }

    /// A canned ACL (`x-amz-acl`) for a resource owned by `owner` in a bucket of `bucket_owner`.
    pub fn canned(name: &str, owner: &str, bucket_owner: &str) -> Result<Acl, ServiceError> {
        let mut acl = Acl::private(owner);
        let group = |uri: &str| Grantee::Group(uri.to_owned());
        match name {
            "private" => {}
            "public-read" => acl.grants.push(grant(group(ALL_USERS), "READ")),
            "public-read-write" => {
                acl.grants.push(grant(group(ALL_USERS), "READ"));
                acl.grants.push(grant(group(ALL_USERS), "WRITE"));
            }
            "authenticated-read" => acl.grants.push(grant(group(AUTHENTICATED_USERS), "READ")),
            "aws-exec-read" => {}
            "bucket-owner-read" if owner != bucket_owner => acl
                .grants
                .push(grant(Grantee::User(canonical_id(bucket_owner)), "READ")),
            "bucket-owner-full-control" if owner != bucket_owner => acl
                .grants
                .push(grant(Grantee::User(canonical_id(bucket_owner)), "FULL_CONTROL")),
            "bucket-owner-read" | "bucket-owner-full-control" => {}
            "log-delivery-write" => {
                acl.grants.push(grant(group(LOG_DELIVERY), "WRITE"));
                acl.grants.push(grant(group(LOG_DELIVERY), "READ_ACP"));
            }
            _ => {
                return Err(ServiceError::client("InvalidArgument", "")
                    .with_extra("ArgumentName", "x-amz-acl")
                    .with_extra("ArgumentValue", name));
            }
        }
        Ok(acl)
    }

    /// The ACL a request's `x-amz-acl` or `x-amz-grant-*` headers ask for, if any.
    pub fn from_headers(
        req: &S3Request,
        owner: &str,
        bucket_owner: &str,
    ) -> Result<Option<Acl>, ServiceError> {
        let canned = req.header("x-amz-acl");
        let mut grants = Vec::new();
        for permission in PERMISSIONS {
            let header = format!(
                "x-amz-grant-{}",
                permission.to_ascii_lowercase().replace('_', "-")
            );
            let Some(value) = req.header(&header) else {
                continue;
            };
            for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let (kind, who) = item
                    .split_once('=')
                    .ok_or_else(|| invalid_grant(&header, value))?;
                let who = who.trim().trim_matches('"').to_owned();
                grants.push(grant(grantee(kind.trim(), who)?, permission));
            }
        }
        match (canned, grants.is_empty()) {
            (Some(_), false) => Err(ServiceError::client(
                "InvalidRequest",
                "Specifying both Canned ACLs and Header Grants is not allowed",
            )),
            (Some(c), true) => Acl::canned(c.trim(), owner, bucket_owner).map(Some),
            (None, false) => Ok(Some(Acl {
                owner: owner.to_owned(),
                grants,
            })),
            (None, true) => Ok(None),
        }
    }

    /// From an `AccessControlPolicy` document (PutBucketAcl / PutObjectAcl with a body).
    pub fn from_document(doc: &XmlElement, owner: &str) -> Result<Acl, ServiceError> {
        let mut grants = Vec::new();
        for g in doc
            .child("AccessControlList")
            .map(|l| l.children_named("Grant").collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let g: &XmlElement = g;
            let permission = g
                .child_text("Permission")
                .map(str::trim)
                .filter(|p| PERMISSIONS.contains(p))
                .ok_or_else(crate::errors::malformed_document)?;
            let who = g.child("Grantee").ok_or_else(crate::errors::malformed_document)?;
            let grantee = if let Some(id) = who.child_text("ID") {
                grantee("id", id.trim().to_owned())?
            } else if let Some(uri) = who.child_text("URI") {
                grantee("uri", uri.trim().to_owned())?
            } else if let Some(email) = who.child_text("EmailAddress") {
                grantee("emailAddress", email.trim().to_owned())?
            } else {
                return Err(crate::errors::malformed_document());
            };
            grants.push(grant(grantee, permission));
        }
        if let Some(id) = doc.child("Owner").and_then(|o| o.child_text("ID"))
            && id.trim() != canonical_id(owner)
        {
            return Err(crate::errors::access_denied());
        }
        Ok(Acl {
            owner: owner.to_owned(),
            grants,
        })
    }

    /// Grants to everyone or to every signed-in caller (what BlockPublicAcls refuses).
    pub fn is_public(&self) -> bool {
        self.grants
            .iter()
            .any(|g| matches!(&g.grantee, Grantee::Group(u) if u == ALL_USERS || u == AUTHENTICATED_USERS))
    }

    /// Whether only the owner has anything (what a `BucketOwnerEnforced` bucket accepts).
    pub fn is_owner_only(&self, bucket_owner: &str) -> bool {
        let id = canonical_id(bucket_owner);
        self.grants
            .iter()
            .all(|g| g.grantee == Grantee::User(id.clone()) && g.permission == "FULL_CONTROL")
    }

    /// Whether a grant gives `who` one of `permissions` (public grants skipped when ignored).
    pub fn allows(&self, who: &Principal, permissions: &[&str], ignore_public: bool) -> bool {
        let id = match who {
            Principal::Aws { account, .. } => Some(canonical_id(account)),
            _ => None,
        };
        self.grants.iter().any(|g| {
            let matches = match &g.grantee {
                Grantee::User(u) => id.as_deref() == Some(u.as_str()),
                Grantee::Group(u) if u == ALL_USERS => !ignore_public,
                Grantee::Group(u) if u == AUTHENTICATED_USERS => !ignore_public && id.is_some(),
                Grantee::Group(_) => false,
            };
            matches && (g.permission == "FULL_CONTROL" || permissions.contains(&g.permission.as_str()))
        })
    }

    /// The `AccessControlPolicy` document GetBucketAcl / GetObjectAcl answer.
    pub fn to_document(&self) -> String {
        let mut w: XmlWriter = crate::xml::doc("AccessControlPolicy");
        crate::xml::owner(&mut w, "Owner", &self.owner);
        w.start("AccessControlList");
        for g in &self.grants {
            w.start("Grant");
            let xsi = ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance");
            match &g.grantee {
                Grantee::User(id) => {
                    w.start_with_attrs("Grantee", &[xsi, ("xsi:type", "CanonicalUser")])
                        .element("ID", id);
                    if *id == canonical_id(&self.owner) {
                        w.element("DisplayName", &format!("lakebox-{}", self.owner));
                    }
                }
                Grantee::Group(uri) => {
                    w.start_with_attrs("Grantee", &[xsi, ("xsi:type", "Group")])
                        .element("URI", uri);
                }
            }
            w.end("Grantee").element("Permission", &g.permission).end("Grant");
        }
        w.end("AccessControlList");
        w.end("AccessControlPolicy");
        w.finish()
    }
}

fn invalid_grant(header: &str, value: &str) -> ServiceError {
    ServiceError::client("InvalidArgument", "")
        .with_extra("ArgumentName", header)
        .with_extra("ArgumentValue", value)
}

/// A grantee as the headers and documents name it: `id=`, `uri=` (the predefined groups) or
/// `emailAddress=` (which needs AWS's account directory: refused as S3 refuses an unknown one).
fn grantee(kind: &str, who: String) -> Result<Grantee, ServiceError> {
    match kind {
        "id" if who.len() == 64 && who.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Grantee::User(who.to_ascii_lowercase()))
        }
        "id" => Err(ServiceError::client("InvalidArgument", "Invalid id")
            .with_extra("ArgumentName", "CanonicalUser/ID")
            .with_extra("ArgumentValue", who)),
        "uri" if [ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY].contains(&who.as_str()) => {
            Ok(Grantee::Group(who))
        }
        "uri" => Err(ServiceError::client("InvalidArgument", "Invalid group uri")
            .with_extra("ArgumentName", "Group/URI")
            .with_extra("ArgumentValue", who)),
        "emailAddress" => Err(ServiceError::client(
            "UnresolvableGrantByEmailAddress",
            "The e-mail address you provided does not match any account on record.",
        )
        .with_extra("EmailAddress", who)),
        _ => Err(crate::errors::malformed_document()),
    }
}

/// The permissions that grant an action in an ACL (bucket ACL for bucket-level actions and
/// writes, object ACL for reads of an object), per S3's table.
pub fn permissions_for(action: &str) -> Option<(bool, &'static [&'static str])> {
    // (on the object's ACL?, permissions)
    Some(match action {
        "s3:ListBucket" | "s3:ListBucketVersions" | "s3:ListBucketMultipartUploads" => (false, &["READ"]),
        "s3:PutObject" | "s3:DeleteObject" | "s3:DeleteObjectVersion" | "s3:AbortMultipartUpload" => {
            (false, &["WRITE"])
        }
        "s3:GetBucketAcl" => (false, &["READ_ACP"]),
        "s3:PutBucketAcl" => (false, &["WRITE_ACP"]),
        "s3:GetObject" | "s3:GetObjectVersion" => (true, &["READ"]),
        "s3:GetObjectAcl" | "s3:GetObjectVersionAcl" => (true, &["READ_ACP"]),
        "s3:PutObjectAcl" | "s3:PutObjectVersionAcl" => (true, &["WRITE_ACP"]),
        _ => return None,
    })
}

/// Whether a canned ACL is one a `BucketOwnerEnforced` bucket takes (it changes nothing there).
fn owner_only_canned(req: &S3Request) -> bool {
    !req.headers.keys().any(|k| k.as_str().starts_with("x-amz-grant-"))
        && req
            .header("x-amz-acl")
            .is_none_or(|c| matches!(c.trim(), "private" | "bucket-owner-full-control"))
}

fn blocked_public_acl() -> ServiceError {
    crate::errors::access_denied()
}

/// The owner and ACL of an object written now by the request's caller (PutObject,
/// CopyObject, CreateMultipartUpload, form uploads): `None` for the bucket owner's private
/// object, which is what every object of a `BucketOwnerEnforced` bucket is.
pub fn for_new_object(
    store: &crate::store::ObjectStore,
    req: &S3Request,
    bucket: &str,
) -> Result<Option<Acl>, ServiceError> {
    let consulted = store.consulted(bucket);
    let Some(bucket_owner) = consulted.owner.clone() else {
        return Ok(None);
    };
    if consulted.ownership == Ownership::BucketOwnerEnforced {
        return if owner_only_canned(req) {
            Ok(None)
        } else {
            Err(not_supported())
        };
    }
    let writer = match crate::access::requester(req) {
        Principal::Aws { account, .. } => account,
        _ => bucket_owner.clone(),
    };
    let owner = match consulted.ownership {
        Ownership::BucketOwnerPreferred
            if req.header("x-amz-acl").map(str::trim) == Some("bucket-owner-full-control") =>
        {
            bucket_owner.clone()
        }
        _ => writer,
    };
    let acl = Acl::from_headers(req, &owner, &bucket_owner)?.unwrap_or_else(|| Acl::private(&owner));
    if acl.is_public() && consulted.access.block.block_public_acls {
        return Err(blocked_public_acl());
    }
    Ok((acl != Acl::private(&bucket_owner)).then_some(acl))
}

/// The ACL a PutBucketAcl / PutObjectAcl request sets on a resource of `owner`: from its
/// headers or its `AccessControlPolicy` body. `None` when the bucket's ACLs are disabled and
/// the ACL changes nothing (the owner's full control); `AccessControlListNotSupported` for any
/// other ACL there.
pub fn requested(
    consulted: &crate::store::Consulted,
    req: &S3Request,
    body: Option<&XmlElement>,
    owner: &str,
) -> Result<Option<Acl>, ServiceError> {
    let bucket_owner = consulted.owner.clone().unwrap_or_default();
    let acl = match body {
        Some(doc) => Acl::from_document(doc, owner)?,
        None => Acl::from_headers(req, owner, &bucket_owner)?.ok_or_else(|| {
            ServiceError::client(
                "MissingSecurityHeader",
                "Your request was missing a required header",
            )
            .with_extra("MissingHeaderName", "x-amz-acl")
        })?,
    };
    if consulted.ownership == Ownership::BucketOwnerEnforced {
        return if acl.is_owner_only(&bucket_owner) || (body.is_none() && owner_only_canned(req)) {
            Ok(None)
        } else {
            Err(not_supported())
        };
    }
    if acl.is_public() && consulted.access.block.block_public_acls {
        return Err(blocked_public_acl());
    }
    Ok(Some(acl))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(account: &str) -> Principal {
        lakebox_policy::Principal::root_of(account.to_owned())
    }

    #[test]
    fn canned_acls_grant_what_s3_documents() {
        let owner = "111111111111";
        let public = Acl::canned("public-read", owner, owner).unwrap();
        assert!(public.is_public());
        assert!(public.allows(&Principal::Anonymous, &["READ"], false));
        assert!(
            !public.allows(&Principal::Anonymous, &["READ"], true),
            "IgnorePublicAcls"
        );
        assert!(!public.allows(&Principal::Anonymous, &["WRITE"], false));
        let authenticated = Acl::canned("authenticated-read", owner, owner).unwrap();
        assert!(!authenticated.allows(&Principal::Anonymous, &["READ"], false));
        assert!(authenticated.allows(&root("222222222222"), &["READ"], false));
        // bucket-owner-full-control names the bucket owner only when the writer is someone else.
        let handed = Acl::canned("bucket-owner-full-control", "222222222222", owner).unwrap();
        assert!(handed.allows(&root(owner), &["READ"], false));
        assert_eq!(
            Acl::canned("bucket-owner-full-control", owner, owner).unwrap(),
            Acl::private(owner)
        );
        assert!(Acl::private(owner).is_owner_only(owner));
        assert_eq!(
            Acl::canned("everyone-please", owner, owner).unwrap_err().code,
            "InvalidArgument"
        );
    }

    #[test]
    fn full_control_implies_every_permission() {
        let acl = Acl::private("111111111111");
        for p in ["READ", "WRITE", "READ_ACP", "WRITE_ACP"] {
            assert!(acl.allows(&root("111111111111"), &[p], true));
            assert!(!acl.allows(&root("222222222222"), &[p], false));
        }
    }

    #[test]
    fn grantees_are_canonical_ids_groups_or_unresolvable_emails() {
        let id = canonical_id("222222222222");
        assert_eq!(grantee("id", id.to_ascii_uppercase()).unwrap(), Grantee::User(id));
        assert_eq!(grantee("id", "123".into()).unwrap_err().code, "InvalidArgument");
        assert_eq!(
            grantee("uri", ALL_USERS.into()).unwrap(),
            Grantee::Group(ALL_USERS.into())
        );
        assert_eq!(
            grantee("uri", "http://example.com/g".into()).unwrap_err().code,
            "InvalidArgument"
        );
        assert_eq!(
            grantee("emailAddress", "a@b.c".into()).unwrap_err().code,
            "UnresolvableGrantByEmailAddress"
        );
    }

    #[test]
    fn documents_round_trip() {
        let acl = Acl::canned("public-read", "111111111111", "111111111111").unwrap();
        let doc = lakebox_protocol::xml::parse(acl.to_document().as_bytes()).unwrap();
        assert_eq!(Acl::from_document(&doc, "111111111111").unwrap(), acl);
        // Another owner in the document is refused.
        assert_eq!(
            Acl::from_document(&doc, "222222222222").unwrap_err().code,
            "AccessDenied"
        );
    }

    #[test]
    fn ownership_defaults_to_bucket_owner_enforced() {
        assert_eq!(Ownership::of(None), Ownership::BucketOwnerEnforced);
        let doc = b"<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>";
        assert_eq!(Ownership::of(Some(doc)), Ownership::ObjectWriter);
    }
}
