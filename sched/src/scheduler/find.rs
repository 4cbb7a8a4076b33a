//! What an M runs next (Go's `findRunnable`, `schedule`).
//!
//! In order:
//! 1. every 61st schedule of a P: if an M is hungry, hand it this P (`yield_p_to_hungry`; also
//!    at once after a yield that leaves this M and its P nothing else to run,
//!    `yield_p_if_hungry`);
//!    then due timers, a non-blocking poll (skipped while another thread polls), one G from
//!    the global queue and the stalled-P check, so none of them can starve behind a P's own
//!    work;
//! 2. the M's `next` (a hand-off); then the M's own goroutines (started ones homed to it: its
//!    local queue, with those other threads readied for it) and the P's unstarted ones
//!    (`runnext`, its local queue, then a batch from the global queue: len/maxprocs + 1, at
//!    most 128), taking turns at first place; then the M's `later` (yielded goroutines, and
//!    wake-ups that are not hand-offs);
//! 3. due timers and ready I/O, whose wake-ups may land here (then look again);
//! 4. stealing (`steal.rs`), if this M is spinning already or fewer than half of the busy Ps
//!    have a spinning M;
//! 5. give up: `sleep.rs` releases the P and sleeps until handed one.
//!
//! A spinning M that finds work stops spinning and, if it was the last, wakes another
//! (`found`), so one M keeps looking while there may be more.

use super::{sched, steal, submit, Scheduler};
use crate::goroutine::GRef;
use crate::machine::Machine;
use crate::processor::Processor;

/// Schedules between forced checks of the global queue (Go uses 61, a prime).
pub(super) const GLOBAL_QUEUE_TICK: u32 = 61;

/// Returns the next goroutine for `m` to run, sleeping as long as there is none. On return
/// `m` holds a P.
///
/// The common case, a goroutine in one of the queues on a schedule that is not a 61st, is
/// tried here; everything else is in `search`, kept out of line so that the slow paths'
/// setup (timers, the poller, stealing, sleeping, the trace) does not weigh on every switch.
#[inline(always)]
pub(crate) fn find_runnable(m: &Machine) -> GRef {
    let s = sched();
    let (id, tick) = p_and_tick(m);
    if id < s.nprocs() && tick % GLOBAL_QUEUE_TICK != 0 {
        if let Some(g) = take_queued(s, m, tick) {
            return found(s, m, g);
        }
    }
    search(s, m, id, tick)
}

/// The P's id and its schedule count, counting this schedule.
#[inline(always)]
fn p_and_tick(m: &Machine) -> (usize, u32) {
    // The borrow of the P ends here, before anything that may re-enter the scheduler
    // (timer actions ready goroutines through `with_current_p`).
    // SAFETY: on the M's own thread, with no other borrow of its P live.
    match unsafe { m.p() } {
        Some(p) => (p.id, p.tick()),
        None => unreachable!("M{} looks for work without a P", m.id),
    }
}

/// The full search of `find_runnable`, for this schedule (`id`, `tick`) and, if it sleeps,
/// for the schedules after it.
#[inline(never)]
fn search(s: &'static Scheduler, m: &Machine, mut id: usize, mut tick: u32) -> GRef {
    loop {
        if id >= s.nprocs() {
            super::maxprocs::retire_p(s, m);
            (id, tick) = p_and_tick(m);
            continue;
        }
        if tick % GLOBAL_QUEUE_TICK == 0 {
            if s.idle.nhungry() > 0 && yield_p_to_hungry(s, m) {
                (id, tick) = p_and_tick(m);
                continue;
            }
            if let Some(g) = periodic_checks(s, m) {
                return found(s, m, g);
            }
        }
        if let Some(g) = take_queued(s, m, tick) {
            return found(s, m, g);
        }
        // Nothing queued: fire due timers and take ready I/O (what they ready goes to its
        // home, or onto this P in migrate mode; either way, look again).
        if run_all_due_timers() > 0 || poll_now(GateHeld::TakeFromWatcher) > 0 {
            (id, tick) = p_and_tick(m);
            continue;
        }
        if m.is_spinning() || 2 * s.idle.nmspinning() < busy_procs(s) {
            if !m.is_spinning() {
                m.set_spinning(true);
                s.idle.start_spinning();
            }
            // SAFETY: on the M's own thread, with no other borrow of its P live.
            if let Some((g, from)) = steal::steal_work(s, m, unsafe { m.p() }.expect("held")) {
                // With the P's borrow over (trace.rs).
                if let Some(from) = from {
                    trace_record!(Steal, g.header().id, from as u64);
                    trace_event!(from, to = id, goid = g.header().id, "steal");
                }
                return found(s, m, g);
            }
        }
        super::sleep::release_p_and_sleep(s, m);
        (id, tick) = p_and_tick(m);
    }
}

