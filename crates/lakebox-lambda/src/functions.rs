//! Functions: their durable records and the operations that create, read, change and delete
//! them. A record holds the `$LATEST` configuration as Lambda reports it, its tags and the hash
//! of its package; every change is one fsynced metadata transaction.

use std::collections::BTreeMap;
use std::time::Duration;

use lakebox_core::arn::Arn;
use lakebox_core::{RequestContext, ServiceError};
use serde::{Deserialize, Serialize};

use crate::Lambda;
use crate::api::*;
use crate::runtime::Launch;

pub(crate) const TABLE: &str = "functions";
/// Lambda's defaults for what CreateFunction leaves out.
const DEFAULT_TIMEOUT: i32 = 3;
const DEFAULT_MEMORY: i32 = 128;
const DEFAULT_EPHEMERAL_MB: i32 = 512;

/// One function as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub config: FunctionConfiguration,
    pub tags: BTreeMap<String, String>,
    /// The package's hex SHA-256 (its file in the code store).
    pub code: String,
    /// The resource-based policy's statements (AddPermission).
    #[serde(default)]
    pub policy: Vec<serde_json::Value>,
    /// The highest version number published (numbers are never reused).
    #[serde(default)]
    pub last_version: u64,
    /// `$LATEST`'s RevisionId when it was last published: unchanged, PublishVersion answers
    /// the last version instead of making a new one.
    #[serde(default)]
    pub published_revision: Option<String>,
    /// PutFunctionConcurrency's reservation.
    #[serde(default)]
    pub reserved_concurrency: Option<i32>,
    /// Asynchronous invocation settings, by qualifier (`$LATEST`, a version, an alias).
    #[serde(default)]
    pub event_invoke: BTreeMap<String, FunctionEventInvokeConfig>,
    /// Function URLs, by qualifier (`""` for the unqualified function).
    #[serde(default)]
    pub urls: BTreeMap<String, FunctionUrlConfig>,
    /// The packages of `$LATEST`'s layers, in order.
    #[serde(default)]
    pub layer_code: Vec<String>,
    /// The code signing configuration's ARN (PutFunctionCodeSigningConfig).
    #[serde(default)]
    pub code_signing_config: Option<String>,
    /// PutFunctionRecursionConfig's setting (AWS's default: Terminate).
    #[serde(default)]
    pub recursive_loop: Option<RecursiveLoop>,
    /// PutRuntimeManagementConfig's settings, by qualifier.
    #[serde(default)]
    pub runtime_management: BTreeMap<String, crate::settings::RuntimeManagement>,
    /// Provisioned concurrency, by qualifier (a version or an alias).
    #[serde(default)]
    pub provisioned: BTreeMap<String, crate::provisioned::Provisioned>,
}

impl Stored {
    pub fn name(&self) -> &str {
        self.config.function_name.as_deref().unwrap_or_default()
    }

    pub fn arn(&self) -> &str {
        self.config.function_arn.as_deref().unwrap_or_default()
    }
}

/// What an execution environment for `c` (a version's configuration) runs.
pub(crate) fn launch(
    c: &FunctionConfiguration,
    function_arn: &str,
    ctx: &RequestContext,
    code_dir: std::path::PathBuf,
) -> Launch {
    let name = c.function_name.as_deref().unwrap_or_default();
    Launch {
        revision: c.revision_id.clone().unwrap_or_default(),
        function_arn: function_arn.to_owned(),
        function_name: name.to_owned(),
        version: c.version.clone().unwrap_or_else(|| "$LATEST".into()),
        runtime: c
            .runtime
            .as_ref()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default(),
        handler: c.handler.clone().unwrap_or_default(),
        memory_mb: c.memory_size.unwrap_or(DEFAULT_MEMORY),
        ephemeral_mb: c
            .ephemeral_storage
            .as_ref()
            .map_or(DEFAULT_EPHEMERAL_MB, |e| e.size)
            .max(1) as u32,
        provisioned: false,
        timeout: Duration::from_secs(c.timeout.unwrap_or(DEFAULT_TIMEOUT).max(1) as u64),
        code_dir,
        opt_dir: None,
        region: ctx.region.clone(),
        account_id: ctx.account_id.clone(),
        log_group: log_group(c, name),
        variables: c
            .environment
            .as_ref()
            .and_then(|e| e.variables.as_ref())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }
}

fn log_group(c: &FunctionConfiguration, name: &str) -> String {
    c.logging_config
        .as_ref()
        .and_then(|l| l.log_group.clone())
        .unwrap_or_else(|| format!("/aws/lambda/{name}"))
}

pub(crate) fn key(ctx: &RequestContext, name: &str) -> Vec<u8> {
    format!("{}\0{}\0{name}", ctx.account_id, ctx.region).into_bytes()
}

fn scope_prefix(ctx: &RequestContext) -> Vec<u8> {
    format!("{}\0{}\0", ctx.account_id, ctx.region).into_bytes()
}

pub(crate) fn user_error(code: &'static str, status: u16, message: impl Into<String>) -> ServiceError {
    ServiceError::new(code, status, message).with_extra("Type", "User")
}

pub(crate) fn invalid(message: impl Into<String>) -> ServiceError {
    user_error("InvalidParameterValueException", 400, message)
}

pub(crate) fn storage(e: lakebox_store::StoreError) -> ServiceError {
    ServiceError::internal(e.to_string())
}

pub(crate) fn function_arn(ctx: &RequestContext, name: &str) -> String {
    Arn::new("lambda", &ctx.region, &ctx.account_id, format!("function:{name}")).to_string()
}

