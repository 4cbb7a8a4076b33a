//! An M with nothing to run gives up its P and sleeps until it is handed one (Go's `stopm`
//! and the give-up path of `findRunnable`). The protocol, and why no wake-up is lost, is in
//! `idle.rs`; this file adds what an M does around it (stack scavenging, tracing, the watch).

use super::{sched, watcher, Runtime, Scheduler, SCHED};
use crate::machine::Machine;

/// Gives up `m`'s P and sleeps until handed one, unless a re-check finds work first. On return
/// `m` holds a P.
pub(super) fn release_p_and_sleep(s: &'static Scheduler, m: &Machine) {
    let p = m.take_p().expect("M gives up only a P it holds");
    let was_spinning = m.is_spinning();
    match s.idle.release_p(p, was_spinning, &Runtime(s)) {
        // (A goroutine readied for this M meanwhile lands in its remote queue, and `stopm`
        // looks there after listing the M.)
        // Work appeared: keep the P (and the spinning state) and look again.
        Some(p) => m.set_p(p),
        None => {
            m.set_spinning(false);
            stopm(s, m);
        }
    }
}

/// Lists `m` as idle and sleeps until handed a P (or, as the watcher, until a timer is due or
/// I/O readied goroutines, then takes a P itself). If goroutines homed to `m` still wait (it
/// gave its P to a hungry M, or lost it to `set_maxprocs`), `m` is hungry: the next free P is
/// its. On return `m` holds a P.
pub(super) fn stopm(s: &'static Scheduler, m: &Machine) {
    // Listed first, then the chores of going idle: its own queues free the chunks they still
    // hold, and it hands back what only this thread can (mimalloc pages the scavenger freed;
    // without sysmon, the stacks freed meanwhile too: `stack::scavenge`, stopped as soon as this
    // M is handed a P, a goroutine homed here is readied or a timer is due). Done before the
    // listing, a collect left the P this M had just released idle with no M listed to take
    // it, and the next `wakep` started a new thread for it: a burst at two Ps left three Ms
    // (and their stacks and arenas) where two serve (`docs/BENCHMARKS.md`, "Session 9").
    let watch = s.idle.stop_m(m.handoff, m.has_own_work(), &Runtime(s));
    m.trim_queues();
    crate::stack::scavenge(|| {
        m.handoff.is_handed() || m.handoff.has_remote() || crate::timer::due()
    });
    trace_event!(m = m.id, watch, "machine sleep");
    let (p, spinning) = if watch {
        watcher::watch(s, m)
    } else {
        wait_returning_pages(m)
    };
    m.set_p(p);
    m.set_spinning(spinning);
    m.handoff.set_idle(false);
    trace_event!(m = m.id, "machine wake");
}

/// Sleeps until `m` is handed a P, as `Handoff::wait`; woken by a poke meanwhile (the
/// scavenger pokes every M after it freed cells, `scavenger.rs`), `m` has mimalloc return the
/// pages this thread owns and the freed cells emptied (`cellcache::return_freed_pages`: only
/// the owning thread can), then sleeps on.
fn wait_returning_pages(m: &Machine) -> (Box<crate::processor::Processor>, bool) {
    loop {
        if let Some(handed) = m.handoff.wait_until(None) {
            return handed;
        }
        crate::cellcache::return_freed_pages();
    }
}

/// Gets `m`, which lost its P while a goroutine ran on it (sysmon handed the P to another M:
/// `preempt.rs`), a P again: at once if one is idle and goroutines of its own wait (the
/// goroutine that ran, if it yielded), else as a hungry or idle M (`stopm`). Go's
/// `exitsyscall` slow path.
pub(crate) fn reacquire_p(m: &Machine) {
    trace_event!(m = m.id, "machine reacquires a P");
    stopm(sched(), m);
}

/// Runs the deadlock check if every M is asleep with nothing to do. Called by a plain thread
/// right after it counted itself as parked (`IdleSet::check_deadlock`).
pub(crate) fn check_deadlock_now() {
    let Some(s) = SCHED.get() else { return };
    s.idle.check_deadlock(&Runtime(s));
}
