//! The S3 REST surface: decides which operation a request is and hands it to its handler.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use lakebox_core::{Clock, RequestContext, ServiceError};
use lakebox_service::body::full;
use lakebox_service::{Body, BoxFuture};
use lakebox_service::{HttpService, VirtualHostBucket};
use percent_encoding::percent_decode_str;

use crate::store::{ObjectStore, S3Settings};
use crate::{bucket, config, errors, list, multipart, object};

/// Largest XML request body (DeleteObjects with 1,000 long keys, CompleteMultipartUpload with
/// 10,000 parts) we read.
const MAX_XML_BODY: usize = 4 * 1024 * 1024;

/// Subresources Lakebox recognises but does not implement yet: answered `NotImplemented`
/// rather than mistaken for a plain object or bucket operation.
const UNIMPLEMENTED_SUBRESOURCES: &[&str] = &[
    "analytics",
    "intelligent-tiering",
    "inventory",
    "metadataConfiguration",
    "renameObject",
    "replication",
    "torrent",
];

/// The S3 service.
pub struct S3 {
    store: Arc<ObjectStore>,
    /// Runs SelectObjectContent; plugged in by the server (Athena's engine).
    select: std::sync::OnceLock<Arc<dyn crate::select::SelectEngine>>,
    /// Where request metrics go (AWS/S3, buckets with metrics configurations).
    metrics: std::sync::OnceLock<lakebox_service::metrics::Recorder>,
}

impl S3 {
    pub fn open(
        dir: &Path,
        clock: Arc<dyn Clock>,
        settings: S3Settings,
    ) -> Result<Self, lakebox_store::StoreError> {
        Ok(S3 {
            store: Arc::new(ObjectStore::open(dir, clock, settings)?),
            select: std::sync::OnceLock::new(),
            metrics: std::sync::OnceLock::new(),
        })
    }

    /// Starts the background lifecycle sweeper (call once, inside the runtime).
    pub fn start_background_work(&self) -> tokio::task::JoinHandle<()> {
        crate::lifecycle::spawn_sweeper(self.store.clone())
    }

    /// Delivers server access logs to their target buckets from now on.
    pub fn start_access_log_delivery(&self) -> tokio::task::JoinHandle<()> {
        let every = std::time::Duration::from_millis(self.store.settings().access_log_delivery_millis);
        crate::access_log::spawn_delivery(self.store.clone(), every)
    }

    /// The store, for services that use S3 directly.
    pub fn store(&self) -> &Arc<ObjectStore> {
        &self.store
    }

    /// Request metrics of buckets with metrics configurations go through `recorder`.
    pub fn set_metrics(&self, recorder: lakebox_service::metrics::Recorder) {
        let _ = self.metrics.set(recorder);
    }

    /// Plugs in the engine that answers SelectObjectContent (once).
    pub fn set_select_engine(&self, engine: Arc<dyn crate::select::SelectEngine>) {
        let _ = self.select.set(engine);
    }

    /// Plugs in where event notifications go (once), and starts delivering them: the outbox
    /// holds every event until its target accepts it, across restarts.
    pub fn start_event_delivery(
        &self,
        sink: Arc<dyn lakebox_service::events::EventSink>,
    ) -> tokio::task::JoinHandle<()> {
        crate::notify::spawn_delivery(self.store.clone(), sink)
    }

    /// The object API other services (Firehose, Glue, Athena) read and write the lake with.
    pub fn lake(&self) -> crate::lake::Lake {
        crate::lake::lake(self.store.clone())
    }
}

/// One S3 request, parsed.
pub struct S3Request {
    pub ctx: RequestContext,
    pub method: Method,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Body,
    /// `Host`, for the `Location` of completed uploads.
    pub host: String,
    /// Set by the gateway when the body's chunk signatures must be checked.
    pub chunk_signer: Option<lakebox_protocol::sigv4::ChunkSigner>,
    /// Where the operation's name goes for the gateway's request log.
    pub operation: Option<lakebox_service::OperationName>,
    /// Whether the client is on this machine (SSE-C keys are accepted only then, as AWS
    /// accepts them only over TLS).
    pub peer_is_loopback: bool,
    /// The client's address (event notifications report it as `sourceIPAddress`).
    pub remote_ip: Option<std::net::IpAddr>,
    /// What form uploads' signatures are checked with (set by the gateway on POST forms).
    pub form_auth: Option<lakebox_protocol::form_auth::FormAuth>,
    /// An unsigned request to a server that checks signatures: an anonymous caller, whom only
    /// a bucket's policy can let in (without `--credentials`, unsigned requests act as the
    /// default account).
    pub anonymous: bool,
    /// An S3 Control request (`/v20180820/…` with `x-amz-account-id`): its path.
    pub control: Option<String>,
}

