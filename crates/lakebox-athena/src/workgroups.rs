//! Workgroups (with the implicit `primary`), named queries, prepared statements and tags.

use std::collections::BTreeMap;

use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store::*;

pub const PRIMARY: &str = "primary";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkGroup {
    pub name: String,
    pub state: String,
    pub description: Option<String>,
    pub configuration: Value,
    pub created_millis: i64,
}

fn engine_version() -> Value {
    json!({"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"})
}

fn default_configuration() -> Value {
    json!({
        "EnforceWorkGroupConfiguration": false,
        "PublishCloudWatchMetricsEnabled": false,
        "RequesterPaysEnabled": false,
        "EngineVersion": engine_version(),
    })
}

impl WorkGroup {
    fn primary() -> WorkGroup {
        WorkGroup {
            name: PRIMARY.into(),
            state: "ENABLED".into(),
            description: None,
            configuration: default_configuration(),
            created_millis: 0,
        }
    }

    fn view(&self) -> Value {
        json!({
            "Name": self.name,
            "State": self.state,
            "Configuration": self.configuration,
            "Description": self.description,
            "CreationTime": Timestamp::from_millis(self.created_millis),
        })
    }
}

fn text<'a>(r: &'a Value, k: &str) -> Option<&'a str> {
    r.get(k).and_then(Value::as_str)
}

fn check_workgroup_name(name: &str) -> Result<(), ServiceError> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(invalid(format!(
            "WorkGroup name '{name}' is invalid: use 1 to 128 letters, digits, '.', '_' or '-'."
        )));
    }
    Ok(())
}

fn check_configuration(c: &Value) -> Result<(), ServiceError> {
    if let Some(loc) = c
        .pointer("/ResultConfiguration/OutputLocation")
        .and_then(Value::as_str)
        && !loc.starts_with("s3://")
    {
        return Err(invalid(format!("OutputLocation {loc} is not an s3:// location.")));
    }
    if let Some(n) = c.get("BytesScannedCutoffPerQuery").and_then(Value::as_i64)
        && n < 10_000_000
    {
        return Err(invalid(
            "BytesScannedCutoffPerQuery must be at least 10000000 (10 MB).",
        ));
    }
    Ok(())
}

/// The workgroup of that name, `primary` included.
pub fn load(s: &Store, ctx: &RequestContext, name: &str) -> Result<WorkGroup, ServiceError> {
    match s.get::<WorkGroup>(WORKGROUPS, &key(&ctx.account_id, &ctx.region, &[name]))? {
        Some(w) => Ok(w),
        None if name == PRIMARY => Ok(WorkGroup::primary()),
        None => Err(invalid(format!("WorkGroup {name} is not found."))),
    }
}

pub async fn create(s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let name = text(&r, "Name").unwrap_or_default().to_owned();
    check_workgroup_name(&name)?;
    let mut configuration = default_configuration();
    if let (Some(c), Some(given)) = (
        configuration.as_object_mut(),
        r.get("Configuration").and_then(Value::as_object),
    ) {
        for (k, v) in given {
            c.insert(k.clone(), v.clone());
        }
    }
    if let Some(ev) = configuration.get_mut("EngineVersion") {
        ev["EffectiveEngineVersion"] = json!("Athena engine version 3");
    }
    check_configuration(&configuration)?;
    let wg = WorkGroup {
        name: name.clone(),
        state: "ENABLED".into(),
        description: text(&r, "Description").map(str::to_owned),
        configuration,
        created_millis: s.now(),
    };
    let tags = tag_map(r.get("Tags"));
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
    Ok(json!({}))
}

pub fn get(s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let wg = load(s, ctx, text(&r, "WorkGroup").unwrap_or_default())?;
    Ok(json!({ "WorkGroup": wg.view() }))
}

