//! The timer heaps: one shard per M (a binary min-heap under its own lock), and the earliest
//! deadline over all shards (`next`), kept exact under one small lock taken only when a shard's
//! earliest deadline changes.
//!
//! Invariants:
//! - A shard's `next` is the deadline of its heap's top entry (or `u64::MAX`). It is written
//!   only with both the shard's heap lock and `next_lock` held, so under `next_lock` every
//!   shard's `next` is exact.
//! - The set's `next` is the minimum of the shards' `next` over `0..used`, written only under
//!   `next_lock` right after the shard's. So a timer that becomes the earliest of all is seen
//!   to be so by the one `at` that pushed it (`earliest`), exactly as with one heap: that `at`
//!   pokes the watcher, who re-reads `next`.
//! - `used` only grows: every shard that ever held an entry is below it.
//! - A shard's `entries` is its heap's length (written under its lock); the set's `live`
//!   counts the PENDING timers of all shards, incremented by `push` and decremented by whoever
//!   moves a timer out of PENDING.
//! - The heaps together hold no more than `2 * live + SWEEP_MIN` entries (plus the stops in
//!   flight): the sweep is checked after every stop and after every batch fired
//!   (`sweep_if_mostly_dead`), and sweeps every heap. No count per shard: each would be one
//!   more atomic read-modify-write on every arm and every fire.
//!
//! Lock order: a shard's heap lock, then `next_lock`. Two heap locks are never held at once.
//! No user code runs under either: actions run after the batch's lock is dropped, and a
//! stopped timer's action was dropped by its `stop` (whose caller holds the timer), so
//! dropping an entry under the lock never drops an action.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::state::{Action, TimerState};
use crate::loom::{AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};

/// Shards: M `id` uses shard `id % SHARDS` (plain threads use shard 0). More Ms than this share
/// shards, which costs only locality: any M may fire any shard's due timers.
pub(super) const SHARDS: usize = 64;

/// Stopped entries are swept only once there are at least this many (and more than live
/// ones), so a handful of timers reset in a loop does not sweep on every other stop.
pub(super) const SWEEP_MIN: usize = 64;

/// Due timers `run_shard` pops per hold of a heap lock (`run_shard` says why it is bounded).
const RUN_BATCH: usize = 128;

struct Entry {
    when: u64,
    seq: u64,
    timer: Arc<TimerState>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (self.when, self.seq) == (other.when, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> std::cmp::Ordering {
        (self.when, self.seq).cmp(&(other.when, other.seq))
    }
}

struct Heap {
    entries: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

impl Heap {
    fn top(&self) -> u64 {
        self.entries.peek().map_or(u64::MAX, |Reverse(e)| e.when)
    }
}

struct Shard {
    heap: Mutex<Heap>,
    /// The top entry's deadline, or `u64::MAX` (module invariants).
    next: AtomicU64,
    /// The heap's length, mirrored under its lock.
    entries: AtomicUsize,
}

/// All timers: the shards and what the scheduler reads without a lock.
pub(super) struct TimerSet {
    shards: Box<[CachePadded<Shard>]>,
    /// Shards `0..used` may hold entries.
    used: AtomicUsize,
    /// The earliest deadline of all shards, or `u64::MAX`.
    next: AtomicU64,
    /// Held to publish a shard's `next` and the set's (module invariants).
    next_lock: Mutex<()>,
    /// Timers that are PENDING, over all shards.
    live: AtomicUsize,
    /// Set when `pending` reported no live timer: whoever asked (an M going idle, the watcher)
    /// may have stopped watching, so the next timer to make `live` non-zero must tell the
    /// scheduler even if it is not the earliest. Cleared by that timer.
    none_seen: AtomicBool,
}

impl TimerSet {
    pub(super) fn new(shards: usize) -> TimerSet {
        TimerSet {
            shards: (0..shards)
                .map(|_| {
                    CachePadded::new(Shard {
                        heap: Mutex::new(Heap {
                            entries: BinaryHeap::new(),
                            seq: 0,
                        }),
                        next: AtomicU64::new(u64::MAX),
                        entries: AtomicUsize::new(0),
                    })
                })
                .collect(),
            used: AtomicUsize::new(0),
            next: AtomicU64::new(u64::MAX),
            next_lock: Mutex::new(()),
            live: AtomicUsize::new(0),
            none_seen: AtomicBool::new(true),
        }
    }

    /// The shard M `m` uses.
    pub(super) fn shard_of(&self, m: usize) -> usize {
        m % self.shards.len()
    }