impl S3Request {
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Reads a (small) XML request body and parses it; its root must be `root`
    /// (`MalformedXML` otherwise).
    pub async fn xml_document(
        &mut self,
        root: &str,
    ) -> Result<lakebox_protocol::xml::XmlElement, ServiceError> {
        let body = self.xml_body().await?;
        lakebox_protocol::xml::parse(&body)
            .ok()
            .filter(|doc| doc.name == root)
            .ok_or_else(errors::malformed_document)
    }

    /// Reads a (small) XML request body.
    pub async fn xml_body(&mut self) -> Result<Bytes, ServiceError> {
        let mut buf = Vec::new();
        while let Some(frame) = self.body.frame().await {
            let frame = frame.map_err(|_| errors::incomplete_body())?;
            if let Ok(d) = frame.into_data() {
                buf.extend_from_slice(&d);
                if buf.len() > MAX_XML_BODY {
                    return Err(ServiceError::client(
                        "MaxMessageLengthExceeded",
                        "Your request was too big.",
                    ));
                }
            }
        }
        Ok(buf.into())
    }
}

fn decode_component(s: &str) -> Result<String, ServiceError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ServiceError::client("InvalidURI", "Couldn't parse the specified URI."))
}

fn parse_query(raw: &str) -> Result<Vec<(String, String)>, ServiceError> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let plus = |s: &str| s.replace('+', " ");
            Ok((decode_component(&plus(k))?, decode_component(&plus(v))?))
        })
        .collect()
}

pub fn xml_response(status: StatusCode, xml: String) -> Response<Body> {
    let mut r = Response::new(full(xml));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

pub fn empty_response(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    r
}

pub fn set_header(resp: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

impl HttpService for S3 {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: http::Request<Body>,
    ) -> BoxFuture<Result<Response<Body>, ServiceError>> {
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let path = parts.uri.path();
            let (bucket, key) = match parts.extensions.get::<VirtualHostBucket>() {
                Some(VirtualHostBucket(b)) => {
                    let k = path.strip_prefix('/').unwrap_or(path);
                    (
                        Some(b.clone()),
                        (!k.is_empty()).then(|| decode_component(k)).transpose()?,
                    )
                }
                None => {
                    let p = path.strip_prefix('/').unwrap_or(path);
                    let (b, k) = p.split_once('/').unwrap_or((p, ""));
                    let bucket = (!b.is_empty()).then(|| decode_component(b)).transpose()?;
                    (bucket, (!k.is_empty()).then(|| decode_component(k)).transpose()?)
                }
            };
            let host = parts
                .headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost")
                .to_owned();
            let chunk_signer = parts
                .extensions
                .get::<lakebox_protocol::sigv4::ChunkSigner>()
                .cloned();
            let peer_is_loopback = parts
                .extensions
                .get::<lakebox_service::PeerAddr>()
                .is_none_or(|p| p.0.ip().is_loopback());
            let operation = parts.extensions.get::<lakebox_service::OperationName>().cloned();
            let form_auth = parts
                .extensions
                .get::<lakebox_protocol::form_auth::FormAuth>()
                .cloned();
            let remote_ip = parts
                .extensions
                .get::<lakebox_service::PeerAddr>()
                .map(|p| p.0.ip());
            // Only a bucket that logs its requests pays for their record.
            let request_line = bucket
                .as_deref()
                .filter(|b| self.store.consulted(b).logging.is_some())
                .map(|_| {
                    format!(
                        "{} {} {:?}",
                        parts.method,
                        parts.uri.path_and_query().map_or("/", |p| p.as_str()),
                        parts.version
                    )
                });
            let anonymous = parts.extensions.get::<lakebox_service::Anonymous>().is_some();
            // S3 Control shares S3's signing name and, with the account id as the host's first
            // label, looks like a virtual-host bucket: its header and path tell it apart.
            let control = (parts.headers.contains_key("x-amz-account-id")
                && parts.uri.path().starts_with(crate::control::PREFIX))
            .then(|| parts.uri.path().to_owned());
            let req = S3Request {
                control,
                anonymous,
                operation,
                chunk_signer,
                peer_is_loopback,
                remote_ip,
                form_auth,
                ctx,
                method: parts.method,
                bucket,
                key,
                query: parse_query(parts.uri.query().unwrap_or(""))?,
                headers: parts.headers,
                body,
                host,
            };
            // A cross-origin request gets the Access-Control headers its bucket's CORS rules
            // allow, on success and error alike (browsers read neither without them).
            let cors = match (req.header("origin"), &req.bucket) {
                (Some(origin), Some(bucket)) if req.method != Method::OPTIONS => {
                    Some((origin.to_owned(), bucket.clone(), req.method.clone()))
                }
                _ => None,
            };
            // The bucket's cached configuration, looked up once for the log and the metrics.
            let consulted = req.bucket.as_deref().map(|b| self.store.consulted(b));
            let logged = consulted
                .as_deref()
                .and_then(|c| self.access_log_start(&req, c, remote_ip, request_line));
            let metered = consulted
                .as_deref()
                .and_then(|c| self.request_metrics_start(&req, c));
            let (account, region) = (req.ctx.account_id.clone(), req.ctx.region.clone());
            let result = self.dispatch(req).await;
            if let Some(logged) = logged {
                self.access_log_finish(logged, &result);
            }
            if let (Some(m), Some(recorder)) = (metered, self.metrics.get()) {
                crate::request_metrics::finish(recorder, &account, &region, m, &result);
            }
            let Some((origin, bucket, method)) = cors else {
                return result;
            };
            let allowed = crate::cors::actual_request_headers(&self.store, &bucket, &method, &origin);
            match result {
                Ok(mut resp) => {
                    for (name, value) in &allowed {
                        set_header(&mut resp, name, value);
                    }
                    Ok(resp)
                }
                Err(mut e) => {
                    e.headers.extend(allowed);
                    Err(e)
                }
            }
        })
    }
}

