//! Timers: run a short action at a deadline (wake a parked goroutine, send on a channel).
//!
//! Length: about 405 lines of code and 115 of tests, including a loom model.
//!
//! One process-wide binary min-heap of deadlines under a mutex (`HEAP`), with the earliest
//! deadline mirrored in an atomic (`NEXT`) so the scheduler can tell "nothing due" without the
//! lock. Go keeps a heap per P (time.go) so that Ps rarely contend; a single heap is simpler and
//! its lock is held only to push, pop or sweep. Per-P heaps (with stealing) are the known next
//! step if timer-heavy loads show contention.
//!
//! Who fires timers: a P checks for due timers when its local and global queues are empty and
//! every `GLOBAL_QUEUE_TICK` schedules (`scheduler::find_runnable`); actions run on the M's own
//! stack, so they must not block (unparking and non-blocking sends are what they do). When every
//! P is idle, one sleeping M (the watcher) waits with a timeout of the earliest deadline;
//! adding an earlier timer wakes it (Go's `netpollBreak` for timers). So does the first pending
//! timer after `pending` has answered "none" (`NONE_SEEN`): the M that asked may have stopped
//! watching, and a timer behind stopped entries is not the heap's earliest.
//!
//! Cancellation is lazy, as in Go (time.go: a stopped timer becomes a "zombie" that the heap drops
//! later): `Timer::stop` flips the timer's state PENDING→STOPPED and drops the action, and leaves
//! the entry where it is. Stopped entries leave the heap when they reach the top and are due
//! (`run_due` pops and skips them), or in one sweep (`sweep`: `BinaryHeap::retain`, O(n)) as soon
//! as they are at least `SWEEP_MIN` and outnumber the live ones. The sweep is checked after every
//! `stop` and every `run_due`, the only operations that make dead entries or remove live ones, so
//! the heap never holds more than `2 * live + SWEEP_MIN` entries (plus the stops in flight), and
//! each sweep removes at least half of what it visits: amortised O(1) per stop. Rejected: eager
//! removal from an indexed heap (each timer knowing its slot) would take the global heap lock a
//! second time on every stop (every early wake-up of a timed wait) and make every sift write into
//! the moved timers' own allocations; the lazy stop takes no heap lock at all except for the one
//! stop in `SWEEP_MIN` or more that sweeps. A stopped entry left at the top can make the watcher
//! wake once for nothing (Go has the same); it then finds nothing due and sleeps again.
//!
//! Invariants: `NEXT` is the deadline of the heap's top entry (or `u64::MAX`), updated under the
//! heap lock; `ENTRIES` is the heap's length, updated under the lock; an entry in the heap is
//! PENDING or STOPPED (FIRED is set only after `run_due` popped it); `LIVE` counts the timers
//! that are PENDING (incremented in `at` under the lock, decremented by whoever moves the timer
//! out of PENDING); an action runs at most once, by whoever wins PENDING→FIRED; a stopped
//! timer's action never runs.
//!
//! Loom: the per-timer state and action lock are the shim's types (`crate::loom`), and
//! `loom_tests` model `stop` racing the firing. The process-wide statics (`HEAP`, `NEXT`,
//! `LIVE`, `ENTRIES`) stay std types: loom's cannot be built in a `static` (their constructors
//! are not `const`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::loom::std_only::{AtomicBool, AtomicU64, AtomicUsize, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::loom::{AtomicU32, Ordering};

const PENDING: u32 = 0;
const FIRED: u32 = 1;
const STOPPED: u32 = 2;

/// Stopped entries are swept only once there are at least this many (and more than live
/// ones), so a handful of timers reset in a loop does not sweep on every other stop.
const SWEEP_MIN: usize = 64;

/// Due timers `run_due` pops per hold of the heap lock (its comment says why it is bounded).
/// A batch of 128 pops holds the lock for about 20 µs with 100,000 entries in the heap.
const RUN_BATCH: usize = 128;

type Action = Box<dyn FnOnce() + Send>;

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

struct TimerState {
    /// PENDING, then FIRED or STOPPED, once.
    state: AtomicU32,
    action: crate::loom::Mutex<Option<Action>>,
}

impl TimerState {
    fn new(action: Action) -> TimerState {
        TimerState {
            state: AtomicU32::new(PENDING),
            action: crate::loom::Mutex::new(Some(action)),
        }
    }

    fn is_pending(&self) -> bool {
        self.state.load(Ordering::Acquire) == PENDING
    }

