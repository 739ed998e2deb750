//! Export to S3 (CreateExportTask) in AWS's layout: a test object `aws-logs-write-test` under
//! the prefix when the task is created, then one gzip object per log stream at
//! `<prefix>/<task id>/<stream>/000000.gz`, each line `<ISO-8601 timestamp> <message>`.
//! One task per account runs at a time, as in AWS.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use lakebox_service::lake::{Lake, PutOptions};
use serde::{Deserialize, Serialize};

use crate::api::*;
use crate::errors::*;
use crate::groups::existing;
use crate::store::{Store, internal};

const EXPORTS: &str = "exports";
const DEFAULT_PREFIX: &str = "exportedlogs";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    account: String,
    region: String,
    task: ExportTask,
}

fn export_key(account: &str, id: &str) -> Vec<u8> {
    format!("{account}\0{id}").into_bytes()
}

fn tasks_of(store: &Store, account: &str) -> Result<Vec<Stored>, ServiceError> {
    Ok(store
        .meta
        .scan_prefix(EXPORTS, format!("{account}\0").as_bytes(), None, usize::MAX)
        .map_err(internal)?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
        .collect())
}

async fn save(store: &Store, s: &Stored) -> Result<(), ServiceError> {
    let k = export_key(&s.account, s.task.task_id.as_deref().unwrap_or_default());
    let v = serde_json::to_vec(s).map_err(internal)?;
    store
        .meta
        .write_async(move |b| b.put(EXPORTS, &k, &v))
        .await
        .map_err(internal)
}

fn status(code: ExportTaskStatusCode, message: &str) -> Option<ExportTaskStatus> {
    Some(ExportTaskStatus {
        code: Some(code),
        message: Some(message.to_owned()),
    })
}

fn active(t: &ExportTask) -> bool {
    matches!(
        t.status.as_ref().and_then(|s| s.code.as_ref()),
        Some(ExportTaskStatusCode::Pending | ExportTaskStatusCode::Running)
    )
}

pub async fn create(
    store: &Arc<Store>,
    lake: Option<&Lake>,
    ctx: &RequestContext,
    input: CreateExportTaskRequest,
) -> Result<CreateExportTaskResponse, ServiceError> {
    let lake = lake
        .ok_or_else(|| ServiceError::internal("CloudWatch Logs has no S3 to export to"))?
        .acting_for(&ctx.account_id);
    if input.from > input.to {
        return Err(invalid_parameter(
            "The value of the parameter 'to' must be greater than or equal to the value of 'from'.",
        ));
    }
    existing(store, ctx, &input.log_group_name)?;
    if tasks_of(store, &ctx.account_id)?.iter().any(|s| active(&s.task)) {
        return Err(ServiceError::client(
            "LimitExceededException",
            "Resource limit exceeded.",
        ));
    }
    let prefix = input
        .destination_prefix
        .clone()
        .unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
    let prefix = prefix.trim_matches('/').to_owned();
    // AWS proves it can write to the bucket before it accepts the task.
    let test_key = if prefix.is_empty() {
        "aws-logs-write-test".to_owned()
    } else {
        format!("{prefix}/aws-logs-write-test")
    };
    lake.put(
        &input.destination,
        &test_key,
        Bytes::from_static(b"Permission Check Successful"),
        PutOptions::default(),
    )
    .await
    .map_err(|_| {
        invalid_parameter(
            "GetBucketAcl call on the given bucket failed. Please check if CloudWatch Logs has been granted permission to perform this operation.",
        )
    })?;
    let id = uuid::Uuid::new_v4().to_string();
    let stored = Stored {
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        task: ExportTask {
            task_id: Some(id.clone()),
            task_name: input.task_name.clone(),
            log_group_name: Some(input.log_group_name.clone()),
            from: Some(input.from),
            to: Some(input.to),
            destination: Some(input.destination.clone()),
            destination_prefix: Some(prefix.clone()),
            status: status(ExportTaskStatusCode::Pending, "Pending"),
            execution_info: Some(ExportTaskExecutionInfo {
                creation_time: Some(store.now()),
                completion_time: None,
            }),
        },
    };
    save(store, &stored).await?;
    let (store, ctx, task_id) = (store.clone(), ctx.clone(), id.clone());
    tokio::spawn(async move {
        let mut s = stored;
        s.task.status = status(ExportTaskStatusCode::Running, "Running");
        let _ = save(&store, &s).await;
        let result = run(&store, &lake, &ctx, &input, &prefix, &id).await;
        // A cancel that came while running wins.
        let cancelled = tasks_of(&store, &s.account).ok().into_iter().flatten().any(|t| {
            t.task.task_id == s.task.task_id
                && matches!(
                    t.task.status.as_ref().and_then(|x| x.code.as_ref()),
                    Some(ExportTaskStatusCode::Cancelled)
                )
        });
        if cancelled {
            return;
        }
        s.task.status = match result {
            Ok(()) => status(ExportTaskStatusCode::Completed, "Completed successfully"),
            Err(e) => status(ExportTaskStatusCode::Failed, &e.message),
        };
        if let Some(info) = &mut s.task.execution_info {
            info.completion_time = Some(store.now());
        }
        if let Err(e) = save(&store, &s).await {
            tracing::warn!("could not record the end of export task {id}: {e}");
        }
    });
    Ok(CreateExportTaskResponse {
        task_id: Some(task_id),
    })
}

