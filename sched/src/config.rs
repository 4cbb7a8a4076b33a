//! Runtime settings: environment variables, their defaults, and the unjoined-panic policy.
//!
//! | variable          | meaning                                   | default                     |
//! |-------------------|-------------------------------------------|-----------------------------|
//! | `GORT_MAXPROCS`   | number of Ps (goroutines running at once) | available CPUs              |
//! | `GORT_STACK_SIZE` | default goroutine stack (`65536`, `64k`, `1m`) | 256 KiB                |
//! | `GORT_DEADLOCK`   | `off` disables deadlock detection; `strict` reports deadlocks despite unknown threads (`deadlock.rs`) | on |
//! | `GORT_SYSMON`     | `off` disables sysmon: no preemption, no hand-off of blocked Ps (`docs/PREEMPTION.md`) | on |
//! | `GORT_PREEMPT_SIGNAL` | `off`: sysmon only asks goroutines to yield, never signals a thread | on |
//! | `GORT_DEBUG`      | comma-separated: `preempt` (sysmon's reports and decisions also on stderr), `schedtrace=<ms>` (Go's `SCHED` line every period: `debug/schedtrace.rs`), `parkstacks` (each park records its backtrace for the dump: `debug/stacks.rs`) | off |
//! | `GORT_SIGQUIT`    | `exit`: dump every goroutine on SIGQUIT and exit 2 (Go's); `continue`: dump and go on; `off` (`debug/sigquit.rs`) | `exit` |
//! | `GORT_MAX_BLOCKING_THREADS`, `GORT_BLOCKING_KEEPALIVE_MS` | the blocking pool's cap and idle time (`docs/BLOCKING.md`) | 10,000; 10 s |
//!
//! Migration (Go's started goroutines moving between threads) is not an environment variable:
//! it is unsound for code that keeps thread-bound state across a park, so it is enabled only by
//! [`enable_migration`], an `unsafe fn` whose contract the program accepts.
//!
//! Values are read once, the first time they are needed, and cached in atomics (the stack size
//! is read on every goroutine start).

use crate::loom::std_only::{AtomicU8, AtomicUsize, OnceLock};
use crate::loom::Ordering;

/// Default usable stack size per goroutine.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

static STACK_SIZE: AtomicUsize = AtomicUsize::new(0);
/// The Ps a `set_maxprocs` before the start asked for: 0 if none did, [`MAXPROCS_TAKEN`] once
/// the starting runtime has read it. One atomic, changed only by `swap` and `compare_exchange`,
/// so a `set_maxprocs` racing with the start either lands before the start reads it or sees
/// `MAXPROCS_TAKEN` and goes to the running scheduler: it is never lost.
static MAXPROCS_BEFORE_START: AtomicUsize = AtomicUsize::new(0);
const MAXPROCS_TAKEN: usize = usize::MAX;

#[inline]
pub(crate) fn default_stack_size() -> usize {
    match STACK_SIZE.load(Ordering::Relaxed) {
        0 => init_default_stack_size(),
        size => size,
    }
}

#[cold]
fn init_default_stack_size() -> usize {
    let size = crate::stack::round_stack_size(stack_size_from_env());
    STACK_SIZE.store(size, Ordering::Relaxed);
    size
}

fn stack_size_from_env() -> usize {
    let Ok(v) = std::env::var("GORT_STACK_SIZE") else {
        return DEFAULT_STACK_SIZE;
    };
    match parse_size(&v) {
        Some(n) if n > 0 => n,
        _ => {
            eprintln!("gort: ignoring GORT_STACK_SIZE={v:?} (expected bytes, or a number with k/m suffix)");
            DEFAULT_STACK_SIZE
        }
    }
}

/// Parses `4096`, `64k`, `64K`, `1m`, `1M` into bytes.
pub(crate) fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (digits, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1024),
        b'm' | b'M' => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    digits.trim().parse::<usize>().ok()?.checked_mul(mult)
}

