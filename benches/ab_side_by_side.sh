#!/usr/bin/env bash
# Two configurations of gort side by side, with Go as the reference, in one run: the engine of
# benches/modes_side_by_side.sh (thread-affine vs migrate mode) and
# benches/sysmon_side_by_side.sh (sysmon on vs off), which set what differs:
#   A, B         the two configurations' names (they label lines and columns)
#   B_ENV        the environment that makes B (A runs with none), e.g. GORT_SYSMON=off
#   TITLE        the table's title
# Programs: spawn_many 1000000 1000, ctxswitch 10000000, chan_throughput 10000000,
# mutex_contention 8000000, pipeline 2000000 (4x4, 1 us of work per message) at maxprocs 1 and
# 2, and the TCP echo server (A, B, Go) at C=50 and C=1000 under Go's load generator
# (benches/go/cmd/echoload: not gort, so gort is not measuring itself on both sides). Runs
# alternate (A, B, Go, A, ...) so all see the same machine; the tables show medians and A/B as
# a ratio (> 1: A is better).
#
# Env: RUNS (default 5), PROCS ("1 2"), SECS (echo seconds, 5), CONNS ("50 1000"), ECHO=0 to skip
# the echo server, ONLY=<regex> to run only the programs whose label matches (ONLY=none: none)
set -euo pipefail
: "${A:?name of configuration A}" "${B:?name of configuration B}" "${B_ENV:?environment of B}"
TITLE="${TITLE:-$A vs $B}"
read -r -a BENV <<<"$B_ENV"
name() { case $1 in A) echo "$A" ;; B) echo "$B" ;; *) echo "$1" ;; esac; }

RUNS="${RUNS:-5}"
PROCS="${PROCS:-1 2}"
SECS="${SECS:-5}"
CONNS="${CONNS:-50 1000}"
ECHO="${ECHO:-1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

cargo build --release -q -p gort --example spawn_many --example ctxswitch --example chan_throughput \
    --example mutex_contention --example pipeline --example echo_server
GORTBIN="$ROOT/target/release/examples"
GOBIN="$ROOT/target/go-bench"
HAVE_GO=0
if GO_BUILD_ONLY=1 bash benches/run_go_baselines.sh && [[ -x "$GOBIN/pipeline" ]]; then
    HAVE_GO=1
fi

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "n/a"; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
metric() { sed -n "s/.*[[:space:]]$1=\([0-9.][0-9.]*\).*/\1/p" | tail -n 1; }

# label | metric | lower|higher | gort args | Go program and args
CONFIGS=(
    "spawn_many n=1e6 batch=1000|ns_per_goroutine|lower|spawn_many 1000000 1000|spawn_many 1000000 1000"
    "ctxswitch n=1e7|ns_per_switch|lower|ctxswitch 10000000|ctxswitch 10000000"
    "chan_throughput 4x4 n=1e7|mmsgs_per_s|higher|chan_throughput 10000000|chan_throughput 10000000"
    "mutex 8 goroutines n=8e6|ns_per_op|lower|mutex_contention 8000000|mutex 8000000"
    "pipeline 4x4 1us n=2e6|ns_per_msg|lower|pipeline 2000000|pipeline 2000000"
)

declare -A V=()
ONLY="${ONLY:-.}"
for cfg in "${CONFIGS[@]}"; do
    IFS='|' read -r label key _ gcmd ocmd <<<"$cfg"
    [[ $label =~ $ONLY ]] || continue
    read -r -a gargv <<<"$gcmd"
    read -r -a oargv <<<"$ocmd"
    for p in $PROCS; do
        for ((r = 1; r <= RUNS; r++)); do
            a="$(GORT_MAXPROCS=$p "$GORTBIN/${gargv[0]}" "${gargv[@]:1}" | metric "$key")"
            m="$(env "${BENV[@]}" GORT_MAXPROCS=$p "$GORTBIN/${gargv[0]}" "${gargv[@]:1}" | metric "$key")"
            g=""
            [[ $HAVE_GO == 1 ]] && g="$(GOMAXPROCS=$p "$GOBIN/${oargv[0]}" "${oargv[@]:1}" | metric "$key")"
            echo "$label P=$p run=$r: $A=$a $B=$m go=${g:-n/a}" >&2
            V["$label|$p|a"]+="$a " V["$label|$p|m"]+="$m " V["$label|$p|g"]+="$g "
        done
    done
done

declare -A E=()
if [[ $ECHO == 1 && $HAVE_GO == 1 ]]; then
    port=7950
    for c in $CONNS; do
        for ((r = 1; r <= RUNS; r++)); do
            for server in A B go; do
                port=$((port + 1))
                case $server in
                A) "$GORTBIN/echo_server" "127.0.0.1:$port" >/dev/null 2>&1 & ;;
                B) env "${BENV[@]}" "$GORTBIN/echo_server" "127.0.0.1:$port" >/dev/null 2>&1 & ;;
                go) "$GOBIN/echo_server" "127.0.0.1:$port" >/dev/null 2>&1 & ;;
                esac
                pid=$!
                sleep 0.5
                line="$(timeout $((SECS + 60)) "$GOBIN/echoload" "127.0.0.1:$port" "$c" "$SECS" | tail -n 1)"
                kill "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
                echo "echo $(name "$server") C=$c run=$r: $line" >&2
                E["$server|$c|rps"]+="$(metric reqs_per_s <<<" $line") "
                E["$server|$c|p99"]+="$(metric p99_us <<<" $line") "
            done
        done
    done
fi

echo "== $TITLE side by side: medians of $RUNS runs, $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD) =="
echo "| program | P | $A | $B | $A vs $B | Go |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for cfg in "${CONFIGS[@]}"; do
    IFS='|' read -r label key better _ _ <<<"$cfg"
    [[ $label =~ $ONLY ]] || continue
    for p in $PROCS; do
        a="$(median <<<"${V["$label|$p|a"]}")"; m="$(median <<<"${V["$label|$p|m"]}")"
        g="$(median <<<"${V["$label|$p|g"]}")"
        ratio="$(awk -v a="$a" -v m="$m" -v b="$better" 'BEGIN { if (a <= 0 || m <= 0) { print "n/a"; exit }
            printf "%.2fx\n", (b == "lower") ? m / a : a / m }')"
        echo "| $label ($key) | $p | $a | $m | $ratio | $g |"
    done
done
if [[ ${#E[@]} -gt 0 ]]; then
    echo
    echo "| echo server (Go's echoload, ${SECS}s) | conns | reqs/s | p99 µs |"
    echo "| --- | ---: | ---: | ---: |"
    for c in $CONNS; do
        for server in A B go; do
            echo "| $(name "$server") | $c | $(median <<<"${E["$server|$c|rps"]}") | $(median <<<"${E["$server|$c|p99"]}") |"
        done
    done
fi
