//! [`Mutex`]: Go's `sync.Mutex` (internal/sync/mutex.go), read as the design and written anew.
//!
//! # The state word
//!
//! ```text
//!  31                          3   2          1        0
//! ┌─────────────────────────────┬──────────┬───────┬────────┐
//! │ waiters (counted, may not   │ STARVING │ WOKEN │ LOCKED │
//! │ be queued in `sema` yet)    │          │       │        │
//! └─────────────────────────────┴──────────┴───────┴────────┘
//! ```
//!
//! - `LOCKED`: someone owns the mutex (in starvation mode it may be clear while ownership is
//!   in transit to the head waiter).
//! - `WOKEN`: a waiter is awake and competing (it was woken, or it is spinning), so `unlock`
//!   need not wake another.
//! - `STARVING`: starvation mode (below).
//! - waiters: goroutines and threads counted as blocked; each will `sema.acquire` once, and
//!   each `sema.release` is paid for by decrementing this count (or by a starvation handoff,
//!   where the woken waiter decrements it).
//!
//! # Two modes
//!
//! Normal mode: the fast path is one CAS 0→LOCKED. A contender that fails spins briefly (only
//! with more than one processor, and only while the holder may be running), then counts
//! itself as a waiter and parks in `sema`'s FIFO queue. `unlock` clears LOCKED and, if there
//! are waiters and none is awake, wakes the head one, which then competes with newcomers
//! (newcomers are running and usually win: that is the throughput of normal mode). A woken
//! waiter that loses queues again at the head.
//!
//! Starvation mode: a waiter that has waited more than 1 ms sets STARVING. From then on
//! `unlock` hands ownership directly to the head waiter (LOCKED stays clear; the waiter sets
//! it), and newcomers neither take the lock nor spin: they queue at the tail. The waiter that
//! receives the mutex leaves starvation mode if it is the last waiter or waited under 1 ms.
//! The waiter that set STARVING queues at the head, so the next `unlock` is its, once it has
//! queued: an `unlock` that comes between its CAS and its queueing finds the queue empty and
//! leaves the hand-off as a stored permit (`sema.rs`), which the first counted waiter to reach
//! `sema` takes, possibly a newcomer that counted itself meanwhile (Go's semaphore has the
//! same window; loom finds it as soon as the hand-off check of the model
//! `loom_starving_waiter_gets_it_next` drops its "queued" condition).
//!
//! Memory ordering: taking the lock is an acquire (the CAS, or the handoff through `sema`,
//! whose queue lock and woken flag carry the releaser's writes); `unlock` is a release RMW.
//!
//! # Loom
//!
//! The mode switch depends on time, which loom cannot model, and spinning on the machine's
//! processor count; both come through `env`, which under `--cfg loom` is a clock the models
//! advance and a switch they set. The models at the bottom check the transitions: a waiter
//! that turned the mutex starving and queued gets it next, a waiter that takes it as the last
//! one or after a short wait returns it to normal mode, no waiter is stranded and no wake-up
//! is lost.

use crate::loom::lazy::AtomicU32;
use crate::loom::Ordering;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use super::sema::Sema;

const LOCKED: u32 = 1;
const WOKEN: u32 = 2;
const STARVING: u32 = 4;
const WAITER_SHIFT: u32 = 3;
const ONE_WAITER: u32 = 1 << WAITER_SHIFT;

/// A waiter that has waited this long switches the mutex to starvation mode.
const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);
/// Spin rounds before queueing, and `spin_loop` hints per round (Go's `active_spin` = 4,
/// `active_spin_cnt` = 30).
const SPIN_ROUNDS: u32 = 4;
const SPINS_PER_ROUND: u32 = 30;

/// The lock without data: the state word and the waiter queue. Also the writer lock of
/// `RwMutex` and the lock of `Once`.
pub(crate) struct RawMutex {
    state: AtomicU32,
    sema: Sema,
}

