//! Settings AWS keeps beside a function that change nothing Lakebox runs, but that deployment
//! tools read and write with every function: code signing configurations (Terraform's
//! `aws_lambda_function` reads GetFunctionCodeSigningConfig each time it refreshes a function),
//! the recursion setting, and the runtime management setting. They are stored, validated and
//! answered as AWS answers them. Lakebox has no AWS Signer, so packages are not checked against
//! a configuration's signing profiles (said in docs/lambda.md).

use lakebox_core::{RequestContext, ServiceError};
use serde::{Deserialize, Serialize};

use crate::Lambda;
use crate::api::*;
use crate::functions::{invalid, storage, user_error};
use crate::versions::page_of;

const CODE_SIGNING: &str = "code_signing_configs";

/// What a function's runtime management setting says, by qualifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RuntimeManagement {
    pub update_runtime_on: UpdateRuntimeOn,
    pub runtime_version_arn: Option<String>,
}

fn csc_key(account: &str, region: &str, id: &str) -> Vec<u8> {
    format!("{account}\0{region}\0{id}").into_bytes()
}

fn csc_not_found(arn: &str) -> ServiceError {
    user_error(
        "ResourceNotFoundException",
        404,
        format!("Code signing configuration not found: {arn}"),
    )
}

fn check_publishers(p: &AllowedPublishers) -> Result<(), ServiceError> {
    if p.signing_profile_version_arns.is_empty() || p.signing_profile_version_arns.len() > 20 {
        return Err(invalid(
            "AllowedPublishers must name from 1 to 20 signing profile version ARNs.",
        ));
    }
    Ok(())
}

impl Lambda {
    /// The code signing configuration an ARN names, in the caller's account and region.
    pub(crate) fn code_signing_config(
        &self,
        ctx: &RequestContext,
        arn: &str,
    ) -> Result<CodeSigningConfig, ServiceError> {
        let id = arn
            .strip_prefix(&format!(
                "arn:aws:lambda:{}:{}:code-signing-config:",
                ctx.region, ctx.account_id
            ))
            .ok_or_else(|| csc_not_found(arn))?;
        let raw = self
            .meta
            .get(CODE_SIGNING, &csc_key(&ctx.account_id, &ctx.region, id))
            .map_err(storage)?
            .ok_or_else(|| csc_not_found(arn))?;
        serde_json::from_slice(&raw).map_err(|e| ServiceError::internal(e.to_string()))
    }

    fn save_code_signing_config(
        &self,
        ctx: &RequestContext,
        c: &CodeSigningConfig,
    ) -> Result<(), ServiceError> {
        let value = serde_json::to_vec(c).map_err(|e| ServiceError::internal(e.to_string()))?;
        self.meta
            .put(
                CODE_SIGNING,
                &csc_key(&ctx.account_id, &ctx.region, &c.code_signing_config_id),
                &value,
            )
            .map_err(storage)
    }

    pub(crate) fn create_code_signing_config_impl(
        &self,
        ctx: &RequestContext,
        input: CreateCodeSigningConfigRequest,
    ) -> Result<CreateCodeSigningConfigResponse, ServiceError> {
        check_publishers(&input.allowed_publishers)?;
        let id = format!("csc-{}", &uuid::Uuid::new_v4().simple().to_string()[..17]);
        let config = CodeSigningConfig {
            code_signing_config_arn: format!(
                "arn:aws:lambda:{}:{}:code-signing-config:{id}",
                ctx.region, ctx.account_id
            ),
            code_signing_config_id: id,
            description: Some(input.description.unwrap_or_default()),
            allowed_publishers: input.allowed_publishers,
            code_signing_policies: CodeSigningPolicies {
                untrusted_artifact_on_deployment: Some(
                    input
                        .code_signing_policies
                        .and_then(|p| p.untrusted_artifact_on_deployment)
                        .unwrap_or(CodeSigningPolicy::Warn),
                ),
            },
            last_modified: self.now_string(),
        };
        self.save_code_signing_config(ctx, &config)?;
        Ok(CreateCodeSigningConfigResponse {
            code_signing_config: config,
        })
    }

    pub(crate) fn get_code_signing_config_impl(
        &self,
        ctx: &RequestContext,
        input: GetCodeSigningConfigRequest,
    ) -> Result<GetCodeSigningConfigResponse, ServiceError> {
        Ok(GetCodeSigningConfigResponse {
            code_signing_config: self.code_signing_config(ctx, &input.code_signing_config_arn)?,
        })
    }

