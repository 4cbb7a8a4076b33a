//! Goroutine-local storage (`gort::local!`), at maxprocs 1, 2 and 4.
//!
//! A `thread_local!` is the wrong tool for a goroutine, which may resume on another OS thread
//! after any park or yield; `local!` is the replacement, so its promises are pinned down here:
//! each goroutine has its own value, created fresh (a child does not inherit its parent's);
//! the value travels with the goroutine across parks, yields and migrations between Ms, also
//! while borrowed inside `with`; it is dropped exactly once when the goroutine ends, whether it
//! returned or panicked, including values that destructors of other locals create; a destructor
//! that panics harms neither the goroutine's result nor the runtime; and plain threads get
//! their own values, dropped when the thread exits.

mod common;

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Goroutines per scenario, and increments each makes.
const GOROUTINES: usize = 1000;
const INCREMENTS: u32 = 100;
/// Goroutines checking their value across migrations, and the yields/parks each makes.
const MIGRANTS: usize = 16;
const HOPS: usize = 1000;

/// Drops of `Tracked` values (only the "dropped" scenario creates them).
static TRACKED_DROPS: AtomicUsize = AtomicUsize::new(0);
/// Drops of `Late` values, which only `Outer`'s destructor creates.
static LATE_DROPS: AtomicUsize = AtomicUsize::new(0);

/// Counts its drops in `TRACKED_DROPS`.
struct Tracked;

