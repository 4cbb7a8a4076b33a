//! Timers: run a short action at a deadline (wake a parked goroutine, send on a channel).
//!
//! Length: about 235 lines here and 90 of tests; `set.rs` 360, `state.rs` 60, `loom_models.rs`
//! 115.
//!
//! One timer heap per M (`set.rs`: heap `m % SHARDS`; plain threads use heap 0). A goroutine's
//! timer goes into the heap of the M it runs on, and each M fires its own heap first
//! (`run_due`), so a sleeper is usually woken by its own M: the wake-up is a hand-off into that
//! M's `next`, not a push onto another M's remote queue (and maybe a wake of that thread).
//! Other heaps' due timers are fired by an M with nothing else to run (as Go's `stealWork` runs
//! other Ps' timers), and by a busy M once they are more than `OTHERS_LATE` overdue, so a
//! timer is never stranded behind its M: an M that is idle, blocked in a system call, running
//! one goroutine for long, or whose P was handed away or retired by `set_maxprocs` (timers do
//! not follow Ps at all). Started goroutines never leave their M (docs/SOUNDNESS.md), so
//! another M firing a sleeper's timer cannot run the sleeper sooner: it only hands it over.
//!
//! Why per M, not per P as Go (time.go) and not one heap (docs/BENCHMARKS.md, "Session 6:
//! timers per M"): Go keys its heaps by P because a goroutine runs on whichever P takes it; in
//! gort a started goroutine belongs to its M, which holds different Ps over time, so the M is
//! the key under which "its own heap" stays the sleeper's. Finding it is a thread-local load
//! (`current_m`), where finding the P takes `with_current_p`'s atomic swap: per P, arming and
//! stopping a timer cost about 10 % more than with one heap (timer_churn, at+stop), per M about
//! the same. One process-wide heap made every M take one lock to arm and to fire. A timer
//! wheel was rejected: its buckets need a tick (a wheel's granularity, 1 ms in tokio, is a
//! delay Go's timers do not have), and the heap's O(log n) is not what costs here.
//!
//! The earliest deadline of all heaps is mirrored in one atomic (`TimerSet::next`), kept exact
//! under a small lock taken only when a heap's earliest entry changes, so the scheduler can
//! tell "nothing due" with one load, and an `at` whose timer becomes the earliest of all knows
//! it, as with a single heap.
//!
//! Who fires timers: an M holding a P checks for due timers when its queues are empty and every
//! `GLOBAL_QUEUE_TICK` schedules (`scheduler::find_runnable`); actions run on the M's own
//! stack, so they must not block (unparking and non-blocking sends are what they do). When every
//! P is idle, one sleeping M (the watcher) waits with a timeout of the earliest deadline;
//! adding an earlier timer wakes it (Go's `netpollBreak` for timers). So does the first pending
//! timer after `pending` has answered "none" (`none_seen`): the M that asked may have stopped
//! watching, and a timer behind stopped entries is not the earliest.
//!
//! Cancellation is lazy, as in Go (time.go: a stopped timer becomes a "zombie" that the heap drops
//! later): `Timer::stop` flips the timer's state PENDING→STOPPED and drops the action, and leaves
//! the entry where it is. Stopped entries leave a heap when they reach the top and are due
//! (`run_due` pops and skips them), or in one sweep of every heap (`BinaryHeap::retain`, O(n))
//! as soon as they are at least `SWEEP_MIN` and outnumber the live timers. The sweep is
//! checked after every `stop` and every batch fired, the only operations that make dead
//! entries or remove live ones, so the heaps never hold more than `2 * live + SWEEP_MIN`
//! entries (plus the stops in flight), and each sweep removes at least half of what it visits:
//! amortised O(1) per stop. Rejected: eager removal from an indexed heap (each timer knowing its slot) would
//! take the heap lock a second time on every stop (every early wake-up of a timed wait) and
//! make every sift write into the moved timers' own allocations; the lazy stop takes no heap
//! lock at all except for the one stop in `SWEEP_MIN` or more that sweeps. A stopped entry left
//! at the top can make the watcher wake once for nothing (Go has the same); it then finds
//! nothing due and sleeps again.
//!
//! Invariants: those of `set.rs` (each heap's and the set's earliest deadline, the live count,
//! the bound on stopped entries) and `state.rs` (an action runs at most once, by whoever wins
//! PENDING→FIRED; a stopped timer's action never runs). A deadline of `Duration::MAX` saturates
//! (`deadline_after`, `to_nanos`): it is never reached and never overflows.
//!
//! Loom: the set is a value whose atomics and locks are the shim's types, so the models in
//! `loom_models.rs` run this code: `stop` racing the firing, Ms firing one heap at once, and a
//! timer armed on one M while the watcher reads the deadline to sleep until (it must be woken).
//! The process-wide set lives in a std `OnceLock` (loom's types cannot be built in a `static`).

