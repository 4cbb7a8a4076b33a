//! P: a logical processor, the right to run goroutines, with its local run queue, its
//! `runnext` slot and its cache of stacks.
//!
//! A P is owned by one M at a time (`Box<Processor>` moves between Ms and the idle list), so
//! its owner-side operations take `&mut self` and need no synchronisation. What other Ms touch
//! lives in `ProcShared` (one per P id, in the scheduler's fixed array): the stealing end of the
//! run queue, `runnext` (stealable only as a last resort, see `scheduler::steal_runnext`) and
//! the schedule tick used to tell whether the P is making progress.
//!
//! Run queue discipline, as in Go's `runqput`/`runqget`: a spawned goroutine goes to `runnext`
//! only if it is empty, else to the tail (`runq_put_spawned`, or the global queue when
//! `spawn_spreads` and its ring has room: `scheduler/submit.rs`). In migrate mode a goroutine
//! readied by the running one goes to `runnext` and runs next, and the goroutine it displaces
//! goes to the tail of the local queue (`runq_put`); in the default mode a P's queues hold only
//! goroutines that have not started, and readied ones go to their home M
//! (`scheduler/home.rs`). `runq_get` bounds how long `runnext` can keep the
//! queue waiting (`RUNNEXT_STREAK`). The local queue is a fixed ring of Go's 256 slots
//! (`run_queue.rs`); thieves take half of it (`RunQueue::steal_into`). What is pushed beyond
//! waits, in order, in the owner's `spill` (a `ChunkedDeque`, on mimalloc), which refills the
//! queue as the owner takes from it and as it pushes (thieves take from the queue only, and a
//! spawner that keeps spawning takes nothing). Go's `runqputslow` moves the overflow to the
//! global queue instead; a goroutine through the global queue costs a compare-and-swap more,
//! which made a burst of spawns at one P 15 % dearer.
//! Invariants: the queue never holds more than `RUNQ_MAX` goroutines (batches taken into it,
//! from other Ps or the global queue, are limited to its room: `runq_batch_limit`); what the
//! owner pushes goes behind everything it pushed before, across the queue and `spill`;
//! `StealEnd::spilled` is true while `spill` is not empty, so a P whose queue thieves emptied
//! still counts as having work.
//!
//! Stack cache: up to `STACK_CACHE` stacks of the default size are kept per P, so a spawn/exit
//! cycle reuses a warm stack with no system call. The cap bounds what the cache can hold
//! resident: `STACK_CACHE` × the default stack size per P. Beyond it, stacks go back to their
//! size class (`stack.rs`), whose dirty list the scavenger releases in bulk; it also empties
//! the caches of the Ps that are idle at the end of its period (`take_stack_cache`).

use crate::chunked::ChunkedDeque;
use crate::loom::std_only::OnceLock;
use crate::loom::{AtomicBool, AtomicU64, Ordering};
use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::goroutine::{GRef, Header};
use crate::run_queue::{RunQueue, RUNQ_LEN};
use crate::runnext::RunNext;
use crate::stack::{self, Stack, StackError};

/// Stacks of the default size kept per P.
const STACK_CACHE: usize = 16;

/// The part of a P other Ms may touch. One per P id, never freed.
///
/// Each group of fields has a cache line of its own: thieves read `queue` on every steal
/// attempt, while the owner writes `runnext` and the counters on every spawn and schedule;
/// sharing one line made each of the owner's writes a cache miss whenever a thief was looking
/// (`docs/BENCHMARKS.md`, spawn+join).
pub(crate) struct ProcShared {
    pub(crate) steal: CachePadded<StealEnd>,
    /// The goroutine to run next, or null: an owned reference (`runnext.rs`).
    pub(crate) runnext: CachePadded<RunNext<Header>>,
    counters: CachePadded<Counters>,
}

/// What thieves read: the stealing end of the queue, and whether `spill` holds goroutines
/// beyond it (written by the owner only when that changes, which a burst does twice).
pub(crate) struct StealEnd {
    pub(crate) queue: OnceLock<&'static RunQueue<GRef>>,
    spilled: AtomicBool,
}

/// Written only by the owner (load + store, no RMW); read now and then by others.
struct Counters {
    /// The owner's schedule count (relaxed; a progress signal for thieves, not a lock; and
    /// `stats()`'s schedules).
    schedtick: AtomicU64,
    /// Goroutines spawned / ended on this P, summed over all Ps by `num_goroutine`.
    spawned: AtomicU64,
    exited: AtomicU64,
    /// Goroutines that parked on this P, and that this P stole from other Ps (`stats()`, the
    /// schedtrace).
    parks: AtomicU64,
    steals: AtomicU64,
}

