//! A P's local run queue (Go's `p.runq`, `runqput`/`runqget`/`runqgrab`): a ring of
//! `RUNQ_LEN` slots that only the owning P pushes to, and from whose head the owner and thieves
//! take, each claim a compare-and-swap of `head`.
//!
//! It replaces crossbeam-deque's `Worker`/`Stealer`, which double and halve their buffer as the
//! queue fills and drains and free the old one through crossbeam-epoch: every resize was a
//! block from the program's allocator in the M's glibc arena, which a burst left holding
//! hundreds of KiB (`docs/BENCHMARKS.md`, "Session 9: memory returned at P=2"). This ring is
//! allocated once, with its P, and never resized: what does not fit waits in the P's `spill`
//! (`processor.rs`).
//!
//! Protocol: positions only grow (wrapping), the entries are `head..tail`. The owner writes the
//! slot at `tail` and then publishes it with a release store of `tail + 1`; only it moves
//! `tail`. A taker reads `head` and `tail` (acquire), reads the slots it wants, then claims them
//! by moving `head` past them with a compare-and-swap: if that fails, someone took first and
//! what it read may be stale, so it reads again. The owner can overwrite a slot only after its
//! position left the ring, that is after `head` moved past it, so a taker whose claim succeeds
//! read what was there. The slots are atomics because a taker whose claim fails may have read
//! one while the owner rewrote it (Go reads them plainly; that is a data race in Rust).
//!
//! Invariants: `tail - head <= RUNQ_LEN`; the slots at `head..tail` hold owned goroutines; the
//! others hold stale pointers that are never taken. The loom models at the bottom check the
//! owner pushing and popping against a thief, and two thieves against each other.

use std::marker::PhantomData;
use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::global_queue::Owned;
use crate::loom::{AtomicPtr, AtomicUsize, Ordering};

/// Slots in a P's queue (Go's 256).
pub(crate) const RUNQ_LEN: usize = 256;

/// A P's local run queue (module docs).
pub(crate) struct RunQueue<T: Owned> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    slots: Box<[AtomicPtr<T::Target>]>,
    _owns: PhantomData<T>,
}

// SAFETY: the queue owns the `T`s in `head..tail` and hands each to exactly one taker; sharing
// it sends `T`s between threads, which `T: Send` allows.
unsafe impl<T: Owned + Send> Send for RunQueue<T> {}
// SAFETY: as above; every shared access is an atomic.
unsafe impl<T: Owned + Send> Sync for RunQueue<T> {}

impl<T: Owned> RunQueue<T> {
    /// An empty queue of `cap` slots (a power of two).
    pub(crate) fn new(cap: usize) -> RunQueue<T> {
        assert!(cap.is_power_of_two(), "run queue size {cap}");
        RunQueue {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots: (0..cap)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            _owns: PhantomData,
        }
    }

    fn slot(&self, pos: usize) -> &AtomicPtr<T::Target> {
        &self.slots[pos & (self.slots.len() - 1)]
    }

    /// Owner only: appends `x`, or gives it back if the queue is full.
    #[inline]
    pub(crate) fn push(&self, x: T) -> Result<(), T> {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Relaxed);
        if tail.wrapping_sub(head) >= self.slots.len() {
            return Err(x);
        }
        self.slot(tail)
            .store(x.into_raw().as_ptr(), Ordering::Relaxed);
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// Owner only: takes the head.
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        let tail = self.tail.load(Ordering::Relaxed);
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            if head == tail {
                return None;
            }
            let p = self.slot(head).load(Ordering::Relaxed);
            match self.head.compare_exchange_weak(
                head,
                head.wrapping_add(1),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                // SAFETY: `head` was in `head..tail` and this claim took it: the owner wrote
                // it before publishing `tail` (module docs).
                Ok(_) => return Some(unsafe { Self::own(p) }),
                Err(now) => head = now,
            }
        }
    }

    /// A thief (the owner of `dest`): takes half of this queue, rounded up, at most `limit`,
    /// returns the oldest and appends the rest to `dest`, which must have room for them.
    pub(crate) fn steal_into(&self, dest: &RunQueue<T>, limit: usize) -> Option<T> {
        let dest_tail = dest.tail.load(Ordering::Relaxed);
        loop {
            let head = self.head.load(Ordering::Acquire);
            let tail = self.tail.load(Ordering::Acquire);
            let len = tail.wrapping_sub(head);
            if len == 0 {
                return None;
            }
            if len > self.slots.len() {
                // `head` was read before the owner and other takers moved on: read again.
                continue;
            }
            let n = (len - len / 2).min(limit.max(1));
            let first = self.slot(head).load(Ordering::Relaxed);
            for i in 1..n {
                let p = self.slot(head.wrapping_add(i)).load(Ordering::Relaxed);
                // Past `dest`'s tail: no thief of `dest` reads there until it is published.
                dest.slot(dest_tail.wrapping_add(i - 1))
                    .store(p, Ordering::Relaxed);
            }
            if self
                .head
                .compare_exchange(
                    head,
                    head.wrapping_add(n),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                dest.tail
                    .store(dest_tail.wrapping_add(n - 1), Ordering::Release);
                // SAFETY: `head` was in the ring and this claim took it (module docs).
                return Some(unsafe { Self::own(first) });
            }
        }
    }

    /// Goroutines queued (a snapshot).
    pub(crate) fn len(&self) -> usize {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.slots.len())
    }

    /// True if nothing is queued (a snapshot).
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// # Safety
    /// `p` is the pointer in a slot whose position the caller just claimed.
    unsafe fn own(p: *mut T::Target) -> T {
        let p = NonNull::new(p).expect("a queued slot holds a goroutine");
        // SAFETY: the owner stored an owned pointer there, and the caller's claim makes it
        // the only one to take it back.
        unsafe { T::from_raw(p) }
    }
}

