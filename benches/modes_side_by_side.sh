#!/usr/bin/env bash
# gort's two modes side by side, with Go as the reference, in one run (issue 11):
#   affine:  the default, a started goroutine stays on its thread (docs/SOUNDNESS.md)
#   migrate: Go's behaviour, gort::enable_migration (the examples' GORT_BENCH_MIGRATE=1)
# > 1 in the ratio column: the default mode is better. The programs, the alternation and the
# settings (RUNS, PROCS, SECS, CONNS, ECHO, ONLY) are benches/ab_side_by_side.sh's.
#
# Usage: bash benches/modes_side_by_side.sh
exec env A=affine B=migrate B_ENV="GORT_BENCH_MIGRATE=1" TITLE="modes" \
    bash "$(dirname "${BASH_SOURCE[0]}")/ab_side_by_side.sh" "$@"
