//! Query executions: StartQueryExecution runs the statement on the engine (QUEUED →
//! RUNNING → SUCCEEDED / FAILED / CANCELLED, a bounded number at once), writes the result to
//! `<OutputLocation><QueryExecutionId>.csv` as Athena does, and GetQueryResults pages it back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::FutureExt;
use lakebox_athena_engine::pool::QueryPool;
use lakebox_athena_engine::{Engine, Parsed, QueryError, QueryOutput, RunOptions};
use lakebox_core::{RequestContext, ServiceError};
use lakebox_glue::{Catalog, Scope};
use lakebox_protocol::Timestamp;
use lakebox_service::lake::{Lake, PutOptions, split_s3_url};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Semaphore, watch};

use crate::api::*;
use crate::results::{ColumnInfo, csv, csv_row_starts, metadata, parse_csv, text as text_file};
use crate::session::{self, Session};
use crate::statement::Statement;
use crate::store::*;
use crate::workgroups::{self, PRIMARY};
use lakebox_athena_ddl::Kind;

const EXECUTIONS: &str = "query_executions";
const TOKENS: &str = "query_tokens";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Execution {
    pub id: String,
    pub account: String,
    pub region: String,
    pub query: String,
    pub database: Option<String>,
    pub catalog: Option<String>,
    pub work_group: String,
    /// The result file, `s3://…/<id>.csv`.
    pub output: String,
    pub state: String,
    pub reason: Option<String>,
    pub error: Option<(u32, u32, String)>,
    pub submitted_millis: i64,
    pub started_millis: Option<i64>,
    pub completed_millis: Option<i64>,
    pub engine_millis: u64,
    pub scanned_bytes: u64,
    pub columns: Vec<(String, String, bool)>,
    pub parameters: Option<Vec<String>>,
    /// Athena's StatementType: DML (results in `<id>.csv` with a header row), DDL or UTILITY
    /// (results in `<id>.txt`, no header).
    #[serde(default = "dml")]
    pub statement_type: String,
    /// Rows read from tables, rows and bytes in the result (GetQueryRuntimeStatistics).
    #[serde(default)]
    pub input_rows: u64,
    #[serde(default)]
    pub output_rows: u64,
    #[serde(default)]
    pub output_bytes: u64,
    /// Rows written by CTAS, INSERT INTO or UNLOAD (GetQueryResults' UpdateCount).
    #[serde(default)]
    pub update_count: Option<u64>,
    /// The workgroup's BytesScannedCutoffPerQuery when the query started.
    #[serde(default)]
    pub bytes_scanned_cutoff: Option<u64>,
    /// ResultReuseByAgeConfiguration's MaxAgeInMinutes, when result reuse was asked for.
    #[serde(default)]
    pub reuse_max_age_minutes: Option<u64>,
    /// The execution answered with an earlier execution's results (ReusedPreviousResult).
    #[serde(default)]
    pub reused: bool,
    /// ResultConfiguration's other members (EncryptionConfiguration, ExpectedBucketOwner,
    /// AclConfiguration), reported back as given.
    #[serde(default)]
    pub result_configuration: Option<ResultConfiguration>,
    /// The executed plan's stages (GetQueryRuntimeStatistics' OutputStage).
    #[serde(default)]
    pub output_stage: Option<Value>,
}

fn dml() -> String {
    "DML".into()
}

impl Execution {
    /// The data manifest a CTAS, INSERT INTO or UNLOAD wrote beside its `.metadata`
    /// (Statistics.DataManifestLocation); queries that only read have none.
    fn manifest(&self) -> Option<String> {
        self.update_count.map(|_| format!("{}-manifest.csv", self.output))
    }

    /// The context's database as the query reads it: a name given quoted (awswrangler sends
    /// `` `db` `` for DESCRIBE, MSCK REPAIR and SHOW CREATE TABLE) names the same database.
    fn context_database(&self) -> Option<&str> {
        self.database.as_deref().map(|d| {
            d.strip_prefix('`')
                .and_then(|d| d.strip_suffix('`'))
                .or_else(|| d.strip_prefix('"').and_then(|d| d.strip_suffix('"')))
                .unwrap_or(d)
        })
    }

    /// Milliseconds from submission to completion and to the start of running (0 until then).
    fn total_and_queued_millis(&self) -> (i64, i64) {
        let since_submission = |t: Option<i64>| t.map(|t| (t - self.submitted_millis).max(0)).unwrap_or(0);
        (
            since_submission(self.completed_millis),
            since_submission(self.started_millis),
        )
    }

    fn result_configuration_view(&self) -> ResultConfiguration {
        ResultConfiguration {
            output_location: Some(self.output.clone()),
            ..self.result_configuration.clone().unwrap_or_default()
        }
    }

