//! The request pipeline in process: routing, error shapes, panic isolation, body limits.

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use lakebox_core::{RequestContext, ServiceError, SystemClock};
use lakebox_gateway::{Authenticator, Gateway, GatewayConfig, Registry};
use lakebox_service::body::{Body, full};
use lakebox_service::{BoxFuture, HttpService, RpcRequest, RpcResponse, RpcService, VirtualHostBucket};

struct Panicky;

impl RpcService for Panicky {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RpcRequest,
    ) -> BoxFuture<Result<RpcResponse, ServiceError>> {
        Box::pin(async move {
            match req.operation.as_str() {
                "Boom" => panic!("deliberate panic in {}", ctx.request_id),
                "Whoami" => req.reply(&serde_json::json!({"Account": ctx.account_id, "Region": ctx.region})),
                _ => Err(ServiceError::client("UnknownOperationException", "no")),
            }
        })
    }
}

/// Stands in for S3: reports which bucket the gateway saw in the host.
struct BucketEcho;

impl HttpService for BucketEcho {
    fn call(
        self: Arc<Self>,
        _ctx: RequestContext,
        req: Request<Body>,
    ) -> BoxFuture<Result<http::Response<Body>, ServiceError>> {
        Box::pin(async move {
            let bucket = req.extensions().get::<VirtualHostBucket>().map(|b| b.0.clone());
            Ok(http::Response::new(full(format!(
                "{bucket:?} {}",
                req.uri().path()
            ))))
        })
    }
}

#[tokio::test]
async fn s3_receives_the_virtual_host_bucket() {
    let mut reg = Registry::new();
    reg.http("s3", Arc::new(BucketEcho));
    let gw = Gateway::new(
        reg,
        Authenticator::accept_all(Arc::new(SystemClock)),
        Arc::new(SystemClock),
        GatewayConfig {
            default_region: "us-east-1".into(),
            health_info: Default::default(),
            health_details_public: true,
            degraded: None,
            header_read_timeout: std::time::Duration::from_secs(30),
        },
    );
    let req = Request::get("/a/b.txt")
        .header("host", "logs.localhost:4566")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, headers, body) = send(&gw, req).await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("x-amz-request-id"));
    assert_eq!(&body[..], b"Some(\"logs\") /a/b.txt");
    let req = Request::get("/logs/a/b.txt")
        .header("host", "localhost:4566")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(&send(&gw, req).await.2[..], b"None /logs/a/b.txt");
}

fn gateway(with_kinesis: bool) -> Arc<Gateway> {
    let mut reg = Registry::new();
    if with_kinesis {
        reg.rpc("kinesis", Arc::new(Panicky));
    }
    Gateway::new(
        reg,
        Authenticator::accept_all(Arc::new(SystemClock)),
        Arc::new(SystemClock),
        GatewayConfig {
            default_region: "eu-west-1".into(),
            health_info: Default::default(),
            health_details_public: true,
            degraded: None,
            header_read_timeout: std::time::Duration::from_secs(30),
        },
    )
}

async fn send(gw: &Arc<Gateway>, req: Request<Full<Bytes>>) -> (u16, http::HeaderMap, Bytes) {
    let resp = gw.clone().handle(req).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (
        status,
        headers,
        resp.into_body().collect().await.unwrap().to_bytes(),
    )
}

fn rpc(target: &str, content_type: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
    Request::post("/")
        .header("x-amz-target", target)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

#[tokio::test]
async fn unknown_operations_in_each_protocol() {
    let gw = gateway(false);
    let (status, headers, body) = send(
        &gw,
        rpc(
            "Kinesis_20131202.ListStreams",
            "application/x-amz-json-1.1",
            b"{}",
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert!(headers.contains_key("x-amzn-requestid"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["__type"], "UnknownOperationException");

    let (status, headers, body) = send(
        &gw,
        rpc("Kinesis_20131202.ListStreams", "application/x-amz-cbor-1.1", b""),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(headers["content-type"], "application/x-amz-cbor-1.1");
    let v: std::collections::BTreeMap<String, String> = ciborium::from_reader(&body[..]).unwrap();
    assert_eq!(v["__type"], "UnknownOperationException");

    let req = Request::post("/")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(
            b"Action=ListTopics&Version=2010-03-31",
        )))
        .unwrap();
    let (status, _, body) = send(&gw, req).await;
    assert_eq!(status, 400);
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("<Code>InvalidAction</Code>"), "{text}");

    let (status, headers, body) = send(
        &gw,
        Request::get("/bucket/key").body(Full::new(Bytes::new())).unwrap(),
    )
    .await;
    assert_eq!(status, 501);
    assert!(headers.contains_key("x-amz-request-id") && headers.contains_key("x-amz-id-2"));
    assert!(
        String::from_utf8(body.to_vec())
            .unwrap()
            .contains("<Code>NotImplemented</Code>")
    );
}

#[tokio::test]
async fn a_panic_is_one_500_and_the_server_goes_on() {
    let gw = gateway(true);
    let (status, headers, body) = send(
        &gw,
        rpc("Kinesis_20131202.Boom", "application/x-amz-json-1.1", b"{}"),
    )
    .await;
    assert_eq!(status, 500);
    assert!(headers.contains_key("x-amzn-requestid"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["__type"], "InternalFailure");
    let (status, _, body) = send(
        &gw,
        rpc("Kinesis_20131202.Whoami", "application/x-amz-json-1.1", b"{}"),
    )
    .await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["Account"], "000000000000");
    assert_eq!(v["Region"], "eu-west-1");
}

#[tokio::test]
async fn identity_comes_from_the_credential_scope() {
    let gw = gateway(true);
    let req = Request::post("/")
        .header("x-amz-target", "Kinesis_20131202.Whoami")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-date", "20240101T000000Z")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=123456789012/20240101/ap-south-1/kinesis/aws4_request, SignedHeaders=host, Signature=00",
        )
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let (status, _, body) = send(&gw, req).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["Account"], "123456789012");
    assert_eq!(v["Region"], "ap-south-1");
}

#[tokio::test]
async fn oversized_bodies_are_refused_by_declared_length() {
    let gw = gateway(true);
    let req = Request::post("/")
        .header("x-amz-target", "Kinesis_20131202.PutRecords")
        .header("content-type", "application/x-amz-json-1.1")
        .header("content-length", (64u64 << 20).to_string())
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let (status, _, body) = send(&gw, req).await;
    assert_eq!(status, 413);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["__type"], "RequestEntityTooLargeException");
}

#[tokio::test]
async fn health_lists_services() {
    let gw = gateway(true);
    let (status, _, body) = send(
        &gw,
        Request::get("/_lakebox/health")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "running");
    assert_eq!(v["services"]["kinesis"], "running");
    assert_eq!(v["services"]["s3"], "not_implemented");
    let (status, _, _) = send(
        &gw,
        Request::get("/_lakebox/nope")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
}
