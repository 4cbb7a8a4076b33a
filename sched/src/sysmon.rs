//! sysmon: the monitor thread (Go's `sysmon` in proc.go). It runs without a P, wakes at an
//! adaptive interval (20 µs, doubling after 1 ms without anything to do, up to 10 ms; at most
//! 1 ms while a goroutine it watches runs long) and looks at every M's `Monitor` (`preempt.rs`):
//!
//! - a goroutine that has run for a time slice (`SLICE`) is asked to yield at its next
//!   preemption point (cooperative);
//! - if it runs on for another slice while goroutines wait for a P (`retake::work_waiting`),
//!   and its thread is computing, the thread is stopped by signal and its P given to another M
//!   (`STOP`); sysmon first makes sure an idle M can take the P (a spare), so it never creates
//!   a thread while one it stopped may hold a lock thread creation needs;
//! - if its thread has been blocked for a slice (it sleeps in the kernel and was off the CPU
//!   most of that time: `std::thread::sleep`, a blocking read, a std `Mutex`), its P is taken
//!   by signal and the thread goes on without one (`DETACH`, Go's `retake` of a P in a system
//!   call);
//! - when for `STOP_BOUND` no M holding a P scheduled and no P changed hands, stopped threads
//!   are resumed without a P (`scheduler/retake.rs` says why that keeps a stop from ever
//!   deadlocking the program);
//! - a goroutine that ran call-free past `WARN_AFTER` is reported once (`tracing` warning; on
//!   stderr with `GORT_DEBUG=preempt`), with the remedy and its name, which only its M's
//!   signal handler may read (the warning waits for the answer, up to `ANSWER_WAIT`, in later
//!   rounds if need be).
//!
//! Sysmon holds no lock while it sleeps, runs no user code, and takes only the idle set's lock
//! and the M slots' (which a stopped thread never holds: `preempt.rs`). `GORT_SYSMON=off`
//! disables it (for side-by-side measurements).

use std::time::{Duration, Instant};

use crate::loom::std_only::{AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, OnceLock};
use crate::loom::Ordering;
use crate::preempt::{self, WANT_DETACH, WANT_STOP};
use crate::scheduler::{retake, Home};
use crate::stats;

/// A goroutine's time slice (Go's `forcePreemptNS`).
const SLICE: Duration = Duration::from_millis(10);
/// A signal's answer that has not come after this long is forgotten (`collect_answer`).
const ANSWER_WAIT: Duration = Duration::from_millis(50);
/// Stops end without a P after this long with no progress anywhere (`end_stops`).
const STOP_BOUND: Duration = Duration::from_millis(20);
/// A call-free run this long is reported (once per goroutine).
const WARN_AFTER: Duration = Duration::from_millis(100);
/// When sysmon last started a spare M (nanoseconds since `EPOCH`; 0: never).
static LAST_SPARE: AtomicU64 = AtomicU64::new(0);
/// A spare takes a moment to start and list itself idle: start at most one per this long.
const SPARE_EVERY: Duration = Duration::from_millis(20);

/// True (and recorded) if no spare M was started in the last `SPARE_EVERY`.
fn spare_due(now: Instant) -> bool {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let t = now.duration_since(*EPOCH.get_or_init(|| now)).as_nanos() as u64 + 1;
    let last = LAST_SPARE.load(Ordering::Relaxed);
    if last != 0 && t - last < SPARE_EVERY.as_nanos() as u64 {
        return false;
    }
    LAST_SPARE.store(t, Ordering::Relaxed);
    true
}

/// Long-run reports per process (`warn_long_run`).
const MAX_WARNINGS: usize = 64;
static WARNINGS: AtomicUsize = AtomicUsize::new(0);
/// The shortest and longest sleeps between looks.
const MIN_DELAY: Duration = Duration::from_micros(20);
const MAX_DELAY: Duration = Duration::from_millis(10);
const WATCHING_DELAY: Duration = Duration::from_millis(1);

/// Every M ever started, in start order (Ms never exit).
static MACHINES: Mutex<Vec<&'static Home>> = Mutex::new(Vec::new());
static NMACHINES: AtomicUsize = AtomicUsize::new(0);
/// A stopped M was handed a P as a spinner and went back to its goroutine: start a spinner.
static WAKEP: AtomicBool = AtomicBool::new(false);