fn all(s: &Store, ctx: &RequestContext) -> Result<Vec<WorkGroup>, ServiceError> {
    let mut out: Vec<WorkGroup> = s.scan(WORKGROUPS, &prefix(&ctx.account_id, &ctx.region, &[]))?;
    if !out.iter().any(|w| w.name == PRIMARY) {
        out.push(WorkGroup::primary());
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn list(s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let (list, next) = page(all(s, ctx)?, |w| w.name.clone(), &r, 50)?;
    let list: Vec<Value> = list
        .iter()
        .map(|w| {
            json!({"Name": w.name, "State": w.state, "Description": w.description,
                   "CreationTime": Timestamp::from_millis(w.created_millis),
                   "EngineVersion": w.configuration.get("EngineVersion").cloned().unwrap_or_else(engine_version)})
        })
        .collect();
    Ok(json!({ "WorkGroups": list, "NextToken": next }))
}

pub async fn update(s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let name = text(&r, "WorkGroup").unwrap_or_default().to_owned();
    let mut wg = load(s, ctx, &name)?;
    if let Some(d) = text(&r, "Description") {
        wg.description = Some(d.to_owned());
    }
    if let Some(st) = text(&r, "State") {
        if st != "ENABLED" && st != "DISABLED" {
            return Err(invalid(format!("Invalid State {st}.")));
        }
        wg.state = st.to_owned();
    }
    if let Some(u) = r.get("ConfigurationUpdates").and_then(Value::as_object) {
        let c = wg
            .configuration
            .as_object_mut()
            .expect("configuration is an object");
        for (k, v) in u {
            match k.as_str() {
                "ResultConfigurationUpdates" => {
                    let rc = c.entry("ResultConfiguration").or_insert_with(|| json!({}));
                    for (rk, rv) in v.as_object().into_iter().flatten() {
                        if let Some(field) = rk.strip_prefix("Remove") {
                            if rv.as_bool() == Some(true) {
                                rc.as_object_mut().expect("object").remove(field);
                            }
                        } else {
                            rc[rk.as_str()] = rv.clone();
                        }
                    }
                }
                "RemoveBytesScannedCutoffPerQuery" => {
                    if v.as_bool() == Some(true) {
                        c.remove("BytesScannedCutoffPerQuery");
                    }
                }
                k if k.starts_with("Remove") => {}
                other => {
                    c.insert(other.to_owned(), v.clone());
                }
            }
        }
        if let Some(ev) = c.get_mut("EngineVersion") {
            ev["EffectiveEngineVersion"] = json!("Athena engine version 3");
        }
    }
    check_configuration(&wg.configuration)?;
    let k = key(&ctx.account_id, &ctx.region, &[&name]);
    let v = encode(&wg).map_err(internal)?;
    s.kv.write_async(move |b| b.put(WORKGROUPS, &k, &v))
        .await
        .map_err(internal)?;
    Ok(json!({}))
}

pub async fn delete(s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let name = text(&r, "WorkGroup").unwrap_or_default().to_owned();
    if name == PRIMARY {
        return Err(invalid("The primary workgroup cannot be deleted."));
    }
    load(s, ctx, &name)?;
    let recursive = r.get("RecursiveDeleteOption").and_then(Value::as_bool) == Some(true);
    let queries: Vec<NamedQuery> = s.scan(NAMED_QUERIES, &prefix(&ctx.account_id, &ctx.region, &[]))?;
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
    Ok(json!({}))
}

// ---- named queries ----

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamedQuery {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub database: String,
    pub query: String,
    pub work_group: String,
}

impl NamedQuery {
    fn view(&self) -> Value {
        json!({"Name": self.name, "Description": self.description, "Database": self.database,
               "QueryString": self.query, "NamedQueryId": self.id, "WorkGroup": self.work_group})
    }
}

fn required<'a>(r: &'a Value, k: &str) -> Result<&'a str, ServiceError> {
    text(r, k)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid(format!("{k} is required.")))
}

pub async fn create_named_query(s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let work_group = text(&r, "WorkGroup").unwrap_or(PRIMARY).to_owned();
    load(s, ctx, &work_group)?;
    let q = NamedQuery {
        id: uuid::Uuid::new_v4().to_string(),
        name: required(&r, "Name")?.to_owned(),
        description: text(&r, "Description").map(str::to_owned),
        database: required(&r, "Database")?.to_owned(),
        query: required(&r, "QueryString")?.to_owned(),
        work_group,
    };
    // The same ClientRequestToken returns the query it created (idempotency).
    let token = text(&r, "ClientRequestToken").map(|t| key(&ctx.account_id, &ctx.region, &[t]));
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
    Ok(json!({ "NamedQueryId": out }))
}

fn load_named_query(s: &Store, ctx: &RequestContext, id: &str) -> Result<NamedQuery, ServiceError> {
    s.get(NAMED_QUERIES, &key(&ctx.account_id, &ctx.region, &[id]))?
        .ok_or_else(|| invalid(format!("NamedQuery {id} was not found.")))
}

pub fn get_named_query(s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let q = load_named_query(s, ctx, text(&r, "NamedQueryId").unwrap_or_default())?;
    Ok(json!({ "NamedQuery": q.view() }))
}

