//! Versions and aliases. PublishVersion freezes `$LATEST`'s configuration and package under the
//! next number (numbers are never reused, as on AWS); an alias names one version, and with a
//! routing configuration a second one that receives a weighted share of its invocations.
//!
//! Versions live in their own table, keyed by function and zero-padded number so they list in
//! order; aliases likewise by function and name. Both are deleted with their function.

use lakebox_core::{RequestContext, ServiceError, paging};
use serde::{Deserialize, Serialize};

use crate::Lambda;
use crate::api::*;
use crate::functions::{Stored, function_arn, invalid, key, not_found, storage, user_error};

const VERSIONS: &str = "versions";
const ALIASES: &str = "aliases";

/// One published version: its frozen configuration and package.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Version {
    pub config: FunctionConfiguration,
    pub code: String,
    /// The packages of its layers, in order.
    #[serde(default)]
    pub layer_code: Vec<String>,
}

/// What a qualifier names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qualifier<'a> {
    Latest,
    Version(u64),
    Alias(&'a str),
}

impl<'a> Qualifier<'a> {
    pub fn of(q: &'a str) -> Self {
        if q == "$LATEST" {
            Qualifier::Latest
        } else if !q.is_empty() && q.bytes().all(|b| b.is_ascii_digit()) {
            q.parse().map(Qualifier::Version).unwrap_or(Qualifier::Alias(q))
        } else {
            Qualifier::Alias(q)
        }
    }
}

/// The configuration and package an invocation (or a read) of a qualified name reaches.
pub(crate) struct Target {
    /// The function's own record: `$LATEST`, and the settings every version shares
    /// (concurrency, event invoke configurations, policy).
    pub function: Stored,
    /// The configuration of the version reached (`$LATEST`'s for an unqualified name).
    pub config: FunctionConfiguration,
    pub code: String,
    /// The packages of its layers, in order.
    pub layer_code: Vec<String>,
    /// The ARN as the caller named it (an alias's, a version's, or the function's).
    pub invoked_arn: String,
    /// The qualifier the caller gave, for settings kept per qualifier.
    pub qualifier: Option<String>,
}

impl Target {
    pub fn version(&self) -> &str {
        self.config.version.as_deref().unwrap_or("$LATEST")
    }

    /// The pool of execution environments that serve it.
    pub fn pool(&self) -> String {
        crate::runtime::pool_key(self.function.arn(), self.version())
    }
}

fn version_key(ctx: &RequestContext, name: &str, n: u64) -> Vec<u8> {
    let mut k = key(ctx, name);
    k.push(0);
    k.extend_from_slice(format!("{n:010}").as_bytes());
    k
}

fn alias_key(ctx: &RequestContext, name: &str, alias: &str) -> Vec<u8> {
    let mut k = key(ctx, name);
    k.push(0);
    k.extend_from_slice(alias.as_bytes());
    k
}

fn children_prefix(ctx: &RequestContext, name: &str) -> Vec<u8> {
    let mut k = key(ctx, name);
    k.push(0);
    k
}