/// Ps at start, as the starting runtime reads it once: a value set with `set_maxprocs` before
/// the runtime started, else `GORT_MAXPROCS`, else the available parallelism. After this,
/// [`maxprocs_before_start`] and [`set_maxprocs_before_start`] answer `None`.
pub(crate) fn take_initial_maxprocs() -> usize {
    match MAXPROCS_BEFORE_START.swap(MAXPROCS_TAKEN, Ordering::SeqCst) {
        0 | MAXPROCS_TAKEN => maxprocs_from_env(),
        n => n,
    }
}

/// The Ps the runtime will start with, or `None` once it has started (ask the scheduler).
pub(crate) fn maxprocs_before_start() -> Option<usize> {
    match MAXPROCS_BEFORE_START.load(Ordering::SeqCst) {
        MAXPROCS_TAKEN => None,
        0 => Some(maxprocs_from_env()),
        n => Some(n),
    }
}

/// `GORT_MAXPROCS`, else the available parallelism; read once (callers may ask often before
/// the runtime starts, e.g. a mutex deciding whether to spin).
fn maxprocs_from_env() -> usize {
    static FROM_ENV: OnceLock<usize> = OnceLock::new();
    *FROM_ENV.get_or_init(|| {
        std::env::var("GORT_MAXPROCS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// Records `n` (at least 1) as the Ps to start with and returns the previous count, or `None`
/// if the runtime has already read it (the caller then sets the running scheduler's).
pub(crate) fn set_maxprocs_before_start(n: usize) -> Option<usize> {
    debug_assert!(n >= 1 && n != MAXPROCS_TAKEN);
    let mut cur = MAXPROCS_BEFORE_START.load(Ordering::SeqCst);
    loop {
        if cur == MAXPROCS_TAKEN {
            return None;
        }
        match MAXPROCS_BEFORE_START.compare_exchange(cur, n, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) if cur == 0 => return Some(maxprocs_from_env()),
            Ok(_) => return Some(cur),
            Err(now) => cur = now,
        }
    }
}

pub(crate) fn deadlock_detection() -> bool {
    !matches!(
        std::env::var("GORT_DEADLOCK").as_deref(),
        Ok("off" | "0" | "false")
    )
}

/// False if `GORT_SYSMON` is `off`/`0`/`false` (no monitor thread: no preemption and no
/// hand-off of blocked Ps; for side-by-side measurements).
pub(crate) fn sysmon_enabled() -> bool {
    !env_off("GORT_SYSMON")
}

/// False if `GORT_PREEMPT_SIGNAL` is `off`/`0`/`false`: sysmon then only asks goroutines to
/// yield (cooperative preemption) and never signals a thread.
pub(crate) fn signal_preemption() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| !env_off("GORT_PREEMPT_SIGNAL"))
}

/// True if `GORT_DEBUG` contains `preempt`: preemption diagnostics also go to stderr.
pub(crate) fn debug_preempt() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var("GORT_DEBUG").is_ok_and(|v| v.split(',').any(|w| w.trim() == "preempt"))
    })
}

fn env_off(var: &str) -> bool {
    matches!(std::env::var(var).as_deref(), Ok("off" | "0" | "false"))
}

/// The migration mode: bit [`MIGRATE_ON`] set by `enable_migration`, bit [`MIGRATE_FROZEN`] set
/// once by the starting runtime. Changed only by read-modify-writes, so `enable_migration`
/// racing with the start either lands before it or is refused: the mode never changes under a
/// running scheduler.
static MIGRATE: AtomicU8 = AtomicU8::new(0);
const MIGRATE_ON: u8 = 1;
const MIGRATE_FROZEN: u8 = 2;

/// True if started goroutines may move between threads (`enable_migration`).
#[inline]
pub(crate) fn migrate() -> bool {
    MIGRATE.load(Ordering::Relaxed) & MIGRATE_ON != 0
}

/// Fixes the migration mode for the runtime's life (called once, as it starts).
pub(crate) fn freeze_migration() {
    MIGRATE.fetch_or(MIGRATE_FROZEN, Ordering::SeqCst);
}

/// `enable_migration` or `enable_stack_compaction` was called after the runtime started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeStarted;

impl std::fmt::Display for RuntimeStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the gort runtime has already started: choose its mode (migration, stack \
             compaction) before the first spawn",
        )
    }
}

