//! AWS Security Token Service, as much as a local stack needs today: `GetCallerIdentity`,
//! which tools and scripts call to check which account their credentials act in.
//!
//! The caller is the account's root user, since Lakebox has no IAM users yet; the account is
//! the one the gateway derived from the access key. The shapes, the awsQuery decoding and XML
//! encoding and the dispatch are generated into [`api`]; other actions answer `InvalidAction`.

pub mod api;

use std::sync::Arc;

use lakebox_core::{Arn, RequestContext, ServiceError};
use lakebox_protocol::query::QueryRequest;
use lakebox_service::{BoxFuture, QueryService};

use crate::api::{GetCallerIdentityRequest, GetCallerIdentityResponse, StsApi};

#[derive(Debug, Default)]
pub struct Sts;

impl QueryService for Sts {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: QueryRequest,
    ) -> BoxFuture<Result<String, ServiceError>> {
        api::dispatch(self, ctx, req)
    }
}

impl StsApi for Sts {
    async fn get_caller_identity(
        &self,
        ctx: &RequestContext,
        _input: GetCallerIdentityRequest,
    ) -> Result<GetCallerIdentityResponse, ServiceError> {
        // IAM ARNs are global: no region.
        Ok(GetCallerIdentityResponse {
            user_id: Some(ctx.account_id.clone()),
            account: Some(ctx.account_id.clone()),
            arn: Some(Arn::new("iam", "", &ctx.account_id, "root").to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn caller_identity_is_the_accounts_root() {
        let mut ctx = RequestContext::for_tests();
        ctx.account_id = "123456789012".into();
        let req = QueryRequest::parse(b"Action=GetCallerIdentity&Version=2011-06-15").unwrap();
        let xml = Arc::new(Sts).call(ctx, req).await.unwrap();
        let root = lakebox_protocol::xml::parse(xml.as_bytes()).unwrap();
        let result = root.child("GetCallerIdentityResult").unwrap();
        assert_eq!(result.child_text("Account"), Some("123456789012"));
        assert_eq!(result.child_text("Arn"), Some("arn:aws:iam::123456789012:root"));
    }

    #[tokio::test]
    async fn other_actions_are_invalid() {
        let req = QueryRequest::parse(b"Action=AssumeRole").unwrap();
        let err = Arc::new(Sts)
            .call(RequestContext::for_tests(), req)
            .await
            .unwrap_err();
        assert_eq!(err.code, "InvalidAction");
    }
}
