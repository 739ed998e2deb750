//! The load loop: keep-alive HTTP/1.1 connections, each sending requests back to back until the
//! deadline, latencies recorded in HDR histograms.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use lakebox_protocol::Timestamp;
use lakebox_protocol::sigv4::{self, RequestParts};

use crate::workloads::{FANOUT_QUEUES, STREAM, Setup, TOPIC, Template, Workload};

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Target, e.g. http://127.0.0.1:4566
    #[arg(long)]
    endpoint: String,
    /// One of: kinesis-put-record, kinesis-put-records, kinesis-get-records, s3-put-4k,
    /// s3-get-4k, s3-get-64m, s3-get-1g
    #[arg(long)]
    workload: String,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds to measure.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Skip the workload's setup (already done against this target).
    #[arg(long)]
    no_setup: bool,
    /// Only run the workload's setup (fill a queue, say), and measure nothing.
    #[arg(long)]
    setup_only: bool,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// sqs-receive-delete: how many messages setup queues for the run to drain.
    #[arg(long, default_value_t = crate::workloads::DRAIN_MESSAGES)]
    drain_messages: usize,
}

struct Signer {
    host: String,
    region: String,
}

impl Signer {
    /// A ready-to-send request: the template with host, date and a SigV4 signature.
    fn build(&self, t: &Template, amz_date: &str) -> hyper::Request<Full<Bytes>> {
        let mut headers = HeaderMap::new();
        headers.insert("host", self.host.parse().expect("host"));
        headers.insert("x-amz-date", amz_date.parse().expect("date"));
        for (k, v) in &t.headers {
            headers.insert(*k, v.parse().expect("header"));
        }
        let (path, query) = t.path.split_once('?').unwrap_or((&t.path, ""));
        let parts = RequestParts {
            method: t.method,
            raw_path: path,
            raw_query: query,
            headers: &headers,
            authority: None,
            payload_hash: &t.payload_hash,
        };
        let mut names: Vec<&str> = vec!["host", "x-amz-date"];
        names.extend(t.headers.iter().map(|(k, _)| *k));
        let auth = sigv4::sign(
            &parts,
            "AKIDLAKEBOXBENCH",
            "bench-secret",
            &self.region,
            t.service,
            amz_date,
            &names,
        );
        let mut req = hyper::Request::builder().method(t.method).uri(&t.path);
        for (k, v) in headers.iter() {
            req = req.header(k, v);
        }
        req.header("authorization", auth)
            .body(Full::new(t.body.clone()))
            .expect("request")
    }
}

fn amz_date() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Timestamp::from_millis(ms).to_amz_date()
}

type Sender = http1::SendRequest<Full<Bytes>>;

/// A keep-alive connection that reconnects when the server closed it (servers answering with
/// `Connection: close`, or HTTP/1.0 servers, close after every response; reconnecting is then
/// part of what each request costs).
struct Conn {
    host: String,
    sender: Option<Sender>,
}

impl Conn {
    fn new(host: &str) -> Conn {
        Conn {
            host: host.to_owned(),
            sender: None,
        }
    }

    async fn connect(&self) -> Result<Sender, String> {
        let stream = tokio::net::TcpStream::connect(&self.host)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    async fn send(&mut self, req: hyper::Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.connect().await?,
        };
        // The connection must have finished the previous exchange before it takes another
        // request; if the server closed it meanwhile, open a new one.
        if sender.ready().await.is_err() {
            sender = self.connect().await?;
            sender.ready().await.map_err(|e| e.to_string())?;
        }
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        self.sender = Some(sender);
        Ok((status, body))
    }
}

