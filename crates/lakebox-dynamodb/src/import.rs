//! ImportTable from S3 (DescribeImport, ListImports): a new table filled from every object
//! under a prefix in Lakebox S3 — DYNAMODB_JSON (one `{"Item": …}` per line, as exports write
//! them) or CSV (a header row or HeaderList; every value a string except key attributes, typed
//! as AttributeDefinitions say, as on AWS) — plain or GZIP. A line that does not parse, or an
//! item the table refuses, is counted in ErrorCount and skipped, as AWS skips it.

use std::io::Read;

use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use lakebox_service::lake::Lake;

use crate::DynamoDb;
use crate::api::*;
use crate::errors::{self, validation};
use crate::items::checked_item;
use crate::tables::TableRecord;
use crate::value::{AttributeValue, Item};
use crate::{records, storage};

const IMPORTS: &str = "imports";
/// Items written per store transaction.
const BATCH: usize = 1000;

fn save(meta: &lakebox_store::MetaStore, d: &ImportTableDescription) -> Result<(), ServiceError> {
    records::save(meta, IMPORTS, d.import_arn.as_deref().unwrap_or_default(), d)
}

/// Reads a whole object (imports read files one at a time).
async fn read_object(lake: &Lake, bucket: &str, key: &str) -> Result<Vec<u8>, ServiceError> {
    let (_, mut chunks) = lake.get(bucket, key, None)?;
    let mut out = Vec::new();
    while let Some(chunk) = chunks.recv().await {
        out.extend_from_slice(&chunk.map_err(errors::internal)?);
    }
    Ok(out)
}

