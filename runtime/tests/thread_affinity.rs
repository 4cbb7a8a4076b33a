//! Sound by default (issue 11, `docs/SOUNDNESS.md`): a started goroutine stays on its thread, so
//! safe code that uses thread-bound values across a park sees what a thread would see. Each test
//! is safe code that migration made undefined or wrong, run at GORT_MAXPROCS 4 with many
//! goroutines and many parks. CI also runs this file in release builds, where the compiler
//! caches thread-local addresses across calls (`cargo test --release -p gort --test
//! thread_affinity`). The scheduler itself checks, on every resume of a started goroutine, that
//! it is its home M (`execute`), so every test of the suite checks it too.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// Goroutines per scenario, and parks each makes.
const GOROUTINES: usize = 1_000;
const PARKS: usize = 20;
/// Scenarios run this many times (each at maxprocs 4).
const REPEATS: usize = 5;

fn tid() -> i64 {
    // SAFETY: gettid has no preconditions.
    i64::from(unsafe { libc::gettid() })
}

thread_local! {
    /// This thread's id, as the thread-local saw it when first used on the thread.
    static MY_TID: Cell<i64> = Cell::new(tid());
    static SHARED: RefCell<Option<(i64, u64)>> = const { RefCell::new(None) };
    static RC: Rc<()> = Rc::new(());
}

/// Runs `body(i, rx)` in `GOROUTINES` goroutines at maxprocs 4, each receiving `PARKS` values
/// that a feeder goroutine sends round-robin, so every goroutine parks `PARKS` times with the
/// others running meanwhile on every thread.
fn with_parks(name: &str, body: fn(usize, gort::Receiver<u64>)) {
    if common::migrating() {
        // These tests show what migration breaks (`GORT_TEST_MIGRATE=1` fails five of them).
        eprintln!("{name}: skipped in migrate mode");
        return;
    }
    at_maxprocs_4(name, move || {
        for _ in 0..REPEATS {
            let (txs, hs): (Vec<_>, Vec<_>) = (0..GOROUTINES)
                .map(|i| {
                    let (tx, rx) = gort::chan::<u64>(0);
                    (tx, gort::go!(move || body(i, rx)))
                })
                .unzip();
            let feeder = gort::go!(move || {
                for k in 0..PARKS as u64 {
                    for tx in &txs {
                        tx.send(k).unwrap();
                    }
                }
            });
            feeder.join().unwrap();
            for h in hs {
                h.join().unwrap();
            }
        }
    });
}

/// Runs `f` at maxprocs 4, one test of this binary at a time, bounded in time.
fn at_maxprocs_4(name: &str, f: impl FnOnce() + Send + 'static) {
    static SERIAL: Mutex<()> = Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    gort::set_maxprocs(4);
    common::bounded(name, f);
}

/// A thread-local read before a receive reads the same after it, and it is this thread's.
#[test]
fn thread_local_value_is_the_same_after_a_receive() {
    with_parks("thread_local_value", |_, rx| {
        let first = MY_TID.with(Cell::get);
        assert_eq!(first, tid(), "thread-local read on another thread");
        for _ in 0..PARKS {
            rx.recv().unwrap();
            let now = MY_TID.with(Cell::get);
            assert_eq!(now, first, "the goroutine changed threads across a receive");
            assert_eq!(
                now,
                tid(),
                "a cached thread-local address read another thread's value"
            );
        }
    });
}

/// A `RefCell` borrow of a thread-local held across receives sees only this thread's value.
/// (Another goroutine of the same thread that wants it finds it borrowed and skips: that is the
/// same-thread conflict the model leaves to the user, never a data race.)
#[test]
fn thread_local_borrow_held_across_receives_stays_on_its_thread() {
    with_parks("thread_local_borrow", |i, rx| {
        SHARED.with(|cell| {
            let Ok(mut held) = cell.try_borrow_mut() else {
                // Another goroutine of this thread holds it: just take part in the parks.
                for _ in 0..PARKS {
                    rx.recv().unwrap();
                }
                return;
            };
            *held = Some((tid(), i as u64));
            for _ in 0..PARKS {
                rx.recv().unwrap();
                assert_eq!(
                    *held,
                    Some((tid(), i as u64)),
                    "borrow saw another thread's value"
                );
            }
            *held = None;
        });
    });
}

