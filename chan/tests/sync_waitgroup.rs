//! `chan::sync::WaitGroup` at maxprocs 1, 2 and 4: 1000 goroutines counted exactly with
//! waiters on goroutines and a plain thread, a negative counter panics with Go's message and
//! leaves the group usable, `wait` at zero returns at once, reuse over many rounds.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chan::sync::WaitGroup;
use common::{each_procs, quiet_expected_panics, start, Side};

/// 1000 goroutines each record their work and `done`; three goroutine waiters and the
/// helper thread wait; every waiter sees all 1000 records.
#[test]
fn thousand_goroutines() {
    each_procs("thousand_goroutines", |_| {
        const N: usize = 1000;
        let wg = WaitGroup::new();
        let work = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (wg, work) = (wg.clone(), work.clone());
                // Registered before any add: these see zero or the whole batch; either way
                // `wait` must not return with work outstanding once the batch is added.
                sched::spawn(move || {
                    wg.wait();
                    work.load(Ordering::Relaxed)
                })
            })
            .collect();
        wg.add(N as i64);
        for _ in 0..N {
            let (wg, work) = (wg.clone(), work.clone());
            sched::spawn(move || {
                work.fetch_add(1, Ordering::Relaxed);
                wg.done();
            });
        }
        wg.wait();
        assert_eq!(work.load(Ordering::Relaxed), N);
        for w in waiters {
            let seen = w.join().unwrap();
            assert!(
                seen == 0 || seen == N,
                "a waiter returned mid-batch: {seen}"
            );
        }
    });
}

/// Waiters registered while the counter is positive all see every `done` (goroutine and
/// thread waiters, goroutine and thread workers).
#[test]
fn waiters_on_both_sides() {
    each_procs("waiters_on_both_sides", |_| {
        const WORKERS: usize = 50;
        let wg = WaitGroup::new();
        let work = Arc::new(AtomicUsize::new(0));
        wg.add(WORKERS as i64);
        let waiters: Vec<_> = [Side::Goroutine, Side::Thread, Side::Goroutine]
            .into_iter()
            .map(|side| {
                let (wg, work) = (wg.clone(), work.clone());
                start(side, move || {
                    wg.wait();
                    work.load(Ordering::Relaxed)
                })
            })
            .collect();
        let workers: Vec<_> = (0..WORKERS)
            .map(|i| {
                let side = if i % 10 == 0 {
                    Side::Thread
                } else {
                    Side::Goroutine
                };
                let (wg, work) = (wg.clone(), work.clone());
                start(side, move || {
                    sched::yield_now();
                    work.fetch_add(1, Ordering::Relaxed);
                    wg.done();
                })
            })
            .collect();
        for w in waiters {
            assert_eq!(w(), WORKERS);
        }
        for w in workers {
            w();
        }
    });
}

/// `done` on a zero counter panics with Go's message, from a goroutine and from a thread; the
/// failed `add` is undone, so the group still works.
#[test]
fn negative_counter_panics() {
    quiet_expected_panics();
    each_procs("negative_counter_panics", |_| {
        let wg = WaitGroup::new();
        let on_thread = std::panic::catch_unwind(|| wg.done()).expect_err("no panic");
        let msg = on_thread
            .downcast_ref::<&str>()
            .copied()
            .unwrap_or_default();
        assert_eq!(msg, "sync: negative WaitGroup counter");
        let wg2 = wg.clone();
        let on_goroutine = sched::spawn(move || wg2.add(-3))
            .join()
            .expect_err("no panic");
        let msg = on_goroutine
            .downcast_ref::<&str>()
            .copied()
            .unwrap_or_default();
        assert_eq!(msg, "sync: negative WaitGroup counter");
        wg.add(1);
        let wg2 = wg.clone();
        sched::spawn(move || wg2.done()).join().unwrap();
        wg.wait();
    });
}

/// `wait` on a zero counter returns at once, on a goroutine and on a thread.
#[test]
fn wait_on_zero_returns() {
    each_procs("wait_on_zero_returns", |_| {
        let wg = WaitGroup::new();
        wg.wait();
        let wg2 = wg.clone();
        sched::spawn(move || wg2.wait()).join().unwrap();
        wg.add(2);
        wg.add(-2);
        wg.wait();
    });
}

/// One group reused for 200 rounds of 10 goroutines, each round waited for before the next
/// `add` (Go's reuse rule); the total is exact.
#[test]
fn reuse_after_zero() {
    each_procs("reuse_after_zero", |_| {
        const ROUNDS: usize = 200;
        const EACH: usize = 10;
        let wg = WaitGroup::new();
        let work = Arc::new(AtomicUsize::new(0));
        for round in 1..=ROUNDS {
            wg.add(EACH as i64);
            for _ in 0..EACH {
                let (wg, work) = (wg.clone(), work.clone());
                sched::spawn(move || {
                    work.fetch_add(1, Ordering::Relaxed);
                    wg.done();
                });
            }
            wg.wait();
            assert_eq!(work.load(Ordering::Relaxed), round * EACH);
        }
    });
}
