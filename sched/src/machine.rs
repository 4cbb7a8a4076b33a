//! M: an OS thread that runs goroutines while it holds a P.
//!
//! Length: about 390 lines of code and 170 of comments; a third of it is the public API of the
//! running goroutine (`current_id`, `yield_now`, ...), which reads the M's thread-local and so
//! lives beside it (`current_machine` must stay the one reader: see the invariants).
//!
//! Each M runs `machine_main`: find a runnable goroutine (`scheduler::find_runnable`, which may
//! put the M to sleep), `execute` it until it parks, yields or ends, repeat. `execute` is the
//! only place that switches stacks: it resumes the goroutine's coroutine on the M's own stack
//! (Go's g0) and, when control comes back, finishes what the goroutine asked for (commit a park,
//! requeue after a yield, or release the stack and publish the result).
//!
//! Invariants:
//! - `p`, `current` and `spinning` are touched only by the M's own thread: by the scheduler
//!   loop, by goroutine code running on top of it (through `CURRENT_M`), or by the preemption
//!   signal handler that interrupted that code (`preempt.rs`: it may take `p` while a goroutine
//!   runs and `p` is not lent out; so `p` is an atomic pointer, and code that runs goroutines
//!   finds it gone: `with_current_p` then waits for a P, and the scheduler loop gets one back
//!   before it schedules). Nothing holds a
//!   reference into them across a stack switch. A `Machine` lives on its own thread's stack
//!   (`machine_main` never returns) and is neither `Send` nor `Sync`: other threads reach an M
//!   only through its hand-off slot (`scheduler/handoff.rs`), shared with the idle set.
//! - A goroutine's run right is held by exactly one M from the moment it is taken from a run
//!   queue until it is parked (committed), requeued, or completed.
//! - Every access to the thread-local `CURRENT_M` goes through one `#[inline(never)]` function,
//!   `current_machine`, so no caller can cache the thread-local's address across a switch after
//!   which the goroutine may be running on another thread (migrate mode; LLVM assumes a
//!   function never changes thread). Its callers may be inlined: they hold the returned pointer
//!   only for code that cannot switch.

use crate::chunked::ChunkedDeque;
use std::cell::{Cell, RefCell};

use crate::goroutine::{GRef, Header, Switch};
use crate::loom::std_only::{compiler_fence, AtomicBool, AtomicPtr};
use crate::loom::{Arc, Ordering};
use crate::processor::Processor;
use crate::scheduler::{self, Handoff, Home};
use crate::signal::{self, GuardInfo};

/// An M: one OS thread of the runtime.
pub(crate) struct Machine {
    pub(crate) id: usize,
    /// The P this M holds (a `Box<Processor>` turned raw), or null. Only this thread touches
    /// it: its scheduler loop, goroutine code through `with_current_p`, and the preemption
    /// signal handler (`preempt.rs`), which may take it while a goroutine runs; hence atomic,
    /// so the handler's write is never hidden from the code it interrupted.
    p: AtomicPtr<Processor>,
    current: Cell<*const Header>,
    spinning: Cell<bool>,
    /// True while `with_current_p` lends out the P (re-entry is detected, not aliased, and the
    /// signal handler leaves the P alone).
    p_lent: AtomicBool,
    /// Set when the goroutine that ran last yielded to a preemption request: look at the
    /// timers before running the next (a busy M otherwise fires them only every 61 schedules).
    check_timers: Cell<bool>,
    /// Goroutines homed to this M that this M readied or that yielded (its own thread only).
    own: RefCell<Own>,
    /// What other threads see of this M: where it sleeps and is handed a P, and where they
    /// ready goroutines homed to it. Leaked when the M starts (Ms never exit), so goroutine
    /// headers can point at it.
    pub(crate) handoff: &'static Home,
}

/// The run queue of an M's own goroutines (started ones homed to it; `scheduler/home.rs`).
#[derive(Default)]
struct Own {
    /// The goroutine a goroutine of this M readied last: it runs next (the per-M `runnext`).
    next: Option<GRef>,
    /// Goroutines taken from `next` in a row (bounded, so the queues get a turn).
    streak: u32,
    /// Displaced from `next`, or readied by other threads: FIFO.
    local: ChunkedDeque<GRef>,
    /// Yielded, or readied without a hand-off (`ready_later`: a joiner woken by a goroutine's
    /// end): they run after everything else this M and its P have waiting, as the tail of a
    /// Go run queue would put them (a fork-join parent then wakes once for many children).
    /// A plain `Ring` (on mimalloc, `ring.rs`), the cheapest queue for a yield; what a burst
    /// grew it to is given back when the M idles (`trim_queues`).
    later: crate::ring::Ring<GRef>,
}

