//! Export to S3 (ExportTableToPointInTime, DescribeExport, ListExports) in AWS's layout, so
//! tools that read AWS's exports (a Glue crawler, Athena, scripts following the manifests)
//! read Lakebox's:
//!
//! ```text
//! <prefix>/AWSDynamoDB/<ExportId>/_started
//! <prefix>/AWSDynamoDB/<ExportId>/data/<name>.json.gz      one {"Item": {…}} per line
//! <prefix>/AWSDynamoDB/<ExportId>/manifest-files.json      one line per data file
//! <prefix>/AWSDynamoDB/<ExportId>/manifest-files.md5       (AWS calls it .checksum too)
//! <prefix>/AWSDynamoDB/<ExportId>/manifest-summary.json
//! <prefix>/AWSDynamoDB/<ExportId>/manifest-summary.md5
//! ```
//!
//! The items are read from one snapshot of the store (the table as of the export's start),
//! after the answer; DescribeExport says IN_PROGRESS until the files are written.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use lakebox_service::lake::{Lake, PutOptions};
use lakebox_store::KeyRange;
use md5::Digest;

use crate::DynamoDb;
use crate::api::*;
use crate::errors::{self, validation};
use crate::tables::TableRecord;
use crate::value::Item;
use crate::{records, storage};

const EXPORTS: &str = "exports";
/// Items per data file.
const ITEMS_PER_FILE: usize = 100_000;

fn save(meta: &lakebox_store::MetaStore, d: &ExportDescription) -> Result<(), ServiceError> {
    records::save(meta, EXPORTS, d.export_arn.as_deref().unwrap_or_default(), d)
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(md5::Md5::digest(b))
}

impl DynamoDb {
    pub(crate) async fn export_table_impl(
        &self,
        ctx: &RequestContext,
        input: ExportTableToPointInTimeInput,
    ) -> Result<ExportDescription, ServiceError> {
        let table = self.table_for_admin(ctx, &input.table_arn)?;
        let lake = self
            .lake
            .get()
            .ok_or_else(|| errors::internal("DynamoDB has no S3 to export to"))?
            .acting_for(&ctx.account_id);
        if !table.pitr {
            return Err(ServiceError::client(
                "PointInTimeRecoveryUnavailableException",
                format!("Point in time recovery is not enabled for table '{}'", table.name),
            ));
        }
        if matches!(input.export_type, Some(ExportType::IncrementalExport)) {
            return Err(validation(
                "Lakebox exports tables in full (ExportType FULL_EXPORT); incremental exports are not supported yet",
            ));
        }
        if matches!(input.export_format, Some(ExportFormat::Ion)) {
            return Err(validation(
                "Lakebox writes exports as DYNAMODB_JSON; ION is not supported yet",
            ));
        }
        let now = self.now();
        if let Some(t) = input.export_time
            && (t.as_millis() > now + 1000 || t.as_millis() < now - 60_000)
        {
            return Err(ServiceError::client(
                "InvalidExportTimeException",
                "Lakebox exports a table as it is now: ExportTime must be within the last minute",
            ));
        }
        if lake
            .head(&input.s3_bucket, "_")
            .is_err_and(|e| e.code == "NoSuchBucket")
        {
            return Err(ServiceError::client(
                "ExportConflictException",
                format!("S3 bucket {} does not exist", input.s3_bucket),
            ));
        }
        let id = format!("{now:014}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let description = ExportDescription {
            export_arn: Some(format!("{}/export/{id}", table.arn())),
            export_status: Some(ExportStatus::InProgress),
            start_time: Some(Timestamp::from_millis(now)),
            table_arn: Some(table.arn()),
            table_id: Some(table.uid.clone()),
            export_time: Some(Timestamp::from_millis(now)),
            client_token: input.client_token.clone(),
            s3_bucket: Some(input.s3_bucket.clone()),
            s3_bucket_owner: input.s3_bucket_owner.clone(),
            s3_prefix: input.s3_prefix.clone(),
            s3_sse_algorithm: input.s3_sse_algorithm.clone(),
            s3_sse_kms_key_id: input.s3_sse_kms_key_id.clone(),
            export_format: Some(ExportFormat::DynamodbJson),
            export_type: Some(ExportType::FullExport),
            ..Default::default()
        };
        save(&self.meta, &description)?;
        let db: Arc<DynamoDb> = self
            .me
            .upgrade()
            .ok_or_else(|| errors::internal("shutting down"))?;
        let running = description.clone();
        tokio::spawn(async move {
            let done = match db.write_export(&lake, &table, &running, &id).await {
                Ok(done) => done,
                Err(e) => ExportDescription {
                    export_status: Some(ExportStatus::Failed),
                    failure_code: Some(e.code.to_string()),
                    failure_message: Some(e.message),
                    end_time: Some(Timestamp::from_millis(db.now())),
                    ..running
                },
            };
            if let Err(e) = save(&db.meta, &done) {
                tracing::warn!(error = %e.message, "could not record a DynamoDB export's end");
            }
        });
        Ok(description)
    }

