//! [`Semaphore`]: a counting semaphore with FIFO waiters (the semantics of Go's
//! `golang.org/x/sync/semaphore.Weighted`, without its fixed capacity).
//!
//! State: one word, `permits | QUEUED`, plus a queue of waiters (each with the permits it
//! needs) under a lock.
//!
//! Invariants:
//! - `QUEUED` is set exactly when the queue is non-empty; it changes only under the queue
//!   lock.
//! - While `QUEUED` is clear, `acquire`/`release` take the fast path: one CAS on the word,
//!   no lock. While it is set, the permits change only under the lock, so a releaser can
//!   hand them to the head waiters (FIFO, head of line blocks: a large request at the head
//!   holds back smaller ones behind it, so it cannot starve).
//! - A waiter popped from the queue has been given exactly the permits it asked for.
//!
//! No lost wake-up: an acquirer decides to queue (setting `QUEUED` by CAS from the word it
//! checked) under the lock; a releaser that finds `QUEUED` set takes the lock before adding
//! permits, so it sees the queue; one that finds it clear adds with a CAS that fails if an
//! acquirer set it meanwhile.
//!
//! Memory ordering: permits travel by acquire/release CAS on the word, or under the lock and
//! through the waiter's woken flag; either way a release happens before the acquire that
//! takes its permits.

use super::shim::Lock;
use super::waiter::{unpark_all, wake_front, Queued, WaitList, Waiter};
use crate::loom::{AtomicUsize, Ordering};

const QUEUED: usize = 1 << (usize::BITS - 1);
/// More permits than this cannot be held at once.
const MAX_PERMITS: usize = QUEUED - 1;

/// A counting semaphore: [`acquire`](Semaphore::acquire) takes a permit, parking until one is
/// free; [`release`](Semaphore::release) returns one. Waiters are served in arrival order,
/// including those asking for several permits at once.
///
/// ```
/// use chan::sync::Semaphore;
/// use std::sync::Arc;
///
/// let slots = Arc::new(Semaphore::new(2)); // at most two at a time
/// let hs: Vec<_> = (0..6)
///     .map(|i| {
///         let slots = slots.clone();
///         sched::spawn(move || {
///             slots.acquire();
///             let r = i * 2;
///             slots.release();
///             r
///         })
///     })
///     .collect();
/// let sum: i32 = hs.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, 30);
/// assert_eq!(slots.available(), 2);
/// ```
pub struct Semaphore {
    state: AtomicUsize,
    queue: Lock<WaitList>,
}

