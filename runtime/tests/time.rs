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
        let t = gort::time::Ticker::new(Duration::from_millis(2));
        let mut last = Instant::now();
        for _ in 0..5 {
            let tick = t.receiver().recv().unwrap();
            assert!(tick >= last, "ticks go forward");
            last = tick;
        }
        t.stop();
        // At most one tick was already buffered when it stopped; then none.
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
