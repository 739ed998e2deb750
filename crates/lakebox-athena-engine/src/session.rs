//! The DataFusion sessions a query runs in: every `s3://` bucket is Lakebox S3 (counting the
//! bytes read), the `awsdatacatalog` catalog is Glue, the Trino functions are registered, and
//! SQL is planned after the Trino rewrites. A view is planned in a nested session of the same
//! kind, so views over views work (to a bounded depth).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement as SQLStatement;
use lakebox_glue::{Catalog, Scope};
use lakebox_service::lake::Lake;
use object_store::ObjectStore;
use url::Url;

use crate::{CATALOG, casts, catalog, functions, rewrite, spellings};

/// How deep views may nest (a view over a view over …), so that a cycle fails.
pub const MAX_VIEW_DEPTH: usize = 16;

/// The memory one query's operators may hold: `LAKEBOX_QUERY_MEMORY_MIB`, or a sixteenth of the
/// machine's memory (so the eight queries that run at once hold at most half), between 256 MiB
/// and 8 GiB.
pub fn query_memory_limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        const MIB: usize = 1024 * 1024;
        if let Some(mib) = std::env::var("LAKEBOX_QUERY_MEMORY_MIB")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|m| *m > 0)
        {
            return mib * MIB;
        }
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib * 1024)
            })
            .unwrap_or(4096 * MIB);
        (total / 16).clamp(256 * MIB, 8192 * MIB)
    })
}

#[derive(Clone)]
pub struct Sessions {
    pub lake: Lake,
    pub catalog: Arc<Catalog>,
    pub scope: Scope,
    /// Object bytes read by the query, views included: its DataScannedInBytes.
    pub scanned: Arc<AtomicU64>,
    /// The physical plans the statement ran, for the rows its scans read.
    pub executed: Arc<Executed>,
}

/// Every physical plan a session runs, kept by a physical optimizer rule that runs last: CTAS,
/// INSERT INTO and UNLOAD hand their plans to DataFusion's writers, which build and run the
/// physical plan themselves, yet GetQueryRuntimeStatistics' InputRows comes from its scans.
#[derive(Debug, Default)]
pub struct Executed(Mutex<Vec<Arc<dyn ExecutionPlan>>>);

impl Executed {
    /// The plans run so far (their metrics fill in as they execute).
    pub fn plans(&self) -> Vec<Arc<dyn ExecutionPlan>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[derive(Debug)]
struct RecordExecuted(Arc<Executed>);

impl PhysicalOptimizerRule for RecordExecuted {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &datafusion::config::ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        (self.0)
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(plan.clone());
        Ok(plan)
    }

    fn name(&self) -> &str {
        "record_executed_plan"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

impl Sessions {
    /// A session whose unqualified names resolve in `database`; `depth` counts enclosing views.
    pub fn context(&self, database: Option<&str>, depth: usize) -> Result<SessionContext> {
        let runtime = RuntimeEnvBuilder::new()
            // Sorts, joins and aggregations account their memory here: past the limit they
            // spill where they can and fail the query where they cannot, never the server.
            .with_memory_limit(query_memory_limit(), 1.0)
            .with_object_store_registry(Arc::new(LakeRegistry {
                lake: self.lake.clone(),
                scanned: self.scanned.clone(),
                registered: Default::default(),
            }))
            .build_arc()?;
        let config = SessionConfig::new()
            .with_target_partitions(scan_partitions())
            .with_default_catalog_and_schema(CATALOG, database.unwrap_or("default").to_lowercase())
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(true);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_type_planner(Arc::new(casts::TrinoTypes))
            .with_physical_optimizer_rule(Arc::new(RecordExecuted(self.executed.clone())))
            .build();
        let ctx = SessionContext::new_with_state(state);
        functions::register_all(&ctx);
        ctx.add_analyzer_rule(Arc::new(casts::NestedCasts));
        ctx.register_catalog(CATALOG, Arc::new(catalog::GlueCatalog::new(self.clone(), depth)));
        Ok(ctx)
    }

    /// Plans a parsed statement after rewriting its Trino spellings.
    pub async fn plan(&self, ctx: &SessionContext, mut statement: DFStatement) -> Result<LogicalPlan> {
        if let DFStatement::Statement(s) = &mut statement {
            if let SQLStatement::Query(q) = s.as_mut() {
                rewrite::name_columns(q);
            }
            rewrite::apply(s.as_mut());
        }
        ctx.state().statement_to_plan(statement).await
    }

    /// Parses and plans SQL text (a view's definition).
    pub async fn plan_sql(&self, ctx: &SessionContext, sql: &str) -> Result<LogicalPlan> {
        let statement = crate::depth::parse(ctx, &spellings::respell(sql))?;
        self.plan(ctx, statement).await
    }
}

/// How many partitions a query's scans and aggregations are split into: twice the cores, at
/// least 4. Measured on 2 cores over TPC-H lineitem in Parquet, 4 partitions run the
/// benchmark queries 20–30% faster than 2 (reading one row group overlaps decoding another),
/// and more than 8 gains nothing.
fn scan_partitions() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 2).max(4)
}

/// Every `s3://bucket` URL is that bucket of Lakebox S3; the bytes read through it are the
/// query's DataScannedInBytes. Other stores are the query's own (decompressed files), which
/// it registers while planning.
struct LakeRegistry {
    lake: Lake,
    scanned: Arc<AtomicU64>,
    registered: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
}

/// A store's key in the registry: its scheme and host.
fn store_key(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""))
}

impl std::fmt::Debug for LakeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LakeRegistry")
    }
}

impl ObjectStoreRegistry for LakeRegistry {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        let mut registered = self.registered.write().unwrap_or_else(|e| e.into_inner());
        registered.insert(store_key(url), store)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let registered = self.registered.read().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = registered.get(&store_key(url)) {
            return Ok(store.clone());
        }
        match (url.scheme(), url.host_str()) {
            ("s3" | "s3a", Some(bucket)) => Ok(Arc::new(
                lakebox_objectstore::LakeObjectStore::new(self.lake.clone(), bucket)
                    .counting_reads(self.scanned.clone()),
            )),
            _ => Err(DataFusionError::Plan(format!(
                "Location {url} is not in S3: Athena reads s3:// locations."
            ))),
        }
    }
}
