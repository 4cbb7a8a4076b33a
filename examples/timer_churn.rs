//! Timer churn (issue 17): timers that are stopped, reset or abandoned before they fire must
//! not pile up in the scheduler's timer heap.
//!
//! `cargo run --release --example timer_churn -- [n] [phase]` (default 1,000,000, all phases;
//! a phase is `reset`, `after`, `wake` or `at`, to time one alone in a fresh process).
//!
//! Phases, each `n` operations on 60-second timers that never fire: `Timer::reset` of one
//! `gort::time::Timer`; `time::after` whose receiver is dropped at once; a `park_timeout`
//! woken early (a channel ping-pong whose receive waits with a timeout); `sched::at` + `stop`
//! on one goroutine, then on `maxprocs` goroutines at once. After each phase it prints the
//! heap's entry count (`sched::timer_entries`), the resident set size (`/proc/self/statm`)
//! and the phase's time per operation; the last two phases are the cost of `at` + `stop`.

use std::time::{Duration, Instant};

const FAR: Duration = Duration::from_secs(60);

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().expect("n: a number"));
    let phase = std::env::args().nth(2).unwrap_or_else(|| "all".into());
    assert!(
        ["all", "reset", "after", "wake", "at"].contains(&phase.as_str()),
        "phase: all, reset, after, wake or at"
    );
    gort::run(move || churn(n, &phase));
}

fn churn(n: u64, phase: &str) {
    println!("timer_churn: n={n} maxprocs={}", gort::maxprocs());
    report("start", None);
    let run = |p: &str| phase == "all" || phase == p;

    if run("reset") {
        resets(n);
    }
    if run("after") {
        let t0 = Instant::now();
        for _ in 0..n {
            drop(gort::time::after(FAR));
        }
        report("dropped afters", Some((t0, n)));
    }
    if run("wake") {
        let t0 = Instant::now();
        ping_pong(n);
        report("park_timeouts woken early", Some((t0, n)));
    }
    if run("at") {
        at_stop(n);
    }
}

fn resets(n: u64) {
    let t0 = Instant::now();
    let timer = gort::time::Timer::new(FAR);
    for _ in 0..n {
        timer.reset(FAR);
    }
    report("resets of one Timer", Some((t0, n)));
    timer.stop();
}

/// `sched::at` + `stop` pairs: on one goroutine, then on `maxprocs` goroutines at once.
fn at_stop(n: u64) {
    let t0 = Instant::now();
    for _ in 0..n {
        sched::at(Instant::now() + FAR, || {}).stop();
    }
    report("at+stop, 1 goroutine", Some((t0, n)));

    let procs = gort::maxprocs() as u64;
    let t0 = Instant::now();
    let hs: Vec<_> = (0..procs)
        .map(|_| {
            gort::go!(move || {
                for _ in 0..n / procs {
                    sched::at(Instant::now() + FAR, || {}).stop();
                }
            })
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    report(
        &format!("at+stop, {procs} goroutines"),
        Some((t0, n / procs * procs)),
    );
}

/// `n` rounds of a ping-pong whose pong is received with a timeout: the ping is buffered, so
/// the receiver usually parks with a timer before the pong comes, and the pong wakes it long
/// before the timer would.
fn ping_pong(n: u64) {
    let (ping_tx, ping_rx) = gort::chan::<()>(1);
    let (pong_tx, pong_rx) = gort::chan::<()>(0);
    let echo = gort::go!(move || {
        for () in &ping_rx {
            pong_tx.send(()).unwrap();
        }
    });
    for _ in 0..n {
        ping_tx.send(()).unwrap();
        pong_rx.recv_timeout(FAR).expect("pong before the timeout");
    }
    drop(ping_tx);
    echo.join().unwrap();
}

fn report(phase: &str, timed: Option<(Instant, u64)>) {
    let per_op = timed.map_or(String::new(), |(t0, ops)| {
        format!(
            " {:>6.1} ns/op",
            t0.elapsed().as_nanos() as f64 / ops.max(1) as f64
        )
    });
    println!(
        "{phase:<28} entries={:<8} rss_kib={:<8}{per_op}",
        sched::timer_entries(),
        rss_kib()
    );
}

/// Resident set size of this process, from `/proc/self/statm` (Linux).
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions; _SC_PAGESIZE is always valid.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page / 1024
}
