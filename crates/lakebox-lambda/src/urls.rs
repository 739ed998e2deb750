//! Function URLs: an HTTP endpoint per function (or alias) at
//! `http://<url-id>.lambda-url.<region>.localhost:<port>/`, as AWS's
//! `https://<url-id>.lambda-url.<region>.on.aws/`. A request to it runs the function with the
//! HTTP event of payload format 2.0 and answers what the function returns, read as AWS reads
//! it (a `statusCode` / `headers` / `cookies` / `body` document, or any other JSON as a 200
//! `application/json` body). `AuthType` NONE is public; AWS_IAM needs a signed request. CORS
//! preflights are answered from the URL's `Cors`.
//!
//! The configuration lives with the function (by qualifier); an index from url id to its
//! function finds it for a request.

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_service::Body;
use serde::{Deserialize, Serialize};

use crate::Lambda;
use crate::api::*;
use crate::functions::{Stored, invalid, storage, user_error};
use crate::versions::Qualifier;

const URLS: &str = "function_urls";

/// What a url id leads to.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Owner {
    account: String,
    region: String,
    function: String,
    qualifier: Option<String>,
}

fn url_key(qualifier: Option<&str>) -> String {
    qualifier.unwrap_or_default().to_owned()
}

fn no_url() -> ServiceError {
    user_error(
        "ResourceNotFoundException",
        404,
        "The resource you requested does not exist.",
    )
}

impl Lambda {
    /// The function and qualifier a URL operation names (an alias or `$LATEST`, not a version).
    fn url_target(
        &self,
        ctx: &RequestContext,
        given: &str,
        qualifier: Option<&str>,
    ) -> Result<(Stored, Option<String>, String), ServiceError> {
        let target = self.target(ctx, given, qualifier, false)?;
        if let Some(q) = target.qualifier.as_deref()
            && matches!(Qualifier::of(q), Qualifier::Version(_))
        {
            return Err(user_error(
                "ValidationException",
                400,
                format!(
                    "1 validation error detected: Value '{q}' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)"
                ),
            ));
        }
        let arn = target.invoked_arn.clone();
        Ok((target.function, target.qualifier, arn))
    }

    fn url_of(&self, id: &str, region: &str) -> String {
        let base = self
            .listen_url
            .get()
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1:4566".into());
        let port = base
            .rsplit_once(':')
            .map(|(_, p)| p.trim_end_matches('/'))
            .unwrap_or("4566");
        format!("http://{id}.lambda-url.{region}.localhost:{port}/")
    }

