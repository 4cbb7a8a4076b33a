//! [`Cond`]: Go's `sync.Cond`, with Go's FIFO wake order (Go's `notifyList` wakes by ticket
//! number, oldest first), in two shapes:
//!
//! - `Cond::new()` (a `Cond<()>`): waits with any [`Mutex`]'s guard, `cond.wait(guard)`.
//! - `Cond::with_lock(l)` (a `Cond<L>`, Go's `sync.NewCond(l)`): holds a [`Locker`] (a
//!   `Mutex`, an `RwMutex`'s read or write side, a borrow or an `Arc` of one), and
//!   [`Cond::lock`] takes it, returning a [`CondGuard`] whose [`wait`](CondGuard::wait)
//!   unlocks and relocks that lock. A `CondGuard` exists only while the `Cond`'s own lock is
//!   held, so a wait never unlocks a lock the caller does not hold (Go's `Wait` unlocks `c.L`
//!   whether or not the caller holds it).
//!
//! Either way, a wait queues the caller's `Waiter` at the tail *before* unlocking, so a
//! `signal` or `broadcast` made after the unlock (by anyone holding the lock then) finds it: no
//! lost wake-up. `signal` pops the head; `broadcast` takes the whole queue.
//!
//! Invariant: `waiters` holds exactly the waiters that called a wait and have neither been
//! popped nor left by unwinding (their guard unlinks them); each is popped (and woken) once.
//! The lock a `Cond<L>` holds is only ever taken through `L::lock`; the waiter queue's own
//! lock is never held while it is taken or released.
//!
//! [`Mutex`]: super::Mutex

use std::ops::{Deref, DerefMut};

use super::locker::Locker;
use super::mutex::MutexGuard;
use super::shim::Lock;
use super::waiter::{unpark_all, wait_node, wake_front, Queued, WaitList};
use sched::debug::WaitReason;

/// A condition variable: goroutines wait for an event while holding a lock, as Go's
/// `sync.Cond` (its `Wait` / `Signal` / `Broadcast`).
///
/// [`signal`](Cond::signal) wakes the goroutine that has waited longest;
/// [`broadcast`](Cond::broadcast) wakes all. Woken waiters re-lock before their wait
/// returns, so, as in Go, callers re-check their condition in a loop (or use a `wait_while`).
///
/// `Cond::new()` makes a `Cond<()>`, which waits with the guard of any [`Mutex`]
/// ([`wait`](Cond::wait)); it may be used with different mutexes over time, but all waiters of
/// one wait should share one. [`Cond::with_lock`] makes a `Cond<L>` that holds its lock `L`
/// (any [`Locker`]), as Go's `sync.NewCond(l)`; waiting then goes through the guard that
/// [`Cond::lock`] returns.
///
/// [`Mutex`]: super::Mutex
///
/// ```
/// use chan::sync::{Cond, Mutex};
/// use std::sync::Arc;
///
/// let state = Arc::new((Mutex::new(false), Cond::new()));
/// let waiter = {
///     let state = state.clone();
///     sched::spawn(move || {
///         let (ready, cond) = &*state;
///         let mut guard = ready.lock();
///         while !*guard {
///             guard = cond.wait(guard);
///         }
///     })
/// };
/// *state.0.lock() = true;
/// state.1.broadcast();
/// waiter.join().unwrap();
/// ```
pub struct Cond<L = ()> {
    waiters: Lock<WaitList>,
    lock: L,
}

impl Cond {
    /// A condition variable with no waiters and no lock of its own (waits take a mutex's
    /// guard); `const`, usable in a `static`.
    ///
    /// ```
    /// static EVENT: chan::sync::Cond = chan::sync::Cond::new();
    /// EVENT.signal(); // nobody waits: nothing happens
    /// ```
    pub const fn new() -> Cond {
        Cond {
            waiters: Lock::new(WaitList::new()),
            lock: (),
        }
    }