/// Splits one CSV line on `delim`, honouring double quotes ("" inside quotes is a quote).
fn csv_fields(line: &str, delim: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == delim && !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

impl DynamoDb {
    pub(crate) async fn import_table_impl(
        &self,
        ctx: &RequestContext,
        input: ImportTableInput,
    ) -> Result<ImportTableDescription, ServiceError> {
        let lake = self
            .lake
            .get()
            .ok_or_else(|| errors::internal("DynamoDB has no S3 to import from"))?
            .acting_for(&ctx.account_id);
        if matches!(input.input_format, InputFormat::Ion) {
            return Err(validation(
                "Lakebox imports DYNAMODB_JSON and CSV; ION is not supported yet",
            ));
        }
        if matches!(input.input_compression_type, Some(InputCompressionType::Zstd)) {
            return Err(validation(
                "Lakebox imports plain or GZIP files; ZSTD is not supported yet",
            ));
        }
        let source = &input.s3_bucket_source;
        if lake
            .head(&source.s3_bucket, "_")
            .is_err_and(|e| e.code == "NoSuchBucket")
        {
            return Err(ServiceError::client(
                "ImportConflictException",
                format!("S3 bucket {} does not exist", source.s3_bucket),
            ));
        }
        let p = &input.table_creation_parameters;
        let created = self
            .create_table_impl(
                ctx,
                CreateTableInput {
                    table_name: p.table_name.clone(),
                    attribute_definitions: Some(p.attribute_definitions.clone()),
                    key_schema: Some(p.key_schema.clone()),
                    billing_mode: p.billing_mode.clone(),
                    provisioned_throughput: p.provisioned_throughput.clone(),
                    sse_specification: p.sse_specification.clone(),
                    global_secondary_indexes: p.global_secondary_indexes.clone(),
                    ..Default::default()
                },
            )
            .await?
            .table_description
            .unwrap_or_default();
        let table = self.table_for_admin(ctx, &p.table_name)?;
        let now = self.now();
        let id = format!("{now:014}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let description = ImportTableDescription {
            import_arn: Some(format!("{}/import/{id}", table.arn())),
            import_status: Some(ImportStatus::InProgress),
            table_arn: created.table_arn.clone(),
            table_id: created.table_id.clone(),
            client_token: input.client_token.clone(),
            s3_bucket_source: Some(input.s3_bucket_source.clone()),
            error_count: Some(0),
            input_format: Some(input.input_format.clone()),
            input_format_options: input.input_format_options.clone(),
            input_compression_type: Some(
                input
                    .input_compression_type
                    .clone()
                    .unwrap_or(InputCompressionType::None),
            ),
            table_creation_parameters: Some(input.table_creation_parameters.clone()),
            start_time: Some(Timestamp::from_millis(now)),
            ..Default::default()
        };
        save(&self.meta, &description)?;
        let db = self
            .me
            .upgrade()
            .ok_or_else(|| errors::internal("shutting down"))?;
        let running = description.clone();
        tokio::spawn(async move {
            let done = match db.run_import(&lake, &table, &running).await {
                Ok(done) => done,
                Err(e) => ImportTableDescription {
                    import_status: Some(ImportStatus::Failed),
                    failure_code: Some(e.code.to_string()),
                    failure_message: Some(e.message),
                    end_time: Some(Timestamp::from_millis(db.now())),
                    ..running
                },
            };
            if let Err(e) = save(&db.meta, &done) {
                tracing::warn!(error = %e.message, "could not record a DynamoDB import's end");
            }
        });
        Ok(description)
    }

    async fn run_import(
        &self,
        lake: &Lake,
        table: &std::sync::Arc<TableRecord>,
        running: &ImportTableDescription,
    ) -> Result<ImportTableDescription, ServiceError> {
        let source = running.s3_bucket_source.clone().unwrap_or_default();
        let prefix = source.s3_key_prefix.clone().unwrap_or_default();
        let gzip = matches!(running.input_compression_type, Some(InputCompressionType::Gzip));
        let csv = matches!(running.input_format, Some(InputFormat::Csv));
        let csv_options = running.input_format_options.as_ref().and_then(|o| o.csv.clone());
        let delim = csv_options
            .as_ref()
            .and_then(|c| c.delimiter.as_deref())
            .and_then(|d| d.chars().next())
            .unwrap_or(',');
        let types: std::collections::BTreeMap<&str, &str> = table
            .schema
            .attrs()
            .map(|a| (a.name.as_str(), a.ty.as_str()))
            .collect();
        let (mut processed, mut imported, mut errors_seen, mut bytes) = (0i64, 0i64, 0i64, 0i64);
        let mut after: Option<String> = None;
        let mut pending: Vec<Item> = Vec::new();
        loop {
            let objects = lake.list(&source.s3_bucket, &prefix, after.as_deref(), 1000)?;
            let Some(last) = objects.last() else { break };
            after = Some(last.key.clone());
            for object in objects {
                let raw = read_object(lake, &source.s3_bucket, &object.key).await?;
                bytes += raw.len() as i64;
                let text = if gzip {
                    let mut out = String::new();
                    if flate2::read::MultiGzDecoder::new(&raw[..])
                        .read_to_string(&mut out)
                        .is_err()
                    {
                        errors_seen += 1;
                        continue;
                    }
                    out
                } else {
                    String::from_utf8_lossy(&raw).into_owned()
                };
                let mut header: Option<Vec<String>> =
                    csv_options.as_ref().and_then(|c| c.header_list.clone());
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let item: Option<Item> = if csv {
                        let fields = csv_fields(line, delim);
                        match &header {
                            None => {
                                header = Some(fields);
                                continue;
                            }
                            Some(names) => Some(
                                names
                                    .iter()
                                    .zip(fields)
                                    .filter(|(_, v)| !v.is_empty())
                                    .map(|(n, v)| {
                                        let value = match types.get(n.as_str()) {
                                            Some(&"N") => AttributeValue::N(v),
                                            Some(&"B") => AttributeValue::B(
                                                base64::Engine::decode(
                                                    &base64::engine::general_purpose::STANDARD,
                                                    &v,
                                                )
                                                .unwrap_or_default(),
                                            ),
                                            _ => AttributeValue::S(v),
                                        };
                                        (n.clone(), value)
                                    })
                                    .collect(),
                            ),
                        }
                    } else {
                        serde_json::from_str::<serde_json::Value>(line)
                            .ok()
                            .and_then(|v| serde_json::from_value::<Item>(v.get("Item")?.clone()).ok())
                    };
                    processed += 1;
                    match item.map(|i| checked_item(table, i)) {
                        Some(Ok(item)) => pending.push(item),
                        _ => errors_seen += 1,
                    }
                    if pending.len() >= BATCH {
                        imported += self.write_imported(table, std::mem::take(&mut pending)).await?;
                    }
                }
            }
        }
        imported += self.write_imported(table, pending).await?;
        Ok(ImportTableDescription {
            import_status: Some(ImportStatus::Completed),
            end_time: Some(Timestamp::from_millis(self.now())),
            processed_item_count: Some(processed),
            imported_item_count: Some(imported),
            error_count: Some(errors_seen),
            processed_size_bytes: Some(bytes),
            ..running.clone()
        })
    }

    async fn write_imported(
        &self,
        table: &std::sync::Arc<TableRecord>,
        items: Vec<Item>,
    ) -> Result<i64, ServiceError> {
        if items.is_empty() {
            return Ok(0);
        }
        let record = table.clone();
        let n = items.len() as i64;
        self.meta
            .write_async(move |b| {
                for item in &items {
                    let key = record.schema.storage_key(item).expect("checked");
                    storage::write_item(b, &record, &key, Some(item))?;
                }
                Ok(())
            })
            .await
            .map_err(errors::store)?;
        Ok(n)
    }

    pub(crate) fn describe_import_impl(&self, arn: &str) -> Result<ImportTableDescription, ServiceError> {
        records::load(&self.meta, IMPORTS, arn)?.ok_or_else(|| {
            ServiceError::client("ImportNotFoundException", format!("Import not found: {arn}"))
        })
    }

    pub(crate) fn list_imports_impl(
        &self,
        ctx: &RequestContext,
        input: ListImportsInput,
    ) -> Result<ListImportsOutput, ServiceError> {
        let max = input.page_size.unwrap_or(25).clamp(1, 25) as usize;
        let (imports, next_token) = records::page(
            &self.meta,
            IMPORTS,
            ctx,
            |d: &ImportTableDescription| input.table_arn.is_none() || d.table_arn == input.table_arn,
            input.next_token.as_deref(),
            max,
        )?;
        Ok(ListImportsOutput {
            next_token,
            import_summary_list: Some(
                imports
                    .into_iter()
                    .map(|d| ImportSummary {
                        import_arn: d.import_arn,
                        import_status: d.import_status,
                        table_arn: d.table_arn,
                        s3_bucket_source: d.s3_bucket_source,
                        cloud_watch_log_group_arn: None,
                        input_format: d.input_format,
                        start_time: d.start_time,
                        end_time: d.end_time,
                    })
                    .collect(),
            ),
        })
    }
}
