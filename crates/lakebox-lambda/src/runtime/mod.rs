//! Execution environments: each a child process running the function's runtime, driven
//! through Lakebox's implementation of the Lambda Runtime API
//! (`AWS_LAMBDA_RUNTIME_API`: `invocation/next`, `…/response`, `…/error`, `init/error`).
//!
//! An environment serves one invocation at a time and is kept warm for the next one with the
//! same configuration; a timeout, a crash or a failed init ends it, and an update or delete of
//! the function retires its environments. Each has its own Runtime API listener on 127.0.0.1
//! (the API is addressed as `host:port`, so environments cannot share one), its own temporary
//! directory, and its output captured line by line into the invocation's log.

mod api;
#[cfg(target_os = "linux")]
mod sandbox;
#[cfg(target_os = "linux")]
use sandbox::Sandbox;

/// Elsewhere than Linux an environment has no sandbox.
#[cfg(not(target_os = "linux"))]
#[derive(Clone)]
struct Sandbox;

#[cfg(not(target_os = "linux"))]
impl Sandbox {
    fn binds_opt(&self) -> bool {
        false
    }
}

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lakebox_core::ServiceError;
use lakebox_core::clock::{Clock, SystemClock};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{Notify, mpsc, oneshot};

/// The Python runtime client Lakebox runs for `python3.*` functions.
const PYTHON_BOOTSTRAP: &str = include_str!("python_bootstrap.py");
/// The Node.js runtime client Lakebox runs for `nodejs*` functions.
const NODE_BOOTSTRAP: &str = include_str!("node_bootstrap.js");

/// How long a runtime may take to start and load the handler before its first invocation,
/// beyond the function's own timeout (AWS allows ten seconds of init).
const INIT_ALLOWANCE: Duration = Duration::from_secs(10);
/// Environments kept warm per function configuration.
const MAX_IDLE_PER_FUNCTION: usize = 4;
/// The line our runtime clients write to stdout and stderr when an invocation's output is all
/// written (kept out of the log).
const END_MARK: &str = "\u{1e}lakebox:end ";

/// What an environment runs: one function version's configuration.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Identifies the configuration; environments are reused only for the same one.
    pub revision: String,
    /// The function's unqualified ARN: with the version, which environments may serve it.
    pub function_arn: String,
    pub function_name: String,
    pub version: String,
    pub runtime: String,
    pub handler: String,
    pub memory_mb: i32,
    /// `EphemeralStorage`: the size of the environment's `/tmp`.
    pub ephemeral_mb: u32,
    /// Environments started ahead of invocations (provisioned concurrency) say so in
    /// `AWS_LAMBDA_INITIALIZATION_TYPE`.
    pub provisioned: bool,
    pub timeout: Duration,
    pub code_dir: PathBuf,
    /// The function's layers merged (its `/opt`), when it has any.
    pub opt_dir: Option<PathBuf>,
    pub region: String,
    pub account_id: String,
    pub log_group: String,
    pub variables: Vec<(String, String)>,
}

impl Launch {
    /// The environments that may serve this launch: its function's, of its version.
    pub fn pool(&self) -> String {
        pool_key(&self.function_arn, &self.version)
    }
}

/// The pool of a function version's environments, by the function's unqualified ARN.
pub fn pool_key(function_arn: &str, version: &str) -> String {
    format!("{function_arn}:{version}")
}