    fn view(&self) -> QueryExecution {
        let (total, queued) = self.total_and_queued_millis();
        QueryExecution {
            query_execution_id: Some(self.id.clone()),
            query: Some(self.query.clone()),
            statement_type: Some(StatementType::from(self.statement_type.as_str())),
            result_configuration: Some(self.result_configuration_view()),
            result_reuse_configuration: Some(ResultReuseConfiguration {
                result_reuse_by_age_configuration: Some(ResultReuseByAgeConfiguration {
                    enabled: self.reuse_max_age_minutes.is_some(),
                    max_age_in_minutes: self.reuse_max_age_minutes.map(|m| m as i32),
                }),
            }),
            query_execution_context: Some(QueryExecutionContext {
                database: self.database.clone(),
                catalog: self.catalog.clone(),
            }),
            status: Some(QueryExecutionStatus {
                state: Some(QueryExecutionState::from(self.state.as_str())),
                state_change_reason: self.reason.clone(),
                submission_date_time: Some(Timestamp::from_millis(self.submitted_millis)),
                completion_date_time: self.completed_millis.map(Timestamp::from_millis),
                athena_error: self
                    .error
                    .as_ref()
                    .map(|(category, error_type, message)| AthenaError {
                        error_category: Some(*category as i32),
                        error_type: Some(*error_type as i32),
                        retryable: Some(false),
                        error_message: Some(message.clone()),
                    }),
            }),
            statistics: Some(QueryExecutionStatistics {
                engine_execution_time_in_millis: Some(self.engine_millis as i64),
                data_scanned_in_bytes: Some(self.scanned_bytes as i64),
                total_execution_time_in_millis: Some(total),
                query_queue_time_in_millis: Some(queued),
                service_pre_processing_time_in_millis: Some(0),
                query_planning_time_in_millis: Some(0),
                service_processing_time_in_millis: Some((total - queued - self.engine_millis as i64).max(0)),
                result_reuse_information: Some(ResultReuseInformation {
                    reused_previous_result: self.reused,
                }),
                data_manifest_location: self.manifest(),
                ..Default::default()
            }),
            work_group: Some(self.work_group.clone()),
            engine_version: Some(workgroups::engine_version()),
            execution_parameters: self.parameters.clone(),
            ..Default::default()
        }
    }
}

fn failure(category: u32, error_type: u32, message: String) -> QueryError {
    QueryError {
        category,
        error_type,
        message,
        cancelled: false,
    }
}

/// What a finished statement reports in its QueryExecution.
struct Outcome {
    columns: Vec<(String, String, bool)>,
    engine_millis: u64,
    scanned_bytes: u64,
    update_count: Option<u64>,
    input_rows: u64,
    output_rows: u64,
    output_bytes: u64,
    output_stage: Option<Value>,
}

pub struct Queries {
    pub store: Arc<Store>,
    pub engine: Arc<Engine>,
    pub catalog: Arc<Catalog>,
    pub lake: Lake,
    /// Where queries run: never on the threads that answer requests.
    pub pool: Arc<QueryPool>,
    slots: Arc<Semaphore>,
    running: Mutex<HashMap<String, Running>>,
    row_index: Mutex<RowIndexes>,
    /// Where a finished query's AWS/Athena metrics go (workgroups that publish them).
    pub metrics: std::sync::OnceLock<lakebox_service::metrics::Recorder>,
}

/// A query under way: how to stop it, and what turns true once its outcome is recorded.
struct Running {
    abort: tokio::task::AbortHandle,
    /// Checked by every operator between batches: aborting the task alone would not stop
    /// operators busy in a loop that never waits.
    stop: Arc<AtomicBool>,
    done: watch::Receiver<bool>,
}

/// How long GetQueryExecution waits for a query under way to finish before answering with
/// its current state: a client polling a fast query sees it finished on its first poll
/// instead of sleeping between polls (Athena's own GetQueryExecution takes longer than this).
const POLL_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// The ResultConfiguration members besides OutputLocation: the request's, or the workgroup's
/// where it enforces its configuration or the request leaves a member out.
fn result_configuration(
    given: Option<&ResultConfiguration>,
    workgroup: Option<&ResultConfiguration>,
    enforce: bool,
) -> Option<ResultConfiguration> {
    fn pick<T: Clone>(given: Option<&T>, wg: Option<&T>, enforce: bool) -> Option<T> {
        if enforce { wg.or(given) } else { given.or(wg) }.cloned()
    }
    let out = ResultConfiguration {
        output_location: None,
        encryption_configuration: pick(
            given.and_then(|c| c.encryption_configuration.as_ref()),
            workgroup.and_then(|c| c.encryption_configuration.as_ref()),
            enforce,
        ),
        expected_bucket_owner: pick(
            given.and_then(|c| c.expected_bucket_owner.as_ref()),
            workgroup.and_then(|c| c.expected_bucket_owner.as_ref()),
            enforce,
        ),
        acl_configuration: pick(
            given.and_then(|c| c.acl_configuration.as_ref()),
            workgroup.and_then(|c| c.acl_configuration.as_ref()),
            enforce,
        ),
    };
    (out != ResultConfiguration::default()).then_some(out)
}

/// Replaces each `?` outside string literals with the next parameter (ExecutionParameters).
fn bind(sql: &str, params: &[String]) -> Result<String, ServiceError> {
    let mut out = String::new();
    let mut it = params.iter();
    let mut in_str = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                in_str = !in_str;
                out.push(c);
            }
            '?' if !in_str => out.push_str(
                it.next()
                    .ok_or_else(|| invalid("The query has more ? placeholders than ExecutionParameters."))?,
            ),
            _ => out.push(c),
        }
    }
    if it.next().is_some() {
        return Err(invalid(
            "More ExecutionParameters were given than the query has ? placeholders.",
        ));
    }
    Ok(out)
}

/// Where the rows of one query's CSV result start, for the object version `etag`.
struct RowIndex {
    etag: String,
    starts: Vec<u64>,
}

/// The row indexes of recently paged results, bounded by the row starts they hold (8 bytes
/// each); the oldest go first.
#[derive(Default)]
struct RowIndexes {
    order: std::collections::VecDeque<String>,
    by_id: HashMap<String, Arc<RowIndex>>,
    held: usize,
}

/// 16 million row starts (128 MiB) at most.
const MAX_INDEXED_ROWS: usize = 16 << 20;

impl RowIndexes {
    fn get(&self, id: &str) -> Option<Arc<RowIndex>> {
        self.by_id.get(id).cloned()
    }

