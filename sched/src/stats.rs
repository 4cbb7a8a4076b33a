//! Counters the program can read (`stats()`): what the scheduler and sysmon did. Events counted
//! here are rare (a preemption, a hand-off, a poll, a batch of timers), so each is one relaxed
//! add on a process-wide atomic; frequent ones (spawns, ends, schedules, parks, steals) are
//! per-P counters that only their P writes (a load and a store, `processor.rs`), summed on
//! read. Cheap enough to leave on: nothing here can be turned off.

use crate::loom::std_only::AtomicU64;
use crate::loom::Ordering;
use crate::preempt::{OUT_IN_RUNTIME, OUT_NOT_GOROUTINE, OUT_NO_P, OUT_STALE};

pub(crate) static PREEMPT_REQUESTS: AtomicU64 = AtomicU64::new(0);
pub(crate) static COOP_YIELDS: AtomicU64 = AtomicU64::new(0);
pub(crate) static SIGNAL_STOPS: AtomicU64 = AtomicU64::new(0);
pub(crate) static SIGNAL_DETACHES: AtomicU64 = AtomicU64::new(0);
pub(crate) static P_HANDOFFS: AtomicU64 = AtomicU64::new(0);
pub(crate) static STOP_TIMEOUTS: AtomicU64 = AtomicU64::new(0);
pub(crate) static REFUSED_STALE: AtomicU64 = AtomicU64::new(0);
pub(crate) static REFUSED_IN_RUNTIME: AtomicU64 = AtomicU64::new(0);
pub(crate) static REFUSED_NOT_GOROUTINE: AtomicU64 = AtomicU64::new(0);
pub(crate) static REFUSED_NO_P: AtomicU64 = AtomicU64::new(0);
pub(crate) static SYSMON_ROUNDS: AtomicU64 = AtomicU64::new(0);
pub(crate) static POLLS: AtomicU64 = AtomicU64::new(0);
pub(crate) static TIMERS_FIRED: AtomicU64 = AtomicU64::new(0);

#[inline]
pub(crate) fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Counts a signal the handler refused, by its answer (`preempt.rs`).
pub(crate) fn count_refusal(outcome: u64) {
    match outcome {
        OUT_STALE => count(&REFUSED_STALE),
        OUT_IN_RUNTIME => count(&REFUSED_IN_RUNTIME),
        OUT_NOT_GOROUTINE => count(&REFUSED_NOT_GOROUTINE),
        OUT_NO_P => count(&REFUSED_NO_P),
        _ => {}
    }
}

/// A snapshot of the runtime's counters ([`stats`]). Counters only grow; compare two snapshots
/// to see what happened in between.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Goroutines alive (spawned and not yet ended).
    pub goroutines: usize,
    /// Goroutines ever spawned.
    pub goroutines_created: u64,
    /// Times a P started or resumed a goroutine (context switches into goroutines).
    pub schedules: u64,
    /// Times a goroutine parked (blocked on a channel, lock, timer, socket...).
    pub parks: u64,
    /// Times a P took work from another P's queue.
    pub steals: u64,
    /// Polls of the netpoller (blocking or not).
    pub polls: u64,
    /// Timers fired (sleeps, timeouts, `after`, tickers).
    pub timers_fired: u64,
    /// Timers in the heap now, live or stopped and not yet swept.
    pub timers_pending: usize,
    /// OS threads the scheduler started (Ms; they never exit).
    pub threads: usize,
    /// Ms idle now.
    pub idle_threads: usize,
    /// Times sysmon asked a goroutine that ran a whole time slice to yield.
    pub preempt_requests: u64,
    /// Times a goroutine yielded at a preemption point because it was asked to.
    pub cooperative_yields: u64,
    /// Threads stopped by signal so their P could run other goroutines.
    pub signal_stops: u64,
    /// Ps taken by signal from threads blocked in calls gort does not know about.
    pub signal_detaches: u64,
    /// Ps sysmon moved from one thread to another (stops plus detaches).
    pub p_handoffs: u64,
    /// Stopped threads resumed without a P because none came back in time.
    pub stop_timeouts: u64,
    /// Signals the handler declined because the run had already ended.
    pub refused_stale: u64,
    /// Signals declined because the thread was inside the runtime (a scheduler lock, its P
    /// lent out).
    pub refused_in_runtime: u64,
    /// Signals declined because the thread ran scheduler code, not a goroutine.
    pub refused_not_goroutine: u64,
    /// Signals declined because the thread held no P.
    pub refused_no_p: u64,
    /// Times sysmon looked at every thread.
    pub sysmon_rounds: u64,
    /// Threads in the blocking pool (`blocking`), busy or idle.
    pub blocking_threads: usize,
    /// Blocking-pool threads running a job now.
    pub blocking_busy: usize,
    /// Parked goroutines whose stacks are compacted now (`enable_stack_compaction`).
    pub stacks_compacted: usize,
    /// Heap bytes holding the compacted stacks now.
    pub compacted_stack_bytes: usize,
    /// Times a parked goroutine's stack was compacted.
    pub stack_compactions: u64,
    /// Times a compacted stack was copied back before its goroutine ran.
    pub stack_restores: u64,
}

/// The runtime's counters now.
///
/// ```
/// let before = sched::stats();
/// sched::spawn(|| ()).join().unwrap();
/// let after = sched::stats();
/// assert!(after.threads >= 1);
/// assert!(after.goroutines_created > before.goroutines_created);
/// assert!(after.preempt_requests >= before.preempt_requests);
/// ```
pub fn stats() -> Stats {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let view = crate::scheduler::view();
    let compacted = crate::compact::counts();
    Stats {
        goroutines: crate::scheduler::num_goroutine(),
        goroutines_created: view.counts.spawned,
        schedules: view.counts.schedules,
        parks: view.counts.parks,
        steals: view.counts.steals,
        polls: get(&POLLS),
        timers_fired: get(&TIMERS_FIRED),
        timers_pending: crate::timer::entries_now(),
        threads: view.threads,
        idle_threads: view.idle_threads,
        preempt_requests: get(&PREEMPT_REQUESTS),
        cooperative_yields: get(&COOP_YIELDS),
        signal_stops: get(&SIGNAL_STOPS),
        signal_detaches: get(&SIGNAL_DETACHES),
        p_handoffs: get(&P_HANDOFFS),
        stop_timeouts: get(&STOP_TIMEOUTS),
        refused_stale: get(&REFUSED_STALE),
        refused_in_runtime: get(&REFUSED_IN_RUNTIME),
        refused_not_goroutine: get(&REFUSED_NOT_GOROUTINE),
        refused_no_p: get(&REFUSED_NO_P),
        sysmon_rounds: get(&SYSMON_ROUNDS),
        blocking_threads: crate::blocking::blocking_pool_threads(),
        blocking_busy: crate::blocking::blocking_pool_busy(),
        stacks_compacted: compacted.0,
        compacted_stack_bytes: compacted.3,
        stack_compactions: compacted.1,
        stack_restores: compacted.2,
    }
}