    pub(crate) fn create_url_impl(
        &self,
        ctx: &RequestContext,
        input: CreateFunctionUrlConfigRequest,
    ) -> Result<CreateFunctionUrlConfigResponse, ServiceError> {
        let (mut stored, q, arn) = self.url_target(ctx, &input.function_name, input.qualifier.as_deref())?;
        check_auth_type(&input.auth_type)?;
        let key = url_key(q.as_deref());
        if stored.urls.contains_key(&key) {
            return Err(user_error(
                "ResourceConflictException",
                409,
                format!(
                    "Failed to create function url config for [functionArn = {arn}]. Error message:  FunctionUrlConfig exists for this Lambda function"
                ),
            ));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = self.now_string();
        let config = FunctionUrlConfig {
            function_url: self.url_of(&id, &ctx.region),
            function_arn: arn,
            creation_time: now.clone(),
            last_modified_time: now,
            cors: input.cors,
            auth_type: input.auth_type,
            invoke_mode: Some(input.invoke_mode.unwrap_or(InvokeMode::Buffered)),
        };
        stored.urls.insert(key, config.clone());
        let owner = Owner {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            function: stored.name().to_owned(),
            qualifier: q,
        };
        self.save_with_url(ctx, &stored, &id, Some(&owner))?;
        Ok(CreateFunctionUrlConfigResponse {
            function_url: config.function_url,
            function_arn: config.function_arn,
            auth_type: config.auth_type,
            cors: config.cors,
            creation_time: config.creation_time,
            invoke_mode: config.invoke_mode,
        })
    }

    /// Stores the function record and the url index entry in one transaction.
    fn save_with_url(
        &self,
        ctx: &RequestContext,
        stored: &Stored,
        id: &str,
        owner: Option<&Owner>,
    ) -> Result<(), ServiceError> {
        let record = serde_json::to_vec(stored).map_err(|e| ServiceError::internal(e.to_string()))?;
        let owner = owner
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        let key = crate::functions::key(ctx, stored.name());
        self.meta
            .write(|b| {
                b.put(crate::functions::TABLE, &key, &record)?;
                match &owner {
                    Some(o) => b.put(URLS, id.as_bytes(), o),
                    None => b.delete(URLS, id.as_bytes()).map(drop),
                }
            })
            .map_err(storage)
    }

    pub(crate) fn get_url_impl(
        &self,
        ctx: &RequestContext,
        input: GetFunctionUrlConfigRequest,
    ) -> Result<GetFunctionUrlConfigResponse, ServiceError> {
        let (stored, q, _) = self.url_target(ctx, &input.function_name, input.qualifier.as_deref())?;
        let c = stored
            .urls
            .get(&url_key(q.as_deref()))
            .cloned()
            .ok_or_else(no_url)?;
        Ok(GetFunctionUrlConfigResponse {
            function_url: c.function_url,
            function_arn: c.function_arn,
            auth_type: c.auth_type,
            cors: c.cors,
            creation_time: c.creation_time,
            last_modified_time: c.last_modified_time,
            invoke_mode: c.invoke_mode,
        })
    }

    pub(crate) fn update_url_impl(
        &self,
        ctx: &RequestContext,
        input: UpdateFunctionUrlConfigRequest,
    ) -> Result<UpdateFunctionUrlConfigResponse, ServiceError> {
        let (mut stored, q, _) = self.url_target(ctx, &input.function_name, input.qualifier.as_deref())?;
        let key = url_key(q.as_deref());
        let mut c = stored.urls.get(&key).cloned().ok_or_else(no_url)?;
        if let Some(a) = input.auth_type {
            check_auth_type(&a)?;
            c.auth_type = a;
        }
        if let Some(cors) = input.cors {
            c.cors = Some(cors);
        }
        if let Some(m) = input.invoke_mode {
            c.invoke_mode = Some(m);
        }
        c.last_modified_time = self.now_string();
        stored.urls.insert(key, c.clone());
        self.store(ctx, &stored)?;
        Ok(UpdateFunctionUrlConfigResponse {
            function_url: c.function_url,
            function_arn: c.function_arn,
            auth_type: c.auth_type,
            cors: c.cors,
            creation_time: c.creation_time,
            last_modified_time: c.last_modified_time,
            invoke_mode: c.invoke_mode,
        })
    }

    pub(crate) fn delete_url_impl(
        &self,
        ctx: &RequestContext,
        input: DeleteFunctionUrlConfigRequest,
    ) -> Result<(), ServiceError> {
        let (mut stored, q, _) = self.url_target(ctx, &input.function_name, input.qualifier.as_deref())?;
        let c = stored.urls.remove(&url_key(q.as_deref())).ok_or_else(no_url)?;
        self.save_with_url(ctx, &stored, &url_id_of(&c.function_url), None)
    }

    pub(crate) fn list_urls_impl(
        &self,
        ctx: &RequestContext,
        input: ListFunctionUrlConfigsRequest,
    ) -> Result<ListFunctionUrlConfigsResponse, ServiceError> {
        let stored = self.existing(ctx, &input.function_name, None)?;
        let all: Vec<FunctionUrlConfig> = stored.urls.values().cloned().collect();
        let (page, next) = crate::versions::page_of(all, input.marker.as_deref(), input.max_items)?;
        Ok(ListFunctionUrlConfigsResponse {
            function_url_configs: page,
            next_marker: next,
        })
    }

    /// Removes the url index entries of a function being deleted.
    pub(crate) fn drop_urls(&self, urls: &BTreeMap<String, FunctionUrlConfig>) -> Result<(), ServiceError> {
        let ids: Vec<String> = urls.values().map(|c| url_id_of(&c.function_url)).collect();
        self.meta
            .write(|b| {
                for id in &ids {
                    b.delete(URLS, id.as_bytes())?;
                }
                Ok(())
            })
            .map_err(storage)
    }

    /// Serves one request to a function URL.
    pub(crate) async fn serve_url(
        &self,
        id: &str,
        req: http::Request<Body>,
        request_id: &str,
    ) -> Result<http::Response<Body>, ServiceError> {
        let owner: Option<Owner> = self
            .meta
            .get(URLS, id.as_bytes())
            .map_err(storage)?
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(owner) = owner else {
            return Ok(plain(404, "{\"Message\":\"Not Found\"}"));
        };
        let ctx = RequestContext::internal(&owner.account, &owner.region, self.clock.now_millis());
        let ctx = RequestContext {
            request_id: request_id.to_owned(),
            ..ctx
        };
        let Ok(target) = self.target(&ctx, &owner.function, owner.qualifier.as_deref(), true) else {
            return Ok(plain(404, "{\"Message\":\"Not Found\"}"));
        };
        let Some(config) = target
            .function
            .urls
            .get(&url_key(owner.qualifier.as_deref()))
            .cloned()
        else {
            return Ok(plain(404, "{\"Message\":\"Not Found\"}"));
        };
        let anonymous = req.extensions().get::<lakebox_service::Anonymous>().is_some();
        if config.auth_type == FunctionUrlAuthType::AwsIam && anonymous {
            return Ok(plain(403, "{\"Message\":\"Forbidden\"}"));
        }
        let origin = req
            .headers()
            .get(http::header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let cors = config.cors.clone().unwrap_or_default();
        if req.method() == http::Method::OPTIONS
            && req.headers().contains_key("access-control-request-method")
        {
            let mut resp = plain(200, "");
            add_cors(&mut resp, &cors, origin.as_deref(), true);
            return Ok(resp);
        }
        let (parts, body) = req.into_parts();
        let body = http_body_util::BodyExt::collect(body)
            .await
            .map_err(|e| ServiceError::internal(e.to_string()))?
            .to_bytes();
        let event = http_event(
            &parts,
            &body,
            id,
            &owner,
            &ctx,
            anonymous,
            self.clock.now_millis(),
        );
        let result = self
            .run_target(&ctx, &target, event.to_string().into(), None)
            .await;
        let mut resp = match result {
            Ok((outcome, _)) if outcome.function_error.is_none() => match &outcome.content_type {
                Some(streamed) => streamed_response(&outcome.payload, streamed),
                None => http_response(&outcome.payload),
            },
            Ok(_) => plain(502, "Internal Server Error"),
            Err(e) if crate::concurrency::is_throttle(&e) => plain(429, "{\"Message\":\"Rate Exceeded.\"}"),
            Err(e) => return Err(e),
        };
        add_cors(&mut resp, &cors, origin.as_deref(), false);
        Ok(resp)
    }
}

fn check_auth_type(a: &FunctionUrlAuthType) -> Result<(), ServiceError> {
    match a {
        FunctionUrlAuthType::Unknown(v) => Err(invalid(format!(
            "1 validation error detected: Value '{v}' at 'authType' failed to satisfy constraint: Member must satisfy enum value set: [NONE, AWS_IAM]"
        ))),
        _ => Ok(()),
    }
}

/// The url id in a function URL (`http://<id>.lambda-url…`).
fn url_id_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_default()
        .to_owned()
}

fn plain(status: u16, body: &str) -> http::Response<Body> {
    let mut r = http::Response::new(lakebox_service::body::full(body.as_bytes().to_vec()));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    if !body.is_empty() {
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    r
}

/// Whether a body of `content_type` reaches the function as text (else base64), as AWS
/// decides it.
fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let ct = ct.to_ascii_lowercase();
    ct.starts_with("text/")
        || [
            "json",
            "xml",
            "javascript",
            "x-www-form-urlencoded",
            "yaml",
            "csv",
        ]
        .iter()
        .any(|t| ct.contains(t))
}

/// The payload format 2.0 event for one request.
fn http_event(
    parts: &http::request::Parts,
    body: &Bytes,
    id: &str,
    owner: &Owner,
    ctx: &RequestContext,
    anonymous: bool,
    now_millis: i64,
) -> serde_json::Value {
    // Header names lower-cased, repeated headers joined with commas; cookies apart.
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == http::header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in lakebox_protocol::rest_json::query_pairs(&raw_query) {
        query
            .entry(k)
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let domain = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(':').next().unwrap_or(h).to_owned())
        .unwrap_or_else(|| format!("{id}.lambda-url.{}.localhost", owner.region));
    let source_ip = parts
        .extensions
        .get::<lakebox_service::PeerAddr>()
        .map(|p| p.0.ip().to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let text = is_text(headers.get("content-type").map(String::as_str));
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": if anonymous { "anonymous".to_owned() } else { ctx.account_id.clone() },
            "apiId": id,
            "domainName": domain,
            "domainPrefix": id,
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": format!("{:?}", parts.version),
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
            },
            "requestId": ctx.request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": clf_time(now_millis),
            "timeEpoch": now_millis,
        },
        "isBase64Encoded": !body.is_empty() && !text,
    });
    if !cookies.is_empty() {
        event["cookies"] = serde_json::json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = serde_json::json!(query);
    }
    if !body.is_empty() {
        event["body"] = if text {
            serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
        } else {
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(body))
        };
    }
    if !anonymous {
        event["requestContext"]["authorizer"] = serde_json::json!({
            "iam": {
                "accountId": ctx.account_id,
                "userArn": format!("arn:aws:iam::{}:root", ctx.account_id),
            }
        });
    }
    event
}

