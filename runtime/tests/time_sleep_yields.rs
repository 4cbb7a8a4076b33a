//! A sleep of any positive duration gives the processor to the other runnable goroutines
//! (issue 9): Go's `time.Sleep(1)` parks the goroutine; gort's `sleep(1 ns)` once returned at
//! once, so a goroutine sleeping in a loop kept its processor from everyone queued behind it.
//!
//! The property, without timing: the sleeper's processor is the only one a second goroutine
//! can run on (every other processor is held by a spinner that never yields, and the second
//! goroutine is queued on the sleeper's own processor), so the second goroutine runs, and sets
//! its flag, only if a sleep gives the processor away. The sleeper must see the flag within
//! its first few sleeps. Each scenario runs at GORT_MAXPROCS 1, 2 and 4, bounded in time.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Sleeps the sleeper makes at most; far more than the one that should suffice.
const SLEEPS: usize = 100_000;

/// Runs `wait` (one short sleep) in a loop on one processor while a flag-setter is queued
/// behind it on the same processor and spinners hold all the others. Returns how many waits
/// it took until the flag was seen, or `None` if it never was.
fn waits_until_flag(procs: usize, wait: fn()) -> Option<usize> {
    let done = Arc::new(AtomicBool::new(false));
    let spinning = Arc::new(AtomicUsize::new(0));
    let spinners: Vec<_> = (1..procs)
        .map(|_| {
            let (done, spinning) = (done.clone(), spinning.clone());
            gort::go!(move || {
                spinning.fetch_add(1, Ordering::AcqRel);
                while !done.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    // Every other processor is now held by a spinner that never gives it back.
    common::wait_until("the spinners hold every other processor", || {
        spinning.load(Ordering::Acquire) == procs - 1
    });
    let d2 = done.clone();
    let sleeper = gort::go!(move || {
        let flag = Arc::new(AtomicBool::new(false));
        let f2 = flag.clone();
        // Queued on this goroutine's processor (spawned from it), which is the only one free.
        let setter = gort::go!(move || f2.store(true, Ordering::Release));
        let mut seen = None;
        for i in 1..=SLEEPS {
            wait();
            if flag.load(Ordering::Acquire) {
                seen = Some(i);
                break;
            }
        }
        // Let the spinners go before joining, so the setter can run somewhere if it has not.
        d2.store(true, Ordering::Release);
        setter.join().unwrap();
        seen
    });
    let seen = sleeper.join().unwrap();
    done.store(true, Ordering::Release);
    spinners.into_iter().for_each(|h| h.join().unwrap());
    seen
}

fn assert_gives_processor(what: &str, procs: usize, wait: fn()) {
    let seen = waits_until_flag(procs, wait);
    assert!(
        matches!(seen, Some(n) if n <= 2),
        "{what} at maxprocs {procs}: the goroutine queued behind the sleeper ran only after \
         {seen:?} of its waits (None: not during {SLEEPS}); a positive sleep must give the \
         processor away"
    );
}

#[test]
fn sleep_of_one_nanosecond_gives_the_processor_away() {
    common::each_procs(
        "sleep_of_one_nanosecond_gives_the_processor_away",
        |procs| {
            assert_gives_processor("sleep(1 ns)", procs, || {
                gort::time::sleep(Duration::from_nanos(1))
            })
        },
    );
}

#[test]
fn sleep_of_one_microsecond_gives_the_processor_away() {
    common::each_procs(
        "sleep_of_one_microsecond_gives_the_processor_away",
        |procs| {
            assert_gives_processor("sleep(1 us)", procs, || {
                gort::time::sleep(Duration::from_micros(1))
            })
        },
    );
}

/// `sleep(0)` may return at once (Go's `Sleep(0)` does), and never parks for long.
#[test]
fn sleep_zero_returns() {
    common::each_procs("sleep_zero_returns", |_| {
        gort::go!(|| {
            for _ in 0..1000 {
                gort::time::sleep(Duration::ZERO);
            }
        })
        .join()
        .unwrap();
    });
}