/// Where the runtimes look in a function's merged layers, as AWS's runtimes look in `/opt`:
/// `python` (and its `lib/python3.*/site-packages`) on `PYTHONPATH`, `nodejs/node_modules` (and
/// `nodejs/node*/node_modules`) on `NODE_PATH`, `bin` on `PATH`, `lib` on `LD_LIBRARY_PATH`.
/// The directories are looked up in `opt` and named as the environment sees it, `seen_at`.
fn layer_paths(opt: &Path, seen_at: &Path) -> Vec<(&'static str, std::ffi::OsString)> {
    let join = |dirs: Vec<PathBuf>, tail: Option<std::ffi::OsString>| {
        let mut all: Vec<std::ffi::OsString> = dirs.into_iter().map(PathBuf::into_os_string).collect();
        all.extend(tail);
        let mut out = std::ffi::OsString::new();
        for (i, d) in all.iter().enumerate() {
            if i > 0 {
                out.push(":");
            }
            out.push(d);
        }
        out
    };
    let seen = |p: &Path| seen_at.join(p.strip_prefix(opt).unwrap_or(p));
    let children = |dir: PathBuf, prefix: &str, tail: &str| -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .filter(|e| e.path().join(tail).is_dir())
            .map(|e| seen(&e.path()).join(tail))
            .collect();
        found.sort();
        found
    };
    let mut python = vec![seen_at.join("python")];
    python.extend(children(opt.join("python/lib"), "python3", "site-packages"));
    let mut node = vec![seen_at.join("nodejs/node_modules")];
    node.extend(children(opt.join("nodejs"), "node", "node_modules"));
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    vec![
        ("PYTHONPATH", join(python, None)),
        ("NODE_PATH", join(node, None)),
        ("PATH", join(vec![seen_at.join("bin")], Some(path))),
        (
            "LD_LIBRARY_PATH",
            join(vec![seen_at.join("lib")], std::env::var_os("LD_LIBRARY_PATH")),
        ),
        ("LAKEBOX_OPT_DIR", seen_at.as_os_str().to_owned()),
    ]
}

/// One invocation's result.
#[derive(Debug)]
pub struct Outcome {
    pub payload: Bytes,
    /// `Unhandled` when the function (or its runtime) failed.
    pub function_error: Option<String>,
    /// What the invocation wrote, between Lambda's START and END lines.
    pub log: String,
    pub duration: Duration,
    pub init_duration: Option<Duration>,
    /// The environment's log stream (`AWS_LAMBDA_LOG_STREAM_NAME`).
    pub log_stream: String,
    /// The process's peak resident memory so far (REPORT's "Max Memory Used"), where the
    /// system tells it (Linux).
    pub max_memory_mb: Option<u64>,
    /// The content type of a result the runtime streamed (`awslambda.streamifyResponse`).
    pub content_type: Option<String>,
}

/// A request handed to the runtime by `invocation/next`.
struct Pending {
    request_id: String,
    payload: Bytes,
    /// The function's timeout: its deadline runs from when the runtime takes the event.
    timeout: Duration,
    /// Told when the runtime takes the event (its init, if any, is over).
    started: oneshot::Sender<()>,
    function_arn: String,
    client_context: Option<String>,
}

/// What came back from the runtime for an invocation.
enum Reply {
    /// The result, and its content type when the runtime streamed it.
    Response(Bytes, Option<String>),
    Error(Bytes),
    /// The environment failed (init error, exit): its payload, AWS's error document.
    Failed(Bytes),
}

/// State the Runtime API listener and the environment share.
struct Shared {
    queue: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    replies: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    /// Captured output since the last invocation took it, and the end marks seen per request.
    log: Mutex<LogBuffer>,
    log_progress: Notify,
}

#[derive(Default)]
struct LogBuffer {
    text: String,
    /// Request ids whose end mark each stream (stdout, stderr) has passed.
    ended: HashMap<String, u8>,
}

impl Shared {
    /// Answers every waiting invocation with `doc` (the environment is gone).
    fn fail_all(&self, doc: impl Fn(&str) -> Bytes) {
        let waiting: Vec<_> = self.replies.lock().unwrap().drain().collect();
        for (id, tx) in waiting {
            let _ = tx.send(Reply::Failed(doc(&id)));
        }
    }
}

struct Environment {
    revision: String,
    shared: Arc<Shared>,
    queue: mpsc::Sender<Pending>,
    /// The Runtime API listener, the output readers and the task that owns the child process
    /// (aborting it drops the child, which kills it).
    tasks: Vec<tokio::task::JoinHandle<()>>,
    tmp_dir: PathBuf,
    fresh: std::sync::atomic::AtomicBool,
    log_stream: String,
    pid: Option<u32>,
    /// Its pool's count of live environments (idle or busy), one less when it ends.
    live: Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.live.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        for t in &self.tasks {
            t.abort();
        }
        let _ = std::fs::remove_dir_all(&self.tmp_dir);
    }
}

/// Every function's warm environments.
pub struct Runtimes {
    dir: PathBuf,
    /// Where functions reach Lakebox (`AWS_ENDPOINT_URL`), set once the gateway listens.
    endpoint: Mutex<Option<String>>,
    idle: Mutex<HashMap<String, Vec<Environment>>>,
    /// Environments get a sandbox until the system refuses one.
    sandboxing: std::sync::atomic::AtomicBool,
    /// Live environments per pool, and the pools' provisioned concurrency (kept warm).
    live: Mutex<HashMap<String, Arc<std::sync::atomic::AtomicUsize>>>,
    provisioned: Mutex<HashMap<String, usize>>,
}

