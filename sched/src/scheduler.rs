//! The scheduler: the set of Ps, the global run queue, idle Ps and Ms, and the policy that
//! decides what each M runs next (Go's proc.go, read as the reference design).
//!
//! Glossary: G = goroutine (`goroutine.rs`), M = OS thread (`machine.rs`), P = logical
//! processor (`processor.rs`). An M needs a P to run Gs; there are `maxprocs` Ps, so at most
//! `maxprocs` Ms run Go code at once. A P can move from one M to another (through the idle list
//! today; through system-call hand-off once sysmon exists).
//!
//! Finding work (`find_runnable`), in order:
//! 1. every 61st schedule of a P, due timers and one G from the global queue, so neither can
//!    starve;
//! 2. the P's `runnext`, then its local queue;
//! 3. a batch from the global queue (len/maxprocs + 1, at most 128; crossbeam's `Injector`
//!    caps a batch lower still);
//! 4. stealing: four passes over the other Ps in a random order (random start, random stride
//!    coprime with the count, so each P is visited once per pass), taking half of a victim's
//!    queue; the last pass may also take a victim's `runnext` if the victim made no progress for
//!    a few microseconds (it was about to run it itself otherwise). At most half of the busy Ps
//!    may have a spinning (stealing) M at once;
//! 5. give up: put the P on the idle list, re-check, and sleep until `startm` hands this M a P.
//!
//! Waking Ms (`wakep`): whoever adds work (spawn, a ready that grows a queue, a push to the
//! global queue) calls `wakep`, which starts one spinning M if there is an idle P and no M is
//! spinning already. A spinning M that finds work stops spinning and, if it was the last
//! spinner, calls `wakep` to keep one M looking while work remains.
//!
//! The no-lost-wake-up argument (Go's "delicate dance"): a submitter to the global queue makes
//! its work visible, issues a SeqCst fence, then reads `npidle`/`nmspinning`. An M giving up does the mirror image:
//! it increments `npidle` (and, if it was spinning, decrements `nmspinning`) with SeqCst RMWs,
//! then re-checks the global queue (and, if it was spinning, every P's queue). Either the
//! submitter sees the idle P and wakes an M, or the M sees the work and takes its P back. A
//! push to a P's own queue skips the fence: that P is running and will get to the work itself,
//! so a miss costs parallelism for a moment, never the work.
//!
//! Locks: `idle` (the idle P and M lists, retired Ps, the timer sleeper) is the scheduler's
//! lock. While holding it the scheduler may take an M's `handoff` lock (`startm`,
//! `sleep_watching_timers`) and, in the deadlock check, std's environment and stderr locks;
//! nothing takes `idle` while holding those. It is never held across a stack switch or while
//! user code runs. `docs/HACKING.md` lists every lock and its order.

use std::sync::atomic::{fence, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal};

use crate::cellcache::CellCache;
use crate::goroutine::GRef;
use crate::machine::{self, Machine};
use crate::processor::{ProcShared, Processor};

/// The most Ps there can ever be (the size of the `ProcShared` array).
pub const MAX_PROCS: usize = 1024;

/// Schedules between forced checks of the global queue (Go uses 61, a prime).
const GLOBAL_QUEUE_TICK: u32 = 61;

/// How long a thief gives a victim to run its own `runnext` before taking it.
const RUNNEXT_GRACE: Duration = Duration::from_micros(3);

/// How long a P with goroutines queued may go without scheduling before a busy P takes them
/// (`take_from_stalled`).
const STALL_TAKEOVER: Duration = Duration::from_micros(500);

/// Ps looked at per `take_from_stalled` check.
const STALL_VICTIMS: usize = 4;

pub(crate) struct Scheduler {
    /// One entry per possible P, allocated once and never freed.
    procs: &'static [ProcShared],
    nprocs: AtomicUsize,
    global: Injector<GRef>,
    idle: Mutex<Idle>,
    npidle: AtomicUsize,
    nmspinning: AtomicUsize,
    /// Goroutines spawned from plain threads (those spawned on a P are counted per P).
    foreign_spawned: AtomicU64,
    next_goid: AtomicU64,
}

