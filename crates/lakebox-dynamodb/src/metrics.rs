//! AWS/DynamoDB's CloudWatch metrics, with AWS's names, units and dimensions, so alarms
//! written for DynamoDB work unchanged:
//!
//! - per request, from its outcome ([`DynamoDb::report`]): `SuccessfulRequestLatency` and
//!   `ReturnedItemCount` (TableName, Operation), `ThrottledRequests` (TableName, Operation),
//!   `ConditionalCheckFailedRequests` (TableName), `SystemErrors` (TableName, Operation) and
//!   `UserErrors` (no dimension: the account and region), which AWS does not raise for failed
//!   conditions or throttling;
//! - where capacity is drawn or refused: `ConsumedReadCapacityUnits` /
//!   `ConsumedWriteCapacityUnits` and `ReadThrottleEvents` / `WriteThrottleEvents` (TableName);
//! - from background work: `TimeToLiveDeletedItemCount` (TableName), and every sampling
//!   interval `ProvisionedReadCapacityUnits` / `ProvisionedWriteCapacityUnits` of PROVISIONED
//!   tables (TableName, and TableName with GlobalSecondaryIndexName for their indexes);
//! - DynamoDB Streams' GetRecords: `ReturnedRecordsCount`, `ReturnedBytes` and
//!   `SuccessfulRequestLatency` (Operation, StreamLabel, TableName).
//!
//! The request's table is the first one its handler looks up (a batch naming several tables
//! reports under the first); handlers note the items they return. Both travel in a task-local
//! scope around the request, so the handlers' signatures stay the model's.

use std::cell::RefCell;
use std::time::Duration;

use lakebox_core::{RequestContext, ServiceError};

use crate::DynamoDb;
use crate::tables::TableRecord;
use crate::throttle::Kind;

const NAMESPACE: &str = "AWS/DynamoDB";

/// What a request told about itself while it ran.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    table: Option<String>,
    returned_items: Option<u64>,
}

tokio::task_local! {
    static SEEN: RefCell<Seen>;
}

/// Notes the table the request works on (the first noted stays).
pub(crate) fn note_table(name: &str) {
    let _ = SEEN.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.table.is_none() {
            s.table = Some(name.to_owned());
        }
    });
}

/// Notes items the request returns (Query, Scan, a PartiQL SELECT).
pub(crate) fn note_returned(items: usize) {
    let _ = SEEN.try_with(|s| {
        let mut s = s.borrow_mut();
        *s.returned_items.get_or_insert(0) += items as u64;
    });
}

/// Runs `work` with a fresh scope for [`note_table`] and [`note_returned`], and answers what
/// was noted with its result.
pub(crate) async fn observed<T>(work: impl Future<Output = T>) -> (T, Seen) {
    SEEN.scope(RefCell::new(Seen::default()), async move {
        let out = work.await;
        (out, SEEN.with(|s| std::mem::take(&mut *s.borrow_mut())))
    })
    .await
}

/// The operations AWS reports `SuccessfulRequestLatency` and `ThrottledRequests` for.
fn per_operation(op: &str) -> bool {
    matches!(
        op,
        "GetItem"
            | "PutItem"
            | "UpdateItem"
            | "DeleteItem"
            | "Query"
            | "Scan"
            | "BatchGetItem"
            | "BatchWriteItem"
            | "TransactGetItems"
            | "TransactWriteItems"
            | "ExecuteStatement"
            | "BatchExecuteStatement"
            | "ExecuteTransaction"
    )
}

impl DynamoDb {
    fn recorder(&self) -> Option<&lakebox_service::metrics::Recorder> {
        self.metrics.get()
    }

    pub(crate) fn metrics_on(&self) -> bool {
        self.recorder().is_some()
    }

    /// Records what one request's outcome tells (see the module's list).
    pub(crate) fn report(
        &self,
        ctx: &RequestContext,
        op: &str,
        elapsed: Duration,
        result: Result<(), &ServiceError>,
        seen: Seen,
    ) {
        let Some(r) = self.recorder() else { return };
        let (account, region) = (ctx.account_id.as_str(), ctx.region.as_str());
        let table = seen.table.as_deref();
        match (result, table) {
            (Ok(()), Some(t)) if per_operation(op) => {
                let dims = [("TableName", t), ("Operation", op)];
                let latency = (
                    "SuccessfulRequestLatency",
                    "Milliseconds",
                    elapsed.as_secs_f64() * 1000.0,
                );
                match seen.returned_items {
                    Some(n) => r.record_many(
                        account,
                        region,
                        NAMESPACE,
                        &dims,
                        &[latency, ("ReturnedItemCount", "Count", n as f64)],
                    ),
                    None => r.record_many(account, region, NAMESPACE, &dims, &[latency]),
                }
            }
            (Ok(()), _) => {}
            (Err(e), Some(t)) if e.code == "ConditionalCheckFailedException" => r.record_for(
                account,
                region,
                NAMESPACE,
                "ConditionalCheckFailedRequests",
                &[("TableName", t)],
                "Count",
                1.0,
            ),
            (Err(e), Some(t)) if e.code == "ProvisionedThroughputExceededException" => r.record_for(
                account,
                region,
                NAMESPACE,
                "ThrottledRequests",
                &[("TableName", t), ("Operation", op)],
                "Count",
                1.0,
            ),
            (Err(e), table) if e.status >= 500 => match table {
                Some(t) => r.record_for(
                    account,
                    region,
                    NAMESPACE,
                    "SystemErrors",
                    &[("TableName", t), ("Operation", op)],
                    "Count",
                    1.0,
                ),
                None => r.record_for(account, region, NAMESPACE, "SystemErrors", &[], "Count", 1.0),
            },
            (Err(_), _) => r.record_for(account, region, NAMESPACE, "UserErrors", &[], "Count", 1.0),
        }
    }

