#!/usr/bin/env bash
# Side-by-side benchmark (issue 9): hookstream, a do-nothing reference gRPC server, NATS
# JetStream and Redis Streams on 127.0.0.1, the same workloads against each, one table of
# medians with hookstream/peer ratios and the issue's targets. See bench/README.md.
#
#   bench/compare.sh [--quick] [--build=DIR] [--runs=N] [--systems="hookstream redis ..."]
#
# Each system runs on a temporary data dir and a free port and is stopped by its PID. Adding a
# workload: a `row` line per figure, a job function that calls `record` for them, and the job
# in JOBS_SHARED (one server for all of them) or JOBS_FRESH (a fresh server each).
set -euo pipefail

BUILD=build
QUICK=0
RUNS=""
SYSTEMS="hookstream reference jetstream redis"
for arg in "$@"; do
  case $arg in
    --quick) QUICK=1 ;;
    --build=*) BUILD=${arg#*=} ;;
    --runs=*) RUNS=${arg#*=} ;;
    --systems=*) SYSTEMS=${arg#*=} ;;
    *) echo "usage: $0 [--quick] [--build=DIR] [--runs=N] [--systems=\"...\"]" >&2; exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then
  EVENTS=20000; RUNS=${RUNS:-1}; LIVE_SECONDS=2; IDLE_COUNTS="1000"
else
  EVENTS=200000; RUNS=${RUNS:-3}; LIVE_SECONDS=10; IDLE_COUNTS="1000 10000"
fi
HSBENCH=$BUILD/bench/hsbench
for bin in "$HSBENCH" "$BUILD/bench/reference_server" "$BUILD/server/main/hookstreamd"; do
  [ -x "$bin" ] || { echo "$bin is missing: build the hsbench, reference_server and hookstreamd targets" >&2; exit 1; }
done
for tool in nats-server redis-server python3; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (.ci/install-deps)" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/hookstream-compare.XXXXXX)
SERVER_PID=""
JOB_PID=""
cleanup() {
  for p in $JOB_PID $SERVER_PID; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || true  # 10,000 idle subscribers on their own connections

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server SYSTEM: a fresh server on a fresh dir; sets SERVER_PID, SERVER_DIR and ADDR.
start_server() {
  local sys=$1 dir port ready log
  # The previous system's writes are still being written back; hookstream fsyncs every group
  # commit and would pay for them (the peers do not fsync during a run): start on a quiet disk.
  sync
  echo "run $run: $sys $(cut -d' ' -f1 /proc/loadavg)" >&2
  dir=$(mktemp -d "$TMP/$sys.XXXX"); port=$(free_port); ADDR=127.0.0.1:$port; log=$dir/log
  SERVER_DIR=$dir
  case $sys in
    hookstream)
      "$BUILD/server/main/hookstreamd" --data_dir="$dir/data" --grpc_listen="$ADDR" \
        --http_listen=off 2>"$log" &
      ready="event=server.started" ;;
    reference)
      "$BUILD/bench/reference_server" --listen="$ADDR" 2>"$log" &
      ready="reference_server started" ;;
    jetstream)
      nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir/data" -l "$log" &
      ready="Server is ready" ;;
    redis)
      redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --appendonly yes \
        --appendfsync everysec --save "" --maxclients 15000 --logfile "$log" &
      ready="Ready to accept connections" ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    grep -q "$ready" "$log" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "$sys did not start:" >&2; cat "$log" >&2; exit 1
}
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  rm -rf "$SERVER_DIR"
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }

# hsb SYSTEM MODE FLAGS...: one hsbench run; its key=value line on stdout, "" on failure.
hsb() {
  local sys=$1 mode=$2; shift 2
  timeout 600 "$HSBENCH" "$mode" --system="$sys" --server="$ADDR" --streams=1000 --size=256 "$@" \
    2>>"$TMP/errors" || echo "FAILED $sys $mode $*" >>"$TMP/errors"
}
field() { sed -n "s/.*[ ^]$1=\([^ ]*\).*/\1/p" | head -1; }

# ---- rows: id | shown as | unit | target ("ge:PEER:X" = hookstream >= X * peer; "le:N" /
# "lt:N" = hookstream's own figure). Latency and memory: lower is better.
ROWS=()
declare -A LABEL UNIT TARGET VALUES
row() { ROWS+=("$1"); LABEL[$1]=$2; UNIT[$1]=$3; TARGET[$1]=${4:-}; }
row w1_b100 "W1 publish, batches of 100, 4 conns" "ev/s" "ge:redis:1.5 ge:jetstream:3"
row w1_b1000 "W1 publish, batches of 1000, 4 conns" "ev/s" "ge:redis:1.5 ge:jetstream:3"
row w1_stream "W1 publish, 1 ev/msg pipelined, 4 conns" "ev/s" "ge:redis:1.5 ge:jetstream:3"
row w3 "W3 catch-up of W1's events, 1 sub" "ev/s" "ge:redis:1.2 ge:jetstream:2"
for rate in 2000 20000; do
  for subs in 1 10; do
    for p in p50 p99 p999; do
      t=""
      [ "$rate/$subs/$p" = 2000/1/p50 ] && t="le:100"
      [ "$rate/$subs/$p" = 20000/10/p99 ] && t="lt:2000"
      row "w2_${rate}_${subs}_$p" "W2 live ${rate}/s x ${subs} sub, $p" "us" "$t"
    done
  done