pub(crate) fn not_found(ctx: &RequestContext, name: &str, qualifier: Option<&str>) -> ServiceError {
    let mut arn = function_arn(ctx, name);
    if let Some(q) = qualifier {
        arn = format!("{arn}:{q}");
    }
    user_error(
        "ResourceNotFoundException",
        404,
        format!("Function not found: {arn}"),
    )
}

/// A function named as Lambda accepts it: a name, a partial ARN (`123456789012:function:f`) or
/// a full ARN, any of them with a `:qualifier`. Returns the name and the qualifier.
pub(crate) fn parse_name<'a>(
    ctx: &RequestContext,
    given: &'a str,
) -> Result<(&'a str, Option<&'a str>), ServiceError> {
    let rest = match given.strip_prefix("arn:") {
        Some(_) => {
            let arn = Arn::parse(given).ok_or_else(|| invalid(format!("Invalid function ARN: {given}")))?;
            if arn.account_id != ctx.account_id || (!arn.region.is_empty() && arn.region != ctx.region) {
                return Err(user_error(
                    "AccessDeniedException",
                    403,
                    format!("The function {given} is in another account or region than the request."),
                ));
            }
            let idx = given
                .find(":function:")
                .map(|i| i + ":function:".len())
                .unwrap_or(given.len());
            &given[idx..]
        }
        None => match given.find(":function:") {
            Some(i) => &given[i + ":function:".len()..],
            None => given.strip_prefix("function:").unwrap_or(given),
        },
    };
    Ok(match rest.split_once(':') {
        Some((name, q)) => (name, Some(q)),
        None => (rest, None),
    })
}

impl Lambda {
    pub(crate) fn load(&self, ctx: &RequestContext, name: &str) -> Result<Option<Stored>, ServiceError> {
        let raw = self.meta.get(TABLE, &key(ctx, name)).map_err(storage)?;
        raw.map(|b| {
            serde_json::from_slice(&b).map_err(|e| ServiceError::internal(format!("function record: {e}")))
        })
        .transpose()
    }

    /// The record of the function `given` names, which must exist, as must the version or
    /// alias a qualifier names.
    pub(crate) fn existing(
        &self,
        ctx: &RequestContext,
        given: &str,
        qualifier: Option<&str>,
    ) -> Result<Stored, ServiceError> {
        Ok(self.target(ctx, given, qualifier, false)?.function)
    }

    /// Stores a function record as it is (the permission operations' way in).
    pub(crate) fn store(&self, ctx: &RequestContext, stored: &Stored) -> Result<(), ServiceError> {
        self.save(ctx, stored)
    }

    fn save(&self, ctx: &RequestContext, stored: &Stored) -> Result<(), ServiceError> {
        let bytes = serde_json::to_vec(stored).map_err(|e| ServiceError::internal(e.to_string()))?;
        self.meta
            .put(TABLE, &key(ctx, stored.name()), &bytes)
            .map_err(storage)
    }

    pub(crate) fn all_functions(&self, ctx: &RequestContext) -> Result<Vec<Stored>, ServiceError> {
        self.all_with_prefix(&scope_prefix(ctx))
    }

    /// Every function of every account and region.
    pub(crate) fn every_function(&self) -> Result<Vec<Stored>, ServiceError> {
        self.all_with_prefix(&[])
    }

    fn all_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Stored>, ServiceError> {
        let rows = self
            .meta
            .scan_prefix(TABLE, prefix, None, usize::MAX)
            .map_err(storage)?;
        rows.into_iter()
            .map(|(_, v)| {
                serde_json::from_slice(&v)
                    .map_err(|e| ServiceError::internal(format!("function record: {e}")))
            })
            .collect()
    }

    /// A package from the request: inline zip bytes, or an object in Lakebox S3.
    pub(crate) async fn package(
        &self,
        ctx: &RequestContext,
        zip: Option<lakebox_protocol::Blob>,
        bucket: Option<&str>,
        key: Option<&str>,
    ) -> Result<crate::code::Package, ServiceError> {
        let bytes = match (zip, bucket, key) {
            (Some(z), None, None) => z.0,
            (None, Some(b), Some(k)) => self.read_s3(ctx, b, k).await?,
            (None, None, None) => {
                return Err(invalid("Please provide a source for function code."));
            }
            _ => {
                return Err(invalid(
                    "Please do not provide other FunctionCode parameters when providing a ZipFile, or provide both S3Bucket and S3Key.",
                ));
            }
        };
        let code = &self.code;
        code.put(&bytes)
    }

    async fn read_s3(&self, ctx: &RequestContext, bucket: &str, key: &str) -> Result<Vec<u8>, ServiceError> {
        let lake = self
            .lake
            .get()
            .ok_or_else(|| ServiceError::internal("Lambda is not linked to S3"))?;
        let lake = lake.acting_for(&ctx.account_id);
        let missing = || {
            invalid(format!(
                "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist. (bucket {bucket}, key {key})"
            ))
        };
        let (info, mut chunks) = lake
            .get(bucket, key, None)
            .map_err(|e| if e.status == 404 { missing() } else { e })?;
        if info.size > crate::code::MAX_UNZIPPED {
            return Err(invalid("Unzipped size must be smaller than 262144000 bytes"));
        }
        let mut out = Vec::with_capacity(info.size as usize);
        while let Some(chunk) = chunks.recv().await {
            out.extend_from_slice(&chunk.map_err(|e| ServiceError::internal(e.to_string()))?);
        }
        Ok(out)
    }

