"""Acknowledged means durable: restarts keep everything, and kill -9 mid-load loses nothing
that was acknowledged and leaves nothing torn."""

import http.client
import json
import random
import signal
import threading
import time

from lakebox_harness import Lakebox
from signing import send


def read_log(endpoint):
    records, offset = [], 0
    while True:
        status, _, body = send(endpoint, "GET", f"/_lakebox/test/log?from={offset}&limit=5000")
        assert status == 200
        page = json.loads(body)
        if not page["records"]:
            return records
        records += page["records"]
        offset = page["records"][-1]["offset"] + 1


def test_restart_keeps_state(tmp_path):
    with Lakebox(tmp_path) as lb:
        for i in range(10):
            assert send(lb.endpoint, "POST", "/_lakebox/test/log", f"rec-{i}".encode())[0] == 200
        assert send(lb.endpoint, "PUT", "/_lakebox/test/kv/alpha", b"one")[0] == 200
        assert send(lb.endpoint, "PUT", "/_lakebox/test/blob/b1", b"blob-content")[0] == 200
    with Lakebox(tmp_path) as lb:
        import base64
        recs = read_log(lb.endpoint)
        assert [base64.b64decode(r["data"]).decode() for r in recs] == [f"rec-{i}" for i in range(10)]
        assert send(lb.endpoint, "GET", "/_lakebox/test/kv/alpha")[2] == b"one"
        assert send(lb.endpoint, "GET", "/_lakebox/test/blob/b1")[2] == b"blob-content"
        status, _, body = send(lb.endpoint, "POST", "/_lakebox/test/log", b"after-restart")
        assert json.loads(body)["offset"] == 10


def make_payload(tid, i):
    pad = "x" * random.randint(0, 6000)
    body = f"{tid}:{i}:{len(pad)}:{pad}"
    return body.encode()


def well_formed(payload: bytes) -> bool:
    tid, i, n, pad = payload.decode().split(":", 3)
    return int(n) == len(pad) and set(pad) <= {"x"}


class Writer(threading.Thread):
    """Writes log records, KV entries and blob versions until the server dies."""

    def __init__(self, port, tid, cycle):
        super().__init__(daemon=True)
        self.port, self.tid, self.cycle = port, tid, cycle
        self.acked_log = {}      # offset -> payload
        self.acked_kv = {}       # key -> value
        self.blob_acked = -1     # last acknowledged blob version
        self.blob_attempted = -1

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        i = 0
        try:
            while True:
                payload = make_payload(self.tid, i)
                conn.request("POST", "/_lakebox/test/log", body=payload)
                r = conn.getresponse()
                body = r.read()
                if r.status == 200:
                    self.acked_log[json.loads(body)["offset"]] = payload
                if i % 4 == 0:
                    key, value = f"c{self.cycle}-k{self.tid}-{i}", payload[:200]
                    conn.request("PUT", f"/_lakebox/test/kv/{key}", body=value)
                    r = conn.getresponse()
                    r.read()
                    if r.status == 200:
                        self.acked_kv[key] = value
                if i % 8 == 0:
                    v = self.blob_attempted + 1
                    self.blob_attempted = v
                    conn.request("PUT", f"/_lakebox/test/blob/t{self.tid}", body=f"v{v}:".encode() + payload)
                    r = conn.getresponse()
                    r.read()
                    if r.status == 200:
                        self.blob_acked = v
                i += 1
        except (OSError, http.client.HTTPException):
            return  # the server was killed: whatever was in flight was never acknowledged


def crash_cycle(data_dir, seconds, cycle):
    lb = Lakebox(data_dir).start()
    writers = [Writer(lb.port, t, cycle) for t in range(8)]
    for w in writers:
        w.start()
    time.sleep(seconds)
    lb.proc.send_signal(signal.SIGKILL)
    lb.proc.wait()
    for w in writers:
        w.join(15)
    return writers


def verify(data_dir, writers_by_cycle):
    import base64
    with Lakebox(data_dir) as lb:
        recs = read_log(lb.endpoint)
        offsets = [r["offset"] for r in recs]
        assert offsets == list(range(len(recs))), "offsets must be dense from 0"
        stored = {r["offset"]: base64.b64decode(r["data"]) for r in recs}
        for payload in stored.values():
            assert well_formed(payload), "a torn record was returned"
        acked = 0
        for writers in writers_by_cycle:
            for w in writers:
                for offset, payload in w.acked_log.items():
                    assert stored.get(offset) == payload, f"acknowledged record {offset} lost or changed"
                    acked += 1
                for key, value in w.acked_kv.items():
                    status, _, got = send(lb.endpoint, "GET", f"/_lakebox/test/kv/{key}")
                    assert status == 200 and got == value, f"acknowledged key {key} lost"
        for w in writers_by_cycle[-1]:
            if w.blob_acked < 0:
                continue
            status, _, got = send(lb.endpoint, "GET", f"/_lakebox/test/blob/t{w.tid}")
            assert status == 200
            version, payload = got.split(b":", 1)
            v = int(version[1:])
            assert w.blob_acked <= v <= w.blob_attempted, "blob went back past an acknowledged version"
            assert well_formed(payload), "torn blob"
        return acked


def test_sigkill_mid_load_loses_nothing_acknowledged(tmp_path):
    cycles = []
    for cycle, seconds in enumerate((1.5, 0.7, 1.1)):
        cycles.append(crash_cycle(tmp_path, seconds, cycle))
        acked = verify(tmp_path, cycles)
    print(f"acknowledged log records verified after 3 SIGKILLs: {acked}")
    assert acked > 500, f"the load was too light to prove anything ({acked} acknowledged records)"