impl Drop for Tracked {
    fn drop(&mut self) {
        TRACKED_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

/// A local whose destructor touches another local (`LATE`), creating it during teardown.
struct Outer;

impl Drop for Outer {
    fn drop(&mut self) {
        LATE.with(|_| ());
    }
}

/// Counts its drops in `LATE_DROPS`.
struct Late;

impl Drop for Late {
    fn drop(&mut self) {
        LATE_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

/// A local whose destructor panics.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("expected: a goroutine-local destructor panics");
    }
}

gort::local! {
    /// A per-goroutine counter.
    static COUNT: Cell<u32> = Cell::new(0);
    /// A per-goroutine tag: the owner's goroutine id once set.
    static TAG: Cell<Option<u64>> = Cell::new(None);
    static TRACKED: Tracked = Tracked;
    static OUTER: Outer = Outer;
    static LATE: Late = Late;
    static BOMB: PanicsOnDrop = PanicsOnDrop;
}

/// Parks for real: a child goroutine unparks the caller, which parks meanwhile.
fn park_once() {
    let me = gort::unparker();
    let waker = gort::spawn(move || me.unpark());
    // Usually a real switch-out; may return at once for a token left by an earlier join's
    // wake-up, which is harmless here.
    gort::park();
    waker.join().unwrap();
}

#[test]
fn each_goroutine_has_its_own_value() {
    common::each_procs("own value", |_| {
        let handles: Vec<_> = (0..GOROUTINES)
            .map(|_| {
                gort::spawn(|| {
                    for k in 0..INCREMENTS {
                        COUNT.with(|c| c.set(c.get() + 1));
                        if k % 10 == 0 {
                            park_once();
                        } else {
                            gort::yield_now();
                        }
                    }
                    // A child starts from the initial value, not from its parent's.
                    let child = gort::spawn(|| COUNT.with(Cell::get)).join().unwrap();
                    (COUNT.with(Cell::get), child)
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), (INCREMENTS, 0));
        }
    });
}

#[test]
fn values_travel_with_migrating_goroutines() {
    common::each_procs("migration", |_| {
        // Each migrant tags itself, then yields and parks many times (woken from a plain
        // thread, so it resumes from the global queue on whichever M gets there first). Its
        // tag must be intact after every hop, also while borrowed across a park inside `with`.
        let (unparkers_tx, unparkers_rx) = mpsc::channel::<gort::Unparker>();
        let waker = std::thread::spawn(move || {
            for u in unparkers_rx {
                u.unpark();
            }
        });
        let migrants: Vec<_> = (0..MIGRANTS)
            .map(|_| {
                let unparkers_tx = unparkers_tx.clone();
                gort::spawn(move || {
                    let me = gort::current_id().unwrap();
                    TAG.with(|t| t.set(Some(me)));
                    let mut machines = HashSet::new();
                    for hop in 0..HOPS {
                        machines.insert(gort::current_machine_id().unwrap());
                        if hop % 2 == 0 {
                            gort::yield_now();
                        } else {
                            unparkers_tx.send(gort::unparker()).unwrap();
                            gort::park();
                        }
                        assert_eq!(TAG.with(Cell::get), Some(me), "hop {hop}");
                    }
                    // Blocking inside `with`: the borrowed value stays this goroutine's.
                    TAG.with(|t| {
                        unparkers_tx.send(gort::unparker()).unwrap();
                        gort::park();
                        assert_eq!(t.get(), Some(me));
                    });
                    machines.len()
                })
            })
            .collect();
        drop(unparkers_tx);
        for h in migrants {
            assert!(h.join().unwrap() >= 1);
        }
        waker.join().unwrap();
    });
}

#[test]
fn values_are_dropped_when_the_goroutine_ends() {
    common::quiet_expected_panics();
    common::each_procs("dropped", |_| {
        let tracked_before = TRACKED_DROPS.load(Ordering::SeqCst);
        let late_before = LATE_DROPS.load(Ordering::SeqCst);
        let handles: Vec<_> = (0..GOROUTINES)
            .map(|i| {
                gort::spawn(move || {
                    TRACKED.with(|_| ());
                    OUTER.with(|_| ());
                    gort::yield_now();
                    if i % 10 == 0 {
                        panic!("expected: goroutine {i} panics holding locals");
                    }
                })
            })
            .collect();
        let panicked = handles
            .into_iter()
            .map(|h| h.join())
            .filter(Result::is_err)
            .count();
        assert_eq!(panicked, GOROUTINES / 10);
        // Values are dropped before the goroutine's end is published, so all are counted by
        // the time `join` returns; each exactly once, also after a panic, and also the value
        // `Outer`'s destructor created.
        let tracked = TRACKED_DROPS.load(Ordering::SeqCst) - tracked_before;
        let late = LATE_DROPS.load(Ordering::SeqCst) - late_before;
        assert_eq!(tracked, GOROUTINES);
        assert_eq!(late, GOROUTINES);
    });
}

#[test]
fn plain_threads_have_their_own_values() {
    common::each_procs("plain threads", |_| {
        // This plain (helper) thread's value.
        COUNT.with(|c| c.set(5));
        let tracked_before = TRACKED_DROPS.load(Ordering::SeqCst);
        let other_thread = std::thread::spawn(|| {
            let fresh = COUNT.with(Cell::get);
            COUNT.with(|c| c.set(9));
            TRACKED.with(|_| ());
            (fresh, COUNT.with(Cell::get))
        });
        // The other thread's values are dropped as it exits, before `join` returns.
        let (fresh, later) = other_thread.join().unwrap();
        assert_eq!((fresh, later), (0, 9));
        assert_eq!(TRACKED_DROPS.load(Ordering::SeqCst), tracked_before + 1);
        // A goroutine started from this thread does not see its value, nor change it.
        let in_goroutine = gort::spawn(|| {
            let fresh = COUNT.with(Cell::get);
            COUNT.with(|c| c.set(7));
            fresh
        });
        assert_eq!(in_goroutine.join().unwrap(), 0);
        assert_eq!(COUNT.with(Cell::get), 5);
        COUNT.with(|c| c.set(0));
    });
}

#[test]
fn a_panicking_destructor_does_not_harm_the_runtime() {
    common::quiet_expected_panics();
    common::each_procs("panicking destructor", |procs| {
        // The destructor runs after the goroutine's closure returned: its result still reaches
        // `join`, and the M that ran it keeps scheduling (at maxprocs 1 a dead M would strand
        // the only processor and hang what follows). The runtime reports the panic on stderr.
        let h = gort::spawn(|| {
            BOMB.with(|_| ());
            42
        });
        assert_eq!(h.join().unwrap(), 42);
        let handles: Vec<_> = (0..100 * procs).map(|i| gort::spawn(move || i)).collect();
        let sum: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, (0..100 * procs).sum());
    });
}