/// 1 once the sysmon thread runs (the deadlock check counts it as a known thread).
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// The runtime threads sysmon adds: 1 if it runs.
pub(crate) fn threads() -> usize {
    STARTED.load(Ordering::Acquire)
}

/// Adds an M (on its own thread, as it starts).
pub(crate) fn register(home: &'static Home) {
    crate::loom::lock_std(&MACHINES).push(home);
    NMACHINES.fetch_add(1, Ordering::Release);
}

/// Every M started so far, in start order (the goroutine dump's way to every M).
pub(crate) fn machines() -> Vec<&'static Home> {
    crate::loom::lock_std(&MACHINES).clone()
}

/// True while sysmon sleeps because every P is idle (`sleep_while_idle`).
static ASLEEP: AtomicBool = AtomicBool::new(false);
/// What `sleep_while_idle` waits on, and `p_taken` notifies under.
static IDLE_WAIT: Mutex<()> = Mutex::new(());
static IDLE_WAKE: Condvar = Condvar::new();

/// The longest sysmon sleeps at a time while every P is idle.
const IDLE_NAP: Duration = Duration::from_secs(1);

/// Sleeps until a P is taken from the idle list (`p_taken`), or `nap` passed. The idle set
/// lowers `npidle` and then reads `ASLEEP`; this sets `ASLEEP` and then reads `npidle` (through
/// `all_idle`), all SeqCst, under `IDLE_WAIT`: one of the two sees the other, and the
/// notification cannot fall between the check and the wait.
fn sleep_while_idle(nap: Duration) {
    let mut g = IDLE_WAIT.lock().unwrap_or_else(|e| e.into_inner());
    ASLEEP.store(true, Ordering::SeqCst);
    if retake::all_idle() {
        g = IDLE_WAKE
            .wait_timeout(g, nap)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    ASLEEP.store(false, Ordering::SeqCst);
    drop(g);
}

/// A P was taken from the idle list (`IdleSet::pop_p`): wakes sysmon if it sleeps for lack of
/// work. One SeqCst load when it does not (always, in the loom models: sysmon never runs
/// there).
#[inline]
pub(crate) fn p_taken() {
    if ASLEEP.load(Ordering::SeqCst) {
        // Parks stamp their waits with sysmon's clock, stale while it slept: bring it up to
        // date before the goroutine this P runs can park (`debug/wait.rs`).
        crate::debug::wait::tick_coarse_clock();
        let _g = IDLE_WAIT.lock().unwrap_or_else(|e| e.into_inner());
        IDLE_WAKE.notify_one();
    }
}

/// Asks sysmon to `wakep` (from a signal handler, which must not start threads).
pub(crate) fn request_wakep() {
    WAKEP.store(true, Ordering::Release);
}

/// Starts sysmon, unless `GORT_SYSMON=off`. Called once, when the runtime starts.
pub(crate) fn start() {
    if !crate::config::sysmon_enabled() {
        return;
    }
    preempt::install_handler();
    // Counted before it exists: a deadlock check in between stays silent, and sysmon checks
    // again once it runs (`run`).
    STARTED.store(1, Ordering::Release);
    let spawned = std::thread::Builder::new()
        .name("gort-sysmon".into())
        .stack_size(128 * 1024)
        .spawn(run);
    if let Err(e) = spawned {
        STARTED.store(0, Ordering::Release);
        eprintln!("gort: cannot start sysmon ({e}): no preemption, no hand-off of blocked Ps");
    }
}

/// What sysmon last saw of one M.
struct Seen {
    tick: u64,
    /// When the run was first seen (its length, for the diagnostic).
    started: Instant,
    /// When its current slice began (a stop starts a new one).
    since: Instant,
    cpu: Option<Duration>,
    asked: bool,
    warned: bool,
    /// The number of a signal sent for this run whose answer has not come, and when it went.
    pending: Option<(u64, Instant)>,
    /// The long-run warning waiting for the goroutine's name: the pending signal asked for it.
    naming: Option<LongRun>,
    /// The M is stopped in its handler.
    stopped: bool,
}

impl Seen {
    fn new(tick: u64, now: Instant, cpu: Option<Duration>) -> Seen {
        Seen {
            tick,
            started: now,
            since: now,
            cpu,
            asked: false,
            warned: false,
            pending: None,
            naming: None,
            stopped: false,
        }
    }
}

fn run() {
    // Every M may have gone to sleep before this thread existed to be counted.
    crate::scheduler::check_deadlock_now();
    let mut ms: Vec<&'static Home> = Vec::new();
    let mut seen: Vec<Seen> = Vec::new();
    let mut delay = MIN_DELAY;
    let mut quiet_rounds = 0u32;
    let mut last_progress = Instant::now();
    let mut last_moves = retake::moves();
    loop {
        std::thread::sleep(delay);
        if delay == MAX_DELAY && retake::all_idle() {
            // Nothing runs and nothing has for a while: sleep until a P is taken (Go's
            // `sysmonwait`), so an idle program does not wake 100 times a second.
            sleep_while_idle(crate::scavenger::tick_idle(Instant::now(), IDLE_NAP));
            if !retake::all_idle() {
                (delay, quiet_rounds) = (MIN_DELAY, 0);
            }
        }
        if WAKEP.swap(false, Ordering::Acquire) {
            retake::wakep();
        }
        if NMACHINES.load(Ordering::Acquire) != ms.len() {
            ms = crate::loom::lock_std(&MACHINES).clone();
        }
        let now = Instant::now();
        crate::debug::wait::tick_coarse_clock();
        seen.resize_with(ms.len(), || Seen::new(0, now, None));
        let mut round = Round::default();
        for (home, seen) in ms.iter().zip(seen.iter_mut()) {
            look_at(home, seen, now, &mut round);
        }
        let moves = retake::moves();
        if round.progress || moves != last_moves {
            last_progress = now;
            last_moves = moves;
        }
        if now - last_progress >= STOP_BOUND {
            end_stops(&ms, &mut round);
        }
        if !round.yield_pending {
            preempt::clear_requested();
        }
        crate::scavenger::tick(now);
        stats::count(&stats::SYSMON_ROUNDS);
        (delay, quiet_rounds) = next_delay(delay, quiet_rounds, &round);
    }
}

/// What one look at every M found.
#[derive(Default)]
struct Round {
    /// Sysmon did something (asked, signalled, handed a P on).
    acted: bool,
    /// A goroutine is running long: look again soon.
    watching: bool,
    /// A yield request is still outstanding.
    yield_pending: bool,
    /// Some M holding a P scheduled since the last look (its tick moved).
    progress: bool,
}

/// Go's rule: 20 µs while there is something to do, doubling after 50 quiet rounds (1 ms), up
/// to 10 ms; at most 1 ms while a long run is watched.
fn next_delay(delay: Duration, quiet: u32, round: &Round) -> (Duration, u32) {
    if round.acted {
        return (MIN_DELAY, 0);
    }
    let quiet = quiet.saturating_add(1);
    let mut next = if quiet > 50 { delay * 2 } else { delay };
    next = next.min(MAX_DELAY);
    if round.watching {
        next = next.min(WATCHING_DELAY);
    }
    (next, quiet)
}

fn look_at(home: &'static Home, seen: &mut Seen, now: Instant, round: &mut Round) {
    let mon = &home.monitor;
    take_released(home, seen, round);
    collect_answer(home, seen, now);
    if seen.stopped {
        stop_ended(home, seen, now, round);
        return;
    }
    let (tick, goid) = mon.sample();
    if tick != seen.tick {
        round.progress |= mon.holds_p();
        if let Some(run) = seen.naming.take() {
            // The run ended before its name came: warn with what there is.
            warn_long_run(home, run, named(home, seen));
        }
        *seen = Seen::new(tick, now, mon.cpu_time());
        return;
    }
    if tick % 2 == 0 {
        return; // in the scheduler (or idle)
    }
    round.watching = true;
    let ran = now - seen.since;
    if ran < SLICE {
        return;
    }
    if !seen.asked {
        seen.asked = true;
        mon.request_yield(tick);
        stats::count(&stats::PREEMPT_REQUESTS);
        round.acted = true;
    }
    round.yield_pending |= mon.yield_pending();
    let whole = now - seen.started;
    if whole >= WARN_AFTER && !seen.warned {
        seen.warned = true;
        // Detached (no P any more), or asleep in the kernel now: a blocking call.
        let blocked = !mon.holds_p() || mon.sleeping() == Some(true);
        let run = LongRun {
            goid,
            ran: whole,
            blocked,
        };
        // (Not while a signal's answer is pending: asking would overwrite it.)
        if seen.pending.is_some() {
            warn_long_run(home, run, None);
        } else {
            ask_name(home, seen, tick, run, round);
        }
    }
    if seen.pending.is_some() || !mon.holds_p() {
        return;
    }
    // Blocked: the thread sleeps in the kernel now and spent most of the run off the CPU. (Its
    // CPU time alone cannot tell: a computing thread waiting for a CPU on a loaded machine
    // gets none for a while; its state, `R`, can.)
    let off_cpu = match (seen.cpu, mon.cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a) < ran / 2,
        _ => true,
    };
    let blocked = off_cpu && mon.sleeping() == Some(true);
    if blocked {
        signal(home, seen, tick, WANT_DETACH, round);
    } else if ran >= 2 * SLICE && retake::work_waiting() {
        if crate::config::debug_preempt() {
            eprintln!(
                "gort: sysmon: M{} ran {} ms, work waits",
                home.id,
                ran.as_millis()
            );
        }
        if retake::spare_m() {
            signal(home, seen, tick, WANT_STOP, round);
        } else if spare_due(now) {
            retake::start_spare_m();
            round.acted = true;
        }
    }
}