/// Goroutines taken from `next` in a row before the queues get a turn (as `runnext`'s).
const NEXT_STREAK: u32 = 16;

std::thread_local! {
    static CURRENT_M: Cell<*const Machine> = const { Cell::new(std::ptr::null()) };
}

/// The M running on this thread, or null on a plain thread. Async-signal-safe (a `const`
/// thread-local without destructor: `signal.rs` says why that is one TLS load).
#[inline(never)]
pub(crate) fn current_machine() -> *const Machine {
    CURRENT_M.with(Cell::get)
}

impl Machine {
    fn new(id: usize, handoff: &'static Home) -> Machine {
        Machine {
            id,
            p: AtomicPtr::new(std::ptr::null_mut()),
            current: Cell::new(std::ptr::null()),
            spinning: Cell::new(false),
            p_lent: AtomicBool::new(false),
            check_timers: Cell::new(false),
            own: RefCell::new(Own::default()),
            handoff,
        }
    }

    /// The P this M holds.
    ///
    /// # Safety
    /// Only on the M's own thread, and the reference must not outlive a stack switch or a
    /// `take_p`/`set_p`.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn p(&self) -> Option<&mut Processor> {
        // SAFETY: a non-null `p` came from `Box::into_raw` and is owned by this M; thread
        // confinement and no overlapping borrows are the caller's contract.
        unsafe { self.p.load(Ordering::Relaxed).as_mut() }
    }

    /// Takes this M's P. On the M's own thread (its scheduler loop, or the signal handler that
    /// interrupted it: `preempt.rs`), with no live borrow from `p()`.
    pub(crate) fn take_p(&self) -> Option<Box<Processor>> {
        let p = self.p.swap(std::ptr::null_mut(), Ordering::Relaxed);
        self.handoff.monitor.set_holds_p(false);
        // SAFETY: a non-null `p` came from `Box::into_raw` in `set_p`, and the swap made us its
        // only owner.
        (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
    }

    /// Gives this M the P `p`. On the M's own thread, while it holds none.
    pub(crate) fn set_p(&self, p: Box<Processor>) {
        let old = self.p.swap(Box::into_raw(p), Ordering::Relaxed);
        self.handoff.monitor.set_holds_p(true);
        debug_assert!(old.is_null(), "M{} given a second P", self.id);
    }

    /// True while `with_current_p` lends this M's P out (the signal handler must not take it).
    pub(crate) fn p_is_lent(&self) -> bool {
        self.p_lent.load(Ordering::Relaxed)
    }

    /// The goroutine this M runs, or null (in the scheduler).
    pub(crate) fn current(&self) -> *const Header {
        self.current.get()
    }

    /// Asks this M to fire due timers before it runs the next goroutine.
    pub(crate) fn set_check_timers(&self) {
        self.check_timers.set(true);
    }

    /// True (once) if the timers should be looked at now (`set_check_timers`).
    pub(crate) fn take_check_timers(&self) -> bool {
        self.check_timers.replace(false)
    }

    pub(crate) fn is_spinning(&self) -> bool {
        self.spinning.get()
    }

    pub(crate) fn set_spinning(&self, on: bool) {
        self.spinning.set(on);
    }

    pub(crate) fn holds_p(&self) -> bool {
        !self.p.load(Ordering::Relaxed).is_null()
    }

    /// Queues `g`, homed to this M, from this M's own thread: into `next` (a hand-off,
    /// displacing the goroutine there to the local queue's tail), or behind everything else
    /// waiting here (`later`).
    #[inline]
    pub(crate) fn push_own(&self, g: GRef, next: bool) {
        let mut own = self.own.borrow_mut();
        if !next {
            own.later.push_back(g);
        } else if let Some(old) = own.next.replace(g) {
            own.local.push_back(old);
        }
    }

    /// This M's `next` goroutine, unless `NEXT_STREAK` ran from it in a row.
    pub(crate) fn pop_next(&self) -> Option<GRef> {
        let mut own = self.own.borrow_mut();
        if own.streak >= NEXT_STREAK {
            return None;
        }
        let g = own.next.take()?;
        own.streak += 1;
        Some(g)
    }

    /// The head of this M's local queue (after taking in what other threads readied for it).
    pub(crate) fn pop_local(&self) -> Option<GRef> {
        let mut own = self.own.borrow_mut();
        if own.local.is_empty() {
            let own = &mut *own;
            self.handoff
                .take_remote(&mut own.local, |g| own.later.push_back(g));
        }
        let g = own.local.pop_front()?;
        own.streak = 0;
        Some(g)
    }

    /// Frees what is left of this M's own queues once they are empty (an M going idle:
    /// `stopm`): a chunk each at most (`chunked.rs`), but an idle M should hold nothing.
    pub(crate) fn trim_queues(&self) {
        let own = &mut *self.own.borrow_mut();
        if own.local.is_empty() {
            own.local.clear();
        }
        if own.later.is_empty() {
            own.later.shrink_to(0);
        }
    }

    /// What is left of this M's own goroutines once its queues and its P's are empty: `later`,
    /// then `next` after a long streak.
    pub(crate) fn pop_rest(&self) -> Option<GRef> {
        let mut own = self.own.borrow_mut();
        own.streak = 0;
        own.later.pop_front().or_else(|| own.next.take())
    }

    /// True if goroutines homed to this M wait to run (it must not sleep without a P coming).
    pub(crate) fn has_own_work(&self) -> bool {
        let own = self.own.borrow();
        own.next.is_some()
            || !own.local.is_empty()
            || !own.later.is_empty()
            || self.handoff.has_remote()
    }
}

