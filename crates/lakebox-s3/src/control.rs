//! S3 Control's account-wide public access block (`/v20180820/configuration/publicAccessBlock`
//! with `x-amz-account-id`): Get/Put/DeletePublicAccessBlock. It adds to every bucket's own
//! block, the most restrictive setting winning, as in S3.

use std::sync::Arc;

use http::{Method, Response, StatusCode};
use lakebox_core::ServiceError;
use lakebox_service::Body;

use crate::api::{S3Request, empty_response, xml_response};
use crate::errors;
use crate::store::ObjectStore;

/// S3 Control's path prefix (its API version).
pub const PREFIX: &str = "/v20180820/";

const SETTING: &str = "publicAccessBlock";

pub async fn dispatch(
    store: &Arc<ObjectStore>,
    mut req: S3Request,
    path: &str,
) -> Result<Response<Body>, ServiceError> {
    if path.trim_end_matches('/') != "/v20180820/configuration/publicAccessBlock" {
        return Err(errors::not_implemented("This S3 Control operation"));
    }
    let verb = match req.method {
        Method::GET => "Get",
        Method::PUT => "Put",
        Method::DELETE => "Delete",
        _ => return Err(errors::method_not_allowed()),
    };
    if let Some(slot) = &req.operation {
        slot.set(format!("{verb}PublicAccessBlock"));
    }
    // Only the account itself manages its settings.
    let account = req.header("x-amz-account-id").unwrap_or_default().to_owned();
    if req.anonymous || account != req.ctx.account_id {
        return Err(errors::access_denied());
    }
    match req.method {
        Method::GET => match store.account_config(&account, SETTING)? {
            Some(doc) => Ok(xml_response(
                StatusCode::OK,
                String::from_utf8_lossy(&doc).into_owned(),
            )),
            None => Err(ServiceError::new(
                "NoSuchPublicAccessBlockConfiguration",
                404,
                "The public access block configuration was not found",
            )
            .with_extra("AccountId", account)),
        },
        Method::PUT => {
            let doc = req.xml_document("PublicAccessBlockConfiguration").await?;
            let mut w = lakebox_protocol::xml::XmlWriter::with_declaration();
            w.start("PublicAccessBlockConfiguration");
            for flag in [
                "BlockPublicAcls",
                "IgnorePublicAcls",
                "BlockPublicPolicy",
                "RestrictPublicBuckets",
            ] {
                let on = match doc.child_text(flag).map(str::trim) {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(_) => return Err(errors::malformed_document()),
                };
                w.element(flag, if on { "true" } else { "false" });
            }
            w.end("PublicAccessBlockConfiguration");
            store
                .set_account_config(&account, SETTING, Some(w.finish().into_bytes()))
                .await?;
            Ok(empty_response(StatusCode::OK))
        }
        _ => {
            store.set_account_config(&account, SETTING, None).await?;
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
    }
}
