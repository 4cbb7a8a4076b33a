//! Preemption: how a goroutine that runs too long is made to let others run (Go's
//! `preemptone`, `asyncPreempt`; `docs/PREEMPTION.md` gives the whole design and its soundness
//! argument).
//!
//! Length: about 400 lines of code and 150 of comments: the `Monitor` sysmon and the handler
//! share, and the handler itself, which must stay in one file so that everything it may call
//! is in view beside its async-signal-safety argument.
//!
//! Sysmon (`sysmon.rs`) watches every M through its [`Monitor`]: the M bumps `ticks` when it
//! resumes a goroutine and when the goroutine switches out, so an odd value that stays the same
//! for a time slice means one goroutine has run that long (or is blocked in a call gort does
//! not know about). Sysmon then escalates:
//!
//! 1. **Cooperative.** It records the run's tick in `coop` and raises the process-wide
//!    `REQUESTED`. Every gort entry point calls [`preempt_point`] (a load and a branch while
//!    nothing is requested); the goroutine whose run was asked yields there.
//! 2. **Signal.** If the run goes on and other work waits for a P, sysmon asks the thread's
//!    signal handler (`want`) and sends it `SIGURG`. The handler never switches goroutines (the
//!    interrupted code may be inside std's stdout lock, the allocator, any thread-local state):
//!    it takes the M's P and leaves it in `released` for sysmon, which gives it to another M.
//!    - `STOP` (the thread was computing): the handler then sleeps on the M's hand-off slot, as
//!      a hungry M, until a P comes back; the goroutine resumes where it was, on its own thread.
//!    - `DETACH` (the thread was blocked: its CPU clock did not move): the handler returns at
//!      once and the call goes on without a P; the M gets one back when it next schedules
//!      (`scheduler::reacquire_p`, Go's `exitsyscall`).
//!
//! The handler acts only at a safe point, and refuses otherwise (sysmon tries again later):
//! the thread runs goroutine code (a goroutine is current and the interrupted stack pointer is
//! not on the thread's own stack, where the scheduler runs), its P is not lent out (`with_current_p`), and it holds none of the scheduler's locks
//! (`RUNTIME_LOCKS`, counted by `loom::lock`), so neither sysmon nor any M can wait on a lock a
//! stopped thread holds. A stop is bounded: if no P moves for a while (`sysmon.rs`), sysmon
//! resumes the thread without one, so a lock outside the scheduler that the stopped thread
//! holds (a channel's, a user's) cannot deadlock the runtime either.
//!
//! Async-signal safety: the handler allocates nothing and calls no tracing. It reads
//! `const`-initialised thread-locals without destructors (one TLS load each, as `signal.rs`
//! explains), uses atomics, and, for `STOP`, waits on the M's own hand-off slot (a futex-based
//! std `Mutex`/`Condvar` on Linux: atomics and `futex(2)`), which this thread cannot hold since
//! it holds no scheduler lock. It saves and restores `errno`.

use std::cell::Cell;

use crate::loom::std_only::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, Once};
use crate::loom::Ordering;
use crate::processor::Processor;

thread_local! {
    /// Scheduler locks this thread holds or waits for (`loom::lock`). `const`, no destructor:
    /// the signal handler reads it.
    static RUNTIME_LOCKS: Cell<u32> = const { Cell::new(0) };
}

/// This thread takes one of the scheduler's locks.
#[inline]
pub(crate) fn runtime_lock_enter() {
    #[cfg(not(loom))]
    {
        RUNTIME_LOCKS.set(RUNTIME_LOCKS.get() + 1);
        crate::loom::std_only::compiler_fence(Ordering::SeqCst);
    }
}

/// This thread released one of the scheduler's locks.
#[inline]
pub(crate) fn runtime_lock_exit() {
    #[cfg(not(loom))]
    {
        crate::loom::std_only::compiler_fence(Ordering::SeqCst);
        RUNTIME_LOCKS.set(RUNTIME_LOCKS.get() - 1);
    }
}

/// True while some goroutine was asked to yield: [`preempt_point`]'s fast check.
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// What sysmon asks the signal handler to do (`Monitor::want`, low byte).
pub(crate) const WANT_NONE: u64 = 0;
pub(crate) const WANT_STOP: u64 = 1;
pub(crate) const WANT_DETACH: u64 = 2;
/// Copy the running goroutine's name into `Monitor::name` (for a diagnostic); nothing else.
pub(crate) const WANT_NAME: u64 = 3;