pub fn batch_get_named_query(s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let ids = batch_ids(&r, "NamedQueryIds")?;
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for id in ids {
        match load_named_query(s, ctx, id) {
            Ok(q) => found.push(q.view()),
            Err(e) => missing
                .push(json!({"NamedQueryId": id, "ErrorCode": "INVALID_INPUT", "ErrorMessage": e.message})),
        }
    }
    Ok(json!({ "NamedQueries": found, "UnprocessedNamedQueryIds": missing }))
}

pub fn list_named_queries(s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let work_group = text(&r, "WorkGroup").unwrap_or(PRIMARY);
    load(s, ctx, work_group)?;
    let all: Vec<NamedQuery> = s.scan(NAMED_QUERIES, &prefix(&ctx.account_id, &ctx.region, &[]))?;
    let mine: Vec<String> = all
        .into_iter()
        .filter(|q| q.work_group == work_group)
        .map(|q| q.id)
        .collect();
    let (ids, next) = page(mine, |id| id.clone(), &r, 50)?;
    Ok(json!({ "NamedQueryIds": ids, "NextToken": next }))
}

pub async fn update_named_query(s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let mut q = load_named_query(s, ctx, text(&r, "NamedQueryId").unwrap_or_default())?;
    q.name = required(&r, "Name")?.to_owned();
    q.query = required(&r, "QueryString")?.to_owned();
    q.description = text(&r, "Description").map(str::to_owned);
    let k = key(&ctx.account_id, &ctx.region, &[&q.id]);
    let v = encode(&q).map_err(internal)?;
    s.kv.write_async(move |b| b.put(NAMED_QUERIES, &k, &v))
        .await
        .map_err(internal)?;
    Ok(json!({}))
}

pub async fn delete_named_query(s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let q = load_named_query(s, ctx, text(&r, "NamedQueryId").unwrap_or_default())?;
    let k = key(&ctx.account_id, &ctx.region, &[&q.id]);
    s.kv.write_async(move |b| b.delete(NAMED_QUERIES, &k))
        .await
        .map_err(internal)?;
    Ok(json!({}))
}

// ---- prepared statements ----

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreparedStatement {
    pub name: String,
    pub query: String,
    pub work_group: String,
    pub description: Option<String>,
    pub modified_millis: i64,
}

impl PreparedStatement {
    fn view(&self) -> Value {
        json!({"StatementName": self.name, "QueryStatement": self.query, "WorkGroupName": self.work_group,
               "Description": self.description, "LastModifiedTime": Timestamp::from_millis(self.modified_millis)})
    }
}

fn check_statement_name(name: &str) -> Result<(), ServiceError> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("Statement name '{name}' is invalid.")))
    }
}

/// Creates (`create`) or replaces a prepared statement.
pub async fn put_prepared_statement(
    s: &Store,
    ctx: &RequestContext,
    r: Value,
    create: bool,
) -> Result<Value, ServiceError> {
    let name = required(&r, "StatementName")?.to_owned();
    check_statement_name(&name)?;
    let work_group = required(&r, "WorkGroup")?.to_owned();
    load(s, ctx, &work_group)?;
    let p = PreparedStatement {
        name: name.clone(),
        query: required(&r, "QueryStatement")?.to_owned(),
        work_group: work_group.clone(),
        description: text(&r, "Description").map(str::to_owned),
        modified_millis: s.now(),
    };
    let k = key(&ctx.account_id, &ctx.region, &[&work_group, &name]);
    let v = encode(&p).map_err(internal)?;
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
        (true, _) => Ok(json!({})),
        (false, true) => Err(invalid(format!(
            "Prepared statement {name} already exists in workgroup {work_group}."
        ))),
        (false, false) => Err(ServiceError::client(
            "ResourceNotFoundException",
            format!("Prepared statement {name} was not found in workgroup {work_group}."),
        )),
    }
}

pub fn load_prepared_statement(
    s: &Store,
    ctx: &RequestContext,
    work_group: &str,
    name: &str,
) -> Result<PreparedStatement, ServiceError> {
    s.get(PREPARED, &key(&ctx.account_id, &ctx.region, &[work_group, name]))?
        .ok_or_else(|| {
            ServiceError::client(
                "ResourceNotFoundException",
                format!("Prepared statement {name} was not found in workgroup {work_group}."),
            )
        })
}

pub fn get_prepared_statement(s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let work_group = required(&r, "WorkGroup")?;
    load(s, ctx, work_group)?;
    let p = load_prepared_statement(s, ctx, work_group, required(&r, "StatementName")?)?;
    Ok(json!({ "PreparedStatement": p.view() }))
}