    pub(crate) fn update_code_signing_config_impl(
        &self,
        ctx: &RequestContext,
        input: UpdateCodeSigningConfigRequest,
    ) -> Result<UpdateCodeSigningConfigResponse, ServiceError> {
        let mut config = self.code_signing_config(ctx, &input.code_signing_config_arn)?;
        if let Some(p) = input.allowed_publishers {
            check_publishers(&p)?;
            config.allowed_publishers = p;
        }
        if let Some(d) = input.description {
            config.description = Some(d);
        }
        if let Some(p) = input
            .code_signing_policies
            .and_then(|p| p.untrusted_artifact_on_deployment)
        {
            config.code_signing_policies.untrusted_artifact_on_deployment = Some(p);
        }
        config.last_modified = self.now_string();
        self.save_code_signing_config(ctx, &config)?;
        Ok(UpdateCodeSigningConfigResponse {
            code_signing_config: config,
        })
    }

    /// The functions that use the configuration `arn`, by ARN.
    fn functions_signed_by(&self, ctx: &RequestContext, arn: &str) -> Result<Vec<String>, ServiceError> {
        Ok(self
            .all_functions(ctx)?
            .into_iter()
            .filter(|f| f.code_signing_config.as_deref() == Some(arn))
            .map(|f| f.arn().to_owned())
            .collect())
    }

    pub(crate) fn delete_code_signing_config_impl(
        &self,
        ctx: &RequestContext,
        input: DeleteCodeSigningConfigRequest,
    ) -> Result<DeleteCodeSigningConfigResponse, ServiceError> {
        let config = self.code_signing_config(ctx, &input.code_signing_config_arn)?;
        // As AWS: only a configuration no function uses can be deleted.
        if !self
            .functions_signed_by(ctx, &config.code_signing_config_arn)?
            .is_empty()
        {
            return Err(user_error(
                "ResourceConflictException",
                409,
                format!(
                    "The code signing configuration {} is in use by one or more functions.",
                    config.code_signing_config_arn
                ),
            ));
        }
        self.meta
            .delete(
                CODE_SIGNING,
                &csc_key(&ctx.account_id, &ctx.region, &config.code_signing_config_id),
            )
            .map_err(storage)?;
        Ok(DeleteCodeSigningConfigResponse {})
    }

