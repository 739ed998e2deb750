//! Test-only surface (hidden `--enable-test-routes`), used by Lakebox's own end-to-end tests to
//! drive the store primitives through real requests and to provoke faults:
//!
//! - `POST /_lakebox/test/log` appends the body as one record → `{"offset": n}`;
//!   `GET /_lakebox/test/log?from=N&limit=M` reads records back (payloads base64).
//! - `PUT|GET /_lakebox/test/kv/<key>`: the metadata store.
//! - `PUT|GET /_lakebox/test/blob/<name>`: atomic blob files.
//! - `POST /_lakebox/test/panic`: a handler that panics.
//! - `POST /_lakebox/test/clock?advance_ms=N`: moves the server's clock forward by N ms.
//! - awsJson/CBOR service `LakeboxTest_20260101` with `Echo` (round-trips blobs, timestamps and
//!   optional members through the codecs) and `Panic`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use lakebox_core::{Clock, OffsetClock, RequestContext, ServiceError};
use lakebox_gateway::Registry;
use lakebox_gateway::catalog::{Protocol, ServiceEntry};
use lakebox_protocol::{Blob, Timestamp};
use lakebox_service::body::{Body, full};
use lakebox_service::{BoxFuture, HttpService, RpcRequest, RpcResponse, RpcService};
use lakebox_store::{Log, LogConfig, LogEntry, MetaStore, blob};
use serde::{Deserialize, Serialize};

const MAX_TEST_BODY: usize = 8 * 1024 * 1024;

pub fn install(registry: &mut Registry, dir: &Path, clock: OffsetClock) -> lakebox_store::Result<()> {
    let routes = Arc::new(TestRoutes {
        log: Log::open(&dir.join("log"), LogConfig::default())?,
        kv: MetaStore::open(&dir.join("meta.redb"))?,
        blobs: dir.join("blobs"),
        clock,
    });
    registry.test_routes(routes);
    registry.add_entry(ServiceEntry {
        name: "lakebox-test",
        signing_name: "lakeboxtest",
        protocols: &[Protocol::AwsJson],
        target_prefix: Some("LakeboxTest_20260101"),
        query_version: None,
        path_prefix: None,
        xml_namespace: None,
        max_body_bytes: Some(1024 * 1024),
    });
    registry.rpc("lakebox-test", Arc::new(TestService));
    Ok(())
}

struct TestRoutes {
    log: Log,
    kv: MetaStore,
    blobs: PathBuf,
    clock: OffsetClock,
}

fn json(status: StatusCode, v: serde_json::Value) -> Response<Body> {
    lakebox_service::body::json_response(status, &v)
}

fn store_err(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal(e.to_string())
}

/// Keys and names must stay inside their directory.
fn safe_name(name: &str) -> Result<&str, ServiceError> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(ServiceError::validation(format!("invalid name '{name}'")));
    }
    Ok(name)
}