// A P moves between Ms and these lists as one pointer (it is a few KiB with its caches).
#[allow(clippy::vec_box)]
struct Idle {
    procs: Vec<Box<Processor>>,
    retired: Vec<Box<Processor>>,
    machines: Vec<Arc<Machine>>,
    /// Ms ever started (they never exit).
    nm: usize,
    /// The idle M that sleeps with a timeout of the earliest timer, if any.
    timer_sleeper: Option<Arc<Machine>>,
}

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
    let s = SCHED.get_or_init(Scheduler::new);
    SCHED_PTR.store(s as *const Scheduler as *mut Scheduler, Ordering::Release);
    s
}

/// True once the runtime has started (a goroutine was spawned or maxprocs set).
pub(crate) fn started() -> bool {
    SCHED.get().is_some()
}

impl Scheduler {
    fn new() -> Scheduler {
        crate::signal::install_overflow_handler();
        let n = crate::config::initial_maxprocs().clamp(1, MAX_PROCS);
        let procs: &'static [ProcShared] =
            Box::leak((0..MAX_PROCS).map(|_| ProcShared::new()).collect());
        let idle_procs = (0..n)
            .rev()
            .map(|id| Processor::new(id, &procs[id]))
            .collect();
        tracing::debug!(maxprocs = n, "gort runtime start");
        Scheduler {
            procs,
            nprocs: AtomicUsize::new(n),
            global: Injector::new(),
            idle: Mutex::new(Idle {
                procs: idle_procs,
                retired: Vec::new(),
                machines: Vec::new(),
                nm: 0,
                timer_sleeper: None,
            }),
            npidle: AtomicUsize::new(n),
            nmspinning: AtomicUsize::new(0),
            foreign_spawned: AtomicU64::new(0),
            next_goid: AtomicU64::new(1),
        }
    }

