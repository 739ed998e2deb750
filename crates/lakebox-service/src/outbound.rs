//! Requests Lakebox itself makes to endpoints users name (Firehose's HTTP destinations, SNS's
//! HTTP/S subscribers): one shared client, so connections are kept alive between deliveries
//! and the trusted roots are loaded once. TLS is rustls with the `ring` provider, trusting the
//! system's roots (or those in `SSL_CERT_FILE`).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// What an endpoint answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: http::StatusCode,
    pub body: Bytes,
}

fn client() -> Result<&'static HttpsClient, String> {
    static CLIENT: std::sync::OnceLock<Result<HttpsClient, String>> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(|e| format!("cannot load trusted TLS roots: {e}"))?
                .https_or_http()
                .enable_http1()
                .build();
            Ok(Client::builder(TokioExecutor::new()).build(connector))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// An error with its causes ("client error (Connect): invalid peer certificate: …").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Sends `req` and reads the whole answer; `Err` (in words) when the endpoint cannot be
/// reached or does not answer within `timeout`.
pub async fn send(req: http::Request<Full<Bytes>>, timeout: Duration) -> Result<Answer, String> {
    let exchange = async {
        let resp = client()?
            .request(req)
            .await
            .map_err(|e| format!("cannot reach the endpoint: {}", error_chain(&e)))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("the endpoint's answer broke off: {e}"))?
            .to_bytes();
        Ok(Answer { status, body })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| "the endpoint did not answer in time".to_string())?
}
