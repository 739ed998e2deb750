//! Layers: PublishLayerVersion keeps a zip in the same content-addressed store as function
//! packages and numbers it (numbers never reused); a function names up to five layer versions,
//! and its execution environments see them merged in order, later layers over earlier ones, as
//! AWS merges them under `/opt`. The merged tree is a cached directory of its own, bound at
//! `/opt` in each environment's mount namespace (see `runtime::sandbox`; where the system has
//! none, named by `LAKEBOX_OPT_DIR`) and put on the paths the runtimes search (`PYTHONPATH`,
//! `NODE_PATH`, `PATH`, `LD_LIBRARY_PATH`).
//!
//! A function (and each published version) keeps the package hashes of its layers, so deleting
//! a layer version does not break functions that use it, as on AWS.

use lakebox_core::{RequestContext, ServiceError};
use serde::{Deserialize, Serialize};

use crate::Lambda;
use crate::api::*;
use crate::functions::{invalid, storage, user_error};

const LAYERS: &str = "layers";
/// Per layer name: the highest version number published.
const LAYER_NAMES: &str = "layer_names";
/// AWS's limit on a function's layers.
const MAX_LAYERS: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LayerRecord {
    pub info: GetLayerVersionResponse,
    /// The package's hex SHA-256 in the code store.
    pub code: String,
    #[serde(default)]
    pub policy: Vec<serde_json::Value>,
    #[serde(default)]
    pub policy_revision: Option<String>,
}

fn name_key(account: &str, region: &str, name: &str) -> Vec<u8> {
    format!("{account}\0{region}\0{name}").into_bytes()
}

fn version_key(account: &str, region: &str, name: &str, version: i64) -> Vec<u8> {
    format!("{account}\0{region}\0{name}\0{version:010}").into_bytes()
}

fn layer_arn(ctx: &RequestContext, name: &str) -> String {
    format!("arn:aws:lambda:{}:{}:layer:{name}", ctx.region, ctx.account_id)
}

/// A layer named by name or ARN (`arn:aws:lambda:<region>:<account>:layer:<name>`): its
/// account, region and name.
fn parse_layer_name(ctx: &RequestContext, given: &str) -> (String, String, String) {
    if let Some(rest) = given.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() >= 6 && parts[4] == "layer" {
            return (parts[3].to_owned(), parts[2].to_owned(), parts[5].to_owned());
        }
    }
    (ctx.account_id.clone(), ctx.region.clone(), given.to_owned())
}

/// A layer version ARN (`arn:aws:lambda:<region>:<account>:layer:<name>:<version>`).
fn parse_version_arn(arn: &str) -> Option<(String, String, String, i64)> {
    let parts: Vec<&str> = arn.strip_prefix("arn:")?.split(':').collect();
    if parts.len() != 7 || parts[1] != "lambda" || parts[4] != "layer" {
        return None;
    }
    Some((
        parts[3].to_owned(),
        parts[2].to_owned(),
        parts[5].to_owned(),
        parts[6].parse().ok()?,
    ))
}

fn layer_version_missing() -> ServiceError {
    user_error(
        "ResourceNotFoundException",
        404,
        "The resource you requested does not exist.",
    )
}

fn decode(bytes: &[u8]) -> Result<LayerRecord, ServiceError> {
    serde_json::from_slice(bytes).map_err(|e| ServiceError::internal(format!("layer record: {e}")))
}

fn list_item(r: &LayerRecord) -> LayerVersionsListItem {
    let i = &r.info;
    LayerVersionsListItem {
        layer_version_arn: i.layer_version_arn.clone(),
        version: i.version,
        description: i.description.clone(),
        created_date: i.created_date.clone(),
        compatible_runtimes: i.compatible_runtimes.clone(),
        license_info: i.license_info.clone(),
        compatible_architectures: i.compatible_architectures.clone(),
    }
}

fn matches(r: &LayerRecord, runtime: Option<&Runtime>, arch: Option<&Architecture>) -> bool {
    runtime.is_none_or(|rt| {
        r.info
            .compatible_runtimes
            .as_ref()
            .is_some_and(|c| c.contains(rt))
    }) && arch.is_none_or(|a| {
        r.info
            .compatible_architectures
            .as_ref()
            .is_some_and(|c| c.contains(a))
    })
}

impl Lambda {
    fn layer_record(
        &self,
        account: &str,
        region: &str,
        name: &str,
        version: i64,
    ) -> Result<Option<LayerRecord>, ServiceError> {
        self.meta
            .get(LAYERS, &version_key(account, region, name, version))
            .map_err(storage)?
            .map(|b| decode(&b))
            .transpose()
    }

