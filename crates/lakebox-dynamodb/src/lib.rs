//! Amazon DynamoDB for Lakebox (awsJson 1.0, `DynamoDB_20120810`): durable tables with local
//! and global secondary indexes, the whole expression language, batches and transactions,
//! kept in the service's metadata store with group commit. See docs/dynamodb.md and decision
//! 0016.
//!
//! - [`api`]: the generated operation layer; [`value`]: attribute values (hand-written, as
//!   DynamoDB checks them in its own words); [`number`]: DynamoDB's decimal numbers.
//! - `schema`: key schemas and the stored key layout; `storage`: items, index entries and
//!   counts in the store.
//! - `tables`: table records and the table operations; `items`: the single-item operations
//!   and the write path; `query`: Query and Scan; `batch`: batches and transactions.
//! - `expr`: the expression language; `legacy`: the pre-expression parameters.

pub mod api;
mod backups;
mod batch;
mod capacity;
mod errors;
mod export;
mod expr;
mod import;
mod items;
mod kinesis_dest;
mod legacy;
mod metrics;
pub mod number;
mod partiql;
mod query;
mod records;
mod reserved;
mod schema;
mod storage;
pub mod streams;
pub mod streams_api;
mod tables;
mod throttle;
pub mod value;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use lakebox_core::clock::Clock;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_service::{BoxFuture, RpcRequest, RpcResponse, RpcService};
use lakebox_store::{MetaStore, StoreError};

use crate::api::*;
use crate::tables::TableRecord;
use crate::value::Item;

/// A table's identity: account, region, name.
pub(crate) type TableKey = (String, String, String);
/// Every table's record, shared with the write jobs (see `streams::ChangeLog::current`).
pub(crate) type Tables = Arc<RwLock<HashMap<TableKey, Arc<TableRecord>>>>;

/// What the binary sets.
#[derive(Debug, Clone, Copy)]
pub struct DynamoDbSettings {
    /// Whether PROVISIONED tables are held to their throughput (as on AWS).
    pub throughput_limits: bool,
}

impl Default for DynamoDbSettings {
    fn default() -> Self {
        DynamoDbSettings {
            throughput_limits: true,
        }
    }
}

pub struct DynamoDb {
    meta: MetaStore,
    throttle: throttle::Throttle,
    clock: Arc<dyn Clock>,
    /// Every table's record, for the item operations' lookups (the store holds the truth).
    tables: Tables,
    /// Serialises changes to table records.
    admin: tokio::sync::Mutex<()>,
    tokens: batch::Tokens,
    /// The next stream sequence number (all streams share one commit order).
    next_seq: Arc<std::sync::atomic::AtomicU64>,
    /// Lakebox S3, where exports go, once the binary wires it.
    lake: std::sync::OnceLock<lakebox_service::lake::Lake>,
    /// The service itself, for the tasks it spawns (exports).
    me: std::sync::Weak<DynamoDb>,
    /// Kinesis streams, to check a streaming destination exists.
    kinesis: std::sync::OnceLock<Arc<dyn lakebox_service::links::ShardedLog>>,
    /// Raised when a Kinesis destination changes, to wake the delivery task.
    destinations_changed: tokio::sync::Notify,
    /// Where the tables' AWS/DynamoDB metrics go, once the binary wires it (`metrics`).
    metrics: std::sync::OnceLock<lakebox_service::metrics::Recorder>,
}

