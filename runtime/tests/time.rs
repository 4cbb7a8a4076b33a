//! `gort::time`: sleeps wake in deadline order and no earlier than asked, `after` works as a
//! select timeout, tickers tick in order and stop, timers stop and reset, and an idle runtime
//! waiting on a timer does not spin. Each scenario runs at GORT_MAXPROCS 1, 2 and 4, bounded.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::each_procs as at_each_maxprocs;

#[test]
fn sleeps_end_in_deadline_order_and_not_early() {
    at_each_maxprocs("sleeps_end_in_deadline_order_and_not_early", |_| {
        let order = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let hs: Vec<_> = [50u64, 10, 40, 20, 30]
            .into_iter()
            .map(|ms| {
                let order = order.clone();
                gort::go!(move || {
                    gort::time::sleep(Duration::from_millis(ms));
                    let woke = start.elapsed();
                    assert!(
                        woke >= Duration::from_millis(ms),
                        "woke early: {woke:?} < {ms} ms"
                    );
                    order.lock().unwrap().push(ms);
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(*order.lock().unwrap(), vec![10, 20, 30, 40, 50]);
    });
}

#[test]
fn many_concurrent_sleeps() {
    at_each_maxprocs("many_concurrent_sleeps", |_| {
        let hs: Vec<_> = (0..10_000u64)
            .map(|i| gort::go!(move || gort::time::sleep(Duration::from_micros(100 + i % 1000))))
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
}

#[test]
fn after_is_a_select_timeout() {
    at_each_maxprocs("after_is_a_select_timeout", |_| {
        let (tx, rx) = gort::chan::<u32>(0);
        let start = Instant::now();
        let r = gort::select! {
            recv(rx) -> _v => "value",
            recv(gort::time::after(Duration::from_millis(5))) -> t => {
                assert!(t.unwrap() >= start + Duration::from_millis(5));
                "timeout"
            }
        };
        assert_eq!(r, "timeout");
        // A value that arrives first wins over a long timeout.
        let h = gort::go!(move || tx.send(9).unwrap());
        let r = gort::select! {
            recv(rx) -> v => v.unwrap(),
            recv(gort::time::after(Duration::from_secs(30))) -> _t => 0,
        };
        assert_eq!(r, 9);
        h.join().unwrap();
    });
}

#[test]
fn ticker_ticks_in_order_and_stops() {
    at_each_maxprocs("ticker_ticks_in_order_and_stops", |_| {
        // Before the ticker exists: its first tick may come before `new` returns to us (this
        // thread can be descheduled for longer than a period).
        let mut last = Instant::now();
        let t = gort::time::Ticker::new(Duration::from_millis(2));
        for _ in 0..5 {
            let tick = t.receiver().recv().unwrap();
            assert!(tick >= last, "ticks go forward");
            last = tick;
        }
        t.stop();
        // At most one tick was already buffered when it stopped; then none (a tick being
        // sent while `stop` runs is in the channel by the time `stop` returns).
        let _ = t.receiver().try_recv();
        assert!(t
            .receiver()
            .recv_timeout(Duration::from_millis(20))
            .is_err());

        let ticks = gort::time::tick(Duration::from_millis(1));
        let a = ticks.recv().unwrap();
        let b = ticks.recv().unwrap();
        assert!(b > a);
    });
}

#[test]
fn timer_stop_and_reset() {
    at_each_maxprocs("timer_stop_and_reset", |_| {
        let t = gort::time::Timer::new(Duration::from_secs(60));
        assert!(t.stop(), "pending timer stops");
        assert!(!t.stop(), "second stop finds nothing pending");
        assert!(!t.reset(Duration::from_millis(1)), "was not pending");
        let fired = t.receiver().recv_timeout(Duration::from_secs(30));
        assert!(fired.is_ok(), "reset timer fires");
    });
}

/// CPU time (user + system) of the whole process.
fn process_cpu() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct we pass; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[test]
fn idle_runtime_does_not_spin() {
    common::each_procs("idle_runtime_does_not_spin", |_| idle_second());
}

fn idle_second() {
    // Warm up, so thread start-up is not counted.
    gort::spawn(|| gort::time::sleep(Duration::from_millis(10)))
        .join()
        .unwrap();
    let before = process_cpu();
    gort::spawn(|| gort::time::sleep(Duration::from_secs(1)))
        .join()
        .unwrap();
    let used = process_cpu() - before;
    // Other tests in this binary are serialised by `each_procs`, so this is ours alone: a spinning
    // scheduler would burn most of a second per idle thread.
    assert!(
        used < Duration::from_millis(100),
        "idle second cost {used:?} of CPU"
    );
}

/// A duration too long for `Instant` means "never", not a panic: `after(Duration::MAX)` loses
/// a select to a ready channel, and timers armed that far stop and reset.
#[test]
fn far_deadlines_saturate() {
    at_each_maxprocs("far_deadlines_saturate", |_| {
        let (tx, rx) = gort::chan::<u32>(1);
        tx.send(7).unwrap();
        let got = gort::select! {
            recv(rx) -> v => v.unwrap(),
            recv(gort::time::after(Duration::MAX)) -> _t => 0,
        };
        assert_eq!(got, 7);

        let t = gort::time::Timer::new(Duration::MAX);
        assert!(t.reset(Duration::MAX), "pending after new(MAX)");
        assert!(t.stop(), "pending after reset(MAX)");

        let f = gort::time::after_func(Duration::MAX, || unreachable!("never runs"));
        assert!(f.stop());

        let ticker = gort::time::Ticker::new(Duration::MAX);
        assert!(ticker.receiver().try_recv().is_err());
        ticker.stop();
        let ticks = gort::time::tick(Duration::MAX);
        assert!(ticks.try_recv().is_err());
    });
}

/// `sleep(Duration::MAX)` parks for good instead of panicking. At maxprocs 1 the check is
/// exact: the sleeper runs (and parks, or panics) before the spawner resumes from its yield.
/// The sleeper is left parked when the test ends (its timer never fires).
#[test]
fn sleep_of_duration_max_parks() {
    at_each_maxprocs("sleep_of_duration_max_parks", |procs| {
        use std::sync::atomic::{AtomicBool, Ordering};
        gort::go!(move || {
            let entered = Arc::new(AtomicBool::new(false));
            let failed = Arc::new(AtomicBool::new(false));
            let (e2, f2) = (entered.clone(), failed.clone());
            let sleeper = gort::go!(move || {
                e2.store(true, Ordering::Release);
                let r = std::panic::catch_unwind(|| gort::time::sleep(Duration::MAX));
                // Reached only if the sleep panicked or (wrongly) returned.
                f2.store(true, Ordering::Release);
                r.is_ok()
            });
            gort::yield_now();
            if procs == 1 {
                assert!(entered.load(Ordering::Acquire), "the sleeper ran first");
            }
            common::wait_until("the sleeper started", || entered.load(Ordering::Acquire));
            // Other work goes on meanwhile.
            let h = gort::go!(|| gort::time::sleep(Duration::from_millis(1)));
            h.join().unwrap();
            assert!(
                !failed.load(Ordering::Acquire) && !sleeper.is_finished(),
                "sleep(Duration::MAX) ended (panicked: {})",
                sleeper.is_finished() && !sleeper.join().unwrap_or(false)
            );
        })
        .join()
        .unwrap();
    });
}

/// `tick(0)` is a channel that never receives (Go's `Tick(0)` is nil), and is not closed.
#[test]
fn tick_zero_never_fires() {
    let never = gort::time::tick(Duration::ZERO);
    assert!(matches!(never.try_recv(), Err(gort::TryRecvError::Empty)));
    assert!(!never.is_closed());
    let got = gort::select! {
        recv(never) -> _t => "tick",
        default => "nothing",
    };
    assert_eq!(got, "nothing");
}

/// `Ticker::new(0)` panics, as Go's `NewTicker(0)` does.
#[test]
#[should_panic(expected = "period must be positive")]
fn ticker_of_zero_panics() {
    let _ = gort::time::Ticker::new(Duration::ZERO);
}

/// `after_func` runs `f` once, on a goroutine of its own, after `d`; `stop` before that
/// cancels it (and drops `f` at once), `stop` after reports false.
#[test]
fn after_func_runs_in_its_own_goroutine_or_stops() {
    at_each_maxprocs("after_func_runs_in_its_own_goroutine_or_stops", |_| {
        gort::go!(|| {
            let me = gort::current().unwrap().id();
            let (tx, rx) = gort::chan(1);
            let f = gort::time::after_func(Duration::from_millis(1), move || {
                tx.send(gort::current().map(|g| g.id())).unwrap();
            });
            let ran_on = rx.recv().unwrap();
            assert!(
                ran_on.is_some_and(|id| id != me),
                "f ran on {ran_on:?}, not a goroutine of its own"
            );
            assert!(f.fired());
            assert!(!f.stop(), "already ran: nothing to stop");
            assert_eq!(
                rx.recv(),
                Err(gort::RecvError),
                "ran once (its sender is gone)"
            );

            // Stopped before its time: `f` never runs, and is dropped at once.
            struct Dropped(gort::Sender<&'static str>);
            impl Drop for Dropped {
                fn drop(&mut self) {
                    let _ = self.0.try_send("dropped");
                }
            }
            let (tx, rx) = gort::chan(2);
            let guard = Dropped(tx);
            let f = gort::time::after_func(Duration::from_secs(60), move || {
                let _ = guard.0.try_send("ran");
            });
            assert!(f.stop(), "pending: stopped");
            assert!(!f.stop(), "second stop finds nothing");
            assert!(!f.fired());
            assert_eq!(rx.recv(), Ok("dropped"));
            assert_eq!(rx.recv(), Err(gort::RecvError), "and never ran");
        })
        .join()
        .unwrap();
    });
}

/// Dropping an `After` stops its timer; `into_receiver` detaches it, so it still fires.
#[test]
fn after_drop_stops_and_into_receiver_detaches() {
    at_each_maxprocs("after_drop_stops_and_into_receiver_detaches", |_| {
        // Far off, so it cannot fire before the drop (a 1 ms timer did on a loaded machine).
        let a = gort::time::after(Duration::from_secs(60));
        let clone = a.receiver().clone();
        drop(a);
        // Stopped: its sender (held by the timer's action) is gone, so the channel closes.
        assert_eq!(clone.recv(), Err(gort::RecvError));

        let rx: gort::Receiver<Instant> =
            gort::time::after(Duration::from_millis(1)).into_receiver();
        assert!(rx.recv().is_ok(), "a detached after still fires");
    });
}
