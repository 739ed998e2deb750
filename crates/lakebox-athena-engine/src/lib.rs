//! Athena's SQL engine: Apache DataFusion, plugged in through its extension points.
//!
//! - An [`ObjectStoreRegistry`] that serves every `s3://bucket` as a
//!   [`LakeObjectStore`](lakebox_objectstore::LakeObjectStore) over Lakebox S3 (no HTTP).
//! - A catalog (`awsdatacatalog`) whose schemas are the Glue databases and whose tables are
//!   built from the Glue table definitions: the columns and partition keys as Arrow types,
//!   the format from the SerDe (Parquet, CSV with its delimiter and header rule, JSON
//!   lines), the files under the location or under each Glue partition's location.
//! - Results as Athena reports them: column names and Athena type names, values as text.

mod buckets;
pub mod cancel;
mod casts;
mod catalog;
mod codecs;
mod columns;
mod decoded;
mod depth;
mod dialect;
mod encode;
mod format;
mod functions;
mod jsonkeys;
mod messages;
mod printed;
mod projection;
mod rewrite;
mod select;
mod session;
mod spellings;
mod stages;
mod syntax;
mod table;
mod types;
mod views;
mod writes;

/// The pool queries run on (shared with the Glue crawler).
pub use lakebox_service::pool;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement as SQLStatement;
use lakebox_glue::{Catalog, Scope};
use lakebox_service::lake::Lake;

pub use select::S3Select;
pub use types::{athena_type, hive_type};

/// How a statement runs, beyond its SQL.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// BytesScannedCutoffPerQuery: cancel the query once it has read more.
    pub cutoff: Option<u64>,
    /// Where CTAS writes without `external_location`: Athena's `<output>tables/<query id>/`.
    pub default_table_location: Option<String>,
    /// Set to stop the query: every operator checks it between batches.
    pub cancel: Arc<AtomicBool>,
}

use crate::session::Sessions;

/// Athena's name for the Glue catalog; DataFusion folds unquoted identifiers to lowercase.
pub const CATALOG: &str = "awsdatacatalog";

/// A result column: its name and Athena type (`varchar`, `bigint`, `array(integer)`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct ResultColumn {
    pub name: String,
    pub athena_type: String,
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    pub columns: Vec<ResultColumn>,
    /// Values as Athena shows them; `None` is SQL NULL.
    pub rows: Vec<Vec<Option<String>>>,
    pub engine_millis: u64,
    /// Rows written by CTAS, INSERT INTO or UNLOAD (Athena's UpdateCount); `None` for queries.
    pub update_count: Option<u64>,
    /// The files a CTAS, INSERT INTO or UNLOAD wrote (`s3://` URLs with their sizes), for the
    /// query's data manifest; empty for queries.
    pub written_files: Vec<(String, u64)>,
    /// Rows read from the tables (after partition pruning and row-group pruning).
    pub input_rows: u64,
    /// Bytes of object data read from S3 (after partition pruning and Parquet's column and
    /// row-group selection): Athena's DataScannedInBytes.
    pub scanned_bytes: u64,
    /// The executed plan's stages, in Athena's QueryStage shape (GetQueryRuntimeStatistics'
    /// OutputStage); `None` for statements that only write.
    pub output_stage: Option<serde_json::Value>,
}

/// Why a query failed, in Athena's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryError {
    /// Athena's ErrorCategory: 1 system, 2 user, 3 unknown.
    pub category: u32,
    /// Athena's ErrorType (e.g. 1306 for a syntax error, 1301 for a missing table).
    pub error_type: u32,
    pub message: String,
    /// The query was stopped for reading more than its cutoff: CANCELLED, not FAILED.
    pub cancelled: bool,
}

fn classify(e: DataFusionError) -> QueryError {
    let (category, error_type, message) = messages::athena(&e);
    QueryError {
        category,
        error_type,
        message,
        cancelled: false,
    }
}

pub struct Engine {
    lake: Lake,
    catalog: Arc<Catalog>,
}

impl Engine {
    pub fn new(lake: Lake, catalog: Arc<Catalog>) -> Self {
        Engine { lake, catalog }
    }

