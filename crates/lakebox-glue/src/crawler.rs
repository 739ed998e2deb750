//! Crawlers: their definitions (durable), runs (READY → RUNNING → STOPPING → READY, with
//! LastCrawl and metrics), cancellation, and cron schedules fired by a background task.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lakebox_core::{Clock, RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use lakebox_service::lake::Lake;
use lakebox_service::pool::QueryPool;
use lakebox_store::MetaStore;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::api::Crawler;
use crate::api::{
    CrawlerMetrics, CrawlerState, CrawlerTargets, CreateCrawlerRequest, DeleteBehavior,
    LakeFormationConfiguration, LastCrawlInfo, LastCrawlStatus, LineageConfiguration, RecrawlBehavior,
    RecrawlPolicy, Schedule, ScheduleState, SchemaChangePolicy, UpdateBehavior, UpdateCrawlerRequest,
};
use crate::catalog::{Catalog, Scope, normalize};
use crate::classifiers::Classifiers;
use crate::crawl::{self, CrawlSpec, S3Target};
use crate::cron::Cron;
use crate::errors::page;
use crate::errors::{self, check_name, internal};
use crate::infer::Custom;

const CRAWLERS: &str = "crawlers";

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
    errors::crawler_running(format!("Crawler with name {name} has already started"))
}

/// The S3 targets; other kinds of target are refused rather than silently ignored.
fn s3_targets(targets: Option<&CrawlerTargets>) -> Result<Vec<S3Target>, ServiceError> {
    let default = CrawlerTargets::default();
    let t = targets.unwrap_or(&default);
    let others = [
        ("JdbcTargets", t.jdbc_targets.as_ref().map_or(0, Vec::len)),
        ("MongoDBTargets", t.mongo_db_targets.as_ref().map_or(0, Vec::len)),
        (
            "DynamoDBTargets",
            t.dynamo_db_targets.as_ref().map_or(0, Vec::len),
        ),
        ("CatalogTargets", t.catalog_targets.as_ref().map_or(0, Vec::len)),
        ("DeltaTargets", t.delta_targets.as_ref().map_or(0, Vec::len)),
        ("IcebergTargets", t.iceberg_targets.as_ref().map_or(0, Vec::len)),
        ("HudiTargets", t.hudi_targets.as_ref().map_or(0, Vec::len)),
    ];
    if let Some((kind, _)) = others.iter().find(|(_, n)| *n > 0) {
        return Err(errors::invalid_input(format!(
            "{kind} are not supported by Lakebox yet; crawlers can crawl S3Targets."
        )));
    }
    let list = t.s3_targets.as_deref().unwrap_or_default();
    if list.is_empty() {
        return Err(errors::invalid_input("Crawler must have at least one S3 target."));
    }
    list.iter()
        .map(|t| {
            let path = t.path.clone().unwrap_or_default();
            if !path.starts_with("s3://") {
                return Err(errors::invalid_input(format!("Invalid S3 target path: {path}")));
            }
            if t.event_queue_arn.is_some() {
                return Err(errors::invalid_input(
                    "S3 event mode (EventQueueArn) needs SQS, which Lakebox does not have yet.",
                ));
            }
            let sample_size = match t.sample_size {
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
                exclusions: t.exclusions.clone().unwrap_or_default(),
                sample_size,
            })
        })
        .collect()
}

/// The crawler's schema change behaviours, Glue's defaults where unset.
fn schema_change(c: &Crawler) -> (UpdateBehavior, DeleteBehavior) {
    let p = c.schema_change_policy.clone().unwrap_or_default();
    (
        p.update_behavior.unwrap_or(UpdateBehavior::UpdateInDatabase),
        p.delete_behavior.unwrap_or(DeleteBehavior::DeprecateInDatabase),
    )
}

fn recrawl(c: &Crawler) -> RecrawlBehavior {
    c.recrawl_policy
        .as_ref()
        .and_then(|p| p.recrawl_behavior.clone())
        .unwrap_or(RecrawlBehavior::CrawlEverything)
}

