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
//!
//! Giving up (a deadline, or a `stop` check: `acquire_many_until`): the waiter takes the lock
//! and unlinks its node, O(1). If it was the head, the permits in the word may now satisfy the
//! new head (a large request was holding back smaller ones), so it serves the queue as a
//! release of zero permits would, which also clears `QUEUED` if the queue is now empty. If a
//! releaser popped it first, it was handed its permits: it returns them with `release_many`,
//! so they go to the next waiters or back to the word (Go's `x/sync/semaphore` does the same
//! when its context is done after the grant). Either way no permit is kept or lost.

use std::time::{Duration, Instant};

use super::shim::{Lock, Unparker};
use super::waiter::{unpark_all, wait_node, wake_front, GiveUp, Queued, WaitList};
use crate::loom::{AtomicUsize, Ordering};
use crate::waiter::deadline_after;
use sched::debug::WaitReason;

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
            self.acquire_slow(n, &GiveUp::NEVER);
        }
    }

    /// Takes one permit, waiting at most `timeout`; false if none came in time. A timeout too
    /// long to be an `Instant` (`Duration::MAX`) waits without one.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = chan::sync::Semaphore::new(0);
    /// assert!(!s.acquire_timeout(Duration::from_millis(1)));
    /// s.release();
    /// assert!(s.acquire_timeout(Duration::from_millis(1)));
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_many_timeout(1, timeout)
    }

    /// Takes one permit, waiting until `deadline` at the latest; false if none came in time.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let s = chan::sync::Semaphore::new(1);
    /// assert!(s.acquire_deadline(Instant::now()));
    /// assert!(!s.acquire_deadline(Instant::now() + Duration::from_millis(1)));
    /// ```
    pub fn acquire_deadline(&self, deadline: Instant) -> bool {
        self.acquire_many_deadline(1, deadline)
    }

    /// Takes `n` permits at once, waiting at most `timeout` (see
    /// [`acquire_many_deadline`](Semaphore::acquire_many_deadline)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = chan::sync::Semaphore::new(2);
    /// assert!(!s.acquire_many_timeout(3, Duration::from_millis(1)));
    /// assert_eq!(s.available(), 2); // nothing taken, nothing lost
    /// ```
    pub fn acquire_many_timeout(&self, n: usize, timeout: Duration) -> bool {
        self.acquire_many_until(n, deadline_after(timeout), &|| false)
    }

    /// Takes `n` permits at once, waiting until `deadline` at the latest; false if they did
    /// not come in time. A waiter that gives up leaves the queue at once (and lets the
    /// waiters behind it be served if it was holding them back); permits handed to it as it
    /// gave up are released again, never kept or lost. A deadline already past only tries.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::{Duration, Instant};
    /// let s = Arc::new(chan::sync::Semaphore::new(1));
    /// let big = { // asks for 2, holds back the small request behind it, gives up
    ///     let s = s.clone();
    ///     sched::spawn(move || s.acquire_many_deadline(2, Instant::now() + Duration::from_millis(5)))
    /// };
    /// // Until `big` queues (or, on a slow machine, already gave up: it can never get 2).
    /// while s.queue_len() == 0 && !big.is_finished() {
    ///     sched::yield_now();
    /// }
    /// s.acquire(); // queued behind `big`, served once it leaves
    /// assert!(!big.join().unwrap());
    /// ```
    pub fn acquire_many_deadline(&self, n: usize, deadline: Instant) -> bool {
        self.acquire_many_until(n, Some(deadline), &|| false)
    }

    /// Takes `n` permits at once, waiting until `deadline` (if any) and for as long as
    /// `stop()` returns false; false if it gave up. The hook for a cancellable wait (`gort`'s
    /// `context::acquire`): `stop` is called by the waiter only, before it parks and each time
    /// it is unparked, so whoever makes `stop` true must then unpark the waiter (its
    /// `sched::unparker()`, taken before the call) for it to notice before the deadline. An
    /// unpark that lands after the wait is a stray token: the waiter's next park returns at
    /// once, which every park loop tolerates. Giving up is as in
    /// [`acquire_many_deadline`](Semaphore::acquire_many_deadline).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// let s = Arc::new(chan::sync::Semaphore::new(0));
    /// let stop = Arc::new(AtomicBool::new(false));
    /// let (waiter_tx, waiter_rx) = std::sync::mpsc::channel();
    /// let h = {
    ///     let (s, stop) = (s.clone(), stop.clone());
    ///     sched::spawn(move || {
    ///         waiter_tx.send(sched::unparker()).unwrap();
    ///         s.acquire_many_until(1, None, &|| stop.load(Ordering::Acquire))
    ///     })
    /// };
    /// let waiter = waiter_rx.recv().unwrap();
    /// stop.store(true, Ordering::Release);
    /// waiter.unpark();
    /// assert!(!h.join().unwrap());
    /// assert_eq!(s.queue_len(), 0);
    /// ```
    pub fn acquire_many_until(
        &self,
        n: usize,
        deadline: Option<Instant>,
        stop: &dyn Fn() -> bool,
    ) -> bool {
        if self.try_acquire_many(n) {
            return true;
        }
        let give_up = GiveUp {
            deadline,
            stop: Some(stop),
        };
        !give_up.is_due() && self.acquire_slow(n, &give_up)
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

    /// Queues for `n` permits and waits for them, or until `give_up` is due; true if taken.
    #[cold]
    fn acquire_slow(&self, n: usize, give_up: &GiveUp<'_>) -> bool {
        wait_node!(me = n, WaitReason::Semaphore);
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
                Ok(_) if done => return true,
                Ok(_) => break,
                Err(actual) => s = actual,
            }
        }
        // SAFETY: `queue` is `self.queue` locked; the guard is dropped after it, before `me`.
        let queued = unsafe { Queued::push(&self.queue, &mut queue, |q| q, me, false) };
        drop(queue);
        let queued = GiveBack { queued, sem: self };
        let taken = me.value().wait_until(give_up) || self.leave(me);
        drop(queued);
        taken
    }

    /// A queued waiter for `me.need` permits gives up: it unlinks its node and serves the
    /// queue if it was the head, or, if a releaser popped it first, releases the permits it
    /// was handed (module docs, "Giving up"). Returns false (nothing taken) for `||`.
    fn leave(&self, me: &super::waiter::WaitNode) -> bool {
        let served = {
            let mut queue = self.queue.lock();
            let was_head = queue
                .front()
                .is_some_and(|head| std::ptr::eq(head.as_ptr(), me));
            // SAFETY: we hold the lock; `me` is alive (borrowed) and was pushed onto this
            // queue.
            match unsafe { queue.remove(me) } {
                true if was_head => Some(self.serve_locked(&mut queue, 0)),
                true => Some(Vec::new()),
                false => None,
            }
        };
        match served {
            Some(woken) => unpark_all(woken),
            None => self.release_many(me.value().need),
        }
        false
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
        let woken = {
            let mut queue = self.queue.lock();
            self.serve_locked(&mut queue, n)
        };
        unpark_all(woken);
    }

    /// With the queue locked (`queue`): adds `n` permits, wakes as many head waiters as the
    /// permits satisfy, and leaves `QUEUED` set exactly if anyone is left. Returns the woken
    /// waiters' unparkers, to unpark once the lock is released.
    fn serve_locked(&self, queue: &mut WaitList, n: usize) -> Vec<Unparker> {
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
        (0..served).map_while(|_| wake_front(queue)).collect()
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

/// Timed and stopped waits at maxprocs 1, 2 and 4: a waiter that gives up leaves the queue,
/// lets the waiters behind it be served, and no permit is lost or made under a stress of
/// random timeouts.
#[cfg(all(test, not(loom)))]
mod give_up_tests {
    use super::*;
    use crate::test_harness::{each_procs, each_procs_in_goroutine, wait_until};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    const SHORT: Duration = Duration::from_millis(5);

    #[test]
    fn a_timeout_leaves_nothing_behind() {
        each_procs("a_timeout_leaves_nothing_behind", |_| {
            let s = Semaphore::new(2);
            let start = Instant::now();
            assert!(!s.acquire_many_timeout(3, SHORT));
            assert!(start.elapsed() >= SHORT, "gave up before the deadline");
            assert_eq!((s.available(), s.queue_len()), (2, 0));
            assert!(
                !s.acquire_many_deadline(3, Instant::now()),
                "a past deadline only tries"
            );
            assert!(s.acquire_many_deadline(2, Instant::now()));
            assert!(!s.acquire_timeout(SHORT));
            s.release_many(2);
            assert!(
                s.acquire_timeout(Duration::MAX),
                "no deadline: waits, here not at all"
            );
            assert_eq!(s.available(), 1);
        });
    }

    /// A 2-permit head gives up; the 1-permit waiter behind it, held back until then, takes
    /// the 1 available permit without any release.
    #[test]
    fn a_head_that_gives_up_lets_the_next_in() {
        each_procs_in_goroutine("a_head_that_gives_up_lets_the_next_in", |_| {
            let s = Arc::new(Semaphore::new(1));
            let big = {
                let s = s.clone();
                sched::spawn(move || s.acquire_many_timeout(2, Duration::from_millis(20)))
            };
            wait_until("the big request to queue", || s.queue_len() == 1);
            let small = {
                let s = s.clone();
                sched::spawn(move || s.acquire())
            };
            wait_until("the small request to queue", || s.queue_len() == 2);
            assert!(!big.join().unwrap());
            small.join().unwrap();
            assert_eq!((s.available(), s.queue_len()), (0, 0));
        });
    }

    #[test]
    fn a_stop_check_ends_the_wait() {
        each_procs("a_stop_check_ends_the_wait", |_| {
            let s = Arc::new(Semaphore::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let (tx, rx) = std::sync::mpsc::channel();
            let h = {
                let (s, stop) = (s.clone(), stop.clone());
                sched::spawn(move || {
                    tx.send(sched::unparker()).unwrap();
                    s.acquire_many_until(1, None, &|| stop.load(Ordering::Acquire))
                })
            };
            let waiter = rx.recv().unwrap();
            wait_until("the waiter to queue", || s.queue_len() == 1);
            stop.store(true, Ordering::Release);
            waiter.unpark();
            assert!(!h.join().unwrap());
            assert_eq!((s.available(), s.queue_len()), (0, 0));
            s.release();
            assert!(s.try_acquire());
        });
    }

    /// 200 goroutines take 1 to 3 permits of 4 with timeouts from 0 to 400 µs, hold them
    /// across a yield and give them back; the permits all come back, exactly.
    #[test]
    fn no_permit_lost_under_random_timeouts() {
        each_procs("no_permit_lost_under_random_timeouts", |_| {
            const PERMITS: usize = 4;
            let s = Arc::new(Semaphore::new(PERMITS));
            let inside = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..200u64)
                .map(|i| {
                    let (s, inside) = (s.clone(), inside.clone());
                    sched::spawn(move || {
                        let mut seed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                        let mut got = 0;
                        for _ in 0..20 {
                            seed ^= seed << 13;
                            seed ^= seed >> 7;
                            seed ^= seed << 17;
                            let n = 1 + (seed % 3) as usize;
                            let t = Duration::from_micros((seed >> 8) % 400);
                            if s.acquire_many_timeout(n, t) {
                                let now = inside.fetch_add(n, Ordering::SeqCst) + n;
                                assert!(now <= PERMITS, "{now} permits held at once");
                                sched::yield_now();
                                inside.fetch_sub(n, Ordering::SeqCst);
                                s.release_many(n);
                                got += 1;
                            }
                        }
                        got
                    })
                })
                .collect();
            let got: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
            assert!(got > 0);
            assert_eq!((s.available(), s.queue_len()), (PERMITS, 0));
        });
    }
}

/// loom models of the queue handshake: no lost wake-up (a deadlock in loom), no permit
/// created or lost, mutual exclusion with one permit.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::super::loom_cancel::Cancel;
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

    /// `loom::model` with at most 3 preemptions per execution (unless
    /// `LOOM_MAX_PREEMPTIONS` says otherwise): the give-up models have four threads besides
    /// the model's own, and unbounded they take minutes; every interleaving of the race itself
    /// needs at most 2.
    fn bounded_model(f: impl Fn() + Sync + Send + 'static) {
        crate::loom::model_bounded(3, f);
    }

    /// `acquire_many_until(n)` as a waiter that `cancel` can stop (`loom_cancel.rs`).
    fn acquire(cancel: &Cancel, sem: &Semaphore, n: usize) -> bool {
        sem.acquire_many_until(n, None, &cancel.arm())
    }

    /// The give-up-vs-grant race: the waiter gives up (its stop flag set, then unparked, as a
    /// context's cancellation does) while a releaser hands it the permit. Whichever wins, the
    /// permit is neither lost nor kept by a waiter that reports failure: once a successful
    /// waiter has released it, it is back in the word, and nobody is queued.
    #[test]
    fn loom_semaphore_give_up_vs_grant() {
        bounded_model(|| {
            let sem = Arc::new(Semaphore::new(0));
            let cancel = Cancel::new();
            let waiter = {
                let (sem, cancel) = (sem.clone(), cancel.clone());
                thread::spawn(move || {
                    if acquire(&cancel, &sem, 1) {
                        sem.release();
                    }
                })
            };
            let releaser = {
                let sem = sem.clone();
                thread::spawn(move || sem.release())
            };
            let canceller = thread::spawn(move || cancel.cancel());
            waiter.join().unwrap();
            releaser.join().unwrap();
            canceller.join().unwrap();
            assert_eq!(
                sem.state.load(Ordering::Relaxed),
                1,
                "a permit lost or made"
            );
            assert_eq!(sem.queue_len(), 0);
        });
    }

    /// A head waiter asking for 2 (of the 1 available) gives up while a 1-permit waiter may be
    /// queued behind it: the one behind is served (else it parks for good: a loom deadlock),
    /// and the permit ends back in the word.
    #[test]
    fn loom_semaphore_head_gives_up_serves_the_next() {
        bounded_model(|| {
            let sem = Arc::new(Semaphore::new(1));
            let cancel = Cancel::new();
            let head = {
                let (sem, cancel) = (sem.clone(), cancel.clone());
                thread::spawn(move || {
                    if acquire(&cancel, &sem, 2) {
                        sem.release_many(2);
                    }
                })
            };
            let small = {
                let sem = sem.clone();
                thread::spawn(move || {
                    sem.acquire();
                    sem.release();
                })
            };
            let canceller = thread::spawn(move || cancel.cancel());
            head.join().unwrap();
            small.join().unwrap();
            canceller.join().unwrap();
            assert_eq!(
                sem.state.load(Ordering::Relaxed),
                1,
                "a permit lost or made"
            );
            assert_eq!(sem.queue_len(), 0);
        });
    }

    /// A two-permit waiter and two one-permit releasers racing: the waiter gets both.
    ///
    /// Bounded to 5 preemptions: with the waiter on a spawned thread, unbounded it ran for
    /// 28 s (in release: 0.3 s at 3, 1.3 s at 4, 5 s at 5).
    #[test]
    fn loom_semaphore_acquire_many() {
        crate::loom::model_bounded(5, || {
            let sem = Arc::new(Semaphore::new(0));
            let ths: Vec<_> = (0..2)
                .map(|_| {
                    let sem = sem.clone();
                    thread::spawn(move || sem.release())
                })
                .collect();
            let waiter = {
                let sem = sem.clone();
                thread::spawn(move || sem.acquire_many(2))
            };
            waiter.join().unwrap();
            for t in ths {
                t.join().unwrap();
            }
            assert_eq!(sem.state.load(Ordering::Relaxed), 0);
        });
    }
}