/// Readies `g`, homed to `home`, on `home`'s own queues if this thread is that M and it holds a
/// P (it then runs `g` when it next schedules); otherwise gives `g` back: another thread must
/// use `home`'s remote queue.
pub(crate) fn ready_on_own_m(g: GRef, home: &'static Home, next: bool) -> Result<(), GRef> {
    let m = current_machine();
    // SAFETY: a non-null `CURRENT_M` points to this thread's live `Machine`.
    match unsafe { m.as_ref() } {
        Some(m) if std::ptr::eq(m.handoff, home) && m.holds_p() => {
            m.push_own(g, next);
            Ok(())
        }
        _ => Err(g),
    }
}

/// Starts a new M (OS thread) that runs with `p`.
pub(crate) fn spawn_machine(id: usize, p: Box<Processor>, spinning: bool) -> std::io::Result<()> {
    let handoff = new_home(id);
    // Counted as holding its P from now, not from when its thread first runs (which sets it
    // again): a spawn may home goroutines to it meanwhile (`scheduler/balance.rs`), and under
    // load a new thread can take milliseconds to start.
    handoff.monitor.set_holds_p(true);
    std::thread::Builder::new()
        .name(format!("gort-m{id}"))
        .stack_size(256 * 1024)
        .spawn(move || {
            let m = Machine::new(id, handoff);
            m.set_p(p);
            m.set_spinning(spinning);
            machine_main(&m)
        })?;
    scheduler::register_for_balance(handoff);
    Ok(())
}

/// A new M's shared part, leaked: goroutine headers point at it for the rest of the process.
fn new_home(id: usize) -> &'static Home {
    Box::leak(Box::new(Arc::new(Handoff::new(id))))
}

/// Starts a new M (OS thread) with no P: it lists itself idle and waits to be handed one
/// (sysmon's spare: `scheduler/retake.rs`).
pub(crate) fn spawn_idle_machine(id: usize) -> std::io::Result<()> {
    let handoff = new_home(id);
    std::thread::Builder::new()
        .name(format!("gort-m{id}"))
        .stack_size(256 * 1024)
        .spawn(move || machine_main(&Machine::new(id, handoff)))?;
    scheduler::register_for_balance(handoff);
    Ok(())
}

