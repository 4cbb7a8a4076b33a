#!/usr/bin/env bash
# Issue 16's acceptance run: examples/sleep_storm (400 rounds of 64 goroutines x 200 short
# sleeps, about 20 s) RUNS times at each GORT_MAXPROCS, and RUNS times pinned to one CPU.
# A run that does not finish within TIMEOUT seconds counts as hung. Prints one line per
# configuration: `sleep_storm.sh: <config> completed <k>/<RUNS>`.
#
#   bash benches/sleep_storm.sh            # RUNS=20 PROCS="1 2 4 8" TIMEOUT=120
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
PROCS=${PROCS:-"1 2 4 8"}
TIMEOUT=${TIMEOUT:-120}
cargo build --release --example sleep_storm >/dev/null 2>&1
# A copy, so that builds meanwhile cannot change the binary under test.
bin=$(mktemp -d)/sleep_storm
cp target/release/examples/sleep_storm "$bin"
storm() { # label, command prefix...
  local label=$1 ok=0; shift
  for _ in $(seq "$RUNS"); do
    if "$@" timeout "$TIMEOUT" "$bin" 400 >/dev/null 2>&1; then ok=$((ok + 1)); fi
  done
  echo "sleep_storm.sh: $label completed $ok/$RUNS"
}
for p in $PROCS; do storm "maxprocs=$p" env GORT_MAXPROCS="$p"; done
storm "taskset -c 0 (maxprocs default)" taskset -c 0