mod set;
mod state;

#[cfg(all(test, loom))]
mod loom_models;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::loom::std_only::OnceLock;
use crate::loom::Ordering;
use set::TimerSet;
use state::TimerState;

/// The process-wide timers.
fn timers() -> &'static TimerSet {
    static TIMERS: OnceLock<TimerSet> = OnceLock::new();
    TIMERS.get_or_init(|| TimerSet::new(set::SHARDS))
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since `epoch()`, saturating at `u64::MAX - 1` (about 584 years: never).
fn to_nanos(t: Instant) -> u64 {
    t.saturating_duration_since(epoch())
        .as_nanos()
        .min(u64::MAX as u128 - 1) as u64
}

/// `base + d`, or, if `Instant` cannot represent that, the latest instant it can up to it: a
/// deadline that far away is never reached (and the heap saturates it anyway), so overflow
/// means "never" instead of a panic. A timed wait of `Duration::MAX` thus parks for good, with
/// a pending timer, as Go's does.
pub(crate) fn deadline_after(base: Instant, d: Duration) -> Instant {
    let mut d = d;
    loop {
        match base.checked_add(d) {
            Some(t) => return t,
            None => d /= 2,
        }
    }
}

/// The id of this thread's M, or 0 on a plain thread: the key of the heap its timers go in.
fn current_m() -> usize {
    let m = crate::machine::current_machine();
    if m.is_null() {
        return 0;
    }
    // SAFETY: a non-null `CURRENT_M` points to this thread's live `Machine`; `id` never changes.
    unsafe { (*m).id }
}

/// A scheduled action; [`stop`](Timer::stop) it to cancel.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// let ran = Arc::new(AtomicBool::new(false));
/// let r = ran.clone();
/// let t = sched::at(std::time::Instant::now() + std::time::Duration::from_secs(60), move || {
///     r.store(true, Ordering::Release)
/// });
/// assert!(t.stop()); // stopped before it fired
/// assert!(!ran.load(Ordering::Acquire));
/// ```
pub struct Timer(Arc<TimerState>);

impl Timer {
    /// Cancels the timer. True if it had not fired yet (its action will never run); false if
    /// it already fired or was already stopped. Drops the action at once; the heap entry goes
    /// in a later sweep (see the module's top comment).
    pub fn stop(&self) -> bool {
        timers().stop(&self.0)
    }

    /// True once the action has run (or started running).
    pub fn fired(&self) -> bool {
        self.0.has_fired()
    }
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer")
            .field("fired", &self.fired())
            .finish()
    }
}

/// Runs `action` at `deadline` (or soon after), on a runtime thread. The action must be short
/// and must not block: it runs on the scheduler's own stack, between goroutines (unparking a
/// goroutine or a non-blocking channel send are the intended uses). Like Go's `time.AfterFunc`,
/// but without a goroutine of its own.
///
/// ```
/// let me = sched::unparker();
/// let t = sched::at(std::time::Instant::now(), move || me.unpark());
/// sched::park(); // woken by the timer
/// assert!(t.fired());
/// ```
pub fn at(deadline: Instant, action: impl FnOnce() + Send + 'static) -> Timer {
    let set = timers();
    let (timer, changed) = set.push(
        set.shard_of(current_m()),
        to_nanos(deadline),
        Box::new(action),
    );
    if changed {
        crate::scheduler::timers_changed();
    }
    Timer(timer)
}

/// True if any timer is pending (keeps deadlock detection silent; an idle M watches timers
/// only while this holds).
pub(crate) fn pending() -> bool {
    timers().pending()
}

/// The earliest deadline, if any timer is in a heap.
pub(crate) fn next_deadline() -> Option<Instant> {
    match timers().next() {
        u64::MAX => None,
        n => Some(epoch() + Duration::from_nanos(n)),
    }
}

