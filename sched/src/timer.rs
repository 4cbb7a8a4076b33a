//! Timers: run a short action at a deadline (wake a parked goroutine, send on a channel).
//!
//! One process-wide min-heap of deadlines under a mutex, with the earliest deadline mirrored in
//! an atomic (`NEXT`) so the scheduler can tell "nothing due" without the lock. Go keeps a heap
//! per P (time.go) so that Ps rarely contend; a single heap is simpler and its lock is held only
//! to push or pop, which is cheap at thousands of timers. Moving to per-P heaps (with stealing)
//! is the known next step if timer-heavy loads show contention.
//!
//! Who fires timers: a P checks for due timers when its local and global queues are empty and
//! every `GLOBAL_QUEUE_TICK` schedules (`scheduler::find_runnable`); actions run on the M's own
//! stack, so they must not block (unparking and non-blocking sends are what they do). When every
//! P is idle, one sleeping M (the timer sleeper) waits with a timeout of the earliest deadline;
//! adding an earlier timer wakes it (Go's `netpollBreak` for timers).
//!
//! Cancellation is lazy: `Timer::stop` flips the timer's state, and the heap drops the entry
//! when it reaches the top (or when cancelled entries outnumber live ones, in one sweep).
//!
//! Invariants: `NEXT` is the deadline of the heap's top entry (or `u64::MAX`), updated under the
//! heap lock; an action runs at most once, by whoever wins PENDING→FIRED; a stopped timer's
//! action never runs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

const PENDING: u8 = 0;
const FIRED: u8 = 1;
const STOPPED: u8 = 2;

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
    state: AtomicU8,
    action: Mutex<Option<Action>>,
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
/// Entries in the heap whose timer is still pending (stopped ones excluded).
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Entries in the heap whose timer was stopped (awaiting removal).
static DEAD: AtomicUsize = AtomicUsize::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn to_nanos(t: Instant) -> u64 {
    t.saturating_duration_since(epoch())
        .as_nanos()
        .min(u64::MAX as u128 - 1) as u64
}

fn lock() -> MutexGuard<'static, Heap> {
    HEAP.lock().unwrap_or_else(|e| e.into_inner())
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
    /// it already fired or was already stopped.
    pub fn stop(&self) -> bool {
        let stopped = self
            .0
            .state
            .compare_exchange(PENDING, STOPPED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if stopped {
            self.0
                .action
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            LIVE.fetch_sub(1, Ordering::Relaxed);
            DEAD.fetch_add(1, Ordering::Relaxed);
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
    let timer = Arc::new(TimerState {
        state: AtomicU8::new(PENDING),
        action: Mutex::new(Some(Box::new(action))),
    });
    let when = to_nanos(deadline);
    let earliest = {
        let mut heap = lock();
        heap.seq += 1;
        let seq = heap.seq;
        heap.entries.push(Reverse(Entry {
            when,
            seq,
            timer: timer.clone(),
        }));
        LIVE.fetch_add(1, Ordering::Relaxed);
        let earliest = when < NEXT.load(Ordering::Relaxed);
        if earliest {
            NEXT.store(when, Ordering::SeqCst);
        }
        earliest
    };
    if earliest {
        crate::scheduler::timers_changed();
    }
    Timer(timer)
}

/// True if any timer is pending (keeps deadlock detection silent).
pub(crate) fn pending() -> bool {
    LIVE.load(Ordering::Relaxed) > 0
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
pub(crate) fn run_due() -> usize {
    let now = to_nanos(Instant::now());
    let mut due = Vec::new();
    {
        let mut heap = lock();
        while let Some(Reverse(top)) = heap.entries.peek() {
            if top.when > now {
                break;
            }
            let Some(Reverse(entry)) = heap.entries.pop() else {
                break;
            };
            due.push(entry.timer);
        }
        compact_if_mostly_dead(&mut heap);
        publish_next(&heap);
    }
    let mut ran = 0;
    for timer in due {
        if timer
            .state
            .compare_exchange(PENDING, FIRED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            DEAD.fetch_sub(1, Ordering::Relaxed);
            continue;
        }
        LIVE.fetch_sub(1, Ordering::Relaxed);
        let action = timer
            .action
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(action) = action {
            action();
            ran += 1;
        }
    }
    ran
}

fn publish_next(heap: &Heap) {
    let next = heap.entries.peek().map_or(u64::MAX, |Reverse(e)| e.when);
    NEXT.store(next, Ordering::SeqCst);
}

/// Drops stopped entries in one sweep when they outnumber the live ones (and are many), so a
/// loop of short waits with long timeouts cannot grow the heap without bound.
fn compact_if_mostly_dead(heap: &mut Heap) {
    let dead = DEAD.load(Ordering::Relaxed);
    if dead < 1024 || dead < heap.entries.len() / 2 {
        return;
    }
    let before = heap.entries.len();
    let entries = std::mem::take(&mut heap.entries);
    heap.entries = entries
        .into_iter()
        .filter(|Reverse(e)| e.timer.state.load(Ordering::Acquire) == PENDING)
        .collect();
    DEAD.fetch_sub(before - heap.entries.len(), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

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
}