/// Writes each stream's events in [from, to] (by timestamp) to the bucket.
async fn run(
    store: &Store,
    lake: &Lake,
    ctx: &RequestContext,
    input: &CreateExportTaskRequest,
    prefix: &str,
    id: &str,
) -> Result<(), ServiceError> {
    let group = existing(store, ctx, &input.log_group_name)?;
    let retained_from = group.retained_from(store.now());
    let streams = group.streams_with_prefix(input.log_stream_name_prefix.as_deref());
    for stream in streams {
        let body = {
            let data = stream.data.read().unwrap();
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let mut any = false;
            for e in data
                .since(input.from.max(retained_from))
                .take_while(|e| e.timestamp <= input.to)
            {
                any = true;
                let ts = Timestamp::from_millis(e.timestamp).to_iso8601();
                writeln!(gz, "{ts} {}", e.message()).map_err(internal)?;
            }
            if !any {
                continue;
            }
            gz.finish().map_err(internal)?
        };
        let key = if prefix.is_empty() {
            format!("{id}/{}/000000.gz", stream.name)
        } else {
            format!("{prefix}/{id}/{}/000000.gz", stream.name)
        };
        lake.put(
            input.destination.as_str(),
            &key,
            Bytes::from(body),
            PutOptions {
                content_type: Some("application/octet-stream".into()),
                ..PutOptions::default()
            },
        )
        .await?;
    }
    Ok(())
}

pub fn describe(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeExportTasksRequest,
) -> Result<DescribeExportTasksResponse, ServiceError> {
    let mut tasks: Vec<ExportTask> = tasks_of(store, &ctx.account_id)?
        .into_iter()
        .map(|s| s.task)
        .filter(|t| {
            input
                .task_id
                .as_ref()
                .is_none_or(|id| t.task_id.as_ref() == Some(id))
        })
        .filter(|t| {
            input
                .status_code
                .as_ref()
                .is_none_or(|c| t.status.as_ref().and_then(|s| s.code.as_ref()) == Some(c))
        })
        .collect();
    tasks.sort_by_key(|t| t.execution_info.as_ref().and_then(|i| i.creation_time));
    let limit = input.limit.map_or(50, |l| l as usize);
    let (page, next) = lakebox_core::paging::page(
        tasks,
        |t| {
            format!(
                "{:020}{}",
                t.execution_info
                    .as_ref()
                    .and_then(|i| i.creation_time)
                    .unwrap_or(0),
                t.task_id.clone().unwrap_or_default()
            )
        },
        input.next_token.as_deref(),
        limit,
    )
    .map_err(|_| invalid_token())?;
    Ok(DescribeExportTasksResponse {
        export_tasks: Some(page),
        next_token: next,
    })
}

pub async fn cancel(store: &Store, ctx: &RequestContext, task_id: &str) -> Result<(), ServiceError> {
    let Some(mut s) = tasks_of(store, &ctx.account_id)?
        .into_iter()
        .find(|s| s.task.task_id.as_deref() == Some(task_id))
    else {
        return Err(ServiceError::client(
            "ResourceNotFoundException",
            "The specified export task does not exist.",
        ));
    };
    if !active(&s.task) {
        let code = s
            .task
            .status
            .as_ref()
            .and_then(|x| x.code.as_ref())
            .map_or("UNKNOWN", |c| c.as_str())
            .to_owned();
        return Err(ServiceError::client(
            "InvalidOperationException",
            format!("The export task can not be cancelled in the current state: {code}"),
        ));
    }
    s.task.status = status(ExportTaskStatusCode::Cancelled, "Cancelled by user");
    save(store, &s).await
}