impl HttpService for TestRoutes {
    fn call(
        self: Arc<Self>,
        _ctx: RequestContext,
        req: http::Request<Body>,
    ) -> BoxFuture<Result<Response<Body>, ServiceError>> {
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let path = parts.uri.path().trim_start_matches("/_lakebox/test/").to_owned();
            let query = parts.uri.query().unwrap_or("").to_owned();
            let body = read_body(body).await?;
            let param = |name: &str| -> Option<u64> {
                query
                    .split('&')
                    .find_map(|p| p.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            };
            match (&parts.method, path.split_once('/').unwrap_or((path.as_str(), ""))) {
                (&Method::POST, ("log", "")) => {
                    let entry = LogEntry {
                        timestamp_millis: self.clock.now_millis(),
                        payload: body.to_vec(),
                    };
                    let range = self.log.append(vec![entry]).await.map_err(store_err)?;
                    Ok(json(StatusCode::OK, serde_json::json!({ "offset": range.start })))
                }
                (&Method::GET, ("log", "")) => {
                    let from = param("from").unwrap_or(0);
                    let limit = param("limit").unwrap_or(1000) as usize;
                    let this = self.clone();
                    let records = tokio::task::spawn_blocking(move || this.log.read(from, limit, 64 << 20))
                        .await
                        .map_err(store_err)?
                        .map_err(store_err)?;
                    let records: Vec<_> = records
                        .into_iter()
                        .map(|r| serde_json::json!({"offset": r.offset, "data": Blob(r.payload).to_base64()}))
                        .collect();
                    Ok(json(
                        StatusCode::OK,
                        serde_json::json!({ "records": records, "nextOffset": self.log.next_offset() }),
                    ))
                }
                (&Method::PUT, ("kv", key)) => {
                    let key = safe_name(key)?.to_owned();
                    let this = self.clone();
                    tokio::task::spawn_blocking(move || this.kv.put("test", key.as_bytes(), &body))
                        .await
                        .map_err(store_err)?
                        .map_err(store_err)?;
                    Ok(json(StatusCode::OK, serde_json::json!({})))
                }
                (&Method::GET, ("kv", key)) => {
                    match self.kv.get("test", key.as_bytes()).map_err(store_err)? {
                        Some(v) => Ok(Response::new(full(v))),
                        None => Ok(json(
                            StatusCode::NOT_FOUND,
                            serde_json::json!({"message": "no such key"}),
                        )),
                    }
                }
                (&Method::PUT, ("blob", name)) => {
                    let path = self.blobs.join(safe_name(name)?);
                    tokio::task::spawn_blocking(move || blob::write_atomic(&path, &body))
                        .await
                        .map_err(store_err)?
                        .map_err(store_err)?;
                    Ok(json(StatusCode::OK, serde_json::json!({})))
                }
                (&Method::GET, ("blob", name)) => match std::fs::read(self.blobs.join(safe_name(name)?)) {
                    Ok(v) => Ok(Response::new(full(v))),
                    Err(_) => Ok(json(
                        StatusCode::NOT_FOUND,
                        serde_json::json!({"message": "no such blob"}),
                    )),
                },
                (&Method::POST, ("panic", "")) => panic!("deliberate panic from /_lakebox/test/panic"),
                (&Method::POST, ("clock", "")) => {
                    let by = query
                        .split('&')
                        .find_map(|p| p.strip_prefix("advance_ms=")?.parse::<i64>().ok())
                        .ok_or_else(|| ServiceError::validation("advance_ms=<milliseconds> is required"))?;
                    self.clock.advance_millis(by);
                    Ok(json(
                        StatusCode::OK,
                        serde_json::json!({ "offsetMillis": self.clock.offset_millis() }),
                    ))
                }
                _ => Err(ServiceError::new(
                    "NotFound",
                    404,
                    format!("no test route {} /_lakebox/test/{path}", parts.method),
                )),
            }
        })
    }
}

async fn read_body(mut body: Body) -> Result<Bytes, ServiceError> {
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ServiceError::client("IncompleteBody", e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() > MAX_TEST_BODY {
                return Err(ServiceError::new(
                    "RequestEntityTooLargeException",
                    413,
                    "test body too large",
                ));
            }
        }
    }
    Ok(buf.into())
}

struct TestService;

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Echo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Blob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    items: Option<Vec<String>>,
}

impl RpcService for TestService {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RpcRequest,
    ) -> BoxFuture<Result<RpcResponse, ServiceError>> {
        Box::pin(async move {
            match req.operation.as_str() {
                "Echo" => {
                    let input: Echo = req.decode()?;
                    req.reply(&input)
                }
                "Panic" => panic!("deliberate panic in request {}", ctx.request_id),
                other => Err(ServiceError::client(
                    "UnknownOperationException",
                    format!("Operation {other} is not supported by LakeboxTest."),
                )),
            }
        })
    }
}
