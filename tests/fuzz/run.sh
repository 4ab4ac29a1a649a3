#!/usr/bin/env bash
# Runs every libFuzzer target for a while over a copy of its checked-in corpus (so the run does
# not rewrite tests/fuzz/corpus). A crash, leak, timeout or failed FUZZ_CHECK fails the script;
# the input that did it is left in the work dir as crash-*/leak-*/timeout-* and printed.
#   tests/fuzz/run.sh <fuzz build dir> [seconds per target, default 30]
set -euo pipefail
BUILD=$(cd "${1:?fuzz build dir}" && pwd)
SECONDS_EACH=${2:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
status=0
for target in token stream_pattern config zlm_hook; do
  mkdir -p "$WORK/$target"
  cp -r "$HERE/corpus/$target/." "$WORK/$target/"
  echo "== fuzz $target for ${SECONDS_EACH}s ($(ls "$WORK/$target" | wc -l) seeds)"
  if ! (cd "$WORK" && "$BUILD/tests/fuzz/${target}_fuzz" -max_total_time="$SECONDS_EACH" \
          -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$WORK/$target" \
          > "$WORK/$target.log" 2>&1); then
    echo "fuzz $target FAILED:"; tail -n 60 "$WORK/$target.log"
    for f in "$WORK"/crash-* "$WORK"/leak-* "$WORK"/timeout-* "$WORK"/oom-*; do
      [ -e "$f" ] && { echo "-- $f:"; base64 -w0 "$f"; echo; }
    done
    status=1
  else
    grep -E "^stat::number_of_executed_units|^Done" "$WORK/$target.log" | tr '\n' ' '; echo
  fi
done
if [ $status -eq 0 ]; then rm -rf "$WORK"; else echo "inputs and logs kept in $WORK"; fi
exit $status
