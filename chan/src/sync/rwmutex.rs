//! [`RwMutex`]: Go's `sync.RWMutex` (sync/rwmutex.go), read as the design and written anew.
//!
//! State:
//! - `writer`: a [`RawMutex`] that writers take first, so at most one writer is pending or
//!   active at a time.
//! - `readers`: active readers, minus `MAX_READERS` while a writer is pending or active. A
//!   reader increments it; if the result is negative a writer is pending, and the reader
//!   waits on `reader_sema` (writer preference: a pending writer blocks new readers).
//! - `departing`: readers the pending writer still waits for. The writer adds the number of
//!   readers that were active when it announced itself; each of those readers decrements it
//!   on its way out, and the one that brings it to zero releases `writer_sema`. Either side
//!   may get there first, so the count can be negative for a moment.
//!
//! Invariants: while a writer holds the lock, `readers` is in `-MAX_READERS..0` and counts the
//! readers queued (or about to queue) on `reader_sema`; write-unlock adds `MAX_READERS` back
//! and releases exactly that many permits, then unlocks `writer`.
//!
//! Memory ordering: every change of `readers` and `departing` is an acquire-release RMW, so a
//! reader that gets in synchronises with the last write-unlock, and a writer with every
//! departed reader (directly through the RMW chain, or through `writer_sema`).

use crate::loom::lazy::AtomicI32;
use crate::loom::Ordering;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use super::mutex::RawMutex;
use super::sema::Sema;
use sched::debug::WaitReason;

/// Readers allowed at once; also the bias a pending writer subtracts from `readers`.
const MAX_READERS: i32 = 1 << 30;

/// A reader/writer lock protecting a `T`, with Go's `sync.RWMutex` algorithm: any number of
/// readers or one writer; a writer waiting for the lock blocks new readers (so writers are not
/// starved); waiting parks the goroutine (or plain thread).
///
/// As in Go, a goroutine must not take a read lock it already holds if a writer may arrive
/// in between (the second `read` waits for the writer, which waits for the first `read`).
/// No poisoning (see the [module docs](super)).
///
/// ```
/// use chan::sync::RwMutex;
/// use std::sync::Arc;
///
/// let config = Arc::new(RwMutex::new(String::from("v1")));
/// let reader = {
///     let config = config.clone();
///     sched::spawn(move || config.read().len())
/// };
/// assert_eq!(reader.join().unwrap(), 2);
/// config.write().push_str(".1");
/// assert_eq!(*config.read(), "v1.1");
/// ```
pub struct RwMutex<T: ?Sized> {
    writer: RawMutex,
    writer_sema: Sema,
    reader_sema: Sema,
    readers: AtomicI32,
    departing: AtomicI32,
    data: UnsafeCell<T>,
}

// SAFETY: readers on several threads share `&T` (needs `T: Sync`); a writer gets `&mut T`
// from whichever thread it runs on (needs `T: Send`). The lock guarantees the two never
// overlap. This is std's `RwLock` bound.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwMutex<T> {}