/// What the handler did (`Monitor::outcome`).
pub(crate) const OUT_PENDING: u64 = 0;
pub(crate) const OUT_STOPPED: u64 = 1;
pub(crate) const OUT_DETACHED: u64 = 2;
pub(crate) const OUT_STALE: u64 = 3;
pub(crate) const OUT_IN_RUNTIME: u64 = 4;
pub(crate) const OUT_NOT_GOROUTINE: u64 = 5;
pub(crate) const OUT_NO_P: u64 = 6;
/// A stopped thread got a P back (or was resumed without one) and went on.
pub(crate) const OUT_RESUMED: u64 = 7;
/// The handler copied the goroutine's name (`WANT_NAME`).
pub(crate) const OUT_NAMED: u64 = 8;

/// The bits of a request's number and of its run's tick (`Monitor::want`): 2^40 goroutine
/// switches on one M before a tick could be mistaken for another, 65,536 requests in flight.
const SEQ_MASK: u64 = 0xffff;
const TICK_MASK: u64 = (1 << 40) - 1;

/// Bytes of a goroutine's name the handler copies for a diagnostic.
const NAME_MAX: usize = 64;

/// A name for an `OUT_*` answer, for diagnostics.
pub(crate) fn outcome_name(outcome: u64) -> &'static str {
    match outcome {
        OUT_PENDING => "nothing yet",
        OUT_STOPPED => "stopped",
        OUT_DETACHED => "detached",
        OUT_STALE => "refused: the run had ended",
        OUT_IN_RUNTIME => "refused: inside the runtime",
        OUT_NOT_GOROUTINE => "refused: scheduler code",
        OUT_NO_P => "refused: no P",
        OUT_RESUMED => "resumed",
        OUT_NAMED => "named",
        _ => "?",
    }
}

/// What sysmon and the signal handler see of an M (it lives in the M's `Handoff`).
pub(crate) struct Monitor {
    /// Bumped by the M when it resumes a goroutine and when the goroutine switches out: odd
    /// while a goroutine runs. Written only by the M.
    ticks: AtomicU64,
    /// The id of the goroutine running (valid while `ticks` is odd).
    goid: AtomicU64,
    /// The `ticks` value of the run sysmon asked to yield (even: none).
    coop: AtomicU64,
    /// What sysmon asked the handler, for which run: `tick (low 40 bits) << 24 | seq << 8 |
    /// WANT_*` (`request`).
    want: AtomicU64,
    /// The handler's answer to request `seq`: `seq << 8 | OUT_*`. Answers carry the request's
    /// number, so a late answer to an old request is never taken for the current one.
    outcome: AtomicU64,
    /// Numbers the requests.
    seq: AtomicU64,
    /// The P the handler took from the M, for sysmon to give away, and whether the M waits
    /// stopped (`STOP`) or went on without it (`DETACH`): written before the pointer.
    released: AtomicPtr<Processor>,
    released_stopped: AtomicBool,
    /// True while the M holds a P (sysmon signals only such Ms).
    holds_p: AtomicBool,
    /// True while the M waits for a P with a goroutine in hand (stopped by signal, or back from
    /// a blocking call without a P): sysmon may end the wait (`sysmon::end_stops`).
    stop_wait: AtomicBool,
    /// The running goroutine's name, copied by the handler (`WANT_NAME`): `name_len` bytes.
    name: [AtomicU8; NAME_MAX],
    name_len: AtomicU64,
    /// The thread's kernel id (for `tgkill`) and CPU clock, once it started (0: not yet).
    tid: AtomicU64,
    cpu_clock: AtomicU64,
}

impl Monitor {
    pub(crate) fn new() -> Monitor {
        Monitor {
            ticks: AtomicU64::new(0),
            goid: AtomicU64::new(0),
            coop: AtomicU64::new(0),
            want: AtomicU64::new(WANT_NONE),
            outcome: AtomicU64::new(OUT_PENDING),
            seq: AtomicU64::new(0),
            released: AtomicPtr::new(std::ptr::null_mut()),
            released_stopped: AtomicBool::new(false),
            holds_p: AtomicBool::new(false),
            stop_wait: AtomicBool::new(false),
            name: [const { AtomicU8::new(0) }; NAME_MAX],
            name_len: AtomicU64::new(0),
            tid: AtomicU64::new(0),
            cpu_clock: AtomicU64::new(0),
        }
    }

