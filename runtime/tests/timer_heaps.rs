//! Timer heaps per M (`sched/src/timer/`): a timer armed on one M fires whatever becomes of
//! that M and its P: with every M arming at once, while the M runs one goroutine that never
//! blocks, after `set_maxprocs` retires Ps, and from plain threads (heap 0). Exact counts, each
//! run bounded in time (`common::bounded`, via `each_procs_at`), at maxprocs 1, 2 and 4.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROCS: [usize; 3] = [1, 2, 4];

/// 10,000 goroutines sleep 1 ms at once (the benchmark's load), started from every M (each
/// spawner is its own goroutine, so they land on different Ms): every one wakes, once, no
/// earlier than its deadline.
#[test]
fn ten_thousand_sleepers_on_every_p() {
    common::each_procs_at("ten_thousand_sleepers_on_every_p", &PROCS, |procs| {
        const SPAWNERS: usize = 8;
        const EACH: usize = 1250;
        let woke = Arc::new(AtomicUsize::new(0));
        let early = Arc::new(AtomicUsize::new(0));
        let spawners: Vec<_> = (0..SPAWNERS)
            .map(|_| {
                let (woke, early) = (woke.clone(), early.clone());
                gort::go!(move || {
                    let hs: Vec<_> = (0..EACH)
                        .map(|_| {
                            let (woke, early) = (woke.clone(), early.clone());
                            gort::go!(move || {
                                let start = Instant::now();
                                gort::time::sleep(Duration::from_millis(1));
                                if start.elapsed() < Duration::from_millis(1) {
                                    early.fetch_add(1, Ordering::Relaxed);
                                }
                                woke.fetch_add(1, Ordering::Relaxed);
                            })
                        })
                        .collect();
                    for h in hs {
                        h.join().unwrap();
                    }
                })
            })
            .collect();
        for s in spawners {
            s.join().unwrap();
        }
        assert_eq!(woke.load(Ordering::Relaxed), SPAWNERS * EACH, "at {procs}");
        assert_eq!(early.load(Ordering::Relaxed), 0, "woke early at {procs}");
    });
}

/// A goroutine arms a timer, then spins until the timer's action has run, never blocking or
/// yielding: its own M cannot look at its heap, so another M must fire it (at maxprocs 1,
/// after sysmon takes the P away from the spinning thread).
#[test]
fn timer_of_a_busy_m_fires() {
    common::each_procs_at("timer_of_a_busy_m_fires", &PROCS, |procs| {
        let spinner = gort::go!(move || {
            let fired = Arc::new(AtomicBool::new(false));
            let f = fired.clone();
            let t = sched::at(Instant::now() + Duration::from_millis(2), move || {
                f.store(true, Ordering::Release)
            });
            let mut spins = 0u64;
            while !fired.load(Ordering::Acquire) {
                std::hint::spin_loop();
                spins += 1;
            }
            assert!(t.fired(), "at {procs}");
            spins
        });
        spinner.join().unwrap();
    });
}

/// Sleepers armed on every M of 4 Ps, then `set_maxprocs(1)` retires three Ps (their Ms go
/// idle, their heaps keep their timers) while they sleep: all wake; then back to 4, and
/// again the other way.
#[test]
fn timers_of_retired_ps_fire() {
    common::each_procs_at("timers_of_retired_ps_fire", &[4], |_| {
        for (from, to) in [(4, 1), (1, 4), (4, 2)] {
            gort::set_maxprocs(from);
            let woke = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..400)
                .map(|i| {
                    let woke = woke.clone();
                    gort::go!(move || {
                        gort::time::sleep(Duration::from_millis(5 + i % 10));
                        woke.fetch_add(1, Ordering::Relaxed);
                    })
                })
                .collect();
            // Let the sleepers start (and arm) on all the Ps before the count changes.
            gort::time::sleep(Duration::from_millis(2));
            gort::set_maxprocs(to);
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(woke.load(Ordering::Relaxed), 400, "{from} -> {to} Ps");
        }
        gort::set_maxprocs(4);
    });
}

/// Timers armed from plain threads (no M: heap 0) while goroutines arm theirs on every M:
/// every action runs exactly once.
#[test]
fn timers_from_plain_threads_fire() {
    common::each_procs_at("timers_from_plain_threads_fire", &PROCS, |procs| {
        const THREADS: usize = 4;
        const EACH: usize = 250;
        let ran = Arc::new(AtomicUsize::new(0));
        let sleepers: Vec<_> = (0..200)
            .map(|_| gort::go!(|| gort::time::sleep(Duration::from_millis(1))))
            .collect();
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let ran = ran.clone();
                std::thread::spawn(move || {
                    let timers: Vec<_> = (0..EACH)
                        .map(|i| {
                            let ran = ran.clone();
                            let at = Instant::now() + Duration::from_micros((t * EACH + i) as u64);
                            sched::at(at, move || {
                                ran.fetch_add(1, Ordering::Relaxed);
                            })
                        })
                        .collect();
                    timers
                })
            })
            .collect();
        let timers: Vec<_> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        for s in sleepers {
            s.join().unwrap();
        }
        // Bounded by `each_procs`: a lost timer fails the test there.
        while timers.iter().any(|t| !t.fired()) {
            gort::time::sleep(Duration::from_millis(1));
        }
        assert_eq!(ran.load(Ordering::Relaxed), THREADS * EACH, "at {procs}");
    });
}