    fn layer_versions(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Vec<LayerRecord>, ServiceError> {
        let mut prefix = name_key(account, region, name);
        prefix.push(0);
        self.meta
            .scan_prefix(LAYERS, &prefix, None, usize::MAX)
            .map_err(storage)?
            .into_iter()
            .map(|(_, v)| decode(&v))
            .collect()
    }

    /// Every layer package any layer version keeps.
    pub(crate) fn layer_packages(&self) -> Result<Vec<String>, ServiceError> {
        self.meta
            .scan_prefix(LAYERS, b"", None, usize::MAX)
            .map_err(storage)?
            .into_iter()
            .map(|(_, v)| decode(&v).map(|r| r.code))
            .collect()
    }

    /// Checks a function's `Layers`: the configuration's list and the packages, in order.
    pub(crate) fn resolve_layers(&self, arns: &[String]) -> Result<(Vec<Layer>, Vec<String>), ServiceError> {
        if arns.len() > MAX_LAYERS {
            return Err(invalid(format!(
                "Cannot reference more than {MAX_LAYERS} layers."
            )));
        }
        let mut layers = Vec::new();
        let mut packages = Vec::new();
        for arn in arns {
            let missing = || invalid(format!("Layer version {arn} does not exist."));
            let (account, region, name, version) = parse_version_arn(arn).ok_or_else(missing)?;
            let record = self
                .layer_record(&account, &region, &name, version)?
                .ok_or_else(missing)?;
            let same_layer = |a: &str| a.rsplit_once(':').map(|x| x.0) == arn.rsplit_once(':').map(|x| x.0);
            if let Some(other) = layers
                .iter()
                .filter_map(|l: &Layer| l.arn.as_deref())
                .find(|a| same_layer(a))
            {
                return Err(invalid(format!(
                    "Two different versions of the same layer are not allowed to be referenced in the same function. {other} and {arn} are versions of the same layer."
                )));
            }
            layers.push(Layer {
                arn: Some(arn.clone()),
                code_size: record.info.content.as_ref().and_then(|c| c.code_size),
                ..Default::default()
            });
            packages.push(record.code);
        }
        Ok((layers, packages))
    }

    pub(crate) async fn publish_layer_version_impl(
        &self,
        ctx: &RequestContext,
        input: PublishLayerVersionRequest,
    ) -> Result<PublishLayerVersionResponse, ServiceError> {
        let (account, region, name) = parse_layer_name(ctx, &input.layer_name);
        if account != ctx.account_id || region != ctx.region {
            return Err(user_error(
                "AccessDeniedException",
                403,
                "A layer is published in the caller's account and region.",
            ));
        }
        let c = input.content;
        let package = self
            .package(ctx, c.zip_file, c.s3_bucket.as_deref(), c.s3_key.as_deref())
            .await?;
        let nkey = name_key(&account, &region, &name);
        let last: i64 = self
            .meta
            .get(LAYER_NAMES, &nkey)
            .map_err(storage)?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let version = last + 1;
        let arn = layer_arn(ctx, &name);
        let info = GetLayerVersionResponse {
            content: Some(LayerVersionContentOutput {
                location: Some(self.config_url(&package.hex)),
                code_sha256: Some(package.sha256_b64.clone()),
                code_size: Some(package.size),
                ..Default::default()
            }),
            layer_arn: Some(arn.clone()),
            layer_version_arn: Some(format!("{arn}:{version}")),
            description: Some(input.description.unwrap_or_default()),
            created_date: Some(self.now_string()),
            version: Some(version),
            compatible_runtimes: input.compatible_runtimes,
            license_info: input.license_info,
            compatible_architectures: input.compatible_architectures,
        };
        let record = LayerRecord {
            info: info.clone(),
            code: package.hex,
            policy: Vec::new(),
            policy_revision: None,
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| ServiceError::internal(e.to_string()))?;
        let vkey = version_key(&account, &region, &name, version);
        self.meta
            .write(|b| {
                b.put(LAYER_NAMES, &nkey, version.to_string().as_bytes())?;
                b.put(LAYERS, &vkey, &bytes)
            })
            .map_err(storage)?;
        Ok(PublishLayerVersionResponse {
            content: info.content,
            layer_arn: info.layer_arn,
            layer_version_arn: info.layer_version_arn,
            description: info.description,
            created_date: info.created_date,
            version: info.version,
            compatible_runtimes: info.compatible_runtimes,
            license_info: info.license_info,
            compatible_architectures: info.compatible_architectures,
        })
    }

    pub(crate) fn get_layer_version_impl(
        &self,
        ctx: &RequestContext,
        layer: &str,
        version: i64,
    ) -> Result<GetLayerVersionResponse, ServiceError> {
        let (account, region, name) = parse_layer_name(ctx, layer);
        self.layer_info(&account, &region, &name, version)
    }

    /// A layer version as GetLayerVersion answers it: with a URL that downloads its zip.
    fn layer_info(
        &self,
        account: &str,
        region: &str,
        name: &str,
        version: i64,
    ) -> Result<GetLayerVersionResponse, ServiceError> {
        let r = self
            .layer_record(account, region, name, version)?
            .ok_or_else(layer_version_missing)?;
        let mut info = r.info;
        if let Some(c) = info.content.as_mut() {
            c.location = Some(self.config_url(&r.code));
        }
        Ok(info)
    }

    pub(crate) fn get_layer_version_by_arn_impl(
        &self,
        arn: &str,
    ) -> Result<GetLayerVersionResponse, ServiceError> {
        let (account, region, name, version) = parse_version_arn(arn).ok_or_else(|| {
            user_error(
                "ValidationException",
                400,
                format!("1 validation error detected: Value '{arn}' at 'arn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{{12}}:layer:[a-zA-Z0-9-_]+:[0-9]+"),
            )
        })?;
        self.layer_info(&account, &region, &name, version)
    }

    pub(crate) fn list_layer_versions_impl(
        &self,
        ctx: &RequestContext,
        input: ListLayerVersionsRequest,
    ) -> Result<ListLayerVersionsResponse, ServiceError> {
        let (account, region, name) = parse_layer_name(ctx, &input.layer_name);
        // Newest first, as AWS lists them.
        let mut all: Vec<LayerVersionsListItem> = self
            .layer_versions(&account, &region, &name)?
            .iter()
            .filter(|r| {
                matches(
                    r,
                    input.compatible_runtime.as_ref(),
                    input.compatible_architecture.as_ref(),
                )
            })
            .map(list_item)
            .collect();
        all.reverse();
        let (page, next) = crate::versions::page_of(all, input.marker.as_deref(), input.max_items)?;
        Ok(ListLayerVersionsResponse {
            layer_versions: Some(page),
            next_marker: next,
        })
    }

    pub(crate) fn list_layers_impl(
        &self,
        ctx: &RequestContext,
        input: ListLayersRequest,
    ) -> Result<ListLayersResponse, ServiceError> {
        let prefix = format!("{}\0{}\0", ctx.account_id, ctx.region).into_bytes();
        let names = self
            .meta
            .scan_prefix(LAYER_NAMES, &prefix, None, usize::MAX)
            .map_err(storage)?;
        let mut items = Vec::new();
        for (k, _) in names {
            let name = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let latest = self
                .layer_versions(&ctx.account_id, &ctx.region, &name)?
                .into_iter()
                .rev()
                .find(|r| {
                    matches(
                        r,
                        input.compatible_runtime.as_ref(),
                        input.compatible_architecture.as_ref(),
                    )
                });
            if let Some(r) = latest {
                items.push(LayersListItem {
                    layer_arn: Some(layer_arn(ctx, &name)),
                    layer_name: Some(name),
                    latest_matching_version: Some(list_item(&r)),
                });
            }
        }
        let (page, next) = crate::versions::page_of(items, input.marker.as_deref(), input.max_items)?;
        Ok(ListLayersResponse {
            layers: Some(page),
            next_marker: next,
        })
    }

    pub(crate) fn delete_layer_version_impl(
        &self,
        ctx: &RequestContext,
        layer: &str,
        version: i64,
    ) -> Result<(), ServiceError> {
        let (account, region, name) = parse_layer_name(ctx, layer);
        let key = version_key(&account, &region, &name, version);
        let Some(record) = self.layer_record(&account, &region, &name, version)? else {
            return Ok(()); // deleting a missing version succeeds, as on AWS
        };
        self.meta.delete(LAYERS, &key).map_err(storage)?;
        self.forget_package(&record.code)
    }

    fn save_layer(
        &self,
        ctx: &RequestContext,
        layer: &str,
        version: i64,
        r: &LayerRecord,
    ) -> Result<(), ServiceError> {
        let (account, region, name) = parse_layer_name(ctx, layer);
        let bytes = serde_json::to_vec(r).map_err(|e| ServiceError::internal(e.to_string()))?;
        self.meta
            .put(LAYERS, &version_key(&account, &region, &name, version), &bytes)
            .map_err(storage)
    }

    fn existing_layer(
        &self,
        ctx: &RequestContext,
        layer: &str,
        version: i64,
    ) -> Result<LayerRecord, ServiceError> {
        let (account, region, name) = parse_layer_name(ctx, layer);
        self.layer_record(&account, &region, &name, version)?
            .ok_or_else(layer_version_missing)
    }

    pub(crate) fn add_layer_permission_impl(
        &self,
        ctx: &RequestContext,
        input: AddLayerVersionPermissionRequest,
    ) -> Result<AddLayerVersionPermissionResponse, ServiceError> {
        let mut r = self.existing_layer(ctx, &input.layer_name, input.version_number)?;
        check_policy_revision(input.revision_id.as_deref(), r.policy_revision.as_deref())?;
        crate::permissions::check_new_statement(&r.policy, &input.statement_id)?;
        let principal = if input.principal == "*" {
            serde_json::json!("*")
        } else {
            serde_json::json!({ "AWS": format!("arn:aws:iam::{}:root", input.principal) })
        };
        let mut statement = serde_json::json!({
            "Sid": input.statement_id,
            "Effect": "Allow",
            "Principal": principal,
            "Action": input.action,
            "Resource": r.info.layer_version_arn,
        });
        if let Some(org) = &input.organization_id {
            statement["Condition"] = serde_json::json!({ "StringEquals": { "aws:PrincipalOrgID": org } });
        }
        r.policy.push(statement.clone());
        r.policy_revision = Some(uuid::Uuid::new_v4().to_string());
        self.save_layer(ctx, &input.layer_name, input.version_number, &r)?;
        Ok(AddLayerVersionPermissionResponse {
            statement: Some(statement.to_string()),
            revision_id: r.policy_revision,
        })
    }

    pub(crate) fn remove_layer_permission_impl(
        &self,
        ctx: &RequestContext,
        input: RemoveLayerVersionPermissionRequest,
    ) -> Result<(), ServiceError> {
        let mut r = self.existing_layer(ctx, &input.layer_name, input.version_number)?;
        check_policy_revision(input.revision_id.as_deref(), r.policy_revision.as_deref())?;
        let before = r.policy.len();
        r.policy.retain(|s| s["Sid"] != input.statement_id.as_str());
        if r.policy.len() == before {
            return Err(user_error(
                "ResourceNotFoundException",
                404,
                "Statement not found in the policy.",
            ));
        }
        r.policy_revision = Some(uuid::Uuid::new_v4().to_string());
        self.save_layer(ctx, &input.layer_name, input.version_number, &r)
    }

    pub(crate) fn get_layer_policy_impl(
        &self,
        ctx: &RequestContext,
        input: GetLayerVersionPolicyRequest,
    ) -> Result<GetLayerVersionPolicyResponse, ServiceError> {
        let r = self.existing_layer(ctx, &input.layer_name, input.version_number)?;
        if r.policy.is_empty() {
            return Err(user_error(
                "ResourceNotFoundException",
                404,
                "No policy is associated with the given resource.",
            ));
        }
        Ok(GetLayerVersionPolicyResponse {
            policy: Some(crate::permissions::policy_document(&r.policy)),
            revision_id: r.policy_revision,
        })
    }
}

fn check_policy_revision(given: Option<&str>, current: Option<&str>) -> Result<(), ServiceError> {
    match (given, current) {
        (Some(g), c) if Some(g) != c => Err(user_error(
            "PreconditionFailedException",
            412,
            "The Revision Id provided does not match the latest Revision Id. Call the GetLayerPolicy API to retrieve the latest Revision Id",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names_and_version_arns() {
        let ctx = RequestContext::for_tests();
        assert_eq!(parse_layer_name(&ctx, "libs").2, "libs");
        let (a, r, n) = parse_layer_name(&ctx, "arn:aws:lambda:eu-west-1:111122223333:layer:libs");
        assert_eq!(
            (a.as_str(), r.as_str(), n.as_str()),
            ("111122223333", "eu-west-1", "libs")
        );
        assert_eq!(
            parse_version_arn("arn:aws:lambda:us-east-1:000000000000:layer:libs:3"),
            Some(("000000000000".into(), "us-east-1".into(), "libs".into(), 3))
        );
        assert_eq!(
            parse_version_arn("arn:aws:lambda:us-east-1:000000000000:layer:libs"),
            None
        );
        assert_eq!(
            parse_version_arn("arn:aws:lambda:us-east-1:000000000000:function:f:3"),
            None
        );
    }
}
