//! Adding work: spawning and readying goroutines, the global queue, and waking an M for new
//! work (Go's `newproc`, `ready`, `globrunqput`, `wakep`).
//!
//! Where a goroutine goes. Spawned (not started): onto the spawner's P (`runnext` if it is empty,
//! else the queue's tail; in the thread-affine mode most of a burst goes to the global queue
//! instead, `Processor::spawn_spreads`), or onto the global queue from a thread without a P.
//! Readied or yielded after it started: to its home M (`home.rs`). Only in migrate mode does a
//! started goroutine come back here: onto the waker's P (`runnext` for a hand-off, the queue's
//! tail otherwise), or onto the global queue from a thread without a P (a plain thread, the
//! watcher in the poller). Whoever grows a queue others could take from calls `wakep`.
//! A push to the global queue is followed by the SeqCst fence of `IdleSet::wake_for`, which
//! pairs with an M giving up its P (the no-lost-wake-up argument is in `idle.rs`); a push to a
//! P's own queue skips the fence: that P is running and will get to the work itself, so a
//! missed wake-up costs parallelism for a moment, never the work.

use crate::loom::Ordering;

use super::idle::Started;
use super::sched;
use crate::cellcache::CellCache;
use crate::goroutine::GRef;
use crate::machine::{self, Machine};

/// Creates a goroutine with `make` (given its id and this P's cell cache) and queues it: on
/// the caller's P (`runnext` if it is empty, so the first child runs next as with Go's
/// `newproc`, else the queue tail or, spreading a burst, the global queue), or to the global
/// queue from a plain thread. Returns what `make` returns beside the goroutine (the join
/// packet). One visit to the P serves the id, the allocations and the queueing.
pub(crate) fn spawn<M, R>(make: M) -> R
where
    M: FnOnce(u64, Option<&mut CellCache>) -> (GRef, R),
{
    let mut make = Some(make);
    let nprocs = sched().nprocs();
    let affine = !crate::config::migrate();
    let on_p = machine::with_current_p(|p| {
        let p = p?;
        let make = make.take().expect("make used once");
        let (g, handle) = make(p.next_goid(), Some(&mut p.cells));
        let goid = g.header().id;
        p.count_spawn();
        // A spread goroutine goes to the global ring only while it has room: a spawner that
        // outruns the Ms taking from it keeps the rest here, for thieves (`global_queue.rs`).
        let g = if affine && p.spawn_spreads(nprocs) {
            match sched().global.try_push(g) {
                Ok(()) => return Some((handle, goid, Placed::Spread)),
                Err(g) => g,
            }
        } else if let Some(home) = home_elsewhere(affine, nprocs, p) {
            // Homed now, before anyone else can see it (`balance.rs`).
            g.header().set_home(home);
            home.count_incoming();
            return Some((handle, goid, Placed::Homed(g, home)));
        } else {
            g
        };
        p.runq_put_spawned(g);
        Some((handle, goid, Placed::OnP))
    });
    if let Some((handle, goid, placed)) = on_p {
        // Outside `with_current_p`: the subscriber is user code (trace.rs).
        trace_event!(goid, "spawn");
        match placed {
            Placed::Spread => wake_for_global(),
            Placed::OnP => wakep(),
            // As a goroutine readied from another thread: its M's remote queue.
            Placed::Homed(g, home) => super::home::ready(g, home, false),
        }
        crate::preempt::preempt_point();
        return handle;
    }
    let make = make.take().expect("make used once");
    let (g, handle) = make(reserve_goids(1), None);
    trace_event!(goid = g.header().id, "spawn");
    sched().foreign_spawned.fetch_add(1, Ordering::Relaxed);
    push_global(g);
    handle
}

/// Where `spawn` put a goroutine spawned on a P.
enum Placed {
    /// The global queue (a burst spread).
    Spread,
    /// The spawner's P (`runnext` or its queue).
    OnP,
    /// Homed to another M, which is to be given it (`balance.rs`).
    Homed(GRef, &'static super::home::Home),
}

/// The M a goroutine spawned on `p` should live on instead of this one, which would run it
/// next, if this M has more than its share (`balance.rs`). Only in the thread-affine mode, with
/// another P to run it, and for a spawn into an empty `runnext`: one at a time, or the first of
/// a burst (the rest of a burst spreads through the global queue), so a burst pays for the look
/// once.
#[inline]
fn home_elsewhere(
    affine: bool,
    nprocs: usize,
    p: &crate::processor::Processor,
) -> Option<&'static super::home::Home> {
    if !affine || nprocs < 2 || !p.runnext_is_empty() {
        return None;
    }
    super::balance::lighter_home(machine::current_home()?)
}