    pub(crate) fn list_code_signing_configs_impl(
        &self,
        ctx: &RequestContext,
        input: ListCodeSigningConfigsRequest,
    ) -> Result<ListCodeSigningConfigsResponse, ServiceError> {
        let prefix = csc_key(&ctx.account_id, &ctx.region, "");
        let all = self
            .meta
            .scan_prefix(CODE_SIGNING, &prefix, None, usize::MAX)
            .map_err(storage)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<CodeSigningConfig>(&v).ok())
            .collect();
        let (page, next_marker) = page_of(all, input.marker.as_deref(), input.max_items)?;
        Ok(ListCodeSigningConfigsResponse {
            next_marker,
            code_signing_configs: Some(page),
        })
    }

    pub(crate) fn list_functions_by_code_signing_config_impl(
        &self,
        ctx: &RequestContext,
        input: ListFunctionsByCodeSigningConfigRequest,
    ) -> Result<ListFunctionsByCodeSigningConfigResponse, ServiceError> {
        let config = self.code_signing_config(ctx, &input.code_signing_config_arn)?;
        let all = self.functions_signed_by(ctx, &config.code_signing_config_arn)?;
        let (page, next_marker) = page_of(all, input.marker.as_deref(), input.max_items)?;
        Ok(ListFunctionsByCodeSigningConfigResponse {
            next_marker,
            function_arns: Some(page),
        })
    }

    pub(crate) fn put_function_code_signing_config_impl(
        &self,
        ctx: &RequestContext,
        input: PutFunctionCodeSigningConfigRequest,
    ) -> Result<PutFunctionCodeSigningConfigResponse, ServiceError> {
        let config = self.code_signing_config(ctx, &input.code_signing_config_arn)?;
        let mut stored = self.existing(ctx, &input.function_name, None)?;
        stored.code_signing_config = Some(config.code_signing_config_arn.clone());
        self.store(ctx, &stored)?;
        Ok(PutFunctionCodeSigningConfigResponse {
            code_signing_config_arn: config.code_signing_config_arn,
            function_name: stored.name().to_owned(),
        })
    }

    pub(crate) fn get_function_code_signing_config_impl(
        &self,
        ctx: &RequestContext,
        input: GetFunctionCodeSigningConfigRequest,
    ) -> Result<GetFunctionCodeSigningConfigResponse, ServiceError> {
        let stored = self.existing(ctx, &input.function_name, None)?;
        // A function without one answers empty strings, as AWS does.
        Ok(GetFunctionCodeSigningConfigResponse {
            code_signing_config_arn: stored.code_signing_config.clone().unwrap_or_default(),
            function_name: stored.name().to_owned(),
        })
    }

    pub(crate) fn delete_function_code_signing_config_impl(
        &self,
        ctx: &RequestContext,
        input: DeleteFunctionCodeSigningConfigRequest,
    ) -> Result<(), ServiceError> {
        let mut stored = self.existing(ctx, &input.function_name, None)?;
        if stored.code_signing_config.take().is_some() {
            self.store(ctx, &stored)?;
        }
        Ok(())
    }

    pub(crate) fn put_function_recursion_config_impl(
        &self,
        ctx: &RequestContext,
        input: PutFunctionRecursionConfigRequest,
    ) -> Result<PutFunctionRecursionConfigResponse, ServiceError> {
        if let RecursiveLoop::Unknown(v) = &input.recursive_loop {
            return Err(invalid(format!(
                "1 validation error detected: Value '{v}' at 'recursiveLoop' failed to satisfy constraint: Member must satisfy enum value set: [Allow, Terminate]"
            )));
        }
        let mut stored = self.existing(ctx, &input.function_name, None)?;
        stored.recursive_loop = Some(input.recursive_loop.clone());
        self.store(ctx, &stored)?;
        Ok(PutFunctionRecursionConfigResponse {
            recursive_loop: Some(input.recursive_loop),
        })
    }

    pub(crate) fn get_function_recursion_config_impl(
        &self,
        ctx: &RequestContext,
        input: GetFunctionRecursionConfigRequest,
    ) -> Result<GetFunctionRecursionConfigResponse, ServiceError> {
        let stored = self.existing(ctx, &input.function_name, None)?;
        Ok(GetFunctionRecursionConfigResponse {
            recursive_loop: Some(stored.recursive_loop.unwrap_or(RecursiveLoop::Terminate)),
        })
    }

    pub(crate) fn put_runtime_management_config_impl(
        &self,
        ctx: &RequestContext,
        input: PutRuntimeManagementConfigRequest,
    ) -> Result<PutRuntimeManagementConfigResponse, ServiceError> {
        let manual = input.update_runtime_on == UpdateRuntimeOn::Manual;
        if manual != input.runtime_version_arn.is_some() {
            return Err(invalid(if manual {
                "RuntimeVersionArn is required when UpdateRuntimeOn is Manual."
            } else {
                "RuntimeVersionArn can be set only when UpdateRuntimeOn is Manual."
            }));
        }
        let qualifier = input.qualifier.clone().unwrap_or_else(|| "$LATEST".into());
        let target = self.target(ctx, &input.function_name, Some(&qualifier), false)?;
        let mut stored = self.existing(ctx, &input.function_name, None)?;
        let setting = RuntimeManagement {
            update_runtime_on: input.update_runtime_on,
            runtime_version_arn: input.runtime_version_arn,
        };
        stored.runtime_management.insert(qualifier, setting.clone());
        self.store(ctx, &stored)?;
        Ok(PutRuntimeManagementConfigResponse {
            update_runtime_on: setting.update_runtime_on,
            function_arn: target.invoked_arn,
            runtime_version_arn: setting.runtime_version_arn,
        })
    }

    pub(crate) fn get_runtime_management_config_impl(
        &self,
        ctx: &RequestContext,
        input: GetRuntimeManagementConfigRequest,
    ) -> Result<GetRuntimeManagementConfigResponse, ServiceError> {
        let qualifier = input.qualifier.clone().unwrap_or_else(|| "$LATEST".into());
        let target = self.target(ctx, &input.function_name, Some(&qualifier), false)?;
        let stored = self.existing(ctx, &input.function_name, None)?;
        let setting = stored.runtime_management.get(&qualifier);
        Ok(GetRuntimeManagementConfigResponse {
            update_runtime_on: Some(setting.map_or(UpdateRuntimeOn::Auto, |s| s.update_runtime_on.clone())),
            runtime_version_arn: setting.and_then(|s| s.runtime_version_arn.clone()),
            function_arn: Some(target.invoked_arn),
        })
    }
}