    /// PENDING→STOPPED and drop the action. True if this call stopped it.
    fn stop(&self) -> bool {
        let stopped = self
            .state
            .compare_exchange(PENDING, STOPPED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if stopped {
            crate::loom::lock(&self.action).take();
            LIVE.fetch_sub(1, Ordering::Relaxed);
        }
        stopped
    }

    /// PENDING→FIRED and run the action. True if this call ran it.
    fn fire(&self) -> bool {
        if self
            .state
            .compare_exchange(PENDING, FIRED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        LIVE.fetch_sub(1, Ordering::Relaxed);
        let action = crate::loom::lock(&self.action).take();
        match action {
            Some(action) => {
                // User code on the M's own stack: a panic is reported, never unwound into the
                // scheduler (it would end this M and strand its P).
                crate::config::contain("a timer action", action);
                true
            }
            None => false,
        }
    }
}

struct Heap {
    entries: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

static HEAP: Mutex<Heap> = Mutex::new(Heap {
    entries: BinaryHeap::new(),
    seq: 0,
});
/// Deadline of the earliest entry in nanoseconds since `epoch()`, or `u64::MAX`.
static NEXT: AtomicU64 = AtomicU64::new(u64::MAX);
/// Timers that are PENDING (armed, neither fired nor stopped).
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Entries in the heap, live or stopped (the heap's length, mirrored under its lock).
static ENTRIES: AtomicUsize = AtomicUsize::new(0);
/// Set when `pending` reported no live timer: whoever asked (an M going idle, the watcher)
/// may have stopped watching, so the next timer to make `LIVE` non-zero must call
/// `timers_changed` even if it is not the heap's earliest. Cleared by that timer.
static NONE_SEEN: AtomicBool = AtomicBool::new(true);

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

fn lock() -> crate::loom::StdLocked<'static, Heap> {
    crate::loom::lock_std(&HEAP)
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
        let stopped = self.0.stop();
        if stopped {
            sweep_if_mostly_dead();
        }
        stopped
    }

    /// True once the action has run (or started running).
    pub fn fired(&self) -> bool {
        self.0.state.load(Ordering::Acquire) == FIRED
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
    let timer = Arc::new(TimerState::new(Box::new(action)));
    let when = to_nanos(deadline);
    let changed = {
        let mut heap = lock();
        heap.seq += 1;
        let seq = heap.seq;
        heap.entries.push(Reverse(Entry {
            when,
            seq,
            timer: timer.clone(),
        }));
        // SeqCst, then read `NONE_SEEN`: the mirror image of `pending` (see there).
        let first_live = LIVE.fetch_add(1, Ordering::SeqCst) == 0;
        ENTRIES.store(heap.entries.len(), Ordering::Relaxed);
        let earliest = when < NEXT.load(Ordering::Relaxed);
        if earliest {
            NEXT.store(when, Ordering::SeqCst);
        }
        // The first pending timer tells the scheduler even when stopped entries before it keep
        // it from being the earliest, if anyone saw no timer pending meanwhile: that M may have
        // stopped watching (the watcher does when it wakes at a stopped entry's deadline), and
        // nobody would wake for this one. If nobody asked, the watcher is still waiting for
        // the stopped entry's deadline, which comes first; poking it would be a wasted wake-up.
        let unwatched = first_live
            && NONE_SEEN.load(Ordering::SeqCst)
            && NONE_SEEN.swap(false, Ordering::SeqCst);
        earliest || unwatched
    };
    if changed {
        crate::scheduler::timers_changed();
    }
    Timer(timer)
}

/// True if any timer is pending (keeps deadlock detection silent; an idle M watches timers
/// only while this holds).
pub(crate) fn pending() -> bool {
    if LIVE.load(Ordering::Relaxed) > 0 {
        return true;
    }
    // The caller may stop watching on this answer: record that, then look again. With `at`
    // doing the mirror image (make `LIVE` non-zero, then read `NONE_SEEN`), all SeqCst, either
    // this second look sees the new timer or that `at` sees the flag and tells the scheduler.
    NONE_SEEN.store(true, Ordering::SeqCst);
    LIVE.load(Ordering::SeqCst) > 0
}

/// The earliest deadline, if any timer is in the heap.
pub(crate) fn next_deadline() -> Option<Instant> {
    match NEXT.load(Ordering::SeqCst) {
        u64::MAX => None,
        n => Some(epoch() + Duration::from_nanos(n)),
    }
}

/// True if the earliest timer is due.
#[inline]
pub(crate) fn due() -> bool {
    let next = NEXT.load(Ordering::Relaxed);
    next != u64::MAX && to_nanos(Instant::now()) >= next
}

/// Fires every due timer. Returns how many actions ran.
///
/// In batches of at most `RUN_BATCH`: pop a batch under the heap lock, publish the new
/// earliest deadline, drop the lock, run the batch's actions, and go on while the last batch
/// was full. So the lock is never held for longer than `RUN_BATCH` pops (a pop costs about
/// 0.16 µs with 100,000 entries: popping that many at once held it for about 16 ms), arming
/// and stopping on other Ms wait for at most one batch, and another M that sees a timer still
/// due (`due`) takes the next batch and fires it in parallel instead of waiting for this one
/// to pop them all. Deadlines are read against one `now`, so timers armed meanwhile for later
/// instants wait for the next call.
pub(crate) fn run_due() -> usize {
    let now = to_nanos(Instant::now());
    let mut due = Vec::new();
    let mut ran = 0;
    loop {
        {
            let mut heap = lock();
            while due.len() < RUN_BATCH {
                match heap.entries.peek() {
                    Some(Reverse(top)) if top.when <= now => {}
                    _ => break,
                }
                let Some(Reverse(entry)) = heap.entries.pop() else {
                    break;
                };
                due.push(entry.timer);
            }
            shrink_if_sparse(&mut heap);
            ENTRIES.store(heap.entries.len(), Ordering::Relaxed);
            publish_next(&heap);
        }
        let full = due.len() == RUN_BATCH;
        for timer in due.drain(..) {
            if timer.fire() {
                ran += 1;
            }
        }
        if !full {
            break;
        }
    }
    // Timers that just fired are no longer live: stopped entries may now outnumber the rest.
    sweep_if_mostly_dead();
    if ran > 0 {
        crate::stats::TIMERS_FIRED.fetch_add(ran as u64, Ordering::Relaxed);
    }
    ran
}

/// The number of entries in the timer heap, live or stopped and not yet swept. For tests and
/// diagnostics (the heap stays within `2 * live timers + 64` entries).
#[doc(hidden)]
pub fn timer_entries() -> usize {
    lock().entries.len()
}

/// `timer_entries` without the heap's lock (the mirror kept under it).
pub(crate) fn entries_now() -> usize {
    ENTRIES.load(Ordering::Relaxed)
}

fn publish_next(heap: &Heap) {
    let next = heap.entries.peek().map_or(u64::MAX, |Reverse(e)| e.when);
    NEXT.store(next, Ordering::SeqCst);
}

/// Cheap check (two loads, no lock) after something left PENDING: sweep if stopped entries
/// are at least `SWEEP_MIN` and outnumber the live ones.
fn sweep_if_mostly_dead() {
    if mostly_dead(ENTRIES.load(Ordering::Relaxed)) {
        sweep(&mut lock());
    }
}

fn mostly_dead(entries: usize) -> bool {
    // LIVE can exceed the live entries for a moment (a timer run_due popped but has not moved
    // out of PENDING yet): then this underestimates, and the next stop or run_due sweeps.
    let live = LIVE.load(Ordering::Relaxed);
    let dead = entries.saturating_sub(live);
    dead >= SWEEP_MIN && dead > live
}

/// Drops every stopped entry in one pass (O(n), rebuilding the heap), if stopped entries still
/// outnumber live ones now that we hold the lock (another stopper may have swept first). No
/// user code runs under the lock: a stopped timer's action was taken out by its `stop`, whose
/// caller still holds the timer, so dropping an entry here never drops an action.
fn sweep(heap: &mut Heap) {
    if !mostly_dead(heap.entries.len()) {
        return;
    }
    heap.entries.retain(|Reverse(e)| e.timer.is_pending());
    shrink_if_sparse(heap);
    ENTRIES.store(heap.entries.len(), Ordering::Relaxed);
    publish_next(heap);
}

/// Gives back the heap's memory after a burst (a million timers fired or swept), keeping
/// twice the current length; amortised O(1) since the length must halve between shrinks.
/// It keeps room for at least `2 * SHRINK_FLOOR` entries (768 KiB), so a load that arms and
/// fires ten thousand timers at a time does not shrink and regrow the heap every time.
fn shrink_if_sparse(heap: &mut Heap) {
    const SHRINK_FLOOR: usize = 1 << 14;
    let keep = 2 * heap.entries.len().max(SHRINK_FLOOR);
    if heap.entries.capacity() > 2 * keep {
        heap.entries.shrink_to(keep);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::loom::std_only::AtomicUsize;
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
        run_due();
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
            run_due();
            std::thread::yield_now();
        }
        assert_eq!(*order.lock().unwrap(), vec![1, 2, 3]);
    }

    /// Heap entries in excess of the bound the sweep keeps, allowing for other tests of this
    /// binary arming and stopping timers meanwhile (a stop in flight is one dead entry more).
    fn excess() -> isize {
        let live = LIVE.load(Ordering::Relaxed);
        timer_entries() as isize - (2 * live + SWEEP_MIN) as isize
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
            assert!(excess() <= 8, "heap grew: {} entries", timer_entries());
        }
        assert!(t.stop());
        let many: Vec<_> = (0..10_000).map(|_| at(far, || {})).collect();
        for t in &many {
            assert!(t.stop());
            assert!(excess() <= 8, "heap grew: {} entries", timer_entries());
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

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::thread;

    /// `stop` racing the firing: exactly one wins. Either the action runs and `stop` reports
    /// false, or `stop` reports true and the action never runs; `LIVE` goes back to where it
    /// was either way.
    #[test]
    fn stop_races_fire() {
        loom::model(|| {
            let ran = Arc::new(AtomicUsize::new(0));
            let r = ran.clone();
            LIVE.fetch_add(1, Ordering::Relaxed); // as `at` does
            let timer = Arc::new(TimerState::new(Box::new(move || {
                r.fetch_add(1, Ordering::Relaxed);
            })));
            let t2 = timer.clone();
            let firer = thread::spawn(move || t2.fire());
            let stopped = timer.stop();
            let fired = firer.join().unwrap();
            assert!(stopped != fired, "exactly one side wins");
            assert_eq!(ran.load(Ordering::Relaxed), usize::from(fired));
        });
    }
}
