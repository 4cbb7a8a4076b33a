//! `chan::sync::Mutex` under contention, at maxprocs 1, 2 and 4: exact counts with goroutines
//! and plain threads mixed, mutual exclusion observed directly, starvation mode getting a
//! waiter in against a hog, unlock on panic, and a guard unlocked by another goroutine.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chan::sync::Mutex;
use common::{each_procs, quiet_expected_panics, sleep, start, Side};

/// How long a hog keeps the mutex busy at most: a starved waiter then gets in late, and the
/// test fails on its measured wait instead of the harness's time-out.
const HOG_LIMIT: Duration = Duration::from_secs(10);
/// The longest wait the starvation tests accept.
const FAIR_WAIT: Duration = Duration::from_secs(5);

/// Goroutines and threads incrementing the counter, and increments each.
const GOROUTINES: usize = 8;
const THREADS: usize = 2;
const INCREMENTS: usize = 10_000;

/// A counter that is deliberately not atomic, and a witness of who is inside.
struct Shared {
    counter: Mutex<u64>,
    inside: AtomicUsize,
}

/// One contender: `INCREMENTS` increments, each checking nobody else is inside; every 64th
/// one yields while holding the lock, so others queue and park.
fn contend(shared: &Shared) {
    for i in 0..INCREMENTS {
        let mut g = shared.counter.lock();
        assert_eq!(
            shared.inside.fetch_add(1, Ordering::Relaxed),
            0,
            "two holders"
        );
        *g += 1;
        if i % 64 == 0 {
            sched::yield_now();
        }
        shared.inside.fetch_sub(1, Ordering::Relaxed);
    }
}

/// 8 goroutines and 2 plain threads × 10,000 increments == 100,000 exactly, never two holders.
#[test]
fn contended_counter_is_exact() {
    each_procs("contended_counter_is_exact", |_| {
        let shared = Arc::new(Shared {
            counter: Mutex::new(0),
            inside: AtomicUsize::new(0),
        });
        let sides = (0..GOROUTINES)
            .map(|_| Side::Goroutine)
            .chain((0..THREADS).map(|_| Side::Thread));
        let joins: Vec<_> = sides
            .map(|side| {
                let shared = shared.clone();
                start(side, move || contend(&shared))
            })
            .collect();
        for join in joins {
            join();
        }
        let want = ((GOROUTINES + THREADS) * INCREMENTS) as u64;
        assert_eq!(*shared.counter.lock(), want);
    });
}