pub fn batch_get_prepared_statement(
    s: &Store,
    ctx: &RequestContext,
    r: Value,
) -> Result<Value, ServiceError> {
    let work_group = required(&r, "WorkGroup")?;
    load(s, ctx, work_group)?;
    let names = strings(&r, "PreparedStatementNames");
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for n in names {
        match load_prepared_statement(s, ctx, work_group, n) {
            Ok(p) => found.push(p.view()),
            Err(e) => missing.push(
                json!({"StatementName": n, "ErrorCode": "STATEMENT_NOT_FOUND", "ErrorMessage": e.message}),
            ),
        }
    }
    Ok(json!({ "PreparedStatements": found, "UnprocessedPreparedStatementNames": missing }))
}

pub fn list_prepared_statements(s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let work_group = required(&r, "WorkGroup")?;
    load(s, ctx, work_group)?;
    let all: Vec<PreparedStatement> =
        s.scan(PREPARED, &prefix(&ctx.account_id, &ctx.region, &[work_group]))?;
    let (list, next) = page(all, |p| p.name.clone(), &r, 50)?;
    let list: Vec<Value> = list
        .iter()
        .map(|p| json!({"StatementName": p.name, "LastModifiedTime": Timestamp::from_millis(p.modified_millis)}))
        .collect();
    Ok(json!({ "PreparedStatements": list, "NextToken": next }))
}

pub async fn delete_prepared_statement(
    s: &Store,
    ctx: &RequestContext,
    r: Value,
) -> Result<Value, ServiceError> {
    let work_group = required(&r, "WorkGroup")?.to_owned();
    let name = required(&r, "StatementName")?.to_owned();
    load_prepared_statement(s, ctx, &work_group, &name)?;
    let k = key(&ctx.account_id, &ctx.region, &[&work_group, &name]);
    s.kv.write_async(move |b| b.delete(PREPARED, &k))
        .await
        .map_err(internal)?;
    Ok(json!({}))
}

// ---- tags ----

pub fn workgroup_arn(ctx: &RequestContext, name: &str) -> String {
    format!(
        "arn:aws:athena:{}:{}:workgroup/{name}",
        ctx.region, ctx.account_id
    )
}

fn tag_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                text(t, "Key")?.to_owned(),
                text(t, "Value").unwrap_or("").to_owned(),
            ))
        })
        .collect()
}

/// The workgroup (or data catalog) an ARN names, checked to exist.
fn tagged_resource(s: &Store, ctx: &RequestContext, arn: &str) -> Result<(), ServiceError> {
    let prefix = format!("arn:aws:athena:{}:{}:", ctx.region, ctx.account_id);
    match arn.strip_prefix(&prefix) {
        Some(rest) if rest.starts_with("workgroup/") => load(s, ctx, &rest["workgroup/".len()..]).map(|_| ()),
        Some("datacatalog/AwsDataCatalog") => Ok(()),
        _ => Err(ServiceError::client(
            "ResourceNotFoundException",
            format!("Resource {arn} was not found."),
        )),
    }
}

pub async fn tag_resource(
    s: &Store,
    ctx: &RequestContext,
    r: Value,
    add: bool,
) -> Result<Value, ServiceError> {
    let arn = required(&r, "ResourceARN")?.to_owned();
    tagged_resource(s, ctx, &arn)?;
    let k = key(&ctx.account_id, &ctx.region, &[&arn]);
    let new = tag_map(r.get("Tags"));
    let remove: Vec<String> = r
        .get("TagKeys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let too_many =
        s.kv.write_async(move |b| {
            let mut tags: BTreeMap<String, String> = match b.get(TAGS, &k)? {
                Some(v) => serde_json::from_slice(&v).unwrap_or_default(),
                None => BTreeMap::new(),
            };
            if add {
                tags.extend(new);
            } else {
                for key in &remove {
                    tags.remove(key);
                }
            }
            if tags.len() > 50 {
                return Ok(true);
            }
            b.put(TAGS, &k, &encode(&tags)?)?;
            Ok(false)
        })
        .await
        .map_err(internal)?;
    if too_many {
        return Err(invalid("A resource can have at most 50 tags."));
    }
    Ok(json!({}))
}

pub fn list_tags(s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let arn = required(&r, "ResourceARN")?;
    tagged_resource(s, ctx, arn)?;
    let tags: BTreeMap<String, String> = s
        .get(TAGS, &key(&ctx.account_id, &ctx.region, &[arn]))?
        .unwrap_or_default();
    let (list, next) = page(tags.into_iter().collect(), |(k, _)| k.clone(), &r, 50)?;
    let list: Vec<Value> = list
        .into_iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({ "Tags": list, "NextToken": next }))
}
