//! `GORT_DEBUG=schedtrace=<ms>`: every period, one line in Go's `schedtrace` format on stderr
//! (`GODEBUG=schedtrace=1000`), with gort's counters after Go's fields:
//!
//! ```text
//! SCHED 1004ms: gomaxprocs=4 idleprocs=2 threads=6 spinningthreads=0 needspinning=0 idlethreads=3 runqueue=0 [0 1 0 0] goroutines=12 schedules=5213 parks=5190 steals=4 preemptions=0 polls=3 timers=1
//! ```
//!
//! `runqueue` is the global queue; the bracket holds each P's queue (its `runnext` counted);
//! `needspinning` is always 0 (gort has no such flag: a spinning M is started instead).
//! The counters are totals since start (compare two lines). A thread of the runtime
//! (`gort-schedtrace`) writes the lines; the deadlock check counts it as the runtime's own.

use crate::loom::std_only::{AtomicUsize, Once};
use crate::loom::Ordering;
use std::io::Write;
use std::time::{Duration, Instant};

/// 1 once the trace thread runs.
static THREAD: AtomicUsize = AtomicUsize::new(0);

/// Runtime threads this file adds (the deadlock check's count).
pub(crate) fn threads() -> usize {
    THREAD.load(Ordering::Acquire)
}

/// The period asked for with `GORT_DEBUG=schedtrace=<ms>`, if any.
fn period() -> Option<Duration> {
    let v = std::env::var("GORT_DEBUG").ok()?;
    v.split(',')
        .find_map(|w| w.trim().strip_prefix("schedtrace="))
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
}

/// Starts the trace thread if asked (once, when the runtime starts).
pub(crate) fn start() {
    static START: Once = Once::new();
    START.call_once(|| {
        let Some(period) = period() else { return };
        let started = std::thread::Builder::new()
            .name("gort-schedtrace".into())
            .spawn(move || trace(period));
        if started.is_ok() {
            THREAD.store(1, Ordering::Release);
        }
    });
}

fn trace(period: Duration) {
    let start = Instant::now();
    loop {
        std::thread::sleep(period);
        let line = line(start.elapsed());
        // Straight to the descriptor, as the other reports (a test harness captures
        // `eprintln!`).
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// One trace line, `elapsed` after start.
pub(crate) fn line(elapsed: Duration) -> String {
    let v = crate::scheduler::view();
    let stats = crate::stats::stats();
    let local: Vec<String> = v.local.iter().map(usize::to_string).collect();
    format!(
        "SCHED {}ms: gomaxprocs={} idleprocs={} threads={} spinningthreads={} needspinning=0 \
         idlethreads={} runqueue={} [{}] goroutines={} schedules={} parks={} steals={} \
         preemptions={} polls={} timers={}\n",
        elapsed.as_millis(),
        v.maxprocs,
        v.idle_procs,
        v.threads,
        v.spinning,
        v.idle_threads,
        v.global,
        local.join(" "),
        stats.goroutines,
        v.counts.schedules,
        v.counts.parks,
        v.counts.steals,
        stats.cooperative_yields + stats.signal_stops,
        stats.polls,
        stats.timers_pending,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_line_has_go_fields_in_go_order() {
        crate::spawn(|| ()).join().unwrap();
        let l = super::line(std::time::Duration::from_millis(1004));
        let fields = [
            "SCHED 1004ms: gomaxprocs=",
            " idleprocs=",
            " threads=",
            " spinningthreads=",
            " needspinning=0",
            " idlethreads=",
            " runqueue=",
            " [",
            "] goroutines=",
        ];
        let mut at = 0;
        for f in fields {
            at += l[at..]
                .find(f)
                .unwrap_or_else(|| panic!("{f:?} missing in {l}"))
                + f.len();
        }
        assert!(l.ends_with('\n'));
    }
}
