//! Timeouts on one shared channel: N goroutines each `recv_timeout(500 ms)` on ONE channel
//! nobody sends on, against the same N each on a channel of its own. A waiter that times out
//! leaves its channel's wait queue; if that costs O(queue length), N timeouts on one channel
//! cost O(N²) under its lock and the last waiters return long after their deadline.
//!
//! For each N (default 10,000, 30,000 and 100,000; or the arguments) and layout it prints the
//! time from the latest deadline (each goroutine's call start + 500 ms) until every goroutine
//! has returned, and the time from the first call to the last (the deadlines are spread over
//! it: the shorter, the more timers fire at once):
//!
//! `shared_timeouts: n=<N> layout=<shared|separate> past_timeout_ms=<f.1> starts_ms=<f.1>
//! maxprocs=<P>`
//!
//! `cargo run --release --example shared_timeouts [-- N...]`
//! The Go twin is `benches/go/cmd/shared_timeouts`.
//!
//! With `busy` first, it measures instead how late a timer wakes a goroutine when others are
//! runnable: for each Y (default 100,000) it keeps Y goroutines yielding in a loop while 10
//! goroutines each sleep 1 ms 50 times, and prints how much longer than 1 ms the sleeps took
//! (a woken sleeper that waits behind the run queue is late by a turn of the queue):
//!
//! `shared_timeouts: busy=<Y> sleep_late_ms p50=<f.3> p99=<f.3> max=<f.3> maxprocs=<P>`
//!
//! `cargo run --release --example shared_timeouts -- busy [Y...]`

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone, Copy)]
enum Layout {
    /// All goroutines wait on one channel.
    Shared,
    /// Each goroutine waits on a channel of its own.
    Separate,
}

/// What one run measured.
struct Figures {
    /// From the latest deadline until the last waiter returned.
    past_timeout: Duration,
    /// From the first waiter's call to the last one's: the deadlines are spread over this.
    starts: Duration,
}

/// What every waiter of one run shares. Leaked (a few per process), so the goroutines take a
/// `&'static` and no reference count is touched per goroutine: the figures measure waiting
/// and timing out, not `Arc` traffic on one cache line.
struct Run {
    base: Instant,
    /// Nanoseconds after `base` of the earliest and latest deadlines.
    first_deadline: AtomicU64,
    last_deadline: AtomicU64,
    timed_out: AtomicUsize,
    wg: gort::sync::WaitGroup,
    /// The one channel of the shared layout (its sender lives until the end of `run`).
    shared_rx: gort::Receiver<u64>,
}

/// Runs `n` waiters in `layout`.
fn run(n: usize, layout: Layout) -> Figures {
    gort::run(move || {
        let (shared_tx, shared_rx) = gort::chan::<u64>(0);
        let r: &'static Run = Box::leak(Box::new(Run {
            base: Instant::now(),
            first_deadline: AtomicU64::new(u64::MAX),
            last_deadline: AtomicU64::new(0),
            timed_out: AtomicUsize::new(0),
            wg: gort::sync::WaitGroup::new(),
            shared_rx,
        }));
        r.wg.add(n as i64);
        for _ in 0..n {
            drop(gort::go!(move || {
                // A channel of its own keeps its sender alive while it waits (else it closes).
                let own = match layout {
                    Layout::Shared => None,
                    Layout::Separate => Some(gort::chan::<u64>(0)),
                };
                let rx = own.as_ref().map_or(&r.shared_rx, |(_tx, rx)| rx);
                let start = Instant::now();
                let deadline = (start + TIMEOUT - r.base).as_nanos() as u64;
                r.first_deadline.fetch_min(deadline, Ordering::Relaxed);
                r.last_deadline.fetch_max(deadline, Ordering::Relaxed);
                if rx.recv_timeout(TIMEOUT) == Err(gort::RecvTimeoutError::Timeout) {
                    r.timed_out.fetch_add(1, Ordering::Relaxed);
                }
                r.wg.done();
            }));
        }
        r.wg.wait();
        let all_returned = r.base.elapsed();
        drop(shared_tx);
        assert_eq!(
            r.timed_out.load(Ordering::Relaxed),
            n,
            "every wait times out"
        );
        let (first, last) = (
            r.first_deadline.load(Ordering::Relaxed),
            r.last_deadline.load(Ordering::Relaxed),
        );
        Figures {
            past_timeout: all_returned.saturating_sub(Duration::from_nanos(last)),
            starts: Duration::from_nanos(last.saturating_sub(first)),
        }
    })
}

/// Sleepers and sleeps per sleeper of the `busy` mode.
const SLEEPERS: usize = 10;
const SLEEPS: usize = 50;

/// How late 1 ms sleeps end while `busy` goroutines keep yielding: milliseconds past 1 ms, all
/// sleeps of all sleepers, sorted.
fn sleep_lateness(busy: usize) -> Vec<f64> {
    gort::run(move || {
        let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let yielders: Vec<_> = (0..busy)
            .map(|_| {
                gort::go!(move || {
                    while !stop.load(Ordering::Relaxed) {
                        gort::yield_now();
                    }
                })
            })
            .collect();
        // Let every yielder start (and take its home) before the sleepers do.
        gort::time::sleep(Duration::from_millis(50));
        let sleepers: Vec<_> = (0..SLEEPERS)
            .map(|_| {
                gort::go!(move || {
                    (0..SLEEPS)
                        .map(|_| {
                            let start = Instant::now();
                            gort::time::sleep(Duration::from_millis(1));
                            start.elapsed().as_secs_f64() * 1e3 - 1.0
                        })
                        .collect::<Vec<f64>>()
                })
            })
            .collect();
        let mut late: Vec<f64> = sleepers
            .into_iter()
            .flat_map(|h| h.join().expect("a sleeper panicked"))
            .collect();
        stop.store(true, Ordering::Relaxed);
        for h in yielders {
            h.join().expect("a yielder panicked");
        }
        late.sort_by(f64::total_cmp);
        late
    })
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "busy") {
        args.remove(0);
        let ys: Vec<usize> = args
            .iter()
            .map(|a| a.parse().expect("Y: a number of goroutines"))
            .collect();
        for y in if ys.is_empty() { vec![100_000] } else { ys } {
            let late = sleep_lateness(y);
            let at = |q: f64| late[((late.len() - 1) as f64 * q) as usize];
            println!(
                "shared_timeouts: busy={y} sleep_late_ms p50={:.3} p99={:.3} max={:.3} \
                 maxprocs={}",
                at(0.5),
                at(0.99),
                at(1.0),
                gort::maxprocs(),
            );
        }
        return;
    }
    let sizes: Vec<usize> = args
        .iter()
        .map(|a| a.parse().expect("N: a number of goroutines"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 30_000, 100_000]
    } else {
        sizes
    };
    for n in sizes {
        // Unmeasured: the first run of `n` goroutines in a process pays for growing the
        // runtime's stacks, cells and timers (its goroutines start about three times slower,
        // so its deadlines are spread differently); the runs after it reuse them.
        run(n, Layout::Separate);
        for (layout, name) in [(Layout::Shared, "shared"), (Layout::Separate, "separate")] {
            let f = run(n, layout);
            println!(
                "shared_timeouts: n={n} layout={name} past_timeout_ms={:.1} starts_ms={:.1} \
                 maxprocs={}",
                f.past_timeout.as_secs_f64() * 1e3,
                f.starts.as_secs_f64() * 1e3,
                gort::maxprocs(),
            );
        }
    }
}