/// The S3 operation a request is for, read from its method, bucket, key, subresources and
/// headers before anything runs (Garage's way: parse to a typed endpoint, then handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    ListBuckets,
    BucketVersioning,
    BucketAcl,
    GetBucketPolicyStatus,
    BucketConfig(&'static str),
    ObjectTagging,
    ObjectAcl,
    ObjectRetention,
    ObjectLegalHold,
    GetObjectAttributes,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    ListMultipartUploads,
    ListObjectVersions,
    ListObjects,
    DeleteObjects,
    PostObject,
    UploadPart,
    CopyObject,
    PutObject,
    ListParts,
    GetObject,
    AbortMultipartUpload,
    DeleteObject,
    CreateMultipartUpload,
    RestoreObject,
    SelectObjectContent,
    CompleteMultipartUpload,
}

impl Endpoint {
    fn of(req: &S3Request) -> Result<Endpoint, ServiceError> {
        if let Some(sub) = UNIMPLEMENTED_SUBRESOURCES.iter().find(|s| req.has(s)) {
            return Err(errors::not_implemented(&format!("The ?{sub} subresource")));
        }
        let m = &req.method;
        Ok(match (&req.bucket, &req.key) {
            (None, _) if m == Method::GET => Endpoint::ListBuckets,
            (None, _) => return Err(errors::method_not_allowed()),
            (Some(_), None) if req.has("versioning") => Endpoint::BucketVersioning,
            (Some(_), None) if req.has("acl") => Endpoint::BucketAcl,
            (Some(_), None) if req.has("policyStatus") && m == Method::GET => Endpoint::GetBucketPolicyStatus,
            (Some(_), None) if config::bucket_config_sub(req).is_some() => {
                Endpoint::BucketConfig(config::bucket_config_sub(req).unwrap_or_default())
            }
            (Some(_), Some(_)) if req.has("tagging") => Endpoint::ObjectTagging,
            (Some(_), Some(_)) if req.has("acl") => Endpoint::ObjectAcl,
            (Some(_), Some(_)) if req.has("retention") => Endpoint::ObjectRetention,
            (Some(_), Some(_)) if req.has("legal-hold") => Endpoint::ObjectLegalHold,
            (Some(_), Some(_)) if req.has("attributes") && m == Method::GET => Endpoint::GetObjectAttributes,
            (Some(_), None) => match *m {
                Method::PUT => Endpoint::CreateBucket,
                Method::HEAD => Endpoint::HeadBucket,
                Method::DELETE => Endpoint::DeleteBucket,
                Method::GET if req.has("location") => Endpoint::GetBucketLocation,
                Method::GET if req.has("uploads") => Endpoint::ListMultipartUploads,
                Method::GET if req.has("versions") => Endpoint::ListObjectVersions,
                Method::GET => Endpoint::ListObjects,
                Method::POST if req.has("delete") => Endpoint::DeleteObjects,
                Method::POST if req.query.is_empty() && req.form_auth.is_some() => Endpoint::PostObject,
                _ => return Err(errors::method_not_allowed()),
            },
            (Some(_), Some(_)) => match *m {
                Method::PUT if req.has("uploadId") => Endpoint::UploadPart,
                Method::PUT if req.header("x-amz-copy-source").is_some() => Endpoint::CopyObject,
                Method::PUT => Endpoint::PutObject,
                Method::GET if req.has("uploadId") => Endpoint::ListParts,
                Method::GET | Method::HEAD => Endpoint::GetObject,
                Method::DELETE if req.has("uploadId") => Endpoint::AbortMultipartUpload,
                Method::DELETE => Endpoint::DeleteObject,
                Method::POST if req.has("uploads") => Endpoint::CreateMultipartUpload,
                Method::POST if req.has("restore") => Endpoint::RestoreObject,
                Method::POST if req.has("select") => Endpoint::SelectObjectContent,
                Method::POST if req.has("uploadId") => Endpoint::CompleteMultipartUpload,
                _ => return Err(errors::method_not_allowed()),
            },
        })
    }