impl std::error::Error for RuntimeStarted {}

/// Lets started goroutines move between threads, as Go's do: a goroutine readied by another
/// thread runs there, and idle threads steal started goroutines. By default a goroutine stays
/// for life on the thread that first ran it, which is what makes thread-locals, `Rc`, std's
/// guards and everything thread-bound in the libraries it calls safe to use across a park
/// (`docs/SOUNDNESS.md`). Migration can balance long-lived goroutines and shortens cross-thread
/// wake-ups; measure before reaching for it (`docs/BENCHMARKS.md` compares the two).
///
/// Must be called before the runtime starts (its first spawn or `run`, or a first timer);
/// afterwards it changes nothing and returns [`RuntimeStarted`].
///
/// # Safety
/// From this call on, no goroutine may hold across a gort blocking call (a park, a channel
/// operation, a lock, a sleep, I/O, `yield_now`, `join`) anything bound to its thread,
/// including what the libraries it calls hold: no borrow of a `thread_local!` value; no `Rc`,
/// `MutexGuard`, `StdoutLock` or other `!Send` value obtained from thread-local state; and no
/// function may read a thread-local both before and after such a call unless the second read
/// happens in a separate `#[inline(never)]` function (the compiler may keep the first thread's
/// address). Breaking this is undefined behaviour. `gort::local!` is the safe replacement for
/// per-goroutine state.
///
/// ```
/// // SAFETY: this program keeps no thread-bound state across a park.
/// let enabled = unsafe { sched::enable_migration() };
/// // In a doctest the runtime may already be running (other tests), so both are possible.
/// assert!(enabled.is_ok() || enabled.is_err());
/// ```
pub unsafe fn enable_migration() -> Result<(), RuntimeStarted> {
    turn_on(&MIGRATE)
}

/// Sets a mode's `MIGRATE_ON` bit unless the starting runtime froze it.
fn turn_on(mode: &AtomicU8) -> Result<(), RuntimeStarted> {
    let was = mode
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
            (m & MIGRATE_FROZEN == 0).then_some(m | MIGRATE_ON)
        })
        .unwrap_or_else(|m| m);
    if was & MIGRATE_FROZEN != 0 {
        return Err(RuntimeStarted);
    }
    Ok(())
}

/// The compaction mode, as [`MIGRATE`] (same bits): set by `enable_stack_compaction`, frozen
/// as the runtime starts.
static COMPACT: AtomicU8 = AtomicU8::new(0);

/// True if parked stacks may be compacted (`enable_stack_compaction`).
#[inline]
pub(crate) fn compaction() -> bool {
    COMPACT.load(Ordering::Relaxed) & MIGRATE_ON != 0
}

/// Fixes the compaction mode for the runtime's life (called once, as it starts).
pub(crate) fn freeze_compaction() {
    COMPACT.fetch_or(MIGRATE_FROZEN, Ordering::SeqCst);
}

/// Lets the runtime give back the stack memory of goroutines parked for a while: their live
/// bytes (usually well under a page) are copied to the heap and their stack pages released,
/// and copied back, to the same addresses, before they run again. A million parked goroutines
/// then cost about a kilobyte each instead of a page (`docs/BENCHMARKS.md`, park_many).
/// Which goroutines are compacted, and why the others are not, is in `docs/SOUNDNESS.md`
/// ("Parked stacks stay resident"): in short, those parked in a wait whose state is off their
/// stacks (any but a blocking-pool call), outside any [`lend_stack`](crate::lend_stack)
/// guard. [`stats`](crate::stats) counts them.
///
/// Must be called before the runtime starts (its first spawn or `run`, or a first timer);
/// afterwards it changes nothing and returns [`RuntimeStarted`].
///
/// # Safety
/// From this call on, no thread other than a goroutine itself may read or write memory on that
/// goroutine's stack while it is parked, except through gort's own primitives: a pointer or
/// reference to a local of a goroutine must not be used by another thread across the
/// goroutine's park (a `std::thread::scope`, `rayon::scope` or `crossbeam::scope` whose body
/// parks the goroutine, a buffer lent to the kernel for asynchronous I/O, a hand-made wait
/// node published to other threads), unless a [`lend_stack`] guard is alive on the goroutine
/// for as long as other threads may use it. Breaking this is undefined behaviour: the other
/// thread reads zeros, and what it writes is lost.
///
/// ```
/// // SAFETY: this program lends no goroutine's stack to another thread across a park.
/// let enabled = unsafe { sched::enable_stack_compaction() };
/// // In a doctest the runtime may already be running (other tests), so both are possible.
/// assert!(enabled.is_ok() || enabled.is_err());
/// ```
pub unsafe fn enable_stack_compaction() -> Result<(), RuntimeStarted> {
    turn_on(&COMPACT)
}

