//! The watcher: the one idle M that waits for the earliest timer and for I/O (Go's M blocked
//! in `netpoll(delay)` from `findRunnable`, with the delay of the earliest timer).
//!
//! An M becomes the watcher in `IdleSet::stop_m` when it goes idle while a timer is pending or
//! someone waits for I/O and no other M watches. It then sleeps on its hand-off slot until the
//! earliest deadline, or, if anyone waits for I/O, blocks in the poller with that timeout. It
//! stops watching when:
//! - it is handed a P (`start_m` clears the watch under the idle lock), which is also how the
//!   goroutines its own poll readied for it reach it (`home.rs`: `wake_home` on itself);
//! - a timer is due: it takes an idle P and returns to `find_runnable`, which fires the timer
//!   (`IdleSet::watcher_woke`); if no P is idle, it leaves the timers to the busy Ps;
//! - in migrate mode, its poll readied goroutines onto the global queue (it has no P): it takes
//!   an idle P and runs them itself (`IdleSet::take_p_for_io`).
//!
//! A timer that becomes the earliest pokes the watcher (`timers_changed`), which re-reads the
//! deadline; the handshake that keeps a poke from falling between reading the deadline and
//! blocking is in `handoff.rs`.

use std::time::Instant;

use super::idle::Woken;
use super::{sched, submit, Runtime, Scheduler};
use crate::machine::Machine;
use crate::processor::Processor;

/// The watcher's wait. Returns the P `m` runs with next and whether it counts as spinning.
pub(super) fn watch(s: &'static Scheduler, m: &Machine) -> (Box<Processor>, bool) {
    let me = &m.handoff;
    loop {
        let handed = if crate::poller::io_waiters() {
            poll_once(s, m)
        } else {
            me.wait_until(crate::timer::next_deadline())
        };
        if let Some(handed) = handed {
            return handed;
        }
        let timers = crate::timer::pending();
        if timers && !crate::timer::due() {
            continue; // poked: a new earliest deadline, or I/O readiness (already queued)
        }
        if !timers && crate::poller::io_waiters() {
            continue; // only I/O to wait for: keep polling
        }
        return match s.idle.watcher_woke(me, &Runtime(s)) {
            Woken::TookP(p) => (p, false),
            Woken::Handed | Woken::Listed => me.wait(),
        };
    }
}

/// One blocking poll, until the earliest timer. Goroutines the poll readies go home
/// (`home.rs`), which hands their Ms a P (this M's own included, through its slot); in migrate
/// mode they go to the global queue (this M has no P, and `push_global` does not wake an M for
/// them) and this M takes an idle P and runs them itself. Returns the P this M runs with next,
/// if it has one.
fn poll_once(s: &'static Scheduler, m: &Machine) -> Option<(Box<Processor>, bool)> {
    let me = &m.handoff;
    let Some(poller) = crate::poller::poller() else {
        return me.wait_until(crate::timer::next_deadline());
    };
    if !crate::poller::try_begin_poll() {
        // Another M is in a non-blocking poll (only the watcher ever blocks in the poller):
        // it is over in microseconds; let it finish, then try again.
        std::thread::yield_now();
        return me.take();
    }
    me.set_in_poll(true);
    let readied = if me.is_handed() {
        0
    } else {
        // Read after `in_poll` is set (handoff.rs): a timer made earliest since the caller
        // looked either shows here or finds `in_poll` set and wakes the poller.
        let timeout = crate::timer::next_deadline()
            .map(|d: Instant| d.saturating_duration_since(Instant::now()));
        poller.poll(timeout)
    };
    me.set_in_poll(false);
    crate::poller::end_poll();
    if let Some(handed) = me.take() {
        return Some(handed);
    }
    // Goroutines homed to an M went home (`home.rs`: this M's own came back as a P in its
    // slot, taken above). Only in migrate mode do readied goroutines wait on the global queue
    // for this M to take a P and run them.
    if readied == 0 || s.global.is_empty() {
        return None;
    }
    match s.idle.take_p_for_io(me) {
        Woken::TookP(p) => Some((p, false)),
        Woken::Handed => Some(me.wait()),
        Woken::Listed => None,
    }
}

/// A timer became the earliest: poke the watcher so it re-reads the deadline; if no M
/// watches, wake an idle P's M, which becomes the watcher when it finds nothing to do.
pub(crate) fn timers_changed() {
    match sched().idle.watcher() {
        Some(w) => w.poke(),
        None => submit::wakep(),
    }
}