    /// The operation as S3's access log names it (`REST.GET.OBJECT`, `REST.PUT.LOGGING_STATUS`).
    fn log_name(self, req: &S3Request) -> String {
        let m = req.method.as_str();
        let copy = req.header("x-amz-copy-source").is_some();
        let what = match self {
            Endpoint::ListBuckets => "SERVICE".to_owned(),
            Endpoint::BucketVersioning => "VERSIONING".to_owned(),
            Endpoint::BucketAcl | Endpoint::ObjectAcl => "ACL".to_owned(),
            Endpoint::BucketConfig("logging") => "LOGGING_STATUS".to_owned(),
            Endpoint::BucketConfig("policy") => "BUCKETPOLICY".to_owned(),
            Endpoint::GetBucketPolicyStatus => "BUCKETPOLICYSTATUS".to_owned(),
            Endpoint::BucketConfig(sub) => sub.to_ascii_uppercase().replace('-', "_"),
            Endpoint::ObjectTagging => "OBJECT_TAGGING".to_owned(),
            Endpoint::ObjectRetention => "RETENTION".to_owned(),
            Endpoint::ObjectLegalHold => "LEGAL_HOLD".to_owned(),
            Endpoint::GetObjectAttributes => "OBJECT_ATTRIBUTES".to_owned(),
            Endpoint::CreateBucket
            | Endpoint::HeadBucket
            | Endpoint::DeleteBucket
            | Endpoint::ListObjects => "BUCKET".to_owned(),
            Endpoint::GetBucketLocation => "LOCATION".to_owned(),
            Endpoint::ListMultipartUploads | Endpoint::CreateMultipartUpload => "UPLOADS".to_owned(),
            Endpoint::ListObjectVersions => "BUCKETVERSIONS".to_owned(),
            Endpoint::DeleteObjects => "MULTI_OBJECT_DELETE".to_owned(),
            Endpoint::UploadPart if copy => return "REST.COPY.PART".to_owned(),
            Endpoint::UploadPart => "PART".to_owned(),
            Endpoint::CopyObject => return "REST.COPY.OBJECT".to_owned(),
            Endpoint::ListParts | Endpoint::AbortMultipartUpload | Endpoint::CompleteMultipartUpload => {
                "UPLOAD".to_owned()
            }
            Endpoint::RestoreObject => "RESTORE".to_owned(),
            Endpoint::SelectObjectContent => "SELECT".to_owned(),
            Endpoint::PutObject | Endpoint::GetObject | Endpoint::DeleteObject => "OBJECT".to_owned(),
            // S3's log names a form upload REST.POST.UPLOAD.
            Endpoint::PostObject => "UPLOAD".to_owned(),
        };
        format!("REST.{m}.{what}")
    }

