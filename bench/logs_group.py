"""A Lakebox with a log group of millions of events, for the searches the Logs benchmarks time:
started from a built binary (with `lakebox-bench` beside it) and filled by lakebox-bench's
logs-put-events workload (1,000 × 200 B JSON events a request into `/lakebox/bench`)."""
import sys, tempfile
from contextlib import contextmanager
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from compare import Target, free_port, load
import boto3
from botocore.config import Config


@contextmanager
def filled(lakebox_bin, events):
    """(logs client, events held) for a started server whose group holds at least `events`; the
    server is stopped and its data directory (gigabytes) removed on leaving."""
    binp = Path(lakebox_bin)
    bench = binp.with_name("lakebox-bench")
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        t = Target("lakebox", [str(binp), "serve", "--port", str(port), "--data-dir", data,
                               "--log-level", "warn"], port).start()
        try:
            held = 0
            while held < events:
                r = load(bench, t, "logs-put-events", 5.0)
                held += r["requests"] * 1000
            logs = boto3.client("logs", endpoint_url=t.endpoint, region_name="us-east-1", aws_access_key_id="t",
                                aws_secret_access_key="t", config=Config(read_timeout=600))
            yield logs, held
        finally:
            t.stop()