impl<T> RwMutex<T> {
    /// A new unlocked `RwMutex`; `const`, usable in a `static`.
    ///
    /// ```
    /// static TABLE: chan::sync::RwMutex<Vec<u32>> = chan::sync::RwMutex::new(Vec::new());
    /// TABLE.write().push(7);
    /// assert_eq!(TABLE.read()[0], 7);
    /// ```
    pub const fn new(value: T) -> RwMutex<T> {
        RwMutex {
            writer: RawMutex::new(),
            writer_sema: Sema::new(WaitReason::Mutex),
            reader_sema: Sema::new(WaitReason::RwMutexRead),
            readers: AtomicI32::new(0),
            departing: AtomicI32::new(0),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock and returns the data.
    ///
    /// ```
    /// assert_eq!(chan::sync::RwMutex::new(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwMutex<T> {
    /// Takes a read lock (Go's `RLock`), parking while a writer holds the lock or waits for it.
    ///
    /// ```
    /// let m = chan::sync::RwMutex::new(5);
    /// let (a, b) = (m.read(), m.read()); // readers share
    /// assert_eq!(*a + *b, 10);
    /// ```
    #[inline]
    pub fn read(&self) -> RwMutexReadGuard<'_, T> {
        if self.readers.fetch_add(1, Ordering::AcqRel) + 1 < 0 {
            // A writer is pending: it releases us when it unlocks.
            self.reader_sema.acquire(false);
        }
        RwMutexReadGuard {
            lock: self,
            _marker: PhantomData,
        }
    }

    /// Takes a read lock if no writer holds or waits for the lock (Go's `TryRLock`).
    ///
    /// ```
    /// let m = chan::sync::RwMutex::new(0);
    /// assert!(m.try_read().is_some());
    /// let w = m.write();
    /// assert!(m.try_read().is_none());
    /// drop(w);
    /// ```
    pub fn try_read(&self) -> Option<RwMutexReadGuard<'_, T>> {
        let mut c = self.readers.load(Ordering::Relaxed);
        loop {
            if c < 0 {
                return None;
            }
            match self
                .readers
                .compare_exchange_weak(c, c + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(RwMutexReadGuard {
                        lock: self,
                        _marker: PhantomData,
                    })
                }
                Err(actual) => c = actual,
            }
        }
    }

    /// Takes the write lock (Go's `Lock`): waits for other writers, announces itself (new
    /// readers now wait), then waits for the active readers to leave.
    ///
    /// ```
    /// let m = chan::sync::RwMutex::new(vec![1]);
    /// m.write().push(2);
    /// assert_eq!(*m.read(), [1, 2]);
    /// ```
    pub fn write(&self) -> RwMutexWriteGuard<'_, T> {
        self.writer.lock();
        let active = self.readers.fetch_sub(MAX_READERS, Ordering::AcqRel);
        if active != 0 && self.departing.fetch_add(active, Ordering::AcqRel) + active != 0 {
            self.writer_sema.acquire(false);
        }
        RwMutexWriteGuard {
            lock: self,
            _marker: PhantomData,
        }
    }

    /// Takes the write lock if it is free of writers and readers (Go's `TryLock`).
    ///
    /// ```
    /// let m = chan::sync::RwMutex::new(0);
    /// let r = m.read();
    /// assert!(m.try_write().is_none());
    /// drop(r);
    /// assert!(m.try_write().is_some());
    /// ```
    pub fn try_write(&self) -> Option<RwMutexWriteGuard<'_, T>> {
        if !self.writer.try_lock() {
            return None;
        }
        if self
            .readers
            .compare_exchange(0, -MAX_READERS, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            self.writer.unlock();
            return None;
        }
        Some(RwMutexWriteGuard {
            lock: self,
            _marker: PhantomData,
        })
    }

    /// Goroutines and threads queued (for the writer lock, or as readers or a writer waiting
    /// for the other side). For tests that check that a waiter leaves nothing behind; not part
    /// of the API.
    #[doc(hidden)]
    pub fn queue_len(&self) -> usize {
        self.writer.queue_len() + self.writer_sema.queue_len() + self.reader_sema.queue_len()
    }

    /// The data, through a unique borrow: no locking needed.
    ///
    /// ```
    /// let mut m = chan::sync::RwMutex::new(1);
    /// *m.get_mut() += 1;
    /// assert_eq!(*m.read(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn read_unlock(&self) {
        let r = self.readers.fetch_sub(1, Ordering::AcqRel) - 1;
        if r < 0 {
            self.read_unlock_slow(r);
        }
    }

    /// A writer is pending: if we are the last of the readers it waits for, let it in.
    #[cold]
    fn read_unlock_slow(&self, r: i32) {
        if r + 1 == 0 || r + 1 == -MAX_READERS {
            panic!("sync: RUnlock of unlocked RWMutex");
        }
        if self.departing.fetch_sub(1, Ordering::AcqRel) - 1 == 0 {
            self.writer_sema.release();
        }
    }

    fn write_unlock(&self) {
        let r = self.readers.fetch_add(MAX_READERS, Ordering::AcqRel) + MAX_READERS;
        if r >= MAX_READERS {
            panic!("sync: Unlock of unlocked RWMutex");
        }
        // `r` readers arrived while we were pending or active: let all of them in.
        self.reader_sema.release_many(r as usize);
        self.writer.unlock();
    }
}

impl<T: Default> Default for RwMutex<T> {
    fn default() -> RwMutex<T> {
        RwMutex::new(T::default())
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for RwMutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RwMutex");
        match self.try_read() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Shared access to an [`RwMutex`]'s data; releases the read lock when dropped.
///
/// ```
/// let m = chan::sync::RwMutex::new(1);
/// let guard: chan::sync::RwMutexReadGuard<'_, i32> = m.read();
/// assert_eq!(*guard, 1);
/// ```
#[must_use = "the read lock is released at once if the guard is not kept"]
pub struct RwMutexReadGuard<'a, T: ?Sized> {
    lock: &'a RwMutex<T>,
    /// Send/Sync as `&T`.
    _marker: PhantomData<&'a T>,
}

impl<T: ?Sized> Deref for RwMutexReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a read guard exists only while its read lock is held, so no writer (the
        // only source of `&mut T`) is active; readers only create shared references.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwMutexReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for RwMutexReadGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

/// Exclusive access to an [`RwMutex`]'s data; releases the write lock when dropped.
///
/// ```
/// let m = chan::sync::RwMutex::new(1);
/// let mut guard: chan::sync::RwMutexWriteGuard<'_, i32> = m.write();
/// *guard = 2;
/// drop(guard);
/// assert_eq!(*m.read(), 2);
/// ```
#[must_use = "the write lock is released at once if the guard is not kept"]
pub struct RwMutexWriteGuard<'a, T: ?Sized> {
    lock: &'a RwMutex<T>,
    /// Send/Sync as `&mut T`.
    _marker: PhantomData<&'a mut T>,
}

impl<T: ?Sized> Deref for RwMutexWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the write guard exists only while the write lock is held: no reader and no
        // other writer is active, so no other reference to the data exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwMutexWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; the unique borrow of the guard makes this borrow unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwMutexWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.write_unlock();
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for RwMutexWriteGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}