/// The scheduler loop of M `m`; never returns (Ms never exit), so `m` outlives every
/// pointer to it in `CURRENT_M`.
fn machine_main(m: &Machine) -> ! {
    signal::thread_init();
    m.handoff.monitor.register_thread();
    crate::sysmon::register(m.handoff);
    CURRENT_M.with(|c| c.set(m as *const Machine));
    trace_event!(m = m.id, "machine start");
    loop {
        // User code the scheduler calls contains its own panics (subscribers, timer actions,
        // destructors: `config::contain`), and goroutines catch theirs. A panic that still gets
        // here comes from the runtime itself, with its state half-changed: carrying on (or
        // letting this thread die with its P) would hang or corrupt the program. Stop it.
        // AssertUnwindSafe: a caught panic ends the process below; nothing observes `m` after.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if !m.holds_p() {
                // Sysmon handed this M's P to another M while a goroutine ran here (blocked in
                // a call gort does not know about: `preempt.rs`). Get one back first.
                scheduler::reacquire_p(m);
            }
            let g = scheduler::find_runnable(m);
            execute(m, g);
        }));
        if let Err(payload) = ran {
            let msg = crate::goroutine::panic_message(payload.as_ref());
            crate::config::fatal(&format!("M{} panicked inside the scheduler: {msg}", m.id));
        }
    }
}

/// Runs `g` on this M until it parks, yields or ends.
fn execute(m: &Machine, g: GRef) {
    let h = g.header();
    // SAFETY: we hold the run right of `g` (just taken from a queue), so its coroutine is ours.
    let coroutine = unsafe { &mut *h.coroutine.get() };
    if coroutine.is_none() {
        // SAFETY: on this M's thread; the borrow ends before any switch.
        let p = unsafe { m.p() }.expect("M runs goroutines only while it holds a P");
        match p.take_stack(h.stack_size) {
            Ok(stack) => {
                debug_assert_eq!(
                    stack.usable_size(),
                    crate::processor::stack_size_for(h.stack_size)
                );
                h.stack_lo.set(stack.top() - stack.usable_size());
                if !crate::config::migrate() {
                    // From now on this goroutine runs on this M only (docs/SOUNDNESS.md). One
                    // homed at its spawn (`balance.rs`) keeps that home: the check below
                    // stops the process if it was not this M.
                    if h.home().is_some() {
                        m.handoff.count_arrived();
                    } else {
                        h.set_home(m.handoff);
                    }
                }
                let ptr = g.as_ptr() as usize;
                *coroutine = Some(corosensei::Coroutine::with_stack(stack, move |y, ()| {
                    crate::goroutine::goroutine_main(ptr as *const Header, y)
                }));
            }
            Err(e) => {
                if h.home().is_some() {
                    m.handoff.count_arrived(); // homed here at its spawn, and gone
                }
                g.fail(Box::new(e));
                finish(m, g);
                return;
            }
        }
    }
    let co = coroutine.as_mut().expect("coroutine bound above");
    if crate::compact::may_be_compacted(h) {
        // Its stack may have been compacted while it was parked: bring it back first.
        crate::compact::ensure_resident(h);
    }
    if h.home().is_some_and(|home| !std::ptr::eq(home, m.handoff)) {
        // The soundness argument of docs/SOUNDNESS.md rests on this never happening.
        crate::config::fatal(&format!(
            "goroutine {} resumed off its home M (on M{})",
            h.id, m.id
        ));
    }
    let goid = h.id;
    trace_event!(goid, m = m.id, "run");
    m.current.set(g.as_ptr());
    let current = signal_current(h);
    m.handoff.monitor.enter(goid);
    let tracing = trace_on!();
    trace_record_if!(tracing, Start, goid, 0);
    // The parked goroutine's wait word, read while it is still ours (for the `park` event).
    let mut wait = 0;
    let yielded = loop {
        // SAFETY: `signal_current`'s contract: our reference keeps the header alive until the
        // `set_current(None)` right after the switch back.
        unsafe { signal::set_current(Some(current)) };
        let result = co.resume(());
        // SAFETY: `None` carries no pointer. (Before the park's commit, after which another M
        // may free the goroutine.)
        unsafe { signal::set_current(None) };
        match result {
            corosensei::CoroutineResult::Yield(Switch::Park) => {
                crate::debug::registry::note_switch_out(h);
                wait = h.wait.load(Ordering::Relaxed);
                // Before the commit: after it, another M may run the goroutine at once.
                trace_record_if!(tracing, Park, goid, wait);
                if h.park.commit_park() {
                    // The park state now owns our reference (see park.rs); the unparker that
                    // wins PARKED→RUNNING takes it back with `GRef::from_raw`. Nothing runs
                    // between the commit and this, and from here another M may run, finish
                    // and free the goroutine: touch nothing of it (the id was read above).
                    let _ = g.into_raw();
                    // SAFETY: on this M's thread, on its stack; the borrow ends here.
                    if let Some(p) = unsafe { m.p() } {
                        p.count_park();
                    }
                    break None;
                }
                // A token arrived while it was switching out: run it again at once.
                trace_record_if!(tracing, Start, goid, 0);
            }
            corosensei::CoroutineResult::Yield(Switch::Yield) => {
                crate::debug::registry::note_switch_out(h);
                trace_record_if!(tracing, Yield, goid, 0);
                break Some(g);
            }
            corosensei::CoroutineResult::Return(()) => {
                trace_record_if!(tracing, Exit, goid, 0);
                m.handoff.monitor.leave();
                m.current.set(std::ptr::null());
                let stack = coroutine.take().expect("finished coroutine").into_stack();
                // SAFETY: on this M's thread, on the M's stack; borrow ends here.
                match unsafe { m.p() } {
                    Some(p) => p.put_stack(stack),
                    // The P was handed away meanwhile (`preempt.rs`): the stack goes back to
                    // its global pool.
                    None => drop(stack),
                }
                finish(m, g);
                return;
            }
        }
    };
    m.handoff.monitor.leave();
    m.current.set(std::ptr::null());
    // Only now, with `current` cleared, may user code run.
    if let Some(g) = yielded {
        trace_event!(goid, "yield");
        if m.take_check_timers() {
            // It yielded to a preemption request: fire due timers first, so what they ready
            // runs before it again (a busy M otherwise fires them every 61 schedules).
            scheduler::run_due_timers();
        }
        // (The hungry count first: one load, and almost always zero.)
        let offer = scheduler::some_m_hungry() && !m.has_own_work();
        scheduler::requeue_yielded(m, g);
        if offer {
            scheduler::yield_p_if_hungry(m);
        }
    } else {
        trace_event!(
            goid,
            reason = crate::debug::trace::reason_name(wait),
            "park"
        );
    }
}