impl Runtimes {
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("tmp"))?;
        std::fs::write(dir.join("python_bootstrap.py"), PYTHON_BOOTSTRAP)?;
        std::fs::write(dir.join("node_bootstrap.js"), NODE_BOOTSTRAP)?;
        // Temporary directories of environments a crash left behind.
        if let Ok(entries) = std::fs::read_dir(dir.join("tmp")) {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Ok(Runtimes {
            dir,
            endpoint: Mutex::new(None),
            idle: Mutex::new(HashMap::new()),
            sandboxing: std::sync::atomic::AtomicBool::new(true),
            live: Mutex::new(HashMap::new()),
            provisioned: Mutex::new(HashMap::new()),
        })
    }

    fn live_count(&self, pool: &str) -> Arc<std::sync::atomic::AtomicUsize> {
        self.live
            .lock()
            .unwrap()
            .entry(pool.to_owned())
            .or_default()
            .clone()
    }

    fn provisioned_for(&self, pool: &str) -> usize {
        self.provisioned.lock().unwrap().get(pool).copied().unwrap_or(0)
    }

    /// Keeps `count` environments of `launch`'s version live (provisioned concurrency),
    /// starting the missing ones now; 0 lets them go back to on-demand. Whether the pool has
    /// them all.
    pub async fn provision(&self, launch: &Launch, count: usize) -> bool {
        let pool = launch.pool();
        if count == 0 {
            self.provisioned.lock().unwrap().remove(&pool);
            return true;
        }
        self.provisioned.lock().unwrap().insert(pool.clone(), count);
        let live = self.live_count(&pool);
        while live.load(std::sync::atomic::Ordering::Relaxed) < count {
            let Ok(env) = self.spawn(launch).await else {
                return false;
            };
            // Its init runs now, ahead of the invocations: none of them is a cold start.
            env.fresh.store(false, std::sync::atomic::Ordering::Relaxed);
            let mut idle = self.idle.lock().unwrap();
            let envs = idle.entry(pool.clone()).or_default();
            envs.retain(|e| e.revision == launch.revision);
            envs.push(env);
        }
        true
    }

    /// Lets `launch`'s version's environments go back to on-demand (the usual number kept warm).
    pub fn unprovision(&self, pool: &str) {
        self.provisioned.lock().unwrap().remove(pool);
        if let Some(envs) = self.idle.lock().unwrap().get_mut(pool) {
            envs.truncate(MAX_IDLE_PER_FUNCTION);
        }
    }

    /// How many environments of a pool are live.
    pub fn live(&self, pool: &str) -> usize {
        self.live_count(pool).load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a pool is kept at `count` environments and has them all.
    pub fn is_provisioned(&self, pool: &str, count: usize) -> bool {
        self.provisioned_for(pool) == count && self.live(pool) >= count
    }

    pub fn set_endpoint(&self, url: String) {
        *self.endpoint.lock().unwrap() = Some(url);
    }

    /// Ends the warm environments of every version of `function` (its code or configuration
    /// changed, or it was deleted).
    pub fn retire(&self, function: &str) {
        let prefix = format!("{function}:");
        self.idle.lock().unwrap().retain(|k, _| !k.starts_with(&prefix));
    }

    /// Ends every environment (shutdown).
    pub fn retire_all(&self) {
        self.idle.lock().unwrap().clear();
    }

    /// Runs one invocation of `launch` in a warm environment of its version, or a new one;
    /// the function sees itself invoked as `invoked_arn`.
    pub async fn invoke(
        &self,
        launch: &Launch,
        invoked_arn: &str,
        request_id: &str,
        payload: Bytes,
        client_context: Option<String>,
    ) -> Result<Outcome, ServiceError> {
        let warm = {
            let mut idle = self.idle.lock().unwrap();
            let envs = idle.entry(launch.pool()).or_default();
            envs.retain(|e| e.revision == launch.revision);
            envs.pop()
        };
        let started = Instant::now();
        let (env, cold) = match warm {
            Some(env) => (env, false),
            None => match self.spawn(launch).await {
                Ok(env) => (env, true),
                Err(message) => {
                    // AWS answers a runtime that cannot start as a failed init.
                    let doc = serde_json::json!({
                        "errorType": "Runtime.InvalidEntrypoint",
                        "errorMessage": format!("RequestId: {request_id} Error: {message}"),
                    });
                    return Ok(Outcome {
                        payload: doc.to_string().into(),
                        function_error: Some("Unhandled".into()),
                        log: format!("{message}\n"),
                        duration: started.elapsed(),
                        init_duration: None,
                        log_stream: log_stream_name(&launch.version),
                        max_memory_mb: None,
                        content_type: None,
                    });
                }
            },
        };
        let (tx, rx) = oneshot::channel();
        env.shared
            .replies
            .lock()
            .unwrap()
            .insert(request_id.to_owned(), tx);
        let (started_tx, started_rx) = oneshot::channel();
        let pending = Pending {
            request_id: request_id.to_owned(),
            payload,
            timeout: launch.timeout,
            started: started_tx,
            function_arn: invoked_arn.to_owned(),
            client_context,
        };
        if env.queue.send(pending).await.is_err() {
            return Err(ServiceError::internal("the execution environment stopped"));
        }
        // The init (a cold start) has its own allowance; the function's timeout runs from when
        // the runtime takes the event. A reply before that is the init failing.
        let mut rx = rx;
        let taken = tokio::time::timeout(INIT_ALLOWANCE, async {
            tokio::select! {
                biased;
                r = &mut rx => Some(r),
                _ = started_rx => None,
            }
        })
        .await;
        let reply = match taken {
            Ok(Some(r)) => Waited::Reply(r),
            Ok(None) => wait_within_limits(rx, launch.timeout, env.pid, launch.memory_mb).await,
            Err(_) => Waited::TimedOut,
        };
        let duration = started.elapsed();
        let timed_out = matches!(reply, Waited::TimedOut);
        let mut content_type = None;
        let (payload, function_error, keep) = match reply {
            Waited::Reply(Ok(Reply::Response(body, streamed))) => {
                content_type = streamed;
                (body, None, true)
            }
            Waited::Reply(Ok(Reply::Error(body))) => (body, Some("Unhandled".to_owned()), true),
            Waited::Reply(Ok(Reply::Failed(body))) => (body, Some("Unhandled".to_owned()), false),
            Waited::Reply(Err(_)) => (
                exit_error(request_id, "Runtime exited without providing a reason"),
                Some("Unhandled".to_owned()),
                false,
            ),
            Waited::OutOfMemory => {
                // The process is killed (the environment is dropped), as AWS kills a function
                // past its MemorySize.
                let doc = serde_json::json!({
                    "errorType": "Runtime.OutOfMemory",
                    "errorMessage": format!("RequestId: {request_id} Error: Runtime exited with error: signal: killed"),
                });
                (Bytes::from(doc.to_string()), Some("Unhandled".to_owned()), false)
            }
            Waited::TimedOut => {
                let doc = serde_json::json!({
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": format!(
                        "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                        launch.timeout.as_secs_f64()
                    ),
                });
                (Bytes::from(doc.to_string()), Some("Unhandled".to_owned()), false)
            }
        };
        env.shared.replies.lock().unwrap().remove(request_id);
        let mut log = if keep {
            self.take_log(&env, request_id).await
        } else {
            std::mem::take(&mut env.shared.log.lock().unwrap().text)
        };
        if timed_out {
            log.push_str(&format!(
                "{} {request_id} Task timed out after {:.2} seconds\n",
                lakebox_protocol::Timestamp::from_millis(SystemClock.now_millis()).to_iso8601(),
                launch.timeout.as_secs_f64()
            ));
        }
        let init_duration = env
            .fresh
            .swap(false, std::sync::atomic::Ordering::Relaxed)
            .then_some(duration);
        let log_stream = env.log_stream.clone();
        let max_memory_mb = env.pid.and_then(peak_memory_mb);
        if keep {
            let mut idle = self.idle.lock().unwrap();
            let envs = idle.entry(launch.pool()).or_default();
            let room = MAX_IDLE_PER_FUNCTION.max(self.provisioned_for(&launch.pool()));
            if envs.len() < room && envs.iter().all(|e| e.revision == env.revision) {
                envs.push(env);
            }
        }
        Ok(Outcome {
            payload,
            function_error,
            log,
            duration,
            init_duration: init_duration.filter(|_| cold),
            log_stream,
            max_memory_mb,
            content_type,
        })
    }

    /// The output of `request_id`: everything captured up to its end mark on both streams
    /// (waiting briefly for it, as the runtime writes it just before answering; a runtime
    /// that writes no mark gets a moment for its pipes to drain).
    async fn take_log(&self, env: &Environment, request_id: &str) -> String {
        let until = Instant::now() + Duration::from_millis(500);
        loop {
            let notified = env.shared.log_progress.notified();
            {
                let mut buf = env.shared.log.lock().unwrap();
                if buf.ended.get(request_id) == Some(&0b11) || Instant::now() >= until {
                    buf.ended.remove(request_id);
                    return std::mem::take(&mut buf.text);
                }
            }
            let _ = tokio::time::timeout_at(until.into(), notified).await;
        }
    }

    async fn spawn(&self, launch: &Launch) -> Result<Environment, String> {
        let (program, args): (PathBuf, Vec<PathBuf>) = if launch.runtime.starts_with("python") {
            (which("python3").ok_or("fork/exec python3: no such file or directory (Lakebox runs Python functions with this machine's python3, which is not installed)")?, vec![self.dir.join("python_bootstrap.py")])
        } else if launch.runtime.starts_with("nodejs") {
            (which("node").ok_or("fork/exec node: no such file or directory (Lakebox runs Node.js functions with this machine's node, which is not installed)")?, vec![self.dir.join("node_bootstrap.js")])
        } else if launch.runtime.starts_with("provided") {
            // The package's bootstrap, else a layer's, as AWS looks in /var/task then /opt.
            let mut bootstrap = launch.code_dir.join("bootstrap");
            if !bootstrap.is_file()
                && let Some(opt) = &launch.opt_dir
            {
                bootstrap = opt.join("bootstrap");
            }
            if !bootstrap.is_file() {
                return Err("Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]".into());
            }
            (bootstrap, vec![])
        } else {
            return Err(format!(
                "Lakebox cannot run the {} runtime on this machine",
                launch.runtime
            ));
        };
        let (queue_tx, queue_rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(queue_rx),
            replies: Mutex::new(HashMap::new()),
            log: Mutex::new(LogBuffer::default()),
            log_progress: Notify::new(),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| format!("starting the Runtime API: {e}"))?;
        let api_addr = listener.local_addr().map_err(|e| e.to_string())?;
        let mut tasks = vec![tokio::spawn(api::serve(listener, shared.clone()))];
        let tmp_dir = self.dir.join("tmp").join(uuid::Uuid::new_v4().to_string());
        std::fs::create_dir_all(&tmp_dir).map_err(|e| e.to_string())?;
        let stream = log_stream_name(&launch.version);
        let mut child = match self.sandbox(launch, &program, &tmp_dir) {
            Some(sandbox) => {
                let mut cmd = self.command(
                    launch,
                    &program,
                    &args,
                    &tmp_dir,
                    &stream,
                    api_addr,
                    Some(&sandbox),
                );
                match cmd.spawn() {
                    Ok(child) => child,
                    Err(e) => {
                        // Either the system refuses the sandbox or the program cannot run:
                        // the same spawn without one tells which.
                        let child = self
                            .command(launch, &program, &args, &tmp_dir, &stream, api_addr, None)
                            .spawn()
                            .map_err(|e| format!("fork/exec {}: {e}", program.display()))?;
                        self.sandbox_refused(&e);
                        child
                    }
                }
            }
            None => self
                .command(launch, &program, &args, &tmp_dir, &stream, api_addr, None)
                .spawn()
                .map_err(|e| format!("fork/exec {}: {e}", program.display()))?,
        };
        let pid = child.id();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        if let Some(out) = stdout {
            tasks.push(tokio::spawn(capture(out, shared.clone(), 0b01)));
        }
        if let Some(err) = stderr {
            tasks.push(tokio::spawn(capture(err, shared.clone(), 0b10)));
        }
        // The process ending answers whatever waits on it with AWS's error.
        let watcher = shared.clone();
        tasks.push(tokio::spawn(async move {
            if let Ok(status) = child.wait().await {
                watcher.fail_all(|id| exit_error(id, &format!("Runtime exited with error: {status}")));
            }
        }));
        let live = self.live_count(&launch.pool());
        live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Environment {
            revision: launch.revision.clone(),
            shared,
            queue: queue_tx,
            tasks,
            tmp_dir,
            fresh: std::sync::atomic::AtomicBool::new(true),
            log_stream: stream,
            pid,
            live,
        })
    }
}

