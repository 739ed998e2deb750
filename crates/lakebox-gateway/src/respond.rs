//! Rendering responses: errors in each protocol's shape, and the request-id headers.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use lakebox_core::{ServiceError, ids};
use lakebox_protocol::rpc::RpcEncoding;
use lakebox_protocol::sigv4::ErrorStyle;
use lakebox_protocol::{query, rest_xml};

use lakebox_service::body::{Body, empty, full};

/// The error dialect of the protocol a request arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    Rpc(RpcEncoding),
    /// awsQuery, with the service's XML namespace when the route names the service (AWS puts
    /// it on `<ErrorResponse>`).
    Query(Option<&'static str>),
    RestJson,
    S3,
    /// Lakebox's own `/_lakebox/` routes: plain JSON.
    Internal,
}

impl ErrorShape {
    pub fn auth_style(self) -> ErrorStyle {
        match self {
            ErrorShape::Rpc(_) | ErrorShape::RestJson | ErrorShape::Internal => ErrorStyle::Json,
            ErrorShape::Query(_) => ErrorStyle::Query,
            ErrorShape::S3 => ErrorStyle::S3,
        }
    }
}

/// The S3 `x-amz-id-2` ("host id") for a request.
pub fn s3_host_id(request_id: &str) -> String {
    format!("lakebox/{}", ids::s3_request_id(request_id))
}

/// Sets the request-id headers every SDK reads: `x-amzn-RequestId` for JSON and query
/// services, `x-amz-request-id` and `x-amz-id-2` for S3.
pub fn add_request_ids(headers: &mut HeaderMap, request_id: &str, s3: bool) {
    if s3 {
        if let Ok(v) = HeaderValue::from_str(&ids::s3_request_id(request_id)) {
            headers.insert("x-amz-request-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(&s3_host_id(request_id)) {
            headers.insert("x-amz-id-2", v);
        }
    } else if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
}

/// An error response in `shape`'s dialect. HEAD responses carry no body, as HTTP requires.
pub fn error_response(shape: ErrorShape, err: &ServiceError, request_id: &str, head: bool) -> Response<Body> {
    let (content_type, body): (&str, Bytes) = match shape {
        ErrorShape::Rpc(enc) => (enc.content_type(), enc.encode_error(err)),
        ErrorShape::Query(namespace) => ("text/xml", query::error_xml(err, request_id, namespace).into()),
        ErrorShape::S3 => (
            "application/xml",
            rest_xml::error_xml(err, &ids::s3_request_id(request_id), &s3_host_id(request_id)).into(),
        ),
        // restJson carries the code in `x-amzn-ErrorType` (below) and the body as awsJson's,
        // with the error's modelled members (Lambda's `Type`).
        ErrorShape::RestJson | ErrorShape::Internal => {
            ("application/json", RpcEncoding::Json11.encode_error(err))
        }
    };
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = Response::new(if head { empty() } else { full(body) });
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&err.code) {
        h.insert("x-amzn-errortype", v);
    }
    for (name, value) in &err.headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(*name, v);
        }
    }
    if shape == ErrorShape::Rpc(RpcEncoding::RpcV2Cbor) {
        h.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    }
    add_request_ids(h, request_id, shape == ErrorShape::S3);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(resp: Response<Body>) -> Bytes {
        resp.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn shapes() {
        let err = ServiceError::client("UnknownOperationException", "nope");
        let r = error_response(ErrorShape::Rpc(RpcEncoding::Json11), &err, "rid-1", false);
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["x-amzn-requestid"], "rid-1");
        assert_eq!(r.headers()["content-type"], "application/x-amz-json-1.1");
        let v: serde_json::Value = serde_json::from_slice(&body_of(r).await).unwrap();
        assert_eq!(v["__type"], "UnknownOperationException");

        let r = error_response(
            ErrorShape::S3,
            &ServiceError::new("NoSuchBucket", 404, "x"),
            "0123abcd-0123-0123-0123-0123456789ab",
            true,
        );
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["x-amz-request-id"], "0123ABCD01230123");
        assert!(r.headers().contains_key("x-amz-id-2"));
        assert!(body_of(r).await.is_empty());

        let r = error_response(
            ErrorShape::Query(None),
            &ServiceError::client("InvalidAction", "x"),
            "rid",
            false,
        );
        let b = body_of(r).await;
        assert!(
            std::str::from_utf8(&b)
                .unwrap()
                .contains("<Code>InvalidAction</Code>")
        );
    }
}
