"""The runnable examples in examples/, run as a user would: the AWS CLI against a fresh server."""

import os
import subprocess
from pathlib import Path

from lakebox_harness import Lakebox

REPO = Path(__file__).resolve().parents[2]


def test_kinesis_firehose_crawler_athena_pipeline(tmp_path):
    with Lakebox(tmp_path) as lb:
        env = dict(os.environ, AWS_ENDPOINT_URL=lb.endpoint)
        env.pop("AWS_PROFILE", None)
        r = subprocess.run(["bash", str(REPO / "examples" / "kinesis-firehose-athena.sh")],
                           capture_output=True, text=True, env=env, timeout=240)
        assert r.returncode == 0, r.stdout + r.stderr
        out = r.stdout.splitlines()
        # The crawler found the converted columns and the day partition.
        assert "page\tuser\tms" in out and "dt" in out
        # Six clicks: "/" by ann (120), bob (95), cid (70); "/cart" 340 and 280; "/buy" 610.
        result = out[out.index("page\tviews\tavg_ms"):]
        assert result == ["page\tviews\tavg_ms", "/\t3\t95.0", "/cart\t2\t310.0", "/buy\t1\t610.0"]
