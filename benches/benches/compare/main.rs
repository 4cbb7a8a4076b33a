//! The comparison suite (issue 5): the same workloads on gort, OS threads, tokio (multi-thread
//! and current-thread runtimes) and may, one criterion group per workload, so each report
//! shows them side by side. Go's twins are `benches/go/workloads`; `benches/compare.sh` runs
//! both at 1 and at all CPUs and prints one table (docs/BENCHMARKS.md).
//!
//! Processors: `GORT_BENCH_PROCS` (default: the available CPUs) sets gort's maxprocs, the
//! tokio multi-thread runtime's worker threads, may's workers, and the number of CPUs the
//! OS-thread variants are pinned to. may reads its configuration once per process, so one
//! process measures one processor count; groups are named `<workload>_p<procs>` and the
//! benchmarks in them `gort`, `threads`, `tokio_mt`, `tokio_ct` (only at 1 processor: the
//! current-thread runtime has one) and `may`.
//!
//! Shape: every benchmark times whole iterations from inside its runtime (one `gort::run`,
//! `block_on` or coroutine per sample, so entering the runtime is not timed), an iteration
//! being a fixed batch of operations (the group's `Throughput::Elements`); the report divides
//! by the batch to give ns per operation. The batch sizes are the constants below, and Go's
//! twins use the same ones.

mod gort_rt;
mod may_rt;
mod threads;
mod tokio_rt;

use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use tokio::runtime::Runtime;

/// ctxswitch: tokens a sender passes to a receiver over an unbuffered channel.
pub const CTX_TOKENS: u64 = 10_000;
/// yield: yields by one task.
pub const YIELDS: u64 = 1_000;
/// spawn_join: tasks spawned, then joined, per iteration.
pub const SPAWNS: u64 = 1_000;
/// chan_*: messages (u64) per iteration, all producers together.
pub const CHAN_MSGS: u64 = 100_000;
/// Capacity of the buffered channels (chan_buf_*, select_*).
pub const CHAN_CAP: usize = 1024;
/// Producers and consumers of the chan_*_4x4 workloads (each).
pub const MPMC_SIDES: u64 = 4;
/// select_*: selects (each receiving one message) per iteration.
pub const SELECT_MSGS: u64 = 10_000;
/// mutex_uncontended: lock/unlock pairs by one task.
pub const MUTEX_OPS: u64 = 10_000;
/// mutex_contended_8: tasks contending for one mutex.
pub const MUTEX_WORKERS: u64 = 8;
/// mutex_contended_8: lock/unlock pairs per task.
pub const MUTEX_PER_WORKER: u64 = 10_000;
/// waitgroup: detached tasks that each mark one `done`, waited for by the spawner.
pub const WG_TASKS: u64 = 1_000;
/// timers: tasks sleeping at once.
pub const TIMERS: u64 = 10_000;
/// timers: how long each sleeps.
pub const TIMER_SLEEP: Duration = Duration::from_millis(1);
/// tcp_echo: round trips (write a message, read its echo) per connection and iteration.
pub const ECHO_ROUNDS: u64 = 1_000;
/// tcp_echo: bytes per message.
pub const ECHO_MSG: usize = 64;

/// One iteration count in, the time those iterations took out.
type Run = fn(u64) -> Duration;
/// As [`Run`], on a given tokio runtime (the same code runs on both flavours).
type RunTokio = fn(&Runtime, u64) -> Duration;

/// One workload and its implementation on each system (`None`: the system has no such thing).
struct Workload {
    name: &'static str,
    /// Operations per iteration: the unit of the report's ns/op.
    ops: u64,
    gort: Run,
    threads: Option<Run>,
    tokio: Option<RunTokio>,
    may: Option<Run>,
}

/// The workloads, in report order, as run at `procs` processors.
fn workloads(procs: usize) -> Vec<Workload> {
    macro_rules! workload {
        ($name:ident, $ops:expr) => {
            Workload {
                name: stringify!($name),
                ops: $ops,
                gort: gort_rt::$name,
                threads: Some(threads::$name),
                tokio: Some(tokio_rt::$name),
                may: Some(may_rt::$name),
            }
        };
    }
    // may's `select!` loses values with more than one worker: a case that has already received
    // is cancelled when another wins, and its value is dropped (seen here: about half of 10,000
    // values lost at 2 workers, none at 1). The workload counts values, so it would never end:
    // measured at 1 worker only.
    let may_select = |w: Workload| Workload {
        may: w.may.filter(|_| procs == 1),
        ..w
    };
    vec![
        workload!(ctxswitch, CTX_TOKENS),
        workload!(yield_now, YIELDS),
        workload!(spawn_join, SPAWNS),
        workload!(chan_buf_1x1, CHAN_MSGS),
        workload!(chan_buf_4x4, CHAN_MSGS),
        workload!(chan_unbuf_1x1, CHAN_MSGS),
        workload!(chan_unbuf_4x4, CHAN_MSGS),
        may_select(workload!(select_2, SELECT_MSGS)),
        may_select(workload!(select_8, SELECT_MSGS)),
        workload!(mutex_uncontended, MUTEX_OPS),
        workload!(mutex_contended_8, MUTEX_WORKERS * MUTEX_PER_WORKER),
        workload!(waitgroup, WG_TASKS),
        workload!(timers_10k, TIMERS),
        workload!(tcp_echo, ECHO_ROUNDS),
    ]
}

/// The processor count of this process: `GORT_BENCH_PROCS`, else the available CPUs.
pub fn procs() -> usize {
    match std::env::var("GORT_BENCH_PROCS") {
        Ok(v) => v.parse().expect("GORT_BENCH_PROCS: a positive number"),
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

fn main() {
    let procs = procs();
    assert!(procs >= 1, "GORT_BENCH_PROCS must be at least 1");
    gort::set_maxprocs(procs);
    may::config().set_workers(procs);
    let tokio_mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(procs)
        .enable_all()
        .build()
        .expect("tokio multi-thread runtime");
    let tokio_ct = (procs == 1).then(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio current-thread runtime")
    });

    // Short runs: ~2.5 s per benchmark, so the whole suite (about 120 benchmarks at 1 and 2
    // processors) takes ~10 minutes on 2 cores. Command-line flags (--measurement-time, ...)
    // override these.
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();

    for w in workloads(procs) {
        let mut g = c.benchmark_group(format!("{}_p{procs}", w.name));
        // Flat: every sample runs the same number of iterations, which suits iterations of
        // milliseconds (criterion's linear mode would need 55 of them for 10 samples).
        g.sampling_mode(SamplingMode::Flat);
        g.throughput(Throughput::Elements(w.ops));
        g.bench_function("gort", |b| b.iter_custom(w.gort));
        if let Some(f) = w.threads {
            g.bench_function("threads", |b| b.iter_custom(f));
        }
        if let Some(f) = w.tokio {
            g.bench_function("tokio_mt", |b| b.iter_custom(|iters| f(&tokio_mt, iters)));
            if let Some(rt) = &tokio_ct {
                g.bench_function("tokio_ct", |b| b.iter_custom(|iters| f(rt, iters)));
            }
        }
        if let Some(f) = w.may {
            g.bench_function("may", |b| b.iter_custom(f));
        }
        g.finish();
    }
    c.final_summary();
}