/// Publishes the end of `g` and drops the scheduler's reference. Inlined into `execute`, as
/// the compiler chose to before it grew (a call here is 20 instructions a goroutine).
#[inline(always)]
fn finish(m: &Machine, g: GRef) {
    let goid = g.header().id;
    // SAFETY: on this M's thread, on its stack; the borrow ends here.
    match unsafe { m.p() } {
        Some(p) => p.count_exit(),
        None => scheduler::count_exit_without_p(),
    }
    trace_event!(goid, "exit");
    // Before the end is published: the registry's header must be alive while listed, and a
    // leak check must count the goroutine gone by the time its joiner wakes.
    crate::debug::registry::note_end(g.header());
    crate::debug::leak_note_end(g.header());
    crate::debug::stacks::note_end(goid);
    // Completing may run user destructors (a closure dropped unrun; a result that panics when
    // dropped aborts in `join::free` instead), which must not unwind into the scheduler.
    let completed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        g.publish_end();
        drop(g);
    }));
    if let Err(payload) = completed {
        crate::config::contained_panic(&format!("ending goroutine {goid}"), payload);
    }
}

/// What the signal handlers see of `h` while it runs: its header, described only when a
/// signal asks ([`describe_header`]).
///
/// # Safety (of `set_current` with the result)
///
/// The header must stay alive while it is current: `execute` holds a reference across the
/// switch and clears it before the park's commit.
fn signal_current(h: &Header) -> signal::Current {
    // SAFETY: `describe_header` reads only the header's fields and the default stack size's
    // atomic (set before any goroutine got a stack): async-signal-safe; the header's life is
    // the caller's part (above).
    unsafe { signal::Current::new(describe_header, (h as *const Header).cast()) }
}

/// `signal::Current`'s describe for a goroutine's header.
///
/// # Safety
/// `data` points at a live `Header`.
unsafe fn describe_header(data: *const ()) -> GuardInfo {
    // SAFETY: the caller's contract.
    guard_info(unsafe { &*data.cast::<Header>() })
}

