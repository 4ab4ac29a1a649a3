#!/usr/bin/env bash
# Core figures of one hookstreamd on loopback (DESIGN.md §3, issues 2 and 3): publish
# throughput (acknowledged after fsync), catch-up read rate, idle RSS, memory per idle
# subscriber, and publish throughput next to 10,000 idle subscribers and next to a stalled
# one. Medians of --runs runs. Usage: bench/core.sh [BUILD_DIR] [RUNS]
set -euo pipefail
BUILD=${1:-build}
RUNS=${2:-3}
D=$(mktemp -d /tmp/hookstream-bench.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
ADDR=127.0.0.1:$PORT
BENCH=$BUILD/bench/hookstream_bench
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
trap 'echo "bench/core.sh: failed at line $LINENO" >&2' ERR

start() {
  rm -rf "$D/data"
  "$BUILD/server/main/hookstreamd" --data_dir="$D/data" --grpc_listen="$ADDR" --http_listen=off 2>"$D/log" &
  PID=$!
  for _ in $(seq 1 200); do grep -q "event=server.started" "$D/log" 2>/dev/null && return; sleep 0.05; done
  echo "hookstreamd did not start"; cat "$D/log"; exit 1
}
stop() { kill "$PID"; wait "$PID" || true; PID=""; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
rate() { sed -n 's/.*events_per_sec=\([0-9]*\).*/\1/p'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A R
for run in $(seq 1 "$RUNS"); do
  start
  R[idle_rss]+="$(rss_kb) "
  R[pub100]+="$($BENCH publish --server=$ADDR --events=200000 --batch=100 --connections=4 | rate) "
  R[pub1000]+="$($BENCH publish --server=$ADDR --events=200000 --batch=1000 --connections=4 | rate) "
  R[pubstream]+="$($BENCH publish_stream --server=$ADDR --events=200000 --batch=1 --inflight=256 --connections=4 | rate) "
  R[catchup]+="$($BENCH catchup --server=$ADDR --events=600000 | rate) "
  stop

  # 10,000 idle subscribers (100 connections): memory each, and publishing next to them.
  start
  before=$(rss_kb)
  $BENCH idle --server=$ADDR --count=10000 --channels=100 --hold_seconds=15 > "$D/idle" &
  IDLE=$!
  for _ in $(seq 1 600); do grep -q ready "$D/idle" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  after=$(rss_kb)
  R[per_sub]+="$(( (after - before) * 1024 / 10000 )) "
  R[pub100_10k]+="$($BENCH publish --server=$ADDR --events=200000 --batch=100 --connections=4 | rate) "
  kill $IDLE 2>/dev/null; wait $IDLE 2>/dev/null || true
  stop

  # A subscriber that stops reading while 200,000 events are published.
  start
  $BENCH slow --server=$ADDR --hold_seconds=30 > "$D/slow" &
  SLOW=$!
  for _ in $(seq 1 600); do grep -q ready "$D/slow" 2>/dev/null && break; sleep 0.1; done
  R[pub100_slow]+="$($BENCH publish --server=$ADDR --events=200000 --batch=100 --connections=4 | rate) "
  R[slow_rss]+="$(rss_kb) "
  kill $SLOW 2>/dev/null; wait $SLOW 2>/dev/null || true
  stop
done

m() { echo ${R[$1]} | tr ' ' '\n' | grep -v '^$' | median; }
printf '%-58s %12s\n' "figure (median of $RUNS runs)" value
printf '%-58s %12s\n' "idle RSS, empty log (KiB)" "$(m idle_rss)"
printf '%-58s %12s\n' "publish, batches of 100 x 256 B, 4 connections (ev/s)" "$(m pub100)"
printf '%-58s %12s\n' "publish, batches of 1000 x 256 B, 4 connections (ev/s)" "$(m pub1000)"
printf '%-58s %12s\n' "PublishStream, 1 event/msg, 256 in flight, 4 conns (ev/s)" "$(m pubstream)"
printf '%-58s %12s\n' "catch-up read, one subscriber (ev/s)" "$(m catchup)"
printf '%-58s %12s\n' "server memory per idle subscriber, 100/connection (B)" "$(m per_sub)"
printf '%-58s %12s\n' "publish (batches of 100) next to 10,000 idle subs (ev/s)" "$(m pub100_10k)"
printf '%-58s %12s\n' "publish (batches of 100) next to a stalled subscriber (ev/s)" "$(m pub100_slow)"
printf '%-58s %12s\n' "RSS after 200,000 events with the stalled subscriber (KiB)" "$(m slow_rss)"
echo "Every publish is acknowledged after fsync (group commit)."