/// One P's counters, as `stats()` sums them.
#[derive(Default, Clone, Copy)]
pub(crate) struct PCounts {
    pub(crate) spawned: u64,
    pub(crate) exited: u64,
    pub(crate) schedules: u64,
    pub(crate) parks: u64,
    pub(crate) steals: u64,
}

impl ProcShared {
    pub(crate) fn new() -> ProcShared {
        ProcShared {
            steal: CachePadded::new(StealEnd {
                queue: OnceLock::new(),
                spilled: AtomicBool::new(false),
            }),
            runnext: CachePadded::new(RunNext::new()),
            counters: CachePadded::new(Counters {
                schedtick: AtomicU64::new(0),
                spawned: AtomicU64::new(0),
                exited: AtomicU64::new(0),
                parks: AtomicU64::new(0),
                steals: AtomicU64::new(0),
            }),
        }
    }

    /// The owner's schedule count (see `scheduler::steal_runnext`).
    pub(crate) fn schedtick(&self) -> u32 {
        self.counters.schedtick.load(Ordering::Relaxed) as u32
    }

    /// Goroutines spawned and ended on this P so far.
    pub(crate) fn spawned_exited(&self) -> (u64, u64) {
        let c = &self.counters;
        (
            c.spawned.load(Ordering::Relaxed),
            c.exited.load(Ordering::Relaxed),
        )
    }

    /// All of this P's counters.
    pub(crate) fn counts(&self) -> PCounts {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PCounts {
            spawned: get(&c.spawned),
            exited: get(&c.exited),
            schedules: get(&c.schedtick),
            parks: get(&c.parks),
            steals: get(&c.steals),
        }
    }

    /// Goroutines in the queue (not counting `runnext`).
    pub(crate) fn queue_len(&self) -> usize {
        self.steal.queue.get().map_or(0, |q| q.len())
    }

    /// True if a thief could find work here.
    pub(crate) fn has_work(&self) -> bool {
        !self.runnext.is_empty()
            || self.steal.queue.get().is_some_and(|q| !q.is_empty())
            || self.steal.spilled.load(Ordering::Relaxed)
    }

    /// Takes `runnext` (owner or thief; each pointer is taken by exactly one `swap`).
    pub(crate) fn take_runnext(&self) -> Option<GRef> {
        let ptr = self.runnext.take();
        // SAFETY: pointers in `runnext` are owned references put there by `runq_put`.
        NonNull::new(ptr).map(|p| unsafe { GRef::from_raw(p) })
    }
}

/// A logical processor.
pub(crate) struct Processor {
    pub(crate) id: usize,
    /// This P's entry in the scheduler's `ProcShared` array.
    shared: &'static ProcShared,
    /// The queue, in `shared` too for thieves; made with the P, never freed (P ids are never
    /// reused: `maxprocs.rs`).
    runq: &'static RunQueue<GRef>,
    /// Goroutines queued behind a full `runq`, oldest first (module docs).
    spill: ChunkedDeque<GRef>,
    pub(crate) schedtick: u64,
    stacks: Vec<Stack>,
    rng: u64,
    /// Consecutive goroutines taken from `runnext` (see `runq_get`).
    runnext_streak: u32,
    /// Free goroutine cells (`cellcache.rs`).
    pub(crate) cells: crate::cellcache::CellCache,
    /// Each P's schedule tick and queue length as this P last saw them, and since when
    /// (`take_from_stalled`).
    pub(crate) stall_watch: Vec<crate::scheduler::VictimWatch>,
    /// Goroutine ids reserved for this P: `goid_next..goid_end`.
    goid_next: u64,
    goid_end: u64,
    /// Spawns made while `runnext` was taken, counted for `spawn_spreads`.
    spread_count: u32,
}

/// Goroutines taken from `runnext` in a row before the local queue's head gets a turn.
const RUNNEXT_STREAK: u32 = 16;

/// Goroutines a P's own queue holds; more wait in `spill` (module docs). Go's queue holds as
/// many.
const RUNQ_MAX: usize = RUNQ_LEN;

/// Goroutine ids a P reserves at a time.
const GOID_BATCH: u64 = 1024;