fn guard_info(h: &Header) -> GuardInfo {
    let name = h.name_str();
    let guard_hi = h.stack_lo.get();
    let stack_size = crate::processor::stack_size_for(h.stack_size);
    GuardInfo {
        guard_hi,
        goroutine_id: h.id,
        name_ptr: name.as_ptr(),
        name_len: name.len(),
        stack_size,
    }
}

/// The goroutine running on this thread, as a new counted reference.
pub(crate) fn current_goroutine() -> Option<GRef> {
    let h = current_header();
    // SAFETY: a running goroutine is alive: its M holds a reference while it runs.
    (!h.is_null()).then(|| unsafe { GRef::clone_from_ptr(h) })
}

/// True if this thread is an M blocked in (or returning from) the poller.
pub(crate) fn current_in_poll() -> bool {
    let m = current_machine();
    // SAFETY: a non-null `CURRENT_M` points to this thread's live `Machine` (it never exits).
    !m.is_null() && unsafe { (*m).handoff.is_in_poll() }
}

/// The shared part of this thread's M, if this thread is an M.
pub(crate) fn current_home() -> Option<&'static Home> {
    let m = current_machine();
    // SAFETY: a non-null `CURRENT_M` points to this thread's live `Machine` (it never exits).
    (!m.is_null()).then(|| unsafe { (*m).handoff })
}

/// True if this thread is the M whose shared part is `home`.
pub(crate) fn is_current(home: &Home) -> bool {
    let m = current_machine();
    // SAFETY: a non-null `CURRENT_M` points to this thread's live `Machine` (it never exits).
    !m.is_null() && std::ptr::eq(unsafe { (*m).handoff }, home)
}

/// The header of the goroutine running on this thread, or null.
#[inline]
pub(crate) fn current_header() -> *const Header {
    let m = current_machine();
    if m.is_null() {
        return std::ptr::null();
    }
    // SAFETY: a non-null `CURRENT_M` points to this thread's live `Machine` (it never exits).
    unsafe { (*m).current.get() }
}

/// Calls `f` with the P of this thread's M, if this is an M holding one. `f` is scheduler code
/// that only touches queues and caches: it must not switch stacks or run user code. A nested
/// call (which would alias the `&mut Processor`) aborts with a message instead.
#[inline]
pub(crate) fn with_current_p<R>(f: impl FnOnce(Option<&mut Processor>) -> R) -> R {
    let m = current_machine();
    if m.is_null() {
        return f(None);
    }
    // SAFETY: a non-null `CURRENT_M` points to this thread's live `Machine`.
    let m = unsafe { &*m };
    if m.p_lent.swap(true, Ordering::Relaxed) {
        p_reentered(m);
    }
    // The flag is set before the P is read: a preemption signal arriving in between sees it
    // and leaves the P alone (same thread: a compiler fence orders the two for the handler).
    compiler_fence(Ordering::SeqCst);
    if !m.holds_p() && !m.current.get().is_null() {
        // A goroutine whose M lost its P to sysmon (blocked in a call gort does not know
        // about) is back in gort: the M gets a P before the goroutine goes on (Go's
        // `exitsyscall`).
        scheduler::reacquire_p_while_running(m);
    }
    // SAFETY: `m` is this thread's M, its P is not lent out (checked above) and `f` cannot
    // switch stacks, so the borrow is unique and does not outlive a switch.
    let r = f(unsafe { m.p() });
    compiler_fence(Ordering::SeqCst);
    m.p_lent.store(false, Ordering::Relaxed);
    r
}

#[cold]
fn p_reentered(m: &Machine) -> ! {
    crate::config::fatal(&format!(
        "M{}'s P was borrowed twice: code ran inside a scheduler critical section \
         (a tracing subscriber or destructor called back into gort there)",
        m.id
    ))
}

/// Switches the current goroutine out with `why`. False if not on a goroutine.
fn switch_out(why: Switch) -> bool {
    let h = current_header();
    if h.is_null() {
        return false;
    }
    // SAFETY: the running goroutine's header is alive; its yielder was set when it started and
    // is valid while it runs (it lives on the goroutine's own stack).
    unsafe { (*(*h).yielder.get()).suspend(why) };
    true
}