    /// Called on the M's own thread when it starts: records what sysmon needs to signal it and
    /// read its CPU time.
    pub(crate) fn register_thread(&self) {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            self.tid.store(tid as u64, Ordering::Relaxed);
            let mut clock: libc::clockid_t = 0;
            // SAFETY: `pthread_self()` is this live thread; `clock` is a valid out pointer.
            if unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) } == 0 {
                self.cpu_clock
                    .store(clock as u32 as u64 | 1 << 32, Ordering::Relaxed);
            }
        }
    }

    /// The M took (`true`) or gave up a P.
    #[inline]
    pub(crate) fn set_holds_p(&self, on: bool) {
        self.holds_p.store(on, Ordering::Relaxed);
    }

    /// True while the M holds a P, as sysmon sees it.
    pub(crate) fn holds_p(&self) -> bool {
        self.holds_p.load(Ordering::Relaxed)
    }

    /// The M starts (`true`) or ends a wait for a P with a goroutine in hand.
    pub(crate) fn set_stop_wait(&self, on: bool) {
        self.stop_wait.store(on, Ordering::Release);
    }

    /// True while the M waits for a P with a goroutine in hand.
    pub(crate) fn in_stop_wait(&self) -> bool {
        self.stop_wait.load(Ordering::Acquire)
    }

    /// The M resumes goroutine `goid`.
    #[inline]
    pub(crate) fn enter(&self, goid: u64) {
        self.goid.store(goid, Ordering::Relaxed);
        self.ticks
            .store(self.ticks.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// The goroutine switched out (parked, yielded, ended).
    #[inline]
    pub(crate) fn leave(&self) {
        self.ticks
            .store(self.ticks.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// The current run's tick and goroutine, as sysmon samples them.
    pub(crate) fn sample(&self) -> (u64, u64) {
        let t = self.ticks.load(Ordering::Acquire);
        (t, self.goid.load(Ordering::Relaxed))
    }

    /// Sysmon asks the goroutine of run `tick` to yield at its next preemption point.
    pub(crate) fn request_yield(&self, tick: u64) {
        self.coop.store(tick, Ordering::Relaxed);
        REQUESTED.store(true, Ordering::Release);
    }

    /// True if a yield request for the current run is outstanding.
    pub(crate) fn yield_pending(&self) -> bool {
        let t = self.ticks.load(Ordering::Relaxed);
        t % 2 == 1 && self.coop.load(Ordering::Relaxed) == t
    }

    /// On the M's thread: takes the yield request for the current run, if there is one.
    fn take_yield_request(&self) -> bool {
        if !self.yield_pending() {
            return false;
        }
        self.coop.store(0, Ordering::Relaxed);
        true
    }

    /// Sysmon asks the handler to `want` (a `WANT_*`) the run `tick`, then signals the thread.
    /// Returns the request's number (for `answer`); `None` if the thread cannot be signalled
    /// (not registered, not on Linux, or signal preemption is off).
    pub(crate) fn signal(&self, tick: u64, want: u64) -> Option<u64> {
        let tid = self.tid.load(Ordering::Relaxed);
        if tid == 0 || !signals_supported() {
            return None;
        }
        let seq = (self.seq.fetch_add(1, Ordering::Relaxed) + 1) & SEQ_MASK;
        self.want
            .store((tick & TICK_MASK) << 24 | seq << 8 | want, Ordering::SeqCst);
        send_sigurg(tid).then_some(seq)
    }

    /// The handler's answer (`OUT_*`) to request `seq`, once it came.
    pub(crate) fn answer(&self, seq: u64) -> Option<u64> {
        let a = self.outcome.load(Ordering::Acquire);
        (a >> 8 == seq && a & 0xff != OUT_PENDING).then_some(a & 0xff)
    }

    /// The name the handler copied (`WANT_NAME`), if the goroutine has one.
    pub(crate) fn copied_name(&self) -> Option<String> {
        let len = self.name_len.load(Ordering::Acquire) as usize;
        let bytes: Vec<u8> = self.name[..len.min(NAME_MAX)]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        (len > 0).then(|| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// In the handler: copies the running goroutine's name (async-signal-safe: byte stores).
    fn copy_name(&self) {
        let Some(info) = crate::signal::current_guard_info() else {
            return;
        };
        let len = info.name_len.min(NAME_MAX);
        for (i, slot) in self.name[..len].iter().enumerate() {
            // SAFETY: `name_ptr..name_ptr + name_len` stays readable while the goroutine is
            // current on this thread (`signal::set_current`), which it is: we interrupted it.
            slot.store(unsafe { *info.name_ptr.add(i) }, Ordering::Relaxed);
        }
        self.name_len.store(len as u64, Ordering::Release);
    }

    /// The P a handler released, if any (sysmon takes it), and whether the M waits stopped.
    pub(crate) fn take_released(&self) -> Option<(Box<Processor>, bool)> {
        let p = self.released.swap(std::ptr::null_mut(), Ordering::Acquire);
        let stopped = self.released_stopped.load(Ordering::Relaxed);
        // SAFETY: a non-null `released` came from `Machine::take_p` (a `Box` turned raw by
        // `set_p`) in the handler, and the swap made sysmon its only owner.
        (!p.is_null()).then(|| (unsafe { Box::from_raw(p) }, stopped))
    }

    /// True if the thread sleeps in the kernel now (state `S` or `D` in
    /// `/proc/self/task/<tid>/stat`: a blocking system call, a futex, a page fault), false if
    /// it is running or runnable (waiting for a CPU counts as computing). `None` if unknown.
    pub(crate) fn sleeping(&self) -> Option<bool> {
        let tid = self.tid.load(Ordering::Relaxed);
        if tid == 0 {
            return None;
        }
        let stat = std::fs::read(format!("/proc/self/task/{tid}/stat")).ok()?;
        // `pid (comm) state ...`: the state follows the last ')'.
        let close = stat.iter().rposition(|&b| b == b')')?;
        let state = *stat.get(close + 2)?;
        Some(matches!(state, b'S' | b'D'))
    }

    /// The thread's CPU time so far, if it can be read.
    pub(crate) fn cpu_time(&self) -> Option<std::time::Duration> {
        let clock = self.cpu_clock.load(Ordering::Relaxed);
        if clock >> 32 == 0 {
            return None;
        }
        // SAFETY: `timespec` is plain data; all-zero is a valid value.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: `clock` is the CPU clock of one of our threads, which never exit; `ts` is a
        // valid out pointer.
        let rc = unsafe { libc::clock_gettime(clock as u32 as libc::clockid_t, &mut ts) };
        (rc == 0).then(|| std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
}

/// Offers to let other goroutines run, if the runtime asked the caller to (it has run for a
/// time slice while others wait). Costs a load and a branch otherwise, so a long computation
/// can call it often. Every gort blocking call and channel operation does this already; a loop
/// that makes no such call should, or it keeps its thread from the goroutines homed there
/// (`docs/PREEMPTION.md`).
///
/// ```
/// let h = sched::spawn(|| {
///     let mut x = 0u64;
///     for i in 0..1_000_000u64 {
///         x = x.wrapping_add(i * i);
///         sched::preempt_point();
///     }
///     x
/// });
/// assert!(h.join().unwrap() > 0);
/// ```
#[inline]
pub fn preempt_point() {
    if REQUESTED.load(Ordering::Relaxed) {
        preempt_point_slow();
    }
}

#[cold]
#[inline(never)]
fn preempt_point_slow() {
    let m = crate::machine::current_machine();
    // SAFETY: a non-null `current_machine` is this thread's live M.
    let Some(m) = (unsafe { m.as_ref() }) else {
        return;
    };
    if m.current().is_null() || !m.handoff.monitor.take_yield_request() {
        return;
    }
    crate::stats::count(&crate::stats::COOP_YIELDS);
    trace_record!(CoopPreempt, crate::machine::current_id().unwrap_or(0), 0);
    trace_event!(goid = crate::machine::current_id(), "preempt");
    m.set_check_timers();
    crate::machine::yield_now();
}

/// Sysmon: no yield request is outstanding any more (the fast check stops looking).
pub(crate) fn clear_requested() {
    REQUESTED.store(false, Ordering::Relaxed);
}

/// True if signal preemption works on this platform (Linux, x86_64 or aarch64).
pub(crate) fn signals_supported() -> bool {
    cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )) && crate::config::signal_preemption()
}

fn send_sigurg(tid: u64) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: tgkill with our own pid and one of our threads' ids (Ms never exit).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                libc::getpid(),
                tid as libc::pid_t,
                libc::SIGURG,
            )
        };
        rc == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = tid;
        false
    }
}

/// The action installed for SIGURG before ours (chained to), once published.
static PREVIOUS_SIGURG: AtomicPtr<libc::sigaction> = AtomicPtr::new(std::ptr::null_mut());

/// Installs the SIGURG handler (once), keeping a user's handler to chain to.
pub(crate) fn install_handler() {
    if !signals_supported() {
        return;
    }
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: all-zero is a valid `sigaction` (SIG_DFL, no flags, empty mask).
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_sigurg as extern "C" fn(_, _, _) as libc::sighandler_t;
        // SA_RESTART: system calls the signal interrupts restart where the kernel can.
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        // SAFETY: as above.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers; `on_sigurg` has the SA_SIGINFO signature and is
        // async-signal-safe (module docs).
        let rc = unsafe { libc::sigaction(libc::SIGURG, &action, &mut old) };
        if rc == 0 {
            PREVIOUS_SIGURG.store(Box::into_raw(Box::new(old)), Ordering::Release);
        }
    });
}

