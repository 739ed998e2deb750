//! `lakebox`: the command line. Parses flags (each also an environment variable), then hands
//! over to [`serve`].

mod serve;
mod testing;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

// mimalloc rather than glibc's malloc: small requests spent 10-15% of the server's CPU in
// glibc's malloc/free (decision 0022).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in mimalloc's option enum (the crate names no constant for it).
#[cfg(target_os = "linux")]
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// By default mimalloc commits its arenas up front on Linux, which doubled an idle server's
/// resident memory (15 -> 33 MiB); committed as used, it stays near glibc's. Options are read when
/// mimalloc initialises, in a constructor of priority 101, so this one runs just before it.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00100")]
static SET_ALLOCATOR_OPTIONS: extern "C" fn() = {
    extern "C" fn set() {
        // SAFETY: stores one option's value; mimalloc reads it when it initialises.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) }
    }
    set
};

#[derive(Parser)]
#[command(
    name = "lakebox",
    version,
    about = "The AWS data-analytics stack in one binary, speaking the real AWS protocols.",
    long_about = "Lakebox serves AWS APIs (S3, SQS, Kinesis, Firehose, Glue, Athena, …) on one local \
                  endpoint. Point the AWS CLI or any AWS SDK at it:\n\n  \
                  export AWS_ENDPOINT_URL=http://localhost:4566\n  \
                  aws sts get-caller-identity\n\n\
                  Any credentials are accepted unless --credentials is given."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server until interrupted (Ctrl-C or SIGTERM).
    Serve(ServeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on. Anything other than a loopback address needs --credentials
    /// (or an explicit --allow-anonymous).
    #[arg(long, env = "LAKEBOX_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// TCP port to listen on.
    #[arg(long, env = "LAKEBOX_PORT", default_value_t = 4566)]
    pub port: u16,

    /// Where Lakebox keeps everything it stores. Defaults to the user's data directory
    /// (~/.local/share/lakebox on Linux).
    #[arg(long, env = "LAKEBOX_DATA_DIR", conflicts_with = "ephemeral")]
    pub data_dir: Option<PathBuf>,

    /// Keep data in a temporary directory that is removed when Lakebox exits.
    #[arg(long, env = "LAKEBOX_EPHEMERAL")]
    pub ephemeral: bool,

    /// Region for requests that do not carry one in their signature.
    #[arg(long, env = "LAKEBOX_REGION", default_value = "us-east-1")]
    pub region: String,

    /// Log verbosity: error, warn, info, debug or trace. Logs go to stderr.
    #[arg(long, env = "LAKEBOX_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Verify SigV4 signatures against these credentials, given as ACCESS_KEY:SECRET.
    /// Repeat the flag, or separate pairs with commas in LAKEBOX_CREDENTIALS.
    #[arg(
        long = "credentials",
        env = "LAKEBOX_CREDENTIALS",
        value_delimiter = ',',
        value_name = "AKID:SECRET"
    )]
    pub credentials: Vec<String>,

    /// Serve a non-loopback address without verifying signatures. Anyone who can reach the
    /// port can then read and change all data.
    #[arg(long, env = "LAKEBOX_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,

    /// Seconds to let in-flight requests finish after SIGINT/SIGTERM.
    #[arg(long, env = "LAKEBOX_SHUTDOWN_TIMEOUT", default_value_t = 10)]
    pub shutdown_timeout: u64,

    /// Seconds an S3 RestoreObject of a GLACIER or DEEP_ARCHIVE object takes to complete.
    #[arg(long, env = "LAKEBOX_S3_RESTORE_SECONDS", default_value_t = 2.0)]
    pub s3_restore_seconds: f64,

    /// TEST ONLY: the length of a "day" in seconds for S3 lifecycle rules and restore expiry,
    /// so tests can watch a 1-day expiration happen. Leave at 86400 for real use.
    #[arg(long, env = "LAKEBOX_S3_DAY_SECONDS", default_value_t = 86_400.0)]
    pub s3_day_seconds: f64,

    /// Seconds between deliveries of S3 server access logs to their target buckets (S3 itself
    /// delivers within hours; a minute keeps them prompt locally).
    #[arg(long, env = "LAKEBOX_S3_LOG_DELIVERY_SECONDS", default_value_t = 60.0)]
    pub s3_log_delivery_seconds: f64,

    /// Milliseconds a new Kinesis stream stays CREATING before it is ACTIVE. AWS takes seconds;
    /// the default 0 keeps create-then-put scripts and tests fast.
    #[arg(long, env = "LAKEBOX_KINESIS_CREATE_DELAY_MS", default_value_t = 0)]
    pub kinesis_create_delay_ms: u64,

    /// Milliseconds between evaluations of CloudWatch alarms (CloudWatch evaluates every 10 s to
    /// a minute; tests shorten it).
    #[arg(long, env = "LAKEBOX_CLOUDWATCH_ALARM_TICK_MS", default_value_t = 10_000)]
    pub cloudwatch_alarm_tick_ms: u64,

    /// Hold PROVISIONED DynamoDB tables to their read and write capacity, with AWS's 300 s of
    /// burst (`ProvisionedThroughputExceededException` past it): `on` or `off`.
    #[arg(long, env = "LAKEBOX_DYNAMODB_THROUGHPUT_LIMITS", default_value = "on", value_parser = ["on", "off"])]
    pub dynamodb_throughput_limits: String,

    /// Milliseconds between DynamoDB's TTL sweeps (deleting expired items) and stream trims.
    /// AWS deletes expired items within days; Lakebox within this period.
    #[arg(long, env = "LAKEBOX_DYNAMODB_TTL_SWEEP_MS", default_value_t = 10_000)]
    pub dynamodb_ttl_sweep_ms: u64,

    /// Milliseconds before the first retry of a failed asynchronous Lambda invocation (the
    /// second waits twice as long). AWS waits a minute; tests shorten it.
    #[arg(long, env = "LAKEBOX_LAMBDA_ASYNC_RETRY_DELAY_MS", default_value_t = 60_000)]
    pub lambda_async_retry_delay_ms: u64,

    /// Milliseconds between flushes of Lakebox's own service metrics (AWS/Kinesis, …) into
    /// CloudWatch. CloudWatch's are per minute; tests shorten it.
    #[arg(long, env = "LAKEBOX_CLOUDWATCH_SERVICE_METRICS_MS", default_value_t = 60_000)]
    pub cloudwatch_service_metrics_ms: u64,

    /// Shortest time a Glue crawl stays RUNNING, in milliseconds. AWS crawls take a minute or
    /// more; Lakebox's finish as fast as the data allows (0), tests raise it to watch a run.
    #[arg(long, env = "LAKEBOX_GLUE_CRAWL_MIN_MS", default_value_t = 0)]
    pub glue_crawl_min_ms: u64,

    /// Milliseconds a new Firehose delivery stream stays CREATING (and a deleted one
    /// DELETING). AWS takes seconds; the default 0 keeps scripts and tests fast.
    #[arg(long, env = "LAKEBOX_FIREHOSE_CREATE_DELAY_MS", default_value_t = 0)]
    pub firehose_create_delay_ms: u64,

    /// Bytes of SQS message content held in memory across all queues. Messages sent past it
    /// are kept only in the journal on disk and read back when received, so a deep backlog
    /// costs disk, not memory.
    #[arg(long, env = "LAKEBOX_SQS_MEMORY_BYTES", default_value_t = lakebox_sqs::bodies::DEFAULT_MEMORY_BYTES)]
    pub sqs_memory_bytes: usize,

    /// Open Kinesis shards allowed per account and region (AWS's default quota is 500 in the
    /// largest regions).
    #[arg(long, env = "LAKEBOX_KINESIS_SHARD_LIMIT", default_value_t = 500)]
    pub kinesis_shard_limit: u32,

    /// Apply AWS's per-shard Kinesis throughput limits (1 MiB/s and 1,000 records/s in, 2 MiB/s
    /// and 5 GetRecords calls/s out): `on` or `off`.
    #[arg(long, env = "LAKEBOX_KINESIS_THROUGHPUT_LIMITS", default_value = "on", value_parser = ["on", "off"])]
    pub kinesis_throughput_limits: String,

    /// Size in bytes at which a Kinesis shard's log starts a new segment file. Retention
    /// deletes whole segments, so smaller segments free disk sooner.
    #[arg(long, env = "LAKEBOX_KINESIS_SEGMENT_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub kinesis_segment_bytes: u64,

    /// TEST ONLY: the length of an "hour" in seconds for Kinesis retention, so tests can watch
    /// records expire. Leave at 3600 for real use.
    #[arg(
        long,
        env = "LAKEBOX_KINESIS_RETENTION_HOUR_SECONDS",
        default_value_t = 3600.0
    )]
    pub kinesis_retention_hour_seconds: f64,

    /// Milliseconds a connection may take to send a request's headers, or sit idle between
    /// requests, before it is closed.
    #[arg(
        long,
        env = "LAKEBOX_HEADER_READ_TIMEOUT_MS",
        default_value_t = 30_000,
        hide = true
    )]
    pub header_read_timeout_ms: u64,

    /// Bytes of disk held back (in `space.reserve`) for deletes and metadata once the disk is
    /// full; see docs/storage.md.
    #[arg(
        long,
        env = "LAKEBOX_DISK_RESERVE_BYTES",
        default_value_t = lakebox_store::space::DEFAULT_RESERVE_BYTES,
        hide = true
    )]
    pub disk_reserve_bytes: u64,

    /// Expose /_lakebox/test/ routes and the LakeboxTest service used by Lakebox's own
    /// crash and fault tests. Never for real use.
    #[arg(long, env = "LAKEBOX_ENABLE_TEST_ROUTES", hide = true)]
    pub enable_test_routes: bool,
}

