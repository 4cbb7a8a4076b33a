//! The global run queue (Go's `sched.runq`): goroutines any M may take, queued by Ms without
//! a P, by a spawner spreading its children (`Processor::spawn_spreads`), by a retired P.
//!
//! A ring of `cap` slots (a power of two) that pushers and takers claim with a compare-and-swap
//! on their own position counter, as Dmitry Vyukov's bounded MPMC queue, and behind it an
//! unbounded `overflow` under a lock for when the ring is full. It allocates nothing as it is
//! used: the ring is made once, and the overflow's chunks come from mimalloc (`ring.rs`).
//! crossbeam's `Injector`, which this replaces, allocates a block every 63 goroutines in the
//! pushing thread's `malloc` arena; a burst left those arenas holding hundreds of KiB the
//! program never got back (`docs/BENCHMARKS.md`, "Session 9: memory returned at P=2").
//!
//! Slot protocol: slot `i` carries a sequence number. It is `pos` when the slot is free for the
//! pusher that claims position `pos` (`pos % cap == i`), `pos + 1` once that pusher has stored
//! its goroutine there, and `pos + cap` once the taker that claimed `pos` has taken it, which
//! frees it for the pusher of the next lap. A pusher claims `pos` by moving `enqueue` from `pos`
//! to `pos + 1` after seeing the slot free; a taker claims a run of positions from `dequeue`
//! after seeing each of them filled (one compare-and-swap for a batch). Between its claim and
//! its store, a pusher holds up the positions behind it: takers see them as not filled yet.
//! That window is a few instructions, and a pusher is never stopped by a preemption signal in
//! it (it counts as inside the runtime, `preempt.rs`).
//!
//! Invariants: `dequeue <= enqueue`; every position in `dequeue..enqueue` is claimed by a pusher
//! and, once its sequence number says so, holds an owned goroutine; the pointers left in the
//! slots outside that range are stale and never read. While `overflowed` is non-zero, pushes go
//! to `overflow`, so everything in the ring is older than everything in `overflow`, and takers
//! take from `overflow` only once the ring is empty (checked under its lock): the queue stays
//! first-in first-out (between pushers that do not race) and nothing in `overflow` waits
//! behind an endless stream of newer goroutines.
//!
//! No lost wake-up: a goroutine counts as queued (`is_empty` false) from its pusher's claim on,
//! which is before the pusher's fence and its look at the idle Ps (`IdleSet::wake_for`); a taker
//! that then finds the slot not yet filled gets nothing this time, as with an empty queue, and
//! the pusher's own wake-up follows. The loom models at the bottom check hand-over, batches,
//! the overflow and the order.

use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::chunked::ChunkedDeque;
use crate::loom::{lock, AtomicPtr, AtomicUsize, Mutex, Ordering};

/// What the run queues hold (this one and `run_queue.rs`): an owned pointer (a goroutine
/// reference, or a `Box` in the tests, `run_queue.rs`).
pub(crate) trait Owned {
    type Target;
    /// Gives up ownership as a pointer.
    fn into_raw(self) -> NonNull<Self::Target>;
    /// Takes ownership back.
    ///
    /// # Safety
    /// `p` came from `into_raw` and is taken back exactly once.
    unsafe fn from_raw(p: NonNull<Self::Target>) -> Self;
}

impl Owned for crate::goroutine::GRef {
    type Target = crate::goroutine::Header;
    fn into_raw(self) -> NonNull<Self::Target> {
        crate::goroutine::GRef::into_raw(self)
    }
    unsafe fn from_raw(p: NonNull<Self::Target>) -> Self {
        // SAFETY: the caller's contract is `GRef::from_raw`'s.
        unsafe { crate::goroutine::GRef::from_raw(p) }
    }
}

/// Slots in the runtime's global ring (16 bytes each): a burst queues more than this only
/// when its spawner outruns every M that takes from the queue, and those wait in `overflow`.
pub(crate) const RING_SLOTS: usize = 1024;

struct Slot<H> {
    seq: AtomicUsize,
    item: AtomicPtr<H>,
}

/// The global run queue (module docs).
pub(crate) struct GlobalQueue<T: Owned> {
    ring: Box<[Slot<T::Target>]>,
    mask: usize,
    enqueue: CachePadded<AtomicUsize>,
    dequeue: CachePadded<AtomicUsize>,
    /// `overflow.len()`, readable without the lock.
    overflowed: CachePadded<AtomicUsize>,
    overflow: Mutex<ChunkedDeque<T>>,
}

