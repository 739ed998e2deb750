//! The HTTP server and the per-request pipeline: classify → read body → authenticate →
//! dispatch (in its own task) → render.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Body as HttpBody;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use lakebox_core::{Clock, DEFAULT_ACCOUNT_ID, RequestContext, ServiceError, ids};
use lakebox_protocol::query::{QueryRequest, parse_form};
use lakebox_protocol::rpc::RpcEncoding;
use lakebox_protocol::sigv4::{self, AuthError, Authorization, RequestParts};
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::classify::{Route, classify};
use crate::registry::Registry;
use crate::respond::{ErrorShape, add_request_ids, error_response};
use lakebox_service::body::{Body, BodyError, BoxError, full, read_limited};
use lakebox_service::{OperationName, PeerAddr, RpcRequest, VirtualHostBucket};

/// Body limit for awsJson requests to a target no service claims (they are refused anyway;
/// this only bounds what is read first).
const UNKNOWN_SERVICE_MAX_BODY: u64 = 1024 * 1024;

pub struct GatewayConfig {
    /// Region for requests that carry no SigV4 credential scope.
    pub default_region: String,
    /// Extra members of the health document (version, data directory, …), shown only to
    /// callers who may see them (see `health_details_public`).
    pub health_info: serde_json::Map<String, serde_json::Value>,
    /// Whether anyone may see the health document's details (data directory, authentication
    /// mode): only on a loopback address without credentials. Otherwise only a caller whose
    /// signature verifies sees them; others get the status and services.
    pub health_details_public: bool,
    /// How long a connection may take to send a request's headers, and how long it may sit
    /// idle between requests: a few hundred slow or silent clients must not hold the server's
    /// file descriptors for ever.
    pub header_read_timeout: Duration,
    /// Why the server cannot do all it should (a full disk, say), asked at each health check:
    /// the document then says `degraded` and gives the reason.
    pub degraded: Option<fn() -> Option<&'static str>>,
}

pub struct Gateway {
    registry: Registry,
    auth: Authenticator,
    /// The same credentials, for S3's POST-form signatures.
    form_auth: lakebox_protocol::form_auth::FormAuth,
    clock: Arc<dyn Clock>,
    config: GatewayConfig,
    stopping: AtomicBool,
}

/// A lossy decode of a URL query string into ordered pairs, for routing and signatures.
/// A `multipart/form-data` body: a browser's form upload.
fn is_form_upload(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("multipart/form-data"))
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// The error shape to use when we know nothing but the headers (for panics).
fn shape_from_headers(headers: &http::HeaderMap, path: &str) -> ErrorShape {
    if path.starts_with(crate::classify::INTERNAL_PREFIX) {
        return ErrorShape::Internal;
    }
    if headers.get("smithy-protocol").is_some_and(|v| v == "rpc-v2-cbor") {
        return ErrorShape::Rpc(RpcEncoding::RpcV2Cbor);
    }
    if headers.contains_key("x-amz-target") {
        let enc = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .and_then(RpcEncoding::from_content_type)
            .unwrap_or(RpcEncoding::Json11);
        return ErrorShape::Rpc(enc);
    }
    ErrorShape::S3
}

impl Gateway {
    pub fn new(
        registry: Registry,
        auth: Authenticator,
        clock: Arc<dyn Clock>,
        config: GatewayConfig,
    ) -> Arc<Self> {
        Arc::new(Gateway {
            registry,
            form_auth: auth.form_auth(),
            auth,
            clock,
            config,
            stopping: AtomicBool::new(false),
        })
    }

