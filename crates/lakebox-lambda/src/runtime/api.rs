//! The Lambda Runtime API one execution environment's runtime speaks to
//! (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), on its own listener.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use lakebox_core::clock::{Clock, SystemClock};

use super::{Reply, Shared};

const PREFIX: &str = "/2018-06-01/runtime/";

/// Accepts the runtime's connections until the environment ends (the task is aborted).
pub(super) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(req, shared.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn accepted() -> Response<Full<Bytes>> {
    reply(StatusCode::ACCEPTED, &br#"{"status":"OK"}"#[..])
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            &br#"{"errorType":"InvalidRequest"}"#[..],
        ));
    };
    let method = req.method().clone();
    // A streamed response (`Lambda-Runtime-Function-Response-Mode: streaming`, chunked) is
    // read to its end; its content type is kept, and an error the runtime reports in its
    // trailers makes it an error.
    let streamed = req
        .headers()
        .get("lambda-runtime-function-response-mode")
        .is_some_and(|m| m.as_bytes().eq_ignore_ascii_case(b"streaming"));
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (body, trailers) = match req.into_body().collect().await {
        Ok(b) => {
            let trailers = b.trailers().cloned();
            (b.to_bytes(), trailers)
        }
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new())),
    };
    if method == Method::GET && rest == "invocation/next" {
        // Waits for the next invocation; only one runtime loop reads at a time.
        let mut queue = shared.queue.lock().await;
        let Some(p) = queue.recv().await else {
            return Ok(reply(StatusCode::GONE, Bytes::new()));
        };
        let deadline_ms = SystemClock.now_millis() + p.timeout.as_millis() as i64;
        let _ = p.started.send(());
        let mut r = reply(StatusCode::OK, p.payload);
        let h = r.headers_mut();
        let mut set = |name: &'static str, value: &str| {
            if let Ok(v) = http::HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        };
        set("lambda-runtime-aws-request-id", &p.request_id);
        set("lambda-runtime-deadline-ms", &deadline_ms.to_string());
        set("lambda-runtime-invoked-function-arn", &p.function_arn);
        set(
            "lambda-runtime-trace-id",
            &format!(
                "Root=1-{:08x}-{}",
                deadline_ms / 1000,
                &uuid::Uuid::new_v4().simple().to_string()[..24]
            ),
        );
        if let Some(cc) = &p.client_context {
            set("lambda-runtime-client-context", cc);
        }
        return Ok(r);
    }
    if method != Method::POST {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, Bytes::new()));
    }
    if rest == "init/error" {
        shared.fail_all(|_| body.clone());
        return Ok(accepted());
    }
    if let Some(tail) = rest.strip_prefix("invocation/") {
        let (id, kind) = tail.rsplit_once('/').unwrap_or((tail, ""));
        let answer = match kind {
            "response" if streamed => match trailers.as_ref().and_then(stream_error) {
                Some(doc) => Reply::Error(doc),
                None => Reply::Response(body, content_type),
            },
            "response" => Reply::Response(body, None),
            "error" => Reply::Error(body),
            _ => return Ok(reply(StatusCode::NOT_FOUND, Bytes::new())),
        };
        let waiting = shared.replies.lock().unwrap().remove(id);
        return Ok(match waiting {
            Some(tx) => {
                let _ = tx.send(answer);
                accepted()
            }
            // Answered already, or timed out: AWS's 400 for a request id it no longer waits on.
            None => reply(
                StatusCode::BAD_REQUEST,
                &br#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#[..],
            ),
        });
    }
    Ok(reply(StatusCode::NOT_FOUND, Bytes::new()))
}

/// The error a streaming runtime reports in its trailers after the response began:
/// `Lambda-Runtime-Function-Error-Type` and the base64 error document in
/// `Lambda-Runtime-Function-Error-Body`.
fn stream_error(trailers: &http::HeaderMap) -> Option<Bytes> {
    use base64::Engine;
    let error_type = trailers
        .get("lambda-runtime-function-error-type")?
        .to_str()
        .ok()?;
    let doc = trailers
        .get("lambda-runtime-function-error-body")
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .ok()
        })
        .filter(|d| serde_json::from_slice::<serde::de::IgnoredAny>(d).is_ok());
    Some(doc.map(Bytes::from).unwrap_or_else(|| {
        serde_json::json!({ "errorType": error_type, "errorMessage": error_type })
            .to_string()
            .into()
    }))
}
