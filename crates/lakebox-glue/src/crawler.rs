//! Crawlers: their definitions (durable), runs (READY → RUNNING → STOPPING → READY, with
//! LastCrawl and metrics), cancellation, and cron schedules fired by a background task.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lakebox_core::{Clock, RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use lakebox_s3::lake::Lake;
use lakebox_service::pool::QueryPool;
use lakebox_store::MetaStore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::catalog::{Catalog, Scope, normalize};
use crate::classifiers::Classifiers;
use crate::crawl::{self, CrawlSpec, S3Target};
use crate::cron::Cron;
use crate::errors::page;
use crate::errors::{self, check_name, internal};
use crate::infer::Custom;

const CRAWLERS: &str = "crawlers";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Schedule {
    pub schedule_expression: String,
    pub state: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LastCrawl {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub log_group: String,
    pub log_stream: String,
    pub message_prefix: String,
    pub start_time: Timestamp,
}

/// The `Crawler` shape of the API, stored as is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Crawler {
    pub name: String,
    pub role: String,
    pub targets: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub classifiers: Vec<String>,
    pub recrawl_policy: Value,
    pub schema_change_policy: Value,
    pub lineage_configuration: Value,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    pub crawl_elapsed_time: i64,
    pub creation_time: Timestamp,
    pub last_updated: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_crawl: Option<LastCrawl>,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crawler_security_configuration: Option<String>,
    pub lake_formation_configuration: Value,
}

/// What is kept per crawler besides its definition.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Record {
    crawler: Option<Crawler>,
    tags: BTreeMap<String, String>,
    /// Durations of finished runs, seconds.
    runtimes: Vec<f64>,
    tables_created: u64,
    tables_updated: u64,
    tables_deleted: u64,
    /// When the current run started (milliseconds), while RUNNING.
    started_millis: Option<i64>,
}

/// The settings a Create or Update request may carry.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CrawlerInput {
    pub name: String,
    pub role: Option<String>,
    pub database_name: Option<String>,
    pub description: Option<String>,
    pub targets: Option<Value>,
    pub schedule: Option<String>,
    pub classifiers: Option<Vec<String>>,
    pub table_prefix: Option<String>,
    pub schema_change_policy: Option<Value>,
    pub recrawl_policy: Option<Value>,
    pub lineage_configuration: Option<Value>,
    pub lake_formation_configuration: Option<Value>,
    pub configuration: Option<String>,
    pub crawler_security_configuration: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
}

pub struct Crawlers {
    store: Arc<MetaStore>,
    catalog: Arc<Catalog>,
    classifiers: Arc<Classifiers>,
    lake: Lake,
    clock: Arc<dyn Clock>,
    /// Cancellation flags of running crawls.
    running: Mutex<HashMap<(Scope, String), Arc<AtomicBool>>>,
    /// Each scheduled crawler's next firing, milliseconds.
    next_fire: Mutex<HashMap<(Scope, String), i64>>,
    /// Shortest time a crawl stays RUNNING (tests use it to observe a running crawler).
    min_run: Duration,
    /// Where crawls run: the process's pool for heavy work, never the request threads.
    pool: Arc<QueryPool>,
}

fn key(scope: &Scope, name: &str) -> Vec<u8> {
    format!("{}\0{}\0{}", scope.account, scope.region, name).into_bytes()
}

fn scope_of_key(k: &[u8]) -> Option<(Scope, String)> {
    let s = String::from_utf8_lossy(k);
    let mut it = s.splitn(3, '\0');
    Some((Scope::new(it.next()?, it.next()?), it.next()?.to_owned()))
}

fn not_found(name: &str) -> ServiceError {
    errors::not_found(format!("Crawler with name {name} has not been found."))
}

fn running_error(name: &str) -> ServiceError {
    ServiceError::client(
        "CrawlerRunningException",
        format!("Crawler with name {name} has already started"),
    )
}