fn signal(home: &'static Home, seen: &mut Seen, tick: u64, want: u64, round: &mut Round) {
    if send(home, seen, tick, want, round) {
        take_released(home, seen, round);
        collect_answer(home, seen, Instant::now());
    }
}

/// Sends `want` to the run `tick` of `home`'s M and waits for the answer a little (the
/// handler runs as soon as the kernel delivers the signal: so that the P, or the name, comes
/// in this round); a later round collects an answer that comes later. False if nothing was
/// sent (the run ended, or signals are off).
fn send(home: &'static Home, seen: &mut Seen, tick: u64, want: u64, round: &mut Round) -> bool {
    let Some(seq) = home.monitor.signal(tick, want) else {
        return false;
    };
    seen.pending = Some((seq, Instant::now()));
    round.acted = true;
    let deadline = Instant::now() + Duration::from_millis(2);
    while home.monitor.answer(seq).is_none() && Instant::now() < deadline {
        std::thread::sleep(MIN_DELAY);
    }
    true
}

/// Asks the signal handler of the run `tick` for its goroutine's name (the only code that may
/// read the goroutine's header while it runs), to warn about `run` when the answer comes
/// (`collect_answer`), at once if it does not come (signals off, the run ended).
fn ask_name(home: &'static Home, seen: &mut Seen, tick: u64, run: LongRun, round: &mut Round) {
    if !send(home, seen, tick, preempt::WANT_NAME, round) {
        warn_long_run(home, run, None);
        return;
    }
    seen.naming = Some(run);
    collect_answer(home, seen, Instant::now());
}

