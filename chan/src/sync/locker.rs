//! [`Locker`]: one trait for "a lock", Go's `sync.Locker`, so that code taking any lock (a
//! [`Cond`] built with [`Cond::with_lock`]) works with a [`Mutex`], either side of an
//! [`RwMutex`], or a lock of the user's own.
//!
//! Go's `Locker` is `Lock()` plus `Unlock()`, and nothing stops a caller from unlocking a lock
//! it does not hold. Here `lock` returns a guard, and dropping the guard is the only way to
//! unlock: safe code can release only what it holds.
//!
//! The implementations for this crate's locks live here rather than beside each lock:
//! - [`Mutex<T>`]: the mutex itself.
//! - [`RwMutex<T>`]: its write lock (Go's `*RWMutex` is a `Locker` through `Lock`/`Unlock`).
//! - [`ReadLocker`]: its read lock (Go's `RWMutex.RLocker()`), made by
//!   [`RwMutex::read_locker`] (borrowing) or [`ReadLocker::new`] over an `Arc` (owning).
//! - `&L` and `Arc<L>` for any `L: Locker`, so a lock can be borrowed or shared.
//!
//! [`Cond`]: super::Cond
//! [`Cond::with_lock`]: super::Cond::with_lock

use std::ops::Deref;
use std::sync::Arc;

use super::mutex::{Mutex, MutexGuard};
use super::rwmutex::{RwMutex, RwMutexReadGuard, RwMutexWriteGuard};

/// A lock, as Go's `sync.Locker`: [`lock`](Locker::lock) waits until the lock is free, takes
/// it and returns a guard; dropping the guard unlocks.
///
/// Implemented by [`Mutex`], by [`RwMutex`] (the write lock), by [`ReadLocker`] (the read lock
/// of an `RwMutex`), and through `&L` and `Arc<L>`. A lock of your own implements it by naming
/// what its guard gives access to (`Data`; `()` for a lock that guards no data of its own).
///
/// ```
/// use chan::sync::{Locker, Mutex, RwMutex};
///
/// /// Adds one to the number behind any lock whose guard can write.
/// fn bump<L>(lock: &L)
/// where
///     L: Locker<Data = u32>,
///     for<'a> L::Guard<'a>: std::ops::DerefMut,
/// {
///     *lock.lock() += 1;
/// }
///
/// let m = Mutex::new(1);
/// bump(&m);
/// let rw = RwMutex::new(1);
/// bump(&rw); // the write lock
/// assert_eq!(*m.lock() + *rw.read(), 4);
/// ```
pub trait Locker {
    /// What a guard gives access to.
    type Data: ?Sized;

    /// Proof that the lock is held: reads (or writes) the data, and unlocks when dropped.
    type Guard<'a>: Deref<Target = Self::Data>
    where
        Self: 'a;

    /// Takes the lock, parking the caller until it is free (Go's `Lock`); the guard's drop is
    /// Go's `Unlock`.
    ///
    /// ```
    /// use chan::sync::{Locker, Mutex};
    ///
    /// let m = Mutex::new(5);
    /// let guard = Locker::lock(&m);
    /// assert_eq!(*guard, 5);
    /// ```
    fn lock(&self) -> Self::Guard<'_>;
}

impl<T: ?Sized> Locker for Mutex<T> {
    type Data = T;
    type Guard<'a>
        = MutexGuard<'a, T>
    where
        Self: 'a;

    fn lock(&self) -> MutexGuard<'_, T> {
        Mutex::lock(self)
    }
}

impl<T: ?Sized> Locker for RwMutex<T> {
    type Data = T;
    type Guard<'a>
        = RwMutexWriteGuard<'a, T>
    where
        Self: 'a;

    fn lock(&self) -> RwMutexWriteGuard<'_, T> {
        self.write()
    }
}

impl<L: Locker + ?Sized> Locker for &L {
    type Data = L::Data;
    type Guard<'a>
        = L::Guard<'a>
    where
        Self: 'a;

    fn lock(&self) -> L::Guard<'_> {
        (**self).lock()
    }
}

impl<L: Locker + ?Sized> Locker for Arc<L> {
    type Data = L::Data;
    type Guard<'a>
        = L::Guard<'a>
    where
        Self: 'a;

    fn lock(&self) -> L::Guard<'_> {
        (**self).lock()
    }
}

/// The read side of an [`RwMutex`] as a [`Locker`] (Go's `RWMutex.RLocker()`): its `lock`
/// takes a read lock. `M` is how it reaches the `RwMutex`: `&RwMutex<T>` (from
/// [`RwMutex::read_locker`]) or `Arc<RwMutex<T>>` (from [`ReadLocker::new`]).
///
/// With a [`Cond`](super::Cond), it lets many readers wait for a change that a writer makes
/// under the write lock.
///
/// ```
/// use chan::sync::{Locker, RwMutex};
///
/// let rw = RwMutex::new(7);
/// let readers = rw.read_locker();
/// let (a, b) = (readers.lock(), readers.lock()); // read locks: shared
/// assert_eq!(*a + *b, 14);
/// ```
#[derive(Debug, Clone)]
pub struct ReadLocker<M> {
    rw: M,
}