/// Reserves `n` consecutive goroutine ids and returns the first.
pub(crate) fn reserve_goids(n: u64) -> u64 {
    sched().next_goid.fetch_add(n, Ordering::Relaxed)
}

/// Makes a parked goroutine runnable (Go's `goready`) as a hand-off, to run next: on its home M
/// (`home.rs`); in migrate mode, in `runnext` of the caller's P (the global queue from a thread
/// without a P).
pub(crate) fn ready(g: GRef) {
    ready_with(g, true);
}

/// Makes a parked goroutine runnable behind everything already waiting: its home M's `later`
/// queue (or its remote queue, from another thread); in migrate mode, the tail of the caller's
/// local queue. Used for wake-ups that are not hand-offs (timers, I/O, a joiner woken by a
/// goroutine's end: a fork-join parent then wakes once for many children, not once each).
pub(crate) fn ready_later(g: GRef) {
    ready_with(g, false);
}

fn ready_with(g: GRef, next: bool) {
    if let Some(home) = g.header().home() {
        return super::home::ready(g, home, next);
    }
    // Migrate mode: onto the waker's P, as in Go.
    let queued_locally = machine::with_current_p(|p| match p {
        Some(p) => Ok(p.runq_put(g, next)),
        None => Err(g),
    });
    match queued_locally {
        // Into an empty runnext: this M runs it next when the running goroutine parks, which
        // in a hand-off is at once; waking another M would only make it spin and find nothing
        // (tokio's LIFO-slot rule). Go's `ready` wakes a P here, which made gort's 2-P
        // channel hand-off slower (docs/BENCHMARKS.md, "Hand-offs stay on one P"). A waker
        // that keeps computing delays the woken goroutine until it parks
        // (docs/ARCHITECTURE.md, "known limits").
        Ok(false) => {}
        Ok(true) => wakep(),
        Err(g) => push_global(g),
    }
}

/// Queues `g` on the global queue (from a thread without a P) and wakes an M for it.
pub(super) fn push_global(g: GRef) {
    sched().global.push(g);
    wake_for_global();
}

/// After a push to the global queue: wakes an M for it (`IdleSet::wake_for`).
fn wake_for_global() {
    let s = sched();
    // The watcher blocked in the poller readies goroutines without a P; it takes a P and runs
    // them itself once the poll returns (`watcher.rs`), so waking another M would only add a
    // thread hop to every I/O wake-up.
    if machine::current_in_poll() {
        return;
    }
    start(s.idle.wake_for());
}

/// Starts a spinning M if there is an idle P and nobody is spinning (Go's `wakep`).
pub(crate) fn wakep() {
    start(sched().idle.wakep());
}

/// Finishes what `IdleSet::start_m` began: starts the new M it asked for.
pub(super) fn start(started: Started<Box<crate::processor::Processor>>) {
    let Started::NewM { id, p, spinning } = started else {
        return;
    };
    if let Err(e) = machine::spawn_machine(id, p, spinning) {
        // Without a thread the P can do nothing; Go treats this as fatal too.
        eprintln!("fatal error: gort: cannot start runtime thread gort-m{id}: {e}");
        std::process::abort();
    }
}

/// Requeues a goroutine that yielded, behind everything that was waiting: its home M's `later`
/// queue; in migrate mode, the tail of the P's local queue.
#[inline]
pub(crate) fn requeue_yielded(m: &Machine, g: GRef) {
    if g.header().home().is_some() {
        // Its home is this M (it was just running here).
        return m.push_own(g, false);
    }
    // SAFETY: on the M's own thread, on its stack; the borrow ends here.
    match unsafe { m.p() } {
        Some(p) => {
            p.runq_put(g, false);
        }
        None => push_global(g),
    }
}