/// A goroutine from the queues, in order: a hand-off first; then this M's own goroutines
/// (started here: `home.rs`) and its P's queue of unstarted ones take turns at first place, so
/// neither starves the other; yielded goroutines and joiners (`later`) after both.
#[inline(always)]
fn take_queued(s: &Scheduler, m: &Machine, tick: u32) -> Option<GRef> {
    if let Some(g) = m.pop_next() {
        return Some(g);
    }
    let own_first = tick % 2 == 0;
    if own_first {
        if let Some(g) = m.pop_local() {
            return Some(g);
        }
    }
    // SAFETY: on the M's own thread, with no other borrow of its P live.
    if let Some(g) = local_or_global(s, unsafe { m.p() }.expect("held")) {
        return Some(g);
    }
    let local = if own_first { None } else { m.pop_local() };
    local.or_else(|| m.pop_rest())
}

/// A goroutine yielded on `m` with nothing else of `m`'s own to run: if an M is hungry, it
/// gets the P now instead of at the 61st schedule. A goroutine that yields in a loop waits for
/// something, likely of another goroutine's doing; when that one is homed to an M without a P,
/// it runs only once this M hands its P over, and 61 yields per hand-over made such a
/// ping-pong between two Ms at `GORT_MAXPROCS=1` some 60 times slower (a livelock, to a
/// bounded test on a loaded machine). With unstarted goroutines on the P, they run first.
pub(crate) fn yield_p_if_hungry(m: &Machine) {
    let s = sched();
    // SAFETY: on the M's own thread, with no other borrow of its P live.
    if !unsafe { m.p() }.expect("held").has_work() {
        yield_p_to_hungry(s, m);
    }
}

/// True if some M is hungry (a relaxed load: a hint).
#[inline]
pub(crate) fn some_m_hungry() -> bool {
    sched().idle.nhungry() > 0
}

/// An M is hungry (goroutines homed to it wait, and no P was free): give it this P, so Ms take
/// turns on the Ps even when every P is always busy. This M then goes idle, hungry itself if it
/// still has goroutines of its own. True if the P was handed over (and this M holds a P again).
fn yield_p_to_hungry(s: &'static Scheduler, m: &Machine) -> bool {
    let p = m.take_p().expect("held");
    match s.idle.hand_to_hungry(p) {
        Err(p) => {
            m.set_p(p);
            false
        }
        Ok(hungry) => {
            hungry.wake();
            if m.is_spinning() {
                m.set_spinning(false);
                s.idle.stop_spinning();
            }
            trace_event!(m = m.id, to = hungry.id, "P to hungry M");
            super::sleep::stopm(s, m);
            true
        }
    }
}

/// Timers, I/O, the global queue and stalled Ps get a turn even on a P that always has work.
/// The poll here skips if the gate is held: a P that has work does not end the watcher's
/// blocking poll (`GateHeld::Skip`).
fn periodic_checks(s: &Scheduler, m: &Machine) -> Option<GRef> {
    run_due_timers();
    poll_now(GateHeld::Skip);
    if let Some(g) = global_get_one(s) {
        return Some(g);
    }
    // SAFETY: on the M's own thread, with no other borrow of its P live.
    let (g, from) = steal::take_from_stalled(s, unsafe { m.p() }.expect("held"))?;
    trace_record!(TakeOver, g.header().id, from as u64);
    trace_event!(from, goid = g.header().id, "take over stalled");
    Some(g)
}

fn busy_procs(s: &Scheduler) -> usize {
    s.nprocs().saturating_sub(s.idle.npidle())
}

fn local_or_global(s: &Scheduler, p: &mut Processor) -> Option<GRef> {
    p.runq_get().or_else(|| global_get_batch(s, p))
}

/// Fires due timers of this M's heap, and those of other heaps that are late
/// (`timer/mod.rs`): the periodic look of a busy M. Returns how many actions ran.
pub(crate) fn run_due_timers() -> usize {
    fire_due(false)
}

