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
//! # Giving up (`lock_timeout`, `lock_deadline`, `lock_until`)
//!
//! Go's mutex has no timed lock (only `TryLock`); Go code that needs one uses a channel as the
//! lock, and a tokio user wraps `lock()` in a timeout. gort's goroutines are not futures, so
//! the wait itself must be able to end: a contender that waits in `sema` does so with a
//! deadline and a `stop` check (`Sema::acquire_until`) and, when either is due, leaves the
//! queue in O(1). What it then owes the state word depends on what it finds:
//!
//! - Left unwoken (`Withdrew`): it is still counted as a waiter, and it takes itself out of
//!   the count (`uncount`). Two states say a wake-up is already on its way with nobody else
//!   to take it: no waiters left (an `unlock` counted one out and is about to release `sema`;
//!   every count but this waiter's is paid for, so the wake-up is its), or a starvation
//!   hand-off in transit (STARVING without LOCKED) with this waiter the only one counted. Then
//!   it takes that wake-up from `sema` (it is released or stored at once) and passes it on
//!   as below. The last waiter to leave a starving, held mutex also clears STARVING, since
//!   `unlock` hands a starving mutex to a waiter and there is none.
//! - Woken as it left (`HandedWhileLeaving`), or made to take the wake-up above: it passes
//!   on what it was given (`pass_on`). A hand-off made it the owner: it takes the mutex and
//!   unlocks it, which hands it to the next waiter. A normal wake-up made it the awake waiter
//!   (WOKEN, already counted out): it clears WOKEN, and if the mutex is free takes and
//!   unlocks it, so that `unlock` wakes the next waiter as it would have.
//!
//! Since the count can now fall while a hand-off is under way, the waiter taking a hand-off
//! decides whether it is the last one (and so leaves starvation mode) on the word its CAS
//! replaces, not on a word it read before.
//!
//! So FIFO order, starvation mode and "no waiter stranded" hold as without timeouts: a waiter
//! that gives up is, to the others, one that took the mutex and released it at once, or one
//! that never came. A waiter woken before it looked at its deadline takes the wake-up and goes
//! on as usual (it may still lose the race for the mutex, queue again and give up then).
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
use std::time::{Duration, Instant};

use super::sema::Sema;
use super::waiter::{GiveUp, Outcome};
use crate::waiter::deadline_after;
use sched::debug::WaitReason;

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