    fn insert(&mut self, id: &str, index: Arc<RowIndex>) {
        if let Some(old) = self.by_id.remove(id) {
            self.held -= old.starts.len();
            self.order.retain(|k| k != id);
        }
        self.held += index.starts.len();
        self.by_id.insert(id.to_owned(), index);
        self.order.push_back(id.to_owned());
        while self.held > MAX_INDEXED_ROWS && self.order.len() > 1 {
            let oldest = self.order.pop_front().expect("not empty");
            if let Some(gone) = self.by_id.remove(&oldest) {
                self.held -= gone.starts.len();
            }
        }
    }
}

/// An object (or `range` of it) and its ETag.
async fn read(
    lake: &Lake,
    bucket: &str,
    key: &str,
    range: Option<std::ops::Range<u64>>,
) -> Result<(String, Vec<u8>), ServiceError> {
    let (info, mut rx) = lake.get(bucket, key, range)?;
    let mut data = Vec::new();
    while let Some(chunk) = rx.recv().await {
        data.extend_from_slice(&chunk.map_err(internal)?);
    }
    Ok((info.etag, data))
}

impl Queries {
    pub fn new(
        store: Arc<Store>,
        engine: Arc<Engine>,
        catalog: Arc<Catalog>,
        lake: Lake,
        pool: Arc<QueryPool>,
        concurrency: usize,
    ) -> Result<Self, ServiceError> {
        let q = Queries {
            store,
            engine,
            catalog,
            lake,
            pool,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            running: Mutex::new(HashMap::new()),
            row_index: Mutex::new(RowIndexes::default()),
            metrics: std::sync::OnceLock::new(),
        };
        q.recover()?;
        Ok(q)
    }

    /// A finished query's metrics in AWS/Athena, by QueryState, QueryType and WorkGroup, when
    /// its workgroup publishes them (PublishCloudWatchMetricsEnabled), as Athena does.
    fn publish_metrics(&self, e: &Execution) {
        let Some(recorder) = self.metrics.get() else {
            return;
        };
        let ctx = RequestContext::internal(&e.account, &e.region, self.store.now());
        let publishes = crate::workgroups::load(&self.store, &ctx, &e.work_group)
            .is_ok_and(|w| w.configuration.publish_cloud_watch_metrics_enabled == Some(true));
        if !publishes {
            return;
        }
        let view = e.view();
        let Some(st) = view.statistics else { return };
        let ms = |v: Option<i64>| v.unwrap_or(0) as f64;
        recorder.record_many(
            &e.account,
            &e.region,
            "AWS/Athena",
            &[
                ("QueryState", e.state.as_str()),
                ("QueryType", e.statement_type.as_str()),
                ("WorkGroup", e.work_group.as_str()),
            ],
            &[
                ("ProcessedBytes", "Bytes", ms(st.data_scanned_in_bytes)),
                (
                    "TotalExecutionTime",
                    "Milliseconds",
                    ms(st.total_execution_time_in_millis),
                ),
                (
                    "EngineExecutionTime",
                    "Milliseconds",
                    ms(st.engine_execution_time_in_millis),
                ),
                (
                    "QueryQueueTime",
                    "Milliseconds",
                    ms(st.query_queue_time_in_millis),
                ),
                (
                    "QueryPlanningTime",
                    "Milliseconds",
                    ms(st.query_planning_time_in_millis),
                ),
                (
                    "ServicePreProcessingTime",
                    "Milliseconds",
                    ms(st.service_pre_processing_time_in_millis),
                ),
                (
                    "ServiceProcessingTime",
                    "Milliseconds",
                    ms(st.service_processing_time_in_millis),
                ),
            ],
        );
    }

    /// Executions cut short by a restart end FAILED.
    fn recover(&self) -> Result<(), ServiceError> {
        let all: Vec<Execution> = self.store.scan(EXECUTIONS, b"")?;
        for mut e in all
            .into_iter()
            .filter(|e| e.state == "QUEUED" || e.state == "RUNNING")
        {
            e.state = "FAILED".into();
            e.reason = Some("Lakebox stopped while the query ran.".into());
            e.error = Some((
                1,
                1000,
                "GENERIC_INTERNAL_ERROR: Lakebox stopped while the query ran.".into(),
            ));
            e.completed_millis = Some(self.store.now());
            self.store
                .kv
                .put(EXECUTIONS, e.id.as_bytes(), &encode(&e).map_err(internal)?)
                .map_err(internal)?;
        }
        Ok(())
    }

    /// Queues an execution's new state behind the ones already queued (so a later state always
    /// wins) and returns what resolves once it is durable.
    fn save(
        &self,
        e: &Execution,
    ) -> Result<impl Future<Output = Result<(), ServiceError>> + use<>, ServiceError> {
        let (id, value) = (e.id.clone(), encode(e).map_err(internal)?);
        let durable = self
            .store
            .kv
            .enqueue(move |b| b.put(EXECUTIONS, id.as_bytes(), &value))
            .map_err(internal)?;
        Ok(async move { durable.await.map_err(internal) })
    }

    fn load(&self, ctx: &RequestContext, id: &str) -> Result<Execution, ServiceError> {
        self.store
            .get::<Execution>(EXECUTIONS, id.as_bytes())?
            .filter(|e| e.account == ctx.account_id && e.region == ctx.region)
            .ok_or_else(|| {
                invalid(format!("QueryExecution {id} was not found"))
                    .with_extra("AthenaErrorCode", "QUERY_EXECUTION_NOT_FOUND")
            })
    }