done
for n in $IDLE_COUNTS; do
  row "w4_${n}_own" "W4 ${n} idle subs, own connection each" "KiB/sub" "le:40"
  row "w4_${n}_shared" "W4 ${n} idle subs, 100 per connection" "KiB/sub" "le:22"
done

# W5 (hookstream only): webhook deliveries/s of the shim, and wrk's raw POST rate against the
# same receiver (the ceiling any webhook sender could reach on it).
row w5_shim "W5 webhooks delivered, per_stream" "del/s" ""
row w5_wrk "W5 same receiver, raw POSTs (wrk)" "req/s" ""

record() { VALUES[$1/$2]+="$3 "; }  # record ROW SYSTEM VALUE

# ---- jobs. Peers have one fastest publishing mode; it stands in every W1 row.
job_publish() {
  local sys=$1 out
  case $sys in
    hookstream|reference)
      out=$(hsb "$sys" publish --prefix=w1a --events="$EVENTS" --batch=100 --connections=4)
      record w1_b100 "$sys" "$(echo "$out" | field events_per_sec)"
      out=$(hsb "$sys" publish --prefix=w1b --events="$EVENTS" --batch=1000 --connections=4)
      record w1_b1000 "$sys" "$(echo "$out" | field events_per_sec)"
      out=$(hsb "$sys" publish --prefix=w1c --events="$EVENTS" --batch=1 --publish_mode=stream \
            --inflight=256 --connections=4)
      record w1_stream "$sys" "$(echo "$out" | field events_per_sec)" ;;
    jetstream|redis)
      # JetStream: up to 4,096 async publishes in flight; Redis: XADD pipelined 1,000 deep.
      out=$(hsb "$sys" publish --prefix=w1a --events="$EVENTS" --batch=1000 --inflight=4096 \
            --connections=4)
      local v; v=$(echo "$out" | field events_per_sec)
      record w1_b100 "$sys" "$v"; record w1_b1000 "$sys" "$v"; record w1_stream "$sys" "$v" ;;
  esac
}
job_catchup() {
  record w3 "$1" "$(hsb "$1" catchup --prefix=w1a --events="$EVENTS" | field events_per_sec)"
}
job_live() {
  local sys=$1 rate subs out p
  for rate in 2000 20000; do
    for subs in 1 10; do
      # The publisher sends what is due in one request (gRPC) or at once (NATS, Redis).
      out=$(hsb "$sys" live --prefix="w2_${rate}_$subs" --rate=$rate --seconds="$LIVE_SECONDS" \
            --subscribers=$subs --batch=1000 --publish_mode=stream --inflight=4096)
      for p in p50 p99 p999; do record "w2_${rate}_${subs}_$p" "$sys" "$(echo "$out" | field ${p}_us)"; done
    done
  done
}
# job_idle SYSTEM COUNT PER_CONNECTION ROW: server RSS growth per idle subscription.
job_idle() {
  local sys=$1 n=$2 per=$3 rowid=$4 before after out=$TMP/idle
  before=$(rss_kb)
  "$HSBENCH" idle --system="$sys" --server="$ADDR" --count="$n" --per_connection="$per" \
    --hold_seconds=600 >"$out" 2>"$out.err" &
  JOB_PID=$!
  for _ in $(seq 1 3000); do
    grep -q ready "$out" 2>/dev/null && break
    kill -0 "$JOB_PID" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q ready "$out"; then
    sleep 1  # let the server settle
    after=$(rss_kb)
    record "$rowid" "$sys" "$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN {printf "%.1f", (a - b) / n}')"
  elif grep -q UNIMPLEMENTED "$out.err"; then
    record "$rowid" "$sys" n/a  # the system (or its client) cannot hold them this way
  else
    echo "FAILED $sys idle $n/$per" >>"$TMP/errors"; record "$rowid" "$sys" ""
  fi
  cat "$out.err" >>"$TMP/errors"
  kill "$JOB_PID" 2>/dev/null || true; wait "$JOB_PID" 2>/dev/null || true; JOB_PID=""
}
# job_webhook: webhook_bench runs its own in-process server and receiver (no start_server).
job_webhook() {
  local out port pid
  out=$("$BUILD/bench/webhook/webhook_bench" deliver --events="$((EVENTS / 4))" \
        --streams=100 --max_in_flight=64 2>"$TMP/w5_log")
  record w5_shim hookstream "$(echo "$out" | sed -n 's/.*deliveries_per_s=\([0-9]*\).*/\1/p')"
  out=$TMP/w5_serve
  "$BUILD/bench/webhook/webhook_bench" serve --seconds=$((LIVE_SECONDS + 6)) >"$out" 2>"$TMP/w5_log" &
  pid=$!
  for _ in $(seq 100); do grep -q port= "$out" && break; sleep 0.05; done
  port=$(sed -n 's/port=//p' "$out")
  record w5_wrk hookstream "$(wrk -t2 -c64 -d"${LIVE_SECONDS}s" -s "$(dirname "$0")/webhook/post.lua" \
    "http://127.0.0.1:$port/hook" | sed -n 's/Requests\/sec: *\([0-9.]*\).*/\1/p')"
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
}
JOBS_SHARED="job_publish job_catchup job_live"
JOBS_FRESH=""
for n in $IDLE_COUNTS; do JOBS_FRESH+=" job_idle:$n:1:w4_${n}_own job_idle:$n:100:w4_${n}_shared"; done