/// Many goroutines that all yield inside the lock: every acquisition but the first goes
/// through the waiter queue. Exact count.
#[test]
fn every_holder_yields_inside() {
    each_procs("every_holder_yields_inside", |_| {
        const N: usize = 100;
        const EACH: usize = 200;
        let m = Arc::new(Mutex::new(0usize));
        let hs: Vec<_> = (0..N)
            .map(|_| {
                let m = m.clone();
                sched::spawn(move || {
                    for _ in 0..EACH {
                        let mut g = m.lock();
                        let v = *g;
                        sched::yield_now();
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock(), N * EACH);
    });
}

/// `try_lock` fails while another goroutine holds the mutex and succeeds once it is free.
#[test]
fn try_lock_reflects_holder() {
    each_procs("try_lock_reflects_holder", |_| {
        let m = Arc::new(Mutex::new(()));
        let held = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let holder = {
            let (m, held, release) = (m.clone(), held.clone(), release.clone());
            sched::spawn(move || {
                let _g = m.lock();
                held.store(true, Ordering::Release);
                common::wait_until("release", || release.load(Ordering::Acquire));
            })
        };
        common::wait_until("holder", || held.load(Ordering::Acquire));
        assert!(m.try_lock().is_none(), "try_lock succeeded on a held mutex");
        release.store(true, Ordering::Release);
        holder.join().unwrap();
        assert!(m.try_lock().is_some(), "try_lock failed on a free mutex");
    });
}

/// Go's TestMutexFairness: a hog holds the mutex while sleeping 100 µs and re-takes it at
/// once; without starvation mode the other goroutine, woken each time only to find it held
/// again, could wait forever. It must get the mutex 10 times, each within a bound.
#[test]
fn starvation_mode_lets_waiter_in() {
    each_procs("starvation_mode_lets_waiter_in", |_| {
        let m = Arc::new(Mutex::new(0u64));
        let stop = Arc::new(AtomicBool::new(false));
        let hog = {
            let (m, stop) = (m.clone(), stop.clone());
            sched::spawn(move || {
                let begin = Instant::now();
                while !stop.load(Ordering::Relaxed) && begin.elapsed() < HOG_LIMIT {
                    let mut g = m.lock();
                    sleep(Duration::from_micros(100));
                    *g += 1;
                }
            })
        };
        let waiter = {
            let m = m.clone();
            sched::spawn(move || {
                let mut worst = Duration::ZERO;
                for _ in 0..10 {
                    sleep(Duration::from_micros(100));
                    let t = Instant::now();
                    drop(m.lock());
                    worst = worst.max(t.elapsed());
                }
                worst
            })
        };
        let worst = waiter.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        hog.join().unwrap();
        assert!(worst < FAIR_WAIT, "waiter starved for {worst:?}");
    });
}

/// A hog re-taking the mutex in a tight loop (yielding inside it, so a single processor also
/// lets the waiter run) while another goroutine and a plain thread each need it 100 times.
#[test]
fn tight_loop_hog_does_not_starve_waiters() {
    each_procs("tight_loop_hog_does_not_starve_waiters", |_| {
        let m = Arc::new(Mutex::new(0u64));
        let stop = Arc::new(AtomicBool::new(false));
        let hog = {
            let (m, stop) = (m.clone(), stop.clone());
            sched::spawn(move || {
                let begin = Instant::now();
                while !stop.load(Ordering::Relaxed) && begin.elapsed() < HOG_LIMIT {
                    let mut g = m.lock();
                    *g += 1;
                    sched::yield_now();
                }
            })
        };
        let waiters: Vec<_> = [Side::Goroutine, Side::Thread]
            .into_iter()
            .map(|side| {
                let m = m.clone();
                start(side, move || {
                    let begin = Instant::now();
                    for _ in 0..100 {
                        drop(m.lock());
                    }
                    begin.elapsed()
                })
            })
            .collect();
        for w in waiters {
            let took = w();
            assert!(took < FAIR_WAIT, "100 acquisitions took {took:?}");
        }
        stop.store(true, Ordering::Relaxed);
        hog.join().unwrap();
    });
}

/// A panic while holding the guard unlocks on unwind (no poisoning): the next `lock` works
/// and sees the data as the panicking goroutine left it.
#[test]
fn panic_while_locked_unlocks() {
    quiet_expected_panics();
    each_procs("panic_while_locked_unlocks", |_| {
        let m = Arc::new(Mutex::new(1));
        let h = {
            let m = m.clone();
            sched::spawn(move || {
                let mut g = m.lock();
                *g = 2;
                panic!("expected: panic while holding the mutex");
            })
        };
        assert!(h.join().is_err());
        let g = m.try_lock().expect("mutex left locked by a panic");
        assert_eq!(*g, 2);
    });
}

/// A guard moved to another goroutine unlocks there (Go allows unlocking from another
/// goroutine); a third goroutine parked in `lock` meanwhile gets the mutex.
#[test]
fn guard_unlocked_by_another_goroutine() {
    static M: Mutex<u32> = Mutex::new(0);
    each_procs("guard_unlocked_by_another_goroutine", |_| {
        let g = M.lock();
        let waiter = sched::spawn(|| *M.lock() += 1);
        let unlocker = sched::spawn(move || {
            sleep(Duration::from_millis(1));
            drop(g);
        });
        unlocker.join().unwrap();
        waiter.join().unwrap();
        assert!(*M.lock() >= 1);
    });
}