    pub async fn start(
        self: &Arc<Self>,
        ctx: &RequestContext,
        r: StartQueryExecutionInput,
    ) -> Result<StartQueryExecutionOutput, ServiceError> {
        let query = r.query_string.as_str();
        if query.trim().is_empty() {
            return Err(invalid("QueryString is required."));
        }
        let work_group = r.work_group.as_deref().unwrap_or(PRIMARY);
        let wg = workgroups::load(&self.store, ctx, work_group)?;
        if wg.state != "ENABLED" {
            return Err(invalid(format!("WorkGroup {work_group} is disabled.")));
        }
        let enforce = wg.configuration.enforce_work_group_configuration == Some(true);
        let wg_results = wg.configuration.result_configuration.as_ref();
        let wg_location = wg_results.and_then(|c| c.output_location.as_deref());
        let given = r
            .result_configuration
            .as_ref()
            .and_then(|c| c.output_location.as_deref());
        let location = if enforce { wg_location.or(given) } else { given.or(wg_location) }.ok_or_else(|| {
            invalid("No output location provided. An output location is required either through the Workgroup result configuration setting or as an API input.")
        })?;
        if split_s3_url(location).is_none() {
            return Err(invalid(format!(
                "OutputLocation {location} is not an s3:// location."
            )));
        }
        // Athena's default age is 60 minutes, at most 7 days (the model's range).
        let reuse_max_age_minutes = r
            .result_reuse_configuration
            .as_ref()
            .and_then(|c| c.result_reuse_by_age_configuration.as_ref())
            .filter(|c| c.enabled)
            .map(|c| c.max_age_in_minutes.unwrap_or(60) as u64);
        let params = r.execution_parameters.clone();
        let sql = match (&params, session::parse(query)) {
            // `EXECUTE name` with ExecutionParameters: they are its USING values.
            (Some(p), Some(Ok(Session::Execute { name, values }))) if values.is_empty() => {
                format!("EXECUTE {name} USING {}", p.join(", "))
            }
            (Some(p), _) => bind(query, p)?,
            (None, _) => query.to_owned(),
        };
        if let Some(token) = &r.client_request_token
            && let Some(existing) = self
                .store
                .kv
                .get(TOKENS, &key(&ctx.account_id, &ctx.region, &[token]))
                .map_err(internal)?
        {
            return Ok(StartQueryExecutionOutput {
                query_execution_id: Some(String::from_utf8_lossy(&existing).into_owned()),
            });
        }
        let id = uuid::Uuid::new_v4().to_string();
        let sep = if location.ends_with('/') { "" } else { "/" };
        // The one place the text is parsed: what it is travels with the execution.
        let statement = Statement::classify(&sql);
        // SQL for the engine is parsed here, once: a query that does not parse is refused, as
        // Athena refuses it, not run to fail; one that does runs what was parsed.
        let mut parsed = None;
        if let Statement::Sql(Kind::Engine { .. }) = &statement {
            // Parsing recurses as deep as the statement nests and may take a while on a
            // hostile one: a thread of its own with a big stack, off the request threads.
            let text = sql.clone();
            let read = tokio::task::spawn_blocking(move || {
                lakebox_core::stack::on_big_stack(|| lakebox_athena_engine::parse(&text))
            })
            .await
            .map_err(|e| internal(e.to_string()))?;
            match read {
                Ok(p) => parsed = Some(p),
                Err(Some(message)) => {
                    return Err(ServiceError::client("InvalidRequestException", message)
                        .with_extra("AthenaErrorCode", "MALFORMED_QUERY"));
                }
                // Not the text's syntax: the run reports it as the query's failure.
                Err(None) => {}
            }
        }
        let statement_type = match &statement {
            // EXECUTE reports the type of the statement it runs.
            Statement::Session(Ok(Session::Execute { name, .. })) => {
                workgroups::load_prepared_statement(&self.store, ctx, work_group, name)
                    .map(|p| Statement::classify(&p.query).statement_type())
                    .unwrap_or("DML")
            }
            s => s.statement_type(),
        };
        // Where Athena puts the result: `<id>.csv` for queries, `<id>.txt` for DDL, `<id>`
        // for INSERT and UNLOAD (only a `.metadata` companion), `tables/<id>` for CTAS, whose
        // data goes under `tables/<id>/` unless it names an external_location.
        let write = statement.write_kind();
        let output = match (write, statement_type) {
            (Some("CREATE TABLE AS SELECT"), _) => format!("{location}{sep}tables/{id}"),
            (Some(_), _) => format!("{location}{sep}{id}"),
            (None, "DML") => format!("{location}{sep}{id}.csv"),
            (None, _) => format!("{location}{sep}{id}.txt"),
        };
        let e = Execution {
            id: id.clone(),
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            query: query.to_owned(),
            database: r
                .query_execution_context
                .as_ref()
                .and_then(|c| c.database.clone()),
            catalog: r.query_execution_context.as_ref().and_then(|c| c.catalog.clone()),
            work_group: work_group.to_owned(),
            output,
            state: "QUEUED".into(),
            reason: None,
            error: None,
            submitted_millis: self.store.now(),
            started_millis: None,
            completed_millis: None,
            engine_millis: 0,
            scanned_bytes: 0,
            columns: Vec::new(),
            parameters: params,
            statement_type: statement_type.into(),
            update_count: None,
            input_rows: 0,
            output_rows: 0,
            output_bytes: 0,
            bytes_scanned_cutoff: wg.configuration.bytes_scanned_cutoff_per_query.map(|n| n as u64),
            reuse_max_age_minutes,
            reused: false,
            result_configuration: result_configuration(r.result_configuration.as_ref(), wg_results, enforce),
            output_stage: None,
        };
        // Result reuse: a query that only reads, run the same way recently, is answered
        // with that run's results — already SUCCEEDED, nothing run or scanned.
        let mut e = e;
        if let Some(age) = reuse_max_age_minutes
            && e.statement_type == "DML"
            && write.is_none()
            && let Some(previous) = self.reusable(&e, age)?
        {
            e.state = "SUCCEEDED".into();
            e.reused = true;
            e.output = previous.output;
            e.columns = previous.columns;
            e.output_rows = previous.output_rows;
            e.output_bytes = previous.output_bytes;
            e.started_millis = Some(e.submitted_millis);
            e.completed_millis = Some(self.store.now());
        }
        let v = encode(&e).map_err(internal)?;
        let token = r
            .client_request_token
            .as_ref()
            .map(|t| key(&ctx.account_id, &ctx.region, &[t]));
        let idb = id.clone();
        self.store
            .kv
            .write_async(move |b| {
                b.put(EXECUTIONS, idb.as_bytes(), &v)?;
                if let Some(t) = token {
                    b.put(TOKENS, &t, idb.as_bytes())?;
                }
                Ok(())
            })
            .await
            .map_err(internal)?;
        if e.reused {
            return Ok(StartQueryExecutionOutput {
                query_execution_id: Some(id),
            });
        }
        let me = self.clone();
        let scope = Scope::from(ctx);
        let ctx = ctx.clone();
        let (finished, done) = watch::channel(false);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        // Registered before the task can finish and unregister itself.
        let mut running = self.running.lock().unwrap();
        let task = self.pool.handle().spawn(async move {
            me.execute(e, ctx, scope, (sql, statement, parsed), stopping, finished)
                .await
        });
        running.insert(
            id.clone(),
            Running {
                abort: task.abort_handle(),
                stop,
                done,
            },
        );
        Ok(StartQueryExecutionOutput {
            query_execution_id: Some(id),
        })
    }