# ---- run
LOADS=()
START=$(date +%s)
for run in $(seq 1 "$RUNS"); do
  for sys in $SYSTEMS; do
    start_server "$sys"
    for job in $JOBS_SHARED; do $job "$sys"; done
    stop_server
    for job in $JOBS_FRESH; do
      IFS=: read -r fn a b c <<<"$job"
      start_server "$sys"; $fn "$sys" "$a" "$b" "$c"; stop_server
    done
  done
  if [[ " $SYSTEMS " == *" hookstream "* ]] && command -v wrk >/dev/null; then job_webhook; fi
  LOADS+=("$(cut -d' ' -f1-3 /proc/loadavg)")
done

# ---- table
median() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }
med() { local m; m=$(echo "${VALUES[$1/$2]:-}" | median); if [ -n "$m" ]; then echo "$m";
  elif echo "${VALUES[$1/$2]:-}" | grep -q n/a; then echo n/a; else echo "-"; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else printf "-"}'; }
verdict() {  # verdict ROW: met / NOT met / blank
  local r=$1 t hs ok=1 op peer x
  [ -n "${TARGET[$r]}" ] || { echo ""; return; }
  hs=$(med "$r" hookstream)
  [[ $hs =~ ^[0-9.]+$ ]] || { echo "no data"; return; }
  for t in ${TARGET[$r]}; do
    IFS=: read -r op peer x <<<"$t"
    case $op in
      ge) ok=$(awk -v h="$hs" -v p="$(med "$r" "$peer")" -v x="$x" -v o="$ok" \
            'BEGIN {print (o && h ~ /^[0-9.]+$/ && p ~ /^[0-9.]+$/ && h >= x * p) ? 1 : 0}') ;;
      le|lt) ok=$(awk -v h="$hs" -v x="$peer" -v o="$ok" -v op="$op" \
            'BEGIN {print (o && h ~ /^[0-9.]+$/ && (op == "le" ? h <= x : h < x)) ? 1 : 0}') ;;
    esac
  done
  [ "$ok" = 1 ] && echo met || echo "NOT met"
}
target_text() {
  local t out="" op peer x
  for t in ${TARGET[$1]}; do
    IFS=: read -r op peer x <<<"$t"
    case $op in ge) out+="${x}x $peer " ;; le) out+="<=$peer " ;; lt) out+="<$peer " ;; esac
  done
  echo "$out"
}

echo
echo "hookstream side by side: medians of $RUNS run(s), $EVENTS events of 256 B over 1000 streams$([ "$QUICK" = 1 ] && echo ' (--quick)'); $(($(date +%s) - START)) s"
echo "durability: hookstream acks after fsync (group commit); reference none (memory only);"
echo "            jetstream acks before fsync (file store, fsync every 2 min); redis AOF everysec"
echo "load average (1/5/15 min) after each run: ${LOADS[*]}; $(nproc) cores"
printf '%-44s %-8s %10s %10s %10s %10s %7s %7s %7s  %-24s %s\n' workload unit hookstream reference \
  jetstream redis hs/ref hs/js hs/redis target verdict
for r in "${ROWS[@]}"; do
  hs=$(med "$r" hookstream); ref=$(med "$r" reference); js=$(med "$r" jetstream); rd=$(med "$r" redis)
  printf '%-44s %-8s %10s %10s %10s %10s %7s %7s %7s  %-24s %s\n' "${LABEL[$r]}" "${UNIT[$r]}" \
    "$hs" "$ref" "$js" "$rd" "$(ratio "$hs" "$ref")" "$(ratio "$hs" "$js")" "$(ratio "$hs" "$rd")" \
    "$(target_text "$r")" "$(verdict "$r")"
done
echo
echo "every run (in run order; the table shows their medians):"
for r in "${ROWS[@]}"; do
  line=""
  for sys in $SYSTEMS; do
    [ -n "${VALUES[$r/$sys]:-}" ] && line+="  $sys: ${VALUES[$r/$sys]% }"
  done
  [ -n "$line" ] && printf '%-44s%s\n' "${LABEL[$r]}" "$line"
done
if [ -s "$TMP/errors" ]; then echo; echo "errors and notes (stderr of the tools):"; awk '!seen[$0]++' "$TMP/errors"; fi
