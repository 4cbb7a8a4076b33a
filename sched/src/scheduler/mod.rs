//! The scheduler: the set of Ps, the global run queue, idle Ps and Ms, and the policy that
//! decides what each M runs next (Go's proc.go, read as the reference design).
//!
//! Glossary: G = goroutine (`goroutine.rs`), M = OS thread (`machine.rs`), P = logical
//! processor (`processor.rs`). An M needs a P to run Gs; there are `maxprocs` Ps, so at most
//! `maxprocs` Ms run goroutines at once. A P moves between Ms through the idle set.
//!
//! One concern per file:
//! - `submit.rs`: adding work (spawn, ready, the global queue) and waking an M for it (`wakep`);
//! - `home.rs`: where a started goroutine goes (its home M: `docs/SOUNDNESS.md`);
//! - `balance.rs`: which M a goroutine spawned on a loaded M is homed to;
//! - `find.rs`: what an M runs next (`find_runnable`), in Go's order;
//! - `steal.rs`: taking work from other Ps (stealing, the stalled-P takeover);
//! - `idle.rs`: idle Ps and Ms, `npidle`/`nmspinning`, the watcher: who sleeps, who is woken,
//!   and the arguments that no wake-up or timer is lost (model-checked there with loom);
//! - `handoff.rs`: the slot an idle M sleeps on and is handed a P through;
//! - `sleep.rs`: an M with nothing to do giving up its P and sleeping (`stopm`);
//! - `watcher.rs`: the idle M that waits for the earliest timer and for I/O;
//! - `maxprocs.rs`: changing the number of Ps;
//! - `retake.rs`: moving the P of an M that runs too long or blocks to another M (sysmon's
//!   hand-off: `sysmon.rs`, `preempt.rs`).
//!
//! Invariants kept across the files:
//! - A P is in exactly one place: held by one M (`Machine::p`), in an M's hand-off slot, idle,
//!   or retired (above `maxprocs`). Each P id is created once (`maxprocs.rs`).
//! - The idle set's invariants are stated (and asserted) in `idle.rs`.
//! - A started goroutine is queued only on its home M (`home.rs`), never on a P or the global
//!   queue, unless migration was enabled; `execute` checks it before resuming one. A goroutine
//!   homed at its spawn (`balance.rs`) is queued only on its home M too, from the start.
//! - `nmspinning` counts Ms that hold (or were handed) a P and are looking for work; an M starts
//!   spinning by itself only while fewer than half of the busy Ps have a spinning M
//!   (`find.rs`), and `wakep` starts one only when none spins.
//! - The deadlock precondition is checked under the idle lock, in `IdleSet::stop_m` and
//!   `IdleSet::check_deadlock`: every M idle, the global queue empty, no timer pending, nobody
//!   waiting for I/O (then `deadlock.rs` decides with the threads it can see).
//!
//! Locks: none is held across a stack switch or while user code runs; `docs/HACKING.md` has the
//! lock order of the whole runtime.

mod balance;
mod find;
mod handoff;
mod home;
mod idle;
mod maxprocs;
pub(crate) mod retake;
mod sleep;
mod steal;
mod submit;
mod watcher;

pub(crate) use balance::register as register_for_balance;
pub(crate) use find::{find_runnable, run_due_timers, some_m_hungry, yield_p_if_hungry};
pub(crate) use handoff::Handoff;
pub(crate) use home::Home;
pub(crate) use maxprocs::{maxprocs, set_maxprocs};
pub(crate) use retake::{reacquire_p_while_running, wait_while_stopped};
pub(crate) use sleep::{check_deadlock_now, reacquire_p};
pub(crate) use steal::VictimWatch;
pub(crate) use submit::{ready, ready_later, requeue_yielded, reserve_goids, spawn};
pub(crate) use watcher::timers_changed;

use crate::loom::std_only::{AtomicPtr, OnceLock};
use crate::loom::{AtomicU64, AtomicUsize, Ordering};

use crate::global_queue::{GlobalQueue, RING_SLOTS};
use crate::goroutine::GRef;
use crate::processor::{ProcShared, Processor};
use idle::{IdleSet, World};

/// The most Ps there can ever be (the size of the `ProcShared` array).
pub const MAX_PROCS: usize = 1024;

pub(crate) struct Scheduler {
    /// One entry per possible P, allocated once and never freed.
    procs: &'static [ProcShared],
    nprocs: AtomicUsize,
    global: GlobalQueue<GRef>,
    idle: IdleSet<Box<Processor>, GRef>,
    /// Goroutines spawned from plain threads (those spawned on a P are counted per P).
    foreign_spawned: AtomicU64,
    /// Goroutines that ended on an M without a P (its P was handed away: `preempt.rs`).
    foreign_exited: AtomicU64,
    next_goid: AtomicU64,
}

// `Scheduler` is reached through a `static` (a `OnceLock`): its atomics stay std's, outside the
// loom shim; the protocol loom checks lives in `IdleSet`, whose types come from the shim.
static SCHED: OnceLock<Scheduler> = OnceLock::new();
/// `SCHED`'s value once initialised: the hot path is one load and a null check.
static SCHED_PTR: AtomicPtr<Scheduler> = AtomicPtr::new(std::ptr::null_mut());

#[inline]
pub(crate) fn sched() -> &'static Scheduler {
    let p = SCHED_PTR.load(Ordering::Acquire);
    if p.is_null() {
        return init_sched();
    }
    // SAFETY: a non-null `SCHED_PTR` points into `SCHED`, initialised and never dropped.
    unsafe { &*p }
}