    /// Arms `action` at `when` in shard `shard`. Returns the timer and whether the scheduler
    /// must be told (`timers_changed`): the timer is the earliest of all, or the first pending
    /// one after `pending` answered "none".
    pub(super) fn push(&self, shard: usize, when: u64, action: Action) -> (Arc<TimerState>, bool) {
        let timer = Arc::new(TimerState::new(action));
        if self.used.load(Ordering::Relaxed) <= shard {
            self.used.fetch_max(shard + 1, Ordering::SeqCst);
        }
        let s = &self.shards[shard];
        let mut heap = crate::loom::lock(&s.heap);
        heap.seq += 1;
        let seq = heap.seq;
        heap.entries.push(Reverse(Entry {
            when,
            seq,
            timer: timer.clone(),
        }));
        s.entries.store(heap.entries.len(), Ordering::Relaxed);
        // SeqCst, then read `none_seen`: the mirror image of `pending` (see there).
        let first_live = self.live.fetch_add(1, Ordering::SeqCst) == 0;
        let earliest = when < s.next.load(Ordering::Relaxed) && self.publish(s, when);
        drop(heap);
        // The first pending timer tells the scheduler even when stopped entries before it keep
        // it from being the earliest, if anyone saw no timer pending meanwhile: that M may have
        // stopped watching (the watcher does when it wakes at a stopped entry's deadline), and
        // nobody would wake for this one. If nobody asked, the watcher is still waiting for
        // the stopped entry's deadline, which comes first; poking it would be a wasted wake-up.
        let unwatched = first_live
            && self.none_seen.load(Ordering::SeqCst)
            && self.none_seen.swap(false, Ordering::SeqCst);
        (timer, earliest || unwatched)
    }

    /// Sets shard `s`'s earliest deadline to `top` (its heap lock held) and the set's to the
    /// new minimum. True if the set's earliest deadline moved earlier.
    fn publish(&self, s: &Shard, top: u64) -> bool {
        let _publishing = crate::loom::lock(&self.next_lock);
        let before = s.next.load(Ordering::Relaxed);
        s.next.store(top, Ordering::SeqCst);
        let old = self.next.load(Ordering::Relaxed);
        let new = if top <= old {
            top
        } else if before > old {
            old // this shard was not the earliest, and it still is not
        } else {
            self.min_next()
        };
        if new != old {
            self.next.store(new, Ordering::SeqCst);
        }
        new < old
    }

