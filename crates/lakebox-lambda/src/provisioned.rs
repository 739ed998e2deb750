//! Provisioned concurrency: a version or alias keeps that many execution environments
//! initialized ahead of its invocations (`AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency`),
//! so none of the first that many concurrent invocations is a cold start. A keeper task starts
//! what is missing — after PutProvisionedConcurrencyConfig, after a restart, after an
//! environment ended — and the configuration reports IN_PROGRESS until the environments are
//! there, then READY, as AWS reports it.

use std::sync::Arc;
use std::time::Duration;

use lakebox_core::{Arn, RequestContext, ServiceError};
use serde::{Deserialize, Serialize};

use crate::Lambda;
use crate::api::*;
use crate::functions::{Stored, invalid, user_error};
use crate::versions::page_of;

/// How often the keeper looks for missing environments.
const KEEP_EVERY: Duration = Duration::from_secs(5);

/// One qualifier's provisioned concurrency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Provisioned {
    pub requested: i32,
    pub last_modified: String,
}

fn not_configured() -> ServiceError {
    user_error(
        "ProvisionedConcurrencyConfigNotFoundException",
        404,
        "No Provisioned Concurrency Config found for this function",
    )
}

impl Lambda {
    /// What a configuration reports: the environments allocated so far (counted in its
    /// version's pool) and its status.
    fn report(
        &self,
        ctx: &RequestContext,
        stored: &Stored,
        qualifier: &str,
        p: &Provisioned,
    ) -> ProvisionedConcurrencyConfigListItem {
        let live = self
            .target(ctx, stored.name(), Some(qualifier), false)
            .map_or(0, |t| self.runtimes.live(&t.pool()));
        let allocated = (live as i32).min(p.requested);
        ProvisionedConcurrencyConfigListItem {
            function_arn: Some(format!("{}:{qualifier}", stored.arn())),
            requested_provisioned_concurrent_executions: Some(p.requested),
            available_provisioned_concurrent_executions: Some(allocated),
            allocated_provisioned_concurrent_executions: Some(allocated),
            status: Some(if allocated >= p.requested {
                ProvisionedConcurrencyStatusEnum::Ready
            } else {
                ProvisionedConcurrencyStatusEnum::InProgress
            }),
            status_reason: None,
            last_modified: Some(p.last_modified.clone()),
        }
    }

    pub(crate) fn put_provisioned_concurrency_config_impl(
        &self,
        ctx: &RequestContext,
        input: PutProvisionedConcurrencyConfigRequest,
    ) -> Result<PutProvisionedConcurrencyConfigResponse, ServiceError> {
        if input.qualifier == "$LATEST" {
            return Err(invalid(
                "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
            ));
        }
        let wanted = input.provisioned_concurrent_executions;
        if wanted < 1 {
            return Err(invalid("ProvisionedConcurrentExecutions must be at least 1."));
        }
        // The version or alias must exist.
        self.target(ctx, &input.function_name, Some(&input.qualifier), false)?;
        let mut stored = self.existing(ctx, &input.function_name, None)?;
        if let Some(reserved) = stored.reserved_concurrency
            && wanted > reserved
        {
            return Err(invalid(format!(
                "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function. Requested: {wanted}, Reserved: {reserved}."
            )));
        }
        let config = Provisioned {
            requested: wanted,
            last_modified: self.now_string(),
        };
        stored.provisioned.insert(input.qualifier.clone(), config.clone());
        self.store(ctx, &stored)?;
        self.provisioning.notify_one();
        Ok(PutProvisionedConcurrencyConfigResponse {
            requested_provisioned_concurrent_executions: Some(wanted),
            available_provisioned_concurrent_executions: Some(0),
            allocated_provisioned_concurrent_executions: Some(0),
            status: Some(ProvisionedConcurrencyStatusEnum::InProgress),
            status_reason: None,
            last_modified: Some(config.last_modified),
        })
    }

    pub(crate) fn get_provisioned_concurrency_config_impl(
        &self,
        ctx: &RequestContext,
        input: GetProvisionedConcurrencyConfigRequest,
    ) -> Result<GetProvisionedConcurrencyConfigResponse, ServiceError> {
        let stored = self.existing(ctx, &input.function_name, None)?;
        let p = stored
            .provisioned
            .get(&input.qualifier)
            .ok_or_else(not_configured)?;
        let r = self.report(ctx, &stored, &input.qualifier, p);
        Ok(GetProvisionedConcurrencyConfigResponse {
            requested_provisioned_concurrent_executions: r.requested_provisioned_concurrent_executions,
            available_provisioned_concurrent_executions: r.available_provisioned_concurrent_executions,
            allocated_provisioned_concurrent_executions: r.allocated_provisioned_concurrent_executions,
            status: r.status,
            status_reason: r.status_reason,
            last_modified: r.last_modified,
        })
    }

    pub(crate) fn delete_provisioned_concurrency_config_impl(
        &self,
        ctx: &RequestContext,
        input: DeleteProvisionedConcurrencyConfigRequest,
    ) -> Result<(), ServiceError> {
        let mut stored = self.existing(ctx, &input.function_name, None)?;
        if stored.provisioned.remove(&input.qualifier).is_none() {
            return Err(not_configured());
        }
        self.store(ctx, &stored)?;
        // The environments stay warm as on-demand ones, up to the usual number.
        if let Ok(t) = self.target(ctx, &input.function_name, Some(&input.qualifier), false) {
            self.runtimes.unprovision(&t.pool());
        }
        Ok(())
    }

    pub(crate) fn list_provisioned_concurrency_configs_impl(
        &self,
        ctx: &RequestContext,
        input: ListProvisionedConcurrencyConfigsRequest,
    ) -> Result<ListProvisionedConcurrencyConfigsResponse, ServiceError> {
        let stored = self.existing(ctx, &input.function_name, None)?;
        let all: Vec<_> = stored
            .provisioned
            .iter()
            .map(|(qualifier, p)| self.report(ctx, &stored, qualifier, p))
            .collect();
        let (page, next_marker) = page_of(all, input.marker.as_deref(), input.max_items)?;
        Ok(ListProvisionedConcurrencyConfigsResponse {
            provisioned_concurrency_configs: Some(page),
            next_marker,
        })
    }

    /// Keeps every provisioned configuration's environments live (see the module's comment).
    pub fn start_provisioning(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let lambda = self.clone();
        tokio::spawn(async move {
            loop {
                let notified = lambda.provisioning.notified();
                for stored in lambda.every_function().unwrap_or_default() {
                    let Some(arn) = Arn::parse(stored.arn()) else {
                        continue;
                    };
                    let ctx =
                        RequestContext::internal(&arn.account_id, &arn.region, lambda.clock.now_millis());
                    for (qualifier, p) in &stored.provisioned {
                        let count = p.requested.max(0) as usize;
                        let Ok(target) = lambda.target(&ctx, stored.name(), Some(qualifier), false) else {
                            continue;
                        };
                        // The package is looked at only when environments are missing.
                        if lambda.runtimes.is_provisioned(&target.pool(), count) {
                            continue;
                        }
                        if let Ok(launch) = lambda.launch_for(&ctx, &target, true)
                            && !lambda.runtimes.provision(&launch, count).await
                        {
                            tracing::warn!(function = %stored.name(), %qualifier, "cannot start provisioned environments");
                        }
                    }
                }
                let _ = tokio::time::timeout(KEEP_EVERY, notified).await;
            }
        })
    }
}