    /// Serves connections until `shutdown` resolves, then stops accepting, lets in-flight
    /// requests finish for up to `drain`, and returns.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        drain: Duration,
    ) -> std::io::Result<()> {
        let graceful = GracefulShutdown::new();
        let header_timeout = self.config.header_read_timeout;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        builder.http2().timer(TokioTimer::new());
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(s) => s,
                        Err(e) => {
                            // Out of file descriptors and the like: back off instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let gw = self.clone();
                    let activity = crate::idle::Activity::new();
                    let tracker = activity.clone();
                    let svc = service_fn(move |mut req: Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(PeerAddr(peer));
                        let gw = gw.clone();
                        let in_flight = tracker.begin();
                        let connection = tracker.clone();
                        async move {
                            // A client that hangs up stops the work done for it (a long S3
                            // Select, say): nobody would read the answer.
                            let resp = tokio::select! {
                                resp = gw.handle(req) => resp,
                                () = connection.client_gone() => Response::new(Body::default()),
                            };
                            Ok::<_, Infallible>(in_flight.answer(resp))
                        }
                    });
                    let watcher = graceful.watcher();
                    let builder = builder.clone();
                    tokio::spawn(async move {
                        // Telling HTTP/1 from HTTP/2 waits for the first bytes, before hyper's
                        // own header timeout runs: a client that connects and says nothing is
                        // let go after the same time.
                        let mut first = [0u8; 1];
                        match tokio::time::timeout(header_timeout, stream.peek(&mut first)).await {
                            Ok(Ok(n)) if n > 0 => {}
                            _ => return,
                        }
                        // Idle between requests (HTTP/2 included), the connection is let go too.
                        let io = crate::idle::IdleIo::new(stream, activity, header_timeout);
                        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
                        if let Err(e) = watcher.watch(conn.into_owned()).await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        self.stopping.store(true, Ordering::SeqCst);
        drop(listener);
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(drain) => {
                tracing::warn!("in-flight requests did not finish within {drain:?}; closing their connections");
            }
        }
        Ok(())
    }

    /// Handles one request. Never panics: a panic in the pipeline or a service becomes a 500.
    pub async fn handle<B>(self: Arc<Self>, req: Request<B>) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let request_id = ids::request_id();
        let shape = shape_from_headers(req.headers(), req.uri().path());
        let head = req.method() == Method::HEAD;
        let rid = request_id.clone();
        // The handler runs as its own task (so a panic costs one 500), aborted if this future
        // is dropped (the client went away).
        let task = AbortOnDrop(tokio::spawn(self.dispatch(req, rid)));
        match task.join().await {
            Ok(resp) => resp,
            Err(e) => {
                let what = if e.is_panic() {
                    panic_message(e.into_panic())
                } else {
                    "task cancelled".into()
                };
                tracing::error!(request_id = %request_id, panic = %what, "request handler panicked; answered 500");
                let err = ServiceError::internal("An internal error occurred while processing the request.");
                error_response(shape, &err, &request_id, head)
            }
        }
    }

    async fn dispatch<B>(self: Arc<Self>, req: Request<B>, request_id: String) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        let (mut parts, body) = req.into_parts();
        let path = parts.uri.path().to_owned();
        let raw_query = parts.uri.query().unwrap_or("").to_owned();
        let query = lakebox_protocol::rest_json::query_pairs(&raw_query);
        let head = parts.method == Method::HEAD;
        let expects_continue = parts.version <= http::Version::HTTP_11
            && parts
                .headers
                .get(http::header::EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let auth_read = sigv4::read_authorization(&parts.headers, &query);
        let signing_name = match &auth_read {
            Ok(Authorization::SigV4(s)) => Some(s.scope.service.clone()),
            _ => None,
        };
        let route = classify(
            &self.registry,
            &parts.method,
            &path,
            &query,
            &parts.headers,
            signing_name.as_deref(),
        );
        let shape = match &route {
            Route::Internal => return self.internal(parts, body, request_id, auth_read).await,
            Route::Rpc { encoding, .. } => ErrorShape::Rpc(*encoding),
            Route::Query { entry } => ErrorShape::Query(entry.and_then(|e| e.xml_namespace)),
            Route::RestJson { .. } | Route::FunctionUrl { .. } => ErrorShape::RestJson,
            Route::S3 { .. } => ErrorShape::S3,
            Route::Unrecognised { xml: true, .. } => ErrorShape::S3,
            Route::Unrecognised { xml: false, .. } => ErrorShape::RestJson,
        };
        // What a request refused before its service sees it was for: the X-Amz-Target or
        // Action when it names one, else the method and path (worked out only when debug lines
        // are written, so the data path pays nothing for it).
        let debug = tracing::enabled!(tracing::Level::DEBUG);
        let early_operation = if debug {
            match &route {
                Route::Rpc { operation, .. } => operation.clone(),
                _ => query
                    .iter()
                    .find(|(k, _)| k == "Action")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| format!("{} {}", parts.method, path)),
            }
        } else {
            String::new()
        };
        let fail = |err: ServiceError| {
            tracing::debug!(
                request_id = %request_id,
                operation = %early_operation,
                code = %err.code,
                status = err.status,
                "request refused"
            );
            let mut resp = error_response(shape, &err, &request_id, head);
            if expects_continue {
                // See below: an early answer to `Expect: 100-continue` ends the connection.
                resp.headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            resp
        };

        // Bodies of bounded protocols are read whole (within the limit) before anything else,
        // so signatures can cover them; S3 streams its own.
        let limit = match &route {
            Route::Rpc { entry, .. } => Some(
                entry
                    .and_then(|e| e.max_body_bytes)
                    .unwrap_or(UNKNOWN_SERVICE_MAX_BODY),
            ),
            Route::Query { entry } => Some(
                entry
                    .and_then(|e| e.max_body_bytes)
                    .unwrap_or(UNKNOWN_SERVICE_MAX_BODY),
            ),
            Route::RestJson { entry } | Route::FunctionUrl { entry, .. } => entry.max_body_bytes,
            Route::Unrecognised { .. } => Some(UNKNOWN_SERVICE_MAX_BODY),
            Route::S3 { .. } | Route::Internal => None,
        };
        let content_length = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let (body_bytes, stream) = match limit {
            Some(limit) => match read_limited(body, content_length, limit).await {
                Ok(b) => (Some(b), None),
                Err(BodyError::TooLarge { limit }) => return fail(too_large(shape, limit)),
                Err(BodyError::Read(e)) => {
                    return fail(ServiceError::client(
                        "IncompleteBody",
                        format!("Could not read the request body: {e}"),
                    ));
                }
            },
            None => (None, Some(body.map_err(Into::into).boxed_unsync())),
        };

        // Authenticate.
        let auth = match auth_read {
            Ok(a) => a,
            Err(e) => return fail(e.to_service_error(shape.auth_style())),
        };
        // The body's hash is part of what a signature covers: worked out only when signatures
        // are checked (a SHA-256 of every body, ~1 µs a KiB, would be spent for nothing).
        let payload_hash = match (&body_bytes, shape) {
            (Some(b), s) if s != ErrorShape::S3 && self.auth.is_verifying() => {
                let declared = parts
                    .headers
                    .get("x-amz-content-sha256")
                    .and_then(|v| v.to_str().ok());
                if declared == Some(sigv4::UNSIGNED_PAYLOAD) {
                    sigv4::UNSIGNED_PAYLOAD.to_owned()
                } else {
                    sigv4::payload_hash(&http::HeaderMap::new(), false, Some(b))
                }
            }
            _ => String::new(),
        };
        let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
        let virtual_host_bucket = match &route {
            Route::S3 {
                virtual_host_bucket: Some(b),
            } => Some(b.as_str()),
            _ => None,
        };
        // S3 decides unsigned requests itself: an anonymous caller gets what the bucket's
        // policy grants everyone (public buckets, form uploads a policy allows), and browsers
        // never sign a CORS preflight, which S3 answers from the bucket's rules whoever asks.
        let unsigned_s3 = matches!(route, Route::S3 { .. }) && matches!(auth, Authorization::Anonymous);
        // The links in SNS's messages (SubscribeURL, UnsubscribeURL) are visited unsigned, as
        // AWS serves them; SNS itself refuses an unsigned unsubscribe of a subscription
        // confirmed with AuthenticateOnUnsubscribe.
        // A function URL decides itself: one with AuthType NONE is public, AWS_IAM needs a
        // signed caller (a request without a valid signature reaches it marked anonymous).
        let function_url = matches!(route, Route::FunctionUrl { .. });
        let unsigned_sns_link = parts.method == Method::GET
            && matches!(&route, Route::Query { entry: Some(e) } if e.name == "sns")
            && matches!(auth, Authorization::Anonymous)
            && query
                .iter()
                .any(|(k, v)| k == "Action" && matches!(v.as_str(), "ConfirmSubscription" | "Unsubscribe"));
        let principal = match self
            .auth
            .authenticate(&auth, virtual_host_bucket, |presigned| RequestParts {
                method: parts.method.as_str(),
                raw_path: &path,
                raw_query: &raw_query,
                headers: &parts.headers,
                authority: authority.as_deref(),
                payload_hash: if payload_hash.is_empty() {
                    if presigned && !parts.headers.contains_key("x-amz-content-sha256") {
                        sigv4::UNSIGNED_PAYLOAD
                    } else {
                        parts
                            .headers
                            .get("x-amz-content-sha256")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or(sigv4::UNSIGNED_PAYLOAD)
                    }
                } else {
                    &payload_hash
                },
            }) {
            Ok(p) => p,
            Err(_) if unsigned_s3 => {
                parts.extensions.insert(lakebox_service::Anonymous);
                None
            }
            Err(_) if unsigned_sns_link => None,
            Err(_) if function_url => {
                parts.extensions.insert(lakebox_service::Anonymous);
                None
            }
            Err(e) => return fail(e.to_service_error(shape.auth_style())),
        };
        if function_url && principal.is_none() {
            parts.extensions.insert(lakebox_service::Anonymous);
        }
        // Streaming-signed bodies: S3 checks each chunk's signature as it reads the body.
        if parts
            .headers
            .get("x-amz-content-sha256")
            .is_some_and(|v| v.as_bytes().starts_with(sigv4::STREAMING_PAYLOAD.as_bytes()))
            && let Some(signer) = self.auth.chunk_signer(&auth)
        {
            parts.extensions.insert(signer);
        }
        if parts.method == Method::POST && matches!(route, Route::S3 { .. }) && is_form_upload(&parts.headers)
        {
            parts.extensions.insert(self.form_auth.clone());
        }
        let region = match &auth {
            Authorization::SigV4(s) if !s.scope.region.is_empty() => s.scope.region.clone(),
            _ => self.config.default_region.clone(),
        };
        let account_id = principal
            .as_ref()
            .map(|p| RequestContext::account_for_access_key(&p.access_key_id))
            .unwrap_or_else(|| DEFAULT_ACCOUNT_ID.to_owned());
        let ctx = RequestContext {
            request_id: request_id.clone(),
            account_id,
            region,
            principal,
            received_at_millis: self.clock.now_millis(),
            host: parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
                .or_else(|| parts.uri.authority().map(|a| a.to_string())),
        };

        // SDKs gzip large bodies of operations with the request-compression trait (CloudWatch's
        // PutMetricData); the signature covers the compressed bytes, checked above.
        let body_bytes = match (body_bytes, limit) {
            (Some(b), Some(limit)) if is_gzipped(&parts.headers) => match gunzip(&b, limit) {
                Ok(plain) => Some(plain),
                Err(e) => return fail(e.into_error(shape, limit)),
            },
            (b, _) => b,
        };
        let (service_name, operation, result) = match route {
            Route::Rpc {
                entry,
                operation,
                encoding,
            } => {
                let name = entry.map_or("unknown", |e| e.name);
                let result = match entry.and_then(|e| self.registry.rpc_service(e.name)) {
                    Some(svc) if !operation.is_empty() => {
                        let req = RpcRequest {
                            operation: operation.clone(),
                            encoding,
                            body: body_bytes.unwrap_or_default(),
                        };
                        svc.call(ctx, req).await.map(|r| {
                            let (content_type, body) = match r.stream {
                                Some((ct, stream)) => (ct, stream),
                                None => (r.encoding.content_type(), full(r.body)),
                            };
                            let mut resp = Response::new(body);
                            resp.headers_mut()
                                .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                            if r.encoding == RpcEncoding::RpcV2Cbor {
                                resp.headers_mut()
                                    .insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
                            }
                            resp
                        })
                    }
                    Some(_) => Err(unknown_operation(
                        entry.map(|e| e.name),
                        &operation,
                        parts.headers.get("x-amz-target"),
                    )),
                    None => match entry {
                        Some(e) => Err(ServiceError::client(
                            "UnknownOperationException",
                            format!(
                                "Lakebox does not implement {} yet (operation {operation}).",
                                e.name
                            ),
                        )),
                        None => Err(unknown_operation(
                            None,
                            &operation,
                            parts.headers.get("x-amz-target"),
                        )),
                    },
                };
                (name, operation, result)
            }
            Route::Query { entry } => {
                let mut params: BTreeMap<String, String> = query.into_iter().collect();
                let body = body_bytes.unwrap_or_default();
                if parts.method == Method::POST {
                    match parse_form(&body) {
                        Ok(form) => params.extend(form),
                        Err(e) => return fail(e),
                    }
                }
                let entry = entry.or_else(|| {
                    let v = params.get("Version")?;
                    self.registry
                        .entries()
                        .find(|e| e.query_version == Some(v.as_str()))
                });
                let req = match QueryRequest::from_params(params) {
                    Ok(r) => r.at_path(&path),
                    Err(e) => return fail(e),
                };
                let action = req.action.clone();
                let name = entry.map_or("unknown", |e| e.name);
                let result = match entry.and_then(|e| self.registry.query_service(e.name)) {
                    Some(svc) => svc.call(ctx, req).await.map(|xml| {
                        let mut resp = Response::new(full(xml));
                        resp.headers_mut()
                            .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
                        resp
                    }),
                    None => Err(ServiceError::client(
                        "InvalidAction",
                        match entry {
                            Some(e) => format!(
                                "The action {action} is not valid for this web service: Lakebox does not implement {} yet.",
                                e.name
                            ),
                            None => format!("The action {action} is not valid for this web service."),
                        },
                    )),
                };
                (name, action, result)
            }
            Route::RestJson { entry } | Route::FunctionUrl { entry, .. } => {
                let named = debug.then(OperationName::default);
                let result = match self.registry.http_service(entry.name) {
                    Some(svc) => {
                        let mut req =
                            Request::from_parts(parts.clone(), full(body_bytes.unwrap_or_default()));
                        if let Route::FunctionUrl { url_id, .. } = &route {
                            req.extensions_mut()
                                .insert(lakebox_service::FunctionUrlId(url_id.clone()));
                        }
                        if let Some(slot) = &named {
                            req.extensions_mut().insert(slot.clone());
                        }
                        svc.call(ctx, req).await
                    }
                    None => Err(ServiceError::new(
                        "UnknownOperationException",
                        404,
                        format!("Lakebox does not implement {} yet.", entry.name),
                    )),
                };
                (entry.name, operation_named(named.as_ref(), &parts), result)
            }
            Route::S3 { virtual_host_bucket } => {
                let named = debug.then(OperationName::default);
                let result = match self.registry.http_service("s3") {
                    Some(svc) => {
                        let body = stream.unwrap_or_else(lakebox_service::body::empty);
                        let mut req = Request::from_parts(parts.clone(), body);
                        if let Some(bucket) = virtual_host_bucket {
                            req.extensions_mut().insert(VirtualHostBucket(bucket));
                        }
                        if let Some(slot) = &named {
                            req.extensions_mut().insert(slot.clone());
                        }
                        svc.call(ctx, req).await
                    }
                    None => Err(ServiceError::new(
                        "NotImplemented",
                        501,
                        "Lakebox does not implement S3 yet.",
                    )),
                };
                ("s3", operation_named(named.as_ref(), &parts), result)
            }
            Route::Unrecognised { signing_name, .. } => {
                let operation = format!("{} {}", parts.method, parts.uri.path());
                let result = Err(ServiceError::new(
                    "UnknownOperationException",
                    404,
                    format!("Lakebox does not implement {signing_name} (request {operation})."),
                ));
                ("unknown", operation, result)
            }
            Route::Internal => unreachable!("internal routes returned above"),
        };
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => fail(e),
        };
        add_request_ids(resp.headers_mut(), &request_id, shape == ErrorShape::S3);
        // A final answer to `Expect: 100-continue` that never sent `100 Continue` (an error
        // before the body was read, or an empty body) leaves botocore's pooled connection
        // expecting the wrong status on its next request, which then stalls. Closing the
        // connection after such an answer keeps every client safe.
        let declared_empty = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0");
        if expects_continue && (declared_empty || !resp.status().is_success()) {
            resp.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        tracing::debug!(
            request_id = %request_id,
            service = service_name,
            operation = %operation,
            status = resp.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
        resp
    }

    async fn internal<B>(
        self: Arc<Self>,
        parts: http::request::Parts,
        body: B,
        request_id: String,
        auth: Result<Authorization, AuthError>,
    ) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let path = parts.uri.path();
        let json = |status: StatusCode, v: serde_json::Value| {
            let mut resp = Response::new(full(serde_json::to_vec(&v).unwrap_or_default()));
            *resp.status_mut() = status;
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            add_request_ids(resp.headers_mut(), &request_id, false);
            resp
        };
        if path == "/_lakebox/health" && (parts.method == Method::GET || parts.method == Method::HEAD) {
            let detailed = self.config.health_details_public || self.signed_in(&parts, auth);
            return json(StatusCode::OK, self.health(detailed));
        }
        if path.starts_with("/_lakebox/test/")
            && let Some(handler) = self.registry.test_routes.clone()
        {
            {
                let ctx = RequestContext {
                    request_id: request_id.clone(),
                    ..RequestContext::for_tests()
                };
                let req = Request::from_parts(parts, body.map_err(Into::into).boxed_unsync());
                let mut resp = match handler.call(ctx, req).await {
                    Ok(r) => r,
                    Err(e) => error_response(ErrorShape::Internal, &e, &request_id, false),
                };
                add_request_ids(resp.headers_mut(), &request_id, false);
                return resp;
            }
        }
        if let Some(routes) = self.registry.internal_routes(path) {
            let rest = &path[routes.prefix.len()..];
            let public = routes.public.iter().any(|p| rest.starts_with(p));
            let head = parts.method == Method::HEAD;
            if !public && self.auth.is_verifying() && !self.signed_in(&parts, auth) {
                let err = ServiceError::new(
                    "AccessDenied",
                    403,
                    format!("{path} answers only requests signed with the server's credentials."),
                );
                return error_response(ErrorShape::Internal, &err, &request_id, head);
            }
            let service = routes.service.clone();
            let ctx = RequestContext {
                request_id: request_id.clone(),
                ..RequestContext::for_tests()
            };
            let req = Request::from_parts(parts, body.map_err(Into::into).boxed_unsync());
            let mut resp = match service.call(ctx, req).await {
                Ok(r) => r,
                Err(e) => error_response(ErrorShape::Internal, &e, &request_id, head),
            };
            add_request_ids(resp.headers_mut(), &request_id, false);
            return resp;
        }
        let err = ServiceError::new(
            "NotFound",
            404,
            format!("No Lakebox endpoint at {path}; see GET /_lakebox/health."),
        );
        error_response(
            ErrorShape::Internal,
            &err,
            &request_id,
            parts.method == Method::HEAD,
        )
    }

    /// Whether a bodiless request (the health check's) carries a signature that verifies
    /// against the server's credentials.
    fn signed_in(&self, parts: &http::request::Parts, auth: Result<Authorization, AuthError>) -> bool {
        let Ok(auth) = auth else { return false };
        if !self.auth.is_verifying() || matches!(auth, Authorization::Anonymous) {
            return false;
        }
        let raw_query = parts.uri.query().unwrap_or("");
        let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
        let empty = sigv4::payload_hash(&http::HeaderMap::new(), false, Some(&Bytes::new()));
        let payload_hash = parts
            .headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(&empty);
        let verified = self.auth.authenticate(&auth, None, |_| RequestParts {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            raw_query,
            headers: &parts.headers,
            authority: authority.as_deref(),
            payload_hash,
        });
        matches!(verified, Ok(Some(_)))
    }

    /// The health document: status, region and each service's state; with `detailed`, also
    /// the version, data directory and authentication mode.
    pub fn health(&self, detailed: bool) -> serde_json::Value {
        let mut doc = serde_json::Map::new();
        let degraded = self.config.degraded.and_then(|why| why());
        let status = if self.stopping.load(Ordering::SeqCst) {
            "stopping"
        } else if degraded.is_some() {
            "degraded"
        } else {
            "running"
        };
        doc.insert("status".into(), status.into());
        if let Some(reason) = degraded {
            doc.insert("degradedReason".into(), reason.into());
        }
        doc.insert("region".into(), self.config.default_region.clone().into());
        if detailed {
            doc.extend(self.config.health_info.clone());
            doc.insert(
                "authentication".into(),
                if self.auth.is_verifying() {
                    "sigv4"
                } else {
                    "accept-all"
                }
                .into(),
            );
        }
        let services: serde_json::Map<String, serde_json::Value> = self
            .registry
            .entries()
            .map(|e| {
                let state = if self.registry.is_running(e.name) {
                    "running"
                } else {
                    "not_implemented"
                };
                (e.name.to_owned(), state.into())
            })
            .collect();
        doc.insert("services".into(), services.into());
        serde_json::Value::Object(doc)
    }
}