impl ServeArgs {
    /// Parsed `--credentials`, or an error naming the bad entry. Credentials given but blank
    /// (`--credentials ' '`, `LAKEBOX_CREDENTIALS=` or `,`) are an error, never "accept
    /// anything": whoever set them meant to lock the server.
    pub fn credential_pairs(&self) -> Result<Vec<(String, String)>, String> {
        self.credential_pairs_with(std::env::var_os("LAKEBOX_CREDENTIALS").is_some())
    }

    fn credential_pairs_with(&self, env_set: bool) -> Result<Vec<(String, String)>, String> {
        if env_set && self.credentials.is_empty() {
            return Err(
                "LAKEBOX_CREDENTIALS is set but empty: give ACCESS_KEY:SECRET pairs, \
                        or unset it to accept any credentials"
                    .into(),
            );
        }
        self.credentials
            .iter()
            .map(|c| match c.trim().split_once(':') {
                Some((k, s)) if !k.trim().is_empty() && !s.trim().is_empty() => {
                    Ok((k.trim().to_owned(), s.trim().to_owned()))
                }
                _ => Err(format!("--credentials expects ACCESS_KEY:SECRET, got '{c}'")),
            })
            .collect()
    }

    /// Whether the server listens on this machine only.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// Refuses to expose an unauthenticated server beyond this machine.
    pub fn check_exposure(&self) -> Result<(), String> {
        let loopback = self.is_loopback();
        // Blank credentials never count as authentication (credential_pairs refuses them too).
        let verifying = self.credential_pairs_with(false).is_ok_and(|c| !c.is_empty());
        if loopback || verifying || self.allow_anonymous {
            return Ok(());
        }
        Err(format!(
            "refusing to listen on {} without authentication: anyone who can reach it could read and \
             change all data. Pass --credentials AKID:SECRET to verify signatures, or \
             --allow-anonymous if you really mean it.",
            self.host
        ))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["lakebox", "serve"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(a) => a,
        }
    }