    /// Unlocks `guard`'s mutex, parks until signalled, then re-locks it and returns the new
    /// guard. Queues the caller before unlocking, so no signal sent after that is missed.
    ///
    /// ```
    /// use chan::sync::{Cond, Mutex};
    /// use std::sync::Arc;
    ///
    /// let pair = Arc::new((Mutex::new(0), Cond::new()));
    /// let p = pair.clone();
    /// let h = sched::spawn(move || {
    ///     *p.0.lock() = 1;
    ///     p.1.signal();
    /// });
    /// let mut g = pair.0.lock();
    /// while *g == 0 {
    ///     g = pair.1.wait(g);
    /// }
    /// drop(g);
    /// h.join().unwrap();
    /// ```
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let mutex = guard.mutex;
        self.park_unlocking(move || drop(guard));
        mutex.lock()
    }

    /// Waits while `condition` holds, re-checking it (with the mutex held) after each wake-up.
    ///
    /// ```
    /// use chan::sync::{Cond, Mutex};
    /// use std::sync::Arc;
    ///
    /// let pair = Arc::new((Mutex::new(Vec::new()), Cond::new()));
    /// let p = pair.clone();
    /// let h = sched::spawn(move || {
    ///     p.0.lock().push(1);
    ///     p.1.signal();
    /// });
    /// let items = pair.1.wait_while(pair.0.lock(), |items| items.is_empty());
    /// assert_eq!(*items, [1]);
    /// drop(items);
    /// h.join().unwrap();
    /// ```
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }
}

impl<L: Locker> Cond<L> {
    /// A condition variable that holds its lock, as Go's `sync.NewCond(l)`: `lock` may be a
    /// [`Mutex`](super::Mutex), an [`RwMutex`](super::RwMutex) (its write lock), a
    /// [`ReadLocker`](super::ReadLocker) (an `RwMutex`'s read lock), or a borrow or `Arc` of
    /// one. `const`, usable in a `static`.
    ///
    /// ```
    /// use chan::sync::{Cond, Mutex};
    ///
    /// static QUEUE: Cond<Mutex<Vec<u32>>> = Cond::with_lock(Mutex::new(Vec::new()));
    /// QUEUE.lock().push(1);
    /// QUEUE.signal();
    /// assert_eq!(*QUEUE.lock(), [1]);
    /// ```
    pub const fn with_lock(lock: L) -> Cond<L> {
        Cond {
            waiters: Lock::new(WaitList::new()),
            lock,
        }
    }

    /// Takes the `Cond`'s lock (Go's `c.L.Lock()`), parking until it is free, and returns the
    /// guard to read the data through and to [`wait`](CondGuard::wait) with.
    ///
    /// ```
    /// use chan::sync::{Cond, Mutex};
    /// use std::sync::Arc;
    ///
    /// let cond = Arc::new(Cond::with_lock(Mutex::new(0)));
    /// let setter = {
    ///     let cond = cond.clone();
    ///     sched::spawn(move || {
    ///         *cond.lock() = 42;
    ///         cond.signal();
    ///     })
    /// };
    /// let mut value = cond.lock();
    /// while *value == 0 {
    ///     value.wait();
    /// }
    /// assert_eq!(*value, 42);
    /// drop(value);
    /// setter.join().unwrap();
    /// ```
    pub fn lock(&self) -> CondGuard<'_, L> {
        CondGuard {
            cond: self,
            held: Some(self.lock.lock()),
        }
    }

    /// The lock itself (Go's `c.L`), to reach it other than through [`Cond::lock`] (the write
    /// side of an `RwMutex` whose read side the `Cond` holds, say).
    ///
    /// ```
    /// use chan::sync::{Cond, RwMutex};
    ///
    /// let rw = RwMutex::new(1);
    /// let cond = Cond::with_lock(rw.read_locker());
    /// *cond.locker().get_ref().write() = 2;
    /// assert_eq!(*cond.lock(), 2);
    /// ```
    pub fn locker(&self) -> &L {
        &self.lock
    }

    /// Consumes the `Cond` and returns its lock.
    ///
    /// ```
    /// let cond = chan::sync::Cond::with_lock(chan::sync::Mutex::new(3));
    /// assert_eq!(cond.into_locker().into_inner(), 3);
    /// ```
    pub fn into_locker(self) -> L {
        self.lock
    }
}

impl<L> Cond<L> {
    /// Wakes the goroutine (or thread) that has waited longest, if any (Go's `Signal`). The
    /// caller need not hold the lock.
    ///
    /// ```
    /// chan::sync::Cond::new().signal();
    /// ```
    #[doc(alias = "notify_one")]
    pub fn signal(&self) {
        let head = wake_front(&mut self.waiters.lock());
        if let Some(u) = head {
            u.unpark();
        }
    }

