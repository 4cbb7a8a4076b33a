//! [`WaitGroup`]: Go's `sync.WaitGroup` (sync/waitgroup.go), read as the design and written
//! anew.
//!
//! State: one 64-bit word, the counter in the high 32 bits (signed), the number of waiters in
//! the low 32; and a `Sema` the waiters park on.
//!
//! The handshake (no lost wake-up):
//! - `wait` reads the word; if the counter is zero it returns; otherwise it counts itself as
//!   a waiter with a CAS *from the word it read*, so it registers only if the counter was
//!   still non-zero at that instant; then it takes a permit from the `Sema`.
//! - `add` that brings the counter to zero reads the waiter count in the same RMW, resets the
//!   word to zero with a CAS (failure means an `add` raced with the group at zero: misuse, as
//!   Go reports), and releases exactly that many permits.
//!
//! So every registered waiter was counted before the counter reached zero, and is released
//! by the `add` that got it there; a permit released before its waiter reaches the `Sema` is
//! stored there, not lost. The loom model at the bottom checks this (and that it would find
//! the lost wake-up of a check-then-register protocol).
//!
//! Memory ordering: all RMWs on the word are acquire-release, so a `done` happens before the
//! return of every `wait` that saw (directly or through the releasing `add`) the counter at
//! zero.

use std::sync::Arc;

use super::sema::Sema;
use crate::loom::{AtomicU64, Ordering};
use sched::debug::WaitReason;

/// Waits for a collection of goroutines (or threads) to finish, like Go's `sync.WaitGroup`:
/// [`add`](WaitGroup::add) the number to wait for, each calls [`done`](WaitGroup::done), and
/// [`wait`](WaitGroup::wait) parks until the counter is zero.
///
/// A `WaitGroup` is a cheap handle (an `Arc` inside): clone it into each goroutine. The
/// counter may be reused once it has reached zero and every `wait` of the previous round has
/// returned (Go's rule). A negative counter panics with `sync: negative WaitGroup counter`
/// (the offending `add` is undone first, so the group stays usable).
///
/// ```
/// use chan::sync::WaitGroup;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let wg = WaitGroup::new();
/// let hits = Arc::new(AtomicUsize::new(0));
/// for _ in 0..100 {
///     wg.add(1);
///     let (wg, hits) = (wg.clone(), hits.clone());
///     sched::spawn(move || {
///         hits.fetch_add(1, Ordering::Relaxed);
///         wg.done();
///     });
/// }
/// wg.wait();
/// assert_eq!(hits.load(Ordering::Relaxed), 100);
/// ```
#[derive(Clone, Default)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

struct Inner {
    /// Counter (high 32 bits, `i32`) and waiter count (low 32 bits).
    state: AtomicU64,
    sema: Sema,
}

impl Default for Inner {
    fn default() -> Inner {
        Inner {
            state: AtomicU64::new(0),
            sema: Sema::new(WaitReason::WaitGroup),
        }
    }
}

fn counter(state: u64) -> i32 {
    (state >> 32) as i32
}

fn waiters(state: u64) -> u32 {
    state as u32
}

impl WaitGroup {
    /// A group with counter zero.
    ///
    /// ```
    /// chan::sync::WaitGroup::new().wait(); // zero: returns at once
    /// ```
    pub fn new() -> WaitGroup {
        WaitGroup::default()
    }

    /// Adds `delta` (which may be negative) to the counter; at zero, releases every waiter.
    ///
    /// # Panics
    ///
    /// If the counter would go negative (`sync: negative WaitGroup counter`), if `delta` does
    /// not fit in an `i32`, or if a positive `add` races with the counter reaching zero while
    /// goroutines wait (Go's misuse check).
    ///
    /// ```
    /// let wg = chan::sync::WaitGroup::new();
    /// wg.add(2);
    /// wg.add(-2);
    /// wg.wait();
    /// ```
    pub fn add(&self, delta: i64) {
        let delta = i32::try_from(delta).expect("sync: WaitGroup delta out of range");
        let step = (delta as i64 as u64) << 32;
        let state = self
            .inner
            .state
            .fetch_add(step, Ordering::AcqRel)
            .wrapping_add(step);
        let (v, w) = (counter(state), waiters(state));
        if v < 0 {
            self.inner.state.fetch_sub(step, Ordering::AcqRel);
            panic!("sync: negative WaitGroup counter");
        }
        if w != 0 && delta > 0 && v == delta {
            panic!("sync: WaitGroup misuse: Add called concurrently with Wait");
        }
        if v > 0 || w == 0 {
            return;
        }
        self.release_waiters(state);
    }

    /// The counter is zero and `w` goroutines wait: reset the word and let them all go.
    #[cold]
    fn release_waiters(&self, state: u64) {
        if self
            .inner
            .state
            .compare_exchange(state, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            panic!("sync: WaitGroup misuse: Add called concurrently with Wait");
        }
        self.inner.sema.release_many(waiters(state) as usize);
    }