impl Semaphore {
    /// A semaphore holding `permits` permits.
    ///
    /// # Panics
    ///
    /// If `permits` exceeds `usize::MAX / 2`.
    ///
    /// ```
    /// assert_eq!(chan::sync::Semaphore::new(3).available(), 3);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        assert!(permits <= MAX_PERMITS, "sync: too many semaphore permits");
        Semaphore {
            state: AtomicUsize::new(permits),
            queue: Lock::new(WaitList::new()),
        }
    }

    /// Takes one permit, parking until one is available.
    ///
    /// ```
    /// let s = chan::sync::Semaphore::new(1);
    /// s.acquire();
    /// assert_eq!(s.available(), 0);
    /// ```
    pub fn acquire(&self) {
        self.acquire_many(1);
    }

    /// Takes `n` permits at once, parking until they are available and every earlier waiter
    /// has been served. Asking for more than will ever be released parks forever.
    ///
    /// ```
    /// let s = chan::sync::Semaphore::new(5);
    /// s.acquire_many(3);
    /// assert_eq!(s.available(), 2);
    /// ```
    pub fn acquire_many(&self, n: usize) {
        if !self.try_acquire_many(n) {
            self.acquire_slow(n);
        }
    }

    /// Takes one permit if that needs no waiting (and nobody waits already).
    ///
    /// ```
    /// let s = chan::sync::Semaphore::new(1);
    /// assert!(s.try_acquire());
    /// assert!(!s.try_acquire());
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are available now and nobody waits already.
    ///
    /// ```
    /// let s = chan::sync::Semaphore::new(2);
    /// assert!(!s.try_acquire_many(3));
    /// assert!(s.try_acquire_many(2));
    /// ```
    pub fn try_acquire_many(&self, n: usize) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & QUEUED == 0 && s >= n {
            match self
                .state
                .compare_exchange_weak(s, s - n, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => s = actual,
            }
        }
        false
    }

    #[cold]
    fn acquire_slow(&self, n: usize) {
        let me = Waiter::new(n);
        let mut queue = self.queue.lock();
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let (next, done) = match s & QUEUED == 0 && s >= n {
                true => (s - n, true),
                false => (s | QUEUED, false),
            };
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if done => return,
                Ok(_) => break,
                Err(actual) => s = actual,
            }
        }
        // SAFETY: `queue` is `self.queue` locked; the guard is dropped after it, before `me`.
        let queued = unsafe { Queued::push(&self.queue, &mut queue, |q| q, &me, false) };
        drop(queue);
        let queued = GiveBack { queued, sem: self };
        me.value().wait();
        drop(queued);
    }

    /// Returns one permit, waking the head waiter if that satisfies it.
    ///
    /// ```
    /// let s = chan::sync::Semaphore::new(0);
    /// s.release();
    /// assert!(s.try_acquire());
    /// ```
    pub fn release(&self) {
        self.release_many(1);
    }

    /// Returns `n` permits, waking as many head waiters as they satisfy, in order.
    ///
    /// # Panics
    ///
    /// If the permits would exceed `usize::MAX / 2`.
    ///
    /// ```
    /// let s = chan::sync::Semaphore::new(0);
    /// s.release_many(4);
    /// assert_eq!(s.available(), 4);
    /// ```
    pub fn release_many(&self, n: usize) {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & QUEUED == 0 {
            let next = add_permits(s, n);
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => s = actual,
            }
        }
        self.release_slow(n);
    }

    /// Waiters are queued: add the permits and serve the head of the queue, under the lock.
    #[cold]
    fn release_slow(&self, n: usize) {
        let woken: Vec<_> = {
            let mut queue = self.queue.lock();
            let mut s = self.state.load(Ordering::Relaxed);
            let served = loop {
                // With the lock held the queue is fixed; if QUEUED is clear the queue is
                // empty and fast-path users may still move the word, hence the CAS loop.
                let mut permits = add_permits(s & MAX_PERMITS, n);
                let mut served = 0;
                let mut cur = queue.front();
                while let Some(node) = cur {
                    // SAFETY: `node` is linked in `queue`, whose lock we hold.
                    let need = unsafe { node.as_ref() }.value().need;
                    let Some(left) = permits.checked_sub(need) else {
                        break;
                    };
                    permits = left;
                    served += 1;
                    // SAFETY: as above.
                    cur = unsafe { queue.next(node) };
                }
                let next = match served == queue.len() {
                    true => permits,
                    false => permits | QUEUED,
                };
                match self
                    .state
                    .compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Relaxed)
                {
                    Ok(_) => break served,
                    Err(actual) => s = actual,
                }
            };
            (0..served).map_while(|_| wake_front(&mut queue)).collect()
        };
        unpark_all(woken);
    }

    /// Goroutines and threads queued in `acquire`. For tests that check that a waiter leaves
    /// nothing behind; not part of the API.
    #[doc(hidden)]
    pub fn queue_len(&self) -> usize {
        self.queue.lock().len()
    }

    /// Permits available now (a snapshot; zero while anyone waits).
    ///
    /// ```
    /// let s = chan::sync::Semaphore::new(2);
    /// s.acquire();
    /// assert_eq!(s.available(), 1);
    /// ```
    pub fn available(&self) -> usize {
        match self.state.load(Ordering::Relaxed) {
            s if s & QUEUED != 0 => 0,
            s => s,
        }
    }
}

/// A waiter queued in `acquire_slow`, around its guard, for when it leaves by unwinding (a
/// panic inside park): unserved, it withdraws and serves the queue (it may have been the head
/// holding back smaller requests); served, it gives back the permits it was handed.
struct GiveBack<'a> {
    queued: Queued<'a, WaitList>,
    sem: &'a Semaphore,
}

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() || crate::shim::model_torn_down() {
            return;
        }
        if self.queued.woken() {
            self.sem.release_many(self.queued.node.value().need);
        } else if self.queued.withdraw() {
            self.sem.release_slow(0);
        }
    }
}

fn add_permits(permits: usize, n: usize) -> usize {
    match permits.checked_add(n) {
        Some(p) if p <= MAX_PERMITS => p,
        _ => panic!("sync: too many semaphore permits"),
    }
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .finish_non_exhaustive()
    }
}

/// loom models of the queue handshake: no lost wake-up (a deadlock in loom), no permit
/// created or lost, mutual exclusion with one permit.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::thread;
    use std::sync::Arc;

    /// Two threads take turns in a one-permit section; the section is never shared, both
    /// finish, and the permit is back at the end.
    #[test]
    fn loom_semaphore_mutual_exclusion() {
        loom::model(|| {
            let sem = Arc::new(Semaphore::new(1));
            let inside = Arc::new(AtomicUsize::new(0));
            let ths: Vec<_> = (0..2)
                .map(|_| {
                    let (sem, inside) = (sem.clone(), inside.clone());
                    thread::spawn(move || {
                        sem.acquire();
                        assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0, "two inside");
                        inside.fetch_sub(1, Ordering::Relaxed);
                        sem.release();
                    })
                })
                .collect();
            for t in ths {
                t.join().unwrap();
            }
            assert_eq!(sem.state.load(Ordering::Relaxed), 1);
        });
    }

    /// A two-permit waiter and two one-permit releasers racing: the waiter gets both.
    #[test]
    fn loom_semaphore_acquire_many() {
        loom::model(|| {
            let sem = Arc::new(Semaphore::new(0));
            let ths: Vec<_> = (0..2)
                .map(|_| {
                    let sem = sem.clone();
                    thread::spawn(move || sem.release())
                })
                .collect();
            sem.acquire_many(2);
            for t in ths {
                t.join().unwrap();
            }
            assert_eq!(sem.state.load(Ordering::Relaxed), 0);
        });
    }
}