impl DynamoDb {
    pub fn open(
        dir: &Path,
        clock: Arc<dyn Clock>,
        settings: DynamoDbSettings,
    ) -> Result<Arc<Self>, StoreError> {
        let meta = MetaStore::open(&dir.join("tables.redb"))?;
        let mut tables = HashMap::new();
        for (_, v) in meta.read(|view| view.scan_prefix(storage::TABLES, b""))? {
            let record: TableRecord =
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(format!("table record: {e}")))?;
            tables.insert(record.key(), Arc::new(record));
        }
        let next_seq = streams::next_sequence(&meta)?;
        // Transaction tokens of the last ten minutes: a retry after a restart stays a no-op.
        let tokens = batch::Tokens::load(&meta, clock.now_millis())?;
        Ok(Arc::new_cyclic(|me| DynamoDb {
            meta,
            throttle: throttle::Throttle::new(settings.throughput_limits),
            clock,
            tables: Arc::new(RwLock::new(tables)),
            admin: tokio::sync::Mutex::new(()),
            tokens,
            next_seq: Arc::new(std::sync::atomic::AtomicU64::new(next_seq)),
            lake: std::sync::OnceLock::new(),
            me: me.clone(),
            kinesis: std::sync::OnceLock::new(),
            destinations_changed: tokio::sync::Notify::new(),
            metrics: std::sync::OnceLock::new(),
        }))
    }

    /// Lakebox S3, where ExportTableToPointInTime writes.
    pub fn set_lake(&self, lake: lakebox_service::lake::Lake) {
        let _ = self.lake.set(lake);
    }

    /// Kinesis streams, where streaming destinations send changes (delivered through
    /// [`start_destination_delivery`](Self::start_destination_delivery)'s sink).
    pub fn set_kinesis(&self, streams: Arc<dyn lakebox_service::links::ShardedLog>) {
        let _ = self.kinesis.set(streams);
    }

    fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// ConsumedCapacity for a read of `bytes` (when asked for), drawn from the table's
    /// provisioned throughput.
    pub(crate) fn consume_read(
        &self,
        table: &TableRecord,
        asked: Option<&ReturnConsumedCapacity>,
        bytes: usize,
        consistent: bool,
    ) -> Option<ConsumedCapacity> {
        self.charge(
            table,
            throttle::Kind::Read,
            capacity::read_units(bytes, consistent),
        );
        capacity::read(table, asked, bytes, consistent)
    }

    pub(crate) fn consume_write(
        &self,
        table: &TableRecord,
        asked: Option<&ReturnConsumedCapacity>,
        bytes: usize,
    ) -> Option<ConsumedCapacity> {
        self.charge(table, throttle::Kind::Write, capacity::write_units(bytes));
        capacity::write(table, asked, bytes)
    }

    /// Draws `units` a request consumed from the table's throughput (and reports them).
    pub(crate) fn charge(&self, table: &TableRecord, kind: throttle::Kind, units: f64) {
        self.throttle.charge(table, kind, units, self.now());
        self.report_consumed(table, kind, units);
    }

    /// Whether `table` has capacity left for a request of this kind (counting a refusal as
    /// a throttle event).
    pub(crate) fn admit(&self, table: &TableRecord, kind: throttle::Kind) -> Result<(), ServiceError> {
        self.throttle.admit(table, kind, self.now()).inspect_err(|_| {
            self.report_throttled(table, kind);
        })
    }

    pub(crate) fn change_log(&self) -> streams::ChangeLog {
        streams::ChangeLog {
            tables: self.tables.clone(),
            next_seq: self.next_seq.clone(),
            clock: self.clock.clone(),
        }
    }

    /// The table an item operation names (by name or ARN).
    pub(crate) fn table(&self, ctx: &RequestContext, name: &str) -> Result<Arc<TableRecord>, ServiceError> {
        self.lookup(ctx, name).ok_or_else(errors::resource_not_found)
    }

    /// The table a table operation names: its not-found message names the table.
    pub(crate) fn table_for_admin(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<Arc<TableRecord>, ServiceError> {
        self.lookup(ctx, name)
            .ok_or_else(|| errors::table_not_found(table_name(name)))
    }

    fn lookup(&self, ctx: &RequestContext, name: &str) -> Option<Arc<TableRecord>> {
        let key = match name.strip_prefix("arn:") {
            Some(_) => {
                let arn = lakebox_core::arn::Arn::parse(name)?;
                let table = arn.resource.strip_prefix("table/")?;
                (arn.account_id, arn.region, table.split('/').next()?.to_owned())
            }
            None => (ctx.account_id.clone(), ctx.region.clone(), name.to_owned()),
        };
        let found = self.tables.read().unwrap().get(&key).cloned();
        if let Some(t) = &found {
            metrics::note_table(&t.name);
        }
        found
    }
}