extern "C" fn on_sigurg(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is this thread's; the handler restores it before returning.
    let errno = unsafe { *libc::__errno_location() };
    handle(ctx);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
    // SAFETY: the kernel's arguments, passed on unchanged.
    unsafe { chain(sig, info, ctx) };
}

/// Calls the SIGURG handler a user installed before the runtime started, if any.
///
/// # Safety
/// `sig`, `info` and `ctx` must be the kernel's arguments to `on_sigurg`.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let prev = PREVIOUS_SIGURG.load(Ordering::Acquire);
    // SAFETY: non-null `PREVIOUS_SIGURG` is a leaked, never-modified `sigaction`.
    let Some(prev) = (unsafe { prev.as_ref() }) else {
        return;
    };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        return; // SIGURG's default action is to ignore it.
    }
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: an SA_SIGINFO action holds a three-argument handler.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: an action without SA_SIGINFO holds a one-argument handler.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}

/// The handler's work: act on sysmon's request for the run now on this thread, if it is at a
/// safe point (module docs).
fn handle(ctx: *mut libc::c_void) {
    let m = crate::machine::current_machine();
    // SAFETY: a non-null `current_machine` is this thread's live M (Ms never exit).
    let Some(m) = (unsafe { m.as_ref() }) else {
        return;
    };
    let mon = &m.handoff.monitor;
    let want = mon.want.swap(WANT_NONE, Ordering::SeqCst);
    if want == WANT_NONE {
        return;
    }
    let seq = want >> 8 & SEQ_MASK;
    let outcome = act(m, want >> 24, seq, want & 0xff, ctx);
    mon.outcome.store(seq << 8 | outcome, Ordering::Release);
}