    fn lock_idle(&self) -> MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn nprocs(&self) -> usize {
        self.nprocs.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------------------------
// Adding work.

/// Creates a goroutine with `make` (given its id and this P's cell cache) and queues it: on
/// the caller's P (`runnext` if it is empty, so the first child runs next as with Go's
/// `newproc`, else the queue tail), or to the global queue from a plain thread. Returns what `make` returns beside the goroutine (the join packet).
/// One visit to the P serves the id, the allocations and the queueing.
pub(crate) fn spawn<M, R>(make: M) -> R
where
    M: FnOnce(u64, Option<&mut CellCache>) -> (GRef, R),
{
    let mut make = Some(make);
    let on_p = machine::with_current_p(|p| {
        let p = p?;
        let make = make.take().expect("make used once");
        let (g, handle) = make(p.next_goid(), Some(&mut p.cells));
        tracing::trace!(goid = g.header().id, "spawn");
        p.count_spawn();
        p.runq_put_spawned(g);
        Some(handle)
    });
    if let Some(handle) = on_p {
        wakep_local();
        return handle;
    }
    let make = make.take().expect("make used once");
    let (g, handle) = make(reserve_goids(1), None);
    tracing::trace!(goid = g.header().id, "spawn");
    sched().foreign_spawned.fetch_add(1, Ordering::Relaxed);
    push_global(g);
    handle
}

/// Reserves `n` consecutive goroutine ids and returns the first.
pub(crate) fn reserve_goids(n: u64) -> u64 {
    sched().next_goid.fetch_add(n, Ordering::Relaxed)
}

/// Makes a parked goroutine runnable (Go's `goready`): into `runnext` of the caller's P, so a
/// goroutine woken by the running one runs next; from a plain thread, into the global queue.
pub(crate) fn ready(g: GRef) {
    ready_with(g, true);
}

/// Makes a parked goroutine runnable at the tail of the caller's local queue: it runs after
/// everything already waiting. Used for wake-ups that are not hand-offs (a joiner woken by a
/// goroutine's end: a fork-join parent then wakes once for many children, not once each).
pub(crate) fn ready_later(g: GRef) {
    ready_with(g, false);
}

fn ready_with(g: GRef, next: bool) {
    let queued_locally = machine::with_current_p(|p| match p {
        Some(p) => Ok(p.runq_put(g, next)),
        None => Err(g),
    });
    match queued_locally {
        // Into an empty runnext: this M runs it next when the running goroutine parks, which
        // in a hand-off is at once; waking another M would only make it spin and find nothing
        // (tokio's LIFO-slot rule). Go's `ready` wakes a P here, and its spinning M takes
        // `runnext` after a grace period if the running goroutine keeps running; measured
        // here that makes a 2-P channel hand-off 1.5-1.8x slower (a futex wake of the other M
        // on almost every hand-off), so gort waits for sysmon (which will hand a stuck P's work to another M) to cover the
        // case where the waker keeps running. Until then a goroutine woken by one that then
        // computes for a long time waits for it (docs/ARCHITECTURE.md, "known limits").
        Ok(false) => {}
        Ok(true) => wakep_local(),
        Err(g) => push_global(g),
    }
}

/// Queues `g` on the global queue (from a thread without a P) and wakes an M for it.
fn push_global(g: GRef) {
    sched().global.push(g);
    // The M blocked in the poller readies goroutines without a P; it takes a P and runs them
    // itself once the poll returns (`poll_until`), so waking another M would only add a
    // thread hop to every I/O wake-up.
    if machine::current_in_poll() {
        return;
    }
    // Pairs with the SeqCst RMWs an M does when it gives up its P (module docs): without it,
    // the last M could go to sleep with this goroutine queued and nobody running.
    fence(Ordering::SeqCst);
    wakep();
}

/// `wakep` after growing this P's own queue. No fence: if a racing M misses the work, this P
/// still runs it (Go's `runqput` + `wakep` make the same trade: parallelism may be lost for a
/// moment, work never is).
fn wakep_local() {
    wakep();
}

/// Requeues a goroutine that yielded: to the tail of the local queue, behind everything that
/// was waiting.
pub(crate) fn requeue_yielded(m: &Machine, g: GRef) {
    // SAFETY: on the M's own thread, on its stack; the borrow ends here.
    match unsafe { m.p() } {
        Some(p) => {
            p.runq_put(g, false);
        }
        None => push_global(g),
    }
}

/// Live goroutines (spawned and not yet ended): exact when no goroutine is starting or ending,
/// approximate while some are (the per-P counters are read one after another).
pub(crate) fn num_goroutine() -> usize {
    let Some(s) = SCHED.get() else { return 0 };
    let mut live = s.foreign_spawned.load(Ordering::Relaxed) as i64;
    for p in s.procs.iter() {
        let (spawned, exited) = p.spawned_exited();
        live += spawned as i64 - exited as i64;
    }
    live.max(0) as usize
}

/// Starts a spinning M if there is an idle P and nobody is spinning (Go's `wakep`).
pub(crate) fn wakep() {
    let s = sched();
    if s.npidle.load(Ordering::SeqCst) == 0 || s.nmspinning.load(Ordering::SeqCst) != 0 {
        return;
    }
    if s.nmspinning
        .compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    startm(true);
}

/// Hands an idle P to an idle M (or a new one). With `spinning`, the caller has already
/// counted the new M in `nmspinning`.
fn startm(spinning: bool) {
    let s = sched();
    let mut idle = s.lock_idle();
    let Some(p) = pidle_get(s, &mut idle) else {
        drop(idle);
        if spinning {
            s.nmspinning.fetch_sub(1, Ordering::SeqCst);
        }
        return;
    };
    if let Some(m) = idle.machines.pop() {
        if idle
            .timer_sleeper
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(t, &m))
        {
            idle.timer_sleeper = None;
        }
        // Deposit before the idle lock is dropped: an M off the list must have its P waiting
        // (see `Idle`), or a watcher whose deadline passes now would find itself neither
        // listed nor handed a P, list itself again, and be listed twice once the P arrives.
        m.deposit(p, spinning);
        drop(idle);
        m.wake();
        return;
    }
    let id = idle.nm;
    idle.nm += 1;
    drop(idle);
    if let Err(e) = machine::spawn_machine(id, p, spinning) {
        // Without a thread the P can do nothing; Go treats this as fatal too.
        eprintln!("fatal error: gort: cannot start runtime thread gort-m{id}: {e}");
        std::process::abort();
    }
}

fn pidle_get(s: &Scheduler, idle: &mut Idle) -> Option<Box<Processor>> {
    let p = idle.procs.pop()?;
    s.npidle.fetch_sub(1, Ordering::SeqCst);
    Some(p)
}

// ---------------------------------------------------------------------------------------------
// Finding work.

/// Returns the next goroutine for `m` to run, sleeping as long as there is none. On return
/// `m` holds a P.
pub(crate) fn find_runnable(m: &Arc<Machine>) -> GRef {
    let s = sched();
    loop {
        // Each borrow of the P below ends before anything that may re-enter the scheduler
        // (timer actions ready goroutines through `with_current_p`).
        // SAFETY: on the M's own thread, with no other borrow of its P live.
        let held = unsafe { m.p() };
        let Some(tick) = held.map(|p| (p.id, p.tick())) else {
            m.wait_for_handoff();
            continue;
        };
        let (id, tick) = tick;
        if id >= s.nprocs() {
            retire_p(s, m);
            continue;
        }
        if tick % GLOBAL_QUEUE_TICK == 0 {
            // Timers, I/O and the global queue get a turn even on a P that always has work
            // (without sysmon, nothing else would poll while every P is busy).
            run_due_timers();
            poll_now();
            if let Some(g) = global_get_one(s) {
                return found(s, m, g);
            }
            // SAFETY: as above.
            if let Some(g) = take_from_stalled(s, unsafe { m.p() }.expect("held")) {
                return found(s, m, g);
            }
        }
        // SAFETY: as above.
        if let Some(g) = local_or_global(s, unsafe { m.p() }.expect("held")) {
            return found(s, m, g);
        }
        // Nothing queued: fire due timers and take ready I/O (both ready goroutines onto
        // this P).
        if run_due_timers() > 0 || poll_now() > 0 {
            continue;
        }
        if m.is_spinning() || 2 * s.nmspinning.load(Ordering::Relaxed) < busy_procs(s) {
            if !m.is_spinning() {
                m.set_spinning(true);
                s.nmspinning.fetch_add(1, Ordering::SeqCst);
            }
            // SAFETY: as above.
            if let Some(g) = steal_work(s, unsafe { m.p() }.expect("held")) {
                return found(s, m, g);
            }
        }
        release_p_and_sleep(s, m);
    }
}

fn busy_procs(s: &Scheduler) -> usize {
    s.nprocs().saturating_sub(s.npidle.load(Ordering::Relaxed))
}

fn local_or_global(s: &Scheduler, p: &mut Processor) -> Option<GRef> {
    p.runq_get().or_else(|| global_get_batch(s, p))
}

fn run_due_timers() -> usize {
    if crate::timer::due() {
        crate::timer::run_due()
    } else {
        0
    }
}

/// A timer became the earliest: wake the M sleeping on timers so it re-reads the deadline; if
/// none does, wake an idle P's M, which becomes that sleeper when it finds nothing to do.
pub(crate) fn timers_changed() {
    let s = sched();
    let sleeper = s.lock_idle().timer_sleeper.clone();
    match sleeper {
        Some(m) => m.poke(),
        None => wakep(),
    }
}

/// A spinning M that found work stops spinning; the last one wakes another (Go's
/// `resetspinning`), so one M keeps looking while there may be more.
fn found(s: &Scheduler, m: &Machine, g: GRef) -> GRef {
    if m.is_spinning() {
        m.set_spinning(false);
        if s.nmspinning.fetch_sub(1, Ordering::SeqCst) == 1 {
            wakep();
        }
    }
    g
}

fn global_get_one(s: &Scheduler) -> Option<GRef> {
    loop {
        match s.global.steal() {
            Steal::Success(g) => return Some(g),
            Steal::Empty => return None,
            Steal::Retry => {}
        }
    }
}

fn global_get_batch(s: &Scheduler, p: &mut Processor) -> Option<GRef> {
    if s.global.is_empty() {
        return None;
    }
    let limit = (s.global.len() / s.nprocs().max(1) + 1).min(128);
    loop {
        match s.global.steal_batch_with_limit_and_pop(p.runq(), limit) {
            Steal::Success(g) => return Some(g),
            Steal::Empty => return None,
            Steal::Retry => {}
        }
    }
}

/// Four passes over the other Ps in random order; the last may take `runnext`.
fn steal_work(s: &Scheduler, p: &mut Processor) -> Option<GRef> {
    let n = s.nprocs();
    for pass in 0..4 {
        let last = pass == 3;
        let start = p.random() as usize % n;
        let stride = coprime_stride(n, p.random() as usize);
        for k in 0..n {
            let victim = (start + k * stride) % n;
            if victim == p.id {
                continue;
            }
            if let Some(g) = steal_from(s, p, victim, last) {
                tracing::trace!(from = victim, to = p.id, goid = g.header().id, "steal");
                return Some(g);
            }
        }
        if let Some(g) = global_get_batch(s, p) {
            return Some(g);
        }
    }
    None
}

/// A stride in `1..n` coprime with `n` (so `start + k * stride` visits every P once).
fn coprime_stride(n: usize, seed: usize) -> usize {
    if n <= 2 {
        return 1;
    }
    let mut stride = 1 + seed % (n - 1);
    while gcd(stride, n) != 1 {
        stride = 1 + stride % (n - 1);
    }
    stride
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn steal_from(s: &Scheduler, p: &mut Processor, victim: usize, take_runnext: bool) -> Option<GRef> {
    let shared = &s.procs[victim];
    let stealer = shared.stealer.get()?;
    loop {
        match stealer.steal_batch_with_limit_and_pop(p.runq(), usize::MAX) {
            Steal::Success(g) => return Some(g),
            Steal::Empty => break,
            Steal::Retry => {}
        }
    }
    if take_runnext {
        return steal_runnext(shared);
    }
    None
}

/// Takes a victim's `runnext` if the victim schedules nothing for `RUNNEXT_GRACE`: the
/// goroutine there was readied by the one running and usually runs as soon as that one parks;
/// taking it earlier would only bounce it between threads (Go's `runqgrab` does the same).
fn steal_runnext(shared: &ProcShared) -> Option<GRef> {
    if shared.runnext.load(Ordering::Relaxed).is_null() {
        return None;
    }
    let tick = shared.schedtick();
    let until = Instant::now() + RUNNEXT_GRACE;
    while Instant::now() < until {
        for _ in 0..32 {
            std::hint::spin_loop();
        }
    }
    if shared.schedtick() != tick {
        return None;
    }
    shared.take_runnext()
}

/// Takes half the queue (or the `runnext`) of a P that has goroutines queued but has neither
/// scheduled nor added to its queue for `STALL_TAKEOVER`. Its M is off the CPU (the kernel
/// preempted it, or it is blocked in a system call) or is running one goroutine for a long
/// time, and what it queued would wait for it. (A P whose goroutine is spawning a burst does
/// not schedule either, but its queue grows: it is at work and left alone.) Only idle Ms steal
/// otherwise, and a P busy with its own goroutines is never idle: with two busy processes on
/// two CPUs, a load generator's M preempted for a scheduler tick (4 ms at 250 Hz) held a dozen
/// ready connections every few milliseconds. Go's sysmon
/// retakes a P blocked in a system call after 20 µs-10 ms and preempts long-running goroutines;
/// this covers the queued work of all three cases, checked every `GLOBAL_QUEUE_TICK` schedules
/// by each P that is running.
fn take_from_stalled(s: &Scheduler, p: &mut Processor) -> Option<GRef> {
    let n = s.nprocs();
    if n < 2 {
        return None;
    }
    let now = Instant::now();
    if p.stall_watch.len() < n {
        p.stall_watch.resize(n, (0, 0, now));
    }
    // A few Ps per check, from a random start: with many Ps, reading every P's tick line
    // (written by its owner on each schedule) would cost a cache miss per P per check.
    let start = p.random() as usize;
    for k in 0..(n - 1).min(STALL_VICTIMS) {
        let victim = (p.id + 1 + (start + k) % (n - 1)) % n;
        let shared = &s.procs[victim];
        let tick = shared.schedtick();
        let len = shared.queue_len();
        let (seen_tick, seen_len, since) = p.stall_watch[victim];
        // A queue that grew has an owner at work (a goroutine spawning a burst, say), even if
        // it has not scheduled: only the owner pushes.
        if seen_tick != tick || len > seen_len {
            p.stall_watch[victim] = (tick, len, now);
            continue;
        }
        p.stall_watch[victim].1 = len;
        if now.duration_since(since) < STALL_TAKEOVER || !shared.has_work() {
            continue;
        }
        if let Some(g) = steal_from(s, p, victim, false).or_else(|| shared.take_runnext()) {
            tracing::trace!(
                from = victim,
                to = p.id,
                goid = g.header().id,
                "take over stalled"
            );
            return Some(g);
        }
    }
    None
}

/// Gives up `m`'s P and sleeps until handed one, unless a re-check finds work first.
fn release_p_and_sleep(s: &Scheduler, m: &Arc<Machine>) {
    let p = m.take_p().expect("M gives up only a P it holds");
    {
        let mut idle = s.lock_idle();
        if !s.global.is_empty() {
            drop(idle);
            m.set_p(p);
            return;
        }
        idle.procs.push(p);
        s.npidle.fetch_add(1, Ordering::SeqCst);
    }
    let was_spinning = m.is_spinning();
    if was_spinning {
        m.set_spinning(false);
        s.nmspinning.fetch_sub(1, Ordering::SeqCst);
    }
    fence(Ordering::SeqCst);
    if !s.global.is_empty() || (was_spinning && any_local_work(s)) {
        let mut idle = s.lock_idle();
        if let Some(p) = pidle_get(s, &mut idle) {
            drop(idle);
            m.set_p(p);
            if was_spinning {
                m.set_spinning(true);
                s.nmspinning.fetch_add(1, Ordering::SeqCst);
            }
            return;
        }
    }
    stopm(s, m);
}

fn any_local_work(s: &Scheduler) -> bool {
    s.procs[..s.nprocs()].iter().any(ProcShared::has_work)
}

/// Runs the deadlock check if every M is asleep with nothing to do. Called by a plain thread
/// right after it counted itself as parked: the last M may have gone to sleep (and checked)
/// just before, when that thread did not count yet. Both checks run under the idle lock, so one
/// of them sees the final state.
pub(crate) fn check_deadlock_now() {
    let Some(s) = SCHED.get() else { return };
    let idle = s.lock_idle();
    let waits = crate::timer::pending() || crate::poller::io_waiters();
    if idle.nm > 0 && idle.machines.len() == idle.nm && s.global.is_empty() && !waits {
        crate::deadlock::check_all_asleep(idle.nm, num_goroutine());
    }
}

/// Puts `m` on the idle list and sleeps until `startm` hands it a P. If timers are pending
/// and no other M watches them, `m` sleeps only until the earliest one is due, then takes an
/// idle P to fire it (Go's M blocked in netpoll with the timer's timeout plays this part).
fn stopm(s: &Scheduler, m: &Arc<Machine>) {
    // Going idle: release the memory of stacks freed in bulk meanwhile (off the hot path).
    crate::stack::scavenge();
    let watch_timers = {
        let mut idle = s.lock_idle();
        idle.machines.push(Arc::clone(m));
        let waits = crate::timer::pending() || crate::poller::io_waiters();
        if idle.machines.len() == idle.nm && s.global.is_empty() && !waits {
            crate::deadlock::check_all_asleep(idle.nm, num_goroutine());
        }
        let watch = waits && idle.timer_sleeper.is_none();
        if watch {
            idle.timer_sleeper = Some(Arc::clone(m));
        } else if let Some(watcher) = &idle.timer_sleeper {
            // The watcher may be asleep on its condvar (it went to sleep when nothing waited
            // for I/O); a goroutine this M just parked may wait for I/O now, and nobody would
            // poll for it. Make the watcher look again (it then blocks in the poller).
            if crate::poller::io_waiters() && !watcher.is_in_poll() {
                watcher.poke();
            }
        }
        watch
    };
    tracing::trace!(m = m.id, watch_timers, "machine sleep");
    if watch_timers {
        sleep_watching_timers(s, m);
    } else {
        m.wait_for_handoff();
    }
    tracing::trace!(m = m.id, "machine wake");
}

/// The timer sleeper's wait: until handed a P, or until a timer is due (then take an idle P
/// and return to `find_runnable`, which fires it).
fn sleep_watching_timers(s: &Scheduler, m: &Arc<Machine>) {
    loop {
        let woke = if crate::poller::io_waiters() {
            poll_until(m)
        } else {
            m.wait_for_handoff_until(crate::timer::next_deadline())
        };
        if woke {
            return;
        }
        if crate::timer::pending() && !crate::timer::due() {
            continue; // poked: a new earliest deadline, or I/O readiness (already queued)
        }
        if !crate::timer::pending() && crate::poller::io_waiters() {
            continue; // only I/O to wait for: keep polling
        }
        let mut idle = s.lock_idle();
        if m.has_handoff() {
            drop(idle);
            m.wait_for_handoff();
            return;
        }
        if let Some(i) = idle.machines.iter().position(|x| Arc::ptr_eq(x, m)) {
            idle.machines.swap_remove(i);
        }
        idle.timer_sleeper = None;
        if crate::timer::pending() {
            if let Some(p) = pidle_get(s, &mut idle) {
                drop(idle);
                m.set_p(p);
                return;
            }
        }
        // No timers left, or every P is busy (they fire due timers as they schedule).
        idle.machines.push(Arc::clone(m));
        drop(idle);
        m.wait_for_handoff();
        return;
    }
}

/// The watcher's blocking wait in the poller, until the earliest timer (Go's `netpoll(delay)` from
/// `findRunnable`). Goroutines the poll readies go to the global queue (this M has no P) and
/// `wakep` starts an M for them. True if a P was handed to this M meanwhile.
fn poll_until(m: &Arc<Machine>) -> bool {
    let Some(poller) = crate::poller::poller() else {
        return m.wait_for_handoff_until(crate::timer::next_deadline());
    };
    if !crate::poller::try_begin_poll() {
        // Another M is in a non-blocking poll (only this watcher ever blocks in the poller):
        // it is over in microseconds; let it finish, then try again.
        std::thread::yield_now();
        return m.has_handoff() && m.wait_for_handoff_until(Some(Instant::now()));
    }
    m.set_in_poll(true);
    let (woke, readied) = if m.has_handoff() {
        (true, 0)
    } else {
        // The earliest deadline is read after `in_poll` is set: a timer added since the
        // caller looked either shows here or finds `in_poll` set and wakes the poller (both
        // sides store, then load, SeqCst). Reading it before would let a poke fall between.
        let deadline = crate::timer::next_deadline();
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let readied = poller.poll(timeout);
        (m.has_handoff(), readied)
    };
    m.set_in_poll(false);
    crate::poller::end_poll();
    if woke {
        return m.wait_for_handoff_until(Some(Instant::now()));
    }
    readied > 0 && take_p_for_readied(m)
}

/// After a blocking poll readied goroutines onto the global queue (without waking anyone, see
/// `push_global`): this M leaves the idle list and takes an idle P to run them itself, as Go's
/// M returning from netpoll does. True if it holds a P now. If every P is busy, they find the
/// goroutines in the global queue as they schedule.
fn take_p_for_readied(m: &Arc<Machine>) -> bool {
    let s = sched();
    let mut idle = s.lock_idle();
    if m.has_handoff() {
        drop(idle);
        return m.wait_for_handoff_until(Some(Instant::now()));
    }
    let Some(p) = pidle_get(s, &mut idle) else {
        return false;
    };
    if let Some(i) = idle.machines.iter().position(|x| Arc::ptr_eq(x, m)) {
        idle.machines.swap_remove(i);
    }
    if idle
        .timer_sleeper
        .as_ref()
        .is_some_and(|t| Arc::ptr_eq(t, m))
    {
        idle.timer_sleeper = None;
    }
    drop(idle);
    m.set_p(p);
    true
}

/// A non-blocking poll from a P with nothing to run (Go polls in `findRunnable` before
/// stealing). Readied goroutines land on this M's P. Returns how many were readied.
fn poll_now() -> usize {
    let Some(poller) = crate::poller::poller() else {
        return 0;
    };
    if !poller.has_waiters() || !crate::poller::try_begin_poll() {
        return 0;
    }
    let n = poller.poll(Some(Duration::ZERO));
    crate::poller::end_poll();
    n
}

/// This M's P was retired by `set_maxprocs`: move its work to the global queue, park the P.
fn retire_p(s: &Scheduler, m: &Arc<Machine>) {
    let mut p = m.take_p().expect("retiring a P this M holds");
    for g in p.runq_drain() {
        push_global(g);
    }
    let was_spinning = m.is_spinning();
    m.set_spinning(false);
    if was_spinning {
        s.nmspinning.fetch_sub(1, Ordering::SeqCst);
    }
    s.lock_idle().retired.push(p);
    wakep();
    stopm(s, m);
}

// ---------------------------------------------------------------------------------------------
// maxprocs.

/// Sets the number of Ps; returns the previous number. Growing hands new Ps to waiting work at
/// once; shrinking takes effect as each retired P's M next schedules (its queue moves to the
/// global queue).
pub(crate) fn set_maxprocs(n: usize) -> usize {
    let s = sched();
    let n = n.clamp(1, MAX_PROCS);
    let mut idle = s.lock_idle();
    let old = s.nprocs();
    if n > old {
        for id in old..n {
            let p = match idle.retired.iter().position(|p| p.id == id) {
                Some(i) => idle.retired.swap_remove(i),
                None => Processor::new(id, &s.procs[id]),
            };
            idle.procs.push(p);
            s.npidle.fetch_add(1, Ordering::SeqCst);
        }
        s.nprocs.store(n, Ordering::SeqCst);
    } else if n < old {
        s.nprocs.store(n, Ordering::SeqCst);
        let (keep, retire): (Vec<_>, Vec<_>) = std::mem::take(&mut idle.procs)
            .into_iter()
            .partition(|p| p.id < n);
        s.npidle.fetch_sub(retire.len(), Ordering::SeqCst);
        idle.procs = keep;
        idle.retired.extend(retire);
    }
    drop(idle);
    if n > old {
        for _ in old..n {
            wakep();
        }
    }
    old
}

/// The number of Ps.
pub(crate) fn maxprocs() -> usize {
    sched().nprocs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coprime_stride_visits_every_proc_once() {
        for n in 1..40 {
            for seed in 0..50 {
                let stride = coprime_stride(n, seed);
                let mut seen = vec![false; n];
                for k in 0..n {
                    seen[(seed + k * stride) % n] = true;
                }
                assert!(seen.iter().all(|&v| v), "n={n} stride={stride}");
            }
        }
    }
}