    /// Runs one SQL statement and returns its rows as text (or, for CTAS, INSERT INTO and
    /// UNLOAD, the number of rows written). A failure names where in `sql` it lies, as Athena's
    /// messages do (`line L:C: …`).
    /// `parsed` is `sql` as [`parse`] read it, when the caller has it.
    pub async fn run(
        &self,
        scope: &Scope,
        database: Option<&str>,
        sql: &str,
        parsed: Option<Parsed>,
        options: &RunOptions,
    ) -> Result<QueryOutput, QueryError> {
        self.run_statement(scope, database, sql, parsed, options)
            .await
            .map_err(|mut e| {
                e.message = messages::locate(&e.message, sql);
                e
            })
    }

    async fn run_statement(
        &self,
        scope: &Scope,
        database: Option<&str>,
        sql: &str,
        parsed: Option<Parsed>,
        options: &RunOptions,
    ) -> Result<QueryOutput, QueryError> {
        let cutoff = options.cutoff;
        let started = Instant::now();
        let scanned = Arc::new(AtomicU64::new(0));
        let sessions = Sessions {
            // Tables and written data as the caller: another account's bucket is AccessDenied.
            lake: self.lake.acting_for(&scope.account),
            catalog: self.catalog.clone(),
            scope: scope.clone(),
            scanned: scanned.clone(),
            executed: Default::default(),
        };
        let ctx = sessions.context(database, 0).map_err(classify)?;
        let (statement, no_data) = match parsed.and_then(|mut p| Some((p.statement.take()?, p.no_data))) {
            Some(taken) => taken,
            None => {
                // `CREATE TABLE … AS SELECT … WITH NO DATA` is Trino's; the parser does not know it.
                let (text, no_data) = match strip_no_data(sql) {
                    Some(rest) => (rest, true),
                    None => (sql, false),
                };
                (
                    depth::parse(&ctx, &spellings::respell(text)).map_err(classify)?,
                    no_data,
                )
            }
        };
        let db = database.unwrap_or("default");
        if let DFStatement::Statement(s) = &statement {
            let written = match s.as_ref() {
                SQLStatement::CreateView(view) => {
                    views::create(&sessions, &ctx, db, view).await.map_err(classify)?;
                    None
                }
                SQLStatement::CreateTable(ct) if ct.query.is_some() => Some(
                    writes::create_table_as(&sessions, &ctx, db, ct, no_data, options)
                        .await
                        .map_err(classify)?,
                ),
                SQLStatement::Insert(ins) => {
                    Some(writes::insert(&sessions, &ctx, db, ins).await.map_err(classify)?)
                }
                SQLStatement::Unload {
                    query: Some(query),
                    to,
                    with,
                    ..
                } => Some(
                    writes::unload(&sessions, &ctx, query, &to.value, with)
                        .await
                        .map_err(classify)?,
                ),
                _ => {
                    return self
                        .query(&sessions, &ctx, statement, cutoff, started, &options.cancel)
                        .await;
                }
            };
            return Ok(QueryOutput {
                columns: Vec::new(),
                rows: Vec::new(),
                engine_millis: started.elapsed().as_millis() as u64,
                update_count: written.as_ref().map(|w| w.rows),
                written_files: written.map(|w| w.files).unwrap_or_default(),
                scanned_bytes: scanned.load(Ordering::Relaxed),
                input_rows: sessions
                    .executed
                    .plans()
                    .iter()
                    .map(|p| input_rows(p.as_ref()))
                    .sum(),
                output_stage: None,
            });
        }
        self.query(&sessions, &ctx, statement, cutoff, started, &options.cancel)
            .await
    }