    /// Wakes every waiting goroutine and thread, oldest first (Go's `Broadcast`).
    ///
    /// ```
    /// chan::sync::Cond::new().broadcast();
    /// ```
    #[doc(alias = "notify_all")]
    pub fn broadcast(&self) {
        let all: sched::ChunkedDeque<_> = {
            let mut list = self.waiters.lock();
            std::iter::from_fn(|| wake_front(&mut list)).collect()
        };
        unpark_all(all);
    }

    /// Goroutines and threads queued in a wait. For tests that check that a waiter leaves
    /// nothing behind; not part of the API.
    #[doc(hidden)]
    pub fn queue_len(&self) -> usize {
        self.waiters.lock().len()
    }

    /// The wait itself: queues the caller, runs `unlock` (which releases the caller's lock),
    /// and parks until signalled. The caller relocks.
    fn park_unlocking(&self, unlock: impl FnOnce()) {
        wait_node!(me = 0, WaitReason::Cond);
        let mut list = self.waiters.lock();
        // SAFETY: `list` is `waiters` locked; the guard is dropped after it, before `me`.
        let queued = unsafe { Queued::push(&self.waiters, &mut list, |l| l, me, false) };
        drop(list);
        let queued = PassOn { queued, cond: self };
        unlock();
        me.value().wait();
        drop(queued);
    }
}

/// A held [`Cond`]'s lock, from [`Cond::lock`]: reads (and, if the lock's guard can, writes)
/// the data, waits on the `Cond` with [`wait`](CondGuard::wait), and unlocks when dropped.
///
/// It holds the `Cond`'s own lock for its whole life (apart from inside `wait`), so a wait
/// always unlocks a lock its caller holds.
///
/// ```
/// use chan::sync::{Cond, Mutex};
///
/// let cond = Cond::with_lock(Mutex::new(vec![1]));
/// let mut items = cond.lock();
/// items.push(2);
/// assert_eq!(*items, [1, 2]);
/// ```
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct CondGuard<'a, L: Locker + 'a> {
    cond: &'a Cond<L>,
    /// The lock's guard; `None` only inside `wait`, or after a wait that panicked before it
    /// relocked.
    held: Option<L::Guard<'a>>,
}

/// What a `CondGuard` says when used after a wait that panicked before relocking.
const NOT_RELOCKED: &str = "sync: CondGuard used after a wait that panicked before relocking";

impl<'a, L: Locker + 'a> CondGuard<'a, L> {
    /// Unlocks the `Cond`'s lock, parks until signalled, then relocks it (Go's `c.Wait()`).
    /// Queues the caller before unlocking, so no signal sent after that is missed. As in Go,
    /// a wake-up does not mean the condition holds: re-check it in a loop.
    ///
    /// ```
    /// use chan::sync::{Cond, RwMutex};
    /// use std::sync::Arc;
    ///
    /// // Readers wait under a read lock; the writer changes the state under the write lock.
    /// let rw = Arc::new(RwMutex::new(false));
    /// let cond = Arc::new(Cond::with_lock(chan::sync::ReadLocker::new(rw.clone())));
    /// let reader = {
    ///     let cond = cond.clone();
    ///     sched::spawn(move || {
    ///         let mut ready = cond.lock();
    ///         while !*ready {
    ///             ready.wait();
    ///         }
    ///     })
    /// };
    /// *rw.write() = true;
    /// cond.broadcast();
    /// reader.join().unwrap();
    /// ```
    pub fn wait(&mut self) {
        let held = self.held.take().expect(NOT_RELOCKED);
        self.cond.park_unlocking(move || drop(held));
        self.held = Some(self.cond.lock.lock());
    }

    /// Waits while `condition` holds, re-checking it (with the lock held) after each wake-up.
    ///
    /// ```
    /// use chan::sync::{Cond, Mutex};
    /// use std::sync::Arc;
    ///
    /// let cond = Arc::new(Cond::with_lock(Mutex::new(0)));
    /// let c = cond.clone();
    /// let h = sched::spawn(move || {
    ///     *c.lock() = 3;
    ///     c.broadcast();
    /// });
    /// let mut n = cond.lock();
    /// n.wait_while(|n| *n < 3);
    /// assert_eq!(*n, 3);
    /// drop(n);
    /// h.join().unwrap();
    /// ```
    pub fn wait_while(&mut self, mut condition: impl FnMut(&L::Data) -> bool) {
        while condition(&**self) {
            self.wait();
        }
    }

    /// The `Cond` this guard holds the lock of.
    ///
    /// ```
    /// let cond = chan::sync::Cond::with_lock(chan::sync::Mutex::new(()));
    /// let g = cond.lock();
    /// assert!(std::ptr::eq(g.cond(), &cond));
    /// ```
    pub fn cond(&self) -> &'a Cond<L> {
        self.cond
    }
}

