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
use crate::functions::{invalid, user_error};
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

/// What a configuration reports: its environments allocated so far, and its status.
struct Progress {
    allocated: i32,
    status: ProvisionedConcurrencyStatusEnum,
}

impl Lambda {
    fn progress(&self, ctx: &RequestContext, function: &str, qualifier: &str, p: &Provisioned) -> Progress {
        let live = self
            .target(ctx, function, Some(qualifier), false)
            .and_then(|t| self.launch_for(ctx, &t, true))
            .map_or(0, |launch| self.runtimes.live(&launch));
        let allocated = (live as i32).min(p.requested);
        Progress {
            allocated,
            status: if allocated >= p.requested {
                ProvisionedConcurrencyStatusEnum::Ready
            } else {
                ProvisionedConcurrencyStatusEnum::InProgress
            },
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
        let progress = self.progress(ctx, &input.function_name, &input.qualifier, p);
        Ok(GetProvisionedConcurrencyConfigResponse {
            requested_provisioned_concurrent_executions: Some(p.requested),
            available_provisioned_concurrent_executions: Some(progress.allocated),
            allocated_provisioned_concurrent_executions: Some(progress.allocated),
            status: Some(progress.status),
            status_reason: None,
            last_modified: Some(p.last_modified.clone()),
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
        if let Ok(launch) = self
            .target(ctx, &input.function_name, Some(&input.qualifier), false)
            .and_then(|t| self.launch_for(ctx, &t, true))
        {
            self.runtimes.unprovision(&launch);
        }
        Ok(())
    }

    pub(crate) fn list_provisioned_concurrency_configs_impl(
        &self,
        ctx: &RequestContext,
        input: ListProvisionedConcurrencyConfigsRequest,
    ) -> Result<ListProvisionedConcurrencyConfigsResponse, ServiceError> {
        let stored = self.existing(ctx, &input.function_name, None)?;
        let all: Vec<ProvisionedConcurrencyConfigListItem> = stored
            .provisioned
            .iter()
            .map(|(qualifier, p)| {
                let progress = self.progress(ctx, &input.function_name, qualifier, p);
                ProvisionedConcurrencyConfigListItem {
                    function_arn: Some(format!("{}:{qualifier}", stored.arn())),
                    requested_provisioned_concurrent_executions: Some(p.requested),
                    available_provisioned_concurrent_executions: Some(progress.allocated),
                    allocated_provisioned_concurrent_executions: Some(progress.allocated),
                    status: Some(progress.status),
                    status_reason: None,
                    last_modified: Some(p.last_modified.clone()),
                }
            })
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
                        let launch = lambda
                            .target(&ctx, stored.name(), Some(qualifier), false)
                            .and_then(|t| lambda.launch_for(&ctx, &t, true));
                        if let Ok(launch) = launch
                            && !lambda
                                .runtimes
                                .provision(&launch, p.requested.max(0) as usize)
                                .await
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
