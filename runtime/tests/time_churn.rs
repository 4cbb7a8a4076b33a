//! Timers stopped before they fire do not pile up in the scheduler's timer heap (issue 17):
//! resets of one `Timer`, dropped `time::after` channels and timed waits woken early each
//! leave the heap within `2 * live timers + 64` entries (`sched/src/timer.rs`), at every
//! step, although none of their 60-second deadlines ever comes. Each scenario runs at
//! GORT_MAXPROCS 1, 2 and 4, bounded in time; the tests of this binary take turns, so the heap
//! holds only the current scenario's timers.

mod common;

use std::time::Duration;

/// Operations per scenario and processor count.
const N: usize = 100_000;
/// The check runs after every this many operations (and at the end).
const EVERY: usize = 100;
/// The deadline of every timer here: never reached while a scenario runs.
const FAR: Duration = Duration::from_secs(60);

/// Asserts the heap is within the sweep's bound for `live` pending timers.
fn assert_bounded(what: &str, live: usize, i: usize) {
    let entries = sched::timer_entries();
    assert!(
        entries <= 2 * live + 64,
        "{what}: {entries} heap entries after {i} operations, with {live} timers pending"
    );
}

#[test]
fn timer_resets_leave_the_heap_bounded() {
    common::each_procs("timer_resets_leave_the_heap_bounded", |procs| {
        let what = format!("Timer::reset at maxprocs {procs}");
        let t = gort::time::Timer::new(FAR);
        for i in 1..=N {
            assert!(t.reset(FAR), "{what}: the timer was pending");
            if i % EVERY == 0 {
                assert_bounded(&what, 1, i);
            }
        }
        assert!(t.stop());
        assert_bounded(&what, 0, N);
    });
}

#[test]
fn dropped_afters_leave_the_heap_bounded() {
    common::each_procs("dropped_afters_leave_the_heap_bounded", |procs| {
        let what = format!("dropped time::after at maxprocs {procs}");
        for i in 1..=N {
            drop(gort::time::after(FAR));
            if i % EVERY == 0 {
                assert_bounded(&what, 0, i);
            }
        }
        assert_bounded(&what, 0, N);
    });
}

/// A select loop whose `after` case never fires (the common Go pattern): each iteration's
/// timer is released when the select ends.
#[test]
fn select_loop_with_after_leaves_the_heap_bounded() {
    common::each_procs("select_loop_with_after_leaves_the_heap_bounded", |procs| {
        let what = format!("select! with after at maxprocs {procs}");
        let (tx, rx) = gort::chan::<usize>(1);
        for i in 1..=N {
            tx.send(i).unwrap();
            let got = gort::select! {
                recv(rx) -> v => v.unwrap(),
                recv(gort::time::after(FAR)) -> _t => 0,
            };
            assert_eq!(got, i, "{what}: the ready channel wins");
            if i % EVERY == 0 {
                assert_bounded(&what, 0, i);
            }
        }
    });
}

/// Timed waits woken early: `park_timeout` in a loop, each woken by another goroutine long
/// before its timer. Deterministic handshake: the waker unparks only once the waiter has
/// published that it is about to wait; a wake-up that comes before the park leaves a token
/// (no timer then), one that comes after ends a timed park early.
#[test]
fn park_timeouts_woken_early_leave_the_heap_bounded() {
    common::each_procs(
        "park_timeouts_woken_early_leave_the_heap_bounded",
        |procs| {
            let what = format!("park_timeout woken early at maxprocs {procs}");
            let (ask_tx, ask_rx) = gort::chan::<gort::Unparker>(1);
            let waker = gort::go!(move || {
                for u in &ask_rx {
                    u.unpark();
                }
            });
            let what2 = what.clone();
            let waiter = gort::go!(move || {
                for i in 1..=N {
                    ask_tx.send(gort::unparker()).unwrap();
                    assert!(gort::park_timeout(FAR), "{what2}: woken, not timed out");
                    if i % EVERY == 0 {
                        // The waiter's own timer (stopped by now) and at most one other
                        // goroutine's timed wait are live.
                        assert_bounded(&what2, 2, i);
                    }
                }
            });
            waiter.join().unwrap();
            waker.join().unwrap();
            assert_bounded(&what, 0, N);
        },
    );
}

/// Channel receives with a timeout, each satisfied before the timeout: the chan crate's timed
/// waits go through `park_timeout` too.
#[test]
fn recv_timeouts_satisfied_early_leave_the_heap_bounded() {
    common::each_procs(
        "recv_timeouts_satisfied_early_leave_the_heap_bounded",
        |procs| {
            let what = format!("recv_timeout ping-pong at maxprocs {procs}");
            let (ping_tx, ping_rx) = gort::chan::<()>(1);
            let (pong_tx, pong_rx) = gort::chan::<()>(0);
            let echo = gort::go!(move || {
                for () in &ping_rx {
                    pong_tx.send(()).unwrap();
                }
            });
            for i in 1..=N {
                ping_tx.send(()).unwrap();
                pong_rx
                    .recv_timeout(FAR)
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                if i % EVERY == 0 {
                    assert_bounded(&what, 1, i);
                }
            }
            drop(ping_tx);
            echo.join().unwrap();
            assert_bounded(&what, 0, N);
        },
    );
}