impl<'a, L: Locker + 'a> Deref for CondGuard<'a, L> {
    type Target = L::Data;

    fn deref(&self) -> &L::Data {
        self.held.as_ref().expect(NOT_RELOCKED)
    }
}

impl<'a, L: Locker + 'a> DerefMut for CondGuard<'a, L>
where
    L::Guard<'a>: DerefMut,
{
    fn deref_mut(&mut self) -> &mut L::Data {
        self.held.as_mut().expect(NOT_RELOCKED)
    }
}

impl<'a, L: Locker + 'a> std::fmt::Debug for CondGuard<'a, L>
where
    L::Data: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.held {
            Some(held) => std::fmt::Debug::fmt(&**held, f),
            None => f.write_str("<not relocked>"),
        }
    }
}

/// A waiter queued in a wait, around its guard: a signal it received as it unwound (a panic
/// inside park) is passed on to the next waiter, so no signal is lost to a waiter that is gone.
struct PassOn<'a, L> {
    queued: Queued<'a, WaitList>,
    cond: &'a Cond<L>,
}

impl<L> Drop for PassOn<'_, L> {
    fn drop(&mut self) {
        if std::thread::panicking() && !crate::shim::model_torn_down() && self.queued.woken() {
            self.cond.signal();
        }
    }
}

impl Default for Cond {
    fn default() -> Cond {
        Cond::new()
    }
}

impl<L> std::fmt::Debug for Cond<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cond").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! Each test runs bounded in time (`testkit::bounded`); waits for the other side to be
    //! parked are `testkit::wait_until` (bounded too).
    use super::*;
    use crate::sync::{Mutex, ReadLocker, RwMutex};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use testkit::{bounded, wait_until};

    #[test]
    fn a_wait_through_the_guard_unlocks_and_relocks_the_conds_mutex() {
        bounded("cond guard wait", || {
            let cond = Arc::new(Cond::with_lock(Mutex::new(0)));
            let c = cond.clone();
            let waiter = sched::spawn(move || {
                let mut n = c.lock();
                *n = 1;
                while *n < 2 {
                    n.wait();
                }
                *n = 3;
            });
            wait_until("waiter parked", || {
                *cond.lock() == 1 && cond.queue_len() == 1
            });
            // The waiter is parked with the mutex unlocked: we can take it.
            *cond.lock() = 2;
            cond.signal();
            waiter.join().unwrap();
            assert_eq!(*cond.lock(), 3, "the waiter relocked before writing");
            assert_eq!(cond.queue_len(), 0);
        });
    }

    #[test]
    fn many_readers_wait_under_read_locks_for_one_writer() {
        bounded("read-locker cond", || {
            const READERS: usize = 8;
            let rw = Arc::new(RwMutex::new(0u32));
            let cond = Arc::new(Cond::with_lock(ReadLocker::new(rw.clone())));
            let saw = Arc::new(AtomicUsize::new(0));
            let readers: Vec<_> = (0..READERS)
                .map(|_| {
                    let (cond, saw) = (cond.clone(), saw.clone());
                    sched::spawn(move || {
                        let mut v = cond.lock();
                        v.wait_while(|v| *v == 0);
                        assert_eq!(*v, 7);
                        saw.fetch_add(1, Ordering::Relaxed);
                    })
                })
                .collect();
            wait_until("readers parked", || cond.queue_len() == READERS);
            // Every reader waits with its read lock released, so the writer gets in.
            *rw.write() = 7;
            cond.broadcast();
            for r in readers {
                r.join().unwrap();
            }
            assert_eq!(saw.load(Ordering::Relaxed), READERS);
            assert!(rw.try_write().is_some(), "no read lock left behind");
        });
    }

    #[test]
    fn a_borrowed_lock_works_as_an_owned_one() {
        let m = Mutex::new(5);
        let cond = Cond::with_lock(&m);
        *cond.lock() += 1;
        assert_eq!(*m.lock(), 6);
        assert!(std::ptr::eq(*cond.locker(), &m));
    }

    #[test]
    fn signal_and_broadcast_with_nobody_waiting_do_nothing() {
        let cond = Cond::with_lock(Mutex::new(()));
        cond.signal();
        cond.broadcast();
        assert_eq!(cond.queue_len(), 0);
        drop(cond.lock());
    }
}
