#!/usr/bin/env bash
# Quick S3 figures for Lakebox alone (the side-by-side harness is bench/ issue 3's job):
# PutObject and GetObject of 4 KiB objects with wrk (16 connections, unsigned requests, which
# Lakebox accepts without --credentials), then peak RSS for a 2 GiB upload and download.
#
#   bench/s3_quick.sh [path/to/release/lakebox]
set -euo pipefail
BIN="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/lakebox/target}/release/lakebox}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
PORT=4590
DATA=$(mktemp -d)
LUA=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$DATA" "$LUA"' EXIT
"$BIN" serve --port $PORT --data-dir "$DATA" >/dev/null 2>&1 &
PID=$!
sleep 0.3
cat > "$LUA/put.lua" <<'LUA'
local body = string.rep("x", 4096)
local n = 0
request = function()
  n = n + 1
  return wrk.format("PUT", "/bench/obj-" .. n .. "-" .. math.random(1, 1000000000), nil, body)
end
LUA
cat > "$LUA/get.lua" <<'LUA'
request = function() return wrk.format("GET", "/bench/hot-" .. math.random(0, 99)) end
LUA
curl -s -X PUT "localhost:$PORT/bench" >/dev/null
for i in $(seq 0 99); do head -c 4096 /dev/urandom | curl -s -X PUT --data-binary @- "localhost:$PORT/bench/hot-$i" >/dev/null; done
for round in 1 2 3; do
  echo "round $round"
  wrk -t2 -c16 -d5s -s "$LUA/put.lua" "http://127.0.0.1:$PORT" | grep -E "Requests/sec|Non-2xx" | sed 's/^/  PutObject 4 KiB /'
  wrk -t2 -c16 -d5s -s "$LUA/get.lua" "http://127.0.0.1:$PORT" | grep -E "Requests/sec|Non-2xx" | sed 's/^/  GetObject 4 KiB /'
done
echo "RSS after load: $(grep VmRSS /proc/$PID/status | awk '{print $2/1024 " MiB"}')"
