//! Workgroups (with the implicit `primary`), named queries, prepared statements and tags.

use std::collections::BTreeMap;

use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::*;
use crate::store::*;

pub const PRIMARY: &str = "primary";
const ENGINE_3: &str = "Athena engine version 3";

/// A workgroup as stored: its configuration is the model's shape (stored as the JSON the API
/// speaks, so records written before the operation layer was generated still read).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredWorkGroup {
    pub name: String,
    pub state: String,
    pub description: Option<String>,
    pub configuration: WorkGroupConfiguration,
    pub created_millis: i64,
}

pub fn engine_version() -> EngineVersion {
    EngineVersion {
        selected_engine_version: Some("AUTO".into()),
        effective_engine_version: Some(ENGINE_3.into()),
    }
}

fn default_configuration() -> WorkGroupConfiguration {
    WorkGroupConfiguration {
        enforce_work_group_configuration: Some(false),
        publish_cloud_watch_metrics_enabled: Some(false),
        requester_pays_enabled: Some(false),
        engine_version: Some(engine_version()),
        ..Default::default()
    }
}

impl StoredWorkGroup {
    fn primary() -> StoredWorkGroup {
        StoredWorkGroup {
            name: PRIMARY.into(),
            state: "ENABLED".into(),
            description: None,
            configuration: default_configuration(),
            created_millis: 0,
        }
    }

    fn view(&self) -> WorkGroup {
        WorkGroup {
            name: self.name.clone(),
            state: Some(WorkGroupState::from(self.state.as_str())),
            configuration: Some(self.configuration.clone()),
            description: self.description.clone(),
            creation_time: Some(Timestamp::from_millis(self.created_millis)),
            ..Default::default()
        }
    }
}

/// Whatever engine version is asked for, this is the one that runs.
fn effective_engine(c: &mut WorkGroupConfiguration) {
    if let Some(ev) = &mut c.engine_version {
        ev.effective_engine_version = Some(ENGINE_3.into());
    }
}

fn check_configuration(c: &WorkGroupConfiguration) -> Result<(), ServiceError> {
    if let Some(loc) = c
        .result_configuration
        .as_ref()
        .and_then(|r| r.output_location.as_deref())
        && !loc.starts_with("s3://")
    {
        return Err(invalid(format!("OutputLocation {loc} is not an s3:// location.")));
    }
    if let Some(n) = c.bytes_scanned_cutoff_per_query
        && n < 10_000_000
    {
        return Err(invalid(
            "BytesScannedCutoffPerQuery must be at least 10000000 (10 MB).",
        ));
    }
    Ok(())
}

/// The workgroup of that name, `primary` included.
pub fn load(s: &Store, ctx: &RequestContext, name: &str) -> Result<StoredWorkGroup, ServiceError> {
    match s.get::<StoredWorkGroup>(WORKGROUPS, &key(&ctx.account_id, &ctx.region, &[name]))? {
        Some(w) => Ok(w),
        None if name == PRIMARY => Ok(StoredWorkGroup::primary()),
        None => Err(invalid(format!("WorkGroup {name} is not found."))),
    }
}

/// Fills in what the caller left out of a configuration with the defaults.
fn with_defaults(given: Option<WorkGroupConfiguration>) -> WorkGroupConfiguration {
    let d = default_configuration();
    let Some(c) = given else { return d };
    WorkGroupConfiguration {
        enforce_work_group_configuration: c
            .enforce_work_group_configuration
            .or(d.enforce_work_group_configuration),
        publish_cloud_watch_metrics_enabled: c
            .publish_cloud_watch_metrics_enabled
            .or(d.publish_cloud_watch_metrics_enabled),
        requester_pays_enabled: c.requester_pays_enabled.or(d.requester_pays_enabled),
        engine_version: c.engine_version.clone().or(d.engine_version),
        ..c
    }
}