impl RawMutex {
    pub(crate) const fn new() -> RawMutex {
        RawMutex {
            state: AtomicU32::new(0),
            sema: Sema::new(),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) {
        let Err(old) = self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
        else {
            return;
        };
        // Free, but with waiters counted or one awake (a woken waiter may sit in a run queue
        // for a while): in normal mode a newcomer may barge in. This is `lock_slow`'s first
        // round, inlined so such a state does not send every newcomer down the slow path.
        let old = match old & (LOCKED | STARVING) {
            0 => match self.state.compare_exchange(
                old,
                old | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => actual,
            },
            _ => old,
        };
        self.lock_slow(old);
    }

    /// Takes the lock if it is free and not being handed to a starving waiter.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            if old & (LOCKED | STARVING) != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                old,
                old | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => old = actual,
            }
        }
    }

    /// Releases the lock. The caller must hold it.
    #[inline]
    pub(crate) fn unlock(&self) {
        let new = self
            .state
            .fetch_sub(LOCKED, Ordering::Release)
            .wrapping_sub(LOCKED);
        if new != 0 {
            self.unlock_slow(new);
        }
    }

    #[cold]
    fn lock_slow(&self, mut old: u32) {
        let mut may_spin = None;
        let mut waiting_since: Option<env::Stamp> = None;
        let mut starving = false;
        let mut awoke = false;
        let mut spins = 0;
        loop {
            // Spin only while the holder may be running (not in starvation mode, where the lock
            // goes to the queue anyway).
            if old & (LOCKED | STARVING) == LOCKED
                && spins < SPIN_ROUNDS
                && *may_spin.get_or_insert_with(env::can_spin)
            {
                awoke = awoke || self.claim_woken(old);
                spin();
                spins += 1;
                old = self.state.load(Ordering::Relaxed);
                continue;
            }
            let new = next_state(old, starving, awoke);
            if let Err(actual) =
                self.state
                    .compare_exchange_weak(old, new, Ordering::Acquire, Ordering::Relaxed)
            {
                old = actual;
                continue;
            }
            if old & (LOCKED | STARVING) == 0 {
                return; // Our CAS took the lock.
            }
            if self.park_waiter(&mut waiting_since, &mut starving) {
                return;
            }
            awoke = true;
            spins = 0;
            old = self.state.load(Ordering::Relaxed);
        }
    }

    /// We are counted as a waiter: park until `unlock` wakes us (at the head of the queue if
    /// we waited before: Go's `queueLifo`). Notes whether we have now waited long enough to
    /// starve. True if the mutex was handed to us (starvation mode) and is now ours; false if
    /// we were woken to compete for it.
    fn park_waiter(&self, waiting_since: &mut Option<env::Stamp>, starving: &mut bool) -> bool {
        let requeue = waiting_since.is_some();
        let since = *waiting_since.get_or_insert_with(env::now);
        self.sema.acquire(requeue);
        *starving = *starving || env::waited(since) > STARVATION_THRESHOLD;
        let old = self.state.load(Ordering::Relaxed);
        if old & STARVING == 0 {
            return false;
        }
        self.take_handoff(old, *starving);
        true
    }

    /// While spinning: sets WOKEN so that `unlock` does not wake a waiter we are about to
    /// beat anyway. True if this call set it.
    fn claim_woken(&self, old: u32) -> bool {
        old & WOKEN == 0
            && old >> WAITER_SHIFT != 0
            && self
                .state
                .compare_exchange(old, old | WOKEN, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// In starvation mode `unlock` handed the mutex to us (LOCKED is clear, we are still
    /// counted as a waiter): take it, and leave starvation mode if we are the last waiter or
    /// did not wait long.
    fn take_handoff(&self, old: u32, starving: bool) {
        debug_assert!(
            old & (LOCKED | WOKEN) == 0 && old >> WAITER_SHIFT != 0,
            "sync: inconsistent mutex state"
        );
        let mut delta = LOCKED.wrapping_sub(ONE_WAITER);
        if !starving || old >> WAITER_SHIFT == 1 {
            delta = delta.wrapping_sub(STARVING);
        }
        self.state.fetch_add(delta, Ordering::Acquire);
    }

    #[cold]
    fn unlock_slow(&self, new: u32) {
        if new.wrapping_add(LOCKED) & LOCKED == 0 {
            panic!("sync: unlock of unlocked mutex");
        }
        if new & STARVING != 0 {
            // Hand the mutex to the head waiter and let it run now (Go's handoff + goyield):
            // it is the owner, and newcomers queue behind it until it runs.
            self.sema.release();
            if sched::current_id().is_some() {
                sched::yield_now();
            }
            return;
        }
        let mut old = new;
        loop {
            // Nobody to wake, or someone already awake / holding / being handed the lock.
            if old >> WAITER_SHIFT == 0 || old & (LOCKED | WOKEN | STARVING) != 0 {
                return;
            }
            let next = (old - ONE_WAITER) | WOKEN;
            match self
                .state
                .compare_exchange_weak(old, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.sema.release();
                    return;
                }
                Err(actual) => old = actual,
            }
        }
    }

    /// Waiters queued (for tests).
    pub(crate) fn queue_len(&self) -> usize {
        self.sema.queue_len()
    }

    /// The state bits, for white-box tests.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn state(&self) -> u32 {
        self.state.load(Ordering::Relaxed)
    }
}

