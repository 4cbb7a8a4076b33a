//! Panics in goroutines, at maxprocs 1, 2 and 4.
//!
//! A goroutine's panic must behave like a thread's: it unwinds the goroutine's own stack
//! (running its destructors), ends that goroutine only, and its payload reaches whoever joins
//! it, whatever its type, also when the goroutine had parked and resumed on another thread
//! before panicking. The scheduler must carry on unharmed afterwards, also when many goroutines
//! panic at once, and `gort::run` resumes the main goroutine's panic in its caller.
//!
//! Provoked panics carry the `expected:` prefix (or the `Expected` payload), which the quiet
//! panic hook from `common` keeps off stderr; any other panic is reported as usual.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{panic_message, Expected};

/// Goroutines in the "many panics" scenario, and how many of them panic.
const MANY: usize = 1000;
const PANICKING: usize = 100;

#[test]
fn payload_reaches_join() {
    common::quiet_expected_panics();
    common::each_procs("payload", |_| {
        let h = gort::spawn(|| -> u32 { panic!("expected: static str") });
        let payload = h.join().unwrap_err();
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"expected: static str")
        );

        let n = 7;
        let h = gort::spawn(move || -> u32 { panic!("expected: formatted {n}") });
        let payload = h.join().unwrap_err();
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some("expected: formatted 7")
        );

        let h = gort::spawn(|| -> u32 { std::panic::panic_any(Expected(42)) });
        assert_eq!(h.join().unwrap_err().downcast_ref(), Some(&Expected(42)));

        // Joined from a goroutine, too.
        let inner = gort::run(|| {
            let child = gort::spawn(|| -> u32 { panic!("expected: child") });
            panic_message(&*child.join().unwrap_err()).map(str::to_string)
        });
        assert_eq!(inner.as_deref(), Some("expected: child"));
    });
}

/// Increments its counter when dropped (also while unwinding).
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn panic_after_park_unwinds_its_own_stack() {
    common::quiet_expected_panics();
    common::each_procs("panic after park", |_| {
        // Each goroutine holds a guard, parks (so it may resume on another M), then panics:
        // the guard is dropped by the unwinding, on the goroutine's stack, exactly once.
        const N: usize = 100;
        let dropped = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let (dropped, tx) = (dropped.clone(), tx.clone());
                gort::spawn(move || -> u32 {
                    let _guard = DropCounter(dropped);
                    tx.send(gort::unparker()).unwrap();
                    gort::park();
                    panic!("expected: after park {i}")
                })
            })
            .collect();
        // One unpark each, from this plain thread; a goroutine not yet parked keeps the token.
        for _ in 0..N {
            rx.recv().unwrap().unpark();
        }
        for (i, h) in handles.into_iter().enumerate() {
            let payload = h.join().unwrap_err();
            assert_eq!(
                panic_message(&*payload),
                Some(&*format!("expected: after park {i}"))
            );
        }
        assert_eq!(dropped.load(Ordering::SeqCst), N);
    });
}

#[test]
fn scheduler_keeps_working_after_panics() {
    common::quiet_expected_panics();
    common::each_procs("after panic", |_| {
        let h = gort::spawn(|| -> u32 { panic!("expected: first") });
        assert!(h.join().is_err());
        let handles: Vec<_> = (0..1000u64).map(|i| gort::spawn(move || i)).collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 999 * 1000 / 2);

        // A parent that catches its child's panic carries on and returns normally.
        let parent = gort::spawn(|| {
            let child = gort::spawn(|| -> u32 { panic!("expected: child") });
            let caught = child.join().is_err();
            let sibling = gort::spawn(|| 5).join().unwrap();
            (caught, sibling)
        });
        assert_eq!(parent.join().unwrap(), (true, 5));
    });
}

#[test]
fn many_goroutines_panic_at_once() {
    common::quiet_expected_panics();
    common::each_procs("many panics", |_| {
        // Every tenth goroutine panics with its index; the rest return it.
        let outcomes = gort::run(|| {
            let handles: Vec<_> = (0..MANY)
                .map(|i| {
                    gort::spawn(move || {
                        gort::yield_now();
                        if i % (MANY / PANICKING) == 0 {
                            panic!("expected: {i}");
                        }
                        i
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
        });
        let mut panicked = Vec::new();
        let mut returned = 0;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(v) => {
                    assert_eq!(v, i);
                    returned += 1;
                }
                Err(payload) => {
                    assert_eq!(panic_message(&*payload), Some(&*format!("expected: {i}")));
                    panicked.push(i);
                }
            }
        }
        let expected: Vec<_> = (0..MANY).step_by(MANY / PANICKING).collect();
        assert_eq!(panicked, expected);
        assert_eq!(returned, MANY - PANICKING);
    });
}

#[test]
fn run_resumes_the_main_panic_in_its_caller() {
    common::quiet_expected_panics();
    common::each_procs("run panic", |_| {
        let payload = catch_unwind(|| gort::run(|| -> u32 { panic!("expected: main") }))
            .expect_err("run must resume the main goroutine's panic");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"expected: main"));

        let payload = catch_unwind(|| gort::run(|| -> u32 { std::panic::panic_any(Expected(3)) }))
            .expect_err("run must resume the main goroutine's panic");
        assert_eq!(payload.downcast_ref(), Some(&Expected(3)));

        // A panic resumed by an inner `run` unwinds the outer main goroutine in turn.
        let payload = catch_unwind(AssertUnwindSafe(|| {
            gort::run(|| gort::run(|| -> u32 { panic!("expected: nested") }))
        }))
        .expect_err("nested run");
        assert_eq!(panic_message(&*payload), Some("expected: nested"));

        // The runtime is still fine.
        assert_eq!(gort::run(|| gort::spawn(|| 1).join().unwrap() + 1), 2);
    });
}

/// A panicking timer action is contained: the M that fired it and its P carry on (issue 9 item
/// 3: before, the panic ended the M's thread and, at maxprocs 1, every goroutine with it).
#[test]
fn panicking_timer_action_is_contained() {
    common::quiet_expected_panics();
    common::each_procs("timer_action_panics", |_| {
        for _ in 0..20 {
            let t = sched::at(std::time::Instant::now(), || {
                panic!("expected: timer action panics")
            });
            // Goroutines still run and timers still fire after it.
            common::wait_until("the panicking timer fired", || t.fired());
            let after = gort::time::after(std::time::Duration::from_micros(100));
            let h = gort::go!(move || after.recv().is_ok());
            assert!(h.join().unwrap());
        }
    });
}
