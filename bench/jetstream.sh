#!/usr/bin/env bash
# Publish and catch-up rates of the JetStream backend next to the embedded store (issue 10):
# one hookstreamd on each, on loopback; JetStream is a single nats-server -js (R1) and, with
# CLUSTER=1, a 3-node cluster with an R3 stream. Catch-up runs on a freshly started hookstreamd,
# so it reads the backend (RocksDB / JetStream consumers), not the in-memory ring.
# "two servers": two hookstreamd on one JetStream log publish to the same 1000 streams at the
# same time (events of both / wall time), which makes them race for every stream.
# Medians of RUNS runs. Usage: bench/jetstream.sh [BUILD_DIR] [RUNS] [EVENTS]
set -euo pipefail
BUILD=${1:-build}
RUNS=${2:-3}
EVENTS=${3:-20000}
D=$(mktemp -d /tmp/hookstream-jsbench.XXXXXX)
BENCH=$BUILD/bench/hookstream_bench
NATS=$(command -v nats-server || echo /usr/sbin/nats-server)
PIDS=()
HS=""
HS2=""
cleanup() { for h in $HS $HS2; do kill "$h" 2>/dev/null; done; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
port() { echo $((20000 + RANDOM % 30000)); }
rate() { sed -n 's/.*events_per_sec=\([0-9]*\).*/\1/p'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

start_hs() {  # $1: config file or "" (embedded). Retried while a new cluster elects leaders.
  local cfg=()
  if [ -n "$1" ]; then cfg=(--config="$1"); fi
  for _ in $(seq 1 30); do
    ADDR=127.0.0.1:$(port)
    rm -f "$D/log"  # Else the previous server's start line could be taken for this one's.
    "$BUILD/server/main/hookstreamd" --data_dir="${DATA:-$D/data}" --grpc_listen="$ADDR" --http_listen=off "${cfg[@]}" 2>"$D/log" &
    HS=$!
    for _ in $(seq 1 400); do
      grep -q "event=server.started" "$D/log" 2>/dev/null && return
      kill -0 "$HS" 2>/dev/null || break
      sleep 0.05
    done
    wait "$HS" 2>/dev/null || true
    sleep 0.5
  done
  echo "hookstreamd did not start"; cat "$D/log"; exit 1
}
stop_hs() { kill "$HS"; wait "$HS" || true; HS=""; }

start_nats() {  # $1: nodes
  PIDS=()
  local n=$1 urls=() routes=()
  CP=(); RP=()
  for i in $(seq 1 "$n"); do CP+=("$(port)"); RP+=("$(port)"); done
  for i in $(seq 0 $((n - 1))); do routes+=("nats://127.0.0.1:${RP[$i]}"); urls+=("\"nats://127.0.0.1:${CP[$i]}\""); done
  for i in $(seq 0 $((n - 1))); do
    local extra=()
    if [ "$n" -gt 1 ]; then extra=(--cluster_name b --cluster "nats://127.0.0.1:${RP[$i]}" --routes "$(IFS=,; echo "${routes[*]}")"); fi
    "$NATS" -js -a 127.0.0.1 -p "${CP[$i]}" -n "n$i" -sd "$D/nats$i" "${extra[@]}" >"$D/nats$i.log" 2>&1 &
    PIDS+=($!)
  done
  printf 'storage:\n  backend: jetstream\n  replicas: %s\n  servers: [%s]\n' "$n" "$(IFS=,; echo "${urls[*]}")" >"$D/js.yaml"
  sleep 1
}
stop_nats() { for p in "${PIDS[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done; PIDS=(); rm -rf "$D"/nats*; }

declare -A R
measure() {  # $1: label, $2: config ("" embedded)
  for run in $(seq 1 "$RUNS"); do
    rm -rf "$D/data"
    if [ -n "$2" ]; then start_nats "$3"; fi
    start_hs "$2"
    R[$1_pub100]+="$($BENCH publish --server=$ADDR --events=$EVENTS --batch=100 --connections=4 | rate) "
    R[$1_pub1]+="$($BENCH publish_stream --server=$ADDR --events=$((EVENTS / 4)) --batch=1 --inflight=64 --connections=4 | rate) "
    stop_hs
    start_hs "$2"
    R[$1_catchup]+="$($BENCH catchup --server=$ADDR --events=$((EVENTS + EVENTS / 4)) | rate) "
    stop_hs
    if [ -n "$2" ]; then stop_nats; fi
  done
}
measure_two() {  # $1: label, $2: config, $3: nodes
  for run in $(seq 1 "$RUNS"); do
    start_nats "$3"
    DATA="$D/data_a" start_hs "$2"
    local a=$ADDR ha=$HS
    HS2=$HS
    DATA="$D/data_b" start_hs "$2"
    local b=$ADDR hb=$HS
    local t0 t1
    t0=$(date +%s.%N)
    "$BENCH" publish --server="$a" --events=$((EVENTS / 2)) --batch=100 --connections=2 >"$D/ra" &
    local pa=$!
    "$BENCH" publish --server="$b" --events=$((EVENTS / 2)) --batch=100 --connections=2 >"$D/rb" &
    local pb=$!
    wait "$pa"
    wait "$pb"
    t1=$(date +%s.%N)
    R[$1_two]+="$(awk -v n="$EVENTS" -v a="$t0" -v b="$t1" 'BEGIN {printf "%d", n / (b - a)}') "
    kill "$ha" "$hb"
    wait "$ha" "$hb" 2>/dev/null || true
    HS=""
    HS2=""
    stop_nats
  done
}
measure embedded ""
measure js1 "$D/js.yaml" 1
measure_two js1 "$D/js.yaml" 1
if [ "${CLUSTER:-1}" = 1 ]; then
  measure js3 "$D/js.yaml" 3
  measure_two js3 "$D/js.yaml" 3
fi

m() { echo ${R[$1]:-} | tr ' ' '\n' | grep -v '^$' | median; }
printf '%-52s %10s %10s %10s\n' "figure (ev/s, median of $RUNS runs)" embedded "JS R1" "JS R3"
printf '%-52s %10s %10s %10s\n' "publish, batches of 100 x 256 B, 1000 streams, 4 conns" "$(m embedded_pub100)" "$(m js1_pub100)" "$(m js3_pub100)"
printf '%-52s %10s %10s %10s\n' "PublishStream, 1 event/msg, 64 in flight, 4 conns" "$(m embedded_pub1)" "$(m js1_pub1)" "$(m js3_pub1)"
printf '%-52s %10s %10s %10s\n' "catch-up read by a fresh server, one subscriber" "$(m embedded_catchup)" "$(m js1_catchup)" "$(m js3_catchup)"
printf '%-52s %10s %10s %10s\n' "two servers, batches of 100, same 1000 streams" "-" "$(m js1_two)" "$(m js3_two)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