/// What happens when a goroutine panics and nobody joins it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnjoinedPanic {
    /// Print `goroutine N (name) panicked and was not joined: message` on stderr (default).
    Report,
    /// Print the report, then abort the process (Go's behaviour for any goroutine panic).
    Abort,
    /// Say nothing (the panic hook has already printed the panic itself).
    Ignore,
}

static POLICY: AtomicU8 = AtomicU8::new(0);

/// Sets what happens when a goroutine panics and its [`JoinHandle`](crate::JoinHandle) is
/// dropped without `join`. The default is [`UnjoinedPanic::Report`].
///
/// ```
/// sched::set_unjoined_panic_policy(sched::UnjoinedPanic::Report);
/// ```
pub fn set_unjoined_panic_policy(policy: UnjoinedPanic) {
    POLICY.store(policy as u8, Ordering::Relaxed);
}

fn policy() -> UnjoinedPanic {
    match POLICY.load(Ordering::Relaxed) {
        1 => UnjoinedPanic::Abort,
        2 => UnjoinedPanic::Ignore,
        _ => UnjoinedPanic::Report,
    }
}

pub(crate) fn report_unjoined_panic(id: u64, name: &str, msg: &str) {
    let who = if name.is_empty() {
        format!("goroutine {id}")
    } else {
        format!("goroutine {id} ({name})")
    };
    match policy() {
        UnjoinedPanic::Ignore => {}
        UnjoinedPanic::Report => eprintln!("{who} panicked and was not joined: {msg}"),
        UnjoinedPanic::Abort => {
            eprintln!("{who} panicked and was not joined: {msg}");
            std::process::abort();
        }
    }
}

/// Runs user code the runtime calls outside any goroutine's closure (a tracing subscriber, a
/// timer action, a destructor) where a panic must not unwind into the scheduler: a panic is
/// reported on stderr (naming `what`) and the scheduler carries on.
#[inline]
pub(crate) fn contain(what: &str, f: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        contained_panic(&format!("running {what}"), payload);
    }
}

/// Reports a panic `contain` (or a caller doing the same) caught while `what`, then drops the
/// payload, which is user data too: a panic in its destructor aborts, as in std.
#[cold]
pub(crate) fn contained_panic(what: &str, payload: crate::goroutine::Panic) {
    report_runtime_context_panic(what, payload.as_ref());
    drop_payload(payload, what);
}

/// Drops a panic payload caught while `what`; a panic in its destructor aborts the process with
/// a clear message, as std does ("drop of the panic payload panicked").
fn drop_payload(payload: crate::goroutine::Panic, what: &str) {
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload)));
    if dropped.is_err() {
        fatal(&format!(
            "the payload of a panic caught while {what} panicked when dropped"
        ));
    }
}

/// Ends the process with `fatal error: gort: <why>` on stderr: for states the runtime cannot
/// recover from (its invariants would break if it carried on).
pub(crate) fn fatal(why: &str) -> ! {
    eprintln!("fatal error: gort: {why}");
    std::process::abort();
}

/// Reports a panic raised by user code the runtime ran outside any goroutine's closure (a
/// destructor, a timer action). The scheduler carries on.
pub(crate) fn report_runtime_context_panic(what: &str, payload: &(dyn std::any::Any + Send)) {
    let msg = crate::goroutine::panic_message(payload);
    eprintln!("gort: panic while {what}: {msg}");
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size(" 1M "), Some(1 << 20));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }
}
