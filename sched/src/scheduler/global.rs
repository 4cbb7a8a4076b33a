//! The global run queue (Go's `sched.runq`, `globrunqput`, `globrunqget`): goroutines any M
//! may take. Spawns from plain threads and the share of a burst `Processor::spawn_spreads` sends
//! here; in migrate mode also goroutines readied without a P (the watcher in the poller, a plain
//! thread).
//!
//! A `ChunkedDeque` under a leaf lock, as Go's is a list under `sched.lock`. It was
//! crossbeam's `Injector`, whose blocks of 63 slots were allocated by the pushing M in the
//! program's allocator and freed by the taker: at two Ps a burst of spawns passed megabytes of
//! them through each M's glibc arena, whose top glibc never gives back (`ring.rs`). The
//! deque's chunks live in mimalloc.
//!
//! Invariants: `len` is the deque's length, written under the lock after each change and read
//! without it (`is_empty`, `len`: what the idle protocol, `work_waiting` and the deadlock check
//! look at). A push is a SeqCst store of `len` before the pusher's fence in
//! `IdleSet::wake_for`; an M giving up its P fences and then reads `len` (`release_p`): one of
//! the two sees the other (the argument is in `idle.rs`). The lock is a leaf
//! (`docs/HACKING.md`, lock order).

use crate::chunked::ChunkedDeque;
use crate::goroutine::GRef;
use crate::loom::{lock, AtomicUsize, Mutex, Ordering};
use crate::processor::Processor;

/// The global run queue (module docs).
pub(crate) struct GlobalQueue {
    queue: Mutex<ChunkedDeque<GRef>>,
    len: AtomicUsize,
}

impl GlobalQueue {
    pub(crate) fn new() -> GlobalQueue {
        GlobalQueue {
            queue: Mutex::new(ChunkedDeque::new()),
            len: AtomicUsize::new(0),
        }
    }

    /// Queues `g` at the tail.
    pub(crate) fn push(&self, g: GRef) {
        let mut q = lock(&self.queue);
        q.push_back(g);
        self.len.store(q.len(), Ordering::SeqCst);
    }

    /// True if nothing is queued (read without the lock).
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many goroutines are queued (read without the lock).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::SeqCst)
    }

    /// Takes the head.
    pub(crate) fn pop(&self) -> Option<GRef> {
        if self.is_empty() {
            return None;
        }
        let mut q = lock(&self.queue);
        let g = q.pop_front();
        self.len.store(q.len(), Ordering::SeqCst);
        g
    }

    /// Takes up to `limit` goroutines from the head: the first is returned, the others go to
    /// the tail of `p`'s queue (whose room the caller checked: `Processor::runq_batch_limit`).
    pub(crate) fn pop_batch(&self, p: &mut Processor, limit: usize) -> Option<GRef> {
        if self.is_empty() {
            return None;
        }
        let mut q = lock(&self.queue);
        let first = q.pop_front();
        for _ in 1..limit {
            let Some(g) = q.pop_front() else {
                break;
            };
            p.runq().push(g);
        }
        self.len.store(q.len(), Ordering::SeqCst);
        first
    }
}