pub async fn create(
    s: &Store,
    ctx: &RequestContext,
    r: CreateWorkGroupInput,
) -> Result<CreateWorkGroupOutput, ServiceError> {
    let name = r.name;
    let mut configuration = with_defaults(r.configuration);
    effective_engine(&mut configuration);
    check_configuration(&configuration)?;
    let wg = StoredWorkGroup {
        name: name.clone(),
        state: "ENABLED".into(),
        description: r.description,
        configuration,
        created_millis: s.now(),
    };
    let tags = tag_map(r.tags.unwrap_or_default());
    let k = key(&ctx.account_id, &ctx.region, &[&name]);
    let tag_key = key(&ctx.account_id, &ctx.region, &[&workgroup_arn(ctx, &name)]);
    let v = encode(&wg).map_err(internal)?;
    let tv = encode(&tags).map_err(internal)?;
    let primary = name == PRIMARY;
    let created =
        s.kv.write_async(move |b| {
            if primary || b.get(WORKGROUPS, &k)?.is_some() {
                return Ok(false);
            }
            b.put(WORKGROUPS, &k, &v)?;
            b.put(TAGS, &tag_key, &tv)?;
            Ok(true)
        })
        .await
        .map_err(internal)?;
    if !created {
        return Err(invalid(format!("WorkGroup {name} is already created")));
    }
    Ok(CreateWorkGroupOutput {})
}

pub fn get(
    s: &Store,
    ctx: &RequestContext,
    r: GetWorkGroupInput,
) -> Result<GetWorkGroupOutput, ServiceError> {
    let wg = load(s, ctx, &r.work_group)?;
    Ok(GetWorkGroupOutput {
        work_group: Some(wg.view()),
    })
}