    pub(crate) fn now_string(&self) -> String {
        // Lambda's LastModified: `2024-05-01T12:34:56.789+0000`.
        let iso = lakebox_protocol::Timestamp::from_millis(self.clock.now_millis()).to_iso8601();
        let (date, frac) = iso
            .trim_end_matches('Z')
            .split_once('.')
            .unwrap_or((iso.trim_end_matches('Z'), "000"));
        format!("{date}.{:0<3}+0000", &frac[..frac.len().min(3)])
    }

    pub(crate) fn config_url(&self, hex: &str) -> String {
        let base = self
            .listen_url
            .get()
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1:4566".into());
        format!("{base}/_lakebox/lambda/code/{hex}.zip")
    }
}

fn check_runtime_and_handler(
    package_type: &Option<PackageType>,
    runtime: &Option<Runtime>,
    handler: &Option<String>,
) -> Result<(), ServiceError> {
    if matches!(package_type, Some(PackageType::Image)) {
        return Err(invalid(
            "Lakebox runs functions from .zip packages; container images are not supported.",
        ));
    }
    if runtime.is_none() || handler.as_deref().is_none_or(str::is_empty) {
        return Err(invalid(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages.",
        ));
    }
    if let Some(Runtime::Unknown(r)) = runtime {
        return Err(invalid(format!(
            "Value {r} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: {:?} or be a valid ARN",
            Runtime::VALUES
        )));
    }
    Ok(())
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ServiceError> {
    lakebox_core::tags::check(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(|e| {
        use lakebox_core::tags::TagError;
        invalid(match e {
            TagError::TooMany { .. } => "Number of tags exceeds resource tag limit.".to_owned(),
            TagError::Reserved(k) => format!("Tag key {k} uses the reserved prefix aws:."),
            TagError::Duplicate(k) => format!("Duplicate tag key {k}."),
            TagError::KeyLength(k) => format!("Tag key {k} must be 1 to 128 characters long."),
            TagError::ValueLength(k) => format!("The value of tag {k} must be at most 256 characters long."),
        })
    })
}

fn environment(env: Option<Environment>) -> Option<EnvironmentResponse> {
    env.map(|e| EnvironmentResponse {
        variables: e.variables,
        error: None,
    })
}

impl LambdaApi for Lambda {
    async fn create_function(
        &self,
        ctx: &RequestContext,
        input: CreateFunctionRequest,
    ) -> Result<FunctionConfiguration, ServiceError> {
        check_runtime_and_handler(&input.package_type, &input.runtime, &input.handler)?;
        let (name, qualifier) = parse_name(ctx, &input.function_name)?;
        if qualifier.is_some() {
            return Err(invalid(
                "A function name cannot carry a qualifier when it is created.",
            ));
        }
        if let Some(tags) = &input.tags {
            check_tags(tags)?;
        }
        if self.load(ctx, name)?.is_some() {
            return Err(user_error(
                "ResourceConflictException",
                409,
                format!("Function already exist: {name}"),
            ));
        }
        let (layers, layer_code) = self.resolve_layers(input.layers.as_deref().unwrap_or_default())?;
        let code_signing_config = match &input.code_signing_config_arn {
            Some(arn) => Some(self.code_signing_config(ctx, arn)?.code_signing_config_arn),
            None => None,
        };
        let package = self
            .package(
                ctx,
                input.code.zip_file,
                input.code.s3_bucket.as_deref(),
                input.code.s3_key.as_deref(),
            )
            .await?;
        let config = FunctionConfiguration {
            layers: (!layers.is_empty()).then_some(layers),
            function_name: Some(name.to_owned()),
            function_arn: Some(function_arn(ctx, name)),
            runtime: input.runtime,
            role: Some(input.role),
            handler: input.handler,
            code_size: Some(package.size),
            description: Some(input.description.unwrap_or_default()),
            timeout: Some(input.timeout.unwrap_or(DEFAULT_TIMEOUT)),
            memory_size: Some(input.memory_size.unwrap_or(DEFAULT_MEMORY)),
            last_modified: Some(self.now_string()),
            code_sha256: Some(package.sha256_b64.clone()),
            version: Some("$LATEST".into()),
            dead_letter_config: input.dead_letter_config,
            environment: environment(input.environment),
            kms_key_arn: input.kms_key_arn,
            tracing_config: Some(TracingConfigResponse {
                mode: Some(
                    input
                        .tracing_config
                        .and_then(|t| t.mode)
                        .unwrap_or(TracingMode::PassThrough),
                ),
            }),
            revision_id: Some(uuid::Uuid::new_v4().to_string()),
            state: Some(State::Active),
            last_update_status: Some(LastUpdateStatus::Successful),
            package_type: Some(PackageType::Zip),
            architectures: Some(input.architectures.unwrap_or_else(|| vec![Architecture::X8664])),
            ephemeral_storage: Some(input.ephemeral_storage.unwrap_or(EphemeralStorage {
                size: DEFAULT_EPHEMERAL_MB,
            })),
            snap_start: Some(SnapStartResponse {
                apply_on: Some(SnapStartApplyOn::None),
                optimization_status: Some(SnapStartOptimizationStatus::Off),
            }),
            logging_config: Some(LoggingConfig {
                log_format: Some(LogFormat::Text),
                log_group: Some(format!("/aws/lambda/{name}")),
                ..input.logging_config.unwrap_or_default()
            }),
            ..Default::default()
        };
        let mut stored = Stored {
            config,
            tags: input.tags.unwrap_or_default(),
            code: package.hex,
            policy: Vec::new(),
            last_version: 0,
            published_revision: None,
            reserved_concurrency: None,
            event_invoke: BTreeMap::new(),
            urls: BTreeMap::new(),
            layer_code,
            code_signing_config,
            recursive_loop: None,
            runtime_management: BTreeMap::new(),
            provisioned: BTreeMap::new(),
        };
        self.save(ctx, &stored)?;
        let reported = if input.publish == Some(true) {
            self.publish(ctx, &mut stored, None)?
        } else {
            stored.config
        };
        // The function is ready once stored; CreateFunction reports it as AWS does, still
        // being created, and GetFunction reports it Active.
        let mut reported = reported;
        reported.state = Some(State::Pending);
        reported.state_reason = Some("The function is being created.".into());
        reported.state_reason_code = Some(StateReasonCode::Creating);
        Ok(reported)
    }

    async fn get_function(
        &self,
        ctx: &RequestContext,
        input: GetFunctionRequest,
    ) -> Result<GetFunctionResponse, ServiceError> {
        let target = self.target(ctx, &input.function_name, input.qualifier.as_deref(), false)?;
        let stored = &target.function;
        Ok(GetFunctionResponse {
            code: Some(FunctionCodeLocation {
                repository_type: Some("S3".into()),
                location: Some(self.config_url(&target.code)),
                ..Default::default()
            }),
            tags: (!stored.tags.is_empty()).then(|| stored.tags.clone()),
            concurrency: stored.reserved_concurrency.map(|n| Concurrency {
                reserved_concurrent_executions: Some(n),
            }),
            configuration: Some(target.config),
            ..Default::default()
        })
    }

    async fn get_function_configuration(
        &self,
        ctx: &RequestContext,
        input: GetFunctionConfigurationRequest,
    ) -> Result<FunctionConfiguration, ServiceError> {
        Ok(self
            .target(ctx, &input.function_name, input.qualifier.as_deref(), false)?
            .config)
    }

    async fn list_functions(
        &self,
        ctx: &RequestContext,
        input: ListFunctionsRequest,
    ) -> Result<ListFunctionsResponse, ServiceError> {
        let mut all = self.all_functions(ctx)?;
        all.sort_by(|a, b| a.name().cmp(b.name()));
        // FunctionVersion=ALL lists every published version after each function's $LATEST.
        let every_version = matches!(input.function_version, Some(FunctionVersion::All));
        let mut listed = Vec::with_capacity(all.len());
        for s in all {
            if every_version {
                let versions = self.versions(ctx, s.name())?;
                let qualified = format!("{}:$LATEST", s.arn());
                let mut latest = s.config;
                latest.function_arn = Some(qualified);
                listed.push(latest);
                listed.extend(versions.into_iter().map(|v| v.config));
            } else {
                listed.push(s.config);
            }
        }
        let (page, next) = crate::versions::page_of(listed, input.marker.as_deref(), input.max_items)?;
        Ok(ListFunctionsResponse {
            functions: Some(page),
            next_marker: next,
        })
    }

    async fn delete_function(
        &self,
        ctx: &RequestContext,
        input: DeleteFunctionRequest,
    ) -> Result<DeleteFunctionResponse, ServiceError> {
        let (name, q) = parse_name(ctx, &input.function_name)?;
        let stored = self.load(ctx, name)?.ok_or_else(|| not_found(ctx, name, None))?;
        if let Some(q) = input.qualifier.as_deref().or(q) {
            self.delete_version(ctx, &stored, q)?;
            return Ok(DeleteFunctionResponse {
                status_code: Some(204),
            });
        }
        let packages = self.drop_versions_and_aliases(ctx, name)?;
        self.drop_urls(&stored.urls)?;
        self.meta.delete(TABLE, &key(ctx, name)).map_err(storage)?;
        self.reservations_changed(ctx);
        self.runtimes.retire(stored.arn());
        self.forget_package(&stored.code)?;
        for p in packages.into_iter().chain(stored.layer_code.iter().cloned()) {
            self.forget_package(&p)?;
        }
        Ok(DeleteFunctionResponse {
            status_code: Some(204),
        })
    }

    async fn update_function_code(
        &self,
        ctx: &RequestContext,
        input: UpdateFunctionCodeRequest,
    ) -> Result<FunctionConfiguration, ServiceError> {
        if input.image_uri.is_some() {
            return Err(invalid(
                "Lakebox runs functions from .zip packages; container images are not supported.",
            ));
        }
        let mut stored = self.existing(ctx, &input.function_name, None)?;
        check_revision(&stored, input.revision_id.as_deref())?;
        let package = self
            .package(
                ctx,
                input.zip_file,
                input.s3_bucket.as_deref(),
                input.s3_key.as_deref(),
            )
            .await?;
        if input.dry_run == Some(true) {
            let mut c = stored.config;
            c.code_sha256 = Some(package.sha256_b64);
            c.code_size = Some(package.size);
            return Ok(c);
        }
        let old = std::mem::replace(&mut stored.code, package.hex);
        let c = &mut stored.config;
        c.code_sha256 = Some(package.sha256_b64);
        c.code_size = Some(package.size);
        if let Some(a) = input.architectures {
            c.architectures = Some(a);
        }
        self.touch(&mut stored);
        self.save(ctx, &stored)?;
        self.runtimes.retire(stored.arn());
        if old != stored.code {
            self.forget_package(&old)?;
        }
        if input.publish == Some(true) {
            return self.publish(ctx, &mut stored, None);
        }
        Ok(in_progress(stored.config))
    }

    async fn update_function_configuration(
        &self,
        ctx: &RequestContext,
        input: UpdateFunctionConfigurationRequest,
    ) -> Result<FunctionConfiguration, ServiceError> {
        let mut stored = self.existing(ctx, &input.function_name, None)?;
        check_revision(&stored, input.revision_id.as_deref())?;
        if let Some(Runtime::Unknown(_)) = &input.runtime {
            check_runtime_and_handler(&None, &input.runtime, &Some("x".into()))?;
        }
        let mut old_layers = Vec::new();
        if let Some(arns) = &input.layers {
            let (layers, packages) = self.resolve_layers(arns)?;
            stored.config.layers = (!layers.is_empty()).then_some(layers);
            old_layers = std::mem::replace(&mut stored.layer_code, packages);
        }
        let c = &mut stored.config;
        if let Some(v) = input.role {
            c.role = Some(v);
        }
        if let Some(v) = input.handler {
            c.handler = Some(v);
        }
        if let Some(v) = input.description {
            c.description = Some(v);
        }
        if let Some(v) = input.timeout {
            c.timeout = Some(v);
        }
        if let Some(v) = input.memory_size {
            c.memory_size = Some(v);
        }
        if let Some(v) = input.runtime {
            c.runtime = Some(v);
        }
        if let Some(v) = input.environment {
            c.environment = environment(Some(v));
        }
        if let Some(v) = input.dead_letter_config {
            c.dead_letter_config = Some(v);
        }

        if let Some(v) = input.kms_key_arn {
            c.kms_key_arn = Some(v);
        }
        if let Some(v) = input.tracing_config {
            c.tracing_config = Some(TracingConfigResponse { mode: v.mode });
        }
        if let Some(v) = input.ephemeral_storage {
            c.ephemeral_storage = Some(v);
        }
        if let Some(v) = input.logging_config {
            let name = c.function_name.clone().unwrap_or_default();
            c.logging_config = Some(LoggingConfig {
                log_format: v.log_format.or(Some(LogFormat::Text)),
                log_group: v.log_group.or(Some(format!("/aws/lambda/{name}"))),
                ..v
            });
        }
        self.touch(&mut stored);
        self.save(ctx, &stored)?;
        self.runtimes.retire(stored.arn());
        for p in old_layers {
            self.forget_package(&p)?;
        }
        Ok(in_progress(stored.config))
    }

    async fn tag_resource(
        &self,
        ctx: &RequestContext,
        input: TagResourceRequest,
    ) -> Result<(), ServiceError> {
        check_tags(&input.tags)?;
        let mut stored = self.by_resource_arn(ctx, &input.resource)?;
        stored.tags.extend(input.tags);
        if stored.tags.len() > 50 {
            return Err(invalid("Number of tags exceeds resource tag limit."));
        }
        self.save(ctx, &stored)
    }

    async fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: UntagResourceRequest,
    ) -> Result<(), ServiceError> {
        let mut stored = self.by_resource_arn(ctx, &input.resource)?;
        for k in &input.tag_keys {
            stored.tags.remove(k);
        }
        self.save(ctx, &stored)
    }

    async fn list_tags(
        &self,
        ctx: &RequestContext,
        input: ListTagsRequest,
    ) -> Result<ListTagsResponse, ServiceError> {
        let stored = self.by_resource_arn(ctx, &input.resource)?;
        Ok(ListTagsResponse {
            tags: Some(stored.tags),
        })
    }

    async fn get_account_settings(
        &self,
        ctx: &RequestContext,
        _input: GetAccountSettingsRequest,
    ) -> Result<GetAccountSettingsResponse, ServiceError> {
        let all = self.all_functions(ctx)?;
        Ok(GetAccountSettingsResponse {
            account_limit: Some(AccountLimit {
                total_code_size: Some(80_530_636_800),
                code_size_unzipped: Some(crate::code::MAX_UNZIPPED as i64),
                code_size_zipped: Some(crate::code::MAX_ZIPPED as i64),
                concurrent_executions: Some(crate::concurrency::ACCOUNT_LIMIT),
                unreserved_concurrent_executions: Some(self.unreserved_concurrency(ctx)?),
            }),
            account_usage: Some(AccountUsage {
                total_code_size: Some(all.iter().filter_map(|s| s.config.code_size).sum()),
                function_count: Some(all.len() as i64),
            }),
        })
    }

    async fn add_permission(
        &self,
        ctx: &RequestContext,
        input: AddPermissionRequest,
    ) -> Result<AddPermissionResponse, ServiceError> {
        self.add_permission_impl(ctx, input)
    }

    async fn remove_permission(
        &self,
        ctx: &RequestContext,
        input: RemovePermissionRequest,
    ) -> Result<(), ServiceError> {
        self.remove_permission_impl(ctx, input)
    }

    async fn get_policy(
        &self,
        ctx: &RequestContext,
        input: GetPolicyRequest,
    ) -> Result<GetPolicyResponse, ServiceError> {
        self.get_policy_impl(ctx, input)
    }

    async fn invoke(
        &self,
        ctx: &RequestContext,
        input: InvocationRequest,
    ) -> Result<InvocationResponse, ServiceError> {
        self.invoke_function(ctx, input).await
    }

    async fn publish_version(
        &self,
        ctx: &RequestContext,
        input: PublishVersionRequest,
    ) -> Result<FunctionConfiguration, ServiceError> {
        self.publish_version_impl(ctx, input)
    }

    async fn list_versions_by_function(
        &self,
        ctx: &RequestContext,
        input: ListVersionsByFunctionRequest,
    ) -> Result<ListVersionsByFunctionResponse, ServiceError> {
        self.list_versions_impl(ctx, input)
    }

    async fn create_alias(
        &self,
        ctx: &RequestContext,
        input: CreateAliasRequest,
    ) -> Result<AliasConfiguration, ServiceError> {
        self.create_alias_impl(ctx, input)
    }

    async fn get_alias(
        &self,
        ctx: &RequestContext,
        input: GetAliasRequest,
    ) -> Result<AliasConfiguration, ServiceError> {
        self.get_alias_impl(ctx, input)
    }

    async fn update_alias(
        &self,
        ctx: &RequestContext,
        input: UpdateAliasRequest,
    ) -> Result<AliasConfiguration, ServiceError> {
        self.update_alias_impl(ctx, input)
    }

    async fn delete_alias(
        &self,
        ctx: &RequestContext,
        input: DeleteAliasRequest,
    ) -> Result<(), ServiceError> {
        self.delete_alias_impl(ctx, input)
    }

    async fn list_aliases(
        &self,
        ctx: &RequestContext,
        input: ListAliasesRequest,
    ) -> Result<ListAliasesResponse, ServiceError> {
        self.list_aliases_impl(ctx, input)
    }

    async fn put_function_concurrency(
        &self,
        ctx: &RequestContext,
        input: PutFunctionConcurrencyRequest,
    ) -> Result<Concurrency, ServiceError> {
        self.put_function_concurrency_impl(ctx, input)
    }

    async fn put_provisioned_concurrency_config(
        &self,
        ctx: &RequestContext,
        input: PutProvisionedConcurrencyConfigRequest,
    ) -> Result<PutProvisionedConcurrencyConfigResponse, ServiceError> {
        self.put_provisioned_concurrency_config_impl(ctx, input)
    }

    async fn get_provisioned_concurrency_config(
        &self,
        ctx: &RequestContext,
        input: GetProvisionedConcurrencyConfigRequest,
    ) -> Result<GetProvisionedConcurrencyConfigResponse, ServiceError> {
        self.get_provisioned_concurrency_config_impl(ctx, input)
    }

    async fn delete_provisioned_concurrency_config(
        &self,
        ctx: &RequestContext,
        input: DeleteProvisionedConcurrencyConfigRequest,
    ) -> Result<(), ServiceError> {
        self.delete_provisioned_concurrency_config_impl(ctx, input)
    }

    async fn list_provisioned_concurrency_configs(
        &self,
        ctx: &RequestContext,
        input: ListProvisionedConcurrencyConfigsRequest,
    ) -> Result<ListProvisionedConcurrencyConfigsResponse, ServiceError> {
        self.list_provisioned_concurrency_configs_impl(ctx, input)
    }

    async fn create_code_signing_config(
        &self,
        ctx: &RequestContext,
        input: CreateCodeSigningConfigRequest,
    ) -> Result<CreateCodeSigningConfigResponse, ServiceError> {
        self.create_code_signing_config_impl(ctx, input)
    }

    async fn get_code_signing_config(
        &self,
        ctx: &RequestContext,
        input: GetCodeSigningConfigRequest,
    ) -> Result<GetCodeSigningConfigResponse, ServiceError> {
        self.get_code_signing_config_impl(ctx, input)
    }

    async fn update_code_signing_config(
        &self,
        ctx: &RequestContext,
        input: UpdateCodeSigningConfigRequest,
    ) -> Result<UpdateCodeSigningConfigResponse, ServiceError> {
        self.update_code_signing_config_impl(ctx, input)
    }

    async fn delete_code_signing_config(
        &self,
        ctx: &RequestContext,
        input: DeleteCodeSigningConfigRequest,
    ) -> Result<DeleteCodeSigningConfigResponse, ServiceError> {
        self.delete_code_signing_config_impl(ctx, input)
    }

    async fn list_code_signing_configs(
        &self,
        ctx: &RequestContext,
        input: ListCodeSigningConfigsRequest,
    ) -> Result<ListCodeSigningConfigsResponse, ServiceError> {
        self.list_code_signing_configs_impl(ctx, input)
    }

    async fn list_functions_by_code_signing_config(
        &self,
        ctx: &RequestContext,
        input: ListFunctionsByCodeSigningConfigRequest,
    ) -> Result<ListFunctionsByCodeSigningConfigResponse, ServiceError> {
        self.list_functions_by_code_signing_config_impl(ctx, input)
    }

    async fn put_function_code_signing_config(
        &self,
        ctx: &RequestContext,
        input: PutFunctionCodeSigningConfigRequest,
    ) -> Result<PutFunctionCodeSigningConfigResponse, ServiceError> {
        self.put_function_code_signing_config_impl(ctx, input)
    }

    async fn get_function_code_signing_config(
        &self,
        ctx: &RequestContext,
        input: GetFunctionCodeSigningConfigRequest,
    ) -> Result<GetFunctionCodeSigningConfigResponse, ServiceError> {
        self.get_function_code_signing_config_impl(ctx, input)
    }

    async fn delete_function_code_signing_config(
        &self,
        ctx: &RequestContext,
        input: DeleteFunctionCodeSigningConfigRequest,
    ) -> Result<(), ServiceError> {
        self.delete_function_code_signing_config_impl(ctx, input)
    }

    async fn put_function_recursion_config(
        &self,
        ctx: &RequestContext,
        input: PutFunctionRecursionConfigRequest,
    ) -> Result<PutFunctionRecursionConfigResponse, ServiceError> {
        self.put_function_recursion_config_impl(ctx, input)
    }

    async fn get_function_recursion_config(
        &self,
        ctx: &RequestContext,
        input: GetFunctionRecursionConfigRequest,
    ) -> Result<GetFunctionRecursionConfigResponse, ServiceError> {
        self.get_function_recursion_config_impl(ctx, input)
    }

    async fn put_runtime_management_config(
        &self,
        ctx: &RequestContext,
        input: PutRuntimeManagementConfigRequest,
    ) -> Result<PutRuntimeManagementConfigResponse, ServiceError> {
        self.put_runtime_management_config_impl(ctx, input)
    }

    async fn get_runtime_management_config(
        &self,
        ctx: &RequestContext,
        input: GetRuntimeManagementConfigRequest,
    ) -> Result<GetRuntimeManagementConfigResponse, ServiceError> {
        self.get_runtime_management_config_impl(ctx, input)
    }

    async fn get_function_concurrency(
        &self,
        ctx: &RequestContext,
        input: GetFunctionConcurrencyRequest,
    ) -> Result<GetFunctionConcurrencyResponse, ServiceError> {
        self.get_function_concurrency_impl(ctx, input)
    }

    async fn delete_function_concurrency(
        &self,
        ctx: &RequestContext,
        input: DeleteFunctionConcurrencyRequest,
    ) -> Result<(), ServiceError> {
        self.delete_function_concurrency_impl(ctx, input)
    }

    async fn put_function_event_invoke_config(
        &self,
        ctx: &RequestContext,
        input: PutFunctionEventInvokeConfigRequest,
    ) -> Result<FunctionEventInvokeConfig, ServiceError> {
        self.put_event_invoke_config_impl(ctx, input, false)
    }

    async fn update_function_event_invoke_config(
        &self,
        ctx: &RequestContext,
        input: UpdateFunctionEventInvokeConfigRequest,
    ) -> Result<FunctionEventInvokeConfig, ServiceError> {
        let input = PutFunctionEventInvokeConfigRequest {
            function_name: input.function_name,
            qualifier: input.qualifier,
            maximum_retry_attempts: input.maximum_retry_attempts,
            maximum_event_age_in_seconds: input.maximum_event_age_in_seconds,
            destination_config: input.destination_config,
        };
        self.put_event_invoke_config_impl(ctx, input, true)
    }

    async fn get_function_event_invoke_config(
        &self,
        ctx: &RequestContext,
        input: GetFunctionEventInvokeConfigRequest,
    ) -> Result<FunctionEventInvokeConfig, ServiceError> {
        self.get_event_invoke_config_impl(ctx, &input.function_name, input.qualifier.as_deref())
    }

    async fn delete_function_event_invoke_config(
        &self,
        ctx: &RequestContext,
        input: DeleteFunctionEventInvokeConfigRequest,
    ) -> Result<(), ServiceError> {
        self.delete_event_invoke_config_impl(ctx, &input.function_name, input.qualifier.as_deref())
    }

    async fn list_function_event_invoke_configs(
        &self,
        ctx: &RequestContext,
        input: ListFunctionEventInvokeConfigsRequest,
    ) -> Result<ListFunctionEventInvokeConfigsResponse, ServiceError> {
        self.list_event_invoke_configs_impl(ctx, input)
    }

    async fn create_function_url_config(
        &self,
        ctx: &RequestContext,
        input: CreateFunctionUrlConfigRequest,
    ) -> Result<CreateFunctionUrlConfigResponse, ServiceError> {
        self.create_url_impl(ctx, input)
    }

    async fn get_function_url_config(
        &self,
        ctx: &RequestContext,
        input: GetFunctionUrlConfigRequest,
    ) -> Result<GetFunctionUrlConfigResponse, ServiceError> {
        self.get_url_impl(ctx, input)
    }

    async fn update_function_url_config(
        &self,
        ctx: &RequestContext,
        input: UpdateFunctionUrlConfigRequest,
    ) -> Result<UpdateFunctionUrlConfigResponse, ServiceError> {
        self.update_url_impl(ctx, input)
    }

    async fn delete_function_url_config(
        &self,
        ctx: &RequestContext,
        input: DeleteFunctionUrlConfigRequest,
    ) -> Result<(), ServiceError> {
        self.delete_url_impl(ctx, input)
    }

    async fn list_function_url_configs(
        &self,
        ctx: &RequestContext,
        input: ListFunctionUrlConfigsRequest,
    ) -> Result<ListFunctionUrlConfigsResponse, ServiceError> {
        self.list_urls_impl(ctx, input)
    }

    async fn publish_layer_version(
        &self,
        ctx: &RequestContext,
        input: PublishLayerVersionRequest,
    ) -> Result<PublishLayerVersionResponse, ServiceError> {
        self.publish_layer_version_impl(ctx, input).await
    }

    async fn get_layer_version(
        &self,
        ctx: &RequestContext,
        input: GetLayerVersionRequest,
    ) -> Result<GetLayerVersionResponse, ServiceError> {
        self.get_layer_version_impl(ctx, &input.layer_name, input.version_number)
    }

    async fn get_layer_version_by_arn(
        &self,
        ctx: &RequestContext,
        input: GetLayerVersionByArnRequest,
    ) -> Result<GetLayerVersionResponse, ServiceError> {
        let _ = ctx;
        self.get_layer_version_by_arn_impl(&input.arn)
    }

    async fn list_layers(
        &self,
        ctx: &RequestContext,
        input: ListLayersRequest,
    ) -> Result<ListLayersResponse, ServiceError> {
        self.list_layers_impl(ctx, input)
    }

    async fn list_layer_versions(
        &self,
        ctx: &RequestContext,
        input: ListLayerVersionsRequest,
    ) -> Result<ListLayerVersionsResponse, ServiceError> {
        self.list_layer_versions_impl(ctx, input)
    }

    async fn delete_layer_version(
        &self,
        ctx: &RequestContext,
        input: DeleteLayerVersionRequest,
    ) -> Result<(), ServiceError> {
        self.delete_layer_version_impl(ctx, &input.layer_name, input.version_number)
    }

    async fn add_layer_version_permission(
        &self,
        ctx: &RequestContext,
        input: AddLayerVersionPermissionRequest,
    ) -> Result<AddLayerVersionPermissionResponse, ServiceError> {
        self.add_layer_permission_impl(ctx, input)
    }

    async fn remove_layer_version_permission(
        &self,
        ctx: &RequestContext,
        input: RemoveLayerVersionPermissionRequest,
    ) -> Result<(), ServiceError> {
        self.remove_layer_permission_impl(ctx, input)
    }

    async fn get_layer_version_policy(
        &self,
        ctx: &RequestContext,
        input: GetLayerVersionPolicyRequest,
    ) -> Result<GetLayerVersionPolicyResponse, ServiceError> {
        self.get_layer_policy_impl(ctx, input)
    }

    async fn invoke_with_response_stream(
        &self,
        ctx: &RequestContext,
        input: InvokeWithResponseStreamRequest,
    ) -> Result<http::Response<lakebox_service::Body>, ServiceError> {
        self.invoke_streaming(ctx, input).await
    }

    async fn create_event_source_mapping(
        &self,
        ctx: &RequestContext,
        input: CreateEventSourceMappingRequest,
    ) -> Result<EventSourceMappingConfiguration, ServiceError> {
        self.create_mapping(ctx, input).await
    }

    async fn get_event_source_mapping(
        &self,
        ctx: &RequestContext,
        input: GetEventSourceMappingRequest,
    ) -> Result<EventSourceMappingConfiguration, ServiceError> {
        self.get_mapping(ctx, &input.uuid)
    }

    async fn list_event_source_mappings(
        &self,
        ctx: &RequestContext,
        input: ListEventSourceMappingsRequest,
    ) -> Result<ListEventSourceMappingsResponse, ServiceError> {
        self.list_mappings(ctx, input)
    }

    async fn update_event_source_mapping(
        &self,
        ctx: &RequestContext,
        input: UpdateEventSourceMappingRequest,
    ) -> Result<EventSourceMappingConfiguration, ServiceError> {
        self.update_mapping(ctx, input)
    }

    async fn delete_event_source_mapping(
        &self,
        ctx: &RequestContext,
        input: DeleteEventSourceMappingRequest,
    ) -> Result<EventSourceMappingConfiguration, ServiceError> {
        self.delete_mapping(ctx, &input.uuid)
    }
}

/// UpdateFunctionCode and UpdateFunctionConfiguration answer while the update is applied, as
/// AWS does; it is applied (and GetFunction says Successful) by the time they answer.
fn in_progress(mut c: FunctionConfiguration) -> FunctionConfiguration {
    c.last_update_status = Some(LastUpdateStatus::InProgress);
    c.last_update_status_reason = Some("The function is being created.".into());
    c.last_update_status_reason_code = Some(LastUpdateStatusReasonCode::Unknown("Creating".into()));
    c
}

pub(crate) fn check_revision(stored: &Stored, given: Option<&str>) -> Result<(), ServiceError> {
    match given {
        Some(r) if Some(r) != stored.config.revision_id.as_deref() => Err(user_error(
            "PreconditionFailedException",
            412,
            "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
        )),
        _ => Ok(()),
    }
}

impl Lambda {
    fn touch(&self, stored: &mut Stored) {
        stored.config.last_modified = Some(self.now_string());
        stored.config.revision_id = Some(uuid::Uuid::new_v4().to_string());
        stored.config.last_update_status = Some(LastUpdateStatus::Successful);
    }

    fn by_resource_arn(&self, ctx: &RequestContext, arn: &str) -> Result<Stored, ServiceError> {
        let (name, _) = parse_name(ctx, arn)?;
        self.load(ctx, name)?.ok_or_else(|| not_found(ctx, name, None))
    }

    /// Removes a package once no function or version (of any account) uses it.
    pub(crate) fn forget_package(&self, hex: &str) -> Result<(), ServiceError> {
        let functions = self.all_with_prefix(b"")?;
        let in_use = functions
            .iter()
            .any(|s| s.code == hex || s.layer_code.iter().any(|l| l == hex))
            || self.version_packages()?.iter().any(|c| c == hex)
            || self.layer_packages()?.iter().any(|c| c == hex);
        if !in_use {
            self.code.remove(hex);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_partial_and_full_arns_with_qualifiers() {
        let ctx = RequestContext::for_tests();
        assert_eq!(parse_name(&ctx, "f").unwrap(), ("f", None));
        assert_eq!(parse_name(&ctx, "f:$LATEST").unwrap(), ("f", Some("$LATEST")));
        let partial = format!("{}:function:f:prod", ctx.account_id);
        assert_eq!(parse_name(&ctx, &partial).unwrap(), ("f", Some("prod")));
        let full = format!("arn:aws:lambda:{}:{}:function:f", ctx.region, ctx.account_id);
        assert_eq!(parse_name(&ctx, &full).unwrap(), ("f", None));
        let other = "arn:aws:lambda:us-east-1:999999999999:function:f";
        assert_eq!(parse_name(&ctx, other).unwrap_err().code, "AccessDeniedException");
    }
}