    /// Decrements the counter by one (Go's `Done`).
    ///
    /// # Panics
    ///
    /// If the counter would go negative: `sync: negative WaitGroup counter`.
    ///
    /// ```
    /// let wg = chan::sync::WaitGroup::new();
    /// wg.add(1);
    /// let h = { let wg = wg.clone(); sched::spawn(move || wg.done()) };
    /// wg.wait();
    /// h.join().unwrap();
    /// ```
    pub fn done(&self) {
        self.add(-1);
    }

    /// Goroutines and threads queued in `wait`. For tests that check that a waiter leaves
    /// nothing behind; not part of the API.
    #[doc(hidden)]
    pub fn queue_len(&self) -> usize {
        self.inner.sema.queue_len()
    }

    /// Parks until the counter is zero; returns at once if it is zero now.
    ///
    /// # Panics
    ///
    /// If the group is reused (a new `add`) before this `wait` returned: `sync: WaitGroup is
    /// reused before previous Wait has returned` (Go's check).
    ///
    /// ```
    /// let wg = chan::sync::WaitGroup::new();
    /// wg.add(1);
    /// let t = { let wg = wg.clone(); std::thread::spawn(move || wg.done()) };
    /// wg.wait(); // works from plain threads too
    /// t.join().unwrap();
    /// ```
    pub fn wait(&self) {
        let mut state = self.inner.state.load(Ordering::Acquire);
        loop {
            if counter(state) == 0 {
                return;
            }
            match self.inner.state.compare_exchange_weak(
                state,
                state + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        self.inner.sema.acquire(false);
        if self.inner.state.load(Ordering::Acquire) != 0 {
            panic!("sync: WaitGroup is reused before previous Wait has returned");
        }
    }
}

impl std::fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.state.load(Ordering::Relaxed);
        f.debug_struct("WaitGroup")
            .field("counter", &counter(state))
            .field("waiters", &waiters(state))
            .finish()
    }
}

/// loom model of the wait/done handshake. `wait_then_register` is a deliberately broken
/// `wait` (it checks the counter, then registers as a separate step) to show that the model
/// finds a lost wake-up: between the check and the registration the last `done` can see no
/// waiters and release nobody, so the waiter parks forever, and loom reports the deadlock.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::loom::AtomicUsize;
    use loom::thread;

    /// Two workers `done` a group of two while a third thread waits (every actor is a spawned
    /// thread: tokio-rs/loom#392, see HACKING.md). Checks: `wait` returns
    /// (a lost wake-up is a loom deadlock), only after both workers' writes (relaxed stores,
    /// so only the group's ordering can make them visible), and the word ends at zero.
    #[test]
    fn loom_wait_done_handshake() {
        loom::model(|| {
            let wg = WaitGroup::new();
            let work = Arc::new(AtomicUsize::new(0));
            wg.add(2);
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let (wg, work) = (wg.clone(), work.clone());
                    thread::spawn(move || {
                        work.fetch_add(1, Ordering::Relaxed);
                        wg.done();
                    })
                })
                .collect();
            let waiter = {
                let (wg, work) = (wg.clone(), work.clone());
                thread::spawn(move || {
                    wg.wait();
                    assert_eq!(work.load(Ordering::Relaxed), 2, "wait returned early");
                })
            };
            waiter.join().unwrap();
            for w in workers {
                w.join().unwrap();
            }
            assert_eq!(wg.inner.state.load(Ordering::Relaxed), 0);
        });
    }

    /// Two waiters, one worker: both waiters are released, whatever the interleaving.
    ///
    /// Bounded to 4 preemptions: with both waiters on spawned threads, unbounded it runs for
    /// minutes (in release: 0.3 s at 2, 1.7 s at 3, 9.5 s at 4).
    #[test]
    fn loom_two_waiters() {
        crate::loom::model_bounded(4, || {
            let wg = WaitGroup::new();
            wg.add(1);
            let waiter = {
                let wg = wg.clone();
                thread::spawn(move || wg.wait())
            };
            let worker = {
                let wg = wg.clone();
                thread::spawn(move || wg.done())
            };
            let waiter2 = {
                let wg = wg.clone();
                thread::spawn(move || wg.wait())
            };
            waiter.join().unwrap();
            waiter2.join().unwrap();
            worker.join().unwrap();
        });
    }

    /// The broken protocol: check the counter, then register as a waiter.
    fn wait_then_register(wg: &WaitGroup) {
        if counter(wg.inner.state.load(Ordering::Acquire)) == 0 {
            return;
        }
        wg.inner.state.fetch_add(1, Ordering::AcqRel);
        wg.inner.sema.acquire(false);
    }

    /// The model must catch the broken protocol's lost wake-up (loom panics with a deadlock).
    #[test]
    #[should_panic(expected = "deadlock")]
    fn loom_finds_lost_wakeup_in_broken_wait() {
        loom::model(|| {
            let wg = WaitGroup::new();
            wg.add(1);
            let worker = {
                let wg = wg.clone();
                thread::spawn(move || wg.done())
            };
            let waiter = {
                let wg = wg.clone();
                thread::spawn(move || wait_then_register(&wg))
            };
            waiter.join().unwrap();
            worker.join().unwrap();
        });
    }
}
