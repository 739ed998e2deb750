//! `lakebox serve`: set up the data directory, build the services, serve until a signal, and
//! shut down cleanly.

use std::fs::{self, File};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use lakebox_core::{Clock, OffsetClock, SystemClock};
use lakebox_gateway::{Authenticator, Gateway, GatewayConfig, Registry};
use lakebox_service::BackgroundTasks;
use lakebox_store::blob::remove_stale_temp_files;
use tokio::net::TcpListener;
use tracing_subscriber::filter::LevelFilter;

use crate::ServeArgs;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("lakebox: {msg}");
    ExitCode::from(2)
}

fn init_logging(level: &str) -> Result<(), String> {
    let filter = LevelFilter::from_str(level)
        .map_err(|_| format!("--log-level must be one of error, warn, info, debug, trace; got '{level}'"))?;
    tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    Ok(())
}

/// Opening the stores allocates and frees a few MiB (redb's allocator state for each new
/// database). mimalloc, which serves Rust's allocations, gives freed pages back by itself after a
/// short delay (an explicit `mi_collect` at this point measured no lower); glibc's heap, which
/// now holds only what C code allocates, keeps them, so it is trimmed once when the server is
/// ready.
fn release_startup_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs a service's (blocking) open on a thread of the runtime's blocking pool, so several can
/// open at once; `what` names it in the error.
async fn opening<T: Send + 'static, E: std::fmt::Display + Send + 'static>(
    what: &str,
    open: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(open).await {
        Ok(Ok(service)) => Ok(service),
        Ok(Err(e)) => Err(format!("cannot open the {what}: {e}")),
        Err(e) => Err(format!("cannot open the {what}: {e}")),
    }
}

fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("lakebox"))
        .unwrap_or_else(|| PathBuf::from("lakebox-data"))
}

/// Takes an exclusive lock on the data directory so two servers never share it.
fn lock_data_dir(dir: &Path) -> Result<File, String> {
    let path = dir.join("lakebox.lock");
    let file = File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => format!(
            "another Lakebox process is already using the data directory {}",
            dir.display()
        ),
        std::fs::TryLockError::Error(e) => format!("cannot lock {}: {e}", path.display()),
    })?;
    Ok(file)
}

pub fn run(args: ServeArgs) -> ExitCode {
    if let Err(msg) = init_logging(&args.log_level) {
        return fail(msg);
    }
    if let Err(msg) = args.check_exposure() {
        return fail(msg);
    }
    let credentials = match args.credential_pairs() {
        Ok(c) => c,
        Err(msg) => return fail(msg),
    };
    // The temporary directory (if any) lives until this function returns, then is removed.
    let (data_dir, _ephemeral) = if args.ephemeral {
        match tempfile::Builder::new().prefix("lakebox-").tempdir() {
            Ok(t) => (t.path().to_owned(), Some(t)),
            Err(e) => return fail(format!("cannot create a temporary data directory: {e}")),
        }
    } else {
        (args.data_dir.clone().unwrap_or_else(default_data_dir), None)
    };
    if let Err(e) = fs::create_dir_all(&data_dir) {
        return fail(format!(
            "cannot create data directory {}: {e}",
            data_dir.display()
        ));
    }
    let data_dir = data_dir.canonicalize().unwrap_or(data_dir);
    let _lock = match lock_data_dir(&data_dir) {
        Ok(l) => l,
        Err(msg) => return fail(msg),
    };
    match remove_stale_temp_files(&data_dir) {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "removed temporary files left by an earlier crash"),
        Err(e) => return fail(format!("cannot scan data directory {}: {e}", data_dir.display())),
    }
    // Before any store opens: a disk already full starts in the full state (reads, deletes).
    if let Err(e) = lakebox_store::space::configure(&data_dir, args.disk_reserve_bytes) {
        return fail(format!(
            "cannot write the space reserve in {}: {e}",
            data_dir.display()
        ));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(serve(args, data_dir, credentials));
    // Connections still open after the drain period are dropped here.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => fail(msg),
    }
}