/// The S3 targets; other kinds of target are refused rather than silently ignored.
fn s3_targets(targets: &Value) -> Result<Vec<S3Target>, ServiceError> {
    let obj = targets.as_object().cloned().unwrap_or_default();
    for (kind, v) in &obj {
        if kind != "S3Targets" && v.as_array().is_some_and(|a| !a.is_empty()) {
            return Err(errors::invalid_input(format!(
                "{kind} are not supported by Lakebox yet; crawlers can crawl S3Targets."
            )));
        }
    }
    let list = obj
        .get("S3Targets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if list.is_empty() {
        return Err(errors::invalid_input("Crawler must have at least one S3 target."));
    }
    list.iter()
        .map(|t| {
            let path = t
                .get("Path")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if !path.starts_with("s3://") {
                return Err(errors::invalid_input(format!("Invalid S3 target path: {path}")));
            }
            if t.get("EventQueueArn").is_some() {
                return Err(errors::invalid_input(
                    "S3 event mode (EventQueueArn) needs SQS, which Lakebox does not have yet.",
                ));
            }
            let sample_size = match t.get("SampleSize").and_then(Value::as_i64) {
                None => None,
                Some(n) if (1..=249).contains(&n) => Some(n as usize),
                Some(n) => {
                    return Err(errors::invalid_input(format!(
                        "SampleSize must be between 1 and 249, got {n}."
                    )));
                }
            };
            Ok(S3Target {
                path,
                exclusions: t
                    .get("Exclusions")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default(),
                sample_size,
            })
        })
        .collect()
}

fn policy_field(v: &Value, field: &str, default: &str) -> String {
    v.get(field).and_then(Value::as_str).unwrap_or(default).to_owned()
}

/// Checks a whole definition as Glue does on Create and Update.
fn validate(c: &Crawler) -> Result<(), ServiceError> {
    s3_targets(&c.targets)?;
    let update = policy_field(&c.schema_change_policy, "UpdateBehavior", "UPDATE_IN_DATABASE");
    let delete = policy_field(&c.schema_change_policy, "DeleteBehavior", "DEPRECATE_IN_DATABASE");
    if !["LOG", "UPDATE_IN_DATABASE"].contains(&update.as_str()) {
        return Err(errors::invalid_input(format!("Invalid UpdateBehavior {update}.")));
    }
    if !["LOG", "DELETE_FROM_DATABASE", "DEPRECATE_IN_DATABASE"].contains(&delete.as_str()) {
        return Err(errors::invalid_input(format!("Invalid DeleteBehavior {delete}.")));
    }
    match policy_field(&c.recrawl_policy, "RecrawlBehavior", "CRAWL_EVERYTHING").as_str() {
        "CRAWL_EVERYTHING" => {}
        "CRAWL_NEW_FOLDERS_ONLY" => {
            if update != "LOG" || delete != "LOG" {
                return Err(errors::invalid_input(
                    "The SchemaChangePolicy must be LOG for both UpdateBehavior and DeleteBehavior when the RecrawlBehavior is CRAWL_NEW_FOLDERS_ONLY.",
                ));
            }
        }
        "CRAWL_EVENT_MODE" => {
            return Err(errors::invalid_input(
                "CRAWL_EVENT_MODE needs SQS, which Lakebox does not have yet.",
            ));
        }
        other => return Err(errors::invalid_input(format!("Invalid RecrawlBehavior {other}."))),
    }
    if let Some(cfg) = &c.configuration {
        let v: Value = serde_json::from_str(cfg)
            .map_err(|e| errors::invalid_input(format!("Crawler configuration is not valid JSON: {e}")))?;
        if let Some(p) = v.pointer("/Grouping/TableGroupingPolicy").and_then(Value::as_str)
            && p != "CombineCompatibleSchemas"
        {
            return Err(errors::invalid_input(format!("Invalid TableGroupingPolicy {p}.")));
        }
    }
    if let Some(s) = &c.schedule {
        Cron::parse(&s.schedule_expression).ok_or_else(|| {
            errors::invalid_input(format!("Invalid schedule expression: {}", s.schedule_expression))
        })?;
    }
    Ok(())
}