// SAFETY: the queue owns the `T`s it holds and hands each to exactly one taker; sending the
// queue or sharing it sends `T`s between threads, which `T: Send` allows.
unsafe impl<T: Owned + Send> Send for GlobalQueue<T> {}
// SAFETY: as above; all shared access goes through atomics and the overflow's lock.
unsafe impl<T: Owned + Send> Sync for GlobalQueue<T> {}

impl<T: Owned> GlobalQueue<T> {
    /// An empty queue whose ring has `cap` slots (a power of two, at least 2).
    pub(crate) fn new(cap: usize) -> GlobalQueue<T> {
        assert!(cap.is_power_of_two() && cap >= 2, "ring size {cap}");
        let ring = (0..cap)
            .map(|i| Slot {
                seq: AtomicUsize::new(i),
                item: AtomicPtr::new(std::ptr::null_mut()),
            })
            .collect();
        GlobalQueue {
            ring,
            mask: cap - 1,
            enqueue: CachePadded::new(AtomicUsize::new(0)),
            dequeue: CachePadded::new(AtomicUsize::new(0)),
            overflowed: CachePadded::new(AtomicUsize::new(0)),
            overflow: Mutex::new(ChunkedDeque::new()),
        }
    }

    /// Queues `x` at the tail.
    pub(crate) fn push(&self, x: T) {
        if let Err(x) = self.try_push(x) {
            self.push_overflow(x);
        }
    }

    /// Queues `x` at the tail if the ring has room and nothing waits in the overflow; else
    /// gives it back.
    #[inline]
    pub(crate) fn try_push(&self, x: T) -> Result<(), T> {
        if self.overflowed.load(Ordering::Acquire) != 0 {
            return Err(x);
        }
        crate::preempt::runtime_lock_enter();
        let pushed = self.push_ring(x);
        crate::preempt::runtime_lock_exit();
        pushed
    }

    fn push_ring(&self, x: T) -> Result<(), T> {
        let mut pos = self.enqueue.load(Ordering::Relaxed);
        loop {
            let slot = &self.ring[pos & self.mask];
            let seq = slot.seq.load(Ordering::Acquire);
            if seq == pos {
                match self.enqueue.compare_exchange_weak(
                    pos,
                    pos + 1,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        slot.item.store(x.into_raw().as_ptr(), Ordering::Relaxed);
                        slot.seq.store(pos + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(now) => pos = now,
                }
            } else if seq < pos {
                // The slot still holds the goroutine of the previous lap: the ring is full.
                return Err(x);
            } else {
                pos = self.enqueue.load(Ordering::Relaxed);
            }
        }
    }

    #[cold]
    fn push_overflow(&self, x: T) {
        let mut overflow = lock(&self.overflow);
        overflow.push_back(x);
        self.overflowed.store(overflow.len(), Ordering::SeqCst);
    }

    /// Takes the head, if anything is queued and filled.
    pub(crate) fn pop(&self) -> Option<T> {
        let mut got = None;
        self.pop_batch(1, |x| got = Some(x));
        got
    }

    /// Takes up to `limit` goroutines from the head, oldest first, and gives them to `f` in
    /// order. Returns how many it took.
    pub(crate) fn pop_batch(&self, limit: usize, mut f: impl FnMut(T)) -> usize {
        if limit == 0 {
            return 0;
        }
        let took = self.pop_ring(limit, &mut f);
        if took > 0 || self.overflowed.load(Ordering::SeqCst) == 0 {
            return took;
        }
        self.pop_overflow(limit, &mut f)
    }

    fn pop_ring(&self, limit: usize, f: &mut impl FnMut(T)) -> usize {
        let mut pos = self.dequeue.load(Ordering::Relaxed);
        loop {
            let filled = (0..limit.min(self.ring.len()))
                .take_while(|&i| {
                    let at = pos + i;
                    self.ring[at & self.mask].seq.load(Ordering::Acquire) == at + 1
                })
                .count();
            if filled == 0 {
                return 0;
            }
            // Positions only grow: if `dequeue` is still `pos`, nobody took any of them, and
            // a filled slot stays filled until its taker empties it.
            match self.dequeue.compare_exchange_weak(
                pos,
                pos + filled,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    for at in pos..pos + filled {
                        let slot = &self.ring[at & self.mask];
                        let p = slot.item.load(Ordering::Relaxed);
                        slot.seq.store(at + self.ring.len(), Ordering::Release);
                        let p = NonNull::new(p).expect("a filled slot holds an item");
                        // SAFETY: the pusher of `at` stored an owned pointer there and this
                        // taker alone claimed `at` (module docs).
                        f(unsafe { T::from_raw(p) });
                    }
                    return filled;
                }
                Err(now) => pos = now,
            }
        }
    }