#[cold]
fn init_sched() -> &'static Scheduler {
    let mut first = false;
    let s = SCHED.get_or_init(|| {
        first = true;
        Scheduler::new()
    });
    SCHED_PTR.store(s as *const Scheduler as *mut Scheduler, Ordering::Release);
    if first {
        // After the initialisation, not inside it: a subscriber that spawns from this event
        // would wait for the initialisation it is part of (trace.rs).
        crate::config::contain("a tracing subscriber", || {
            tracing::debug!(maxprocs = s.nprocs(), "gort runtime start")
        });
        crate::debug::trace::start_from_env();
        crate::sysmon::start();
        crate::compact::start();
        crate::debug::sigquit::install();
        crate::debug::schedtrace::start();
    }
    s
}

impl Scheduler {
    fn new() -> Scheduler {
        crate::signal::install_overflow_handler();
        crate::config::freeze_migration();
        crate::config::freeze_compaction();
        crate::machine::set_park_hooks();
        let n = crate::config::take_initial_maxprocs().clamp(1, MAX_PROCS);
        let procs: &'static [ProcShared] =
            Box::leak((0..MAX_PROCS).map(|_| ProcShared::new()).collect());
        let idle_procs = (0..n)
            .rev()
            .map(|id| Processor::new(id, &procs[id]))
            .collect();
        Scheduler {
            procs,
            nprocs: AtomicUsize::new(n),
            global: GlobalQueue::new(RING_SLOTS),
            idle: IdleSet::new(idle_procs),
            foreign_spawned: AtomicU64::new(0),
            foreign_exited: AtomicU64::new(0),
            next_goid: AtomicU64::new(1),
        }
    }

    fn nprocs(&self) -> usize {
        self.nprocs.load(Ordering::Relaxed)
    }

    /// The Ps in use (ids below `maxprocs`), as other Ms see them.
    fn active(&self) -> &[ProcShared] {
        &self.procs[..self.nprocs()]
    }
}

/// The runtime as the idle protocol sees it (`idle::World`).
struct Runtime(&'static Scheduler);

impl World for Runtime {
    fn global_empty(&self) -> bool {
        self.0.global.is_empty()
    }

    fn any_local_work(&self) -> bool {
        self.0.active().iter().any(ProcShared::has_work)
    }

    fn timers_pending(&self) -> bool {
        crate::timer::pending()
    }

    fn io_waiters(&self) -> bool {
        crate::poller::io_waiters()
    }

    fn all_asleep(&self, nm: usize) {
        crate::deadlock::check_all_asleep(nm, num_goroutine());
    }
}

/// The idle set's lists, described (`debug::scheduler_state`).
pub(crate) fn describe_idle() -> String {
    sched().idle.describe()
}

/// Live goroutines (spawned and not yet ended): exact when no goroutine is starting or ending,
/// approximate while some are (the per-P counters are read one after another).
pub(crate) fn num_goroutine() -> usize {
    let Some(s) = SCHED.get() else { return 0 };
    let mut live = s.foreign_spawned.load(Ordering::Relaxed) as i64
        - s.foreign_exited.load(Ordering::Relaxed) as i64;
    for p in s.procs.iter() {
        let (spawned, exited) = p.spawned_exited();
        live += spawned as i64 - exited as i64;
    }
    live.max(0) as usize
}

/// Counts the end of a goroutine on an M whose P was handed away while it ran.
pub(crate) fn count_exit_without_p() {
    sched().foreign_exited.fetch_add(1, Ordering::Relaxed);
}

/// The scheduler as `stats()` and `GORT_DEBUG=schedtrace` show it. Read field by field, not
/// atomically.
#[derive(Default)]
pub(crate) struct View {
    pub(crate) maxprocs: usize,
    pub(crate) idle_procs: usize,
    pub(crate) threads: usize,
    pub(crate) spinning: usize,
    pub(crate) idle_threads: usize,
    /// Goroutines in the global queue.
    pub(crate) global: usize,
    /// Goroutines in each P's queue (`runnext` included), P 0 first.
    pub(crate) local: Vec<usize>,
    /// The per-P counters summed, plus the goroutines spawned and ended off any P.
    pub(crate) counts: crate::processor::PCounts,
}

/// The scheduler now (all zero before it starts).
pub(crate) fn view() -> View {
    let Some(s) = SCHED.get() else {
        return View::default();
    };
    let maxprocs = s.nprocs();
    let mut counts = crate::processor::PCounts {
        spawned: s.foreign_spawned.load(Ordering::Relaxed),
        exited: s.foreign_exited.load(Ordering::Relaxed),
        ..Default::default()
    };
    for p in s.procs.iter() {
        let c = p.counts();
        counts.spawned += c.spawned;
        counts.exited += c.exited;
        counts.schedules += c.schedules;
        counts.parks += c.parks;
        counts.steals += c.steals;
    }
    let local = s.procs[..maxprocs]
        .iter()
        .map(|p| p.queue_len() + usize::from(!p.runnext.is_empty()))
        .collect();
    let (threads, idle_threads) = s.idle.thread_counts();
    View {
        maxprocs,
        idle_procs: s.idle.npidle(),
        threads,
        spinning: s.idle.nmspinning(),
        idle_threads,
        global: s.global.len(),
        local,
        counts,
    }
}
