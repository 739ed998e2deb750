"""Starting and stopping the real `lakebox` binary for end-to-end tests.

The binary is built once per test session (`cargo build`), or taken from $LAKEBOX_BIN.
Each server gets a free port on 127.0.0.1 and its own data directory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def binary() -> Path:
    if os.environ.get("LAKEBOX_BIN"):
        return Path(os.environ["LAKEBOX_BIN"])
    return target_dir() / "debug" / "lakebox"


def build_binary() -> Path:
    if not os.environ.get("LAKEBOX_BIN"):
        subprocess.run(["cargo", "build", "-q", "-p", "lakebox"], cwd=REPO, check=True)
    path = binary()
    assert path.exists(), f"lakebox binary not found at {path}"
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lakebox:
    """One running server. Use as a context manager or call stop()."""

    def __init__(self, data_dir: Path, *extra: str, env: dict | None = None, test_routes: bool = True):
        self.data_dir = Path(data_dir)
        self.extra = list(extra)
        self.env = env or {}
        self.test_routes = test_routes
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.stdout_line = ""
        # The server's log, read as it is written: an undrained pipe fills at 64 KiB and would
        # stop a server that logs (one line per query, delivery, …) at its next line.
        self._log: list[str] = []
        self._log_lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> "Lakebox":
        args = [str(binary()), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.test_routes:
            args.append("--enable-test-routes")
        args += self.extra
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEBOX_")}
        env.update(self.env)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        self.stdout_line = self.proc.stdout.readline().strip()
        self._log = []
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._drain, args=(stream,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                time.sleep(0.1)  # let the drain threads read the last words
                raise RuntimeError(f"lakebox exited early ({self.proc.returncode}): {self.log()}")
            try:
                self.health()
                return self
            except OSError:
                time.sleep(0.01)
        raise TimeoutError("lakebox did not become ready")

    def health(self) -> dict:
        with urllib.request.urlopen(self.endpoint + "/_lakebox/health", timeout=2) as r:
            return json.loads(r.read())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def _drain(self, stream) -> None:
        for line in stream:
            with self._log_lock:
                self._log.append(line)

    def log(self) -> str:
        """Everything the server has written to stdout and stderr so far."""
        with self._log_lock:
            return "".join(self._log)

    def stderr(self) -> str:
        """The server's log once it has exited."""
        if not self.proc or self.proc.poll() is None:
            return ""
        time.sleep(0.1)  # let the drain threads read the last words
        return self.log()

    def client(self, service: str, access_key: str = "test", secret: str = "test", region: str = "us-east-1", **config):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1}, **config),  # no silent retries in tests
        )

    def cli(self, *args: str, access_key: str = "test", secret: str = "test", region: str = "us-east-1") -> subprocess.CompletedProcess:
        env = dict(os.environ, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION=region)
        env.pop("AWS_PROFILE", None)
        return subprocess.run(
            ["aws", "--endpoint-url", self.endpoint, "--output", "json", *args],
            capture_output=True, text=True, env=env, timeout=60,
        )

    def __enter__(self) -> "Lakebox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):
    """Polls `predicate` every `interval` seconds until it returns something truthy (returned),
    or the timeout passes (its last answer returned). A predicate calling Kinesis GetRecords
    needs an interval of at least 0.2 s: a shard allows five reads a second."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def wait_for_query(athena, qid: str, timeout: float = 30.0) -> dict:
    """Polls GetQueryExecution until the query has finished; its QueryExecution."""
    deadline = time.time() + timeout
    while True:
        e = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if e["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return e
        assert time.time() < deadline, f"query {qid} still {e['Status']['State']}"
        time.sleep(0.02)


def run_query(athena, sql: str, output: str, database=None, **kw):
    """StartQueryExecution, then wait: (QueryExecutionId, QueryExecution)."""
    args = {"QueryString": sql, "ResultConfiguration": {"OutputLocation": output}, **kw}
    if database:
        args["QueryExecutionContext"] = {"Database": database}
    qid = athena.start_query_execution(**args)["QueryExecutionId"]
    return qid, wait_for_query(athena, qid)


def zip_of(files: dict) -> bytes:
    """A function package (or layer) of `files` (name → text or bytes); executables
    (`bootstrap`, anything under `bin/`) get mode 755, as a zip made on Linux from executable
    files has, and the rest 644."""
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o755 if name == "bootstrap" or name.startswith("bin/") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text)
    return buf.getvalue()