fn state(c: &Crawler) -> &CrawlerState {
    c.state.as_ref().unwrap_or(&CrawlerState::Ready)
}

fn name(c: &Crawler) -> &str {
    c.name.as_deref().unwrap_or_default()
}

/// Checks a whole definition as Glue does on Create and Update (the model's own constraints
/// were checked on the way in).
fn validate(c: &Crawler) -> Result<(), ServiceError> {
    s3_targets(c.targets.as_ref())?;
    let (update, delete) = schema_change(c);
    match recrawl(c) {
        RecrawlBehavior::CrawlNewFoldersOnly
            if update != UpdateBehavior::Log || delete != DeleteBehavior::Log =>
        {
            return Err(errors::invalid_input(
                "The SchemaChangePolicy must be LOG for both UpdateBehavior and DeleteBehavior when the RecrawlBehavior is CRAWL_NEW_FOLDERS_ONLY.",
            ));
        }
        RecrawlBehavior::CrawlEventMode => {
            return Err(errors::invalid_input(
                "CRAWL_EVENT_MODE needs SQS, which Lakebox does not have yet.",
            ));
        }
        _ => {}
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
    if let Some(expr) = c.schedule.as_ref().and_then(|s| s.schedule_expression.as_ref()) {
        Cron::parse(expr)
            .ok_or_else(|| errors::invalid_input(format!("Invalid schedule expression: {expr}")))?;
    }
    Ok(())
}

fn spec_of(c: &Crawler, customs: Vec<Custom>) -> Result<CrawlSpec, ServiceError> {
    let cfg: Value = c
        .configuration
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let (update, delete) = schema_change(c);
    Ok(CrawlSpec {
        crawler: name(c).to_owned(),
        database: normalize(c.database_name.as_deref().unwrap_or_default()),
        table_prefix: c.table_prefix.clone().unwrap_or_default(),
        targets: s3_targets(c.targets.as_ref())?,
        update_in_database: update == UpdateBehavior::UpdateInDatabase,
        delete_behavior: delete.as_str().to_owned(),
        new_folders_only: recrawl(c) == RecrawlBehavior::CrawlNewFoldersOnly,
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
        let name = rec
            .crawler
            .as_ref()
            .map(|c| name(c).to_owned())
            .unwrap_or_default();
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
            if state(c) != &CrawlerState::Ready {
                c.state = Some(CrawlerState::Ready);
                if let Some(l) = c.last_crawl.as_mut() {
                    l.status = Some(LastCrawlStatus::Cancelled);
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
            .filter(|s| s.state == Some(ScheduleState::Scheduled))
            .and_then(|s| s.schedule_expression.as_deref())
        {
            Some(expr) => match Cron::parse(expr).and_then(|c| c.next_after(self.now())) {
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
                        && crate::GlueError::of(&e) != crate::GlueError::CrawlerRunning
                    {
                        tracing::warn!(crawler = %name, error = %e.message, "scheduled crawl did not start");
                    }
                }
            }
        })
    }

    /// A new crawler's definition: the request's settings over Glue's defaults.
    fn new_definition(&self, input: CreateCrawlerRequest) -> Result<Crawler, ServiceError> {
        let now = Timestamp::from_millis(self.now());
        let base = Crawler {
            name: Some(input.name.clone()),
            classifiers: Some(Vec::new()),
            recrawl_policy: Some(RecrawlPolicy {
                recrawl_behavior: Some(RecrawlBehavior::CrawlEverything),
            }),
            schema_change_policy: Some(SchemaChangePolicy {
                update_behavior: Some(UpdateBehavior::UpdateInDatabase),
                delete_behavior: Some(DeleteBehavior::DeprecateInDatabase),
            }),
            lineage_configuration: Some(LineageConfiguration {
                crawler_lineage_settings: Some(crate::api::CrawlerLineageSettings::Disable),
            }),
            state: Some(CrawlerState::Ready),
            crawl_elapsed_time: Some(0),
            creation_time: Some(now),
            version: Some(0),
            lake_formation_configuration: Some(LakeFormationConfiguration {
                use_lake_formation_credentials: Some(false),
                account_id: Some(String::new()),
            }),
            ..Default::default()
        };
        let changes = UpdateCrawlerRequest {
            name: input.name,
            role: Some(input.role),
            database_name: input.database_name,
            description: input.description,
            targets: Some(input.targets),
            schedule: input.schedule,
            classifiers: input.classifiers,
            table_prefix: input.table_prefix,
            schema_change_policy: input.schema_change_policy,
            recrawl_policy: input.recrawl_policy,
            lineage_configuration: input.lineage_configuration,
            lake_formation_configuration: input.lake_formation_configuration,
            configuration: input.configuration,
            crawler_security_configuration: input.crawler_security_configuration,
        };
        self.definition(changes, base)
    }

    /// `c` with the settings an Update (or Create) request gives; the others are kept.
    fn definition(&self, input: UpdateCrawlerRequest, mut c: Crawler) -> Result<Crawler, ServiceError> {
        fn set<T>(field: &mut Option<T>, v: Option<T>) {
            if v.is_some() {
                *field = v;
            }
        }
        set(&mut c.role, input.role);
        set(&mut c.targets, input.targets);
        set(&mut c.database_name, input.database_name);
        set(&mut c.description, input.description);
        set(&mut c.classifiers, input.classifiers);
        set(&mut c.table_prefix, input.table_prefix);
        if let Some(mut v) = input.schema_change_policy {
            // Unset fields keep Glue's defaults.
            v.update_behavior.get_or_insert(UpdateBehavior::UpdateInDatabase);
            v.delete_behavior
                .get_or_insert(DeleteBehavior::DeprecateInDatabase);
            c.schema_change_policy = Some(v);
        }
        set(&mut c.recrawl_policy, input.recrawl_policy);
        set(&mut c.lineage_configuration, input.lineage_configuration);
        set(
            &mut c.lake_formation_configuration,
            input.lake_formation_configuration,
        );
        set(&mut c.configuration, input.configuration);
        set(
            &mut c.crawler_security_configuration,
            input.crawler_security_configuration,
        );
        if let Some(expr) = input.schedule {
            c.schedule = (!expr.is_empty()).then_some(Schedule {
                schedule_expression: Some(expr),
                state: Some(ScheduleState::Scheduled),
            });
        }
        c.last_updated = Some(Timestamp::from_millis(self.now()));
        c.version = Some(c.version.unwrap_or(0) + 1);
        validate(&c)?;
        Ok(c)
    }

    pub async fn create(
        &self,
        ctx: &RequestContext,
        input: CreateCrawlerRequest,
    ) -> Result<(), ServiceError> {
        check_name("name", &input.name)?;
        if input.role.is_empty() {
            return Err(errors::invalid_input("Role is required."));
        }
        let scope = Scope::from(ctx);
        let tags = input.tags.clone().unwrap_or_default();
        let c = self.new_definition(input)?;
        let name = name(&c).to_owned();
        let rec = Record {
            crawler: Some(c.clone()),
            tags,
            ..Default::default()
        };
        let k = key(&scope, &name);
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
            return Err(errors::already_exists(format!("{name} already exists")));
        }
        self.reschedule(&scope, &name, Some(&c));
        Ok(())
    }

    /// The crawler as Get returns it (elapsed time of a running crawl filled in).
    fn view(&self, scope: &Scope, rec: &Record) -> Option<Crawler> {
        let mut c = rec.crawler.clone()?;
        if let Some(start) = rec.started_millis {
            c.crawl_elapsed_time = Some(self.now() - start);
        }
        let stopping = self
            .running
            .lock()
            .unwrap()
            .get(&(scope.clone(), name(&c).to_owned()))
            .is_some_and(|f| f.load(Ordering::Relaxed));
        if stopping && state(&c) == &CrawlerState::Running {
            c.state = Some(CrawlerState::Stopping);
        }
        Some(c)
    }

    pub fn get(&self, ctx: &RequestContext, name: &str) -> Result<Crawler, ServiceError> {
        let scope = Scope::from(ctx);
        let rec = self.load_crawler(&scope, name)?;
        self.view(&scope, &rec).ok_or_else(|| not_found(name))
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
    ) -> Result<(Vec<Crawler>, Option<String>), ServiceError> {
        let scope = Scope::from(ctx);
        let all: Vec<Crawler> = self
            .all(&scope)?
            .iter()
            .filter_map(|r| self.view(&scope, r))
            .collect();
        page(all, |c| name(c).to_owned(), token, max)
    }

    pub fn list_names(
        &self,
        ctx: &RequestContext,
        token: Option<&str>,
        max: usize,
        tags: Option<BTreeMap<String, String>>,
    ) -> Result<(Vec<String>, Option<String>), ServiceError> {
        let names: Vec<String> = self
            .all(&Scope::from(ctx))?
            .into_iter()
            .filter(|r| {
                tags.as_ref()
                    .is_none_or(|t| t.iter().all(|(k, v)| r.tags.get(k) == Some(v)))
            })
            .filter_map(|r| r.crawler.and_then(|c| c.name))
            .collect();
        page(names, |n| n.clone(), token, max)
    }

    pub fn metrics(
        &self,
        ctx: &RequestContext,
        names: Option<Vec<String>>,
        token: Option<&str>,
        max: usize,
    ) -> Result<(Vec<CrawlerMetrics>, Option<String>), ServiceError> {
        let scope = Scope::from(ctx);
        let recs: Vec<Record> = match names {
            Some(n) => n
                .iter()
                .filter_map(|n| self.load(&scope, n).ok().flatten())
                .filter(|r| r.crawler.is_some())
                .collect(),
            None => self.all(&scope)?,
        };
        let metrics: Vec<CrawlerMetrics> = recs
            .iter()
            .filter_map(|r| {
                let c = r.crawler.as_ref()?;
                Some(CrawlerMetrics {
                    crawler_name: c.name.clone(),
                    time_left_seconds: Some(0.0),
                    still_estimating: Some(false),
                    last_runtime_seconds: Some(r.runtimes.last().copied().unwrap_or(0.0)),
                    median_runtime_seconds: Some(median(&r.runtimes)),
                    tables_created: Some(r.tables_created as i32),
                    tables_updated: Some(r.tables_updated as i32),
                    tables_deleted: Some(r.tables_deleted as i32),
                })
            })
            .collect();
        page(
            metrics,
            |m| m.crawler_name.clone().unwrap_or_default(),
            token,
            max,
        )
    }

    pub async fn update(
        &self,
        ctx: &RequestContext,
        input: UpdateCrawlerRequest,
    ) -> Result<(), ServiceError> {
        let scope = Scope::from(ctx);
        let mut rec = self.load_crawler(&scope, &input.name)?;
        let base = rec.crawler.clone().expect("loaded crawler");
        if state(&base) != &CrawlerState::Ready {
            return Err(running_error(name(&base)));
        }
        let c = self.definition(input, base)?;
        rec.crawler = Some(c.clone());
        self.save(&scope, &rec).await?;
        self.reschedule(&scope, name(&c), Some(&c));
        Ok(())
    }

    pub async fn delete(&self, ctx: &RequestContext, name: &str) -> Result<(), ServiceError> {
        let scope = Scope::from(ctx);
        let rec = self.load_crawler(&scope, name)?;
        if rec
            .crawler
            .as_ref()
            .is_some_and(|c| state(c) != &CrawlerState::Ready)
        {
            return Err(running_error(name));
        }
        let k = key(&scope, name);
        self.store
            .write_async(move |b| b.delete(CRAWLERS, &k))
            .await
            .map_err(internal)?;
        self.reschedule(&scope, name, None);
        Ok(())
    }

    pub async fn set_schedule_state(
        &self,
        ctx: &RequestContext,
        name: &str,
        on: bool,
    ) -> Result<(), ServiceError> {
        let scope = Scope::from(ctx);
        let mut rec = self.load_crawler(&scope, name)?;
        let c = rec.crawler.as_mut().expect("loaded crawler");
        let Some(s) = c.schedule.as_mut() else {
            return Err(ServiceError::client(
                "NoScheduleException",
                format!("Crawler {name} has no schedule."),
            ));
        };
        match (on, s.state.as_ref().unwrap_or(&ScheduleState::Scheduled)) {
            (true, ScheduleState::Scheduled) => {
                return Err(ServiceError::client(
                    "SchedulerRunningException",
                    format!("Schedule of crawler {name} is already running."),
                ));
            }
            (false, ScheduleState::NotScheduled) => {
                return Err(ServiceError::client(
                    "SchedulerNotRunningException",
                    format!("Schedule of crawler {name} is not running."),
                ));
            }
            _ => {}
        }
        s.state = Some(if on {
            ScheduleState::Scheduled
        } else {
            ScheduleState::NotScheduled
        });
        let c = c.clone();
        self.save(&scope, &rec).await?;
        self.reschedule(&scope, name, Some(&c));
        Ok(())
    }

    /// Starts a crawl in the background: the crawler is RUNNING when this returns.
    pub async fn start(self: &Arc<Self>, scope: &Scope, name: &str) -> Result<(), ServiceError> {
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
            if state(c) != &CrawlerState::Ready {
                return Err(running_error(name));
            }
            let classifiers = c.classifiers.as_deref().unwrap_or_default();
            let spec = spec_of(c, self.classifiers.customs(scope, classifiers)?)?;
            let now = self.now();
            c.state = Some(CrawlerState::Running);
            c.crawl_elapsed_time = Some(0);
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
        Ok(())
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
        c.state = Some(CrawlerState::Stopping);
        let elapsed = self.now() - started;
        let (status, error) = match (&result, cancelled) {
            (_, true) => (LastCrawlStatus::Cancelled, None),
            (Ok(_), false) => (LastCrawlStatus::Succeeded, None),
            (Err(e), false) => (LastCrawlStatus::Failed, Some(e.clone())),
        };
        c.last_crawl = Some(LastCrawlInfo {
            status: Some(status.clone()),
            error_message: error,
            log_group: Some("/aws-glue/crawlers".into()),
            log_stream: Some(name.to_owned()),
            message_prefix: Some(uuid::Uuid::new_v4().to_string()),
            start_time: Some(Timestamp::from_millis(started)),
        });
        c.crawl_elapsed_time = Some(0);
        c.state = Some(CrawlerState::Ready);
        rec.started_millis = None;
        rec.runtimes.push(elapsed as f64 / 1000.0);
        if rec.runtimes.len() > 100 {
            rec.runtimes.remove(0);
        }
        let r = result.unwrap_or_default();
        rec.tables_created = r.tables_created;
        rec.tables_updated = r.tables_updated;
        rec.tables_deleted = r.tables_deleted;
        tracing::info!(crawler = %name, status = %status, ms = elapsed, files = r.files_read, created = r.tables_created,
            updated = r.tables_updated, deleted = r.tables_deleted, partitions = r.partitions_created, "crawl finished");
        self.save(scope, &rec).await
    }

    pub async fn stop(&self, ctx: &RequestContext, name: &str) -> Result<(), ServiceError> {
        let scope = Scope::from(ctx);
        let rec = self.load_crawler(&scope, name)?;
        let c = rec.crawler.as_ref().expect("loaded crawler");
        match state(c) {
            CrawlerState::Ready => {
                return Err(ServiceError::client(
                    "CrawlerNotRunningException",
                    format!("Crawler with name {name} is not running"),
                ));
            }
            CrawlerState::Stopping => {
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
            Some(_) => Ok(()),
            None => Err(ServiceError::client(
                "CrawlerNotRunningException",
                format!("Crawler with name {name} is not running"),
            )),
        }
    }
}