    /// Adds `value` to a metric of `table` (dimension TableName).
    fn table_metric(&self, table: &TableRecord, name: &str, value: f64) {
        if let Some(r) = self.recorder() {
            r.record_for(
                &table.account,
                &table.region,
                NAMESPACE,
                name,
                &[("TableName", table.name.as_str())],
                "Count",
                value,
            );
        }
    }

    /// Capacity a request drew from a table (`ConsumedRead/WriteCapacityUnits`).
    pub(crate) fn report_consumed(&self, table: &TableRecord, kind: Kind, units: f64) {
        let name = match kind {
            Kind::Read => "ConsumedReadCapacityUnits",
            Kind::Write => "ConsumedWriteCapacityUnits",
        };
        self.table_metric(table, name, units);
    }

    /// A request refused for want of capacity (`Read/WriteThrottleEvents`).
    pub(crate) fn report_throttled(&self, table: &TableRecord, kind: Kind) {
        let name = match kind {
            Kind::Read => "ReadThrottleEvents",
            Kind::Write => "WriteThrottleEvents",
        };
        self.table_metric(table, name, 1.0);
    }

    /// Items the TTL sweeper deleted from a table.
    pub(crate) fn report_ttl_deleted(&self, table: &TableRecord, items: usize) {
        if items > 0 {
            self.table_metric(table, "TimeToLiveDeletedItemCount", items as f64);
        }
    }

    /// A DynamoDB Streams GetRecords that answered `records` records of `bytes` bytes.
    pub(crate) fn report_stream_read(
        &self,
        stream: &crate::streams::StreamMeta,
        records: usize,
        bytes: usize,
        elapsed: Duration,
    ) {
        if let Some(r) = self.recorder() {
            r.record_many(
                &stream.account,
                &stream.region,
                NAMESPACE,
                &[
                    ("Operation", "GetRecords"),
                    ("StreamLabel", stream.label.as_str()),
                    ("TableName", stream.table_name.as_str()),
                ],
                &[
                    ("ReturnedRecordsCount", "Count", records as f64),
                    ("ReturnedBytes", "Bytes", bytes as f64),
                    (
                        "SuccessfulRequestLatency",
                        "Milliseconds",
                        elapsed.as_secs_f64() * 1000.0,
                    ),
                ],
            );
        }
    }

    /// Each PROVISIONED table's and index's provisioned throughput, as AWS samples it.
    fn sample_provisioned(&self, r: &lakebox_service::metrics::Recorder) {
        let tables: Vec<std::sync::Arc<TableRecord>> = self
            .tables
            .read()
            .unwrap()
            .values()
            .filter(|t| t.billing_mode == "PROVISIONED")
            .cloned()
            .collect();
        for t in tables {
            let values = |rcu: i64, wcu: i64| {
                [
                    ("ProvisionedReadCapacityUnits", "Count", rcu as f64),
                    ("ProvisionedWriteCapacityUnits", "Count", wcu as f64),
                ]
            };
            r.record_many(
                &t.account,
                &t.region,
                NAMESPACE,
                &[("TableName", t.name.as_str())],
                &values(t.read_capacity, t.write_capacity),
            );
            for index in t.indexes.iter().filter(|i| i.global) {
                let (rcu, wcu) = t.index_capacity.get(&index.name).copied().unwrap_or((0, 0));
                r.record_many(
                    &t.account,
                    &t.region,
                    NAMESPACE,
                    &[
                        ("TableName", t.name.as_str()),
                        ("GlobalSecondaryIndexName", index.name.as_str()),
                    ],
                    &values(rcu, wcu),
                );
            }
        }
    }

    /// Publishes the tables' AWS/DynamoDB metrics through `recorder`: every request's from now
    /// on, and every `every` the provisioned throughput of PROVISIONED tables.
    pub fn start_metrics(
        self: &std::sync::Arc<Self>,
        recorder: lakebox_service::metrics::Recorder,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let _ = self.metrics.set(recorder.clone());
        lakebox_service::tasks::every(self, every, move |db| {
            db.sample_provisioned(&recorder);
            async {}
        })
    }
}
