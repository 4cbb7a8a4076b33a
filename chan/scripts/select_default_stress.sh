#!/usr/bin/env bash
# Runs the select-with-default race tests (chan/tests/select_default.rs: the ports of Go's
# TestNonblockSelectRace and TestNonblockSelectRace2, 100,000 rounds each, plus the eight-case
# and dynamic-Select reproducers) RUNS times in a row (default 100) at GORT_MAXPROCS 2 and 4,
# and prints how many runs failed per test and processor count. Exit status 1 if any failed.
#
#   bash chan/scripts/select_default_stress.sh            # 100 runs
#   RUNS=20 TESTS="nonblock_select_race" bash chan/scripts/select_default_stress.sh
#
# The harness runs a scenario only at GORT_MAXPROCS when that is set (chan/tests/common).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-100}
TESTS=${TESTS:-"nonblock_select_race nonblock_select_race2 nonblock_select_race_8_cases nonblock_dynamic_select_race"}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
bin=$(cargo test --release -p gort-chan --test select_default --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "select_default":
        print(m["executable"])')
failed_any=0
for procs in 2 4; do
    for t in $TESTS; do
        fails=0
        for _ in $(seq "$RUNS"); do
            if ! GORT_MAXPROCS=$procs "$bin" --exact "$t" --test-threads 1 >/dev/null 2>&1; then
                fails=$((fails + 1))
            fi
        done
        echo "select_default_stress: test=$t maxprocs=$procs runs=$RUNS failed=$fails"
        [ "$fails" -eq 0 ] || failed_any=1
    done
done
exit $failed_any