impl<M> ReadLocker<M> {
    /// The read side of the `RwMutex` that `rw` reaches (a `Locker` when `M` is
    /// `Arc<RwMutex<T>>` or `&RwMutex<T>`).
    ///
    /// ```
    /// use chan::sync::{Locker, ReadLocker, RwMutex};
    /// use std::sync::Arc;
    ///
    /// let rw = Arc::new(RwMutex::new(1));
    /// let readers = ReadLocker::new(rw.clone());
    /// *rw.write() = 2;
    /// assert_eq!(*readers.lock(), 2);
    /// ```
    pub fn new(rw: M) -> ReadLocker<M> {
        ReadLocker { rw }
    }

    /// How this reaches the `RwMutex` (for its write side, say).
    ///
    /// ```
    /// let rw = chan::sync::RwMutex::new(1);
    /// let readers = rw.read_locker();
    /// *readers.get_ref().write() = 3;
    /// assert_eq!(*rw.read(), 3);
    /// ```
    pub fn get_ref(&self) -> &M {
        &self.rw
    }

    /// Gives back what it was made from.
    ///
    /// ```
    /// let rw = chan::sync::RwMutex::new(1);
    /// let back: &chan::sync::RwMutex<i32> = rw.read_locker().into_inner();
    /// assert_eq!(*back.read(), 1);
    /// ```
    pub fn into_inner(self) -> M {
        self.rw
    }
}

impl<T: ?Sized> Locker for ReadLocker<&RwMutex<T>> {
    type Data = T;
    type Guard<'a>
        = RwMutexReadGuard<'a, T>
    where
        Self: 'a;

    fn lock(&self) -> RwMutexReadGuard<'_, T> {
        self.rw.read()
    }
}

impl<T: ?Sized> Locker for ReadLocker<Arc<RwMutex<T>>> {
    type Data = T;
    type Guard<'a>
        = RwMutexReadGuard<'a, T>
    where
        Self: 'a;

    fn lock(&self) -> RwMutexReadGuard<'_, T> {
        self.rw.read()
    }
}

impl<T: ?Sized> RwMutex<T> {
    /// The read side of this `RwMutex` as a [`Locker`] (Go's `RLocker`): its `lock` takes a
    /// read lock. To hold it beside the `RwMutex` in an `Arc`, use [`ReadLocker::new`].
    ///
    /// ```
    /// use chan::sync::{Cond, RwMutex};
    ///
    /// let rw = RwMutex::new(0);
    /// let cond = Cond::with_lock(rw.read_locker());
    /// let seen = cond.lock(); // a read lock, through the Cond
    /// assert_eq!(*seen, 0);
    /// ```
    pub fn read_locker(&self) -> ReadLocker<&RwMutex<T>> {
        ReadLocker::new(self)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Takes `lock` through the trait, for tests that must not hit an inherent `lock`.
    fn take<L: Locker>(lock: &L) -> L::Guard<'_> {
        lock.lock()
    }

    #[test]
    fn a_mutex_locks_and_unlocks_through_the_trait() {
        let m = Mutex::new(1);
        let g = take(&m);
        assert!(m.try_lock().is_none(), "held through the trait");
        drop(g);
        assert!(m.try_lock().is_some(), "unlocked by the guard's drop");
    }

    #[test]
    fn an_rwmutex_locks_for_writing_through_the_trait() {
        let rw = RwMutex::new(1);
        let g = take(&rw);
        assert!(rw.try_read().is_none(), "the write lock keeps readers out");
        drop(g);
        assert!(rw.try_write().is_some());
    }

    #[test]
    fn a_read_locker_shares_and_keeps_writers_out() {
        let rw = RwMutex::new(1);
        let readers = rw.read_locker();
        let (a, b) = (take(&readers), take(&readers));
        assert!(rw.try_write().is_none(), "readers keep the writer out");
        assert!(rw.try_read().is_some(), "readers share");
        drop((a, b));
        assert!(rw.try_write().is_some());
    }

    #[test]
    fn an_owning_read_locker_reaches_the_same_rwmutex() {
        let rw = Arc::new(RwMutex::new(String::from("a")));
        let readers = Arc::new(ReadLocker::new(rw.clone()));
        rw.write().push('b');
        assert_eq!(&*take(&readers), "ab");
        assert_eq!(&*take(&&*readers), "ab");
        assert!(Arc::ptr_eq(readers.get_ref(), &rw));
    }
}