impl<T: Owned> Drop for RunQueue<T> {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

#[cfg(test)]
impl<U> Owned for Box<U> {
    type Target = U;
    fn into_raw(self) -> NonNull<U> {
        NonNull::from(Box::leak(self))
    }
    unsafe fn from_raw(p: NonNull<U>) -> Self {
        // SAFETY: `p` came from `Box::leak` in `into_raw`, taken back once.
        unsafe { Box::from_raw(p.as_ptr()) }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn first_in_first_out_and_full() {
        let q = RunQueue::<Box<u32>>::new(4);
        for i in 0..4 {
            assert!(q.push(Box::new(i)).is_ok());
        }
        assert_eq!(*q.push(Box::new(9)).unwrap_err(), 9);
        assert_eq!(q.len(), 4);
        assert_eq!(*q.pop().unwrap(), 0);
        let dest = RunQueue::<Box<u32>>::new(4);
        // Half of 3, rounded up: 1 and 2; 1 to run, 2 into `dest`.
        assert_eq!(*q.steal_into(&dest, 8).unwrap(), 1);
        assert_eq!(*dest.pop().unwrap(), 2);
        assert_eq!(*q.pop().unwrap(), 3);
        assert!(q.pop().is_none() && q.steal_into(&dest, 8).is_none());
    }

    /// The owner pushes and pops while thieves steal into their own queues: every item is
    /// taken exactly once.
    #[test]
    fn owner_and_thieves_take_each_item_once() {
        const N: usize = 200_000;
        let q = std::sync::Arc::new(RunQueue::<Box<usize>>::new(64));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let (q, done) = (q.clone(), done.clone());
                std::thread::spawn(move || {
                    let mine = RunQueue::<Box<usize>>::new(64);
                    let mut got = Vec::new();
                    while !done.load(Ordering::SeqCst) || !q.is_empty() {
                        if let Some(x) = q.steal_into(&mine, 64) {
                            got.push(*x);
                        }
                        while let Some(x) = mine.pop() {
                            got.push(*x);
                        }
                    }
                    got
                })
            })
            .collect();
        let mut got = Vec::new();
        for i in 0..N {
            let mut x = Box::new(i);
            while let Err(back) = q.push(x) {
                x = back;
                if let Some(y) = q.pop() {
                    got.push(*y);
                }
            }
        }
        done.store(true, Ordering::SeqCst);
        while let Some(x) = q.pop() {
            got.push(*x);
        }
        for t in thieves {
            got.extend(t.join().unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, (0..N).collect::<Vec<_>>());
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! Every actor is a spawned thread (`global_queue.rs` says why).
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// The owner pushes three into a queue of two slots (popping when full) while a thief
    /// steals: every item taken exactly once.
    #[test]
    fn owner_against_a_thief() {
        crate::loom::model_bounded(3, || {
            let q = Arc::new(RunQueue::<Box<u32>>::new(2));
            let q1 = q.clone();
            let owner = thread::spawn(move || {
                let mut got = Vec::new();
                for i in 1..=3 {
                    let mut x = Box::new(i);
                    while let Err(back) = q1.push(x) {
                        x = back;
                        if let Some(y) = q1.pop() {
                            got.push(*y);
                        }
                    }
                }
                if let Some(y) = q1.pop() {
                    got.push(*y);
                }
                got
            });
            let q2 = q.clone();
            let thief = thread::spawn(move || {
                let mine = RunQueue::<Box<u32>>::new(2);
                let mut got: Vec<u32> = q2.steal_into(&mine, 2).map(|x| *x).into_iter().collect();
                got.extend(std::iter::from_fn(|| mine.pop()).map(|x| *x));
                got
            });
            let mut all = owner.join().unwrap();
            all.extend(thief.join().unwrap());
            all.extend(std::iter::from_fn(|| q.pop()).map(|x| *x));
            all.sort_unstable();
            assert_eq!(all, [1, 2, 3]);
        });
    }

    /// Two thieves race for a queue of three: nothing taken twice or lost.
    #[test]
    fn two_thieves() {
        loom::model(|| {
            let q = Arc::new(RunQueue::<Box<u32>>::new(4));
            for i in 1..=3 {
                assert!(q.push(Box::new(i)).is_ok());
            }
            let thief = |q: &Arc<RunQueue<Box<u32>>>| {
                let q = q.clone();
                thread::spawn(move || {
                    let mine = RunQueue::<Box<u32>>::new(4);
                    let mut got: Vec<u32> =
                        q.steal_into(&mine, 4).map(|x| *x).into_iter().collect();
                    got.extend(std::iter::from_fn(|| mine.pop()).map(|x| *x));
                    got
                })
            };
            let (a, b) = (thief(&q), thief(&q));
            let mut all = a.join().unwrap();
            all.extend(b.join().unwrap());
            all.extend(std::iter::from_fn(|| q.pop()).map(|x| *x));
            all.sort_unstable();
            assert_eq!(all, [1, 2, 3]);
        });
    }
}
