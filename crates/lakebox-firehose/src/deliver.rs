//! The delivery worker of one stream: reads its durable log from the checkpoint, buffers until
//! SizeInMBs or IntervalInSeconds (whichever first), then processes, partitions, converts or
//! compresses, writes the objects to Lakebox S3, and only then moves the checkpoint (so a
//! crash re-delivers, never loses: at-least-once). Failed deliveries are retried with backoff;
//! the records wait on disk.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use lakebox_core::ServiceError;
use lakebox_glue::{Catalog, Scope};
use lakebox_service::lake::{Lake, PutOptions};
use lakebox_store::LogRecord;
use serde_json::json;

use crate::convert::Conversion;
use crate::destination::{S3Destination, Target};
use crate::http::{self, HttpDestination};
use crate::prefix::suffix;
use crate::process::{self, Failed, Incoming, Outgoing};
use crate::streams::{DeliveryStream, Streams};

/// Most bytes read from the log per step.
const READ_BYTES: usize = 8 * 1024 * 1024;
/// Longest sleep: clocks may jump (tests), definitions may change.
const MAX_WAIT: Duration = Duration::from_millis(500);

pub struct Deliverer {
    pub streams: Arc<Streams>,
    pub lake: Lake,
    pub catalog: Arc<Catalog>,
    /// Where AWS/Firehose delivery metrics go.
    pub metrics: lakebox_service::metrics::Recorder,
    /// Lambda, for the data transformation processor.
    pub functions: Option<Arc<dyn lakebox_service::links::FunctionInvoker>>,
}

/// The error prefix for a failure type.
fn error_key_prefix(dest: &S3Destination, error_type: &str, oldest: i64) -> String {
    dest.error_prefix
        .evaluate(oldest, dest.time_zone, error_type, &BTreeMap::new())
}

