//! On-demand backups: CreateBackup copies the table's items into a redb table of the backup's
//! own (`backup/<id>`) inside one write job — a consistent copy, taken between two writes —
//! and RestoreTableFromBackup makes a new table from it, its indexes rebuilt, in one job too.

use std::sync::Arc;

use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use lakebox_store::KeyRange;
use serde::{Deserialize, Serialize};

use crate::DynamoDb;
use crate::api::*;
use crate::errors;
use crate::tables::{TableRecord, meta_key};
use crate::{records, storage};

const BACKUPS: &str = "backups";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Backup {
    details: BackupDetails,
    /// The table as it was: its schema, indexes and settings are what a restore makes.
    table: TableRecord,
    item_count: u64,
    id: String,
}

fn backup_items(id: &str) -> String {
    format!("backup/{id}")
}

fn not_found(arn: &str) -> ServiceError {
    ServiceError::client("BackupNotFoundException", format!("Backup not found: {arn}"))
}

fn everything<'a>() -> KeyRange<'a> {
    KeyRange {
        start: std::ops::Bound::Unbounded,
        end: std::ops::Bound::Unbounded,
        reverse: false,
    }
}

impl DynamoDb {
    fn backup(&self, arn: &str) -> Result<Backup, ServiceError> {
        records::load(&self.meta, BACKUPS, arn)?.ok_or_else(|| not_found(arn))
    }

    fn describe_backup_of(&self, b: &Backup) -> BackupDescription {
        let t = &b.table;
        BackupDescription {
            backup_details: Some(b.details.clone()),
            source_table_details: Some(SourceTableDetails {
                table_name: t.name.clone(),
                table_id: t.uid.clone(),
                table_arn: Some(t.arn()),
                table_size_bytes: b.details.backup_size_bytes,
                key_schema: t.key_schema.clone(),
                table_creation_date_time: Timestamp::from_millis(t.created_millis),
                provisioned_throughput: ProvisionedThroughput {
                    read_capacity_units: t.read_capacity,
                    write_capacity_units: t.write_capacity,
                },
                on_demand_throughput: None,
                item_count: Some(b.item_count as i64),
                billing_mode: Some(BillingMode::from(t.billing_mode.as_str())),
            }),
            source_table_feature_details: None,
        }
    }

