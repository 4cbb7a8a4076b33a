//! [`Cond`]: Go's `sync.Cond` over this crate's [`Mutex`], with Go's FIFO wake order (Go's
//! `notifyList` wakes by ticket number, oldest first).
//!
//! `wait` queues the caller's `Waiter` at the tail *before* unlocking the user's mutex, so a
//! `signal` or `broadcast` made after the waiter's unlock (by anyone holding the mutex then)
//! finds it: no lost wake-up. `signal` pops the head; `broadcast` takes the whole queue.
//!
//! Invariant: `waiters` holds exactly the waiters that called `wait` and have neither been
//! popped nor left by unwinding (their guard unlinks them); each is popped (and woken) once.

use super::mutex::MutexGuard;
use super::shim::Lock;
use super::waiter::{unpark_all, wake_front, Queued, WaitList, Waiter};

/// A condition variable: goroutines wait for an event while holding a [`Mutex`], as Go's
/// `sync.Cond` (its `Wait` / `Signal` / `Broadcast`).
///
/// [`signal`](Cond::signal) wakes the goroutine that has waited longest;
/// [`broadcast`](Cond::broadcast) wakes all. Woken waiters re-lock the mutex before `wait`
/// returns, so, as in Go, callers re-check their condition in a loop (or use
/// [`wait_while`](Cond::wait_while)). A `Cond` may be used with different mutexes over time,
/// but all waiters of one wait should share one.
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
pub struct Cond {
    waiters: Lock<WaitList>,
}

impl Cond {
    /// A condition variable with no waiters; `const`, usable in a `static`.
    ///
    /// ```
    /// static EVENT: chan::sync::Cond = chan::sync::Cond::new();
    /// EVENT.signal(); // nobody waits: nothing happens
    /// ```
    pub const fn new() -> Cond {
        Cond {
            waiters: Lock::new(WaitList::new()),
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
        let me = Waiter::new(0);
        let mut list = self.waiters.lock();
        // SAFETY: `list` is `waiters` locked; the guard is dropped after it, before `me`.
        let queued = unsafe { Queued::push(&self.waiters, &mut list, |l| l, &me, false) };
        drop(list);
        let queued = PassOn { queued, cond: self };
        let mutex = guard.mutex;
        drop(guard);
        me.value().wait();
        drop(queued);
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

    /// Wakes the goroutine (or thread) that has waited longest, if any (Go's `Signal`). The
    /// caller need not hold the mutex.
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

    /// Goroutines and threads queued in `wait`. For tests that check that a waiter leaves
    /// nothing behind; not part of the API.
    #[doc(hidden)]
    pub fn queue_len(&self) -> usize {
        self.waiters.lock().len()
    }

    /// Wakes every waiting goroutine and thread, oldest first (Go's `Broadcast`).
    ///
    /// ```
    /// chan::sync::Cond::new().broadcast();
    /// ```
    #[doc(alias = "notify_all")]
    pub fn broadcast(&self) {
        let all: Vec<_> = {
            let mut list = self.waiters.lock();
            std::iter::from_fn(|| wake_front(&mut list)).collect()
        };
        unpark_all(all);
    }
}

/// A waiter queued in `wait`, around its guard: a signal it received as it unwound (a panic
/// inside park) is passed on to the next waiter, so no signal is lost to a waiter that is gone.
struct PassOn<'a> {
    queued: Queued<'a, WaitList>,
    cond: &'a Cond,
}

impl Drop for PassOn<'_> {
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

impl std::fmt::Debug for Cond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cond").finish_non_exhaustive()
    }
}