    #[cold]
    fn pop_overflow(&self, limit: usize, f: &mut impl FnMut(T)) -> usize {
        let mut overflow = lock(&self.overflow);
        // Only once the ring is empty, not merely held up at its head by a pusher between its
        // claim and its store: what is behind that claim is older than anything in the
        // overflow (loom model `pushers_and_a_taker`). And under the lock: while the overflow
        // holds anything, pushes go there, so the ring stays empty until this taker is done;
        // looked at before the lock, the ring could have filled again meanwhile with what is
        // older than the overflow's tail (`overflow_taker_after_the_ring_refills`).
        if self.enqueue.load(Ordering::SeqCst) != self.dequeue.load(Ordering::SeqCst) {
            return 0;
        }
        let mut took = 0;
        while took < limit {
            let Some(x) = overflow.pop_front() else { break };
            f(x);
            took += 1;
        }
        self.overflowed.store(overflow.len(), Ordering::SeqCst);
        if overflow.is_empty() {
            overflow.clear();
        }
        took
    }

    /// Goroutines queued (claimed ring positions, filled or not, and the overflow).
    pub(crate) fn len(&self) -> usize {
        let deq = self.dequeue.load(Ordering::SeqCst);
        let enq = self.enqueue.load(Ordering::SeqCst);
        enq.saturating_sub(deq) + self.overflowed.load(Ordering::SeqCst)
    }

