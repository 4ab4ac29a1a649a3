#!/usr/bin/env bash
# Medians of 3: webhook shim deliveries/s (per_stream, 100 streams) and wrk's raw POST rate
# against the same receiver. Usage: bench/webhook/run.sh [build dir]
set -euo pipefail
BUILD=${1:-build}
BENCH=$BUILD/bench/webhook/webhook_bench
HERE=$(dirname "$0")
median() { sort -n | sed -n 2p; }
shim=()
for i in 1 2 3; do
  shim+=("$("$BENCH" deliver --events=30000 --streams=100 --max_in_flight=64 |
    sed -n 's/.*deliveries_per_s=\([0-9]*\).*/\1/p')")
done
raw=()
for i in 1 2 3; do
  out=$(mktemp)
  "$BENCH" serve --seconds=12 >"$out" &
  pid=$!
  for _ in $(seq 100); do grep -q port= "$out" && break; sleep 0.05; done
  port=$(sed -n 's/port=//p' "$out")
  raw+=("$(wrk -t2 -c64 -d8s -s "$HERE/post.lua" "http://127.0.0.1:$port/hook" |
    sed -n 's/Requests\/sec: *\([0-9.]*\).*/\1/p')")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$out"
done
echo "shim deliveries/s: ${shim[*]} -> median $(printf '%s\n' "${shim[@]}" | median)"
echo "wrk POST/s:        ${raw[*]} -> median $(printf '%s\n' "${raw[@]}" | median)"