    /// Writes the export's files; the description as completed.
    async fn write_export(
        &self,
        lake: &Lake,
        table: &TableRecord,
        running: &ExportDescription,
        id: &str,
    ) -> Result<ExportDescription, ServiceError> {
        let bucket = running.s3_bucket.clone().unwrap_or_default();
        let prefix = running.s3_prefix.clone().unwrap_or_default();
        let prefix = prefix.trim_matches('/');
        let base = if prefix.is_empty() {
            format!("AWSDynamoDB/{id}")
        } else {
            format!("{prefix}/AWSDynamoDB/{id}")
        };
        let bucket = bucket.as_str();
        let put = |key: String, body: Vec<u8>| async move {
            lake.put(bucket, &key, Bytes::from(body), PutOptions::default())
                .await
                .map(|_| ())
        };
        put(format!("{base}/_started"), Vec::new()).await?;
        // One snapshot of the table, read off the request threads.
        let meta_items = {
            let db_items = storage::items_table(&table.uid);
            let snapshot = |meta: &lakebox_store::MetaStore| -> lakebox_store::Result<Vec<Item>> {
                meta.read(|view| {
                    let mut items = Vec::new();
                    view.range(
                        &db_items,
                        KeyRange {
                            start: std::ops::Bound::Unbounded,
                            end: std::ops::Bound::Unbounded,
                            reverse: false,
                        },
                        |_, v| {
                            items.push(storage::decode_item(v)?);
                            Ok(true)
                        },
                    )?;
                    Ok(items)
                })
            };
            snapshot(&self.meta).map_err(errors::store)?
        };
        let item_count = meta_items.len();
        let mut manifest_files = String::new();
        let mut billed = 0u64;
        let chunks: Vec<&[Item]> = if meta_items.is_empty() {
            vec![&[]]
        } else {
            meta_items.chunks(ITEMS_PER_FILE).collect()
        };
        for chunk in chunks {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            for item in chunk {
                let line = serde_json::json!({ "Item": item });
                writeln!(gz, "{line}").map_err(errors::internal)?;
            }
            let body = gz.finish().map_err(errors::internal)?;
            billed += body.len() as u64;
            let name = uuid::Uuid::new_v4().simple().to_string();
            let key = format!("{base}/data/{}.json.gz", &name[..26]);
            let md5 = md5_hex(&body);
            put(key.clone(), body).await?;
            manifest_files.push_str(
                &serde_json::json!({
                    "itemCount": chunk.len(),
                    "md5Checksum": md5,
                    "etag": md5,
                    "dataFileS3Key": key,
                })
                .to_string(),
            );
            manifest_files.push('\n');
        }
        let files_key = format!("{base}/manifest-files.json");
        put(
            format!("{base}/manifest-files.md5"),
            md5_hex(manifest_files.as_bytes()).into_bytes(),
        )
        .await?;
        put(files_key.clone(), manifest_files.into_bytes()).await?;
        let end = self.now();
        let iso = |t: Option<Timestamp>| t.map(|t| t.to_iso8601());
        let summary = serde_json::json!({
            "version": "2020-06-30",
            "exportArn": running.export_arn,
            "startTime": iso(running.start_time),
            "endTime": Timestamp::from_millis(end).to_iso8601(),
            "tableArn": running.table_arn,
            "tableId": running.table_id,
            "exportTime": iso(running.export_time),
            "s3Bucket": running.s3_bucket,
            "s3Prefix": running.s3_prefix,
            "s3SseAlgorithm": running.s3_sse_algorithm.as_ref().map(|a| a.as_str().to_owned()),
            "s3SseKmsKeyId": running.s3_sse_kms_key_id,
            "manifestFilesS3Key": files_key,
            "billedSizeBytes": billed,
            "itemCount": item_count,
            "outputFormat": "DYNAMODB_JSON",
        })
        .to_string();
        let summary_key = format!("{base}/manifest-summary.json");
        put(
            format!("{base}/manifest-summary.md5"),
            md5_hex(summary.as_bytes()).into_bytes(),
        )
        .await?;
        put(summary_key.clone(), summary.into_bytes()).await?;
        Ok(ExportDescription {
            export_status: Some(ExportStatus::Completed),
            end_time: Some(Timestamp::from_millis(end)),
            export_manifest: Some(summary_key),
            billed_size_bytes: Some(billed as i64),
            item_count: Some(item_count as i64),
            ..running.clone()
        })
    }

    pub(crate) fn describe_export_impl(&self, arn: &str) -> Result<ExportDescription, ServiceError> {
        records::load(&self.meta, EXPORTS, arn)?.ok_or_else(|| {
            ServiceError::client("ExportNotFoundException", format!("Export not found: {arn}"))
        })
    }

    pub(crate) fn list_exports_impl(
        &self,
        ctx: &RequestContext,
        input: ListExportsInput,
    ) -> Result<ListExportsOutput, ServiceError> {
        let max = input.max_results.unwrap_or(25).clamp(1, 25) as usize;
        let (exports, next_token) = records::page(
            &self.meta,
            EXPORTS,
            ctx,
            |d: &ExportDescription| input.table_arn.is_none() || d.table_arn == input.table_arn,
            input.next_token.as_deref(),
            max,
        )?;
        Ok(ListExportsOutput {
            next_token,
            export_summaries: Some(
                exports
                    .into_iter()
                    .map(|d| ExportSummary {
                        export_arn: d.export_arn,
                        export_status: d.export_status,
                        export_type: d.export_type,
                    })
                    .collect(),
            ),
        })
    }
}