impl Deliverer {
    /// Runs until the stream is gone.
    pub async fn run(self: Arc<Self>, account: String, region: String, name: String, uid: String) {
        let waker = self.streams.waker(&uid);
        let Ok(log) = self.streams.log(&uid) else {
            tracing::error!(stream = %name, "cannot open the delivery stream's log");
            return;
        };
        let mut tip = log.watch();
        let mut next = self.streams.checkpoint(&uid).unwrap_or(0).max(log.first_offset());
        let mut buffer: Vec<LogRecord> = Vec::new();
        let mut buffered = 0u64;
        let mut backoff = Duration::from_millis(200);
        loop {
            let stream = match self.streams.get(&account, &region, &name) {
                Ok(Some(s)) if s.uid == uid => s,
                Ok(_) => return,
                Err(e) => {
                    tracing::error!(stream = %name, error = %e.message, "cannot read the delivery stream");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Some(until) = stream.deleting_until_millis {
                if self.streams.now() >= until {
                    if let Err(e) = self.streams.remove(&stream).await {
                        tracing::error!(stream = %name, error = %e.message, "cannot remove the delivery stream");
                    }
                    return;
                }
                tokio::time::sleep(MAX_WAIT).await;
                continue;
            }
            let target = match Target::parse(&stream.destination_kind, &stream.destination) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(stream = %name, error = %e.message, "invalid destination");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let (size_bytes, interval_millis) = (target.size_bytes(), target.interval_millis());
            // Fill the buffer up to the size limit.
            while buffered < size_bytes {
                let room = (size_bytes - buffered).min(READ_BYTES as u64) as usize;
                let l = log.clone();
                let read = match tokio::task::spawn_blocking(move || l.read(next, 100_000, room)).await {
                    Ok(Ok(r)) => r,
                    _ => break,
                };
                let Some(last) = read.last() else { break };
                next = last.offset + 1;
                buffered += read
                    .iter()
                    .map(|r| crate::source::unframe(&r.payload).1.len() as u64)
                    .sum::<u64>();
                buffer.extend(read);
            }
            let now = self.streams.now();
            let due = !buffer.is_empty()
                && (buffered >= size_bytes || now >= buffer[0].timestamp_millis + interval_millis);
            if due {
                let (delivered, kind) = match &target {
                    Target::S3(dest) => (self.deliver(&stream, dest, &buffer).await, "S3"),
                    Target::Http(dest) => (self.deliver_http(&stream, dest, &buffer).await, "HttpEndpoint"),
                };
                self.delivery_metrics(&stream, kind, delivered.is_ok(), &buffer, buffered, now);
                match delivered {
                    Ok(()) => {
                        let done = buffer.last().map(|r| r.offset + 1).unwrap_or(next);
                        if let Err(e) = self.streams.set_checkpoint(&uid, done).await {
                            tracing::error!(stream = %name, error = %e.message, "cannot save the checkpoint");
                        }
                        let l = log.clone();
                        let _ = tokio::task::spawn_blocking(move || l.truncate_before(done)).await;
                        buffer.clear();
                        buffered = 0;
                        backoff = Duration::from_millis(200);
                    }
                    Err(e) => {
                        tracing::warn!(stream = %name, error = %e.message, "delivery failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
                continue;
            }
            let wait = match buffer.first() {
                Some(r) => {
                    Duration::from_millis((r.timestamp_millis + interval_millis - now).clamp(1, 500) as u64)
                }
                None => MAX_WAIT,
            };
            tokio::select! {
                _ = tip.changed() => {}
                _ = waker.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// DeliveryToS3.* / DeliveryToHttpEndpoint.*, as Firehose publishes them per delivery.
    fn delivery_metrics(
        &self,
        stream: &DeliveryStream,
        kind: &str,
        ok: bool,
        buffer: &[LogRecord],
        bytes: u64,
        now: i64,
    ) {
        let (success, records, size, freshness) = match kind {
            "S3" => (
                "DeliveryToS3.Success",
                "DeliveryToS3.Records",
                "DeliveryToS3.Bytes",
                "DeliveryToS3.DataFreshness",
            ),
            _ => (
                "DeliveryToHttpEndpoint.Success",
                "DeliveryToHttpEndpoint.Records",
                "DeliveryToHttpEndpoint.Bytes",
                "DeliveryToHttpEndpoint.DataFreshness",
            ),
        };
        let oldest = buffer.iter().map(|r| r.timestamp_millis).min().unwrap_or(now);
        let mut values = vec![
            (success, "Count", if ok { 1.0 } else { 0.0 }),
            (freshness, "Seconds", ((now - oldest).max(0) as f64) / 1000.0),
        ];
        if ok {
            values.push((records, "Count", buffer.len() as f64));
            values.push((size, "Bytes", bytes as f64));
        }
        self.metrics.record_many(
            &stream.account,
            &stream.region,
            "AWS/Firehose",
            &[("DeliveryStreamName", &stream.name)],
            &values,
        );
    }

    /// Writes an object as the stream's account: another account's bucket is AccessDenied.
    /// Writes one delivered object, and logs it (one line per object, at the default level).
    async fn put(
        &self,
        stream: &DeliveryStream,
        bucket: &str,
        key: String,
        data: Vec<u8>,
        records: usize,
    ) -> Result<(), ServiceError> {
        let bytes = data.len();
        self.lake
            .acting_for(&stream.account)
            .put(bucket, &key, Bytes::from(data), PutOptions::default())
            .await?;
        tracing::info!(stream = %stream.name, object = %format!("s3://{bucket}/{key}"), records, bytes, "Firehose delivered");
        Ok(())
    }

    /// Runs a buffer through the destination's processors (the Lambda processor included).
    async fn process(
        &self,
        stream: &DeliveryStream,
        processing: &process::Processing,
        raw: Vec<Incoming>,
    ) -> (Vec<Outgoing>, Vec<Failed>) {
        let arn = format!(
            "arn:aws:firehose:{}:{}:deliverystream/{}",
            stream.region, stream.account, stream.name
        );
        let caller = crate::transform::Caller {
            stream_arn: &arn,
            region: &stream.region,
            source_arn: stream.kinesis_source.as_ref().map(|k| k.stream_arn.as_str()),
        };
        crate::transform::process_all(processing, self.functions.as_ref(), &caller, raw).await
    }

    /// Writes one buffer's worth of records.
    async fn deliver(
        &self,
        stream: &DeliveryStream,
        dest: &S3Destination,
        records: &[LogRecord],
    ) -> Result<(), ServiceError> {
        let raw: Vec<Incoming> = records.iter().map(Incoming::from_log).collect();
        if let Some(backup) = &dest.backup {
            let oldest = raw.iter().map(|r| r.arrival_millis).min().unwrap_or(0);
            let body: Vec<u8> = raw.iter().flat_map(|r| r.data.iter().copied()).collect();
            let key = self.object_key(stream, backup, backup_prefix(backup, oldest), oldest);
            self.put(
                stream,
                &backup.bucket,
                key.clone(),
                backup.compression.compress(&body, &key),
                raw.len(),
            )
            .await?;
        }
        let (ok, failed) = self.process(stream, &dest.processing, raw).await;
        // Records of one object share their partition keys.
        let mut groups: BTreeMap<BTreeMap<String, String>, Vec<Outgoing>> = BTreeMap::new();
        for r in ok {
            groups.entry(r.keys.clone()).or_default().push(r);
        }
        let mut conversion_failures = Vec::new();
        for (keys, group) in groups {
            let oldest = group.iter().map(|r| r.arrival_millis).min().unwrap_or(0);
            let prefix = dest.prefix.evaluate(oldest, dest.time_zone, "", &keys);
            let key = self.object_key(stream, dest, prefix, oldest);
            let body = match &dest.conversion {
                Some(conv) => {
                    let (body, failures) = self.convert(stream, conv, &group)?;
                    conversion_failures.extend(failures);
                    match body {
                        Some(b) => b,
                        None => continue,
                    }
                }
                None => {
                    let data: Vec<u8> = group.iter().flat_map(|r| r.data.iter().copied()).collect();
                    dest.compression.compress(&data, &key)
                }
            };
            self.put(stream, &dest.bucket, key, body, group.len()).await?;
        }
        self.write_errors(stream, dest, "processing-failed", &failed, None)
            .await?;
        let table = dest.conversion.as_ref();
        self.write_errors(
            stream,
            dest,
            "format-conversion-failed",
            &conversion_failures,
            table,
        )
        .await?;
        Ok(())
    }

    /// Posts a buffer to an HTTP endpoint, retrying for the configured duration; what is not
    /// accepted by then goes to S3 under the `http-endpoint-failed` error type.
    async fn deliver_http(
        &self,
        stream: &DeliveryStream,
        dest: &HttpDestination,
        records: &[LogRecord],
    ) -> Result<(), ServiceError> {
        let raw: Vec<Incoming> = records.iter().map(Incoming::from_log).collect();
        if dest.all_data_to_s3 {
            let oldest = raw.iter().map(|r| r.arrival_millis).min().unwrap_or(0);
            let body: Vec<u8> = raw.iter().flat_map(|r| r.data.iter().copied()).collect();
            let key = self.object_key(stream, &dest.s3, backup_prefix(&dest.s3, oldest), oldest);
            self.put(
                stream,
                &dest.s3.bucket,
                key.clone(),
                dest.s3.compression.compress(&body, &key),
                raw.len(),
            )
            .await?;
        }
        let (ok, failed) = self.process(stream, &dest.processing, raw).await;
        self.write_errors(stream, &dest.s3, "processing-failed", &failed, None)
            .await?;
        if ok.is_empty() {
            return Ok(());
        }
        let data: Vec<Vec<u8>> = ok.iter().map(|r| r.data.clone()).collect();
        let started = self.streams.now();
        let mut backoff = Duration::from_millis(100);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let error = match http::post(dest, &stream.arn(), &data, self.streams.now()).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let elapsed = self.streams.now() - started;
            if elapsed >= dest.retry_millis {
                tracing::warn!(stream = %stream.name, attempts, error = %error, "HTTP endpoint delivery failed; records go to S3");
                let failed: Vec<Failed> = ok
                    .iter()
                    .map(|r| Failed {
                        data: r.data.clone(),
                        arrival_millis: r.arrival_millis,
                        code: "HttpEndpoint.InvalidResponseFromDestination".into(),
                        message: error.clone(),
                        lambda: None,
                    })
                    .collect();
                return self
                    .write_errors(stream, &dest.s3, "http-endpoint-failed", &failed, None)
                    .await;
            }
            let left = Duration::from_millis((dest.retry_millis - elapsed).max(1) as u64);
            tokio::time::sleep(backoff.min(left)).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }

    fn object_key(
        &self,
        stream: &DeliveryStream,
        dest: &S3Destination,
        prefix: String,
        oldest: i64,
    ) -> String {
        format!(
            "{prefix}{}{}",
            suffix(&stream.name, stream.version, oldest, dest.time_zone),
            dest.extension()
        )
    }

    fn convert(
        &self,
        stream: &DeliveryStream,
        conv: &Conversion,
        group: &[Outgoing],
    ) -> Result<(Option<Vec<u8>>, Vec<Failed>), ServiceError> {
        let scope = Scope::new(
            conv.catalog_id.clone().unwrap_or_else(|| stream.account.clone()),
            conv.region.clone().unwrap_or_else(|| stream.region.clone()),
        );
        let table = match self.catalog.get_table(&scope, &conv.database, &conv.table) {
            Ok(t) => t,
            Err(e) => {
                let failed = group
                    .iter()
                    .map(|r| Failed {
                        data: r.data.clone(),
                        arrival_millis: r.arrival_millis,
                        code: "DataFormatConversion.NonExistentTable".into(),
                        message: e.message.clone(),
                        lambda: None,
                    })
                    .collect();
                return Ok((None, failed));
            }
        };
        Ok(crate::columnar::write(&table, conv, group))
    }

    /// Failed records go under the error prefix, one JSON document per line, as Firehose
    /// writes them.
    async fn write_errors(
        &self,
        stream: &DeliveryStream,
        dest: &S3Destination,
        error_type: &str,
        failed: &[Failed],
        conv: Option<&Conversion>,
    ) -> Result<(), ServiceError> {
        if failed.is_empty() {
            return Ok(());
        }
        let now = self.streams.now();
        let oldest = failed.iter().map(|f| f.arrival_millis).min().unwrap_or(now);
        let mut body = Vec::new();
        for f in failed {
            let doc = match conv {
                Some(c) => json!({
                    "attemptsMade": 1,
                    "arrivalTimestamp": f.arrival_millis,
                    "lastErrorCode": f.code,
                    "lastErrorMessage": f.message,
                    "attemptEndingTimestamp": now,
                    "rawData": B64.encode(&f.data),
                    "sequenceNumber": null,
                    "subSequenceNumber": null,
                    "dataCatalogTable": {
                        "catalogId": c.catalog_id, "databaseName": c.database, "tableName": c.table,
                        "region": c.region, "versionId": c.version_id, "roleArn": c.role_arn,
                    },
                }),
                None => {
                    let mut doc = json!({
                        "attemptsMade": f.lambda.as_ref().map_or(1, |l| l.1),
                        "arrivalTimestamp": f.arrival_millis,
                        "errorCode": f.code,
                        "errorMessage": f.message,
                        "attemptEndingTimestamp": now,
                        "rawData": B64.encode(&f.data),
                    });
                    if let Some((arn, _)) = &f.lambda {
                        doc["lambdaArn"] = json!(arn);
                    }
                    doc
                }
            };
            body.extend_from_slice(doc.to_string().as_bytes());
            body.push(b'\n');
        }
        let prefix = error_key_prefix(dest, error_type, oldest);
        let key = format!(
            "{prefix}{}",
            suffix(&stream.name, stream.version, oldest, dest.time_zone)
        );
        self.put(stream, &dest.bucket, key, body, failed.len()).await
    }
}

fn backup_prefix(backup: &S3Destination, oldest: i64) -> String {
    backup
        .prefix
        .evaluate(oldest, backup.time_zone, "", &BTreeMap::new())
}