fn table_name(name_or_arn: &str) -> &str {
    match name_or_arn.strip_prefix("arn:") {
        Some(_) => name_or_arn
            .rsplit_once("table/")
            .map_or(name_or_arn, |(_, t)| t.split('/').next().unwrap_or(t)),
        None => name_or_arn,
    }
}

impl RpcService for DynamoDb {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RpcRequest,
    ) -> BoxFuture<Result<RpcResponse, ServiceError>> {
        if !self.metrics_on() {
            return api::dispatch(self, ctx, req);
        }
        Box::pin(async move {
            let started = std::time::Instant::now();
            let op = req.operation.clone();
            let (result, seen) = metrics::observed(api::dispatch(self.clone(), ctx.clone(), req)).await;
            self.report(&ctx, &op, started.elapsed(), result.as_ref().map(|_| ()), seen);
            result
        })
    }
}

/// Each operation as the model names it, handed to the module that implements it.
impl DynamoDbApi for DynamoDb {
    async fn create_table(
        &self,
        ctx: &RequestContext,
        input: CreateTableInput,
    ) -> Result<CreateTableOutput, ServiceError> {
        self.create_table_impl(ctx, input).await
    }

    async fn describe_table(
        &self,
        ctx: &RequestContext,
        input: DescribeTableInput,
    ) -> Result<DescribeTableOutput, ServiceError> {
        let table = self.table_for_admin(ctx, &input.table_name)?;
        Ok(DescribeTableOutput {
            table: Some(self.describe(&table)?),
        })
    }

    async fn update_table(
        &self,
        ctx: &RequestContext,
        input: UpdateTableInput,
    ) -> Result<UpdateTableOutput, ServiceError> {
        Ok(UpdateTableOutput {
            table_description: Some(self.update_table_impl(ctx, input).await?),
        })
    }

    async fn delete_table(
        &self,
        ctx: &RequestContext,
        input: DeleteTableInput,
    ) -> Result<DeleteTableOutput, ServiceError> {
        Ok(DeleteTableOutput {
            table_description: Some(self.delete_table_impl(ctx, &input.table_name).await?),
        })
    }

    async fn list_tables(
        &self,
        ctx: &RequestContext,
        input: ListTablesInput,
    ) -> Result<ListTablesOutput, ServiceError> {
        Ok(self.list_tables_impl(ctx, input))
    }

    async fn describe_limits(
        &self,
        _ctx: &RequestContext,
        _input: DescribeLimitsInput,
    ) -> Result<DescribeLimitsOutput, ServiceError> {
        Ok(DescribeLimitsOutput {
            account_max_read_capacity_units: Some(80_000),
            account_max_write_capacity_units: Some(80_000),
            table_max_read_capacity_units: Some(40_000),
            table_max_write_capacity_units: Some(40_000),
        })
    }

    async fn describe_endpoints(
        &self,
        ctx: &RequestContext,
        _input: DescribeEndpointsRequest,
    ) -> Result<DescribeEndpointsResponse, ServiceError> {
        Ok(DescribeEndpointsResponse {
            endpoints: vec![Endpoint {
                address: ctx
                    .host
                    .clone()
                    .unwrap_or_else(|| format!("dynamodb.{}.amazonaws.com", ctx.region)),
                cache_period_in_minutes: 1440,
            }],
        })
    }

