//! StartLiveTail: events as they arrive, over an event stream. The session opens with a
//! `sessionStart` event, then sends a `sessionUpdate` each second with the events ingested
//! since (at most 500 — more are sampled down and the update says `sampled`), and ends after
//! three hours with a SessionTimeoutException, as CloudWatch Logs does.
//!
//! PutLogEvents hands each stored batch to a broadcast channel only while a session listens,
//! so the data path pays nothing when nobody tails.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::eventstream;
use lakebox_protocol::rpc::RpcEncoding;
use lakebox_service::RpcResponse;
use tokio::sync::{broadcast, mpsc};

use crate::api::*;
use crate::errors::*;
use crate::groups::{existing, group_name_of};
use crate::pattern::Pattern;
use crate::store::{Group, GroupKey, Store};

/// Events one update carries at most.
const MAX_UPDATE_EVENTS: usize = 500;
const UPDATE_EVERY: Duration = Duration::from_secs(1);
const SESSION: Duration = Duration::from_secs(3 * 3600);
/// Batches a slow session may fall behind by before it samples.
const BACKLOG: usize = 4096;

/// One PutLogEvents' stored events, as sessions see them.
pub struct Batch {
    pub group: GroupKey,
    pub group_arn: String,
    pub stream: String,
    pub ingestion: i64,
    pub events: Vec<(i64, String)>,
}

pub struct Tail {
    tx: broadcast::Sender<Arc<Batch>>,
}

impl Default for Tail {
    fn default() -> Self {
        Tail {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Tail {
    /// Whether any session listens (the caller builds a batch only then).
    pub fn listening(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn publish(&self, batch: Batch) {
        let _ = self.tx.send(Arc::new(batch));
    }
}

pub fn start(
    store: &Store,
    tail: &Tail,
    ctx: &RequestContext,
    input: StartLiveTailRequest,
    encoding: RpcEncoding,
) -> Result<RpcResponse, ServiceError> {
    let by_stream = input.log_stream_names.is_some() || input.log_stream_name_prefixes.is_some();
    if input.log_stream_names.is_some() && input.log_stream_name_prefixes.is_some() {
        return Err(invalid_parameter(
            "logStreamNames and logStreamNamePrefixes are mutually exclusive parameters.",
        ));
    }
    if by_stream && input.log_group_identifiers.len() > 1 {
        return Err(invalid_parameter(
            "Only one log group can be specified when logStreamNames or logStreamNamePrefixes is used.",
        ));
    }
    let pattern = Pattern::parse(input.log_event_filter_pattern.as_deref().unwrap_or(""))
        .map_err(|_| invalid_pattern())?;
    let groups: Vec<Arc<Group>> = input
        .log_group_identifiers
        .iter()
        .map(|id| existing(store, ctx, &group_name_of(id)))
        .collect::<Result<_, _>>()?;
    let wanted: Vec<GroupKey> = groups.iter().map(|g| g.key.clone()).collect();
    let mut rx = tail.tx.subscribe();
    let (tx, body) = mpsc::channel::<std::io::Result<Bytes>>(8);
    let content_type = encoding.content_type();
    let start = LiveTailSessionStart {
        request_id: Some(ctx.request_id.clone()),
        session_id: Some(uuid::Uuid::new_v4().to_string()),
        log_group_identifiers: Some(input.log_group_identifiers.clone()),
        log_stream_names: input.log_stream_names.clone(),
        log_stream_name_prefixes: input.log_stream_name_prefixes.clone(),
        log_event_filter_pattern: input.log_event_filter_pattern.clone(),
    };
    let streams = input.log_stream_names.clone();
    let prefixes = input.log_stream_name_prefixes.clone();
    tokio::spawn(async move {
        let send = |msg: Vec<u8>| {
            let tx = tx.clone();
            async move { tx.send(Ok(Bytes::from(msg))).await.is_ok() }
        };
        let (Ok(initial), Ok(start)) = (
            encoding.encode(&StartLiveTailResponse::default()),
            encoding.encode(&start),
        ) else {
            return;
        };
        if !send(eventstream::event("initial-response", content_type, &initial)).await
            || !send(eventstream::event("sessionStart", content_type, &start)).await
        {
            return;
        }
        let deadline = tokio::time::Instant::now() + SESSION;
        let mut tick = tokio::time::interval(UPDATE_EVERY);
        tick.tick().await;
        loop {
            if tokio::time::Instant::now() >= deadline {
                let timeout = SessionTimeoutException {
                    message: Some("Session timed out after 3 hours.".into()),
                };
                if let Ok(payload) = encoding.encode(&timeout) {
                    let _ = send(eventstream::encode_message(
                        &[
                            (":message-type", "exception"),
                            (":exception-type", "SessionTimeoutException"),
                            (":content-type", content_type),
                        ],
                        &payload,
                    ))
                    .await;
                }
                return;
            }
            tick.tick().await;
            let mut results = Vec::new();
            let mut sampled = false;
            loop {
                match rx.try_recv() {
                    Ok(batch) => {
                        if !wanted.contains(&batch.group) {
                            continue;
                        }
                        let stream_ok = streams.as_ref().is_none_or(|n| n.contains(&batch.stream))
                            && prefixes
                                .as_ref()
                                .is_none_or(|p| p.iter().any(|p| batch.stream.starts_with(p.as_str())));
                        if !stream_ok {
                            continue;
                        }
                        for (ts, message) in &batch.events {
                            if !pattern.matches(message) {
                                continue;
                            }
                            if results.len() >= MAX_UPDATE_EVENTS {
                                sampled = true;
                                continue;
                            }
                            results.push(LiveTailSessionLogEvent {
                                log_stream_name: Some(batch.stream.clone()),
                                log_group_identifier: Some(batch.group_arn.clone()),
                                message: Some(message.clone()),
                                timestamp: Some(*ts),
                                ingestion_time: Some(batch.ingestion),
                            });
                        }
                    }
                    Err(broadcast::error::TryRecvError::Lagged(_)) => sampled = true,
                    Err(broadcast::error::TryRecvError::Empty) => break,
                    Err(broadcast::error::TryRecvError::Closed) => return,
                }
            }
            let update = LiveTailSessionUpdate {
                session_metadata: Some(LiveTailSessionMetadata {
                    sampled: Some(sampled),
                }),
                session_results: Some(results),
            };
            let Ok(payload) = encoding.encode(&update) else {
                return;
            };
            if !send(eventstream::event("sessionUpdate", content_type, &payload)).await {
                return; // the client went away
            }
        }
    });
    Ok(RpcResponse::streaming(
        encoding,
        eventstream::CONTENT_TYPE,
        lakebox_service::body::channel_body(body, None),
    ))
}
