//! Changing the number of Ps (Go's `procresize`, run without stopping the world).
//!
//! Growing hands the new Ps to waiting work at once. Shrinking retires the idle Ps above the
//! new count at once and each busy one when its M next schedules (`retire_p`: its queue moves
//! to the global queue, the M goes idle).
//!
//! Each P id is created once: ids `0..created` exist for good, so growing again reuses the
//! retired P, and a P that its M has not retired yet (still running a goroutine) simply stays
//! in use: building a second `Processor` for its id would give one `runnext` two owners and
//! leave the new queue unpublished to thieves (issue 9, item 5). `retire_p` re-checks the
//! count under the idle lock, where `set_maxprocs` changes it, so a P is never retired above a
//! count that grew back meanwhile.

use crate::loom::Ordering;

use super::{sched, sleep, submit, Scheduler, MAX_PROCS};
use crate::machine::Machine;
use crate::processor::Processor;

/// Sets the number of Ps; returns the previous number.
pub(crate) fn set_maxprocs(n: usize) -> usize {
    let s = sched();
    let n = n.clamp(1, MAX_PROCS);
    let mut l = s.idle.lock();
    let old = s.nprocs();
    let mut fed = Vec::new();
    if n > old {
        for id in old..n {
            let p = if let Some(i) = l.retired.iter().position(|p| p.id == id) {
                l.retired.swap_remove(i)
            } else if id >= l.created {
                Processor::new(id, &s.procs[id])
            } else {
                // P `id` was never retired: its M still holds it and keeps it.
                continue;
            };
            fed.extend(s.idle.put_p(&mut l, p));
        }
        l.created = l.created.max(n);
        s.nprocs.store(n, Ordering::SeqCst);
    } else if n < old {
        s.nprocs.store(n, Ordering::SeqCst);
        s.idle.retire_idle(&mut l, |p| p.id >= n);
    }
    drop(l);
    for m in fed {
        m.wake();
    }
    for _ in old..n {
        submit::wakep();
    }
    old
}

/// The number of Ps.
pub(crate) fn maxprocs() -> usize {
    sched().nprocs()
}

/// `m`'s P is above `maxprocs`: move its goroutines to the global queue and retire it, then
/// go idle; or keep it, if `maxprocs` grew back meanwhile. On return `m` holds a P.
pub(super) fn retire_p(s: &'static Scheduler, m: &Machine) {
    let mut p = m.take_p().expect("retiring a P this M holds");
    let queued = p.runq_drain();
    if m.is_spinning() {
        m.set_spinning(false);
        s.idle.stop_spinning();
    }
    let kept = {
        let mut l = s.idle.lock();
        if p.id < s.nprocs() {
            Some(p)
        } else {
            l.retired.push(p);
            None
        }
    };
    for g in queued {
        submit::push_global(g);
    }
    match kept {
        Some(p) => m.set_p(p),
        None => {
            submit::wakep();
            sleep::stopm(s, m);
        }
    }
}
