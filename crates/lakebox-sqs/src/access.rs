//! Queue policies, enforced. A caller in the queue's own account may do anything a policy does
//! not explicitly deny (Lakebox has no IAM policies of its own to consult); a caller from
//! another account only what the queue's policy allows — as SQS decides
//! cross-account requests, with its `AccessDenied` otherwise.

use std::sync::Arc;

use lakebox_core::{RequestContext, ServiceError};
use lakebox_policy::{Context, Decision, Policy, Principal};

use crate::queues::Queue;

/// SQS's answer to a request its queue's policy does not let through (its message names the
/// regional endpoint, whatever the queue).
pub fn access_denied(region: &str) -> ServiceError {
    ServiceError::new(
        "AccessDenied",
        403,
        format!("Access to the resource https://sqs.{region}.amazonaws.com/ is denied."),
    )
}

/// Whether the caller of `ctx` may do `action` (`sqs:SendMessage`, …) to `q`. Every caller
/// acts as its account's root user: signed ones in their key's account, unsigned ones (taken
/// while verification is off) and Lakebox's own deliveries in the account of their context.
pub fn authorize(ctx: &RequestContext, q: &Queue, action: &str) -> Result<(), ServiceError> {
    let own = ctx.account_id == q.key.account;
    let Some(policy) = q.policy() else {
        return if own {
            Ok(())
        } else {
            Err(access_denied(&q.key.region))
        };
    };
    let who = Principal::root_of(ctx.account_id.clone());
    let mut context = Context::new();
    if let Principal::Aws { account, arn } = &who {
        context
            .set("aws:PrincipalAccount", account.clone())
            .set("aws:PrincipalArn", arn.clone());
    }
    context.set("aws:SecureTransport", "false");
    let decision = policy.evaluate(&lakebox_policy::Request {
        principal: &who,
        action,
        resource: &q.arn(),
        context: &context,
    });
    match decision {
        Decision::Deny => Err(access_denied(&q.key.region)),
        Decision::Allow => Ok(()),
        Decision::NotApplicable if own => Ok(()),
        Decision::NotApplicable => Err(access_denied(&q.key.region)),
    }
}

/// A queue's parsed policy, kept beside the text it was parsed from.
#[derive(Default)]
pub struct PolicyCache(std::sync::Mutex<Option<(String, Option<Arc<Policy>>)>>);

impl PolicyCache {
    /// The policy `text` parses to (`None`: none, or one that does not parse — SetQueueAttributes
    /// checks policies when they are set).
    pub fn get(&self, text: Option<&str>) -> Option<Arc<Policy>> {
        let text = text?;
        let mut slot = self.0.lock().unwrap();
        match &*slot {
            Some((t, p)) if t == text => p.clone(),
            _ => {
                let parsed = Policy::parse(text).ok().map(Arc::new);
                *slot = Some((text.to_owned(), parsed.clone()));
                parsed
            }
        }
    }
}