    /// True if nothing is queued (module docs: a claimed position counts as queued).
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Owned> Drop for GlobalQueue<T> {
    fn drop(&mut self) {
        while self.pop_batch(usize::MAX, drop) > 0 {}
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn first_in_first_out_through_the_overflow() {
        let q = GlobalQueue::<Box<u32>>::new(4);
        for i in 0..10 {
            q.push(Box::new(i));
        }
        assert_eq!(q.len(), 10);
        let mut got = Vec::new();
        while q.pop_batch(3, |x| got.push(*x)) > 0 {}
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        assert!(q.is_empty());
        // The ring is used again once the overflow drained.
        q.push(Box::new(10));
        assert_eq!(q.overflowed.load(Ordering::SeqCst), 0);
        assert_eq!(*q.pop().unwrap(), 10);
    }

    #[test]
    fn drop_frees_what_is_left() {
        let counted = std::sync::Arc::new(());
        let q = GlobalQueue::<Box<std::sync::Arc<()>>>::new(2);
        for _ in 0..5 {
            q.push(Box::new(counted.clone()));
        }
        drop(q);
        assert_eq!(std::sync::Arc::strong_count(&counted), 1);
    }

    /// Pushers and takers on threads, through a ring small enough to overflow: every item
    /// taken exactly once, and each taker gets each pusher's items in order.
    #[test]
    fn threads_take_each_item_once() {
        const PUSHERS: usize = 3;
        const EACH: usize = 20_000;
        let q = std::sync::Arc::new(GlobalQueue::<Box<(usize, usize)>>::new(64));
        let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let takers: Vec<_> = (0..2)
            .map(|_| {
                let (q, taken) = (q.clone(), taken.clone());
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    while taken.load(Ordering::SeqCst) < PUSHERS * EACH {
                        assert!(std::time::Instant::now() < give_up, "items lost");
                        let n = q.pop_batch(7, |x| mine.push(*x));
                        taken.fetch_add(n, Ordering::SeqCst);
                    }
                    mine
                })
            })
            .collect();
        let pushers: Vec<_> = (0..PUSHERS)
            .map(|who| {
                let q = q.clone();
                std::thread::spawn(move || (0..EACH).for_each(|i| q.push(Box::new((who, i)))))
            })
            .collect();
        pushers.into_iter().for_each(|t| t.join().unwrap());
        let mut all = Vec::new();
        for t in takers {
            let mine = t.join().unwrap();
            for who in 0..PUSHERS {
                let seen: Vec<_> = mine.iter().filter(|x| x.0 == who).map(|x| x.1).collect();
                assert!(
                    seen.windows(2).all(|w| w[0] < w[1]),
                    "pusher {who} out of order"
                );
            }
            all.extend(mine);
        }
        all.sort_unstable();
        let want: Vec<_> = (0..PUSHERS)
            .flat_map(|w| (0..EACH).map(move |i| (w, i)))
            .collect();
        assert_eq!(all, want);
        assert!(q.is_empty());
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! Every actor is a spawned thread and the model's own thread only joins them: loom did
    //! not run a spawned thread ahead of the model's thread here when the spawned thread's
    //! first operation touched nothing the model's thread had touched, so a taker on the
    //! model's thread only ever saw an empty queue.
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    fn taker(q: &Arc<GlobalQueue<Box<u32>>>, limit: usize) -> thread::JoinHandle<Vec<u32>> {
        let q = q.clone();
        thread::spawn(move || {
            let mut got = Vec::new();
            q.pop_batch(limit, |x| got.push(*x));
            got
        })
    }

    fn drain(q: &GlobalQueue<Box<u32>>, got: &mut Vec<u32>) {
        while q.pop_batch(4, |x| got.push(*x)) > 0 {}
        assert!(q.is_empty());
    }

    /// Two pushers (three items through a ring of two, so one can go to the overflow while
    /// the other pusher's claim holds up the ring's head) and a taker racing them: every item
    /// is taken exactly once, and the taker never gets a pusher's second item before its
    /// first.
    #[test]
    fn pushers_and_a_taker() {
        crate::loom::model_bounded(3, || {
            let q = Arc::new(GlobalQueue::<Box<u32>>::new(2));
            let q1 = q.clone();
            let a = thread::spawn(move || {
                q1.push(Box::new(10));
                q1.push(Box::new(11));
            });
            let q2 = q.clone();
            let b = thread::spawn(move || q2.push(Box::new(20)));
            let t = taker(&q, 2);
            a.join().unwrap();
            b.join().unwrap();
            let mut got = t.join().unwrap();
            assert!(!got.contains(&11) || got.contains(&10), "{got:?}");
            drain(&q, &mut got);
            let pos = |v: u32| got.iter().position(|&x| x == v).unwrap();
            assert!(pos(10) < pos(11), "{got:?}");
            got.sort_unstable();
            assert_eq!(got, [10, 11, 20]);
        });
    }

    /// A taker that decided the ring was empty must not then take from the overflow what is
    /// younger than what a pusher put in the ring meanwhile: the ring starts full with the
    /// overflow holding one more (1, 2 | 3); taker B empties both while taker A looks and the
    /// pusher pushes 4, 5 (the ring) and 6 (the overflow again). Each taker sees increasing
    /// items.
    #[test]
    fn overflow_taker_after_the_ring_refills() {
        crate::loom::model_bounded(3, || {
            let q = Arc::new(GlobalQueue::<Box<u32>>::new(2));
            (1..=3).for_each(|i| q.push(Box::new(i)));
            let q1 = q.clone();
            let pusher = thread::spawn(move || (4..=6).for_each(|i| q1.push(Box::new(i))));
            let two_pops = |q: &Arc<GlobalQueue<Box<u32>>>| {
                let q = q.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    q.pop_batch(2, |x| got.push(*x));
                    q.pop_batch(2, |x| got.push(*x));
                    got
                })
            };
            let (a, b) = (two_pops(&q), two_pops(&q));
            pusher.join().unwrap();
            let mut all = Vec::new();
            for got in [a.join().unwrap(), b.join().unwrap()] {
                assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
                all.extend(got);
            }
            drain(&q, &mut all);
            all.sort_unstable();
            assert_eq!(all, [1, 2, 3, 4, 5, 6]);
        });
    }

    /// Two takers racing for batches while a pusher fills: nothing taken twice or lost.
    #[test]
    fn takers_race_for_a_batch() {
        loom::model(|| {
            let q = Arc::new(GlobalQueue::<Box<u32>>::new(4));
            q.push(Box::new(1));
            let q1 = q.clone();
            let pusher = thread::spawn(move || q1.push(Box::new(2)));
            let (t1, t2) = (taker(&q, 2), taker(&q, 2));
            pusher.join().unwrap();
            let mut all = t1.join().unwrap();
            all.extend(t2.join().unwrap());
            drain(&q, &mut all);
            all.sort_unstable();
            assert_eq!(all, [1, 2]);
        });
    }

    /// A taker that finds the queue empty while a push completes concurrently: the pusher's
    /// claim comes before its wake-up (`wake_for`), so either the taker gets the item or the
    /// queue still shows it afterwards (no item is visible to neither).
    #[test]
    fn a_push_is_seen_or_left_queued() {
        loom::model(|| {
            let q = Arc::new(GlobalQueue::<Box<u32>>::new(2));
            let q1 = q.clone();
            let pusher = thread::spawn(move || q1.push(Box::new(7)));
            let q2 = q.clone();
            let looker = thread::spawn(move || {
                let mut got = Vec::new();
                q2.pop_batch(1, |x| got.push(*x));
                (got, q2.is_empty())
            });
            pusher.join().unwrap();
            let (mut got, _) = looker.join().unwrap();
            assert!(got.is_empty() != q.is_empty(), "{got:?}");
            drain(&q, &mut got);
            assert_eq!(got, [7]);
        });
    }
}