/// How a contender's wait in `sema` ended (`RawMutex::park_waiter`).
enum Parked {
    /// The mutex was handed to it (starvation mode) and is its own.
    Owner,
    /// It was woken to compete for the mutex.
    Compete,
    /// Its wait gave up; it has left and owes the mutex nothing.
    GaveUp,
}

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
            sema: Sema::new(WaitReason::Mutex),
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
        self.lock_slow(old, &GiveUp::NEVER);
    }

    /// Locks as [`lock`](RawMutex::lock) does, giving up when `give_up` is due (module docs,
    /// "Giving up"); true if locked.
    pub(crate) fn lock_until(&self, give_up: &GiveUp<'_>) -> bool {
        let Err(old) = self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
        else {
            return true;
        };
        if self.try_lock() {
            return true;
        }
        !give_up.is_due() && self.lock_slow(old, give_up)
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

    /// Spins, then counts itself a waiter and waits in `sema`, until it takes the lock (true)
    /// or gives up (false).
    #[cold]
    fn lock_slow(&self, mut old: u32, give_up: &GiveUp<'_>) -> bool {
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
                return true; // Our CAS took the lock.
            }
            match self.park_waiter(&mut waiting_since, &mut starving, give_up) {
                Parked::Owner => return true,
                Parked::GaveUp => return false,
                Parked::Compete => {}
            }
            awoke = true;
            spins = 0;
            old = self.state.load(Ordering::Relaxed);
        }
    }

    /// We are counted as a waiter: park until `unlock` wakes us (at the head of the queue if
    /// we waited before: Go's `queueLifo`) or `give_up` is due. Notes whether we have now
    /// waited long enough to starve. `Owner` if the mutex was handed to us (starvation mode)
    /// and is now ours; `Compete` if we were woken to compete for it; `GaveUp` if we gave up
    /// and settled what we owed (module docs, "Giving up").
    fn park_waiter(
        &self,
        waiting_since: &mut Option<env::Stamp>,
        starving: &mut bool,
        give_up: &GiveUp<'_>,
    ) -> Parked {
        let requeue = waiting_since.is_some();
        let since = *waiting_since.get_or_insert_with(env::now);
        let outcome = self.sema.acquire_until(requeue, give_up);
        *starving = *starving || env::waited(since) > STARVATION_THRESHOLD;
        match outcome {
            Outcome::Woken => {}
            Outcome::Withdrew => {
                self.uncount(*starving);
                return Parked::GaveUp;
            }
            Outcome::HandedWhileLeaving => {
                self.pass_on(*starving);
                return Parked::GaveUp;
            }
        }
        let old = self.state.load(Ordering::Relaxed);
        if old & STARVING == 0 {
            return Parked::Compete;
        }
        self.take_handoff(old, *starving);
        Parked::Owner
    }

    /// A counted waiter that gave up and left `sema`'s queue unwoken takes itself out of the
    /// waiter count, or, if a wake-up is on its way with nobody else to take it, takes that
    /// and passes it on (module docs, "Giving up").
    fn uncount(&self, starving: bool) {
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            let waiters = old >> WAITER_SHIFT;
            let handoff_in_transit = old & (LOCKED | STARVING) == STARVING;
            if waiters == 0 || (handoff_in_transit && waiters == 1) {
                self.sema.acquire(true);
                self.pass_on(starving);
                return;
            }
            let mut new = old - ONE_WAITER;
            if waiters == 1 {
                // The last waiter leaves a held mutex: `unlock` must not hand it to nobody.
                new &= !STARVING;
            }
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => old = actual,
            }
        }
    }

    /// A waiter that gave up after `sema` woke it passes on what the wake-up gave it: in
    /// starvation mode the mutex itself (take it, then unlock: the next waiter gets it); in
    /// normal mode the awake waiter's WOKEN (clear it; if the mutex is free, take and unlock
    /// it, so that `unlock` wakes the next waiter).
    fn pass_on(&self, starving: bool) {
        let mut old = self.state.load(Ordering::Relaxed);
        if old & STARVING != 0 {
            self.take_handoff(old, starving);
            self.unlock();
            return;
        }
        loop {
            debug_assert!(old & WOKEN != 0, "sync: inconsistent mutex state");
            let free = old & (LOCKED | STARVING) == 0;
            let new = match free {
                true => (old | LOCKED) & !WOKEN,
                false => old & !WOKEN,
            };
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if free => return self.unlock(),
                Ok(_) => return,
                Err(actual) => old = actual,
            }
        }
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
    /// did not wait long. "Last" is decided on the word the CAS replaces: a waiter that gives
    /// up may lower the count at any moment, and a starving mutex must keep a waiter.
    fn take_handoff(&self, mut old: u32, starving: bool) {
        loop {
            debug_assert!(
                old & (LOCKED | WOKEN) == 0 && old >> WAITER_SHIFT != 0,
                "sync: inconsistent mutex state"
            );
            let mut new = old + LOCKED - ONE_WAITER;
            if !starving || old >> WAITER_SHIFT == 1 {
                new &= !STARVING;
            }
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => old = actual,
            }
        }
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

    /// Locks the mutex, waiting at most `timeout`; `None` if it did not come free in time. A
    /// timeout too long to be an `Instant` (`Duration::MAX`) waits without one. Go has no
    /// timed lock; the module source says why gort has one and how a waiter that gives up
    /// leaves without disturbing the others.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = chan::sync::Mutex::new(0);
    /// let held = m.lock();
    /// assert!(m.lock_timeout(Duration::from_millis(1)).is_none());
    /// drop(held);
    /// *m.lock_timeout(Duration::from_millis(1)).unwrap() += 1;
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        self.lock_until(deadline_after(timeout), &|| false)
    }

    /// Locks the mutex, waiting until `deadline` at the latest; `None` if it did not come
    /// free in time. A waiter that gives up leaves the queue at once; if the mutex was handed
    /// to it as it gave up, it passes the mutex on to the next waiter. FIFO hand-off in
    /// starvation mode is kept. A deadline already past only tries.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::{Duration, Instant};
    /// let m = Arc::new(chan::sync::Mutex::new(()));
    /// let held = m.lock();
    /// let m2 = m.clone();
    /// let late = sched::spawn(move || {
    ///     m2.lock_deadline(Instant::now() + Duration::from_millis(5)).is_some()
    /// });
    /// assert!(!late.join().unwrap());
    /// drop(held);
    /// assert_eq!(m.queue_len(), 0);
    /// ```
    pub fn lock_deadline(&self, deadline: Instant) -> Option<MutexGuard<'_, T>> {
        self.lock_until(Some(deadline), &|| false)
    }

    /// Locks the mutex, waiting until `deadline` (if any) and for as long as `stop()` returns
    /// false; `None` if it gave up. The hook for a cancellable wait (`gort`'s
    /// `context::lock`): `stop` is called by the waiter only, before it parks and each time
    /// it is unparked, so whoever makes `stop` true must then unpark the waiter (its
    /// `sched::unparker()`, taken before the call) for it to notice before the deadline. An
    /// unpark that lands after the wait is a stray token: the waiter's next park returns at
    /// once, which every park loop tolerates. Giving up is as in
    /// [`lock_deadline`](Mutex::lock_deadline).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// let m = Arc::new(chan::sync::Mutex::new(()));
    /// let stop = Arc::new(AtomicBool::new(false));
    /// let held = m.lock();
    /// let (waiter_tx, waiter_rx) = std::sync::mpsc::channel();
    /// let h = {
    ///     let (m, stop) = (m.clone(), stop.clone());
    ///     sched::spawn(move || {
    ///         waiter_tx.send(sched::unparker()).unwrap();
    ///         m.lock_until(None, &|| stop.load(Ordering::Acquire)).is_some()
    ///     })
    /// };
    /// let waiter = waiter_rx.recv().unwrap();
    /// stop.store(true, Ordering::Release);
    /// waiter.unpark();
    /// assert!(!h.join().unwrap());
    /// drop(held);
    /// ```
    pub fn lock_until(
        &self,
        deadline: Option<Instant>,
        stop: &dyn Fn() -> bool,
    ) -> Option<MutexGuard<'_, T>> {
        let give_up = GiveUp {
            deadline,
            stop: Some(stop),
        };
        self.raw.lock_until(&give_up).then(|| MutexGuard::new(self))
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

    /// Waits that give up: a timeout on a held mutex, a past deadline, a stop check.
    #[test]
    fn a_lock_that_gives_up_leaves_nothing_behind() {
        crate::test_harness::each_procs("a_lock_that_gives_up_leaves_nothing_behind", |_| {
            let m = Arc::new(Mutex::new(0u32));
            let held = m.lock();
            let start = Instant::now();
            assert!(m.lock_timeout(Duration::from_millis(5)).is_none());
            assert!(start.elapsed() >= Duration::from_millis(5));
            assert!(m.lock_deadline(Instant::now()).is_none());
            let stop = Arc::new(AtomicBool::new(false));
            let (tx, rx) = std::sync::mpsc::channel();
            let h = {
                let (m, stop) = (m.clone(), stop.clone());
                sched::spawn(move || {
                    tx.send(sched::unparker()).unwrap();
                    m.lock_until(None, &|| stop.load(Ordering::Acquire))
                        .is_some()
                })
            };
            let waiter = rx.recv().unwrap();
            crate::test_harness::wait_until("the waiter to queue", || m.queue_len() == 1);
            stop.store(true, Ordering::Release);
            waiter.unpark();
            assert!(!h.join().unwrap());
            assert_eq!(m.raw().state(), LOCKED, "only the holder's bit is left");
            drop(held);
            assert_eq!((m.raw().state(), m.queue_len()), (0, 0));
            *m.lock_timeout(Duration::from_millis(5)).unwrap() += 1;
            assert_eq!(*m.lock(), 1);
        });
    }

    /// Holders that keep the mutex over 1 ms (so it turns starving) against contenders with
    /// random timeouts from 0 to 3 ms: mutual exclusion holds, every contender returns, and
    /// the mutex ends free, in normal mode, with nobody counted or queued.
    #[test]
    fn random_timeouts_keep_the_state_word_consistent() {
        crate::test_harness::each_procs("random_timeouts_keep_the_state_word_consistent", |_| {
            let m = Arc::new(Mutex::new(0u64));
            let inside = Arc::new(AtomicBool::new(false));
            let saw_starving = Arc::new(AtomicBool::new(false));
            let hs: Vec<_> = (0..40u64)
                .map(|i| {
                    let (m, inside, saw) = (m.clone(), inside.clone(), saw_starving.clone());
                    sched::spawn(move || {
                        let mut seed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                        let mut got = 0u64;
                        for _ in 0..15 {
                            seed ^= seed << 13;
                            seed ^= seed >> 7;
                            seed ^= seed << 17;
                            let t = Duration::from_micros((seed >> 8) % 3000);
                            let Some(mut g) = m.lock_timeout(t) else {
                                continue;
                            };
                            assert!(!inside.swap(true, Ordering::SeqCst), "two inside");
                            if m.raw().state() & STARVING != 0 {
                                saw.store(true, Ordering::Relaxed);
                            }
                            if i % 4 == 0 {
                                sleep(Duration::from_micros(1200));
                            } else {
                                sched::yield_now();
                            }
                            *g += 1;
                            got += 1;
                            inside.store(false, Ordering::SeqCst);
                        }
                        got
                    })
                })
                .collect();
            let got: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(*m.lock(), got);
            assert_eq!((m.raw().state(), m.queue_len()), (0, 0));
            println!(
                "starvation mode seen: {}",
                saw_starving.load(Ordering::Relaxed)
            );
        });
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

/// loom models of the mode switch (module docs, "Loom"), in their own file.
#[cfg(all(test, loom))]
#[path = "mutex_loom_models.rs"]
mod loom_models;