fn alias_not_found(ctx: &RequestContext, name: &str, alias: &str) -> ServiceError {
    user_error(
        "ResourceNotFoundException",
        404,
        format!("Cannot find alias arn: {}:{alias}", function_arn(ctx, name)),
    )
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ServiceError> {
    serde_json::from_slice(bytes).map_err(|e| ServiceError::internal(format!("lambda record: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ServiceError> {
    serde_json::to_vec(value).map_err(|e| ServiceError::internal(e.to_string()))
}

/// A number in [0, 1) from a fresh random UUID (weighted alias routing needs no more).
fn unit_random() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

impl Lambda {
    pub(crate) fn version(
        &self,
        ctx: &RequestContext,
        name: &str,
        n: u64,
    ) -> Result<Option<Version>, ServiceError> {
        self.meta
            .get(VERSIONS, &version_key(ctx, name, n))
            .map_err(storage)?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Every published version of `name`, in number order.
    pub(crate) fn versions(&self, ctx: &RequestContext, name: &str) -> Result<Vec<Version>, ServiceError> {
        self.meta
            .scan_prefix(VERSIONS, &children_prefix(ctx, name), None, usize::MAX)
            .map_err(storage)?
            .into_iter()
            .map(|(_, v)| decode(&v))
            .collect()
    }

    /// Every package a published version of any function uses.
    pub(crate) fn version_packages(&self) -> Result<Vec<String>, ServiceError> {
        let mut out = Vec::new();
        for (_, v) in self
            .meta
            .scan_prefix(VERSIONS, b"", None, usize::MAX)
            .map_err(storage)?
        {
            let v = decode::<Version>(&v)?;
            out.push(v.code);
            out.extend(v.layer_code);
        }
        Ok(out)
    }

    pub(crate) fn alias(
        &self,
        ctx: &RequestContext,
        name: &str,
        alias: &str,
    ) -> Result<Option<AliasConfiguration>, ServiceError> {
        self.meta
            .get(ALIASES, &alias_key(ctx, name, alias))
            .map_err(storage)?
            .map(|b| decode(&b))
            .transpose()
    }

    pub(crate) fn aliases(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<Vec<AliasConfiguration>, ServiceError> {
        self.meta
            .scan_prefix(ALIASES, &children_prefix(ctx, name), None, usize::MAX)
            .map_err(storage)?
            .into_iter()
            .map(|(_, v)| decode(&v))
            .collect()
    }

    /// Deletes every version and alias of `name` (the function is being deleted); the
    /// packages the versions used.
    pub(crate) fn drop_versions_and_aliases(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<Vec<String>, ServiceError> {
        let prefix = children_prefix(ctx, name);
        let versions = self
            .meta
            .scan_prefix(VERSIONS, &prefix, None, usize::MAX)
            .map_err(storage)?;
        let aliases = self
            .meta
            .scan_prefix(ALIASES, &prefix, None, usize::MAX)
            .map_err(storage)?;
        let mut packages = Vec::new();
        for (_, v) in &versions {
            let v = decode::<Version>(v)?;
            packages.push(v.code);
            packages.extend(v.layer_code);
        }
        self.meta
            .write(|b| {
                for (k, _) in &versions {
                    b.delete(VERSIONS, k)?;
                }
                for (k, _) in &aliases {
                    b.delete(ALIASES, k)?;
                }
                Ok(())
            })
            .map_err(storage)?;
        Ok(packages)
    }

    /// The configuration and package `given` (with `qualifier`) names. With `route`, an alias
    /// with a routing configuration picks its version by weight, as an invocation does;
    /// without, it names its primary version, as the read operations report.
    pub(crate) fn target(
        &self,
        ctx: &RequestContext,
        given: &str,
        qualifier: Option<&str>,
        route: bool,
    ) -> Result<Target, ServiceError> {
        let (name, q) = crate::functions::parse_name(ctx, given)?;
        if let (Some(a), Some(b)) = (qualifier, q)
            && a != b
        {
            return Err(invalid(
                "The derived qualifier from the function name does not match the specified qualifier.",
            ));
        }
        let q = qualifier.or(q).filter(|q| !q.is_empty());
        let function = self.load(ctx, name)?.ok_or_else(|| not_found(ctx, name, None))?;
        let unqualified = function.arn().to_owned();
        let Some(q) = q else {
            return Ok(Target {
                config: function.config.clone(),
                code: function.code.clone(),
                layer_code: function.layer_code.clone(),
                invoked_arn: unqualified,
                qualifier: None,
                function,
            });
        };
        let invoked_arn = format!("{unqualified}:{q}");
        // The version reached; None is $LATEST.
        let version: Option<Version> = match Qualifier::of(q) {
            Qualifier::Latest => None,
            Qualifier::Version(n) => Some(
                self.version(ctx, name, n)?
                    .ok_or_else(|| not_found(ctx, name, Some(q)))?,
            ),
            Qualifier::Alias(a) => {
                let alias = self
                    .alias(ctx, name, a)?
                    .ok_or_else(|| alias_not_found(ctx, name, a))?;
                let version = if route {
                    pick_version(&alias)
                } else {
                    alias.function_version.clone().unwrap_or_default()
                };
                match Qualifier::of(&version) {
                    Qualifier::Version(n) => Some(
                        self.version(ctx, name, n)?
                            .ok_or_else(|| not_found(ctx, name, Some(&version)))?,
                    ),
                    _ => None,
                }
            }
        };
        let (mut config, code, layer_code) = match version {
            Some(v) => (v.config, v.code, v.layer_code),
            None => (
                function.config.clone(),
                function.code.clone(),
                function.layer_code.clone(),
            ),
        };
        // A qualified read reports the ARN as it was named.
        config.function_arn = Some(invoked_arn.clone());
        Ok(Target {
            config,
            code,
            layer_code,
            invoked_arn,
            qualifier: Some(q.to_owned()),
            function,
        })
    }

    /// Publishes `$LATEST` as the next version, unless nothing changed since the last one
    /// (then that version is the answer, as on AWS). Stores the function record too.
    pub(crate) fn publish(
        &self,
        ctx: &RequestContext,
        stored: &mut Stored,
        description: Option<String>,
    ) -> Result<FunctionConfiguration, ServiceError> {
        let name = stored.name().to_owned();
        if stored.last_version > 0
            && stored.published_revision.as_deref() == stored.config.revision_id.as_deref()
            && let Some(v) = self.version(ctx, &name, stored.last_version)?
        {
            return Ok(v.config);
        }
        let n = stored.last_version + 1;
        let mut config = stored.config.clone();
        config.version = Some(n.to_string());
        config.function_arn = Some(format!("{}:{n}", stored.arn()));
        config.revision_id = Some(uuid::Uuid::new_v4().to_string());
        config.last_modified = Some(self.now_string());
        if let Some(d) = description {
            config.description = Some(d);
        }
        let version = Version {
            config: config.clone(),
            code: stored.code.clone(),
            layer_code: stored.layer_code.clone(),
        };
        stored.last_version = n;
        stored.published_revision = stored.config.revision_id.clone();
        let function = encode(&*stored)?;
        let record = encode(&version)?;
        let fkey = key(ctx, &name);
        let vkey = version_key(ctx, &name, n);
        self.meta
            .write(|b| {
                b.put(crate::functions::TABLE, &fkey, &function)?;
                b.put(VERSIONS, &vkey, &record)
            })
            .map_err(storage)?;
        Ok(config)
    }

    pub(crate) fn publish_version_impl(
        &self,
        ctx: &RequestContext,
        input: PublishVersionRequest,
    ) -> Result<FunctionConfiguration, ServiceError> {
        let mut stored = self.existing(ctx, &input.function_name, None)?;
        crate::functions::check_revision(&stored, input.revision_id.as_deref())?;
        let current = stored.config.code_sha256.clone().unwrap_or_default();
        if let Some(given) = input.code_sha256.as_deref()
            && given != current
        {
            return Err(invalid(format!(
                "CodeSHA256 ({given}) is different from current CodeSHA256 in $LATEST ({current}). Please try again with the CodeSHA256 in $LATEST."
            )));
        }
        let mut config = self.publish(ctx, &mut stored, input.description)?;
        // Reported as AWS reports a new version: still being created (the
        // PublishedVersionActive waiter polls for Active).
        config.state = Some(State::Pending);
        config.state_reason = Some("The function is being created.".into());
        config.state_reason_code = Some(StateReasonCode::Creating);
        Ok(config)
    }

    pub(crate) fn list_versions_impl(
        &self,
        ctx: &RequestContext,
        input: ListVersionsByFunctionRequest,
    ) -> Result<ListVersionsByFunctionResponse, ServiceError> {
        let stored = self.existing(ctx, &input.function_name, None)?;
        let mut latest = stored.config.clone();
        latest.function_arn = Some(format!("{}:$LATEST", stored.arn()));
        let all: Vec<FunctionConfiguration> = std::iter::once(latest)
            .chain(self.versions(ctx, stored.name())?.into_iter().map(|v| v.config))
            .collect();
        let (page, next) = page_of(all, input.marker.as_deref(), input.max_items)?;
        Ok(ListVersionsByFunctionResponse {
            versions: Some(page),
            next_marker: next,
        })
    }

    /// Deletes version `n` of `name`, refused while an alias routes to it.
    pub(crate) fn delete_version(
        &self,
        ctx: &RequestContext,
        stored: &Stored,
        q: &str,
    ) -> Result<(), ServiceError> {
        let name = stored.name();
        let n = match Qualifier::of(q) {
            Qualifier::Version(n) => n,
            Qualifier::Latest => {
                return Err(invalid(
                    "$LATEST version cannot be deleted without deleting the function.",
                ));
            }
            Qualifier::Alias(_) => {
                return Err(invalid(format!(
                    "Deletion of aliases is not supported through DeleteFunction: {q}"
                )));
            }
        };
        let version = self
            .version(ctx, name, n)?
            .ok_or_else(|| not_found(ctx, name, Some(q)))?;
        let users: Vec<String> = self
            .aliases(ctx, name)?
            .into_iter()
            .filter(|a| alias_versions(a).iter().any(|v| v == q))
            .filter_map(|a| a.name)
            .collect();
        if !users.is_empty() {
            return Err(user_error(
                "ResourceConflictException",
                409,
                format!(
                    "Unable to delete version because the following aliases reference it: [{}]",
                    users.join(", ")
                ),
            ));
        }
        let mut function = stored.clone();
        function.event_invoke.remove(q);
        let record = encode(&function)?;
        let (fkey, vkey) = (key(ctx, name), version_key(ctx, name, n));
        self.meta
            .write(|b| {
                b.put(crate::functions::TABLE, &fkey, &record)?;
                b.delete(VERSIONS, &vkey).map(drop)
            })
            .map_err(storage)?;
        self.runtimes.retire(stored.arn());
        for p in std::iter::once(&version.code).chain(&version.layer_code) {
            self.forget_package(p)?;
        }
        Ok(())
    }

    /// Checks an alias's versions exist and its routing is one AWS accepts.
    fn check_alias_target(
        &self,
        ctx: &RequestContext,
        name: &str,
        version: &str,
        routing: Option<&AliasRoutingConfiguration>,
    ) -> Result<(), ServiceError> {
        let exists = |v: &str| -> Result<(), ServiceError> {
            match Qualifier::of(v) {
                Qualifier::Latest => Ok(()),
                Qualifier::Version(n) if self.version(ctx, name, n)?.is_some() => Ok(()),
                _ => Err(not_found(ctx, name, Some(v))),
            }
        };
        exists(version)?;
        let weights = routing.and_then(|r| r.additional_version_weights.as_ref());
        let Some(weights) = weights.filter(|w| !w.is_empty()) else {
            return Ok(());
        };
        if weights.len() > 1 {
            return Err(invalid(
                "Number of items in AdditionalVersionWeights cannot be greater than 1",
            ));
        }
        for (v, w) in weights {
            if !(0.0..=1.0).contains(w) {
                return Err(invalid(format!(
                    "1 validation error detected: Value '{w}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0]"
                )));
            }
            if v == version {
                return Err(invalid(format!(
                    "Invalid function version {v}. Function version {v} is already included in routing configuration."
                )));
            }
            if Qualifier::of(v) == Qualifier::Latest || Qualifier::of(version) == Qualifier::Latest {
                return Err(invalid(
                    "$LATEST is not supported for an alias pointing to more than 1 version",
                ));
            }
            exists(v)?;
        }
        Ok(())
    }

    pub(crate) fn create_alias_impl(
        &self,
        ctx: &RequestContext,
        input: CreateAliasRequest,
    ) -> Result<AliasConfiguration, ServiceError> {
        let stored = self.existing(ctx, &input.function_name, None)?;
        let name = stored.name().to_owned();
        check_alias_name(&input.name)?;
        if self.alias(ctx, &name, &input.name)?.is_some() {
            return Err(user_error(
                "ResourceConflictException",
                409,
                format!("Alias already exists: {}:{}", stored.arn(), input.name),
            ));
        }
        self.check_alias_target(ctx, &name, &input.function_version, input.routing_config.as_ref())?;
        let alias = AliasConfiguration {
            alias_arn: Some(format!("{}:{}", stored.arn(), input.name)),
            name: Some(input.name.clone()),
            function_version: Some(input.function_version),
            description: Some(input.description.unwrap_or_default()),
            routing_config: input.routing_config.filter(has_weights),
            revision_id: Some(uuid::Uuid::new_v4().to_string()),
        };
        self.meta
            .put(ALIASES, &alias_key(ctx, &name, &input.name), &encode(&alias)?)
            .map_err(storage)?;
        Ok(alias)
    }

    pub(crate) fn get_alias_impl(
        &self,
        ctx: &RequestContext,
        input: GetAliasRequest,
    ) -> Result<AliasConfiguration, ServiceError> {
        let stored = self.existing(ctx, &input.function_name, None)?;
        self.alias(ctx, stored.name(), &input.name)?
            .ok_or_else(|| alias_not_found(ctx, stored.name(), &input.name))
    }

    pub(crate) fn update_alias_impl(
        &self,
        ctx: &RequestContext,
        input: UpdateAliasRequest,
    ) -> Result<AliasConfiguration, ServiceError> {
        let stored = self.existing(ctx, &input.function_name, None)?;
        let name = stored.name().to_owned();
        let mut alias = self
            .alias(ctx, &name, &input.name)?
            .ok_or_else(|| alias_not_found(ctx, &name, &input.name))?;
        if let Some(r) = input.revision_id.as_deref()
            && Some(r) != alias.revision_id.as_deref()
        {
            return Err(user_error(
                "PreconditionFailedException",
                412,
                "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
            ));
        }
        if let Some(v) = input.function_version {
            alias.function_version = Some(v);
        }
        if let Some(d) = input.description {
            alias.description = Some(d);
        }
        if let Some(r) = input.routing_config {
            alias.routing_config = Some(r).filter(has_weights);
        }
        let version = alias.function_version.clone().unwrap_or_default();
        self.check_alias_target(ctx, &name, &version, alias.routing_config.as_ref())?;
        alias.revision_id = Some(uuid::Uuid::new_v4().to_string());
        self.meta
            .put(ALIASES, &alias_key(ctx, &name, &input.name), &encode(&alias)?)
            .map_err(storage)?;
        Ok(alias)
    }

    pub(crate) fn delete_alias_impl(
        &self,
        ctx: &RequestContext,
        input: DeleteAliasRequest,
    ) -> Result<(), ServiceError> {
        let stored = self.existing(ctx, &input.function_name, None)?;
        let mut function = stored.clone();
        function.event_invoke.remove(&input.name);
        // The alias's function URL goes with it.
        if let Some(url) = function.urls.remove(&input.name) {
            self.drop_urls(&[(input.name.clone(), url)].into_iter().collect())?;
        }
        let record = encode(&function)?;
        let (fkey, akey) = (
            key(ctx, stored.name()),
            alias_key(ctx, stored.name(), &input.name),
        );
        // Deleting an alias that is not there succeeds, as on AWS.
        self.meta
            .write(|b| {
                b.put(crate::functions::TABLE, &fkey, &record)?;
                b.delete(ALIASES, &akey).map(drop)
            })
            .map_err(storage)
    }

    pub(crate) fn list_aliases_impl(
        &self,
        ctx: &RequestContext,
        input: ListAliasesRequest,
    ) -> Result<ListAliasesResponse, ServiceError> {
        let stored = self.existing(ctx, &input.function_name, None)?;
        let all: Vec<AliasConfiguration> = self
            .aliases(ctx, stored.name())?
            .into_iter()
            .filter(|a| {
                input
                    .function_version
                    .as_deref()
                    .is_none_or(|v| alias_versions(a).iter().any(|x| x == v))
            })
            .collect();
        let (page, next) = page_of(all, input.marker.as_deref(), input.max_items)?;
        Ok(ListAliasesResponse {
            aliases: Some(page),
            next_marker: next,
        })
    }
}

/// AWS's alias names: letters, digits, `-` and `_`, not all digits (that would be a version).
fn check_alias_name(name: &str) -> Result<(), ServiceError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(user_error(
            "ValidationException",
            400,
            format!(
                "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
            ),
        ))
    }
}

fn has_weights(r: &AliasRoutingConfiguration) -> bool {
    r.additional_version_weights
        .as_ref()
        .is_some_and(|w| !w.is_empty())
}

/// The versions an alias routes to: its own and its weighted one.
fn alias_versions(a: &AliasConfiguration) -> Vec<String> {
    let mut out: Vec<String> = a.function_version.iter().cloned().collect();
    if let Some(w) = a
        .routing_config
        .as_ref()
        .and_then(|r| r.additional_version_weights.as_ref())
    {
        out.extend(w.keys().cloned());
    }
    out
}

/// The version one invocation of `alias` runs: the additional version with its weight's
/// probability, else the alias's own.
fn pick_version(alias: &AliasConfiguration) -> String {
    let primary = alias.function_version.clone().unwrap_or_default();
    let Some((v, w)) = alias
        .routing_config
        .as_ref()
        .and_then(|r| r.additional_version_weights.as_ref())
        .and_then(|w| w.iter().next())
    else {
        return primary;
    };
    if unit_random() < *w { v.clone() } else { primary }
}

/// One page of `all` (in its final order) after `marker` (an encoded position), at most
/// `max` (default 50).
pub(crate) fn page_of<T>(
    all: Vec<T>,
    marker: Option<&str>,
    max: Option<i32>,
) -> Result<(Vec<T>, Option<String>), ServiceError> {
    let skip = match marker {
        Some(m) => paging::decode(m)
            .map_err(|_| invalid("Invalid marker"))?
            .parse::<usize>()
            .map_err(|_| invalid("Invalid marker"))?,
        None => 0,
    };
    let limit = max.unwrap_or(50).max(1) as usize;
    let total = all.len();
    let page: Vec<T> = all.into_iter().skip(skip).take(limit).collect();
    let next = (skip + limit < total).then(|| paging::encode(&(skip + limit).to_string()));
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_are_latest_versions_or_aliases() {
        assert_eq!(Qualifier::of("$LATEST"), Qualifier::Latest);
        assert_eq!(Qualifier::of("12"), Qualifier::Version(12));
        assert_eq!(Qualifier::of("prod"), Qualifier::Alias("prod"));
        assert_eq!(Qualifier::of("v1"), Qualifier::Alias("v1"));
    }

    #[test]
    fn alias_names_may_not_be_numbers() {
        assert!(check_alias_name("live").is_ok());
        assert!(check_alias_name("blue_green-2").is_ok());
        assert!(check_alias_name("42").is_err());
        assert!(check_alias_name("no spaces").is_err());
    }

    #[test]
    fn weighted_routing_follows_the_weight() {
        let mut alias = AliasConfiguration {
            function_version: Some("1".into()),
            ..Default::default()
        };
        alias.routing_config = Some(AliasRoutingConfiguration {
            additional_version_weights: Some([("2".to_owned(), 0.3)].into_iter().collect()),
        });
        let twos = (0..10_000).filter(|_| pick_version(&alias) == "2").count();
        assert!((2_500..3_500).contains(&twos), "{twos}");
        alias.routing_config = None;
        assert!((0..100).all(|_| pick_version(&alias) == "1"));
    }

    #[test]
    fn pages_continue_where_the_marker_says() {
        let (p, next) = page_of((0..5).collect(), None, Some(2)).unwrap();
        assert_eq!(p, vec![0, 1]);
        let (p, next) = page_of((0..5).collect(), next.as_deref(), Some(2)).unwrap();
        assert_eq!(p, vec![2, 3]);
        let (p, next) = page_of((0..5).collect(), next.as_deref(), Some(2)).unwrap();
        assert_eq!((p, next), (vec![4], None));
    }
}