impl Processor {
    /// Creates P `id` and publishes its queue in `shared`.
    pub(crate) fn new(id: usize, shared: &'static ProcShared) -> Box<Processor> {
        let runq: &'static RunQueue<GRef> = Box::leak(Box::new(RunQueue::new(RUNQ_LEN)));
        let _ = shared.steal.queue.set(runq);
        Box::new(Processor {
            id,
            shared,
            runq,
            spill: ChunkedDeque::new(),
            schedtick: 0,
            stacks: Vec::with_capacity(STACK_CACHE),
            rng: 0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            runnext_streak: 0,
            cells: crate::cellcache::CellCache::new(),
            stall_watch: Vec::new(),
            goid_next: 0,
            goid_end: 0,
            spread_count: 0,
        })
    }

    #[inline]
    fn shared(&self) -> &'static ProcShared {
        self.shared
    }

    /// Queues a goroutine just spawned by the running one: into `runnext` if it is empty,
    /// else at the tail of the queue. Unlike `runq_put(g, true)`, a burst of spawns keeps its
    /// order (the first runs first) and costs no atomic swap per spawn on a line that thieves
    /// read. Go's `newproc` puts each new goroutine in `runnext`; what matters for a hand-off,
    /// the spawner's first child running next on this P, is the same. True if the queue grew.
    pub(crate) fn runq_put_spawned(&mut self, g: GRef) -> bool {
        let runnext = &self.shared().runnext;
        if runnext.is_empty() {
            // Only the owner puts (runnext.rs): an empty slot stays empty until this put.
            let put = runnext.put_if_empty(g.into_raw().as_ptr());
            debug_assert!(put);
            return false;
        }
        self.runq_push(g);
        true
    }

    /// Owner: appends `g` to the queue, or to `spill` if the queue is full or `spill` already
    /// holds goroutines (which are older than `g`).
    #[inline]
    fn runq_push(&mut self, g: GRef) {
        let g = if self.spill.is_empty() {
            match self.runq.push(g) {
                Ok(()) => return,
                Err(g) => g,
            }
        } else {
            g
        };
        self.spill_push(g);
    }

    #[cold]
    fn spill_push(&mut self, g: GRef) {
        if self.spill.is_empty() {
            self.shared().steal.spilled.store(true, Ordering::Relaxed);
        }
        self.spill.push_back(g);
        // Thieves take from the queue only: a spawner that keeps spawning keeps it stocked.
        if self.runq.len() < RUNQ_MAX / 2 {
            self.refill();
        }
    }

    /// Owner: the queue's head, after refilling the queue from `spill` if it is under half
    /// full.
    #[inline]
    fn runq_pop(&mut self) -> Option<GRef> {
        if !self.spill.is_empty() && self.runq.len() < RUNQ_MAX / 2 {
            self.refill();
        }
        self.runq.pop()
    }

    #[cold]
    fn refill(&mut self) {
        let room = RUNQ_MAX.saturating_sub(self.runq.len());
        for _ in 0..room {
            let Some(g) = self.spill.pop_front() else {
                break;
            };
            if let Err(g) = self.runq.push(g) {
                self.spill.push_front(g);
                break;
            }
        }
        if self.spill.is_empty() {
            self.shared().steal.spilled.store(false, Ordering::Relaxed);
        }
    }

    /// Where a goroutine this P spawns should start, in the thread-affine mode: false to keep
    /// it here (`runq_put_spawned`), true to put it on the global queue, where any idle M takes
    /// it. A goroutine stays on the thread that first runs it, so where it starts is where it
    /// runs for good; a burst of spawns (a pipeline's stages, a fan-out) that all started on the
    /// spawner's thread could never spread again. The first child still runs next here
    /// (`runnext` is empty: the fork-join hand-off); after it, one spawn in `nprocs` stays and
    /// the others go to the global queue.
    pub(crate) fn spawn_spreads(&mut self, nprocs: usize) -> bool {
        if nprocs < 2 || self.runnext_is_empty() {
            return false;
        }
        self.spread_count = self.spread_count.wrapping_add(1);
        self.spread_count as usize % nprocs != 0
    }

    /// True if `runnext` holds no goroutine.
    #[inline]
    pub(crate) fn runnext_is_empty(&self) -> bool {
        self.shared().runnext.is_empty()
    }

    /// Owner: queues `g`. With `next`, `g` goes to `runnext` and the goroutine it displaces to
    /// the tail of the queue. Returns true if the local queue grew (thieves may want it).
    pub(crate) fn runq_put(&mut self, g: GRef, next: bool) -> bool {
        if !next {
            self.runq_push(g);
            return true;
        }
        let old = self.shared().runnext.put(g.into_raw().as_ptr());
        match NonNull::new(old) {
            None => false,
            Some(old) => {
                // SAFETY: `old` was an owned reference in `runnext`, now ours.
                self.runq_push(unsafe { GRef::from_raw(old) });
                true
            }
        }
    }

    /// Owner: the next goroutine to run: `runnext` first, then the queue head. After
    /// `RUNNEXT_STREAK` runnext goroutines in a row, the queue head goes first once: a pair
    /// that keeps waking each other would otherwise keep the rest of the queue waiting for as
    /// long as it runs (Go bounds this with the time slice and preemption; tokio with a count).
    pub(crate) fn runq_get(&mut self) -> Option<GRef> {
        if self.runnext_streak >= RUNNEXT_STREAK {
            self.runnext_streak = 0;
            if let Some(g) = self.runq_pop() {
                return Some(g);
            }
        }
        match self.shared().take_runnext() {
            Some(g) => {
                self.runnext_streak += 1;
                Some(g)
            }
            None => {
                self.runnext_streak = 0;
                self.runq_pop()
            }
        }
    }

    /// True if goroutines wait in this P's queue or `runnext`.
    pub(crate) fn has_work(&self) -> bool {
        self.shared().has_work()
    }

    /// The local queue, as a destination for batch steals.
    pub(crate) fn runq(&self) -> &'static RunQueue<GRef> {
        self.runq
    }

    /// How many goroutines a batch taken into this P's queue may bring (`steal.rs`,
    /// `find.rs`), counting the one the taker runs at once, which is never queued: the queue
    /// stays within `RUNQ_MAX` (module docs). At least 1.
    pub(crate) fn runq_batch_limit(&self) -> usize {
        RUNQ_MAX.saturating_sub(self.runq.len()) + 1
    }

    /// Owner: drains everything queued here (used when this P is retired).
    pub(crate) fn runq_drain(&mut self) -> Vec<GRef> {
        let mut all = Vec::new();
        while let Some(g) = self.runq_get() {
            all.push(g);
        }
        all
    }

    /// The next goroutine id from this P's reserved batch.
    pub(crate) fn next_goid(&mut self) -> u64 {
        if self.goid_next == self.goid_end {
            self.goid_next = crate::scheduler::reserve_goids(GOID_BATCH);
            self.goid_end = self.goid_next + GOID_BATCH;
        }
        self.goid_next += 1;
        self.goid_next - 1
    }

    /// Counts a goroutine spawned on this P.
    pub(crate) fn count_spawn(&mut self) {
        bump(&self.shared().counters.spawned);
    }

    /// Counts a goroutine that ended on this P.
    pub(crate) fn count_exit(&mut self) {
        bump(&self.shared().counters.exited);
    }

    /// Counts a goroutine that parked on this P.
    pub(crate) fn count_park(&mut self) {
        bump(&self.shared().counters.parks);
    }

    /// Counts a goroutine stolen from another P.
    pub(crate) fn count_steal(&mut self) {
        bump(&self.shared().counters.steals);
    }

    /// Records one scheduling round.
    pub(crate) fn tick(&mut self) -> u32 {
        self.schedtick = self.schedtick.wrapping_add(1);
        self.shared()
            .counters
            .schedtick
            .store(self.schedtick, Ordering::Relaxed);
        self.schedtick as u32
    }

    /// A fast pseudo-random number (xorshift*), for victim selection.
    pub(crate) fn random(&mut self) -> u32 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    /// A stack for a goroutine that asked for `size` bytes (0: the default).
    pub(crate) fn take_stack(&mut self, size: usize) -> Result<Stack, StackError> {
        let size = effective_stack_size(size);
        if size == crate::config::default_stack_size() {
            if let Some(s) = self.stacks.pop() {
                return Ok(s);
            }
        }
        stack::alloc_stack(size)
    }

    /// Returns the stack of a goroutine that ended.
    pub(crate) fn put_stack(&mut self, s: Stack) {
        if s.usable_size() == crate::config::default_stack_size() && self.stacks.len() < STACK_CACHE
        {
            self.stacks.push(s);
        } else {
            stack::free_stack(s);
        }
    }

    /// Empties the stack cache, for the scavenger while this P is idle (`scavenger::look`):
    /// the cached stacks, each with its touched pages resident, go back to be released. No
    /// allocation; the next `put_stack` regrows the list.
    pub(crate) fn take_stack_cache(&mut self) -> Vec<Stack> {
        std::mem::take(&mut self.stacks)
    }
}

/// Owner-only increment: a load and a store, no locked RMW (only the owner writes).
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

fn effective_stack_size(size: usize) -> usize {
    if size == 0 {
        crate::config::default_stack_size()
    } else {
        size
    }
}

/// The usable size a goroutine that asked for `size` bytes (0: the default) gets.
pub(crate) fn stack_size_for(size: usize) -> usize {
    effective_stack_size(size)
}