    /// Runs a query and returns its rows as text, cancelling it past `cutoff` bytes read.
    async fn query(
        &self,
        sessions: &Sessions,
        ctx: &SessionContext,
        statement: DFStatement,
        cutoff: Option<u64>,
        started: Instant,
        stop: &Arc<AtomicBool>,
    ) -> Result<QueryOutput, QueryError> {
        let scanned = sessions.scanned.clone();
        let plan = sessions.plan(ctx, statement).await.map_err(classify)?;
        let df = ctx.execute_logical_plan(plan).await.map_err(classify)?;
        let schema = df.schema().as_arrow().clone();
        let over = |n: u64| {
            // Athena's StateChangeReason for a query its workgroup's BytesScannedCutoffPerQuery
            // stopped, word for word.
            cutoff.filter(|c| n > *c).map(|_| QueryError {
                category: 2,
                error_type: 1005,
                message: "Bytes scanned limit was exceeded".to_owned(),
                cancelled: true,
            })
        };
        let physical =
            cancel::wrap(df.create_physical_plan().await.map_err(classify)?, stop).map_err(classify)?;
        let collect = datafusion::physical_plan::collect(physical.clone(), ctx.task_ctx());
        tokio::pin!(collect);
        let batches = loop {
            tokio::select! {
                r = &mut collect => break r.map_err(classify)?,
                _ = tokio::time::sleep(std::time::Duration::from_millis(5)), if cutoff.is_some() => {
                    if let Some(e) = over(scanned.load(Ordering::Relaxed)) {
                        // The operators still running stop at their next batch.
                        stop.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
        };
        if let Some(e) = over(scanned.load(Ordering::Relaxed)) {
            return Err(e);
        }
        let columns = schema
            .fields()
            .iter()
            .map(|f| ResultColumn {
                name: f.name().clone(),
                athena_type: casts::athena_type_of(f),
                nullable: f.is_nullable(),
            })
            .collect();
        let rows = printed::to_text(&batches).map_err(classify)?;
        Ok(QueryOutput {
            columns,
            rows,
            engine_millis: started.elapsed().as_millis() as u64,
            update_count: None,
            written_files: Vec::new(),
            scanned_bytes: scanned.load(Ordering::Relaxed),
            input_rows: input_rows(physical.as_ref()),
            output_stage: Some(stages::output_stage(physical.as_ref())),
        })
    }
}

/// Rows the plan's leaves (the table scans) produced: GetQueryRuntimeStatistics' InputRows.
fn input_rows(plan: &dyn datafusion::physical_plan::ExecutionPlan) -> u64 {
    let plan = cancel::unwrapped(plan);
    if plan.children().is_empty() {
        return plan.metrics().and_then(|m| m.output_rows()).unwrap_or(0) as u64;
    }
    plan.children().iter().map(|c| input_rows(c.as_ref())).sum()
}

/// A statement read by the engine's parser: what StartQueryExecution parsed to refuse a
/// statement that does not parse, carried to [`Engine::run`] so the text is parsed once.
pub struct Parsed {
    /// Taken by the run; `None` only after that.
    statement: Option<DFStatement>,
    /// `CREATE TABLE … AS SELECT … WITH NO DATA` (Trino's; the parser does not know it).
    no_data: bool,
}

/// A statement never run (a reused result, a refused start) is dropped on a thread with a big
/// stack: dropping recurses as deep as the statement nests (up to [`depth::MAX_EXPRESSION_DEPTH`]
/// operators), deeper than a request thread's stack may allow.
impl Drop for Parsed {
    fn drop(&mut self) {
        if let Some(statement) = self.statement.take() {
            let dropping = std::thread::Builder::new()
                .name("lakebox-drop".into())
                .stack_size(lakebox_core::stack::BIG_STACK_BYTES)
                .spawn(move || drop(statement));
            if let Err(e) = dropping {
                tracing::warn!(error = %e, "cannot start a thread to drop a parsed statement");
            }
        }
    }
}

/// Parses `sql` as [`Engine::run`] reads it. `Err(Some(message))`: Athena refuses it, in
/// Trino's words (`line L:C: mismatched input …`), as StartQueryExecution does before it
/// accepts a query; `Err(None)`: a failure that is not the text's syntax, left for the run to
/// report. Parsing recurses as deep as the text nests: call it on a big stack.
pub fn parse(sql: &str) -> Result<Parsed, Option<String>> {
    let (text, no_data) = match strip_no_data(sql) {
        Some(rest) => (rest, true),
        None => (sql, false),
    };
    match depth::parse_text(&spellings::respell(text)) {
        Ok(statement) => Ok(Parsed {
            statement: Some(statement),
            no_data,
        }),
        Err(e) => Err(syntax::message(text, &e)),
    }
}

/// The statement without a trailing `WITH NO DATA`, if it has one.
fn strip_no_data(sql: &str) -> Option<&str> {
    let t = sql.trim_end().trim_end_matches(';').trim_end();
    let words: Vec<&str> = t.rsplitn(4, char::is_whitespace).collect();
    match words.as_slice() {
        [data, no, with, rest]
            if data.eq_ignore_ascii_case("DATA")
                && no.eq_ignore_ascii_case("NO")
                && with.eq_ignore_ascii_case("WITH") =>
        {
            Some(rest)
        }
        _ => None,
    }
}