/// `park()` for a goroutine, recording `wait` (a packed `debug/wait.rs` word) for the dump.
/// False if the caller is not a goroutine.
#[inline]
pub(crate) fn park_current_goroutine(wait: impl FnOnce() -> u64) -> bool {
    let h = current_header();
    if h.is_null() {
        return false;
    }
    // SAFETY: the running goroutine's header is alive while it runs.
    let h = unsafe { &*h };
    if h.park.try_consume_token() {
        return true;
    }
    // Only the goroutine itself writes its wait word (`debug/wait.rs`).
    h.wait.store(wait(), Ordering::Relaxed);
    let hooks = PARK_HOOKS.load(Ordering::Relaxed);
    if hooks != 0 {
        run_park_hooks(h, hooks);
    }
    switch_out(Switch::Park)
}

/// What a parking goroutine records besides its wait word, fixed as the runtime starts (one
/// load on the park path for all of them): [`PARKSTACKS`], [`COMPACTION`].
static PARK_HOOKS: crate::loom::std_only::AtomicU8 = crate::loom::std_only::AtomicU8::new(0);
/// `GORT_DEBUG=parkstacks`: its backtrace (`debug/stacks.rs`).
const PARKSTACKS: u8 = 1;
/// Stack compaction: where its stack ends (`compact.rs`).
const COMPACTION: u8 = 2;

/// Fixes [`PARK_HOOKS`] (called once, as the runtime starts, before any goroutine parks).
pub(crate) fn set_park_hooks() {
    let hooks = u8::from(crate::debug::stacks::enabled()) * PARKSTACKS
        + u8::from(crate::config::compaction()) * COMPACTION;
    PARK_HOOKS.store(hooks, Ordering::Relaxed);
}

/// The park hooks `hooks` says are on. Out of line: the default mode runs none. (Not inlined
/// into its caller: `compact::note_park` records an address in its own frame, a callee of
/// `park_current_goroutine` as `switch_out` is.)
#[cold]
#[inline(never)]
fn run_park_hooks(h: &Header, hooks: u8) {
    if hooks & PARKSTACKS != 0 {
        crate::debug::stacks::note_park(h.id);
    }
    if hooks & COMPACTION != 0 {
        crate::compact::note_park(h);
    }
}

/// Lets other goroutines run; the caller stays runnable. On a plain thread, yields the thread.
///
/// ```
/// sched::yield_now();
/// ```
pub fn yield_now() {
    if !switch_out(Switch::Yield) {
        std::thread::yield_now();
    }
}

/// The id of the goroutine calling this, or `None` on a plain thread.
///
/// ```
/// assert_eq!(sched::current_id(), None);
/// let id = sched::spawn(sched::current_id).join().unwrap();
/// assert!(id.is_some());
/// ```
pub fn current_id() -> Option<u64> {
    let h = current_header();
    // SAFETY: the running goroutine's header is alive while it runs.
    (!h.is_null()).then(|| unsafe { (*h).id })
}

/// The name of the goroutine calling this, if it has one.
///
/// ```
/// let name = sched::Builder::new().name("worker").spawn(sched::current_name).join().unwrap();
/// assert_eq!(name.as_deref(), Some("worker"));
/// ```
pub fn current_name() -> Option<String> {
    let h = current_header();
    // SAFETY: the running goroutine's header is alive while it runs.
    (!h.is_null())
        .then(|| unsafe { (*h).name.as_deref().cloned() })
        .flatten()
}

/// The id of the P (logical processor) the caller runs on, or `None` on a plain thread. Stable
/// only until the caller next blocks or yields; meant for per-processor caches (like
/// `sync.Pool`'s), which must tolerate the caller moving on.
///
/// ```
/// assert_eq!(sched::current_processor_id(), None);
/// let id = sched::spawn(sched::current_processor_id).join().unwrap().unwrap();
/// assert!(id < sched::maxprocs().max(id + 1));
/// ```
pub fn current_processor_id() -> Option<usize> {
    with_current_p(|p| p.map(|p| p.id))
}

/// The id of the M (runtime thread) running the caller, or `None` on a plain thread. A
/// goroutine gets the same id for its whole life, unless migration was enabled
/// (`enable_migration`).
///
/// ```
/// assert_eq!(sched::current_machine_id(), None);
/// assert!(sched::spawn(sched::current_machine_id).join().unwrap().is_some());
/// ```
pub fn current_machine_id() -> Option<usize> {
    let m = current_machine();
    // SAFETY: a non-null `CURRENT_M` points to this thread's live `Machine`.
    (!m.is_null()).then(|| unsafe { (*m).id })
}
