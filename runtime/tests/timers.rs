//! Scheduler timers: a goroutine's `park_timeout` wakes on time, at any GORT_MAXPROCS, for many
//! goroutines at once, and an early unpark beats the timer. (`time.rs` tests the user-facing
//! `gort::time` built on it.)

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn many_goroutines_time_out_together() {
    common::each_procs("many_goroutines_time_out_together", |procs| {
        const N: usize = 2000;
        let timed_out = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let hs: Vec<_> = (0..N)
            .map(|_| {
                let t = timed_out.clone();
                gort::go!(move || {
                    if !gort::park_timeout(Duration::from_millis(20)) {
                        t.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(timed_out.load(Ordering::Relaxed), N, "at maxprocs {procs}");
        assert!(start.elapsed() >= Duration::from_millis(20));
    });
}

#[test]
fn unpark_beats_timer() {
    common::each_procs("unpark_beats_timer", |procs| {
        {
            let slot = Arc::new(Mutex::new(None::<gort::Unparker>));
            let s2 = slot.clone();
            let waiter = gort::go!(move || {
                *s2.lock().unwrap() = Some(gort::unparker());
                // Woken by the other goroutine long before the hour is up.
                gort::park_timeout(Duration::from_secs(3600))
            });
            let waker = gort::go!(move || loop {
                if let Some(u) = slot.lock().unwrap().take() {
                    u.unpark();
                    return;
                }
                gort::yield_now();
            });
            waker.join().unwrap();
            assert!(
                waiter.join().unwrap(),
                "woken, not timed out, at maxprocs {procs}"
            );
        }
    });
}

#[test]
fn timed_waits_in_sequence_keep_order() {
    common::each_procs("timed_waits_in_sequence_keep_order", |procs| {
        let order = Arc::new(Mutex::new(Vec::new()));
        let hs: Vec<_> = [30u64, 10, 20]
            .into_iter()
            .map(|ms| {
                let o = order.clone();
                gort::go!(move || {
                    gort::park_timeout(Duration::from_millis(ms));
                    o.lock().unwrap().push(ms);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            vec![10, 20, 30],
            "at maxprocs {procs}"
        );
    });
}

/// `park_timeout(Duration::MAX)` parks without panicking and is woken by an unpark. At
/// maxprocs 1 the check is exact: the waiter runs (and parks, or panics) before the spawner
/// resumes from its yield, so the unpark comes after the park, not as a token before it.
#[test]
fn park_timeout_of_duration_max_parks() {
    common::each_procs("park_timeout_of_duration_max_parks", |procs| {
        gort::go!(move || {
            let slot = Arc::new(Mutex::new(None::<gort::Unparker>));
            let s2 = slot.clone();
            let waiter = gort::go!(move || {
                *s2.lock().unwrap() = Some(gort::unparker());
                gort::park_timeout(Duration::MAX)
            });
            gort::yield_now();
            let u = loop {
                if let Some(u) = slot.lock().unwrap().take() {
                    break u;
                }
                assert!(procs > 1, "at maxprocs 1 the waiter ran first");
                gort::yield_now();
            };
            u.unpark();
            assert!(
                waiter.join().unwrap(),
                "woken, not timed out, at maxprocs {procs}"
            );
        })
        .join()
        .unwrap();
    });
}

/// A timer armed when every timer before it was stopped, and later than the stopped ones'
/// deadlines, still fires. The stopped entries stay in the heap (cancellation is lazy), so
/// the new timer is not the heap's earliest; and the idle M that watched the timers stopped
/// watching when it woke at a stopped entry's deadline and found no timer pending. Arming
/// the first pending timer must make some M watch again. (The wait below only sets the stage
/// for the lost wake-up; if it is too short the test passes without testing it.)
#[test]
fn first_timer_after_only_stopped_ones_fires() {
    common::each_procs("first_timer_after_only_stopped_ones_fires", |procs| {
        for round in 0..3 {
            // Go fully idle with only stopped timers in the heap, then past their deadlines.
            let stale: Vec<_> = (0..4)
                .map(|_| gort::time::after(Duration::from_millis(1)))
                .collect();
            drop(stale);
            std::thread::sleep(Duration::from_millis(20));
            let rx = gort::time::after(Duration::from_millis(1));
            assert!(
                rx.recv_timeout(Duration::from_secs(10)).is_ok(),
                "round {round} at maxprocs {procs}: the timer never fired"
            );
        }
    });
}