fn act(m: &crate::machine::Machine, tick: u64, seq: u64, want: u64, ctx: *mut libc::c_void) -> u64 {
    let mon = &m.handoff.monitor;
    if mon.ticks.load(Ordering::Relaxed) & TICK_MASK != tick || m.current().is_null() {
        return OUT_STALE;
    }
    if want == WANT_NAME {
        // Only from the goroutine's own code: on the thread's stack, the scheduler may be
        // half-way through `signal::set_current`.
        if crate::signal::on_thread_stack(interrupted_sp(ctx)) {
            return OUT_NOT_GOROUTINE;
        }
        mon.copy_name();
        return OUT_NAMED;
    }
    if RUNTIME_LOCKS.get() != 0 || m.p_is_lent() {
        return OUT_IN_RUNTIME;
    }
    if crate::signal::on_thread_stack(interrupted_sp(ctx)) {
        return OUT_NOT_GOROUTINE;
    }
    let Some(p) = m.take_p() else {
        return OUT_NO_P;
    };
    let stop = want == WANT_STOP;
    // Marked before the P is published: sysmon, seeing the P, may look at both at once.
    mon.set_stop_wait(stop);
    mon.released_stopped.store(stop, Ordering::Relaxed);
    mon.released.store(Box::into_raw(p), Ordering::Release);
    if !stop {
        return OUT_DETACHED;
    }
    mon.outcome.store(seq << 8 | OUT_STOPPED, Ordering::Release);
    // Stopped: sysmon lists this M as hungry and gives its P to another M; sleep until a P
    // comes back (or sysmon resumes this thread without one).
    crate::scheduler::wait_while_stopped(m);
    OUT_RESUMED
}

/// The stack pointer of the code the signal interrupted.
fn interrupted_sp(ctx: *mut libc::c_void) -> usize {
    if ctx.is_null() {
        return 0;
    }
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        // SAFETY: for an SA_SIGINFO handler `ctx` points to the interrupted `ucontext_t`.
        unsafe {
            (*(ctx as *const libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RSP as usize] as usize
        }
    }
    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    {
        // SAFETY: as above.
        unsafe { (*(ctx as *const libc::ucontext_t)).uc_mcontext.sp as usize }
    }
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        0
    }
}