/// The name the handler copied, if the pending signal asked for it and was answered so.
fn named(home: &'static Home, seen: &Seen) -> Option<String> {
    let (seq, _) = seen.pending?;
    (home.monitor.answer(seq) == Some(preempt::OUT_NAMED))
        .then(|| home.monitor.copied_name())
        .flatten()
}

/// A signal's answer, for the counters: the P itself comes through `take_released`. One that
/// never comes (the signal was not delivered) is forgotten after a while.
fn collect_answer(home: &'static Home, seen: &mut Seen, now: Instant) {
    let Some((seq, sent)) = seen.pending else {
        return;
    };
    let Some(outcome) = home.monitor.answer(seq) else {
        if now - sent > ANSWER_WAIT {
            seen.pending = None;
            if let Some(run) = seen.naming.take() {
                warn_long_run(home, run, None);
            }
        }
        return;
    };
    if let Some(run) = seen.naming.take() {
        let name = named(home, seen);
        seen.pending = None;
        warn_long_run(home, run, name);
        return;
    }
    seen.pending = None;
    stats::count_refusal(outcome);
    if crate::config::debug_preempt() {
        eprintln!(
            "gort: sysmon: M{} answered {}",
            home.id,
            preempt::outcome_name(outcome)
        );
    }
}

/// Gives away the P a handler released for `home`'s M, if there is one (looked at every round,
/// whatever became of the request's answer, so a P is never left behind).
fn take_released(home: &'static Home, seen: &mut Seen, round: &mut Round) {
    let Some((p, stopped)) = home.monitor.take_released() else {
        return;
    };
    round.acted = true;
    stats::count(&stats::P_HANDOFFS);
    if stopped {
        stats::count(&stats::SIGNAL_STOPS);
        seen.stopped = true;
    } else {
        stats::count(&stats::SIGNAL_DETACHES);
    }
    trace_record!(SignalPreempt, home.id as u64, u64::from(stopped));
    retake::give_away(home, p, stopped);
    trace_event!(m = home.id, stopped, "sysmon took a P");
}