    pub(crate) async fn create_backup_impl(
        &self,
        ctx: &RequestContext,
        input: CreateBackupInput,
    ) -> Result<BackupDetails, ServiceError> {
        let table = self.table_for_admin(ctx, &input.table_name)?;
        let now = self.now();
        let id = format!("{now:014}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let arn = format!("{}/backup/{id}", table.arn());
        let (count, bytes) = storage::stats(&self.meta, &table.uid, None).map_err(errors::store)?;
        let details = BackupDetails {
            backup_arn: arn.clone(),
            backup_name: input.backup_name,
            backup_size_bytes: Some(bytes as i64),
            backup_status: BackupStatus::Available,
            backup_type: BackupType::User,
            backup_creation_date_time: Timestamp::from_millis(now),
            backup_expiry_date_time: None,
        };
        let record = serde_json::to_vec(&Backup {
            details: details.clone(),
            table: (*table).clone(),
            item_count: count,
            id: id.clone(),
        })
        .map_err(errors::internal)?;
        let source = storage::items_table(&table.uid);
        self.meta
            .write_async(move |b| {
                let mut rows = Vec::new();
                b.range(&source, everything(), |k, v| {
                    rows.push((k.to_vec(), v.to_vec()));
                    Ok(true)
                })?;
                let target = backup_items(&id);
                for (k, v) in rows {
                    b.put(&target, &k, &v)?;
                }
                b.put(BACKUPS, arn.as_bytes(), &record)
            })
            .await
            .map_err(errors::store)?;
        Ok(details)
    }

    pub(crate) fn describe_backup_impl(&self, arn: &str) -> Result<BackupDescription, ServiceError> {
        Ok(self.describe_backup_of(&self.backup(arn)?))
    }

    pub(crate) async fn delete_backup_impl(&self, arn: &str) -> Result<BackupDescription, ServiceError> {
        let b = self.backup(arn)?;
        let mut description = self.describe_backup_of(&b);
        if let Some(d) = &mut description.backup_details {
            d.backup_status = BackupStatus::Deleted;
        }
        let (key, id) = (arn.to_owned(), b.id.clone());
        self.meta
            .write_async(move |batch| {
                batch.freeing();
                batch.delete_table(&backup_items(&id))?;
                batch.delete(BACKUPS, key.as_bytes())?;
                Ok(())
            })
            .await
            .map_err(errors::store)?;
        Ok(description)
    }

    pub(crate) fn list_backups_impl(
        &self,
        ctx: &RequestContext,
        input: ListBackupsInput,
    ) -> Result<ListBackupsOutput, ServiceError> {
        let table = input
            .table_name
            .as_deref()
            .map(|t| crate::table_name(t).to_owned());
        let limit = input.limit.unwrap_or(100).clamp(1, 100) as usize;
        let (all, last_evaluated_backup_arn) = records::page(
            &self.meta,
            BACKUPS,
            ctx,
            |b: &Backup| {
                let at = b.details.backup_creation_date_time.as_millis();
                table.as_ref().is_none_or(|t| *t == b.table.name)
                    && input.time_range_lower_bound.is_none_or(|l| at >= l.as_millis())
                    && input.time_range_upper_bound.is_none_or(|u| at < u.as_millis())
            },
            input.exclusive_start_backup_arn.as_deref(),
            limit,
        )?;
        Ok(ListBackupsOutput {
            last_evaluated_backup_arn,
            backup_summaries: Some(
                all.into_iter()
                    .map(|b| BackupSummary {
                        table_name: Some(b.table.name.clone()),
                        table_id: Some(b.table.uid.clone()),
                        table_arn: Some(b.table.arn()),
                        backup_arn: Some(b.details.backup_arn.clone()),
                        backup_name: Some(b.details.backup_name.clone()),
                        backup_creation_date_time: Some(b.details.backup_creation_date_time),
                        backup_expiry_date_time: None,
                        backup_status: Some(b.details.backup_status.clone()),
                        backup_type: Some(b.details.backup_type.clone()),
                        backup_size_bytes: b.details.backup_size_bytes,
                    })
                    .collect(),
            ),
        })
    }

    pub(crate) async fn restore_table_from_backup_impl(
        &self,
        ctx: &RequestContext,
        input: RestoreTableFromBackupInput,
    ) -> Result<TableDescription, ServiceError> {
        let b = self.backup(&input.backup_arn)?;
        self.restore(
            ctx,
            Restore {
                rows: backup_items(&b.id),
                source: &b.table,
                target: &input.target_table_name,
                billing: input.billing_mode_override.as_ref(),
                throughput: input.provisioned_throughput_override.as_ref(),
                backup_arn: Some(b.details.backup_arn.clone()),
            },
        )
        .await
    }

    /// RestoreTableToPointInTime, for the latest restorable time (the table as it is now,
    /// copied between two writes): Lakebox keeps no history to restore an earlier moment from.
    pub(crate) async fn restore_table_to_point_in_time_impl(
        &self,
        ctx: &RequestContext,
        input: RestoreTableToPointInTimeInput,
    ) -> Result<TableDescription, ServiceError> {
        let name = input
            .source_table_arn
            .as_deref()
            .or(input.source_table_name.as_deref())
            .ok_or_else(|| {
                errors::validation("Either SourceTableArn or SourceTableName must be specified")
            })?;
        let table = self.lookup(ctx, name).ok_or_else(|| {
            ServiceError::client(
                "TableNotFoundException",
                format!("Table not found: {}", crate::table_name(name)),
            )
        })?;
        if !table.pitr {
            return Err(ServiceError::client(
                "PointInTimeRecoveryUnavailableException",
                format!("Point in time recovery is not enabled for table '{}'", table.name),
            ));
        }
        let now = self.now();
        if input.use_latest_restorable_time != Some(true) {
            match input.restore_date_time {
                Some(t) if t.as_millis() >= now - 60_000 && t.as_millis() <= now + 1000 => {}
                _ => {
                    return Err(ServiceError::client(
                        "InvalidRestoreTimeException",
                        "Lakebox restores a table as it is now: use UseLatestRestorableTime, or a RestoreDateTime within the last minute",
                    ));
                }
            }
        }
        self.restore(
            ctx,
            Restore {
                rows: storage::items_table(&table.uid),
                source: &table,
                target: &input.target_table_name,
                billing: input.billing_mode_override.as_ref(),
                throughput: input.provisioned_throughput_override.as_ref(),
                backup_arn: None,
            },
        )
        .await
    }

    /// Makes `target` from the items stored in `rows` (a backup's, or a live table's read in
    /// the same job), with the source's schema and indexes.
    async fn restore(&self, ctx: &RequestContext, r: Restore<'_>) -> Result<TableDescription, ServiceError> {
        let _admin = self.admin.lock().await;
        let key = (ctx.account_id.clone(), ctx.region.clone(), r.target.to_owned());
        if self.tables.read().unwrap().contains_key(&key) {
            return Err(ServiceError::client(
                "TableAlreadyExistsException",
                format!("Table already exists: {}", r.target),
            ));
        }
        let now = self.now();
        let mut t = r.source.clone();
        t.uid = uuid::Uuid::new_v4().to_string();
        t.account = ctx.account_id.clone();
        t.region = ctx.region.clone();
        t.name = r.target.to_owned();
        t.created_millis = now;
        // A restored table starts without stream, TTL, PITR, destinations or tags, as on AWS.
        t.stream = None;
        t.latest_stream = None;
        t.ttl_attribute = None;
        t.pitr = false;
        t.tags.clear();
        t.kinesis_destinations.clear();
        t.deletion_protection = false;
        if let Some(mode) = r.billing {
            t.billing_mode = mode.as_str().to_owned();
        }
        if let Some(p) = r.throughput {
            t.read_capacity = p.read_capacity_units;
            t.write_capacity = p.write_capacity_units;
        }
        let t = Arc::new(t);
        let record = t.clone();
        let source = r.rows;
        let tables = self.tables.clone();
        let value = serde_json::to_vec(&*t).map_err(errors::internal)?;
        let meta = meta_key(&t.key());
        let restored = self
            .meta
            .write_async(move |batch| {
                let mut rows = Vec::new();
                batch.range(&source, everything(), |k, v| {
                    rows.push((k.to_vec(), storage::decode_item(v)?));
                    Ok(true)
                })?;
                for (k, item) in rows {
                    storage::write_item(batch, &record, &k, Some(&item))?;
                }
                batch.put(storage::TABLES, &meta, &value)?;
                tables.write().unwrap().insert(record.key(), record.clone());
                Ok(())
            })
            .await;
        if let Err(e) = restored {
            self.tables.write().unwrap().remove(&t.key());
            return Err(errors::store(e));
        }
        let mut description = self.describe(&t)?;
        description.restore_summary = Some(RestoreSummary {
            source_backup_arn: r.backup_arn,
            source_table_arn: Some(r.source.arn()),
            restore_date_time: Timestamp::from_millis(now),
            restore_in_progress: false,
        });
        description.table_status = Some(TableStatus::Creating);
        Ok(description)
    }
}

/// What a restore copies, and into what.
struct Restore<'a> {
    /// The redb table holding the items.
    rows: String,
    source: &'a TableRecord,
    target: &'a str,
    billing: Option<&'a BillingMode>,
    throughput: Option<&'a ProvisionedThroughput>,
    backup_arn: Option<String>,
}