fn unknown_operation(service: Option<&str>, operation: &str, target: Option<&HeaderValue>) -> ServiceError {
    let message = match (service, operation.is_empty()) {
        (Some(s), false) => format!("Operation {operation} is not supported by Lakebox's {s} service."),
        (Some(s), true) => format!("X-Amz-Target names no operation of the {s} service."),
        (None, _) => format!(
            "No service recognises X-Amz-Target '{}'.",
            target.and_then(|t| t.to_str().ok()).unwrap_or("")
        ),
    };
    ServiceError::client("UnknownOperationException", message)
}

/// The operation a service named for the debug log, else the request's method and path; empty
/// when debug lines are not written (no slot was offered).
fn operation_named(named: Option<&OperationName>, parts: &http::request::Parts) -> String {
    match named {
        None => String::new(),
        Some(n) => n
            .get()
            .map_or_else(|| format!("{} {}", parts.method, parts.uri.path()), str::to_owned),
    }
}

fn is_gzipped(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().eq_ignore_ascii_case("gzip")))
}

enum GunzipError {
    TooLarge,
    Corrupt,
}

impl GunzipError {
    fn into_error(self, shape: ErrorShape, limit: u64) -> ServiceError {
        match self {
            GunzipError::TooLarge => too_large(shape, limit),
            GunzipError::Corrupt => ServiceError::client(
                "SerializationException",
                "The request body is not valid gzip, as its Content-Encoding says.",
            ),
        }
    }
}

/// A gzipped body, inflated within the service's body limit (a small bomb stays small).
fn gunzip(body: &[u8], limit: u64) -> Result<bytes::Bytes, GunzipError> {
    use std::io::Read;
    let mut out = Vec::with_capacity(body.len() * 4);
    let mut decoder = flate2::read::MultiGzDecoder::new(body).take(limit + 1);
    decoder.read_to_end(&mut out).map_err(|_| GunzipError::Corrupt)?;
    if out.len() as u64 > limit {
        return Err(GunzipError::TooLarge);
    }
    Ok(out.into())
}

fn too_large(shape: ErrorShape, limit: u64) -> ServiceError {
    let message = format!("Request body is larger than the maximum of {limit} bytes this service accepts.");
    let code = match shape {
        ErrorShape::Rpc(_) | ErrorShape::RestJson | ErrorShape::Internal => "RequestEntityTooLargeException",
        ErrorShape::Query(_) => "RequestEntityTooLarge",
        ErrorShape::S3 => "EntityTooLarge",
    };
    ServiceError::new(code, 413, message)
}

/// A spawned task that is aborted when its handle is dropped unfinished.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
