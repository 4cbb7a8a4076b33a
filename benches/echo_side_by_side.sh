#!/usr/bin/env bash
# Echo servers side by side with one load generator (gort's examples/echo_load): gort's
# examples/echo_server, Go's benches/go/cmd/echo_server, tokio's and may's
# (benches/examples/echo_{tokio,may}.rs), alternating runs, at C=50 and C=1000 connections,
# 64-byte messages. Prints every run and a table of medians.
#
# Usage: bash benches/echo_side_by_side.sh     Env: RUNS (3), SECS (5), CONNS ("50 1000"),
#   LOAD_PROCS (the load generator's GORT_MAXPROCS; default: the runtime's default, every CPU)
# The load generator shares the machine with the server: figures compare servers under the
# same conditions, they are not absolute capacity. With LOAD_PROCS=1 on a 2-CPU machine the
# load generator keeps to one core's worth of threads and competes less with the server.
set -euo pipefail

RUNS="${RUNS:-3}"
SECS="${SECS:-5}"
CONNS="${CONNS:-50 1000}"
LOAD_PROCS="${LOAD_PROCS:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

cargo build --release -q -p gort --example echo_server --example echo_load
cargo build --release -q -p gort-benches --example echo_tokio --example echo_may
LOAD="$ROOT/target/release/examples/echo_load"
SERVERS=(
    "gort|$ROOT/target/release/examples/echo_server"
    "tokio|$ROOT/target/release/examples/echo_tokio"
    "may|$ROOT/target/release/examples/echo_may"
)
if GO_BUILD_ONLY=1 bash benches/run_go_baselines.sh && [[ -x target/go-bench/echo_server ]]; then
    SERVERS+=("go|$ROOT/target/go-bench/echo_server")
else
    echo "[echo] Go unavailable: gort only" >&2
fi

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "n/a"; exit } print v[int((NR + 1) / 2)] }'; }

declare -A RPS P99
port=7900
for c in $CONNS; do
    for ((r = 1; r <= RUNS; r++)); do
        for s in "${SERVERS[@]}"; do
            IFS='|' read -r name bin <<<"$s"
            port=$((port + 1))
            "$bin" "127.0.0.1:$port" >/dev/null 2>&1 &
            pid=$!
            sleep 0.5
            line="$(GORT_MAXPROCS="$LOAD_PROCS" timeout $((SECS + 60)) "$LOAD" "127.0.0.1:$port" "$c" "$SECS" | tail -n 1)"
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            echo "$name C=$c run=$r  $line"
            RPS["$name|$c"]+="$(sed -n 's/.*reqs_per_s=\([0-9.]*\).*/\1/p' <<<"$line") "
            P99["$name|$c"]+="$(sed -n 's/.*p99_us=\([0-9.]*\).*/\1/p' <<<"$line") "
        done
    done
done

echo
echo "== echo: medians of $RUNS runs of ${SECS}s, $(nproc) CPUs (load generator on the same machine, GORT_MAXPROCS=${LOAD_PROCS:-default}), $(date -u '+%Y-%m-%d %H:%M UTC') =="
echo "| server | conns | reqs/s | p99 µs |"
echo "| --- | ---: | ---: | ---: |"
for c in $CONNS; do
    for s in "${SERVERS[@]}"; do
        IFS='|' read -r name _ <<<"$s"
        echo "| $name | $c | $(median <<<"${RPS["$name|$c"]}") | $(median <<<"${P99["$name|$c"]}") |"
    done
done
