//! `chan::sync::Once` and `OnceValue` at maxprocs 1, 2 and 4: the function runs exactly once
//! under 100 concurrent callers, every caller returns only after it finished and sees its
//! effects; a panicking function leaves the `Once` incomplete and the next caller retries.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chan::sync::{Once, OnceValue};
use common::{each_procs, quiet_expected_panics, sleep, start, Side};

const CALLERS: usize = 100;

/// 100 callers (every tenth a plain thread); the function sleeps 2 ms so the others pile up
/// and park. It runs once, and each caller sees its effect when `call_once` returns.
#[test]
fn hundred_callers_run_once() {
    each_procs("hundred_callers_run_once", |_| {
        let once = Arc::new(Once::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let effect = Arc::new(AtomicBool::new(false));
        let joins: Vec<_> = (0..CALLERS)
            .map(|i| {
                let side = if i % 10 == 0 {
                    Side::Thread
                } else {
                    Side::Goroutine
                };
                let (once, runs, effect) = (once.clone(), runs.clone(), effect.clone());
                start(side, move || {
                    once.call_once(|| {
                        runs.fetch_add(1, Ordering::Relaxed);
                        sleep(Duration::from_millis(2));
                        effect.store(true, Ordering::Relaxed);
                    });
                    assert!(
                        effect.load(Ordering::Relaxed),
                        "returned before the function"
                    );
                })
            })
            .collect();
        for j in joins {
            j();
        }
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert!(once.is_completed());
    });
}

/// A panicking function leaves the `Once` incomplete; a waiter parked behind it then runs its
/// own function, and later calls run nothing.
#[test]
fn panic_leaves_incomplete_and_next_caller_retries() {
    quiet_expected_panics();
    each_procs("panic_leaves_incomplete_and_next_caller_retries", |_| {
        let once = Arc::new(Once::new());
        let first = {
            let once = once.clone();
            sched::spawn(move || {
                once.call_once(|| {
                    sleep(Duration::from_millis(2));
                    panic!("expected: initialiser fails");
                })
            })
        };
        let second = {
            let once = once.clone();
            sched::spawn(move || {
                sleep(Duration::from_millis(1));
                let mut ran = false;
                once.call_once(|| ran = true);
                ran
            })
        };
        assert!(first.join().is_err());
        let second_ran = second.join().unwrap();
        assert!(once.is_completed());
        let mut third_ran = false;
        once.call_once(|| third_ran = true);
        assert!(second_ran && !third_ran);
    });
}

/// 100 callers of `get_or_init` get the same value, made once.
#[test]
fn once_value_made_once() {
    each_procs("once_value_made_once", |_| {
        let cell = Arc::new(OnceValue::new());
        let made = Arc::new(AtomicUsize::new(0));
        let joins: Vec<_> = (0..CALLERS)
            .map(|i| {
                let side = if i % 25 == 0 {
                    Side::Thread
                } else {
                    Side::Goroutine
                };
                let (cell, made) = (cell.clone(), made.clone());
                start(side, move || {
                    let v: &String = cell.get_or_init(|| {
                        made.fetch_add(1, Ordering::Relaxed);
                        sched::yield_now();
                        format!("made by {i}")
                    });
                    v.clone()
                })
            })
            .collect();
        let values: Vec<String> = joins.into_iter().map(|j| j()).collect();
        assert_eq!(made.load(Ordering::Relaxed), 1);
        assert!(values.iter().all(|v| *v == values[0]));
        assert_eq!(cell.get(), Some(&values[0]));
    });
}