    #[test]
    fn defaults() {
        let a = args(&[]);
        assert_eq!(a.host, "127.0.0.1");
        assert_eq!(a.port, 4566);
        assert_eq!(a.region, "us-east-1");
        assert!(!a.ephemeral && a.data_dir.is_none());
    }

    #[test]
    fn credentials_parse_and_validate() {
        let a = args(&["--credentials", "AK1:s1", "--credentials", "AK2:s:2"]);
        assert_eq!(
            a.credential_pairs().unwrap(),
            vec![("AK1".into(), "s1".into()), ("AK2".into(), "s:2".into())]
        );
        assert!(args(&["--credentials", "nosecret"]).credential_pairs().is_err());
        for blank in [" ", ",", " : ", "AK1:s1, "] {
            let a = args(&["--credentials", blank]);
            assert!(a.credential_pairs_with(false).is_err(), "{blank:?}");
            let exposed = args(&["--host", "0.0.0.0", "--credentials", blank]);
            assert!(exposed.check_exposure().is_err(), "{blank:?}");
        }
        assert!(
            args(&[]).credential_pairs_with(true).is_err(),
            "LAKEBOX_CREDENTIALS="
        );
        assert_eq!(args(&[]).credential_pairs_with(false).unwrap(), vec![]);
    }

    #[test]
    fn exposure_rules() {
        assert!(args(&[]).check_exposure().is_ok());
        assert!(args(&["--host", "::1"]).check_exposure().is_ok());
        assert!(args(&["--host", "localhost"]).check_exposure().is_ok());
        assert!(args(&["--host", "0.0.0.0"]).check_exposure().is_err());
        assert!(
            args(&["--host", "0.0.0.0", "--allow-anonymous"])
                .check_exposure()
                .is_ok()
        );
        assert!(
            args(&["--host", "0.0.0.0", "--credentials", "a:b"])
                .check_exposure()
                .is_ok()
        );
    }

    #[test]
    fn ephemeral_conflicts_with_data_dir() {
        assert!(Cli::try_parse_from(["lakebox", "serve", "--ephemeral", "--data-dir", "/x"]).is_err());
    }

    /// The constructor ran before mimalloc read its options: arenas are committed as used
    /// (mimalloc's default on Linux is 2, commit up front, which doubled the idle RSS).
    #[cfg(target_os = "linux")]
    #[test]
    fn arenas_are_committed_as_used() {
        // SAFETY: reads one option's value.
        let value = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT) };
        assert_eq!(value, 0);
    }
}