/// The state a contender in `lock_slow` tries to install over `old`.
fn next_state(old: u32, starving: bool, awoke: bool) -> u32 {
    let mut new = old;
    if old & STARVING == 0 {
        new |= LOCKED; // Newcomers do not take a starving mutex: it belongs to the queue.
    }
    if old & (LOCKED | STARVING) != 0 {
        new += ONE_WAITER;
    }
    // Only switch to starvation mode while the mutex is held: `unlock` expects a starving
    // mutex to have waiters.
    if starving && old & LOCKED != 0 {
        new |= STARVING;
    }
    if awoke {
        // We were the awake waiter (woken, or set WOKEN while spinning): we either take the
        // lock or go back to sleep; either way nobody is awake any more.
        debug_assert!(new & WOKEN != 0, "sync: inconsistent mutex state");
        new &= !WOKEN;
    }
    new
}

/// What the mutex reads from outside itself: the time, to tell how long a waiter waited, and
/// whether spinning can pay off. Real time and the processor count normally.
#[cfg(not(loom))]
mod env {
    use std::time::{Duration, Instant};

    /// When a waiter started waiting.
    pub(super) type Stamp = Instant;

    pub(super) fn now() -> Stamp {
        Instant::now()
    }

    /// How long it has been since `since`.
    pub(super) fn waited(since: Stamp) -> Duration {
        since.elapsed()
    }

    /// Spinning can only pay off if the holder may be running at the same time: more than one
    /// CPU and more than one processor. (Go's `sync_runtime_canSpin` also requires another
    /// busy P and an empty local run queue; `sched` does not expose those.)
    pub(super) fn can_spin() -> bool {
        static NCPU: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let ncpu =
            *NCPU.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        ncpu > 1 && sched::maxprocs() > 1
    }
}

/// Under loom: a clock that stands still until a model advances it (a holder that keeps the
/// mutex for a while), and spinning as the model chooses, so that a model does not depend on
/// the machine. Both are per execution (`loom::lazy_static`): time starts at zero, spinning
/// off.
#[cfg(loom)]
mod env {
    use crate::loom::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    loom::lazy_static! {
        /// Nanoseconds since the execution began.
        static ref NOW: AtomicU64 = AtomicU64::new(0);
        static ref SPIN: AtomicBool = AtomicBool::new(false);
    }

    pub(super) type Stamp = u64;

    pub(super) fn now() -> Stamp {
        NOW.load(Ordering::SeqCst)
    }

    pub(super) fn waited(since: Stamp) -> Duration {
        Duration::from_nanos(now() - since)
    }

    pub(super) fn can_spin() -> bool {
        SPIN.load(Ordering::SeqCst)
    }

    /// Time passes by `d` (for everyone).
    #[cfg(test)]
    pub(super) fn advance(d: Duration) {
        NOW.fetch_add(d.as_nanos() as u64, Ordering::SeqCst);
    }

    /// Contenders spin before they queue (as with more than one processor) if `on`.
    #[cfg(test)]
    pub(super) fn set_spin(on: bool) {
        SPIN.store(on, Ordering::SeqCst);
    }
}

fn spin() {
    for _ in 0..SPINS_PER_ROUND {
        std::hint::spin_loop();
    }
}