/// A stopped M: done when its handler took a P back (or was resumed without one); its run then
/// goes on with a fresh slice.
fn stop_ended(home: &'static Home, seen: &mut Seen, now: Instant, round: &mut Round) {
    if !home.monitor.in_stop_wait() {
        seen.stopped = false;
        seen.since = now;
        seen.asked = false;
        return;
    }
    round.watching = true;
}

/// Nothing moved for `STOP_BOUND`: no M holding a P scheduled and no P changed hands. A stopped
/// thread may hold what the others wait for (a lock outside the scheduler): resume every
/// stopped thread without a P (`scheduler/retake.rs`).
fn end_stops(ms: &[&'static Home], round: &mut Round) {
    for home in ms {
        // (A fast path: `resume_without_p` checks the stop wait again, under the idle lock.)
        if home.monitor.in_stop_wait() && retake::resume_stopped(home) {
            stats::count(&stats::STOP_TIMEOUTS);
            round.acted = true;
        }
    }
}

/// A run long enough to warn about.
struct LongRun {
    goid: u64,
    ran: Duration,
    /// Detached (no P any more), or asleep in the kernel: a blocking call.
    blocked: bool,
}

/// Reports a long run (at most `MAX_WARNINGS` times per process: a program that blocks a
/// thousand goroutines the same way needs one line, not a thousand).
fn warn_long_run(home: &'static Home, run: LongRun, name: Option<String>) {
    let LongRun { goid, ran, blocked } = run;
    if WARNINGS.fetch_add(1, Ordering::Relaxed) >= MAX_WARNINGS {
        return;
    }
    let (ms, m, waiting) = (ran.as_millis(), home.id, home.remote_len());
    let who = match &name {
        Some(n) => format!("goroutine {goid} ({n})"),
        None => format!("goroutine {goid}"),
    };
    let msg = if blocked {
        format!(
            "gort: {who} has blocked thread gort-m{m} for {ms} ms in a call gort \
             does not manage (std::thread::sleep, blocking file or pipe I/O, a std Mutex...); \
             sysmon gave its P to another thread, but {waiting} goroutine(s) readied for that \
             thread wait for it. Run the call with gort::blocking (docs/BLOCKING.md)"
        )
    } else {
        format!(
            "gort: {who} has run for {ms} ms without a preemption point on thread \
             gort-m{m}; {waiting} goroutine(s) readied for that thread wait for it. Call \
             gort::preempt_point() in long loops, or run the computation with gort::blocking \
             (docs/PREEMPTION.md)"
        )
    };
    crate::config::contain("a tracing subscriber", || {
        tracing::warn!(
            goroutine = goid,
            thread = m,
            ms = ms as u64,
            waiting,
            blocked,
            "{msg}"
        )
    });
    if crate::config::debug_preempt() {
        eprintln!("{msg}");
    }
}