    /// The AWS operation's name, as the SDKs call it.
    fn name(self, req: &S3Request) -> String {
        let verb = match req.method {
            Method::PUT => "Put",
            Method::DELETE => "Delete",
            _ => "Get",
        };
        let copy = req.header("x-amz-copy-source").is_some();
        match self {
            Endpoint::BucketVersioning => format!("{verb}BucketVersioning"),
            Endpoint::BucketAcl => format!("{verb}BucketAcl"),
            Endpoint::BucketConfig(sub) => format!("{verb}{}", config::bucket_config_operation(sub)),
            Endpoint::ObjectTagging => format!("{verb}ObjectTagging"),
            Endpoint::ObjectAcl => format!("{verb}ObjectAcl"),
            Endpoint::ObjectRetention => format!("{verb}ObjectRetention"),
            Endpoint::ObjectLegalHold => format!("{verb}ObjectLegalHold"),
            Endpoint::ListObjects if req.query("list-type") == Some("2") => "ListObjectsV2".into(),
            Endpoint::UploadPart if copy => "UploadPartCopy".into(),
            Endpoint::GetObject if req.method == Method::HEAD => "HeadObject".into(),
            other => format!("{other:?}"),
        }
    }
}

/// What a logged request's record needs from before it runs.
struct Logged {
    target: crate::access_log::Target,
    owner: String,
    bucket: String,
    key: Option<String>,
    operation: String,
    started: std::time::Instant,
    received_millis: i64,
    remote_ip: Option<std::net::IpAddr>,
    requester: Option<String>,
    request_id: String,
    request_line: String,
    region: String,
    referer: Option<String>,
    user_agent: Option<String>,
    host: Option<String>,
    version_id: Option<String>,
    signature: (Option<&'static str>, Option<&'static str>),
    request_size: Option<u64>,
}

impl S3 {
    /// Starts the access log record of a request to a bucket that logs, if it does.
    fn access_log_start(
        &self,
        req: &S3Request,
        consulted: &crate::store::Consulted,
        remote_ip: Option<std::net::IpAddr>,
        request_line: Option<String>,
    ) -> Option<Logged> {
        let request_line = request_line?;
        let bucket = req.bucket.as_deref()?;
        let target = consulted.logging.clone()?;
        let operation = if req.method == Method::OPTIONS {
            "REST.OPTIONS.PREFLIGHT".to_owned()
        } else {
            Endpoint::of(req).map_or_else(|_| "-".to_owned(), |e| e.log_name(req))
        };
        let header = |n: &str| req.header(n).map(str::to_owned);
        let auth = req.header("authorization").unwrap_or("");
        let signature = if auth.starts_with("AWS4-") {
            (Some("SigV4"), Some("AuthHeader"))
        } else if auth.starts_with("AWS ") {
            (Some("SigV2"), Some("AuthHeader"))
        } else if req.has("X-Amz-Signature") {
            (Some("SigV4"), Some("QueryString"))
        } else if req.has("Signature") {
            (Some("SigV2"), Some("QueryString"))
        } else {
            (None, None)
        };
        Some(Logged {
            target,
            owner: consulted.owner.clone().unwrap_or_default(),
            bucket: bucket.to_owned(),
            key: req.key.clone(),
            operation,
            started: std::time::Instant::now(),
            received_millis: req.ctx.received_at_millis,
            remote_ip,
            requester: req.ctx.principal.as_ref().map(|_| req.ctx.account_id.clone()),
            request_id: lakebox_core::ids::s3_request_id(&req.ctx.request_id),
            request_line,
            region: req.ctx.region.clone(),
            referer: header("referer"),
            user_agent: header("user-agent"),
            host: header("host"),
            version_id: req.query("versionId").map(str::to_owned),
            signature,
            request_size: req.header("content-length").and_then(|v| v.parse().ok()),
        })
    }

    /// Starts the request metrics of a request to a bucket whose metrics configurations
    /// match it (none: nothing to do, and the bucket's cached configuration says so).
    fn request_metrics_start(
        &self,
        req: &S3Request,
        consulted: &crate::store::Consulted,
    ) -> Option<crate::request_metrics::Metered> {
        self.metrics.get()?;
        if consulted.metrics.is_empty() {
            return None;
        }
        // Requests for objects count by method; listings as ListRequests; other bucket
        // requests (its configuration) in AllRequests alone, as S3 counts them.
        let kind = match Endpoint::of(req) {
            Ok(Endpoint::ListObjects | Endpoint::ListObjectVersions | Endpoint::ListMultipartUploads) => {
                Some("ListRequests")
            }
            _ if req.key.is_some() => Some(crate::request_metrics::object_kind(req)),
            _ => None,
        };
        crate::request_metrics::start(&consulted.metrics, req, kind)
    }