/// True if the earliest timer is due.
#[inline]
pub(crate) fn due() -> bool {
    let next = timers().next();
    next != u64::MAX && to_nanos(Instant::now()) >= next
}

/// How late another M's timer must be before a busy M fires it (`run_due`): its own M looks at
/// least every `GLOBAL_QUEUE_TICK` schedules while it runs, and firing it here would send the
/// sleeper through its M's remote queue instead of its `next`.
const OTHERS_LATE: Duration = Duration::from_millis(1);

/// Fires due timers: this M's heap's, then other heaps' that are due (`idle`: this M has
/// nothing else to run) or more than `OTHERS_LATE` overdue (a busy M's periodic look). Returns
/// how many actions ran.
pub(crate) fn run_due(idle: bool) -> usize {
    let set = timers();
    let now = to_nanos(Instant::now());
    let others_due = if idle {
        now
    } else {
        now.saturating_sub(OTHERS_LATE.as_nanos() as u64)
    };
    let ran = set.run_due(set.shard_of(current_m()), now, others_due);
    if ran > 0 {
        crate::stats::TIMERS_FIRED.fetch_add(ran as u64, Ordering::Relaxed);
    }
    ran
}

/// The number of entries in the timer heaps, live or stopped and not yet swept. For tests and
/// diagnostics (each heap stays within `2 * its live timers + 64` entries).
#[doc(hidden)]
pub fn timer_entries() -> usize {
    timers().entries_locked()
}

/// `timer_entries` without the heaps' locks (the mirrors kept under them).
pub(crate) fn entries_now() -> usize {
    timers().entries_now()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::loom::std_only::{AtomicUsize, Mutex};
    use crate::loom::Ordering;

    /// The heap is process-wide: tests that fire timers take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn stopped_timer_never_runs() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let t = at(Instant::now(), move || {
            h.fetch_add(1, Ordering::Relaxed);
        });
        let stopped = t.stop();
        run_due(true);
        assert_eq!(hits.load(Ordering::Relaxed), usize::from(!stopped));
        assert!(!t.stop(), "a second stop reports nothing to stop");
    }

    #[test]
    fn due_timers_run_in_deadline_order() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let order = Arc::new(Mutex::new(Vec::new()));
        // In the future, so all three are in the heap before any is due (the runtime's Ms fire
        // due timers as soon as they are added).
        let base = Instant::now() + Duration::from_millis(20);
        let timers: Vec<_> = [3u32, 1, 2]
            .into_iter()
            .map(|i| {
                let o = order.clone();
                at(base + Duration::from_micros(u64::from(i)), move || {
                    o.lock().unwrap().push(i)
                })
            })
            .collect();
        let give_up = Instant::now() + Duration::from_secs(30);
        while timers.iter().any(|t| !t.fired()) {
            assert!(Instant::now() < give_up, "timers never fired");
            run_due(true);
            std::thread::yield_now();
        }
        assert_eq!(*order.lock().unwrap(), vec![1, 2, 3]);
    }

    /// Heap entries in excess of the bound the sweep keeps, allowing for other tests of this
    /// binary arming and stopping timers meanwhile (a stop in flight is one dead entry more).
    fn excess() -> isize {
        timer_entries() as isize - (2 * timers().live() + set::SWEEP_MIN) as isize
    }

    /// A timer reset in a loop (stop, then arm again) and timers stopped in bulk leave the heap
    /// within `2 * live + SWEEP_MIN` entries, although none of them ever becomes due.
    #[test]
    fn stopped_entries_are_swept() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let far = Instant::now() + Duration::from_secs(3600);
        let mut t = at(far, || {});
        for _ in 0..10_000 {
            assert!(t.stop());
            t = at(far, || {});
            assert!(excess() <= 8, "heaps grew: {} entries", timer_entries());
        }
        assert!(t.stop());
        let many: Vec<_> = (0..10_000).map(|_| at(far, || {})).collect();
        for t in &many {
            assert!(t.stop());
            assert!(excess() <= 8, "heaps grew: {} entries", timer_entries());
        }
    }

    /// A deadline too far for `Instant` saturates instead of overflowing.
    #[test]
    fn far_deadline_saturates() {
        let now = Instant::now();
        let far = deadline_after(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(100 * 365 * 24 * 3600));
        assert_eq!(
            deadline_after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        let t = at(far, || panic!("a deadline that far never comes"));
        assert!(t.stop());
    }
}