    /// The minimum of the shards' `next` (exact under `next_lock`).
    fn min_next(&self) -> u64 {
        let used = self.used.load(Ordering::SeqCst);
        self.shards[..used]
            .iter()
            .map(|s| s.next.load(Ordering::Relaxed))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The earliest deadline of all, or `u64::MAX`.
    pub(super) fn next(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }

    /// True if any timer is PENDING; records a "no" for `push` (the field's comment).
    pub(super) fn pending(&self) -> bool {
        if self.live.load(Ordering::Relaxed) > 0 {
            return true;
        }
        // The caller may stop watching on this answer: record that, then look again. With
        // `push` doing the mirror image (make `live` non-zero, then read `none_seen`), all
        // SeqCst, either this second look sees the new timer or that `push` sees the flag and
        // tells the scheduler.
        self.none_seen.store(true, Ordering::SeqCst);
        self.live.load(Ordering::SeqCst) > 0
    }

    /// Stops `timer`. True if it was PENDING (its action never runs).
    pub(super) fn stop(&self, timer: &TimerState) -> bool {
        let stopped = timer.stop();
        if stopped {
            self.live.fetch_sub(1, Ordering::Relaxed);
            self.sweep_if_mostly_dead();
        }
        stopped
    }

    /// Fires the timers due at `now`: shard `own`'s, then those of the other shards that were
    /// due at `others_due` (`now` or earlier). Returns how many actions ran.
    pub(super) fn run_due(&self, own: usize, now: u64, others_due: u64) -> usize {
        let mut ran = self.run_shard(own, now);
        if self.next.load(Ordering::SeqCst) <= others_due {
            let used = self.used.load(Ordering::SeqCst);
            for i in (0..used).filter(|&i| i != own) {
                if self.shards[i].next.load(Ordering::SeqCst) <= others_due {
                    ran += self.run_shard(i, now);
                }
            }
        }
        ran
    }

    /// Fires shard `i`'s timers due at `now`, in batches of at most `RUN_BATCH`: pop a batch
    /// under the heap lock, publish the new earliest deadline, drop the lock, run the batch's
    /// actions, and go on while the last batch was full. So the lock is never held for longer
    /// than `RUN_BATCH` pops (a pop costs about 0.16 µs with 100,000 entries: popping that many
    /// at once held it for about 16 ms), arming and stopping on other Ms wait for at most one
    /// batch, and another M that sees a timer still due takes the next batch and fires it in
    /// parallel instead of waiting for this one to pop them all. Timers armed meanwhile for
    /// later instants wait for the next call.
    fn run_shard(&self, i: usize, now: u64) -> usize {
        let s = &self.shards[i];
        if s.next.load(Ordering::Relaxed) > now {
            return 0;
        }
        let mut due = Vec::new();
        let mut ran = 0;
        loop {
            {
                let mut heap = crate::loom::lock(&s.heap);
                while due.len() < RUN_BATCH && heap.top() <= now {
                    let Some(Reverse(entry)) = heap.entries.pop() else {
                        break;
                    };
                    due.push(entry.timer);
                }
                shrink_if_sparse(&mut heap);
                s.entries.store(heap.entries.len(), Ordering::Relaxed);
                let top = heap.top();
                if top != s.next.load(Ordering::Relaxed) {
                    self.publish(s, top);
                }
            }
            let full = due.len() == RUN_BATCH;
            for timer in due.drain(..) {
                if let Some(action) = timer.claim() {
                    self.live.fetch_sub(1, Ordering::Relaxed);
                    // User code on the M's own stack: a panic is reported, never unwound into
                    // the scheduler (it would end this M and strand its P).
                    crate::config::contain("a timer action", action);
                    ran += 1;
                }
            }
            if !full {
                break;
            }
        }
        // Timers that just fired are no longer live: stopped entries may now outnumber the rest.
        self.sweep_if_mostly_dead();
        ran
    }

    /// Entries in all heaps, live or stopped (the mirrors, no lock).
    pub(super) fn entries_now(&self) -> usize {
        let used = self.used.load(Ordering::Relaxed);
        self.shards[..used]
            .iter()
            .map(|s| s.entries.load(Ordering::Relaxed))
            .sum()
    }

    /// Entries in all heaps, each read under its lock.
    pub(super) fn entries_locked(&self) -> usize {
        let used = self.used.load(Ordering::SeqCst);
        self.shards[..used]
            .iter()
            .map(|s| crate::loom::lock(&s.heap).entries.len())
            .sum()
    }

    /// Timers that are PENDING.
    pub(super) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Cheap check (no lock) after a timer left PENDING: if the stopped entries of all heaps
    /// are at least `SWEEP_MIN` and outnumber the live timers, sweep every heap. A sweep then
    /// removes at least half of what it visits: amortised O(1) per stop.
    fn sweep_if_mostly_dead(&self) {
        if mostly_dead(self.entries_now(), self.live()) {
            let used = self.used.load(Ordering::Relaxed);
            for s in &self.shards[..used] {
                self.sweep(s);
            }
        }
    }

    /// Drops every stopped entry of `s` in one pass (O(n), rebuilding the heap), unless the
    /// heaps are no longer mostly dead (another stopper swept first).
    fn sweep(&self, s: &Shard) {
        let mut heap = crate::loom::lock(&s.heap);
        if heap.entries.is_empty() || !mostly_dead(self.entries_now(), self.live()) {
            return;
        }
        heap.entries.retain(|Reverse(e)| e.timer.is_pending());
        shrink_if_sparse(&mut heap);
        s.entries.store(heap.entries.len(), Ordering::Relaxed);
        let top = heap.top();
        if top != s.next.load(Ordering::Relaxed) {
            self.publish(s, top);
        }
    }
}

/// True if the stopped entries among `entries` are at least `SWEEP_MIN` and outnumber the
/// `live` timers. `live` can exceed the live entries for a moment (a timer `run_shard` popped
/// but has not moved out of PENDING yet): then this underestimates, and the next stop or batch
/// sweeps.
fn mostly_dead(entries: usize, live: usize) -> bool {
    let dead = entries.saturating_sub(live);
    dead >= SWEEP_MIN && dead > live
}

/// Gives back a heap's memory after a burst (a million timers fired or swept), keeping twice
/// the current length; amortised O(1) since the length must halve between shrinks. It keeps
/// room for at least `2 * SHRINK_FLOOR` entries (384 KiB) per shard, so a load that arms and
/// fires ten thousand timers at a time does not shrink and regrow the heap every time.
fn shrink_if_sparse(heap: &mut Heap) {
    const SHRINK_FLOOR: usize = 1 << 13;
    let keep = 2 * heap.entries.len().max(SHRINK_FLOOR);
    if heap.entries.capacity() > 2 * keep {
        heap.entries.shrink_to(keep);
    }
}