    /// Queues the record of a finished request.
    fn access_log_finish(&self, l: Logged, result: &Result<Response<Body>, ServiceError>) {
        let (status, error_code, bytes_sent) = match result {
            Ok(resp) => (
                resp.status().as_u16(),
                None,
                resp.headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok()),
            ),
            Err(e) => (e.status, Some(e.code.as_ref()), None),
        };
        let object_size = match l.operation.as_str() {
            "REST.PUT.OBJECT" | "REST.PUT.PART" => l.request_size,
            "REST.GET.OBJECT" | "REST.HEAD.OBJECT" => bytes_sent,
            _ => None,
        };
        let line = crate::access_log::record(&crate::access_log::Request {
            owner: &l.owner,
            bucket: &l.bucket,
            received_millis: l.received_millis,
            remote_ip: l.remote_ip,
            requester: l.requester.as_deref(),
            request_id: &l.request_id,
            operation: &l.operation,
            key: l.key.as_deref(),
            request_line: l.request_line,
            status,
            error_code,
            bytes_sent: if l.operation == "REST.HEAD.OBJECT" {
                None
            } else {
                bytes_sent
            },
            object_size,
            total_millis: l.started.elapsed().as_millis() as u64,
            referer: l.referer.as_deref(),
            user_agent: l.user_agent.as_deref(),
            version_id: l.version_id.as_deref(),
            signature_version: l.signature.0,
            auth_type: l.signature.1,
            host: l.host.as_deref(),
            region: &l.region,
        });
        crate::access_log::queue(&self.store, l.target, line);
    }

    async fn dispatch(&self, mut req: S3Request) -> Result<Response<Body>, ServiceError> {
        if let Some(path) = req.control.take() {
            return crate::control::dispatch(&self.store, req, &path).await;
        }
        if req.method == Method::OPTIONS {
            if let Some(slot) = &req.operation {
                slot.set("OptionsObject");
            }
            return crate::cors::preflight(
                &self.store,
                req.bucket.as_deref(),
                req.key.is_some(),
                &req.headers,
            );
        }
        let endpoint = Endpoint::of(&req)?;
        if let Some(slot) = &req.operation {
            slot.set(endpoint.name(&req));
        }
        let store = &self.store;
        crate::access::authorize(store, &req, endpoint)?;
        match endpoint {
            Endpoint::ListBuckets => bucket::list_buckets(store, &req),
            Endpoint::BucketVersioning => config::versioning(store, req).await,
            Endpoint::BucketAcl | Endpoint::ObjectAcl => config::acl(store, req).await,
            Endpoint::GetBucketPolicyStatus => config::policy_status(store, &req),
            Endpoint::BucketConfig(sub) => config::bucket_config(store, req, sub).await,
            Endpoint::ObjectTagging => config::object_tagging(store, req).await,
            Endpoint::ObjectRetention => crate::object_lock::retention(store, req).await,
            Endpoint::ObjectLegalHold => crate::object_lock::legal_hold(store, req).await,
            Endpoint::GetObjectAttributes => object::get_object_attributes(store, &req),
            Endpoint::CreateBucket => bucket::create_bucket(store, req).await,
            Endpoint::HeadBucket => bucket::head_bucket(store, &req),
            Endpoint::DeleteBucket => bucket::delete_bucket(store, req).await,
            Endpoint::GetBucketLocation => bucket::get_bucket_location(store, &req),
            Endpoint::ListMultipartUploads => multipart::list_uploads(store, &req),
            Endpoint::ListObjectVersions => list::list_object_versions(store, &req),
            Endpoint::ListObjects => list::list_objects(store, &req),
            Endpoint::DeleteObjects => object::delete_objects(store, req).await,
            Endpoint::UploadPart => multipart::upload_part(store, req).await,
            Endpoint::CopyObject => object::copy_object(store, req).await,
            Endpoint::PutObject => object::put_object(store, req).await,
            Endpoint::PostObject => crate::post::post_object(store, req).await,
            Endpoint::ListParts => multipart::list_parts(store, &req),
            Endpoint::GetObject => object::get_object(store, &req),
            Endpoint::AbortMultipartUpload => multipart::abort(store, req).await,
            Endpoint::DeleteObject => object::delete_object(store, req).await,
            Endpoint::CreateMultipartUpload => multipart::create(store, req).await,
            Endpoint::RestoreObject => object::restore_object(store, req).await,
            Endpoint::SelectObjectContent => {
                crate::select::select_object_content(store, self.select.get().cloned(), req).await
            }
            Endpoint::CompleteMultipartUpload => multipart::complete(store, req).await,
        }
    }
}
