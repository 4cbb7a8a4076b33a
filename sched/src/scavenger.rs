//! The background scavenger: gives the memory of idle pooled stacks and goroutine cells back to
//! the kernel, in batches, off the hot path (Go's `bgscavenge`, mgcscavenge.go). It runs on the
//! sysmon thread (`sysmon.rs` calls [`tick`] every round and [`tick_idle`] before it sleeps for
//! lack of work), so it adds no thread for the deadlock check to count. `docs/ARCHITECTURE.md`
//! §7 says what is idle (below a pool's low-water mark for a whole `PERIOD`), what the
//! retained target is and why, and how the work is paced; this file is that policy, and
//! `stack.rs` (`take_idle`, `release_run`, `unmap_idle_slabs`) and `cellcache.rs` (`trim_idle`,
//! `return_freed_pages`) are the mechanisms.
//!
//! One look, at the end of a period: take the idle stacks of every class (sorted by address,
//! they wait in `pending`, with the stacks cached by the Ps that idle), free the idle cells of
//! every global pool and the cells cached by the Ps that idle (`empty_idle_caches`,
//! `cellcache::trim_idle`). Every look: release
//! `pending` a run at a time, on credit while the program runs (`BUSY_SHARE` of the time since
//! the last look, at most `MAX_CREDIT` saved; an overrun is paid back), all of it while every P
//! idles (stopping if a P is taken). Once `pending` is empty after a period that took stacks,
//! unmap the slabs left with nothing in use; after a period that took stacks or freed cells,
//! if every P is idle, have the C allocator return its free pages (`trim_malloc`).
//!
//! Invariants: only the sysmon thread calls in (the state is its thread-local); a stack
//! in `pending` is out of every pool list and counts as in use for its slab, so its slab is not
//! unmapped under it; no pool lock is held across a system call.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use crate::scheduler::retake;
use crate::stack::{self, Stack};

/// A pooled stack or cell that no allocation reached for this long is idle.
const PERIOD: Duration = Duration::from_millis(500);
/// The share of one CPU the scavenger may use while the program runs.
const BUSY_SHARE: f64 = 0.01;
/// Most credit saved up while busy: the longest the scavenger works in one go then.
const MAX_CREDIT: Duration = Duration::from_millis(1);
/// The shortest sleep `tick_idle` asks of sysmon.
const MIN_NAP: Duration = Duration::from_millis(1);

std::thread_local! {
    /// The scavenger's state: a thread-local of the sysmon thread, the only one that calls in,
    /// so no lock (and no place in the lock order) is needed.
    static STATE: RefCell<Option<Scavenger>> = const { RefCell::new(None) };
}

struct Scavenger {
    /// When the current period began.
    period_start: Instant,
    /// The last look, from which credit accrues.
    last: Instant,
    /// Work time the scavenger may still spend while busy, in nanoseconds (negative: overrun
    /// to pay back).
    credit_ns: i64,
    /// Idle stacks taken from the pools, not yet released: batches of at most a few thousand,
    /// each sorted for `release_run` (`stack::take_idle` says why not one list). No batch is
    /// empty.
    pending: Vec<stack::Batch>,
    /// Idle cells, or list chunks, were freed since the last idle look: their pages wait for
    /// the Ms to collect.
    cells_freed: bool,
    /// `ring::chunks_freed()` at the last look.
    chunks_seen: usize,
    /// Stacks were taken this period: once they are released, look for idle slabs to unmap.
    unmap_due: bool,
    /// Stacks were taken or cells freed since the last `trim_malloc`: trim at the next idle
    /// look.
    trim_due: bool,
}

/// One look while the program runs (sysmon's round): at the end of a period, takes the idle
/// stacks and frees the idle cells; then releases taken stacks while it has credit.
pub(crate) fn tick(now: Instant) {
    STATE.with_borrow_mut(|state| tick_in(look(state, now, true)));
}

fn tick_in(s: &mut Scavenger) {
    while !s.pending.is_empty() && s.credit_ns > 0 {
        let start = Instant::now();
        release_one_run(&mut s.pending);
        s.credit_ns -= start.elapsed().as_nanos() as i64;
    }
    if s.pending.is_empty() && s.credit_ns > 0 && std::mem::take(&mut s.unmap_due) {
        let start = Instant::now();
        stack::unmap_idle_slabs();
        s.credit_ns -= start.elapsed().as_nanos() as i64;
    }
}

/// Releases one run of the last pending batch (`stack::release_run`), dropping the batch once
/// it is empty.
fn release_one_run(pending: &mut Vec<stack::Batch>) {
    if let Some(batch) = pending.last_mut() {
        stack::release_run(batch);
        if batch.is_empty() {
            pending.pop();
        }
    }
}

/// One look before sysmon sleeps because every P is idle: as [`tick`], but releases every
/// taken stack at once, stopping only if a P is taken meanwhile, then unmaps idle slabs and
/// trims the C allocator (`trim_malloc`); if idle cells were freed, pokes every M, each of
/// which has mimalloc return the pages its thread owns (`poke_every_m`). Returns how long
/// sysmon may sleep, at most `longest`:
/// until the end of the period while anything is pooled beyond the per-P caches (so what a
/// burst left behind comes back one or two periods after it, not `longest` later), else
/// `longest`.
pub(crate) fn tick_idle(now: Instant, longest: Duration) -> Duration {
    STATE.with_borrow_mut(|state| tick_idle_in(look(state, now, false), now, longest))
}

