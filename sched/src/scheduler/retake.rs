//! Moving the P of an M that runs one goroutine too long, or is blocked in a call gort does not
//! know about, to another M (Go's `retake` and `handoffp`). Sysmon (`sysmon.rs`) decides; the
//! signal handler (`preempt.rs`) takes the P on the M's own thread; this file is what both do
//! with the idle set.
//!
//! - A stopped M (the handler's `STOP`) is listed as hungry and sleeps in its handler until a P
//!   comes back (`IdleSet::stop_preempted`); its P goes to the M hungry longest, else an idle
//!   M, else a new one.
//! - A detached M (`DETACH`) runs on without a P; its P goes to a hungry M or the idle list,
//!   and an M is started for it if anything waits (queued goroutines, timers, I/O). The M gets
//!   a P back when it next schedules (`sleep::reacquire_p`).
//! - A stop that lasts while no P moves anywhere is ended without a P (`resume_stopped`):
//!   whatever the stopped thread holds (a channel's lock, a user's mutex) is then released as
//!   it runs on, so a stop can never deadlock the program.

use super::{sched, submit, Home};
use crate::machine::Machine;
use crate::processor::Processor;

/// In the signal handler of the stopped `m`: sleeps until handed a P or resumed without one.
/// Async-signal-safe: waits on `m`'s own slot (a futex), allocates nothing (`preempt.rs`).
pub(crate) fn wait_while_stopped(m: &Machine) {
    m.handoff.monitor.set_stop_wait(true);
    let handed = m.handoff.wait_stopped();
    m.handoff.monitor.set_stop_wait(false);
    m.handoff.set_idle(false);
    if let Some((p, spinning)) = handed {
        m.set_p(p);
        // Handed as a spinner (`wakep`), but it goes back to its goroutine: uncount it, and if
        // it was the last spinner let sysmon start another (starting a thread allocates, which
        // a signal handler must not).
        if spinning && sched().idle.stop_spinning() {
            crate::sysmon::request_wakep();
        }
    }
}

/// A goroutine on `m`, which lost its P while the goroutine was blocked (`DETACH`), calls into
/// the scheduler: `m` waits, as a hungry M, until it is handed a P (at once if one is idle), as
/// a stopped M does. Sysmon may end the wait without a P (`sysmon.rs`, `end_stops`); the
/// caller then goes on as a plain thread would.
pub(crate) fn reacquire_p_while_running(m: &Machine) {
    if sched().idle.list_hungry(m.handoff) {
        m.handoff.wake();
    }
    wait_while_stopped(m);
}

/// Sysmon gives away the P `p` a handler took from `home`'s M: `stopped` (the M waits in its
/// handler, hungry) or detached (the M runs on without a P).
pub(crate) fn give_away(home: &'static Home, p: Box<Processor>, stopped: bool) {
    let s = sched();
    if stopped {
        let queued = p.has_work() || !s.global.is_empty();
        submit::start(s.idle.stop_preempted(home, p, queued));
        return;
    }
    // Go's `handoffp`: an M for the P if anything waits for one (its own queue included).
    let wanted = p.has_work()
        || !s.global.is_empty()
        || crate::timer::pending()
        || crate::poller::io_waiters();
    if let Some(hungry) = s.idle.put_released(p) {
        hungry.wake();
        return;
    }
    if wanted {
        submit::start(s.idle.start_m(false));
    }
}

/// Sysmon ends the stop of `home`'s M without a P. False if it was handed one meanwhile.
pub(crate) fn resume_stopped(home: &'static Home) -> bool {
    sched().idle.resume_without_p(home)
}

/// True if goroutines wait for a P: queued on the global queue or a P, an M hungry for its own,
/// or a timer due. Sysmon stops a long run only then (a stop that frees a P nobody needs would
/// only cost the goroutine its thread).
pub(crate) fn work_waiting() -> bool {
    let s = sched();
    s.idle.npidle() == 0
        && (s.idle.nhungry() > 0
            || !s.global.is_empty()
            || s.active().iter().any(|p| p.has_work())
            || crate::timer::due())
}

/// True if every P is idle and no M waits for one with a goroutine in hand: nothing runs.
pub(crate) fn all_idle() -> bool {
    let s = sched();
    s.idle.npidle() == s.nprocs() && s.idle.nhungry() == 0
}

/// Calls `f` on every idle P, under the idle lock (`IdleSet::for_each_idle_p`: `f` must not
/// allocate, block or take a lock).
pub(crate) fn for_each_idle_p(mut f: impl FnMut(&mut Processor)) {
    sched().idle.for_each_idle_p(|p| f(p));
}

/// A count of P hand-offs through the idle set: sysmon compares two readings to tell whether
/// any P moved meanwhile.
pub(crate) fn moves() -> u64 {
    sched().idle.moves()
}

/// Sysmon: start a spinning M if none spins (a stopped M that was handed a P as a spinner
/// asked for this: `wait_while_stopped`).
pub(crate) fn wakep() {
    submit::wakep();
}

/// True if an idle M could take a P at once (sysmon stops a thread only then, so that it never
/// has to create one while a thread it stopped may hold a lock thread creation needs).
pub(crate) fn spare_m() -> bool {
    sched().idle.has_spare_m()
}

/// Sysmon starts an M with no P, to be the spare above.
pub(crate) fn start_spare_m() {
    let id = sched().idle.new_m_id();
    if let Err(e) = crate::machine::spawn_idle_machine(id) {
        crate::config::contain("a tracing subscriber", || {
            tracing::warn!("gort: sysmon cannot start a spare thread: {e}")
        });
    }
}