    /// The latest execution whose results a new one may reuse: the same query text, context,
    /// parameters and workgroup, SUCCEEDED within `max_age_minutes`, its result file still
    /// there (Athena, too, runs the query again when the results were deleted).
    fn reusable(&self, e: &Execution, max_age_minutes: u64) -> Result<Option<Execution>, ServiceError> {
        let since = e.submitted_millis - (max_age_minutes as i64) * 60_000;
        let mut all: Vec<Execution> = self.store.scan(EXECUTIONS, b"")?;
        all.retain(|p| {
            p.account == e.account
                && p.region == e.region
                && p.work_group == e.work_group
                && p.query == e.query
                && p.database == e.database
                && p.catalog == e.catalog
                && p.parameters == e.parameters
                && p.state == "SUCCEEDED"
                && p.statement_type == "DML"
                && p.update_count.is_none()
                && p.completed_millis.is_some_and(|c| c >= since)
        });
        all.sort_by_key(|p| std::cmp::Reverse(p.completed_millis));
        for p in all {
            let Some((bucket, key)) = split_s3_url(&p.output) else {
                continue;
            };
            if self.lake.acting_for(&p.account).head(bucket, key)?.is_some() {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    async fn execute(
        self: Arc<Self>,
        mut e: Execution,
        ctx: RequestContext,
        scope: Scope,
        (sql, statement, parsed): (String, Statement, Option<Parsed>),
        stop: Arc<AtomicBool>,
        finished: watch::Sender<bool>,
    ) {
        let _slot = self.slots.clone().acquire_owned().await;
        e.state = "RUNNING".into();
        e.started_millis = Some(self.store.now());
        // Not waited for: a restart fails whatever was not finished, RUNNING or QUEUED, and the
        // final state is queued after this one.
        let _ = self.save(&e);
        // A panic in the engine fails the query rather than leaving it RUNNING for ever.
        let outcome =
            std::panic::AssertUnwindSafe(self.run(&e, &ctx, &scope, &sql, (statement, parsed), &stop))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(query = %e.id, panic = %what, "the engine panicked");
                    Err(failure(1, 1000, format!("GENERIC_INTERNAL_ERROR: {what}")))
                });
        match outcome {
            Ok(outcome) => {
                e.state = "SUCCEEDED".into();
                e.engine_millis = outcome.engine_millis;
                e.scanned_bytes = outcome.scanned_bytes;
                e.update_count = outcome.update_count;
                e.input_rows = outcome.input_rows;
                e.output_rows = outcome.output_rows;
                e.output_bytes = outcome.output_bytes;
                e.output_stage = outcome.output_stage;
                e.columns = outcome.columns;
            }
            Err(err) if err.cancelled => {
                e.state = "CANCELLED".into();
                e.reason = Some(err.message);
            }
            Err(err) => {
                e.state = "FAILED".into();
                e.reason = Some(err.message.clone());
                e.error = Some((err.category, err.error_type, err.message));
            }
        }
        e.completed_millis = Some(self.store.now());
        let ms = e.completed_millis.unwrap_or(0) - e.started_millis.unwrap_or(0);
        match &e.reason {
            None => {
                tracing::info!(query = %e.id, state = %e.state, ms, bytes_scanned = e.scanned_bytes, "Athena query finished")
            }
            Some(reason) => {
                tracing::info!(query = %e.id, state = %e.state, ms, bytes_scanned = e.scanned_bytes, reason = %reason, "Athena query did not succeed")
            }
        }
        let saved = match self.save(&e) {
            Ok(durable) => durable.await,
            Err(err) => Err(err),
        };
        if let Err(err) = saved {
            tracing::error!(query = %e.id, error = %err.message, "cannot record a query's outcome");
        }
        self.publish_metrics(&e);
        self.running.lock().unwrap().remove(&e.id);
        let _ = finished.send(true);
    }

    /// Runs the statement (Hive DDL itself, anything else on the engine) and writes the
    /// result file with its `.metadata` companion; the columns and the engine time on success.
    async fn run(
        &self,
        e: &Execution,
        ctx: &RequestContext,
        scope: &Scope,
        sql: &str,
        (statement, mut parsed): (Statement, Option<Parsed>),
        stop: &Arc<AtomicBool>,
    ) -> Result<Outcome, QueryError> {
        let started = std::time::Instant::now();
        // Tables, results and written data are read and written as the caller: another
        // account's bucket is AccessDenied, as S3 answers that caller.
        let lake = self.lake.acting_for(&e.account);
        let cutoff = e.bytes_scanned_cutoff;
        let mut scanned_bytes = 0;
        let mut update_count = None;
        let mut input_rows = 0;
        let mut output_rows = 0;
        let mut output_stage = None;
        let mut written_files = Vec::new();
        let bound;
        let mut sql = sql;
        let user = |err: ServiceError| failure(2, 1003, err.message);
        let mut statement = statement;
        let session_only = match &statement {
            Statement::Sql(_) => false,
            Statement::Session(Err(message)) => return Err(failure(2, 1306, message.clone())),
            Statement::Session(Ok(Session::Prepare {
                name,
                statement: query,
            })) => {
                // PREPARE replaces a statement of the same name.
                let exists =
                    workgroups::load_prepared_statement(&self.store, ctx, &e.work_group, name).is_ok();
                let statement = workgroups::Statement {
                    work_group: &e.work_group,
                    name,
                    query,
                    description: None,
                };
                workgroups::put_prepared_statement(&self.store, ctx, statement, !exists)
                    .await
                    .map_err(user)?;
                true
            }
            Statement::Session(Ok(Session::Deallocate { name })) => {
                workgroups::remove_prepared_statement(&self.store, ctx, &e.work_group, name)
                    .await
                    .map_err(user)?;
                true
            }
            Statement::Session(Ok(Session::Execute { name, values })) => {
                let p = workgroups::load_prepared_statement(&self.store, ctx, &e.work_group, name)
                    .map_err(user)?;
                bound = bind(&p.query, values).map_err(|err| failure(2, 1306, err.message))?;
                sql = &bound;
                // The prepared text, bound, is what runs: read it (once) for what it is.
                statement = Statement::classify(sql);
                parsed = None;
                false
            }
        };
        let write = statement.write_kind();
        let (columns, body) = match statement {
            _ if session_only => (Vec::new(), Vec::new()),
            Statement::Sql(Kind::Ddl(Err(message))) => return Err(failure(2, 1306, message)),
            Statement::Sql(Kind::Ddl(Ok(statement))) => {
                let database = e.context_database().unwrap_or("default");
                let out = lakebox_athena_ddl::execute(&self.catalog, &lake, scope, database, statement)
                    .await
                    .map_err(|err| failure(2, err.error_type, err.message))?;
                let columns: Vec<(String, String, bool)> = out
                    .columns
                    .iter()
                    .map(|c| (c.to_string(), "string".to_string(), true))
                    .collect();
                output_rows = out.lines.len() as u64;
                (columns, text_file(&out.lines))
            }
            Statement::Sql(Kind::Engine { .. }) | Statement::Session(_) => {
                let options = RunOptions {
                    cancel: stop.clone(),
                    cutoff,
                    default_table_location: Some(format!("{}/", e.output)),
                };
                let mut out: QueryOutput = self
                    .engine
                    .run(scope, e.context_database(), sql, parsed, &options)
                    .await?;
                update_count = out.update_count;
                written_files = std::mem::take(&mut out.written_files);
                input_rows = out.input_rows;
                output_stage = out.output_stage.clone();
                output_rows = out.update_count.unwrap_or(out.rows.len() as u64);
                let columns = out
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), c.athena_type.clone(), c.nullable))
                    .collect();
                scanned_bytes = out.scanned_bytes;
                let body = if e.statement_type == "DML" {
                    csv(&out)
                } else {
                    // DDL the engine ran (CREATE VIEW): a `.txt` of its rows, if any.
                    let lines: Vec<String> = out
                        .rows
                        .iter()
                        .map(|r| {
                            r.iter()
                                .map(|v| v.clone().unwrap_or_default())
                                .collect::<Vec<_>>()
                                .join("\t")
                        })
                        .collect();
                    text_file(&lines)
                };
                (columns, body)
            }
        };
        let engine_millis = started.elapsed().as_millis() as u64;
        // A statement that wrote data reports the bytes of its files.
        let output_bytes = match update_count {
            Some(_) => written_files.iter().map(|(_, size)| size).sum(),
            None => body.len() as u64,
        };
        let (bucket, key) = split_s3_url(&e.output).expect("checked at start");
        let write_failed = |err: ServiceError| {
            failure(
                2,
                1003,
                format!(
                    "Unable to write the query result to {}: {}",
                    e.output, err.message
                ),
            )
        };
        // A statement that wrote data has no result body, only its `.metadata`. The two are
        // written at once (their fsyncs overlap).
        let result = async {
            if update_count.is_none() {
                lake.put(bucket, key, Bytes::from(body), PutOptions::default())
                    .await?;
            }
            Ok::<_, ServiceError>(())
        };
        let update = update_count.map(|n| (write.unwrap_or("INSERT"), n));
        let metadata_file = async {
            if !columns.is_empty() || update.is_some() {
                let infos: Vec<ColumnInfo> = columns.iter().map(|(n, t, _)| ColumnInfo::new(n, t)).collect();
                lake.put(
                    bucket,
                    &format!("{key}.metadata"),
                    Bytes::from(metadata(&e.id, update, &infos)),
                    PutOptions::default(),
                )
                .await?;
            }
            Ok(())
        };
        // Athena's data manifest: the files the statement wrote, one `s3://` URL per line, beside
        // its `.metadata` (awswrangler and PyAthena read a CTAS or UNLOAD result through it).
        let manifest_file = async {
            if update_count.is_some() {
                let lines: String = written_files.iter().map(|(url, _)| format!("{url}\n")).collect();
                lake.put(
                    bucket,
                    &format!("{key}-manifest.csv"),
                    Bytes::from(lines),
                    PutOptions::default(),
                )
                .await?;
            }
            Ok(())
        };
        futures::try_join!(result, metadata_file, manifest_file).map_err(write_failed)?;
        Ok(Outcome {
            columns,
            engine_millis,
            scanned_bytes,
            update_count,
            input_rows,
            output_rows,
            output_bytes,
            output_stage,
        })
    }

    /// GetQueryRuntimeStatistics: the timeline and row counts of a finished query.
    pub fn runtime_statistics(
        &self,
        ctx: &RequestContext,
        r: GetQueryRuntimeStatisticsInput,
    ) -> Result<GetQueryRuntimeStatisticsOutput, ServiceError> {
        let e = self.load(ctx, &r.query_execution_id)?;
        if e.state == "QUEUED" || e.state == "RUNNING" {
            return Err(invalid(format!(
                "Query {} has not finished yet: runtime statistics are available once it completes.",
                e.id
            )));
        }
        let (total, queued) = e.total_and_queued_millis();
        let timeline = QueryRuntimeStatisticsTimeline {
            query_queue_time_in_millis: Some(queued),
            service_pre_processing_time_in_millis: Some(0),
            query_planning_time_in_millis: Some(0),
            engine_execution_time_in_millis: Some(e.engine_millis as i64),
            service_processing_time_in_millis: Some((total - queued - e.engine_millis as i64).max(0)),
            total_execution_time_in_millis: Some(total),
        };
        // Row counts exist for statements that ran on the engine.
        let rows =
            (e.state == "SUCCEEDED" && e.statement_type == "DML").then_some(QueryRuntimeStatisticsRows {
                input_rows: Some(e.input_rows as i64),
                input_bytes: Some(e.scanned_bytes as i64),
                output_bytes: Some(e.output_bytes as i64),
                output_rows: Some(e.output_rows as i64),
            });
        let output_stage = match &e.output_stage {
            Some(stage) => Some(
                serde_json::from_value::<QueryStage>(stage.clone())
                    .map_err(|err| internal(format!("stored output stage: {err}")))?,
            ),
            None => None,
        };
        Ok(GetQueryRuntimeStatisticsOutput {
            query_runtime_statistics: Some(QueryRuntimeStatistics {
                timeline: Some(timeline),
                rows,
                output_stage,
            }),
        })
    }

    pub async fn get(
        &self,
        ctx: &RequestContext,
        r: GetQueryExecutionInput,
    ) -> Result<GetQueryExecutionOutput, ServiceError> {
        let id = r.query_execution_id.as_str();
        let mut e = self.load(ctx, id)?;
        if e.state == "QUEUED" || e.state == "RUNNING" {
            let done = self.running.lock().unwrap().get(id).map(|r| r.done.clone());
            if let Some(mut done) = done {
                let _ = tokio::time::timeout(POLL_WAIT, done.wait_for(|d| *d)).await;
                e = self.load(ctx, id)?;
            }
        }
        Ok(GetQueryExecutionOutput {
            query_execution: Some(e.view()),
        })
    }

    pub fn batch_get(
        &self,
        ctx: &RequestContext,
        r: BatchGetQueryExecutionInput,
    ) -> Result<BatchGetQueryExecutionOutput, ServiceError> {
        let (mut found, mut missing) = (Vec::new(), Vec::new());
        for id in r.query_execution_ids {
            match self.load(ctx, &id) {
                Ok(e) => found.push(e.view()),
                Err(err) => missing.push(UnprocessedQueryExecutionId {
                    query_execution_id: Some(id),
                    error_code: Some("INVALID_INPUT".into()),
                    error_message: Some(err.message),
                }),
            }
        }
        Ok(BatchGetQueryExecutionOutput {
            query_executions: Some(found),
            unprocessed_query_execution_ids: Some(missing),
        })
    }

    pub fn list(
        &self,
        ctx: &RequestContext,
        r: ListQueryExecutionsInput,
    ) -> Result<ListQueryExecutionsOutput, ServiceError> {
        let wg = r.work_group.as_deref().unwrap_or(PRIMARY);
        workgroups::load(&self.store, ctx, wg)?;
        let mut all: Vec<Execution> = self
            .store
            .scan::<Execution>(EXECUTIONS, b"")?
            .into_iter()
            .filter(|e| e.account == ctx.account_id && e.region == ctx.region && e.work_group == wg)
            .collect();
        // Newest first; the page key orders by descending submission time.
        all.sort_by(|a, b| b.submitted_millis.cmp(&a.submitted_millis).then(a.id.cmp(&b.id)));
        let keyed: Vec<(String, String)> = all
            .into_iter()
            .enumerate()
            .map(|(i, e)| (format!("{i:010}"), e.id))
            .collect();
        let (ids, next) = page(
            keyed,
            |(k, _)| k.clone(),
            r.next_token.as_deref(),
            r.max_results,
            50,
        )?;
        Ok(ListQueryExecutionsOutput {
            query_execution_ids: Some(ids.into_iter().map(|(_, id)| id).collect()),
            next_token: next,
        })
    }

    pub async fn stop(
        &self,
        ctx: &RequestContext,
        r: StopQueryExecutionInput,
    ) -> Result<StopQueryExecutionOutput, ServiceError> {
        let mut e = self.load(ctx, &r.query_execution_id)?;
        // Only a query still under way is cancelled: one that has just recorded its outcome
        // (and left `running`) keeps it.
        let under_way = self.running.lock().unwrap().remove(&e.id);
        if let Some(r) = under_way {
            r.stop.store(true, Ordering::Relaxed);
            r.abort.abort();
            e.state = "CANCELLED".into();
            e.reason = Some("Query cancelled by user".into());
            e.completed_millis = Some(self.store.now());
            self.save(&e)?.await?;
        }
        Ok(StopQueryExecutionOutput {})
    }

    pub async fn results(
        &self,
        ctx: &RequestContext,
        r: GetQueryResultsInput,
    ) -> Result<GetQueryResultsOutput, ServiceError> {
        let e = self.load(ctx, &r.query_execution_id)?;
        match e.state.as_str() {
            "SUCCEEDED" => {}
            "FAILED" | "CANCELLED" => {
                return Err(
                    invalid(format!("Query has not yet finished. Current state: {}", e.state))
                        .with_extra("AthenaErrorCode", "INVALID_STATE"),
                );
            }
            other => {
                return Err(invalid(format!(
                    "Query has not yet finished. Current state: {other}"
                )));
            }
        }
        let columns: Vec<crate::api::ColumnInfo> = e
            .columns
            .iter()
            .map(|(name, t, nullable)| ColumnInfo::new(name, t).described(*nullable))
            .collect();
        let result_set = |rows: Vec<Row>, columns| ResultSet {
            rows: Some(rows),
            result_set_metadata: Some(ResultSetMetadata {
                column_info: Some(columns),
            }),
        };
        if let Some(n) = e.update_count {
            // CTAS, INSERT INTO and UNLOAD report the rows they wrote, no result set.
            return Ok(GetQueryResultsOutput {
                update_count: Some(n as i64),
                result_set: Some(result_set(Vec::new(), Vec::new())),
                next_token: None,
            });
        }
        let max = r.max_results.unwrap_or(1000) as usize;
        let start: usize = match &r.next_token {
            Some(t) => t.parse().map_err(|_| invalid("Invalid NextToken."))?,
            None => 0,
        };
        let (bucket, key) = split_s3_url(&e.output).expect("stored locations are s3");
        // A query's header row is the first row of the first page, as Athena returns it; DDL
        // and utility results have no header, one value per line.
        let (page, total) = if e.statement_type == "DML" {
            self.csv_page(&self.lake.acting_for(&e.account), &e.id, bucket, key, start, max)
                .await?
        } else {
            let (_, data) = read(&self.lake.acting_for(&e.account), bucket, key, None).await?;
            let data = String::from_utf8_lossy(&data);
            let rows: Vec<Vec<Option<String>>> = if data.is_empty() {
                Vec::new()
            } else {
                data.split('\n').map(|l| vec![Some(l.to_owned())]).collect()
            };
            let end = (start + max).min(rows.len());
            (rows[start.min(end)..end].to_vec(), rows.len())
        };
        let end = start + page.len();
        let rows = page
            .into_iter()
            .map(|row| Row {
                data: Some(row.into_iter().map(|v| Datum { var_char_value: v }).collect()),
            })
            .collect();
        Ok(GetQueryResultsOutput {
            update_count: Some(0),
            result_set: Some(result_set(rows, columns)),
            next_token: (end < total).then(|| end.to_string()),
        })
    }

    /// Rows `start..start + max` of a CSV result and how many rows it has. The first page reads
    /// the file once to learn where each row starts; every page after is one ranged read of
    /// just its rows (a client paging through a million rows does not re-read them all per
    /// page).
    async fn csv_page(
        &self,
        lake: &Lake,
        id: &str,
        bucket: &str,
        key: &str,
        start: usize,
        max: usize,
    ) -> Result<(Vec<Vec<Option<String>>>, usize), ServiceError> {
        let current = lake.head(bucket, key)?.map(|o| o.etag);
        let known = self
            .row_index
            .lock()
            .unwrap()
            .get(id)
            .filter(|i| Some(&i.etag) == current.as_ref());
        let index = match known {
            Some(index) => index,
            None => {
                let (etag, data) = read(lake, bucket, key, None).await?;
                let index = Arc::new(RowIndex {
                    etag,
                    starts: csv_row_starts(&data),
                });
                self.row_index.lock().unwrap().insert(id, index.clone());
                index
            }
        };
        let total = index.starts.len() - 1;
        let end = (start + max).min(total);
        if start >= end {
            return Ok((Vec::new(), total));
        }
        let range = index.starts[start]..index.starts[end];
        let (_, data) = read(lake, bucket, key, Some(range)).await?;
        Ok((parse_csv(&String::from_utf8_lossy(&data)), total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trip_keeps_nulls_and_quotes() {
        let out = QueryOutput {
            columns: vec![
                lakebox_athena_engine::ResultColumn {
                    name: "a".into(),
                    athena_type: "varchar".into(),
                    nullable: true,
                },
                lakebox_athena_engine::ResultColumn {
                    name: "b".into(),
                    athena_type: "bigint".into(),
                    nullable: true,
                },
            ],
            rows: vec![
                vec![Some("x,\"y\"\nz".into()), None],
                vec![Some(String::new()), Some("2".into())],
            ],
            engine_millis: 0,
            update_count: None,
            written_files: Vec::new(),
            scanned_bytes: 0,
            input_rows: 0,
            output_stage: None,
        };
        let text = String::from_utf8(csv(&out)).unwrap();
        assert_eq!(
            parse_csv(&text),
            vec![
                vec![Some("a".to_string()), Some("b".to_string())],
                vec![Some("x,\"y\"\nz".to_string()), None],
                vec![Some(String::new()), Some("2".to_string())],
            ]
        );
        assert_eq!(
            bind("SELECT ? , '?' , ?", &["1".into(), "'a'".into()]).unwrap(),
            "SELECT 1 , '?' , 'a'"
        );
        assert!(bind("SELECT ?", &[]).is_err());
    }
}