fn tick_idle_in(s: &mut Scavenger, now: Instant, longest: Duration) -> Duration {
    while !s.pending.is_empty() && retake::all_idle() {
        release_one_run(&mut s.pending);
    }
    if s.pending.is_empty() && std::mem::take(&mut s.unmap_due) {
        stack::unmap_idle_slabs();
    }
    if s.pending.is_empty() && retake::all_idle() && std::mem::take(&mut s.trim_due) {
        trim_malloc();
    }
    if std::mem::take(&mut s.cells_freed) && retake::all_idle() {
        poke_every_m();
    }
    let pooled = !s.pending.is_empty()
        || stack::pooled_stacks().0 > 0
        || crate::cellcache::pooled_globally() > 0;
    if !pooled {
        return longest;
    }
    let period_end = s.period_start + PERIOD;
    period_end
        .saturating_duration_since(now)
        .clamp(MIN_NAP, longest)
}

/// The state, with the credit earned since the last look and, at the end of a period, the idle
/// stacks taken and the idle cells freed. While the program runs (`busy`), that work is paid
/// from the credit too, so the scavenger's average stays at `BUSY_SHARE` even when one period
/// takes a large burst (sorting a million stacks and freeing the pooled cells take tens of ms).
fn look(state: &mut Option<Scavenger>, now: Instant, busy: bool) -> &mut Scavenger {
    let s = state.get_or_insert_with(|| Scavenger {
        period_start: now,
        last: now,
        credit_ns: 0,
        pending: Vec::new(),
        cells_freed: false,
        chunks_seen: 0,
        unmap_due: false,
        trim_due: false,
    });
    let earned = now.saturating_duration_since(s.last).mul_f64(BUSY_SHARE);
    s.credit_ns = (s.credit_ns + earned.as_nanos() as i64).min(MAX_CREDIT.as_nanos() as i64);
    s.last = now;
    if now.saturating_duration_since(s.period_start) >= PERIOD {
        s.period_start = now;
        let (cells, stacks) = empty_idle_caches();
        let before = s.pending.len();
        for cached in stacks.into_iter().filter(|c| !c.is_empty()) {
            let mut batch = stack::Batch::with_capacity(cached.len());
            cached.into_iter().for_each(|s| batch.push_back(s));
            stack::sort_for_release(batch.as_mut_slice());
            s.pending.push(batch);
        }
        stack::take_idle(&mut s.pending);
        if s.pending.len() != before {
            s.unmap_due = true;
            s.trim_due = true;
        }
        // Freed cells, and chunks the runtime's lists freed during the period (`ring.rs`),
        // leave mimalloc pages for their threads to return; the glibc arenas may have free
        // pages too: trim afterwards as for stacks.
        let chunks = crate::ring::chunks_freed();
        let freed_chunks = std::mem::replace(&mut s.chunks_seen, chunks) != chunks;
        let freed = crate::cellcache::trim_idle(cells) > 0 || freed_chunks;
        if freed {
            crate::cellcache::ask_threads_to_collect();
        }
        s.cells_freed |= freed;
        s.trim_due |= freed;
        if busy {
            s.credit_ns -= now.elapsed().as_nanos() as i64;
        }
    }
    s
}

/// Pokes every M, so that each, asleep or when it next waits, has mimalloc return the pages
/// of the cells just freed that its thread owns (`cellcache::return_freed_pages`; only the
/// owning thread can). Waking one M was not enough: the pages of the others, the watcher's
/// among them, stayed until they next woke (`docs/BENCHMARKS.md`, session 6).
fn poke_every_m() {
    for m in crate::sysmon::machines() {
        m.poke();
    }
}

/// Empties the cell and stack caches of the Ps that are idle now (on the idle list, so no M
/// uses them): what a burst left there pins memory for as long as the P idles, and a P that
/// runs again refills them in a few spawns. One pass under the idle lock, which allows no
/// allocation: both vectors are reserved for `maxprocs` Ps before, and Ps beyond (added by
/// `set_maxprocs` meanwhile) wait for the next period.
fn empty_idle_caches() -> (Vec<crate::cellcache::CellCache>, Vec<Vec<Stack>>) {
    let n = crate::maxprocs();
    let (mut cells, mut stacks) = (Vec::with_capacity(n), Vec::with_capacity(n));
    retake::for_each_idle_p(|p| {
        if cells.len() < n {
            cells.push(p.cells.take());
            stacks.push(p.take_stack_cache());
        }
    });
    (cells, stacks)
}

/// After a burst's stacks went back while the program idles: has the C allocator return its
/// free memory too (glibc's `malloc_trim`: the free pages inside every arena, and the main
/// arena's top). The queues and lists the rest of the runtime grew for the burst live in the
/// program's allocator (std's, glibc's `malloc` by default), and glibc gives back only the top
/// of its main heap on its own. A thread arena's top stays: `docs/ARCHITECTURE.md` §7,
/// *Limits*. Once per period that took stacks or freed cells, and only while every P is idle.
/// The scavenger's own thread then returns the mimalloc pages it owns (the chunks of the lists
/// it emptied, `ring.rs`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_malloc() {
    crate::cellcache::return_freed_pages();
    // SAFETY: `malloc_trim` has no preconditions; glibc takes each arena's lock itself.
    unsafe { libc::malloc_trim(0) };
}

/// Other C libraries have no `malloc_trim`.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_malloc() {
    crate::cellcache::return_freed_pages();
}