async fn setup(
    workload: Workload,
    signer: &Arc<Signer>,
    host: &str,
    drain_messages: usize,
) -> Result<Option<String>, String> {
    let mut sender = Conn::new(host);
    let mut iterator = None;
    for step in workload.setup(drain_messages) {
        match step {
            Setup::Send(t, may_fail) => {
                let (status, body) = sender
                    .send(signer.build(&t, &amz_date()))
                    .await
                    .map_err(|e| format!("{} {} ({} bytes): {e}", t.method, t.path, t.body.len()))?;
                if !may_fail && !(200..300).contains(&status) {
                    return Err(format!(
                        "setup {} {} answered {status}: {}",
                        t.method,
                        t.path,
                        String::from_utf8_lossy(&body)
                    ));
                }
            }
            Setup::Fill(templates) => fill(signer, host, templates).await?,
            Setup::WaitActive => {
                let t = Template::kinesis("DescribeStreamSummary", serde_json::json!({"StreamName": STREAM}));
                for _ in 0..100 {
                    let (_, body) = sender.send(signer.build(&t, &amz_date())).await?;
                    if String::from_utf8_lossy(&body).contains("\"ACTIVE\"") {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Setup::WaitTable => {
                let t = Template::dynamodb(
                    "DescribeTable",
                    serde_json::json!({"TableName": crate::workloads::TABLE}),
                );
                for _ in 0..100 {
                    let (_, body) = sender.send(signer.build(&t, &amz_date())).await?;
                    let text = String::from_utf8_lossy(&body);
                    // The ceiling answers no table at all: nothing to wait for.
                    if text.contains("\"ACTIVE\"") || !text.contains("TableStatus") {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Setup::Fanout => iterator = Some(setup_fanout(signer, &mut sender).await?),
            Setup::Iterator => {
                let t = Template::kinesis(
                    "GetShardIterator",
                    serde_json::json!({"StreamName": STREAM, "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}),
                );
                let (status, body) = sender.send(signer.build(&t, &amz_date())).await?;
                let v: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| format!("GetShardIterator ({status}): {e}"))?;
                iterator = v["ShardIterator"].as_str().map(str::to_owned);
            }
        }
    }
    Ok(iterator)
}

/// Sends every template, each of which must succeed, over [`FILL_CONNECTIONS`] connections.
async fn fill(signer: &Arc<Signer>, host: &str, templates: Vec<Template>) -> Result<(), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let templates = Arc::new(templates);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..FILL_CONNECTIONS {
        let (signer, templates, next) = (signer.clone(), templates.clone(), next.clone());
        let mut conn = Conn::new(host);
        workers.spawn(async move {
            while let Some(t) = templates.get(next.fetch_add(1, Ordering::Relaxed)) {
                send_ok(&signer, &mut conn, t).await?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(r) = workers.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// How many connections a [`Setup::Fill`] uses.
const FILL_CONNECTIONS: usize = 16;

/// The text of `<tag>` in an XML answer.
fn xml_text<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let start = body.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = body[start..].find(&format!("</{tag}>"))?;
    Some(&body[start..start + end])
}

async fn send_ok(signer: &Signer, sender: &mut Conn, t: &Template) -> Result<Bytes, String> {
    let (status, body) = sender.send(signer.build(t, &amz_date())).await?;
    if !(200..300).contains(&status) {
        return Err(format!(
            "setup answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(body)
}

fn queue_url(name: &str) -> String {
    format!("http://localhost/000000000000/{name}")
}

async fn setup_fanout(signer: &Signer, sender: &mut Conn) -> Result<String, String> {
    let created = send_ok(
        signer,
        sender,
        &Template::query("sns", "CreateTopic", "2010-03-31", &[("Name", TOPIC)]),
    )
    .await?;
    let topic = xml_text(&String::from_utf8_lossy(&created), "TopicArn")
        .ok_or("CreateTopic answered no TopicArn")?
        .to_owned();
    for q in FANOUT_QUEUES {
        send_ok(
            signer,
            sender,
            &Template::sqs("CreateQueue", serde_json::json!({"QueueName": q})),
        )
        .await?;
        let attrs = Template::sqs(
            "GetQueueAttributes",
            serde_json::json!({"QueueUrl": queue_url(q), "AttributeNames": ["QueueArn"]}),
        );
        let body = send_ok(signer, sender, &attrs).await?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let arn = v["Attributes"]["QueueArn"]
            .as_str()
            .ok_or("no QueueArn")?
            .to_owned();
        let sub = Template::query(
            "sns",
            "Subscribe",
            "2010-03-31",
            &[("TopicArn", &topic), ("Protocol", "sqs"), ("Endpoint", &arn)],
        );
        send_ok(signer, sender, &sub).await?;
    }
    Ok(topic)
}

/// sns-publish-fanout: waits until both queues hold `published` messages (or `timeout`
/// passes); answers when that was, or `None`.
async fn wait_fanout(host: &str, signer: &Signer, published: u64, timeout: Duration) -> Option<Instant> {
    let mut sender = Conn::new(host);
    let give_up = Instant::now() + timeout;
    while Instant::now() < give_up {
        let mut landed = true;
        for q in FANOUT_QUEUES {
            let t = Template::sqs(
                "GetQueueAttributes",
                serde_json::json!({"QueueUrl": queue_url(q), "AttributeNames": ["ApproximateNumberOfMessages"]}),
            );
            let Ok((_, body)) = sender.send(signer.build(&t, &amz_date())).await else {
                return None;
            };
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let n: u64 = v["Attributes"]["ApproximateNumberOfMessages"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            landed &= n >= published;
        }
        if landed {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

struct Outcome {
    histogram: Histogram<u64>,
    ok: u64,
    errors: u64,
    samples: Vec<String>,
    bytes: u64,
    /// What the requests delivered (records, messages), when it varies per request.
    units: Option<u64>,
    /// When this worker stopped (its queue drained, or the deadline).
    finished: Instant,
}

impl Outcome {
    fn new() -> Outcome {
        Outcome {
            histogram: Histogram::new(3).expect("histogram"),
            ok: 0,
            errors: 0,
            samples: Vec::new(),
            bytes: 0,
            units: None,
            finished: Instant::now(),
        }
    }

    fn failed(&mut self, what: String) {
        self.errors += 1;
        if self.samples.len() < 3 {
            self.samples.push(what);
        }
    }
}

/// The part of a ReceiveMessage answer a drain needs.
#[derive(serde::Deserialize)]
struct Received<'a> {
    #[serde(rename = "Messages", default, borrow)]
    messages: Vec<ReceivedMessage<'a>>,
}

#[derive(serde::Deserialize)]
struct ReceivedMessage<'a> {
    #[serde(rename = "ReceiptHandle", borrow)]
    receipt_handle: std::borrow::Cow<'a, str>,
}

/// sqs-receive-delete: ReceiveMessage(10), then DeleteMessageBatch of the receipt handles it
/// returned, until the queue is empty or the deadline passes. A latency sample is one
/// receive-and-delete cycle; the units are messages.
async fn drain_worker(
    host: String,
    signer: std::sync::Arc<Signer>,
    receive: Template,
    deadline: Instant,
) -> Outcome {
    let mut out = Outcome::new();
    let mut units = 0u64;
    let mut sender = Conn::new(&host);
    while Instant::now() < deadline {
        let started = Instant::now();
        let (status, body) = match sender.send(signer.build(&receive, &amz_date())).await {
            Ok(r) => r,
            Err(e) => {
                out.failed(e);
                continue;
            }
        };
        if status != 200 {
            out.failed(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ));
            continue;
        }
        // Only the receipt handles are read: the bodies are skipped, not built into values.
        let received: Received = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                // Not an empty queue: an answer that cannot be read is a failed run.
                out.failed(format!("ReceiveMessage answer unreadable: {e}"));
                break;
            }
        };
        let handles: Vec<&str> = received.messages.iter().map(|m| &*m.receipt_handle).collect();
        if handles.is_empty() {
            break;
        }
        let entries: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(i, h)| serde_json::json!({"Id": format!("d{i}"), "ReceiptHandle": h}))
            .collect();
        let delete = Template::sqs(
            "DeleteMessageBatch",
            serde_json::json!({"QueueUrl": crate::workloads::DRAIN_QUEUE_URL, "Entries": entries}),
        );
        match sender.send(signer.build(&delete, &amz_date())).await {
            Ok((200, body)) if !String::from_utf8_lossy(&body).contains("\"Failed\":[{") => {
                let _ = out.histogram.record(started.elapsed().as_micros().max(1) as u64);
                out.ok += 1;
                units += handles.len() as u64;
            }
            Ok((status, body)) => out.failed(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            )),
            Err(e) => out.failed(e),
        }
    }
    out.units = Some(units);
    out.finished = Instant::now();
    out
}

async fn worker(
    host: String,
    signer: std::sync::Arc<Signer>,
    templates: std::sync::Arc<Vec<Template>>,
    offset: usize,
    deadline: Instant,
    ok_statuses: &'static [u16],
) -> Outcome {
    let mut out = Outcome::new();
    let mut sender = Conn::new(&host);
    // Requests signed once per second per template.
    let mut signed: Vec<Option<(String, hyper::Request<Full<Bytes>>)>> = vec![None; 0];
    signed.resize_with(templates.len(), || None);
    let mut n = offset;
    while Instant::now() < deadline {
        let i = n % templates.len();
        n += 1;
        let date = amz_date();
        // A template of new keys: numbered and signed for this request alone.
        let numbered;
        if templates[i].unique {
            numbered = signer.build(&templates[i].numbered(&format!("{offset}-{n}")), &date);
            signed[i] = Some((String::new(), numbered));
        }
        let fresh = templates[i].unique || matches!(&signed[i], Some((d, _)) if *d == date);
        if !fresh {
            signed[i] = Some((date.clone(), signer.build(&templates[i], &date)));
        }
        let (_, template_req) = signed[i].as_ref().expect("signed above");
        let mut req = hyper::Request::builder()
            .method(template_req.method())
            .uri(template_req.uri());
        for (k, v) in template_req.headers() {
            req = req.header(k, v);
        }
        let req = req.body(template_req.body().clone()).expect("request");
        let started = Instant::now();
        match sender.send(req).await {
            Ok((status, body)) if ok_statuses.contains(&status) => {
                let _ = out.histogram.record(started.elapsed().as_micros().max(1) as u64);
                out.ok += 1;
                out.bytes += body.len() as u64;
            }
            Ok((status, body)) => {
                out.failed(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                ));
            }
            Err(e) => out.failed(e),
        }
    }
    out.finished = Instant::now();
    out
}

pub async fn run(args: LoadArgs) -> ExitCode {
    let Some(workload) = Workload::parse(&args.workload) else {
        eprintln!("unknown workload {}", args.workload);
        return ExitCode::from(2);
    };
    let host = args
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let signer = std::sync::Arc::new(Signer {
        host: host.clone(),
        region: args.region.clone(),
    });
    let iterator = if args.no_setup {
        None
    } else {
        match setup(workload, &signer, &host, args.drain_messages).await {
            Ok(it) => it,
            Err(e) => {
                println!(
                    "{}",
                    serde_json::json!({"workload": args.workload, "endpoint": args.endpoint, "error": format!("setup failed: {e}")})
                );
                return ExitCode::FAILURE;
            }
        }
    };
    if args.setup_only {
        println!(
            "{}",
            serde_json::json!({"workload": args.workload, "endpoint": args.endpoint, "setup": "done"})
        );
        return ExitCode::SUCCESS;
    }
    let templates = std::sync::Arc::new(workload.templates(iterator.as_deref()));
    let ok_statuses: &'static [u16] = &[200, 204];
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        if workload == Workload::SqsReceiveDelete {
            tasks.push(tokio::spawn(drain_worker(
                host.clone(),
                signer.clone(),
                templates[0].clone(),
                deadline,
            )));
            continue;
        }
        tasks.push(tokio::spawn(worker(
            host.clone(),
            signer.clone(),
            templates.clone(),
            c * 7,
            deadline,
            ok_statuses,
        )));
    }
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    let (mut ok, mut errors, mut bytes, mut samples) = (0u64, 0u64, 0u64, Vec::new());
    let (mut counted, mut last) = (None::<u64>, started);
    for t in tasks {
        let o = t.await.expect("worker");
        let _ = hist.add(&o.histogram);
        ok += o.ok;
        errors += o.errors;
        bytes += o.bytes;
        samples.extend(o.samples);
        if let Some(u) = o.units {
            counted = Some(counted.unwrap_or(0) + u);
        }
        last = last.max(o.finished);
    }
    // Fan-out is timed until every published message reached both queues.
    if workload == Workload::SnsPublishFanout && errors == 0 {
        match wait_fanout(&host, &signer, ok, Duration::from_secs(300)).await {
            Some(at) => last = at,
            None => {
                println!(
                    "{}",
                    serde_json::json!({"workload": args.workload, "endpoint": args.endpoint, "error": format!("the {ok} published messages did not all reach both queues")})
                );
                return ExitCode::FAILURE;
            }
        }
    }
    // A draining workload is timed until its queue was empty.
    let secs = (last - started).as_secs_f64();
    let (unit, per) = workload.unit();
    let units = counted.unwrap_or(ok * per);
    if errors > 0 {
        samples.truncate(5);
        println!(
            "{}",
            serde_json::json!({"workload": args.workload, "endpoint": args.endpoint, "error": format!("{errors} error responses (of {})", ok + errors), "samples": samples})
        );
        return ExitCode::FAILURE;
    }
    println!(
        "{}",
        serde_json::json!({
            "workload": args.workload,
            "endpoint": args.endpoint,
            "connections": args.connections,
            "seconds": secs,
            "requests": ok,
            "rps": ok as f64 / secs,
            "unit": unit,
            "units_per_s": units as f64 / secs,
            "mib_per_s": bytes as f64 / secs / 1048576.0,
            "p50_us": hist.value_at_quantile(0.50),
            "p90_us": hist.value_at_quantile(0.90),
            "p99_us": hist.value_at_quantile(0.99),
            "p999_us": hist.value_at_quantile(0.999),
            "max_us": hist.max(),
        })
    );
    ExitCode::SUCCESS
}
