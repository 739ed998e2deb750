//! Bucket operations: create, head, list, delete, location.

use std::sync::Arc;

use http::{Response, StatusCode};
use lakebox_core::ServiceError;
use lakebox_service::Body;

use crate::api::{S3Request, empty_response, set_header, xml_response};
use crate::errors;
use crate::store::{BucketRecord, ObjectStore};
use crate::xml::{doc, iso, owner};

/// S3's bucket naming rules (general purpose buckets).
pub fn validate_bucket_name(name: &str) -> Result<(), ServiceError> {
    let b = name.as_bytes();
    let ok = (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !["xn--", "sthree-", "amzn-s3-demo-"]
            .iter()
            .any(|p| name.starts_with(p))
        && !["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
            .iter()
            .any(|s| name.ends_with(s));
    if ok {
        Ok(())
    } else {
        Err(errors::invalid_bucket_name(name))
    }
}

pub fn list_buckets(store: &Arc<ObjectStore>, req: &S3Request) -> Result<Response<Body>, ServiceError> {
    let account = &req.ctx.account_id;
    let prefix = req.query("prefix").unwrap_or("");
    let mut w = doc("ListAllMyBucketsResult");
    owner(&mut w, "Owner", account);
    w.start("Buckets");
    for b in store
        .list_buckets(account)?
        .iter()
        .filter(|b| b.name.starts_with(prefix))
    {
        w.start("Bucket")
            .element("Name", &b.name)
            .element("CreationDate", &iso(b.created_millis))
            .element("BucketRegion", &b.region)
            .end("Bucket");
    }
    w.end("Buckets");
    if !prefix.is_empty() {
        w.element("Prefix", prefix);
    }
    w.end("ListAllMyBucketsResult");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

/// The region a CreateBucket asks for: its `LocationConstraint` (`EU` is the legacy name of
/// eu-west-1), or us-east-1 when absent. As in AWS, a constraint must match the region the
/// request was sent to, and us-east-1 is never written as a constraint.
fn requested_region(req: &S3Request, body: &[u8]) -> Result<String, ServiceError> {
    let constraint = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let root = lakebox_protocol::xml::parse(body).map_err(|_| errors::malformed_document())?;
        root.child_text("LocationConstraint")
            .map(str::to_owned)
            .filter(|c| !c.is_empty())
    };
    let region = &req.ctx.region;
    match constraint.as_deref() {
        None if region == "us-east-1" => Ok("us-east-1".into()),
        None => Err(ServiceError::client(
            "IllegalLocationConstraintException",
            "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.",
        )),
        Some("us-east-1") => Err(ServiceError::client(
            "InvalidLocationConstraint",
            "The specified location-constraint is not valid",
        )
        .with_extra("LocationConstraint", "us-east-1")),
        Some(c) => {
            let wanted = if c == "EU" { "eu-west-1" } else { c };
            if wanted != region {
                return Err(ServiceError::client(
                    "IllegalLocationConstraintException",
                    format!(
                        "The {c} location constraint is incompatible for the region specific endpoint this request was sent to."
                    ),
                ));
            }
            Ok(wanted.to_owned())
        }
    }
}

pub async fn create_bucket(
    store: &Arc<ObjectStore>,
    mut req: S3Request,
) -> Result<Response<Body>, ServiceError> {
    let name = req.bucket.clone().unwrap_or_default();
    validate_bucket_name(&name)?;
    let body = req.xml_body().await?;
    let region = requested_region(&req, &body)?;
    // A bucket created with Object Lock is versioned from the start, as in S3.
    let locked = req
        .header("x-amz-bucket-object-lock-enabled")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let record = BucketRecord {
        name: name.clone(),
        region: region.clone(),
        owner: req.ctx.account_id.clone(),
        created_millis: store.now_millis(),
        versioning: locked.then(|| "Enabled".to_owned()),
    };
    let mut configs = Vec::new();
    if locked {
        configs.push((
            "object-lock",
            crate::object_lock::ENABLED_DOCUMENT.as_bytes().to_vec(),
        ));
    }
    let ownership = match req.header("x-amz-object-ownership").map(str::trim) {
        None => crate::acl::Ownership::default(),
        Some(o) => {
            let named = crate::acl::Ownership::named(o).ok_or_else(|| {
                errors::invalid_argument(
                    "Invalid x-amz-object-ownership header",
                    "x-amz-object-ownership",
                    o,
                )
            })?;
            configs.push((
                "ownershipControls",
                format!(
                    "<OwnershipControls xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ObjectOwnership>{o}</ObjectOwnership></Rule></OwnershipControls>"
                )
                .into_bytes(),
            ));
            named
        }
    };
    let owner = req.ctx.account_id.clone();
    if let Some(acl) = crate::acl::Acl::from_headers(&req, &owner, &owner)? {
        if ownership == crate::acl::Ownership::BucketOwnerEnforced && !acl.is_owner_only(&owner) {
            return Err(ServiceError::client(
                "InvalidBucketAclWithObjectOwnership",
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
            ));
        }
        // New buckets block public access, so a public ACL cannot be set on one.
        if acl.is_public() {
            return Err(ServiceError::client(
                "InvalidBucketAclWithBlockPublicAccessError",
                "Bucket cannot have public ACLs set with BlockPublicAccess enabled",
            ));
        }
        if ownership != crate::acl::Ownership::BucketOwnerEnforced && acl != crate::acl::Acl::private(&owner)
        {
            let doc = serde_json::to_vec(&acl).map_err(|e| ServiceError::internal(e.to_string()))?;
            configs.push(("acl", doc));
        }
    }
    let created = store.create_bucket_with(record, configs).await?;
    // Re-creating a bucket you own succeeds in us-east-1 (legacy behaviour) and fails elsewhere.
    if !created && region != "us-east-1" {
        return Err(errors::bucket_already_owned_by_you(&name));
    }
    let mut resp = empty_response(StatusCode::OK);
    set_header(&mut resp, "location", &format!("/{name}"));
    Ok(resp)
}

pub fn head_bucket(store: &Arc<ObjectStore>, req: &S3Request) -> Result<Response<Body>, ServiceError> {
    let name = req.bucket.as_deref().unwrap_or_default();
    let b = store.existing_bucket(name)?;
    let mut resp = empty_response(StatusCode::OK);
    set_header(&mut resp, "x-amz-bucket-region", &b.region);
    set_header(&mut resp, "x-amz-access-point-alias", "false");
    Ok(resp)
}

pub async fn delete_bucket(store: &Arc<ObjectStore>, req: S3Request) -> Result<Response<Body>, ServiceError> {
    store
        .delete_bucket(req.bucket.as_deref().unwrap_or_default())
        .await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub fn get_bucket_location(
    store: &Arc<ObjectStore>,
    req: &S3Request,
) -> Result<Response<Body>, ServiceError> {
    let b = store.existing_bucket(req.bucket.as_deref().unwrap_or_default())?;
    let mut w = doc("LocationConstraint");
    // us-east-1 is reported as an empty constraint, as S3 does.
    if b.region != "us-east-1" {
        w.raw(&lakebox_protocol::xml::escape(&b.region));
    }
    w.end("LocationConstraint");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.logs", "a1b", &"a".repeat(63), "1.2.3.x"] {
            assert!(validate_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "abc-s3alias",
            "under_score",
            "sthree-x",
            "ab c",
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }
}