    async fn tag_resource(&self, ctx: &RequestContext, input: TagResourceInput) -> Result<(), ServiceError> {
        self.modify_table(ctx, &input.resource_arn, |t| {
            for tag in input.tags {
                t.tags.retain(|(k, _)| *k != tag.key);
                t.tags.push((tag.key, tag.value));
            }
            if t.tags.len() > 50 {
                return Err(ServiceError::client(
                    "LimitExceededException",
                    "One or more parameter values were invalid: The number of tags exceeds the limit of 50",
                ));
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    async fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: UntagResourceInput,
    ) -> Result<(), ServiceError> {
        self.modify_table(ctx, &input.resource_arn, |t| {
            t.tags.retain(|(k, _)| !input.tag_keys.contains(k));
            Ok(())
        })
        .await
        .map(|_| ())
    }

    async fn list_tags_of_resource(
        &self,
        ctx: &RequestContext,
        input: ListTagsOfResourceInput,
    ) -> Result<ListTagsOfResourceOutput, ServiceError> {
        let table = self.table_for_admin(ctx, &input.resource_arn)?;
        Ok(ListTagsOfResourceOutput {
            tags: Some(
                table
                    .tags
                    .iter()
                    .map(|(k, v)| Tag {
                        key: k.clone(),
                        value: v.clone(),
                    })
                    .collect(),
            ),
            next_token: None,
        })
    }

    async fn update_time_to_live(
        &self,
        ctx: &RequestContext,
        input: UpdateTimeToLiveInput,
    ) -> Result<UpdateTimeToLiveOutput, ServiceError> {
        let spec = input.time_to_live_specification;
        let _admin = self.admin.lock().await;
        let old = self.table_for_admin(ctx, &input.table_name)?;
        match (&old.ttl_attribute, spec.enabled) {
            (Some(_), true) => return Err(errors::validation("TimeToLive is already enabled")),
            (None, false) => return Err(errors::validation("TimeToLive is already disabled")),
            (Some(a), false) if *a != spec.attribute_name => {
                return Err(errors::validation(format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName is {a}"
                )));
            }
            _ => {}
        }
        let mut t = (*old).clone();
        t.ttl_attribute = spec.enabled.then(|| spec.attribute_name.clone());
        let t = Arc::new(t);
        let record = t.clone();
        // The TTL index is built (or dropped) in the transaction that changes the setting.
        self.save_table_with(t, move |b| match record.ttl_attribute {
            Some(_) => storage::backfill_ttl(b, &record),
            None => b.delete_table(&storage::ttl_table(&record.uid)),
        })
        .await?;
        Ok(UpdateTimeToLiveOutput {
            time_to_live_specification: Some(spec),
        })
    }

    async fn describe_time_to_live(
        &self,
        ctx: &RequestContext,
        input: DescribeTimeToLiveInput,
    ) -> Result<DescribeTimeToLiveOutput, ServiceError> {
        let table = self.table_for_admin(ctx, &input.table_name)?;
        Ok(DescribeTimeToLiveOutput {
            time_to_live_description: Some(TimeToLiveDescription {
                time_to_live_status: Some(if table.ttl_attribute.is_some() {
                    TimeToLiveStatus::Enabled
                } else {
                    TimeToLiveStatus::Disabled
                }),
                attribute_name: table.ttl_attribute.clone(),
            }),
        })
    }

    async fn describe_continuous_backups(
        &self,
        ctx: &RequestContext,
        input: DescribeContinuousBackupsInput,
    ) -> Result<DescribeContinuousBackupsOutput, ServiceError> {
        let table = self.lookup(ctx, &input.table_name).ok_or_else(|| {
            ServiceError::client(
                "TableNotFoundException",
                format!("Table not found: {}", table_name(&input.table_name)),
            )
        })?;
        Ok(DescribeContinuousBackupsOutput {
            continuous_backups_description: Some(self.backups(&table)),
        })
    }

    async fn update_continuous_backups(
        &self,
        ctx: &RequestContext,
        input: UpdateContinuousBackupsInput,
    ) -> Result<UpdateContinuousBackupsOutput, ServiceError> {
        if self.lookup(ctx, &input.table_name).is_none() {
            return Err(ServiceError::client(
                "TableNotFoundException",
                format!("Table not found: {}", table_name(&input.table_name)),
            ));
        }
        let enabled = input
            .point_in_time_recovery_specification
            .point_in_time_recovery_enabled;
        let table = self
            .modify_table(ctx, &input.table_name, |t| {
                t.pitr = enabled;
                Ok(())
            })
            .await?;
        Ok(UpdateContinuousBackupsOutput {
            continuous_backups_description: Some(self.backups(&table)),
        })
    }

    async fn put_item(
        &self,
        ctx: &RequestContext,
        input: PutItemInput,
    ) -> Result<PutItemOutput, ServiceError> {
        self.put_item_impl(ctx, input).await
    }

    async fn get_item(
        &self,
        ctx: &RequestContext,
        input: GetItemInput,
    ) -> Result<GetItemOutput, ServiceError> {
        self.get_item_impl(ctx, input)
    }

    async fn update_item(
        &self,
        ctx: &RequestContext,
        input: UpdateItemInput,
    ) -> Result<UpdateItemOutput, ServiceError> {
        self.update_item_impl(ctx, input).await
    }

    async fn delete_item(
        &self,
        ctx: &RequestContext,
        input: DeleteItemInput,
    ) -> Result<DeleteItemOutput, ServiceError> {
        self.delete_item_impl(ctx, input).await
    }

    async fn query(&self, ctx: &RequestContext, input: QueryInput) -> Result<QueryOutput, ServiceError> {
        self.query_impl(ctx, input)
    }

    async fn scan(&self, ctx: &RequestContext, input: ScanInput) -> Result<ScanOutput, ServiceError> {
        self.scan_impl(ctx, input)
    }

    async fn batch_get_item(
        &self,
        ctx: &RequestContext,
        input: BatchGetItemInput,
    ) -> Result<BatchGetItemOutput, ServiceError> {
        self.batch_get_item_impl(ctx, input)
    }

    async fn batch_write_item(
        &self,
        ctx: &RequestContext,
        input: BatchWriteItemInput,
    ) -> Result<BatchWriteItemOutput, ServiceError> {
        self.batch_write_item_impl(ctx, input).await
    }

    async fn transact_write_items(
        &self,
        ctx: &RequestContext,
        input: TransactWriteItemsInput,
    ) -> Result<TransactWriteItemsOutput, ServiceError> {
        self.transact_write_items_impl(ctx, input).await
    }

    async fn execute_statement(
        &self,
        ctx: &RequestContext,
        input: ExecuteStatementInput,
    ) -> Result<ExecuteStatementOutput, ServiceError> {
        self.execute_statement_impl(ctx, input).await
    }

    async fn batch_execute_statement(
        &self,
        ctx: &RequestContext,
        input: BatchExecuteStatementInput,
    ) -> Result<BatchExecuteStatementOutput, ServiceError> {
        self.batch_execute_statement_impl(ctx, input).await
    }

    async fn execute_transaction(
        &self,
        ctx: &RequestContext,
        input: ExecuteTransactionInput,
    ) -> Result<ExecuteTransactionOutput, ServiceError> {
        self.execute_transaction_impl(ctx, input).await
    }

    async fn export_table_to_point_in_time(
        &self,
        ctx: &RequestContext,
        input: ExportTableToPointInTimeInput,
    ) -> Result<ExportTableToPointInTimeOutput, ServiceError> {
        Ok(ExportTableToPointInTimeOutput {
            export_description: Some(self.export_table_impl(ctx, input).await?),
        })
    }

    async fn describe_export(
        &self,
        _ctx: &RequestContext,
        input: DescribeExportInput,
    ) -> Result<DescribeExportOutput, ServiceError> {
        Ok(DescribeExportOutput {
            export_description: Some(self.describe_export_impl(&input.export_arn)?),
        })
    }

    async fn list_exports(
        &self,
        ctx: &RequestContext,
        input: ListExportsInput,
    ) -> Result<ListExportsOutput, ServiceError> {
        self.list_exports_impl(ctx, input)
    }

    async fn create_backup(
        &self,
        ctx: &RequestContext,
        input: CreateBackupInput,
    ) -> Result<CreateBackupOutput, ServiceError> {
        Ok(CreateBackupOutput {
            backup_details: Some(self.create_backup_impl(ctx, input).await?),
        })
    }

    async fn describe_backup(
        &self,
        _ctx: &RequestContext,
        input: DescribeBackupInput,
    ) -> Result<DescribeBackupOutput, ServiceError> {
        Ok(DescribeBackupOutput {
            backup_description: Some(self.describe_backup_impl(&input.backup_arn)?),
        })
    }

    async fn delete_backup(
        &self,
        _ctx: &RequestContext,
        input: DeleteBackupInput,
    ) -> Result<DeleteBackupOutput, ServiceError> {
        Ok(DeleteBackupOutput {
            backup_description: Some(self.delete_backup_impl(&input.backup_arn).await?),
        })
    }

    async fn list_backups(
        &self,
        ctx: &RequestContext,
        input: ListBackupsInput,
    ) -> Result<ListBackupsOutput, ServiceError> {
        self.list_backups_impl(ctx, input)
    }

    async fn restore_table_from_backup(
        &self,
        ctx: &RequestContext,
        input: RestoreTableFromBackupInput,
    ) -> Result<RestoreTableFromBackupOutput, ServiceError> {
        Ok(RestoreTableFromBackupOutput {
            table_description: Some(self.restore_table_from_backup_impl(ctx, input).await?),
        })
    }

    async fn import_table(
        &self,
        ctx: &RequestContext,
        input: ImportTableInput,
    ) -> Result<ImportTableOutput, ServiceError> {
        Ok(ImportTableOutput {
            import_table_description: self.import_table_impl(ctx, input).await?,
        })
    }

    async fn describe_import(
        &self,
        _ctx: &RequestContext,
        input: DescribeImportInput,
    ) -> Result<DescribeImportOutput, ServiceError> {
        Ok(DescribeImportOutput {
            import_table_description: self.describe_import_impl(&input.import_arn)?,
        })
    }

    async fn list_imports(
        &self,
        ctx: &RequestContext,
        input: ListImportsInput,
    ) -> Result<ListImportsOutput, ServiceError> {
        self.list_imports_impl(ctx, input)
    }

    async fn enable_kinesis_streaming_destination(
        &self,
        ctx: &RequestContext,
        input: KinesisStreamingDestinationInput,
    ) -> Result<KinesisStreamingDestinationOutput, ServiceError> {
        self.change_destination(ctx, input, true).await
    }

    async fn disable_kinesis_streaming_destination(
        &self,
        ctx: &RequestContext,
        input: KinesisStreamingDestinationInput,
    ) -> Result<KinesisStreamingDestinationOutput, ServiceError> {
        self.change_destination(ctx, input, false).await
    }

    async fn describe_kinesis_streaming_destination(
        &self,
        ctx: &RequestContext,
        input: DescribeKinesisStreamingDestinationInput,
    ) -> Result<DescribeKinesisStreamingDestinationOutput, ServiceError> {
        self.describe_destinations(ctx, &input.table_name)
    }

    async fn update_kinesis_streaming_destination(
        &self,
        ctx: &RequestContext,
        input: UpdateKinesisStreamingDestinationInput,
    ) -> Result<UpdateKinesisStreamingDestinationOutput, ServiceError> {
        self.update_destination(ctx, input).await
    }

    async fn restore_table_to_point_in_time(
        &self,
        ctx: &RequestContext,
        input: RestoreTableToPointInTimeInput,
    ) -> Result<RestoreTableToPointInTimeOutput, ServiceError> {
        Ok(RestoreTableToPointInTimeOutput {
            table_description: Some(self.restore_table_to_point_in_time_impl(ctx, input).await?),
        })
    }

    async fn transact_get_items(
        &self,
        ctx: &RequestContext,
        input: TransactGetItemsInput,
    ) -> Result<TransactGetItemsOutput, ServiceError> {
        self.transact_get_items_impl(ctx, input)
    }
}

impl DynamoDb {
    /// Every `every`: deletes expired items of tables with TTL on (as the TTL service does:
    /// REMOVE stream records marked with its identity) and trims streams past retention.
    pub fn start_background_work(
        self: &Arc<Self>,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        lakebox_service::tasks::every(self, every, |db| async move {
            let worker = db.clone();
            let swept = tokio::task::spawn_blocking(move || streams::trim(&worker.meta, worker.now())).await;
            if let Ok(Err(e)) = swept {
                tracing::warn!(error = %e, "could not trim DynamoDB streams");
            }
            if let Err(e) = db.sweep_expired().await {
                tracing::warn!(error = %e.message, "could not delete expired DynamoDB items");
            }
        })
    }

    /// One TTL pass: up to 1000 expired items a table, deleted only if still expired when the
    /// delete runs.
    async fn sweep_expired(&self) -> Result<(), ServiceError> {
        const FIVE_YEARS_SECS: i64 = 5 * 365 * 24 * 3600;
        let now = self.now() / 1000;
        let tables: Vec<Arc<TableRecord>> = self
            .tables
            .read()
            .unwrap()
            .values()
            .filter(|t| t.ttl_attribute.is_some())
            .cloned()
            .collect();
        for table in tables {
            let attr = table.ttl_attribute.clone().expect("filtered");
            let low = (now - FIVE_YEARS_SECS).max(0) as u64;
            let (start, end) = (low.to_be_bytes(), (now.max(0) as u64).to_be_bytes());
            let items = storage::items_table(&table.uid);
            let expired: Vec<Item> = self
                .meta
                .read(|view| {
                    let mut keys = Vec::new();
                    view.range(
                        &storage::ttl_table(&table.uid),
                        lakebox_store::KeyRange {
                            start: std::ops::Bound::Included(&start),
                            end: std::ops::Bound::Excluded(&end),
                            reverse: false,
                        },
                        |k, _| {
                            keys.push(k[8..].to_vec());
                            Ok(keys.len() < 1000)
                        },
                    )?;
                    let mut out = Vec::new();
                    for k in keys {
                        if let Some(v) = view.get(&items, &k)? {
                            out.push(table.schema.key_of(&storage::decode_item(&v)?));
                        }
                    }
                    Ok(out)
                })
                .map_err(errors::store)?;
            if expired.is_empty() {
                continue;
            }
            let path = || expr::Operand::Path(expr::DocPath::attribute(&attr));
            let number = |n: i64| expr::Operand::Value(value::AttributeValue::N(n.to_string()));
            let still_expired = expr::Cond::And(
                Box::new(expr::Cond::Compare(
                    path(),
                    expr::Cmp::Ge,
                    number(now - FIVE_YEARS_SECS),
                )),
                Box::new(expr::Cond::Compare(path(), expr::Cmp::Lt, number(now))),
            );
            let writes: Vec<items::Write> = expired
                .into_iter()
                .map(|key| {
                    let mut w = items::Write::new(
                        table.clone(),
                        key,
                        items::Change::Delete,
                        Some(still_expired.clone()),
                    );
                    w.by_ttl = true;
                    w
                })
                .collect();
            let log = self.change_log();
            let deleted = self
                .meta
                .write_async(move |b| {
                    let mut deleted = 0;
                    for w in &writes {
                        if let items::Outcome::Done { old: Some(_), .. } = w.apply(b, &log)? {
                            deleted += 1;
                        }
                    }
                    Ok(deleted)
                })
                .await
                .map_err(errors::store)?;
            self.report_ttl_deleted(&table, deleted);
        }
        Ok(())
    }

    fn backups(&self, table: &TableRecord) -> ContinuousBackupsDescription {
        let now = lakebox_protocol::Timestamp::from_millis(self.now());
        ContinuousBackupsDescription {
            continuous_backups_status: ContinuousBackupsStatus::Enabled,
            point_in_time_recovery_description: Some(PointInTimeRecoveryDescription {
                point_in_time_recovery_status: Some(if table.pitr {
                    PointInTimeRecoveryStatus::Enabled
                } else {
                    PointInTimeRecoveryStatus::Disabled
                }),
                recovery_period_in_days: table.pitr.then_some(35),
                earliest_restorable_date_time: table
                    .pitr
                    .then(|| lakebox_protocol::Timestamp::from_millis(table.created_millis)),
                latest_restorable_date_time: table.pitr.then_some(now),
            }),
        }
    }
}