impl Runtimes {
    /// The sandbox an environment of `launch` gets, unless this system refused one before.
    #[cfg(target_os = "linux")]
    fn sandbox(&self, launch: &Launch, program: &Path, tmp_dir: &Path) -> Option<Sandbox> {
        if !self.sandboxing.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        // Hiding the machine's /tmp must not hide the code, the runtime or the layers.
        let under_tmp =
            |p: &Path| std::fs::canonicalize(p).is_ok_and(|p| p.starts_with("/tmp")) || p.starts_with("/tmp");
        let keep_host_tmp = [
            Some(self.dir.as_path()),
            Some(program),
            Some(&launch.code_dir),
            launch.opt_dir.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(under_tmp);
        match Sandbox::new(
            tmp_dir,
            launch.ephemeral_mb,
            launch.opt_dir.as_deref(),
            keep_host_tmp,
        ) {
            Ok(s) => Some(s),
            Err(e) => {
                self.sandbox_refused(&e);
                None
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn sandbox(&self, _: &Launch, _: &Path, _: &Path) -> Option<Sandbox> {
        None
    }

    /// Environments run without a sandbox from now on; said once.
    fn sandbox_refused(&self, why: &std::io::Error) {
        if self.sandboxing.swap(false, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                error = %why,
                "Lambda environments cannot have a /tmp and /opt of their own on this system (no mount namespace); they share the machine's, and EphemeralStorage is not enforced"
            );
        }
    }

    /// The command that starts an environment's runtime.
    #[allow(clippy::too_many_arguments)]
    fn command(
        &self,
        launch: &Launch,
        program: &Path,
        args: &[PathBuf],
        tmp_dir: &Path,
        stream: &str,
        api_addr: std::net::SocketAddr,
        sandbox: Option<&Sandbox>,
    ) -> tokio::process::Command {
        let endpoint = self.endpoint.lock().unwrap().clone().unwrap_or_default();
        // In a sandbox the environment's /tmp is the literal /tmp, as on AWS.
        let tmp = if sandbox.is_some() {
            Path::new("/tmp")
        } else {
            tmp_dir
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .current_dir(&launch.code_dir)
            .env_clear()
            .envs(launch.variables.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
            )
            .env("LANG", "en_US.UTF-8")
            .env("TZ", ":UTC")
            .env("HOME", tmp)
            .env("TMPDIR", tmp)
            .env("_HANDLER", &launch.handler)
            .env("LAMBDA_TASK_ROOT", &launch.code_dir)
            .env("LAMBDA_RUNTIME_DIR", &self.dir)
            .env("AWS_LAMBDA_RUNTIME_API", api_addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &launch.function_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", &launch.version)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", launch.memory_mb.to_string())
            .env("AWS_LAMBDA_LOG_GROUP_NAME", &launch.log_group)
            .env("AWS_LAMBDA_LOG_STREAM_NAME", stream)
            .env(
                "AWS_LAMBDA_INITIALIZATION_TYPE",
                if launch.provisioned {
                    "provisioned-concurrency"
                } else {
                    "on-demand"
                },
            )
            .env("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", launch.runtime))
            .env("AWS_REGION", &launch.region)
            .env("AWS_DEFAULT_REGION", &launch.region)
            // Credentials the SDKs inside the function sign with: the account's, as Lakebox
            // reads a 12-digit access key as its account.
            .env("AWS_ACCESS_KEY_ID", &launch.account_id)
            .env("AWS_SECRET_ACCESS_KEY", "lakebox")
            .env("AWS_SESSION_TOKEN", "lakebox")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if !endpoint.is_empty() {
            cmd.env("AWS_ENDPOINT_URL", &endpoint);
        }
        if let Some(opt) = &launch.opt_dir {
            let seen_at = match sandbox {
                Some(s) if s.binds_opt() => Path::new("/opt"),
                _ => opt.as_path(),
            };
            for (name, value) in layer_paths(opt, seen_at) {
                cmd.env(name, value);
            }
        }
        if launch.runtime.starts_with("python") {
            // The package is shared by every environment and read-only on AWS: no
            // __pycache__ written into it.
            cmd.env("PYTHONUNBUFFERED", "1")
                .env("PYTHONDONTWRITEBYTECODE", "1");
        }
        #[cfg(target_os = "linux")]
        {
            // SAFETY: the hooks run between fork and exec and only make system calls on
            // values prepared before the fork.
            let parent = std::process::id() as libc::pid_t;
            let sandbox = sandbox.cloned();
            unsafe {
                cmd.pre_exec(move || {
                    if let Some(s) = &sandbox {
                        s.enter()?;
                    }
                    sandbox::die_with_parent(parent)
                });
            }
        }
        cmd
    }
}

fn exit_error(request_id: &str, what: &str) -> Bytes {
    serde_json::json!({
        "errorType": "Runtime.ExitError",
        "errorMessage": format!("RequestId: {request_id} Error: {what}"),
    })
    .to_string()
    .into()
}

/// Reads one output stream line by line into the environment's log; our runtime clients' end
/// marks are noted, not logged.
/// The longest output line kept whole (AWS cuts log events at 256 KB); the rest of a longer
/// line is read and dropped, so a function printing gigabytes without a newline costs Lakebox
/// no more memory than this.
const MAX_LINE: usize = 256 * 1024;

async fn capture(stream: impl AsyncRead + Unpin, shared: Arc<Shared>, bit: u8) {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let (taken, complete) = match reader.fill_buf().await {
            Ok(chunk) if !chunk.is_empty() => {
                let end = chunk.iter().position(|b| *b == b'\n');
                let upto = end.unwrap_or(chunk.len());
                let room = MAX_LINE.saturating_sub(line.len());
                line.extend_from_slice(&chunk[..upto.min(room)]);
                (end.map_or(chunk.len(), |i| i + 1), end.is_some())
            }
            _ => break,
        };
        reader.consume(taken);
        if complete {
            take_line(&shared, &line, bit);
            line.clear();
        }
    }
    if !line.is_empty() {
        take_line(&shared, &line, bit);
    }
}

/// One line of output: an end mark, or text for the invocation's log.
fn take_line(shared: &Shared, line: &[u8], bit: u8) {
    let line = String::from_utf8_lossy(line);
    let line = line.strip_suffix('\r').unwrap_or(&line);
    {
        let mut buf = shared.log.lock().unwrap();
        if let Some(id) = line.strip_prefix(END_MARK) {
            *buf.ended.entry(id.trim().to_owned()).or_default() |= bit;
        } else if buf.text.len() < 1 << 20 {
            // A runaway writer cannot grow the buffer without bound between invocations.
            buf.text.push_str(line);
            buf.text.push('\n');
        }
    }
    shared.log_progress.notify_waiters();
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// How waiting for an invocation's answer ended.
enum Waited {
    Reply(Result<Reply, oneshot::error::RecvError>),
    TimedOut,
    /// The process grew past the function's MemorySize.
    OutOfMemory,
}

/// How often a running invocation's memory is looked at.
const MEMORY_CHECK: Duration = Duration::from_millis(50);

/// Waits for the answer within the function's timeout, watching the process's resident memory
/// against its MemorySize (where the system tells it: Linux).
async fn wait_within_limits(
    mut rx: oneshot::Receiver<Reply>,
    timeout: Duration,
    pid: Option<u32>,
    memory_mb: i32,
) -> Waited {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut check = tokio::time::interval(MEMORY_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            r = &mut rx => return Waited::Reply(r),
            _ = tokio::time::sleep_until(deadline) => return Waited::TimedOut,
            _ = check.tick() => {
                if pid.and_then(resident_memory_mb).is_some_and(|mb| mb > memory_mb.max(1) as u64) {
                    return Waited::OutOfMemory;
                }
            }
        }
    }
}

/// A process's resident set now (`VmRSS`), in MB.
fn resident_memory_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.div_ceil(1024))
}

/// A process's peak resident set (`VmHWM`), in MB.
fn peak_memory_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.div_ceil(1024))
}

/// A Lambda log stream's name: `YYYY/MM/DD/[version]` and a random id.
fn log_stream_name(version: &str) -> String {
    let iso = lakebox_protocol::Timestamp::from_millis(SystemClock.now_millis()).to_iso8601();
    format!(
        "{}/[{version}]{}",
        iso[..10].replace('-', "/"),
        uuid::Uuid::new_v4().simple()
    )
}