/// `12/Mar/2020:19:03:58 +0000`.
fn clf_time(millis: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let iso = lakebox_protocol::Timestamp::from_millis(millis).to_iso8601();
    // 2020-03-12T19:03:58.000Z
    let (date, time) = iso.split_once('T').unwrap_or((&iso, "00:00:00"));
    let mut d = date.split('-');
    let (y, m, day) = (
        d.next().unwrap_or("1970"),
        d.next().unwrap_or("01"),
        d.next().unwrap_or("01"),
    );
    let month = m
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .unwrap_or(&"Jan");
    format!("{day}/{month}/{y}:{} +0000", &time[..8.min(time.len())])
}

/// The HTTP answer for what the function returned.
fn http_response(payload: &[u8]) -> http::Response<Body> {
    let value: Option<serde_json::Value> = serde_json::from_slice(payload).ok();
    let structured = value
        .as_ref()
        .and_then(|v| v.as_object())
        .filter(|o| o.contains_key("statusCode"));
    let Some(o) = structured else {
        // Any other JSON: a 200 with the result as its JSON body.
        let mut r = http::Response::new(lakebox_service::body::full(payload.to_vec()));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        return r;
    };
    let body = match o.get("body") {
        Some(serde_json::Value::String(s)) => {
            if o.get("isBase64Encoded").and_then(|b| b.as_bool()) == Some(true) {
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .unwrap_or_else(|_| s.as_bytes().to_vec())
            } else {
                s.as_bytes().to_vec()
            }
        }
        Some(serde_json::Value::Null) | None => Vec::new(),
        Some(other) => other.to_string().into_bytes(),
    };
    answer(o, body, "application/json")
}