async fn serve(args: ServeArgs, data_dir: PathBuf, credentials: Vec<(String, String)>) -> Result<(), String> {
    // With test routes on, the server runs on a clock the tests can move forward.
    let test_clock = args.enable_test_routes.then(OffsetClock::new);
    let clock: Arc<dyn Clock> = match &test_clock {
        Some(c) => Arc::new(c.clone()),
        None => Arc::new(SystemClock),
    };
    let mut registry = Registry::new();
    registry.query("sts", Arc::new(lakebox_sts::Sts));
    let s3_settings = lakebox_s3::S3Settings {
        restore_delay_millis: (args.s3_restore_seconds.max(0.0) * 1000.0) as i64,
        day_millis: ((args.s3_day_seconds.max(0.001)) * 1000.0) as i64,
        access_log_delivery_millis: (args.s3_log_delivery_seconds.max(0.05) * 1000.0) as u64,
    };
    let kinesis_settings = lakebox_kinesis::KinesisSettings {
        create_delay_millis: args.kinesis_create_delay_ms as i64,
        shard_limit: args.kinesis_shard_limit,
        throughput_limits: args.kinesis_throughput_limits == "on",
        hour_millis: ((args.kinesis_retention_hour_seconds.max(0.001)) * 1000.0) as i64,
        segment_bytes: args.kinesis_segment_bytes.max(4096),
    };
    // Each service opens its own metadata store, and creating one costs a few fsyncs: the
    // stores that do not depend on each other open side by side (S3 and Kinesis, then Glue,
    // then Athena and Firehose), so a fresh server is up in about half the time.
    let (s3, kinesis) = tokio::join!(
        opening("S3 store", {
            let (dir, clock) = (data_dir.join("s3"), clock.clone());
            move || lakebox_s3::S3::open(&dir, clock, s3_settings)
        }),
        opening("Kinesis store", {
            let (dir, clock) = (data_dir.join("kinesis"), clock.clone());
            move || lakebox_kinesis::Kinesis::open(&dir, clock, kinesis_settings)
        }),
    );
    let (s3, kinesis) = (s3?, kinesis?);
    let (sqs, sns, cloudwatch, logs, lambda, dynamodb) = tokio::join!(
        opening("SQS store", {
            let (dir, clock, memory) = (data_dir.join("sqs"), clock.clone(), args.sqs_memory_bytes);
            move || lakebox_sqs::Sqs::open(&dir, clock, memory)
        }),
        opening("SNS store", {
            let (dir, clock) = (data_dir.join("sns"), clock.clone());
            move || lakebox_sns::Sns::open(&dir, clock)
        }),
        opening("CloudWatch store", {
            let (dir, clock) = (data_dir.join("cloudwatch"), clock.clone());
            move || lakebox_cloudwatch::CloudWatch::open(&dir, clock)
        }),
        opening("CloudWatch Logs store", {
            let (dir, clock) = (data_dir.join("logs"), clock.clone());
            move || lakebox_logs::Logs::open(&dir, clock)
        }),
        opening("Lambda store", {
            let (dir, clock) = (data_dir.join("lambda"), clock.clone());
            move || lakebox_lambda::Lambda::open(&dir, clock)
        }),
        opening("DynamoDB store", {
            let (dir, clock) = (data_dir.join("dynamodb"), clock.clone());
            let settings = lakebox_dynamodb::DynamoDbSettings {
                throughput_limits: args.dynamodb_throughput_limits == "on",
            };
            move || lakebox_dynamodb::DynamoDb::open(&dir, clock, settings)
        }),
    );
    let (sqs, sns, cloudwatch, logs, lambda, dynamodb) = (sqs?, sns?, cloudwatch?, logs?, lambda?, dynamodb?);
    registry.rpc(
        "dynamodbstreams",
        lakebox_dynamodb::streams::DynamoDbStreams::new(dynamodb.clone()),
    );
    let dynamodb_streams: Arc<dyn lakebox_service::links::ShardedLog> =
        lakebox_dynamodb::streams::StreamLog::new(dynamodb.clone());
    registry.rpc("dynamodb", dynamodb.clone());
    // Background work the server owns, stopped after the last request is answered.
    let mut background = BackgroundTasks::new();
    background.adopt(
        "dynamodb ttl and stream retention",
        dynamodb.start_background_work(std::time::Duration::from_millis(
            args.dynamodb_ttl_sweep_ms.max(10),
        )),
    );
    // Services publish their AWS metrics into CloudWatch, gathered in memory per minute.
    let service_metrics = lakebox_service::metrics::Aggregator::new(clock.clone());
    let metrics_every = std::time::Duration::from_millis(args.cloudwatch_service_metrics_ms.max(10));
    background.adopt(
        "cloudwatch service metrics",
        cloudwatch.start_service_metrics(service_metrics.clone(), metrics_every),
    );
    background.adopt(
        "sqs metrics",
        sqs.start_metrics(
            lakebox_service::metrics::Recorder::new(service_metrics.clone()),
            metrics_every,
        ),
    );
    background.adopt(
        "dynamodb metrics",
        dynamodb.start_metrics(
            lakebox_service::metrics::Recorder::new(service_metrics.clone()),
            metrics_every,
        ),
    );
    background.adopt("s3 lifecycle", s3.start_background_work());
    background.adopt("s3 access logs", s3.start_access_log_delivery());
    background.adopt("kinesis retention", kinesis.start_background_work());
    background.adopt("sqs retention", sqs.start_background_work());
    // S3's event notifications and SNS's deliveries go to the services that own their targets.
    let queues = lakebox_service::events::EventRouter::new().with("sqs", sqs.event_sink());
    let event_targets = Arc::new(
        queues
            .clone()
            .with("sns", sns.event_sink())
            .with("lambda", lambda.event_sink()),
    );
    background.adopt(
        "s3 event notifications",
        s3.start_event_delivery(event_targets.clone()),
    );
    // Alarm actions notify SNS topics and invoke functions.
    background.adopt(
        "cloudwatch alarms",
        cloudwatch.start_alarm_evaluation(
            Arc::new(
                lakebox_service::events::EventRouter::new()
                    .with("sns", sns.event_sink())
                    .with("lambda", lambda.event_sink()),
            ),
            std::time::Duration::from_millis(args.cloudwatch_alarm_tick_ms.max(10)),
        ),
    );
    sns.set_metrics(lakebox_service::metrics::Recorder::new(service_metrics.clone()));
    registry.query("sns", sns.clone());
    // The signing certificate is public (subscribers fetch it unsigned); the mail outbox not.
    registry.internal("sns", &["SimpleNotificationService"], sns.clone());
    // SQS speaks awsJson (today's SDKs) and awsQuery (older ones): one service, two doors.
    registry.rpc("sqs", sqs.clone());
    let sqs_source = sqs.queue_source();
    registry.query("sqs", sqs);
    let kinesis =
        Arc::new(kinesis.with_metrics(lakebox_service::metrics::Recorder::new(service_metrics.clone())));
    let kinesis_streams = kinesis.sharded_log();
    // DynamoDB streams changes into Kinesis data streams (streaming destinations).
    dynamodb.set_kinesis(kinesis_streams.clone());
    background.adopt(
        "dynamodb kinesis destinations",
        dynamodb.start_destination_delivery(Arc::new(
            lakebox_service::events::EventRouter::new().with("kinesis", kinesis.event_sink()),
        )),
    );
    let lambda_streams = kinesis_streams.clone();
    registry.rpc("kinesis", kinesis.clone());
    // Metric filters publish into CloudWatch beside the services' own metrics.
    logs.set_metrics(lakebox_service::metrics::Recorder::new(service_metrics.clone()));
    logs.set_lake(s3.lake());
    background.adopt("logs retention", logs.start_background_work());
    // CloudWatch speaks rpc-v2-cbor and awsJson (one dispatcher, the encoding per request) and
    // awsQuery.
    background.adopt("cloudwatch retention", cloudwatch.start_background_work());
    registry.rpc("cloudwatch", cloudwatch.clone());
    registry.query("cloudwatch", cloudwatch);
    let glue_settings = lakebox_glue::GlueSettings {
        crawl_min_millis: args.glue_crawl_min_ms,
    };
    // One pool of threads for heavy work (queries, S3 Select, crawls), apart from the request
    // threads.
    let heavy = Arc::new(
        lakebox_service::pool::QueryPool::with_default_threads()
            .map_err(|e| format!("cannot start the query threads: {e}"))?,
    );
    let glue = opening("Glue catalog", {
        let (dir, clock, lake, heavy) = (data_dir.join("glue"), clock.clone(), s3.lake(), heavy.clone());
        move || lakebox_glue::Glue::open(&dir, clock, lake, glue_settings, heavy)
    })
    .await?;
    background.adopt("glue crawler schedules", glue.start_background_work());
    let catalog = glue.catalog();
    registry.rpc("glue", Arc::new(glue));
    let firehose_settings = lakebox_firehose::FirehoseSettings {
        metrics: lakebox_service::metrics::Recorder::new(service_metrics.clone()),
        create_delay_millis: args.firehose_create_delay_ms as i64,
        functions: Some(lambda.invoker()),
    };
    let (athena, firehose) = tokio::join!(
        opening("Athena store", {
            let (dir, clock, catalog, lake) =
                (data_dir.join("athena"), clock.clone(), catalog.clone(), s3.lake());
            move || {
                lakebox_athena::Athena::open(
                    &dir,
                    clock,
                    catalog,
                    lake,
                    lakebox_athena::DEFAULT_CONCURRENCY,
                    heavy,
                )
            }
        }),
        opening("Firehose store", {
            let (dir, clock, lake) = (data_dir.join("firehose"), clock.clone(), s3.lake());
            move || {
                lakebox_firehose::Firehose::open(
                    &dir,
                    clock,
                    lake,
                    catalog,
                    kinesis_streams,
                    firehose_settings,
                )
            }
        }),
    );
    let (athena, firehose) = (athena?, firehose?);
    s3.set_select_engine(athena.select_engine());
    s3.set_metrics(lakebox_service::metrics::Recorder::new(service_metrics.clone()));
    athena.set_metrics(lakebox_service::metrics::Recorder::new(service_metrics.clone()));
    registry.rpc("athena", Arc::new(athena));
    firehose
        .start_background_work()
        .map_err(|e| format!("cannot start Firehose delivery: {e}"))?;
    let firehose = Arc::new(firehose);
    registry.rpc("firehose", firehose.clone());
    // SNS delivers to queues and Firehose delivery streams.
    background.adopt(
        "sns delivery",
        sns.start_delivery(Arc::new(
            queues
                .with("firehose", firehose.event_sink())
                .with("lambda", lambda.event_sink()),
        )),
    );
    // Subscription filters deliver to Kinesis streams and Firehose delivery streams.
    background.adopt(
        "logs subscriptions",
        logs.start_subscription_delivery(Arc::new(
            lakebox_service::events::EventRouter::new()
                .with("kinesis", kinesis.event_sink())
                .with("firehose", firehose.event_sink())
                .with("lambda", lambda.event_sink()),
        )),
    );
    // Functions read packages from S3; GetFunction's download URL is public, as AWS's
    // presigned one is.
    lambda.set_lake(s3.lake());
    dynamodb.set_lake(s3.lake());
    lambda.set_log_writer(logs.log_writer());
    lambda.set_metrics(lakebox_service::metrics::Recorder::new(service_metrics.clone()));
    // Event source mappings read Kinesis streams and SQS queues.
    lambda.set_event_sources(lambda_streams, dynamodb_streams, sqs_source);
    background.adopt("lambda event sources", lambda.start_event_sources());
    // Asynchronous invocations send their records to SQS, SNS and other functions.
    lambda.set_async_invocation(
        event_targets,
        std::time::Duration::from_millis(args.lambda_async_retry_delay_ms),
    );
    background.adopt("lambda async invocations", lambda.start_async_invocations());
    background.adopt("lambda provisioned concurrency", lambda.start_provisioning());
    registry.http("lambda", lambda.clone());
    registry.internal("lambda", &["code/"], lambda.code_routes());
    registry.rpc("logs", logs);
    registry.http("s3", Arc::new(s3));
    if args.enable_test_routes {
        crate::testing::install(
            &mut registry,
            &data_dir.join("_test"),
            test_clock.clone().unwrap_or_default(),
        )
        .map_err(|e| format!("cannot open test stores: {e}"))?;
    }
    let auth = if credentials.is_empty() {
        Authenticator::accept_all(clock.clone())
    } else {
        Authenticator::verifying(credentials, clock.clone())
    };
    let mut health_info = serde_json::Map::new();
    health_info.insert("version".into(), VERSION.into());
    health_info.insert("dataDir".into(), data_dir.display().to_string().into());
    health_info.insert("ephemeral".into(), args.ephemeral.into());
    let config = GatewayConfig {
        default_region: args.region.clone(),
        health_info,
        health_details_public: args.is_loopback() && !auth.is_verifying(),
        header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
        degraded: Some(|| {
            lakebox_store::space::is_full().then_some(
                "disk full: reads and deletes are served, writes that add data are refused until space is freed",
            )
        }),
    };
    let gateway = Gateway::new(registry, auth, clock, config);

    // Signal handlers go in before the ready line, so a signal sent right after it is a clean
    // shutdown rather than the default (fatal) disposition.
    let shutdown = shutdown_signal().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let reachable = if addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    sns.set_listen_url(format!("http://{reachable}"));
    lambda.set_listen_url(format!("http://{reachable}"));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "Lakebox {VERSION} listening on http://{addr} with data in {}{}",
        data_dir.display(),
        if args.ephemeral { " (ephemeral)" } else { "" }
    );
    let _ = out.flush();
    drop(out);
    release_startup_memory();

    let drain = Duration::from_secs(args.shutdown_timeout);
    gateway
        .serve(listener, shutdown, drain)
        .await
        .map_err(|e| format!("server failed: {e}"))?;
    background.shutdown().await;
    lambda.shutdown();
    tracing::info!("stopped; all acknowledged data is on disk");
    Ok(())
}

/// Installs SIGINT/SIGTERM handlers now; the returned future resolves on the first signal.
/// A second signal exits at once.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down: no new connections; finishing in-flight requests");
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            eprintln!("lakebox: second signal, exiting immediately");
            std::process::exit(130);
        });
    })
}