/// An `Rc` cloned from a thread-local and kept across parks keeps exact counts: once every
/// goroutine has dropped its clones, each thread's count is back to one.
#[test]
fn rc_from_a_thread_local_keeps_exact_counts() {
    with_parks("rc_counts", |_, rx| {
        let mut clones = Vec::new();
        for _ in 0..PARKS {
            clones.push(RC.with(Rc::clone));
            rx.recv().unwrap();
        }
        drop(clones);
    });
    // Now nothing holds a clone: on every runtime thread the count is exactly 1 (the
    // thread-local's own) plus the one each reporter takes. Many reporters, to visit every M.
    if common::migrating() {
        return;
    }
    at_maxprocs_4("rc_counts_after", || {
        let counts: Vec<_> = (0..64)
            .map(|_| {
                gort::go!(|| {
                    let r = RC.with(Rc::clone);
                    let n = Rc::strong_count(&r);
                    gort::yield_now();
                    n
                })
            })
            .map(|h| h.join().unwrap())
            .collect();
        // Reporters of one thread run one after another (each holds one clone while it
        // yields, so a count of 3 means two reporters overlapped on that thread: still exact).
        assert!(counts.iter().all(|&n| (2..=65).contains(&n)), "{counts:?}");
    });
}

/// A std `MutexGuard` held across parks is unlocked by the thread that locked it.
#[test]
fn std_mutex_guard_is_unlocked_by_its_locking_thread() {
    let locks: Arc<Vec<Mutex<u64>>> = Arc::new((0..GOROUTINES).map(|_| Mutex::new(0)).collect());
    LOCKS.set(locks).ok();
    with_parks("std_mutex_guard", |i, rx| {
        let locks = LOCKS.get().unwrap();
        let mut guard = locks[i].lock().unwrap();
        let locked_on = tid();
        for _ in 0..PARKS {
            rx.recv().unwrap();
            *guard += 1;
        }
        assert_eq!(
            tid(),
            locked_on,
            "the guard would be unlocked by another thread"
        );
        drop(guard);
    });
}

static LOCKS: std::sync::OnceLock<Arc<Vec<Mutex<u64>>>> = std::sync::OnceLock::new();

/// A goroutine's OS thread never changes after its first run.
#[test]
fn a_goroutines_thread_never_changes() {
    with_parks("thread_never_changes", |_, rx| {
        let first = tid();
        for _ in 0..PARKS {
            rx.recv().unwrap();
            gort::yield_now();
            assert_eq!(tid(), first);
        }
    });
}

/// Spawned work still spreads: 1,000 goroutines spawned by one goroutine and doing CPU work
/// run on every P (unstarted goroutines are stolen freely).
#[test]
fn spawned_cpu_work_spreads_over_every_p() {
    at_maxprocs_4("spawned_work_spreads", || {
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let spawner = {
            let seen = seen.clone();
            gort::go!(move || {
                let hs: Vec<_> = (0..1_000u64)
                    .map(|i| {
                        let seen = seen.clone();
                        gort::go!(move || {
                            let mut x = i;
                            for _ in 0..200_000 {
                                x = std::hint::black_box(x.wrapping_mul(6364136223846793005) + 1);
                            }
                            seen.lock()
                                .unwrap()
                                .insert(gort::current_processor_id().unwrap());
                            x
                        })
                    })
                    .collect();
                hs.into_iter().fold(0, |n, h| {
                    h.join().unwrap();
                    n + 1
                })
            })
        };
        assert_eq!(spawner.join().unwrap(), 1_000);
        let ps = seen.lock().unwrap().len();
        assert_eq!(ps, 4, "the work ran on {ps} of 4 Ps");
    });
}