fn all(s: &Store, ctx: &RequestContext) -> Result<Vec<StoredWorkGroup>, ServiceError> {
    let mut out: Vec<StoredWorkGroup> = s.scan(WORKGROUPS, &prefix(&ctx.account_id, &ctx.region, &[]))?;
    if !out.iter().any(|w| w.name == PRIMARY) {
        out.push(StoredWorkGroup::primary());
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn list(
    s: &Store,
    ctx: &RequestContext,
    r: ListWorkGroupsInput,
) -> Result<ListWorkGroupsOutput, ServiceError> {
    let (list, next) = page(
        all(s, ctx)?,
        |w| w.name.clone(),
        r.next_token.as_deref(),
        r.max_results,
        50,
    )?;
    Ok(ListWorkGroupsOutput {
        work_groups: Some(
            list.into_iter()
                .map(|w| WorkGroupSummary {
                    name: Some(w.name),
                    state: Some(WorkGroupState::from(w.state.as_str())),
                    description: w.description,
                    creation_time: Some(Timestamp::from_millis(w.created_millis)),
                    engine_version: Some(w.configuration.engine_version.unwrap_or_else(engine_version)),
                    ..Default::default()
                })
                .collect(),
        ),
        next_token: next,
    })
}

/// ResultConfigurationUpdates over a result configuration: each member given replaces it,
/// each `Remove…` flag clears it.
fn update_results(c: &mut ResultConfiguration, u: ResultConfigurationUpdates) {
    if u.remove_output_location == Some(true) {
        c.output_location = None;
    }
    if u.remove_encryption_configuration == Some(true) {
        c.encryption_configuration = None;
    }
    if u.remove_expected_bucket_owner == Some(true) {
        c.expected_bucket_owner = None;
    }
    if u.remove_acl_configuration == Some(true) {
        c.acl_configuration = None;
    }
    c.output_location = u.output_location.or(c.output_location.take());
    c.encryption_configuration = u.encryption_configuration.or(c.encryption_configuration.take());
    c.expected_bucket_owner = u.expected_bucket_owner.or(c.expected_bucket_owner.take());
    c.acl_configuration = u.acl_configuration.or(c.acl_configuration.take());
}

fn apply_updates(c: &mut WorkGroupConfiguration, u: WorkGroupConfigurationUpdates) {
    if let Some(r) = u.result_configuration_updates {
        update_results(c.result_configuration.get_or_insert_default(), r);
    }
    if u.remove_bytes_scanned_cutoff_per_query == Some(true) {
        c.bytes_scanned_cutoff_per_query = None;
    }
    if u.remove_customer_content_encryption_configuration == Some(true) {
        c.customer_content_encryption_configuration = None;
    }
    macro_rules! replace {
        ($($field:ident),*) => {$(
            if let Some(v) = u.$field {
                c.$field = Some(v);
            }
        )*};
    }
    replace!(
        enforce_work_group_configuration,
        publish_cloud_watch_metrics_enabled,
        bytes_scanned_cutoff_per_query,
        requester_pays_enabled,
        engine_version,
        additional_configuration,
        execution_role,
        customer_content_encryption_configuration,
        enable_minimum_encryption_configuration,
        query_results_s3_access_grants_configuration,
        monitoring_configuration
    );
}

pub async fn update(
    s: &Store,
    ctx: &RequestContext,
    r: UpdateWorkGroupInput,
) -> Result<UpdateWorkGroupOutput, ServiceError> {
    let name = r.work_group;
    let mut wg = load(s, ctx, &name)?;
    if let Some(d) = r.description {
        wg.description = Some(d);
    }
    if let Some(st) = r.state {
        wg.state = st.as_str().to_owned();
    }
    if let Some(u) = r.configuration_updates {
        apply_updates(&mut wg.configuration, u);
        effective_engine(&mut wg.configuration);
    }
    check_configuration(&wg.configuration)?;
    let k = key(&ctx.account_id, &ctx.region, &[&name]);
    let v = encode(&wg).map_err(internal)?;
    s.kv.write_async(move |b| b.put(WORKGROUPS, &k, &v))
        .await
        .map_err(internal)?;
    Ok(UpdateWorkGroupOutput {})
}

pub async fn delete(
    s: &Store,
    ctx: &RequestContext,
    r: DeleteWorkGroupInput,
) -> Result<DeleteWorkGroupOutput, ServiceError> {
    let name = r.work_group;
    if name == PRIMARY {
        return Err(invalid("The primary workgroup cannot be deleted."));
    }
    load(s, ctx, &name)?;
    let recursive = r.recursive_delete_option == Some(true);
    let queries: Vec<StoredNamedQuery> = s.scan(NAMED_QUERIES, &prefix(&ctx.account_id, &ctx.region, &[]))?;
    let mine: Vec<String> = queries
        .into_iter()
        .filter(|q| q.work_group == name)
        .map(|q| q.id)
        .collect();
    let statements = prefix(&ctx.account_id, &ctx.region, &[&name]);
    let has_statements = !s
        .kv
        .read(|rd| rd.scan_prefix(PREPARED, &statements))
        .map_err(internal)?
        .is_empty();
    if !recursive && (!mine.is_empty() || has_statements) {
        return Err(invalid(format!(
            "WorkGroup {name} is not empty: it has named queries or prepared statements. Use RecursiveDeleteOption to delete them too."
        )));
    }
    let (account, region) = (ctx.account_id.clone(), ctx.region.clone());
    let wg_key = key(&account, &region, &[&name]);
    let tag_key = key(&account, &region, &[&workgroup_arn(ctx, &name)]);
    s.kv.write_async(move |b| {
        b.delete(WORKGROUPS, &wg_key)?;
        b.delete(TAGS, &tag_key)?;
        for id in &mine {
            b.delete(NAMED_QUERIES, &key(&account, &region, &[id]))?;
        }
        for (k, _) in b.scan_prefix(PREPARED, &statements)? {
            b.delete(PREPARED, &k)?;
        }
        Ok(())
    })
    .await
    .map_err(internal)?;
    Ok(DeleteWorkGroupOutput {})
}

// ---- named queries ----

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredNamedQuery {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub database: String,
    pub query: String,
    pub work_group: String,
}

impl StoredNamedQuery {
    fn view(&self) -> NamedQuery {
        NamedQuery {
            name: self.name.clone(),
            description: self.description.clone(),
            database: self.database.clone(),
            query_string: self.query.clone(),
            named_query_id: Some(self.id.clone()),
            work_group: Some(self.work_group.clone()),
        }
    }
}

pub async fn create_named_query(
    s: &Store,
    ctx: &RequestContext,
    r: CreateNamedQueryInput,
) -> Result<CreateNamedQueryOutput, ServiceError> {
    let work_group = r.work_group.unwrap_or_else(|| PRIMARY.to_owned());
    load(s, ctx, &work_group)?;
    let q = StoredNamedQuery {
        id: uuid::Uuid::new_v4().to_string(),
        name: r.name,
        description: r.description,
        database: r.database,
        query: r.query_string,
        work_group,
    };
    // The same ClientRequestToken returns the query it created (idempotency).
    let token = r
        .client_request_token
        .map(|t| key(&ctx.account_id, &ctx.region, &[&t]));
    let k = key(&ctx.account_id, &ctx.region, &[&q.id]);
    let v = encode(&q).map_err(internal)?;
    let id = q.id.clone();
    let out =
        s.kv.write_async(move |b| {
            if let Some(t) = &token {
                if let Some(existing) = b.get(NAMED_QUERY_TOKENS, t)? {
                    return Ok(String::from_utf8_lossy(&existing).into_owned());
                }
                b.put(NAMED_QUERY_TOKENS, t, id.as_bytes())?;
            }
            b.put(NAMED_QUERIES, &k, &v)?;
            Ok(id)
        })
        .await
        .map_err(internal)?;
    Ok(CreateNamedQueryOutput {
        named_query_id: Some(out),
    })
}

fn load_named_query(s: &Store, ctx: &RequestContext, id: &str) -> Result<StoredNamedQuery, ServiceError> {
    s.get(NAMED_QUERIES, &key(&ctx.account_id, &ctx.region, &[id]))?
        .ok_or_else(|| invalid(format!("NamedQuery {id} was not found.")))
}

pub fn get_named_query(
    s: &Store,
    ctx: &RequestContext,
    r: GetNamedQueryInput,
) -> Result<GetNamedQueryOutput, ServiceError> {
    let q = load_named_query(s, ctx, &r.named_query_id)?;
    Ok(GetNamedQueryOutput {
        named_query: Some(q.view()),
    })
}

pub fn batch_get_named_query(
    s: &Store,
    ctx: &RequestContext,
    r: BatchGetNamedQueryInput,
) -> Result<BatchGetNamedQueryOutput, ServiceError> {
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for id in r.named_query_ids {
        match load_named_query(s, ctx, &id) {
            Ok(q) => found.push(q.view()),
            Err(e) => missing.push(UnprocessedNamedQueryId {
                named_query_id: Some(id),
                error_code: Some("INVALID_INPUT".into()),
                error_message: Some(e.message),
            }),
        }
    }
    Ok(BatchGetNamedQueryOutput {
        named_queries: Some(found),
        unprocessed_named_query_ids: Some(missing),
    })
}

pub fn list_named_queries(
    s: &Store,
    ctx: &RequestContext,
    r: ListNamedQueriesInput,
) -> Result<ListNamedQueriesOutput, ServiceError> {
    let work_group = r.work_group.as_deref().unwrap_or(PRIMARY);
    load(s, ctx, work_group)?;
    let all: Vec<StoredNamedQuery> = s.scan(NAMED_QUERIES, &prefix(&ctx.account_id, &ctx.region, &[]))?;
    let mine: Vec<String> = all
        .into_iter()
        .filter(|q| q.work_group == work_group)
        .map(|q| q.id)
        .collect();
    let (ids, next) = page(mine, |id| id.clone(), r.next_token.as_deref(), r.max_results, 50)?;
    Ok(ListNamedQueriesOutput {
        named_query_ids: Some(ids),
        next_token: next,
    })
}

pub async fn update_named_query(
    s: &Store,
    ctx: &RequestContext,
    r: UpdateNamedQueryInput,
) -> Result<UpdateNamedQueryOutput, ServiceError> {
    let mut q = load_named_query(s, ctx, &r.named_query_id)?;
    q.name = r.name;
    q.query = r.query_string;
    q.description = r.description;
    let k = key(&ctx.account_id, &ctx.region, &[&q.id]);
    let v = encode(&q).map_err(internal)?;
    s.kv.write_async(move |b| b.put(NAMED_QUERIES, &k, &v))
        .await
        .map_err(internal)?;
    Ok(UpdateNamedQueryOutput {})
}

pub async fn delete_named_query(
    s: &Store,
    ctx: &RequestContext,
    r: DeleteNamedQueryInput,
) -> Result<DeleteNamedQueryOutput, ServiceError> {
    let q = load_named_query(s, ctx, &r.named_query_id)?;
    let k = key(&ctx.account_id, &ctx.region, &[&q.id]);
    s.kv.write_async(move |b| b.delete(NAMED_QUERIES, &k))
        .await
        .map_err(internal)?;
    Ok(DeleteNamedQueryOutput {})
}

// ---- prepared statements ----

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPreparedStatement {
    pub name: String,
    pub query: String,
    pub work_group: String,
    pub description: Option<String>,
    pub modified_millis: i64,
}

impl StoredPreparedStatement {
    fn view(&self) -> PreparedStatement {
        PreparedStatement {
            statement_name: Some(self.name.clone()),
            query_statement: Some(self.query.clone()),
            work_group_name: Some(self.work_group.clone()),
            description: self.description.clone(),
            last_modified_time: Some(Timestamp::from_millis(self.modified_millis)),
        }
    }
}

/// A prepared statement to create or replace (from the API or from `PREPARE`).
pub struct Statement<'a> {
    pub work_group: &'a str,
    pub name: &'a str,
    pub query: &'a str,
    pub description: Option<&'a str>,
}

/// Creates (`create`) or replaces a prepared statement. The model checks the name's pattern
/// for the API; `PREPARE` reaches here with a name the session parser read.
pub async fn put_prepared_statement(
    s: &Store,
    ctx: &RequestContext,
    p: Statement<'_>,
    create: bool,
) -> Result<(), ServiceError> {
    let (name, work_group) = (p.name.to_owned(), p.work_group.to_owned());
    load(s, ctx, &work_group)?;
    let stored = StoredPreparedStatement {
        name: name.clone(),
        query: p.query.to_owned(),
        work_group: work_group.clone(),
        description: p.description.map(str::to_owned),
        modified_millis: s.now(),
    };
    let k = key(&ctx.account_id, &ctx.region, &[&work_group, &name]);
    let v = encode(&stored).map_err(internal)?;
    let done =
        s.kv.write_async(move |b| {
            let exists = b.get(PREPARED, &k)?.is_some();
            if exists == create {
                return Ok(false);
            }
            b.put(PREPARED, &k, &v)?;
            Ok(true)
        })
        .await
        .map_err(internal)?;
    match (done, create) {
        (true, _) => Ok(()),
        (false, true) => Err(invalid(format!(
            "Prepared statement {name} already exists in workgroup {work_group}."
        ))),
        (false, false) => Err(not_found(&name, &work_group)),
    }
}

fn not_found(name: &str, work_group: &str) -> ServiceError {
    ServiceError::client(
        "ResourceNotFoundException",
        format!("Prepared statement {name} was not found in workgroup {work_group}."),
    )
}

pub fn load_prepared_statement(
    s: &Store,
    ctx: &RequestContext,
    work_group: &str,
    name: &str,
) -> Result<StoredPreparedStatement, ServiceError> {
    s.get(PREPARED, &key(&ctx.account_id, &ctx.region, &[work_group, name]))?
        .ok_or_else(|| not_found(name, work_group))
}

pub fn get_prepared_statement(
    s: &Store,
    ctx: &RequestContext,
    r: GetPreparedStatementInput,
) -> Result<GetPreparedStatementOutput, ServiceError> {
    load(s, ctx, &r.work_group)?;
    let p = load_prepared_statement(s, ctx, &r.work_group, &r.statement_name)?;
    Ok(GetPreparedStatementOutput {
        prepared_statement: Some(p.view()),
    })
}

pub fn batch_get_prepared_statement(
    s: &Store,
    ctx: &RequestContext,
    r: BatchGetPreparedStatementInput,
) -> Result<BatchGetPreparedStatementOutput, ServiceError> {
    load(s, ctx, &r.work_group)?;
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for n in r.prepared_statement_names {
        match load_prepared_statement(s, ctx, &r.work_group, &n) {
            Ok(p) => found.push(p.view()),
            Err(e) => missing.push(UnprocessedPreparedStatementName {
                statement_name: Some(n),
                error_code: Some("STATEMENT_NOT_FOUND".into()),
                error_message: Some(e.message),
            }),
        }
    }
    Ok(BatchGetPreparedStatementOutput {
        prepared_statements: Some(found),
        unprocessed_prepared_statement_names: Some(missing),
    })
}

pub fn list_prepared_statements(
    s: &Store,
    ctx: &RequestContext,
    r: ListPreparedStatementsInput,
) -> Result<ListPreparedStatementsOutput, ServiceError> {
    load(s, ctx, &r.work_group)?;
    let all: Vec<StoredPreparedStatement> =
        s.scan(PREPARED, &prefix(&ctx.account_id, &ctx.region, &[&r.work_group]))?;
    let (list, next) = page(
        all,
        |p| p.name.clone(),
        r.next_token.as_deref(),
        r.max_results,
        50,
    )?;
    Ok(ListPreparedStatementsOutput {
        prepared_statements: Some(
            list.into_iter()
                .map(|p| PreparedStatementSummary {
                    statement_name: Some(p.name),
                    last_modified_time: Some(Timestamp::from_millis(p.modified_millis)),
                })
                .collect(),
        ),
        next_token: next,
    })
}

/// Deletes a prepared statement (DeletePreparedStatement, `DEALLOCATE PREPARE`).
pub async fn remove_prepared_statement(
    s: &Store,
    ctx: &RequestContext,
    work_group: &str,
    name: &str,
) -> Result<(), ServiceError> {
    load_prepared_statement(s, ctx, work_group, name)?;
    let k = key(&ctx.account_id, &ctx.region, &[work_group, name]);
    s.kv.write_async(move |b| b.delete(PREPARED, &k))
        .await
        .map_err(internal)?;
    Ok(())
}

// ---- tags ----

pub fn workgroup_arn(ctx: &RequestContext, name: &str) -> String {
    lakebox_core::Arn::new(
        "athena",
        &ctx.region,
        &ctx.account_id,
        format!("workgroup/{name}"),
    )
    .to_string()
}

fn tag_map(tags: Vec<Tag>) -> BTreeMap<String, String> {
    tags.into_iter()
        .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
        .collect()
}

/// The workgroup (or data catalog) an ARN names, checked to exist.
fn tagged_resource(s: &Store, ctx: &RequestContext, arn: &str) -> Result<(), ServiceError> {
    let resource = lakebox_core::Arn::parse(arn)
        .filter(|a| a.partition == "aws" && a.service == "athena")
        .filter(|a| a.region == ctx.region && a.account_id == ctx.account_id)
        .map(|a| a.resource);
    match resource.as_deref() {
        Some(rest) if rest.starts_with("workgroup/") => load(s, ctx, &rest["workgroup/".len()..]).map(|_| ()),
        Some("datacatalog/AwsDataCatalog") => Ok(()),
        _ => Err(ServiceError::client(
            "ResourceNotFoundException",
            format!("Resource {arn} was not found."),
        )),
    }
}

/// Athena keeps at most 50 tags on a resource.
const MAX_TAGS: usize = 50;

/// Adds `new` tags and removes `remove` keys on a resource (at most 50 tags remain).
pub async fn change_tags(
    s: &Store,
    ctx: &RequestContext,
    arn: &str,
    new: Vec<Tag>,
    remove: Vec<String>,
) -> Result<(), ServiceError> {
    tagged_resource(s, ctx, arn)?;
    let k = key(&ctx.account_id, &ctx.region, &[arn]);
    let new = tag_map(new);
    let too_many =
        s.kv.write_async(move |b| {
            let mut tags: BTreeMap<String, String> = match b.get(TAGS, &k)? {
                Some(v) => serde_json::from_slice(&v).unwrap_or_default(),
                None => BTreeMap::new(),
            };
            if lakebox_core::tags::apply(&mut tags, new, &remove, MAX_TAGS).is_err() {
                return Ok(true);
            }
            b.put(TAGS, &k, &encode(&tags)?)?;
            Ok(false)
        })
        .await
        .map_err(internal)?;
    if too_many {
        return Err(invalid(format!("A resource can have at most {MAX_TAGS} tags.")));
    }
    Ok(())
}

pub fn list_tags(
    s: &Store,
    ctx: &RequestContext,
    r: ListTagsForResourceInput,
) -> Result<ListTagsForResourceOutput, ServiceError> {
    tagged_resource(s, ctx, &r.resource_arn)?;
    let tags: BTreeMap<String, String> = s
        .get(TAGS, &key(&ctx.account_id, &ctx.region, &[&r.resource_arn]))?
        .unwrap_or_default();
    let (list, next) = page(
        tags.into_iter().collect(),
        |(k, _)| k.clone(),
        r.next_token.as_deref(),
        r.max_results,
        50,
    )?;
    Ok(ListTagsForResourceOutput {
        tags: Some(
            list.into_iter()
                .map(|(k, v)| Tag {
                    key: Some(k),
                    value: Some(v),
                })
                .collect(),
        ),
        next_token: next,
    })
}