/// AWS's content type for a streamed answer that starts with its HTTP status and headers
/// (`awslambda.HttpResponseStream.from`): a JSON prelude, eight NUL bytes, then the body.
const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";

/// The HTTP answer for what a function streamed: its prelude's status, headers and cookies
/// with the rest as the body, or the bytes as they are with the content type it set.
fn streamed_response(payload: &[u8], content_type: &str) -> http::Response<Body> {
    if content_type == HTTP_INTEGRATION
        && let Some(at) = payload.windows(8).position(|w| w == [0u8; 8])
        && let Ok(serde_json::Value::Object(prelude)) = serde_json::from_slice(&payload[..at])
    {
        return answer(&prelude, payload[at + 8..].to_vec(), "application/octet-stream");
    }
    let mut r = http::Response::new(lakebox_service::body::full(payload.to_vec()));
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

/// An answer with `body` and the status, headers and cookies `o` names.
fn answer(
    o: &serde_json::Map<String, serde_json::Value>,
    body: Vec<u8>,
    default_type: &'static str,
) -> http::Response<Body> {
    let status = o.get("statusCode").and_then(|s| s.as_u64()).unwrap_or(200) as u16;
    let mut r = http::Response::new(lakebox_service::body::full(body));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    if let Some(headers) = o.get("headers").and_then(|h| h.as_object()) {
        for (k, v) in headers {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(&v),
            ) {
                r.headers_mut().append(name, value);
            }
        }
    }
    if let Some(cookies) = o.get("cookies").and_then(|c| c.as_array()) {
        for c in cookies.iter().filter_map(|c| c.as_str()) {
            if let Ok(v) = http::HeaderValue::from_str(c) {
                r.headers_mut().append(http::header::SET_COOKIE, v);
            }
        }
    }
    if !r.headers().contains_key(http::header::CONTENT_TYPE) {
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(default_type),
        );
    }
    r
}