/// Fires due timers of this M's heap, then any other: this M has nothing else to run.
fn run_all_due_timers() -> usize {
    fire_due(true)
}

fn fire_due(idle: bool) -> usize {
    if crate::timer::due() {
        crate::timer::run_due(idle)
    } else {
        0
    }
}

/// What `poll_now` does when another thread holds the poller's gate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum GateHeld {
    /// Skip the poll: the holder delivers what is ready. For a P that has work (the periodic
    /// look), as Go's `findRunnable` skips its non-blocking `netpoll` while an M is blocked in
    /// one: taking the gate from the watcher costs an eventfd write, the watcher's wake-up and
    /// this thread's wait for it (`docs/BENCHMARKS.md`, session 7), for readiness the watcher
    /// hands over anyway, and goroutines homed to this M that it readies reach this M through
    /// its remote queue without a wake-up while this M runs.
    Skip,
    /// Take it from the watcher if the watcher holds it in a blocking poll
    /// (`take_gate_from_watcher`): for a P that is out of work.
    TakeFromWatcher,
}

/// A non-blocking poll from a P with nothing to run (Go polls in `findRunnable` before
/// stealing), or from the periodic look. Readied goroutines go home (`home.rs`), or onto this
/// M's P in migrate mode. Returns how many were readied, or 1 if it had to take the poller from
/// the watcher (`take_gate_from_watcher`): what the watcher's poll readied meanwhile may be
/// this M's own.
fn poll_now(held: GateHeld) -> usize {
    let Some(poller) = crate::poller::poller() else {
        return 0;
    };
    if !poller.has_waiters() {
        return 0;
    }
    let took = !crate::poller::try_begin_poll();
    if took && (held == GateHeld::Skip || !take_gate_from_watcher(poller)) {
        return 0;
    }
    let n = poller.poll(Some(std::time::Duration::ZERO));
    crate::poller::end_poll();
    crate::stats::count(&crate::stats::POLLS);
    if n > 0 {
        trace_record!(Netpoll, n as u64, 0);
        trace_event!(readied = n, blocking = false, "netpoll");
    }
    if took {
        n.max(1)
    } else {
        n
    }
}

/// How long a P waits for the watcher to leave the poller (`take_gate_from_watcher`).
const GATE_WAIT: std::time::Duration = std::time::Duration::from_micros(200);

/// The gate is held. If the holder is the watcher, blocked in the poller, this P cannot see
/// the readiness its own goroutines just made (a loopback write is ready at once): the watcher
/// takes it and sends the goroutine back through this M's remote queue, and this M, finding
/// nothing, goes idle and asks the watcher to poll again, so every message costs two
/// cross-thread wake-ups (`docs/BENCHMARKS.md`, session 6, tcp_echo on a quiet machine).
/// Ends the watcher's poll (`Poller::wake`) and waits up to `GATE_WAIT` for the gate; the
/// watcher, seeing this P's tries, then leaves I/O to the Ps (`watcher.rs`,
/// `leave_io_to_ps`). True if the gate is now this P's.
#[cold]
fn take_gate_from_watcher(poller: &dyn crate::poller::Poller) -> bool {
    if !crate::poller::in_blocking_poll() {
        return false; // another P's non-blocking poll: over in microseconds
    }
    poller.wake();
    let until = std::time::Instant::now() + GATE_WAIT;
    while std::time::Instant::now() < until {
        std::thread::yield_now();
        if crate::poller::try_begin_poll() {
            return true;
        }
    }
    false
}

/// A spinning M that found work stops spinning; the last one wakes another (Go's
/// `resetspinning`).
fn found(s: &Scheduler, m: &Machine, g: GRef) -> GRef {
    if m.is_spinning() {
        m.set_spinning(false);
        if s.idle.stop_spinning() {
            submit::wakep();
        }
    }
    g
}

fn global_get_one(s: &Scheduler) -> Option<GRef> {
    s.global.pop()
}

/// Takes a batch from the global queue into `p`'s queue and returns its first goroutine.
pub(super) fn global_get_batch(s: &Scheduler, p: &mut Processor) -> Option<GRef> {
    if s.global.is_empty() {
        return None;
    }
    let limit = (s.global.len() / s.nprocs().max(1) + 1)
        .min(128)
        .min(p.runq_batch_limit());
    let mut first = None;
    s.global.pop_batch(limit, |g| match first {
        None => first = Some(g),
        Some(_) => {
            p.runq_put(g, false);
        }
    });
    first
}