fn spec_of(c: &Crawler, customs: Vec<Custom>) -> Result<CrawlSpec, ServiceError> {
    let cfg: Value = c
        .configuration
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    Ok(CrawlSpec {
        crawler: c.name.clone(),
        database: normalize(c.database_name.as_deref().unwrap_or_default()),
        table_prefix: c.table_prefix.clone().unwrap_or_default(),
        targets: s3_targets(&c.targets)?,
        update_in_database: policy_field(&c.schema_change_policy, "UpdateBehavior", "UPDATE_IN_DATABASE")
            == "UPDATE_IN_DATABASE",
        delete_behavior: policy_field(&c.schema_change_policy, "DeleteBehavior", "DEPRECATE_IN_DATABASE"),
        new_folders_only: policy_field(&c.recrawl_policy, "RecrawlBehavior", "CRAWL_EVERYTHING")
            == "CRAWL_NEW_FOLDERS_ONLY",
        combine_compatible: cfg
            .pointer("/Grouping/TableGroupingPolicy")
            .and_then(Value::as_str)
            == Some("CombineCompatibleSchemas"),
        inherit_from_table: cfg
            .pointer("/CrawlerOutput/Partitions/AddOrUpdateBehavior")
            .and_then(Value::as_str)
            == Some("InheritFromTable"),
        table_level: cfg
            .pointer("/Grouping/TableLevelConfiguration")
            .and_then(Value::as_u64)
            .map(|n| n as usize),
        customs: Arc::new(customs),
    })
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

impl Crawlers {
    pub fn new(
        store: Arc<MetaStore>,
        catalog: Arc<Catalog>,
        classifiers: Arc<Classifiers>,
        lake: Lake,
        clock: Arc<dyn Clock>,
        min_run: Duration,
        pool: Arc<QueryPool>,
    ) -> Result<Arc<Self>, ServiceError> {
        let me = Arc::new(Crawlers {
            store,
            catalog,
            classifiers,
            lake,
            clock,
            running: Mutex::new(HashMap::new()),
            next_fire: Mutex::new(HashMap::new()),
            min_run,
            pool,
        });
        me.recover()?;
        Ok(me)
    }

    fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    fn load(&self, scope: &Scope, name: &str) -> Result<Option<Record>, ServiceError> {
        match self.store.get(CRAWLERS, &key(scope, name)).map_err(internal)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(internal)?)),
            None => Ok(None),
        }
    }

    fn load_crawler(&self, scope: &Scope, name: &str) -> Result<Record, ServiceError> {
        self.load(scope, name)?
            .filter(|r| r.crawler.is_some())
            .ok_or_else(|| not_found(name))
    }

    async fn save(&self, scope: &Scope, rec: &Record) -> Result<(), ServiceError> {
        let name = rec.crawler.as_ref().map(|c| c.name.clone()).unwrap_or_default();
        let k = key(scope, &name);
        let v = serde_json::to_vec(rec).map_err(internal)?;
        self.store
            .write_async(move |b| b.put(CRAWLERS, &k, &v))
            .await
            .map_err(internal)
    }

    /// A crawl cut short by a restart ends CANCELLED; schedules resume.
    fn recover(&self) -> Result<(), ServiceError> {
        let rows = self
            .store
            .read(|r| r.scan_prefix(CRAWLERS, b""))
            .map_err(internal)?;
        for (k, v) in rows {
            let mut rec: Record = serde_json::from_slice(&v).map_err(internal)?;
            let Some((scope, name)) = scope_of_key(&k) else {
                continue;
            };
            let Some(c) = rec.crawler.as_mut() else { continue };
            if c.state != "READY" {
                c.state = "READY".into();
                if let Some(l) = c.last_crawl.as_mut() {
                    l.status = "CANCELLED".into();
                    l.error_message = Some("Lakebox stopped during the crawl.".into());
                }
                rec.started_millis = None;
                let v = serde_json::to_vec(&rec).map_err(internal)?;
                self.store.put(CRAWLERS, &k, &v).map_err(internal)?;
            }
            self.reschedule(&scope, &name, rec.crawler.as_ref());
        }
        Ok(())
    }

    fn reschedule(&self, scope: &Scope, name: &str, c: Option<&Crawler>) {
        let mut next = self.next_fire.lock().unwrap();
        let k = (scope.clone(), name.to_owned());
        match c
            .and_then(|c| c.schedule.as_ref())
            .filter(|s| s.state == "SCHEDULED")
        {
            Some(s) => match Cron::parse(&s.schedule_expression).and_then(|c| c.next_after(self.now())) {
                Some(t) => {
                    next.insert(k, t);
                }
                None => {
                    next.remove(&k);
                }
            },
            None => {
                next.remove(&k);
            }
        }
    }

    /// Fires due schedules. Runs until the process ends; checks the clock every second so that
    /// a moved test clock is noticed too.
    pub fn spawn_scheduler(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let now = me.now();
                let due: Vec<(Scope, String)> = me
                    .next_fire
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(_, t)| **t <= now)
                    .map(|(k, _)| k.clone())
                    .collect();
                for (scope, name) in due {
                    let rec = me.load(&scope, &name).ok().flatten();
                    me.reschedule(&scope, &name, rec.as_ref().and_then(|r| r.crawler.as_ref()));
                    // A crawler still running from its last firing skips this one.
                    if let Err(e) = me.start(&scope, &name).await
                        && e.code != "CrawlerRunningException"
                    {
                        tracing::warn!(crawler = %name, error = %e.message, "scheduled crawl did not start");
                    }
                }
            }
        })
    }

    fn definition(&self, input: CrawlerInput, base: Option<Crawler>) -> Result<Crawler, ServiceError> {
        let now = Timestamp::from_millis(self.now());
        let mut c = base.unwrap_or_else(|| Crawler {
            name: input.name.clone(),
            role: String::new(),
            targets: json!({}),
            database_name: None,
            description: None,
            classifiers: Vec::new(),
            recrawl_policy: json!({"RecrawlBehavior": "CRAWL_EVERYTHING"}),
            schema_change_policy: json!({"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "DEPRECATE_IN_DATABASE"}),
            lineage_configuration: json!({"CrawlerLineageSettings": "DISABLE"}),
            state: "READY".into(),
            table_prefix: None,
            schedule: None,
            crawl_elapsed_time: 0,
            creation_time: now,
            last_updated: now,
            last_crawl: None,
            version: 0,
            configuration: None,
            crawler_security_configuration: None,
            lake_formation_configuration: json!({"UseLakeFormationCredentials": false, "AccountId": ""}),
        });
        if let Some(v) = input.role {
            c.role = v;
        }
        if let Some(v) = input.targets {
            c.targets = v;
        }
        if let Some(v) = input.database_name {
            c.database_name = Some(v);
        }
        if let Some(v) = input.description {
            c.description = Some(v);
        }
        if let Some(v) = input.classifiers {
            c.classifiers = v;
        }
        if let Some(v) = input.table_prefix {
            c.table_prefix = Some(v);
        }
        if let Some(mut v) = input.schema_change_policy {
            // Unset fields keep Glue's defaults.
            let defaults = [
                ("UpdateBehavior", "UPDATE_IN_DATABASE"),
                ("DeleteBehavior", "DEPRECATE_IN_DATABASE"),
            ];
            for (k, d) in defaults {
                if v.get(k).is_none() {
                    v[k] = json!(d);
                }
            }
            c.schema_change_policy = v;
        }
        if let Some(v) = input.recrawl_policy {
            c.recrawl_policy = v;
        }
        if let Some(v) = input.lineage_configuration {
            c.lineage_configuration = v;
        }
        if let Some(v) = input.lake_formation_configuration {
            c.lake_formation_configuration = v;
        }
        if let Some(v) = input.configuration {
            c.configuration = Some(v);
        }
        if let Some(v) = input.crawler_security_configuration {
            c.crawler_security_configuration = Some(v);
        }
        if let Some(expr) = input.schedule {
            c.schedule = if expr.is_empty() {
                None
            } else {
                Some(Schedule {
                    schedule_expression: expr,
                    state: "SCHEDULED".into(),
                })
            };
        }
        c.last_updated = now;
        c.version += 1;
        validate(&c)?;
        Ok(c)
    }

    pub async fn create(&self, ctx: &RequestContext, input: CrawlerInput) -> Result<Value, ServiceError> {
        check_name("name", &input.name)?;
        if input.role.as_deref().is_none_or(str::is_empty) {
            return Err(errors::invalid_input("Role is required."));
        }
        let scope = Scope::from(ctx);
        let tags = input.tags.clone().unwrap_or_default();
        let c = self.definition(input, None)?;
        let rec = Record {
            crawler: Some(c.clone()),
            tags,
            ..Default::default()
        };
        let k = key(&scope, &c.name);
        let v = serde_json::to_vec(&rec).map_err(internal)?;
        let created = self
            .store
            .write_async(move |b| {
                if b.get(CRAWLERS, &k)?.is_some() {
                    return Ok(false);
                }
                b.put(CRAWLERS, &k, &v)?;
                Ok(true)
            })
            .await
            .map_err(internal)?;
        if !created {
            return Err(errors::already_exists(format!("{} already exists", c.name)));
        }
        self.reschedule(&scope, &c.name, Some(&c));
        Ok(json!({}))
    }

    /// The crawler as Get returns it (elapsed time of a running crawl filled in).
    fn view(&self, scope: &Scope, rec: &Record) -> Option<Crawler> {
        let mut c = rec.crawler.clone()?;
        if let Some(start) = rec.started_millis {
            c.crawl_elapsed_time = self.now() - start;
        }
        let stopping = self
            .running
            .lock()
            .unwrap()
            .get(&(scope.clone(), c.name.clone()))
            .is_some_and(|f| f.load(Ordering::Relaxed));
        if stopping && c.state == "RUNNING" {
            c.state = "STOPPING".into();
        }
        Some(c)
    }

    pub fn get(&self, ctx: &RequestContext, name: &str) -> Result<Value, ServiceError> {
        let scope = Scope::from(ctx);
        let rec = self.load_crawler(&scope, name)?;
        Ok(json!({ "Crawler": self.view(&scope, &rec) }))
    }

    fn all(&self, scope: &Scope) -> Result<Vec<Record>, ServiceError> {
        let prefix = key(scope, "");
        let rows = self
            .store
            .read(|r| r.scan_prefix(CRAWLERS, &prefix))
            .map_err(internal)?;
        rows.iter()
            .map(|(_, v)| serde_json::from_slice::<Record>(v).map_err(internal))
            .filter(|r| r.as_ref().map(|r| r.crawler.is_some()).unwrap_or(true))
            .collect()
    }

    pub fn list_full(
        &self,
        ctx: &RequestContext,
        token: Option<&str>,
        max: usize,
    ) -> Result<Value, ServiceError> {
        let scope = Scope::from(ctx);
        let all: Vec<Crawler> = self
            .all(&scope)?
            .iter()
            .filter_map(|r| self.view(&scope, r))
            .collect();
        let (list, next) = page(all, |c| c.name.clone(), token, max)?;
        Ok(json!({ "Crawlers": list, "NextToken": next }))
    }

    pub fn list_names(
        &self,
        ctx: &RequestContext,
        token: Option<&str>,
        max: usize,
        tags: Option<BTreeMap<String, String>>,
    ) -> Result<Value, ServiceError> {
        let names: Vec<String> = self
            .all(&Scope::from(ctx))?
            .into_iter()
            .filter(|r| {
                tags.as_ref()
                    .is_none_or(|t| t.iter().all(|(k, v)| r.tags.get(k) == Some(v)))
            })
            .filter_map(|r| r.crawler.map(|c| c.name))
            .collect();
        let (list, next) = page(names, |n| n.clone(), token, max)?;
        Ok(json!({ "CrawlerNames": list, "NextToken": next }))
    }

    pub fn metrics(
        &self,
        ctx: &RequestContext,
        names: Option<Vec<String>>,
        token: Option<&str>,
        max: usize,
    ) -> Result<Value, ServiceError> {
        let scope = Scope::from(ctx);
        let recs: Vec<Record> = match names {
            Some(n) => n
                .iter()
                .filter_map(|n| self.load(&scope, n).ok().flatten())
                .filter(|r| r.crawler.is_some())
                .collect(),
            None => self.all(&scope)?,
        };
        let metrics: Vec<(String, Value)> = recs
            .iter()
            .filter_map(|r| {
                let c = r.crawler.as_ref()?;
                Some((
                    c.name.clone(),
                    json!({
                        "CrawlerName": c.name,
                        "TimeLeftSeconds": 0.0,
                        "StillEstimating": false,
                        "LastRuntimeSeconds": r.runtimes.last().copied().unwrap_or(0.0),
                        "MedianRuntimeSeconds": median(&r.runtimes),
                        "TablesCreated": r.tables_created,
                        "TablesUpdated": r.tables_updated,
                        "TablesDeleted": r.tables_deleted,
                    }),
                ))
            })
            .collect();
        let (list, next) = page(metrics, |(n, _)| n.clone(), token, max)?;
        let list: Vec<Value> = list.into_iter().map(|(_, v)| v).collect();
        Ok(json!({ "CrawlerMetricsList": list, "NextToken": next }))
    }

    pub async fn update(&self, ctx: &RequestContext, input: CrawlerInput) -> Result<Value, ServiceError> {
        let scope = Scope::from(ctx);
        let mut rec = self.load_crawler(&scope, &input.name)?;
        let base = rec.crawler.clone().expect("loaded crawler");
        if base.state != "READY" {
            return Err(running_error(&base.name));
        }
        let c = self.definition(input, Some(base))?;
        rec.crawler = Some(c.clone());
        self.save(&scope, &rec).await?;
        self.reschedule(&scope, &c.name, Some(&c));
        Ok(json!({}))
    }

    pub async fn delete(&self, ctx: &RequestContext, name: &str) -> Result<Value, ServiceError> {
        let scope = Scope::from(ctx);
        let rec = self.load_crawler(&scope, name)?;
        if rec.crawler.as_ref().is_some_and(|c| c.state != "READY") {
            return Err(running_error(name));
        }
        let k = key(&scope, name);
        self.store
            .write_async(move |b| b.delete(CRAWLERS, &k))
            .await
            .map_err(internal)?;
        self.reschedule(&scope, name, None);
        Ok(json!({}))
    }

    pub async fn set_schedule_state(
        &self,
        ctx: &RequestContext,
        name: &str,
        on: bool,
    ) -> Result<Value, ServiceError> {
        let scope = Scope::from(ctx);
        let mut rec = self.load_crawler(&scope, name)?;
        let c = rec.crawler.as_mut().expect("loaded crawler");
        let Some(s) = c.schedule.as_mut() else {
            return Err(ServiceError::client(
                "NoScheduleException",
                format!("Crawler {name} has no schedule."),
            ));
        };
        match (on, s.state.as_str()) {
            (true, "SCHEDULED") => {
                return Err(ServiceError::client(
                    "SchedulerRunningException",
                    format!("Schedule of crawler {name} is already running."),
                ));
            }
            (false, "NOT_SCHEDULED") => {
                return Err(ServiceError::client(
                    "SchedulerNotRunningException",
                    format!("Schedule of crawler {name} is not running."),
                ));
            }
            _ => {}
        }
        s.state = if on { "SCHEDULED" } else { "NOT_SCHEDULED" }.into();
        let c = c.clone();
        self.save(&scope, &rec).await?;
        self.reschedule(&scope, name, Some(&c));
        Ok(json!({}))
    }

    /// Starts a crawl in the background: the crawler is RUNNING when this returns.
    pub async fn start(self: &Arc<Self>, scope: &Scope, name: &str) -> Result<Value, ServiceError> {
        let cancel = Arc::new(AtomicBool::new(false));
        {
            let mut running = self.running.lock().unwrap();
            let k = (scope.clone(), name.to_owned());
            if running.contains_key(&k) {
                return Err(running_error(name));
            }
            running.insert(k, cancel.clone());
        }
        let begin = async {
            let mut rec = self.load_crawler(scope, name)?;
            let c = rec.crawler.as_mut().expect("loaded crawler");
            if c.state != "READY" {
                return Err(running_error(name));
            }
            let spec = spec_of(c, self.classifiers.customs(scope, &c.classifiers)?)?;
            let now = self.now();
            c.state = "RUNNING".into();
            c.crawl_elapsed_time = 0;
            rec.started_millis = Some(now);
            self.save(scope, &rec).await?;
            Ok((spec, now))
        };
        let (spec, started) = match begin.await {
            Ok(v) => v,
            Err(e) => {
                self.running
                    .lock()
                    .unwrap()
                    .remove(&(scope.clone(), name.to_owned()));
                return Err(e);
            }
        };
        let me = self.clone();
        let (scope, name) = (scope.clone(), name.to_owned());
        // Reading and classifying files is CPU work: on the pool, detached (the crawl runs to
        // its end or its StopCrawler).
        drop(self.pool.handle().spawn(async move {
            let hold = std::time::Instant::now() + me.min_run;
            // The crawler reads its targets as its account: another account's bucket is
            // AccessDenied.
            let lake = me.lake.acting_for(&scope.account);
            let result = crawl::crawl(
                &lake,
                &me.catalog,
                &scope,
                &spec,
                &cancel,
                Timestamp::from_millis(started),
                hold,
            )
            .await;
            if let Err(e) = me
                .finish(&scope, &name, started, result, cancel.load(Ordering::Relaxed))
                .await
            {
                tracing::error!(crawler = %name, error = %e.message, "cannot record the end of a crawl");
            }
            me.running.lock().unwrap().remove(&(scope, name));
        }));
        Ok(json!({}))
    }

    async fn finish(
        &self,
        scope: &Scope,
        name: &str,
        started: i64,
        result: Result<crawl::CrawlResult, String>,
        cancelled: bool,
    ) -> Result<(), ServiceError> {
        let Some(mut rec) = self.load(scope, name)? else {
            return Ok(());
        };
        let Some(c) = rec.crawler.as_mut() else {
            return Ok(());
        };
        // STOPPING while the run's outcome is written, then READY.
        c.state = "STOPPING".into();
        let elapsed = self.now() - started;
        let (status, error) = match (&result, cancelled) {
            (_, true) => ("CANCELLED", None),
            (Ok(_), false) => ("SUCCEEDED", None),
            (Err(e), false) => ("FAILED", Some(e.clone())),
        };
        c.last_crawl = Some(LastCrawl {
            status: status.into(),
            error_message: error,
            log_group: "/aws-glue/crawlers".into(),
            log_stream: name.to_owned(),
            message_prefix: uuid::Uuid::new_v4().to_string(),
            start_time: Timestamp::from_millis(started),
        });
        c.crawl_elapsed_time = 0;
        c.state = "READY".into();
        rec.started_millis = None;
        rec.runtimes.push(elapsed as f64 / 1000.0);
        if rec.runtimes.len() > 100 {
            rec.runtimes.remove(0);
        }
        let r = result.unwrap_or_default();
        rec.tables_created = r.tables_created;
        rec.tables_updated = r.tables_updated;
        rec.tables_deleted = r.tables_deleted;
        tracing::info!(crawler = %name, status, ms = elapsed, files = r.files_read, created = r.tables_created,
            updated = r.tables_updated, deleted = r.tables_deleted, partitions = r.partitions_created, "crawl finished");
        self.save(scope, &rec).await
    }

    pub async fn stop(&self, ctx: &RequestContext, name: &str) -> Result<Value, ServiceError> {
        let scope = Scope::from(ctx);
        let rec = self.load_crawler(&scope, name)?;
        let c = rec.crawler.as_ref().expect("loaded crawler");
        match c.state.as_str() {
            "READY" => {
                return Err(ServiceError::client(
                    "CrawlerNotRunningException",
                    format!("Crawler with name {name} is not running"),
                ));
            }
            "STOPPING" => {
                return Err(ServiceError::client(
                    "CrawlerStoppingException",
                    format!("Crawler with name {name} is stopping"),
                ));
            }
            _ => {}
        }
        // The flag is the stop request; the crawl task records the outcome (a state written
        // here could race with it).
        let flag = self
            .running
            .lock()
            .unwrap()
            .get(&(scope.clone(), name.to_owned()))
            .cloned();
        match flag {
            Some(f) if f.swap(true, Ordering::Relaxed) => Err(ServiceError::client(
                "CrawlerStoppingException",
                format!("Crawler with name {name} is stopping"),
            )),
            Some(_) => Ok(json!({})),
            None => Err(ServiceError::client(
                "CrawlerNotRunningException",
                format!("Crawler with name {name} is not running"),
            )),
        }
    }
}