/// The URL's CORS rules on a response (a preflight's, or an actual request's).
fn add_cors(resp: &mut http::Response<Body>, cors: &Cors, origin: Option<&str>, preflight: bool) {
    let Some(origin) = origin else { return };
    let origins = cors.allow_origins.clone().unwrap_or_default();
    let allowed = origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin));
    if !allowed {
        return;
    }
    let h = resp.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            h.insert(http::HeaderName::from_static(name), v);
        }
    };
    let wildcard = origins.iter().any(|o| o == "*") && cors.allow_credentials != Some(true);
    set(
        "access-control-allow-origin",
        if wildcard { "*".into() } else { origin.to_owned() },
    );
    if cors.allow_credentials == Some(true) {
        set("access-control-allow-credentials", "true".into());
    }
    if let Some(e) = cors.expose_headers.as_ref().filter(|e| !e.is_empty()) {
        set("access-control-expose-headers", e.join(","));
    }
    if preflight {
        if let Some(m) = cors.allow_methods.as_ref().filter(|m| !m.is_empty()) {
            set("access-control-allow-methods", m.join(","));
        }
        if let Some(hd) = cors.allow_headers.as_ref().filter(|h| !h.is_empty()) {
            set("access-control-allow-headers", hd.join(","));
        }
        if let Some(age) = cors.max_age {
            set("access-control-max-age", age.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_become_http_answers() {
        let r = http_response(
            br#"{"statusCode": 201, "headers": {"x-a": "1"}, "cookies": ["a=1", "b=2"], "body": "made"}"#,
        );
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-a"], "1");
        assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
        let r = http_response(br#"{"statusCode": 200, "body": "aGk=", "isBase64Encoded": true, "headers": {"content-type": "text/plain"}}"#);
        assert_eq!(r.headers()["content-type"], "text/plain");
        let r = http_response(br#"{"message": "hi"}"#);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/json");
    }

    #[test]
    fn text_bodies_stay_text() {
        assert!(is_text(Some("application/json; charset=utf-8")));
        assert!(is_text(Some("text/csv")));
        assert!(is_text(None));
        assert!(!is_text(Some("image/png")));
        assert!(!is_text(Some("application/octet-stream")));
    }

    #[test]
    fn times_in_common_log_format() {
        assert_eq!(clf_time(1_583_348_638_390), "04/Mar/2020:19:03:58 +0000");
    }

    #[test]
    fn url_ids_from_urls() {
        assert_eq!(
            url_id_of("http://abc123.lambda-url.us-east-1.localhost:4566/"),
            "abc123"
        );
    }
}