/// A mutual exclusion lock protecting a `T`, with Go's `sync.Mutex` algorithm: blocking parks
/// the goroutine (or the plain thread), never the processor.
///
/// Normal mode is unfair and fast (a running goroutine usually beats a woken one); a waiter
/// kept out for over 1 ms switches the mutex to starvation mode, where ownership passes in
/// FIFO order until the queue drains. See the module source for the state machine.
///
/// Differences from `std::sync::Mutex`: no poisoning (a panic while locked unlocks on unwind;
/// see the [module docs](super)); `lock` returns the guard directly; the guard is `Send` (as
/// in Go, a mutex is not tied to the goroutine that locked it). Locking a mutex the caller already holds deadlocks, as in Go.
///
/// ```
/// use chan::sync::Mutex;
/// use std::sync::Arc;
///
/// let counter = Arc::new(Mutex::new(0));
/// let handles: Vec<_> = (0..4)
///     .map(|_| {
///         let counter = counter.clone();
///         sched::spawn(move || {
///             for _ in 0..1000 {
///                 *counter.lock() += 1;
///             }
///         })
///     })
///     .collect();
/// for h in handles {
///     h.join().unwrap();
/// }
/// assert_eq!(*counter.lock(), 4000);
/// ```
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out access to `data` to one guard at a time (`raw` is held for the
// guard's whole life), so sharing `&Mutex<T>` between threads only ever moves exclusive access
// to `T` between them, which is sound for `T: Send` (as std's `Mutex`).
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new unlocked mutex. `const`, so it can initialise a `static`.
    ///
    /// ```
    /// static HITS: chan::sync::Mutex<u32> = chan::sync::Mutex::new(0);
    /// *HITS.lock() += 1;
    /// assert_eq!(*HITS.lock(), 1);
    /// ```
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            raw: RawMutex::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex and returns the data.
    ///
    /// ```
    /// let m = chan::sync::Mutex::new(vec![1, 2]);
    /// assert_eq!(m.into_inner(), vec![1, 2]);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, parking the caller until it is free, and returns a guard that unlocks
    /// on drop.
    ///
    /// ```
    /// let m = chan::sync::Mutex::new(1);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        MutexGuard::new(self)
    }

    /// Locks the mutex if that needs no waiting (Go's `TryLock`: also fails while the mutex is
    /// being handed to a starving waiter).
    ///
    /// ```
    /// let m = chan::sync::Mutex::new(());
    /// let held = m.try_lock().expect("free");
    /// assert!(m.try_lock().is_none());
    /// drop(held);
    /// assert!(m.try_lock().is_some());
    /// ```
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.raw.try_lock().then(|| MutexGuard::new(self))
    }

    /// The data, through a unique borrow: no locking needed.
    ///
    /// ```
    /// let mut m = chan::sync::Mutex::new(1);
    /// *m.get_mut() = 5;
    /// assert_eq!(*m.lock(), 5);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Goroutines and threads queued waiting for the mutex. For tests that check that a
    /// waiter leaves nothing behind; not part of the API.
    #[doc(hidden)]
    pub fn queue_len(&self) -> usize {
        self.raw.queue_len()
    }

    #[cfg(all(test, not(loom)))]
    pub(crate) fn raw(&self) -> &RawMutex {
        &self.raw
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Exclusive access to a [`Mutex`]'s data; unlocks when dropped (also during a panic's
/// unwinding).
///
/// `Send` when `T: Send`: the guard may be dropped by another goroutine or thread than the
/// one that locked (Go allows unlocking from another goroutine).
///
/// ```
/// let m = chan::sync::Mutex::new(String::from("a"));
/// let mut guard = m.lock();
/// guard.push('b');
/// drop(guard);
/// assert_eq!(*m.lock(), "ab");
/// ```
#[must_use = "the mutex unlocks at once if the guard is not kept"]
pub struct MutexGuard<'a, T: ?Sized> {
    pub(crate) mutex: &'a Mutex<T>,
    /// Send/Sync as `&mut T`: a shared guard gives out `&T` (needs `T: Sync`), a moved guard
    /// gives out `&mut T` (needs `T: Send`).
    _marker: PhantomData<&'a mut T>,
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    fn new(mutex: &'a Mutex<T>) -> MutexGuard<'a, T> {
        MutexGuard {
            mutex,
            _marker: PhantomData,
        }
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while `raw` is locked by it, so no other reference
        // to the data exists; the shared borrow of the guard bounds this one.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; the unique borrow of the guard makes this borrow unique.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.raw.unlock();
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + std::fmt::Display> std::fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&**self, f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::loom::AtomicBool;
    use std::sync::Arc;
    use std::time::Instant;

    fn sleep(d: Duration) {
        let end = Instant::now() + d;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            sched::park_timeout(left);
        }
    }

    #[test]
    fn next_state_rules() {
        // Free: take it.
        assert_eq!(next_state(0, false, false), LOCKED);
        // Held: count ourselves.
        assert_eq!(next_state(LOCKED, false, false), LOCKED | ONE_WAITER);
        // Starving waiter while held: set STARVING.
        assert_eq!(
            next_state(LOCKED | ONE_WAITER, true, false),
            LOCKED | STARVING | (2 * ONE_WAITER)
        );
        // Starving mutex, free: newcomers queue, they do not take it.
        assert_eq!(
            next_state(STARVING | ONE_WAITER, false, false),
            STARVING | (2 * ONE_WAITER)
        );
        // The awake waiter clears WOKEN.
        assert_eq!(next_state(WOKEN, false, true), LOCKED);
    }

    /// Go's TestMutexFairness shape: a holder that keeps the mutex busy (sleeping inside) and
    /// re-takes it at once; the other goroutine must see STARVING set and get the mutex.
    #[test]
    fn hog_makes_mutex_starve() {
        let m = Arc::new(Mutex::new(()));
        let stop = Arc::new(AtomicBool::new(false));
        let saw_starving = Arc::new(AtomicBool::new(false));
        let hog = {
            let (m, stop, saw) = (m.clone(), stop.clone(), saw_starving.clone());
            sched::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let g = m.lock();
                    sleep(Duration::from_micros(100));
                    if m.raw().state() & STARVING != 0 {
                        saw.store(true, Ordering::Relaxed);
                    }
                    drop(g);
                }
            })
        };
        let waiter = {
            let m = m.clone();
            sched::spawn(move || {
                for _ in 0..10 {
                    sleep(Duration::from_micros(100));
                    drop(m.lock());
                }
            })
        };
        waiter.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        hog.join().unwrap();
        assert!(
            saw_starving.load(Ordering::Relaxed),
            "starvation mode never engaged"
        );
        assert_eq!(m.raw().state(), 0, "mutex left dirty");
    }
}

