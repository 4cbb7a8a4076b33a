//! Scheduler timers: a goroutine's `park_timeout` wakes on time, at any GORT_MAXPROCS, for many
//! goroutines at once, and an early unpark beats the timer. (The user-facing `gort::time` API
//! comes with the netpoller; these pin down the scheduler mechanism under it.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

static MAXPROCS: Mutex<()> = Mutex::new(());

/// Runs `f` on a helper thread; fails if it does not finish within 60 s.
fn bounded(name: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        tx.send(()).ok();
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{name}: did not finish within 60 s"));
}

#[test]
fn many_goroutines_time_out_together() {
    let _g = MAXPROCS.lock().unwrap_or_else(|e| e.into_inner());
    for procs in [1, 2, 4] {
        gort::set_maxprocs(procs);
        bounded("many_goroutines_time_out_together", move || {
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
}

#[test]
fn unpark_beats_timer() {
    let _g = MAXPROCS.lock().unwrap_or_else(|e| e.into_inner());
    for procs in [1, 2, 4] {
        gort::set_maxprocs(procs);
        bounded("unpark_beats_timer", move || {
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
        });
    }
}

#[test]
fn timed_waits_in_sequence_keep_order() {
    let _g = MAXPROCS.lock().unwrap_or_else(|e| e.into_inner());
    for procs in [1, 2, 4] {
        gort::set_maxprocs(procs);
        bounded("timed_waits_in_sequence_keep_order", move || {
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
}
