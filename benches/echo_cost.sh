#!/usr/bin/env bash
# What each echo server spends per request, measured on the server's side so that a busy
# machine distorts it little: CPU time, context switches and system calls by kind, each divided
# by the requests the load generator completed. `perf stat` counts them from the kernel's
# tracepoints (no ptrace, unlike strace, so the server runs at close to its normal speed);
# voluntary and involuntary context switches come from /proc/<pid>/task/*/status.
# Also prints, per run, each server thread's CPU time (by thread name), to show which threads
# burn CPU: the Ms (the netpoll watcher is one of them), sysmon.
#
# Same servers and load generators as benches/echo_side_by_side.sh (build them with it, or
# with the cargo/go commands at its top); servers: gort, gort-migrate (gort's binary with
# GORT_BENCH_MIGRATE=1), go, tokio.
#
# Usage: bash benches/echo_cost.sh
# Env: LOADGEN ("go tokio"), CONNS ("50 1000"), SERVERS ("gort go tokio gort-migrate"),
#   SECS (4), RUNS (2), GORT_BASE_BIN (another build of examples/echo_server, to compare a change
#   with: servers gort-base and gort-base-migrate run it). Binaries from $CARGO_TARGET_DIR
#   (default target/) and target/go-bench/.
# Needs `perf` with access to the syscalls tracepoints (root, or perf_event_paranoid <= -1).
set -euo pipefail

LOADGEN="${LOADGEN:-go tokio}"
CONNS="${CONNS:-50 1000}"
SERVERS="${SERVERS:-gort go tokio gort-migrate}"
SECS="${SECS:-4}"
RUNS="${RUNS:-2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
GOBIN="$ROOT/target/go-bench"
[[ -x $GOBIN/echo_server ]] || GOBIN="$(git -C "$ROOT" worktree list | head -n 1 | cut -d' ' -f1)/target/go-bench"

declare -A SERVER_BIN=(
    [gort]="$TARGET/release/examples/echo_server"
    [gort-migrate]="$TARGET/release/examples/echo_server"
    [gort-base]="${GORT_BASE_BIN:-}"
    [gort-base-migrate]="${GORT_BASE_BIN:-}"
    [tokio]="$TARGET/release/examples/echo_tokio"
    [go]="$GOBIN/echo_server"
)
declare -A LOAD_BIN=(
    [tokio]="$TARGET/release/examples/echo_load_tokio"
    [go]="$GOBIN/echoload"
)
# Syscalls counted, by the name in the table (several kernel entry points share a name).
SYSCALLS="futex epoll_wait epoll_pwait read recvfrom write sendto sched_yield nanosleep clock_nanosleep epoll_ctl"
EVENTS="task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter"
for c in $SYSCALLS; do EVENTS+=",syscalls:sys_enter_$c"; done

wait_listening() {
    local i
    for ((i = 0; i < 100; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return; fi
        sleep 0.05
    done
}

# The column order of a result line.
header="server load C reqs req/s p99_us cpu_us ctxsw vol invol migr syscalls $SYSCALLS"
# Voluntary and involuntary context switches of every thread of process $1 so far.
ctxsw() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ { v += $2 }
    /^nonvoluntary_ctxt_switches/ { n += $2 } END { print v + 0, n + 0 }'; }
echo "== echo cost per request: $(nproc) CPUs, ${SECS}s runs, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$ROOT" rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg) =="
echo "| ${header// / | } |"
port=7300
threads="$(mktemp)"
for ((r = 1; r <= RUNS; r++)); do
    for gen in $LOADGEN; do
        for c in $CONNS; do
            for s in $SERVERS; do
                port=$((port + 1))
                env_mode=()
                [[ $s == *-migrate ]] && env_mode=(GORT_BENCH_MIGRATE=1)
                env "${env_mode[@]}" "${SERVER_BIN[$s]}" "127.0.0.1:$port" >/dev/null 2>&1 &
                pid=$!
                wait_listening "$port"
                out="$(mktemp)"
                perf stat --per-thread -x, -e "$EVENTS" -p "$pid" -o "$out" &
                perf_pid=$!
                sleep 0.2 # perf attached
                read -r vol0 invol0 <<<"$(ctxsw "$pid")"
                line="$(timeout $((SECS + 60)) "${LOAD_BIN[$gen]}" "127.0.0.1:$port" "$c" "$SECS" | tail -n 1)"
                read -r vol1 invol1 <<<"$(ctxsw "$pid")"
                kill -INT "$perf_pid"
                wait "$perf_pid" 2>/dev/null || true
                # Thread names now (perf names a thread started during the run after its
                # creator: an M that sysmon starts shows as gort-sysmon).
                names="$(mktemp)"
                for t in /proc/"$pid"/task/*; do echo "${t##*/} $(cat "$t/comm")"; done >"$names"
                kill "$pid"
                wait "$pid" 2>/dev/null || true
                reqs="$(sed -n 's/.* reqs=\([0-9]*\).*/\1/p' <<<"$line")"
                rps="$(sed -n 's/.* reqs_per_s=\([0-9]*\).*/\1/p' <<<"$line")"
                p99="$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$line")"
                # Per-thread rows: thread-tid,value,unit,event,...; sum per event.
                awk -F, -v vol=$((vol1 - vol0)) -v invol=$((invol1 - invol0)) -v threads="$threads" -v s="$s" -v g="$gen" -v c="$c" -v n="$reqs" -v rps="$rps" -v p99="$p99" -v sys="$SYSCALLS" '
                    FNR == NR { split($0, f, " "); name[f[1]] = f[2]; next }
                    /^#/ || NF < 4 { next }
                    { v = ($2 ~ /^[0-9.]+$/) ? $2 : 0; e = $4; sub(/^syscalls:sys_enter_/, "", e)
                      tot[e] += v
                      if (e == "task-clock") {
                          t = $1; tid = t; sub(/^.*-/, "", tid); sub(/-[0-9]+$/, "", t)
                          if (tid in name) t = name[tid]
                          thr[t] += v } }
                    END {
                        if (n + 0 == 0) { print "| " s " | " g " | " c " | no requests |"; exit }
                        printf "| %s | %s | %d | %d | %d | %d | %.2f | %.4f | %.4f | %.4f | %.4f | %.3f", s, g,
                            c, n, rps, p99, tot["task-clock"] * 1000 / n, tot["context-switches"] / n,
                            vol / n, invol / n, tot["cpu-migrations"] / n,
                            tot["raw_syscalls:sys_enter"] / n
                        k = split(sys, names, " ")
                        for (i = 1; i <= k; i++) printf " | %.4f", tot[names[i]] / n
                        printf " |\n"
                        line = s " " g " C=" c ": threads, CPU ms:"
                        for (t in thr) if (thr[t] >= 1) line = line sprintf(" %s=%.0f", t, thr[t])
                        print line >> threads
                    }' "$names" "$out"
                rm -f "$out" "$names"
            done
        done
    done
done
echo
echo "CPU time by server thread (thread name: ms over the run):"
cat "$threads"
rm -f "$threads"