/// loom models of the mode switch (module docs, "Loom"). A lost wake-up or a stranded waiter
/// leaves a thread parked for good, which loom reports as a deadlock.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::loom::AtomicBool;
    use loom::thread;
    use std::sync::{Arc, OnceLock};

    /// `loom::model` with at most `preemptions` preemptions per execution (unless
    /// `LOOM_MAX_PREEMPTIONS` says otherwise). A lock or unlock that waits is a few dozen loom
    /// operations, and the unbounded space of these models takes longer than CI can wait (the
    /// first one ran for over 15 minutes). The bounds below keep each model to seconds and
    /// reach every failure listed in the commit that added them; the second model needs 3 for
    /// starvation mode to engage at all.
    fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(preemptions);
        }
        builder.check(f);
    }

    /// The mutex of the models: its data is who held it, in order.
    type Log = Mutex<Vec<char>>;

    /// `who` has just taken `m` (`g`): the state word is that of a held mutex, and a starving
    /// mutex has waiters (`unlock` relies on it). Logs `who`; returns the state.
    fn took(m: &Log, g: &mut MutexGuard<'_, Vec<char>>, who: char) -> u32 {
        let s = m.raw.state.load(Ordering::Relaxed);
        assert!(
            s & LOCKED != 0,
            "{who} holds a mutex not marked LOCKED: {s:#b}"
        );
        assert!(
            s & STARVING == 0 || s >> WAITER_SHIFT != 0,
            "starving with no waiter: {s:#b}, {g:?}"
        );
        g.push(who);
        s
    }

    fn starving(m: &Log) -> bool {
        m.raw.state.load(Ordering::Relaxed) & STARVING != 0
    }

    /// H holds the mutex while W queues for it, keeps it past the threshold, then unlocks and
    /// takes it twice more at once, barging in as a running goroutine does; W waits long, so
    /// the first time it is woken and loses, it turns the mutex starving. Checks:
    /// - when H unlocks a starving mutex with W queued, W gets it next (the hand-off): H's
    ///   next lock comes after W's (before W has queued, H may get it first: module docs);
    /// - the mutex ends free, in normal mode, with nobody queued (W, the last waiter, took it
    ///   out of starvation mode), and a starving mutex always had a waiter;
    /// - nobody parks for good (loom: no deadlock);
    /// - starvation mode engages in some interleaving (so the first check is not vacuous).
    fn starving_waiter_gets_it_next(spin: bool) {
        static ENGAGED: OnceLock<()> = OnceLock::new();
        model(4, move || {
            env::set_spin(spin);
            let m = Arc::new(Mutex::new(Vec::new()));
            let mut g = m.lock();
            took(&m, &mut g, 'H');
            let w = {
                let m = m.clone();
                thread::spawn(move || {
                    let mut g = m.lock();
                    took(&m, &mut g, 'W');
                })
            };
            // H keeps the mutex past the threshold each time it holds it.
            let hold = |g: MutexGuard<'_, Vec<char>>| {
                env::advance(2 * STARVATION_THRESHOLD);
                let handoff = starving(&m) && m.queue_len() == 1;
                drop(g);
                handoff
            };
            let mut handoff = hold(g);
            for _ in 0..2 {
                let mut g = m.lock();
                let s = took(&m, &mut g, 'H');
                if handoff {
                    assert!(g.contains(&'W'), "H took a starving mutex before W: {g:?}");
                }
                if handoff || s & STARVING != 0 {
                    let _ = ENGAGED.set(());
                }
                handoff = hold(g);
            }
            w.join().unwrap();
            assert_eq!(
                m.raw.state.load(Ordering::Relaxed),
                0,
                "left held, starving or waited on"
            );
            assert_eq!(m.queue_len(), 0, "a waiter stranded in the queue");
        });
        assert!(ENGAGED.get().is_some(), "starvation mode never engaged");
    }

    /// W1 queues behind H, which keeps the mutex past the threshold (W1's wait is long); then
    /// W2 comes, and H unlocks and locks once more. H or W2 may barge in ahead of the woken
    /// W1, which then turns the mutex starving and is handed it, keeping starvation mode while
    /// W2 waits; W1 locks a second time. Every wait but W1's first is short, so once W1 has
    /// had the mutex nobody starves: whoever takes it next by hand-off, the last waiter or not
    /// (W2, with W1 queued again behind it), returns it to normal mode. Checks: nobody holds a
    /// starving mutex once W1 has had it; the mutex ends free, in normal mode, with nobody
    /// queued; nobody parks for good; starvation mode engages in some interleaving.
    #[test]
    fn loom_short_wait_returns_it_to_normal() {
        static ENGAGED: OnceLock<()> = OnceLock::new();
        model(3, || {
            let m = Arc::new(Mutex::new(Vec::new()));
            let w1_had_it = Arc::new(AtomicBool::new(false));
            let mut g = m.lock();
            took(&m, &mut g, 'H');
            let spawn = |who: char, times: usize| {
                let (m, had) = (m.clone(), w1_had_it.clone());
                thread::spawn(move || {
                    for _ in 0..times {
                        let mut g = m.lock();
                        let s = took(&m, &mut g, who);
                        // W1 has had the mutex (its only long wait is over).
                        let w1_done = had.load(Ordering::SeqCst);
                        if s & STARVING != 0 {
                            let _ = ENGAGED.set(());
                            assert!(!w1_done, "{who} holds a starving mutex after W1: {g:?}");
                        }
                        if who == '1' {
                            had.store(true, Ordering::SeqCst);
                        }
                    }
                })
            };
            let w1 = spawn('1', 2);
            env::advance(2 * STARVATION_THRESHOLD);
            let w2 = spawn('2', 1);
            drop(g);
            // H barges in once more (W1, woken, may lose to it and turn the mutex starving).
            let mut g = m.lock();
            let s = took(&m, &mut g, 'H');
            if s & STARVING != 0 {
                let _ = ENGAGED.set(());
                assert!(
                    !w1_had_it.load(Ordering::SeqCst),
                    "H holds a starving mutex after W1"
                );
            }
            drop(g);
            w1.join().unwrap();
            w2.join().unwrap();
            assert_eq!(
                m.raw.state.load(Ordering::Relaxed),
                0,
                "left held or starving"
            );
            assert_eq!(m.queue_len(), 0, "a waiter stranded in the queue");
        });
        assert!(ENGAGED.get().is_some(), "starvation mode never engaged");
    }

    #[test]
    fn loom_starving_waiter_gets_it_next() {
        starving_waiter_gets_it_next(false);
    }

    #[test]
    fn loom_starving_waiter_gets_it_next_spinning() {
        starving_waiter_gets_it_next(true);
    }
}
