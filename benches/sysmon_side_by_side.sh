#!/usr/bin/env bash
# sysmon on and off side by side, with Go as the reference, in one run (issue 12): the cost of
# the monitor thread, the preemption points and the counted scheduler locks. Within noise is the
# goal. The programs, the alternation and the settings (RUNS, PROCS, SECS, CONNS, ECHO, ONLY) are
# benches/ab_side_by_side.sh's.
#
# Usage: bash benches/sysmon_side_by_side.sh
exec env A="sysmon on" B="sysmon off" B_ENV="GORT_SYSMON=off" TITLE="sysmon on/off" \
    bash "$(dirname "${BASH_SOURCE[0]}")/ab_side_by_side.sh" "$@"
