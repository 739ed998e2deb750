#!/usr/bin/env bash
# Quick Kinesis figures for Lakebox alone (the side-by-side harness is the benchmark issue's):
# PutRecord (100 B), PutRecords (500 x 100 B), GetRecords (Limit 1000) with wrk, 16 connections,
# 4 shards, unsigned requests (accepted without --credentials).
#
#   bench/kinesis_quick.sh [path/to/release/lakebox]
set -euo pipefail
BIN="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/lakebox/target}/release/lakebox}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
PORT=4591
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$BIN" serve --port $PORT --data-dir "$WORK/data" --kinesis-throughput-limits off >/dev/null 2>&1 &
PID=$!
sleep 0.3
python3 - "$WORK" <<'PY'
import base64, json, sys
w = sys.argv[1]; data = base64.b64encode(b"x" * 100).decode()
json.dump({"StreamName": "bench", "Data": data, "PartitionKey": "pk"}, open(f"{w}/put.json", "w"))
json.dump({"StreamName": "bench", "Records": [{"Data": data, "PartitionKey": f"pk{i}"} for i in range(500)]}, open(f"{w}/puts.json", "w"))
json.dump({"StreamName": "bench", "ShardCount": 4}, open(f"{w}/create.json", "w"))
json.dump({"StreamName": "bench", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}, open(f"{w}/iter.json", "w"))
PY
call() { curl -s -X POST -H 'Content-Type: application/x-amz-json-1.1' -H "X-Amz-Target: Kinesis_20131202.$1" --data-binary @"$2" "localhost:$PORT/"; }
call CreateStream "$WORK/create.json" >/dev/null
cat > "$WORK/post.lua" <<'LUA'
local f = io.open(os.getenv("BODY"), "r"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
wrk.headers["X-Amz-Target"] = os.getenv("TARGET")
LUA
run() { BODY="$2" TARGET="Kinesis_20131202.$1" wrk -t2 -c16 -d5s --latency -s "$WORK/post.lua" "http://127.0.0.1:$PORT/" | grep -E "Requests/sec|99%|Non-2xx" | sed "s/^/  $1 /"; }
for round in 1 2 3; do
  echo "round $round"
  run PutRecord "$WORK/put.json"
  run PutRecords "$WORK/puts.json"
  IT=$(call GetShardIterator "$WORK/iter.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ShardIterator"])')
  echo "{\"ShardIterator\":\"$IT\",\"Limit\":1000}" > "$WORK/get.json"
  run GetRecords "$WORK/get.json"
done
echo "(PutRecords and GetRecords: records/s = requests/s x 500 and x 1000)"
echo "RSS after load: $(grep VmRSS /proc/$PID/status | awk '{print $2/1024 " MiB"}')"
