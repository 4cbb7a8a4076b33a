//! The blocking pool: `blocking(f)` runs `f` on a pool thread while the calling goroutine
//! parks, so a call that blocks its thread (a file read, `getaddrinfo`, `waitpid`,
//! `std::thread::sleep`, a std `Mutex`, a long computation) does not hold up the goroutines homed
//! to the caller's M. It serves the purpose of Go's `entersyscall`/`exitsyscall` (proc.go), for
//! calls the program names, by the means of tokio's `spawn_blocking` (a thread pool); it is not
//! sysmon's hand-off of a P stuck in a call gort was not told about. `docs/BLOCKING.md` says
//! when to use it.
//!
//! # The API, and why
//!
//! `blocking(f) -> Result<R, BlockingError>`. `f` may borrow from the caller (`FnOnce() -> R +
//! Send`, `R: Send`, no `'static`), as with `std::thread::scope`: the call returns only after
//! `f` has, so the borrow outlives it (the argument is the SAFETY comment in [`blocking`]). A
//! panic in `f` is resumed in the caller, as a scoped thread's join would. Past the cap the call
//! fails at once with [`BlockingError::PoolFull`] instead of waiting for a thread (tokio queues
//! its jobs, which turns a leak of blocked jobs into a silent hang; Go's thread limit kills the
//! process): the error names the cap and how to raise it, and converts to `io::Error` so `?`
//! works in I/O code. On a plain thread (not a goroutine) `f` runs inline: parking would block
//! that thread anyway, and a hop would only add latency.
//!
//! # The pool
//!
//! Threads start on demand: a job with no idle thread to take it starts one, up to the cap
//! (`GORT_MAX_BLOCKING_THREADS`, [`set_max_blocking_threads`]; default 10,000, Go's default
//! limit on threads). A thread with no job for the keep-alive exits: 10 s, tokio's figure. That
//! is long enough that a program doing blocking calls every few seconds (a log writer, a
//! periodic `stat`) keeps its threads instead of paying a thread start (tens of µs and a fresh
//! stack) per call, and short enough that a burst of hundreds of threads gives back their stacks
//! soon after. Ms never exit; pool threads do because a burst here can be far larger than
//! `GORT_MAXPROCS`.
//!
//! How jobs are handed to threads, and why none is lost when a thread's keep-alive ends as a
//! job arrives: `blocking/pool.rs`.
//!
//! # What the rest of the runtime sees
//!
//! `busy` counts jobs from submission until their caller has been woken; while it is not zero,
//! the deadlock check stays silent (`deadlock.rs`): a goroutine waiting here will be woken by a
//! pool thread. The thread that brings `busy` to zero runs the check itself afterwards
//! (`check_deadlock_now`, under the idle lock): the goroutine it woke may have run, blocked
//! for good, and let the last M go idle before the decrement, and that M's check, silenced by
//! `busy`, will not run again. Both checks take the idle lock and the decrement comes before
//! the pool thread's, so one of them sees the final state. Idle pool threads count as threads
//! gort knows about there, since they wake nobody. [`blocking_pool_threads`] and
//! [`blocking_pool_busy`] read the two counters.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::loom::std_only::{self, OnceLock};
use crate::loom::{AtomicBool, MutexGuard, Ordering};

mod pool;

use pool::{Pool, State, Wait};

/// Default cap on pool threads: Go's default limit on threads (`debug.SetMaxThreads`).
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 10_000;

/// How long a pool thread waits for a job before it exits (module docs: why 10 s).
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(10);

/// The cap; 0 until first read or set.
static MAX_THREADS: std_only::AtomicUsize = std_only::AtomicUsize::new(0);

/// The keep-alive in ms; `u64::MAX` until first read or set.
static KEEPALIVE_MS: std_only::AtomicU64 = std_only::AtomicU64::new(u64::MAX);

/// The process's pool, made on first use.
static POOL: OnceLock<Pool<Job>> = OnceLock::new();

/// Why [`blocking`] could not run its closure. The closure was not run, and was dropped.
#[derive(Debug)]
#[non_exhaustive]
pub enum BlockingError {
    /// Every one of the pool's `cap` threads was busy.
    PoolFull {
        /// The cap in force ([`max_blocking_threads`]).
        cap: usize,
    },
    /// The pool needed a new thread and the system refused it.
    Spawn(std::io::Error),
}

impl std::fmt::Display for BlockingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockingError::PoolFull { cap } => write!(
                f,
                "gort::blocking: all {cap} blocking-pool threads are busy; raise the cap with \
                 GORT_MAX_BLOCKING_THREADS or gort::set_max_blocking_threads"
            ),
            BlockingError::Spawn(e) => {
                write!(
                    f,
                    "gort::blocking: cannot start a blocking-pool thread: {e}"
                )
            }
        }
    }
}

impl std::error::Error for BlockingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BlockingError::Spawn(e) => Some(e),
            BlockingError::PoolFull { .. } => None,
        }
    }
}

impl From<BlockingError> for std::io::Error {
    /// `PoolFull` becomes an error of kind `ResourceBusy` (`Spawn` keeps the system's error
    /// kind), with [`BlockingError`]'s message and the error itself as the inner error.
    fn from(e: BlockingError) -> std::io::Error {
        let kind = match &e {
            BlockingError::PoolFull { .. } => std::io::ErrorKind::ResourceBusy,
            BlockingError::Spawn(io) => io.kind(),
        };
        std::io::Error::new(kind, e)
    }
}

/// Runs `f` on a thread of the blocking pool and returns its result, parking the calling
/// goroutine meanwhile (its thread runs other goroutines). On a plain thread, runs `f` inline.
///
/// `f` may borrow from the caller. A panic in `f` is resumed here. Fails, without running `f`,
/// if every pool thread is busy and the pool is at its cap ([`BlockingError::PoolFull`]), or if
/// a thread could not be started. `f` runs on another OS thread: it sees that thread's
/// thread-locals, and gort calls in it (a channel operation, `park`) block that thread.
///
/// ```
/// let names = vec!["a", "b"];
/// let n = sched::spawn(move || {
///     // Borrows `names`; the goroutine's thread is free while the closure sleeps.
///     sched::blocking(|| {
///         std::thread::sleep(std::time::Duration::from_millis(10));
///         names.len()
///     })
/// });
/// assert_eq!(n.join().unwrap().unwrap(), 2);
/// ```
pub fn blocking<F, R>(f: F) -> Result<R, BlockingError>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    if crate::machine::current_header().is_null() {
        return Ok(f());
    }
    let slot = Slot {
        f: UnsafeCell::new(Some(f)),
        out: UnsafeCell::new(None),
        done: AtomicBool::new(false),
        waker: crate::park::unparker(),
    };
    // SAFETY: the job erases the slot's lifetime, and with it the borrows `f` holds, to send it
    // to a pool thread. That is sound because this frame outlives the job's every use of them:
    // - the pool thread touches the slot only between taking the job and setting `done`
    //   (`run_slot`, `Finish::wake`), and drops `f` (its borrows' last use) before that;
    // - this goroutine does not leave `wait_done` until it has read `done` (acquire), and its
    //   stack is not freed or reused while it waits: a parked goroutine keeps its stack, is
    //   never freed under a waiter (it leaks if nobody wakes it) and cannot be cancelled;
    // - if anything unwinds out of the wait before `done`, `wait_done` aborts the process
    //   rather than let this frame go; a job that is refused (`start` fails) was never run and
    //   is dropped before it returns.
    // `F: Send` and `R: Send` make running `f` and returning `R` on another thread sound, as for
    // `std::thread::scope`.
    let job = Job {
        slot: (&slot as *const Slot<F, R>).cast(),
        run: run_slot::<F, R>,
    };
    trace_record!(BlockingEnter, crate::machine::current_id().unwrap_or(0), 0);
    trace_event!(goid = crate::machine::current_id(), "blocking enter");
    pool().start(job)?;
    wait_done(&slot.done);
    trace_record!(BlockingExit, crate::machine::current_id().unwrap_or(0), 0);
    trace_event!(goid = crate::machine::current_id(), "blocking exit");
    // SAFETY: `done` was read true with acquire ordering: the pool thread wrote `out` before its
    // release store of `done` and touches the slot no more after it.
    match unsafe { (*slot.out.get()).take() } {
        Some(Ok(r)) => Ok(r),
        Some(Err(payload)) => resume_unwind(payload),
        None => crate::config::fatal("gort::blocking: a job completed without a result"),
    }
}

/// The cap on blocking-pool threads: `GORT_MAX_BLOCKING_THREADS` if set (a positive number),
/// else [`DEFAULT_MAX_BLOCKING_THREADS`], unless [`set_max_blocking_threads`] changed it.
///
/// ```
/// assert!(sched::max_blocking_threads() >= 1);
/// ```
pub fn max_blocking_threads() -> usize {
    match MAX_THREADS.load(Ordering::Relaxed) {
        0 => init_max_threads(),
        n => n,
    }
}

#[cold]
fn init_max_threads() -> usize {
    let n = env_number("GORT_MAX_BLOCKING_THREADS")
        .filter(|&n| n > 0)
        .map_or(DEFAULT_MAX_BLOCKING_THREADS, |n| n as usize);
    // Keeps a value set meanwhile by `set_max_blocking_threads`.
    match MAX_THREADS.compare_exchange(0, n, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => n,
        Err(set) => set,
    }
}

/// Sets the cap on blocking-pool threads (at least 1), before or after the runtime starts, and
/// returns the previous cap, as Go's `debug.SetMaxThreads`. Lowering it stops no thread: the
/// pool starts no new one until fewer than `n` are alive.
///
/// ```
/// let before = sched::set_max_blocking_threads(64);
/// assert_eq!(sched::max_blocking_threads(), 64);
/// sched::set_max_blocking_threads(before);
/// ```
pub fn set_max_blocking_threads(n: usize) -> usize {
    let before = max_blocking_threads();
    MAX_THREADS.store(n.max(1), Ordering::Relaxed);
    before
}

/// Sets how long an idle pool thread waits for a job before it exits (default 10 s; also
/// `GORT_BLOCKING_KEEPALIVE_MS`). Threads already waiting keep the keep-alive they started with.
/// For tests.
#[doc(hidden)]
pub fn set_blocking_keepalive(d: Duration) {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX - 1);
    KEEPALIVE_MS.store(ms, Ordering::Relaxed);
}

fn keepalive() -> Duration {
    let ms = match KEEPALIVE_MS.load(Ordering::Relaxed) {
        u64::MAX => {
            let ms = env_number("GORT_BLOCKING_KEEPALIVE_MS")
                .unwrap_or(DEFAULT_KEEPALIVE.as_millis() as u64);
            let _ = KEEPALIVE_MS.compare_exchange(
                u64::MAX,
                ms.min(u64::MAX - 1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            KEEPALIVE_MS.load(Ordering::Relaxed)
        }
        ms => ms,
    };
    Duration::from_millis(ms)
}

/// `name` parsed as a number; reports and ignores a value that is not one.
fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let n = v.trim().parse().ok();
    if n.is_none() {
        eprintln!("gort: ignoring {name}={v:?} (expected a number)");
    }
    n
}

/// Blocking-pool threads alive now (idle or running a job). A relaxed read, for statistics.
///
/// ```
/// let _threads = sched::blocking_pool_threads();
/// ```
pub fn blocking_pool_threads() -> usize {
    POOL.get()
        .map_or(0, |p| p.threads_mirror.load(Ordering::Relaxed))
}

/// Jobs submitted to the blocking pool and not finished. A relaxed read, for statistics.
///
/// ```
/// assert_eq!(sched::blocking_pool_busy(), 0);
/// ```
pub fn blocking_pool_busy() -> usize {
    POOL.get().map_or(0, |p| p.busy.load(Ordering::Relaxed))
}

/// For the deadlock check: true while a job is in flight (a goroutine waits for a pool thread
/// that will wake it). SeqCst, read under the idle lock (`deadlock.rs`).
pub(crate) fn jobs_in_flight() -> bool {
    POOL.get()
        .is_some_and(|p| p.busy.load(Ordering::SeqCst) > 0)
}

/// For the deadlock check: pool threads alive, which wake no goroutine unless a job is in
/// flight. A thread about to exit is no longer counted while the OS still lists it (a window of
/// microseconds in which a deadlock could go unreported; `docs/BLOCKING.md`).
pub(crate) fn known_threads() -> usize {
    POOL.get()
        .map_or(0, |p| p.threads_mirror.load(Ordering::SeqCst))
}

fn pool() -> &'static Pool<Job> {
    POOL.get_or_init(Pool::new)
}

/// Waits until `done`, parking. Anything unwinding out of here before `done` would free the
/// caller's frame (the job's slot) under the pool thread: that aborts instead.
fn wait_done(done: &AtomicBool) {
    struct Armed;
    impl Drop for Armed {
        fn drop(&mut self) {
            crate::config::fatal("unwound out of gort::blocking while its closure still ran");
        }
    }
    let armed = Armed;
    while !done.load(Ordering::Acquire) {
        crate::park::park_for(crate::debug::WaitReason::Blocking, None);
    }
    std::mem::forget(armed);
}

/// A job's state, in the frame of the goroutine that called [`blocking`].
struct Slot<F, R> {
    /// Taken by the pool thread.
    f: UnsafeCell<Option<F>>,
    /// Written by the pool thread before `done`; read by the caller after.
    out: UnsafeCell<Option<std::thread::Result<R>>>,
    /// Set (release) by the pool thread as its last touch of the slot.
    done: AtomicBool,
    /// Wakes the caller.
    waker: crate::park::Unparker,
}

/// A job as the pool holds it: a type-erased pointer to a [`Slot`] and the function that runs
/// it.
struct Job {
    slot: *const (),
    run: unsafe fn(*const ()) -> Finish,
}

// SAFETY: a `Job` points to a `Slot<F, R>` with `F: Send` and `R: Send`, and only the pool
// thread that runs the job touches the slot's `f` and `out` until it sets `done` (`blocking`
// ensures the slot outlives that). The waker is `Send + Sync`.
unsafe impl Send for Job {}

impl Job {
    /// Runs the job; its caller is woken by [`Finish::wake`].
    fn run(self) -> Finish {
        // SAFETY: `run` was instantiated for the slot's own `F` and `R` (`blocking`), the slot
        // is alive until `done` is set (by `Finish::wake`), and a job runs once (the pool hands
        // it to one thread).
        unsafe { (self.run)(self.slot) }
    }
}

/// A job that has run: what is left is to tell its caller.
struct Finish {
    /// The slot's `done`, alive until set.
    done: *const AtomicBool,
    waker: crate::park::Unparker,
}

impl Finish {
    /// Sets `done` (the last touch of the slot: its caller may free it from then on) and wakes
    /// the caller.
    fn wake(self) {
        // SAFETY: the slot, and `done` in it, live until `done` is set: this store.
        unsafe { (*self.done).store(true, Ordering::Release) };
        self.waker.unpark();
    }
}

/// Runs the job in the [`Slot<F, R>`] at `slot`, storing its result.
///
/// # Safety
/// `slot` points to a live `Slot<F, R>` whose `f` is still there, and no other thread touches
/// `f` or `out` until `done` is set.
unsafe fn run_slot<F: FnOnce() -> R + Send, R: Send>(slot: *const ()) -> Finish {
    // SAFETY: the caller's contract: `slot` is a live `Slot<F, R>`.
    let slot = unsafe { &*slot.cast::<Slot<F, R>>() };
    // SAFETY: only this thread touches `f` and `out` until `done` (the caller's contract).
    let f = unsafe { (*slot.f.get()).take() };
    let out = catch_unwind(AssertUnwindSafe(|| f.map(|f| f())));
    let out = out.map(|r| r.expect("a job runs once"));
    // SAFETY: as above; the caller reads `out` only after seeing `done`.
    unsafe { *slot.out.get() = Some(out) };
    Finish {
        done: &slot.done,
        waker: slot.waker.clone(),
    }
}

impl Pool<Job> {
    /// Submits `job`: to a sleeping thread, or to a new thread (`busy` counts it either way).
    fn start(&'static self, job: Job) -> Result<(), BlockingError> {
        self.busy.fetch_add(1, Ordering::SeqCst);
        let cap = max_blocking_threads();
        let r = match self.submit(job, cap) {
            Ok(None) => Ok(()),
            Ok(Some(job)) => self.spawn_thread(job),
            Err(_) => Err(BlockingError::PoolFull { cap }),
        };
        if r.is_err() {
            self.busy.fetch_sub(1, Ordering::SeqCst);
        }
        r
    }

    /// Starts a pool thread whose first job is `job` (already counted in `threads`).
    fn spawn_thread(&'static self, job: Job) -> Result<(), BlockingError> {
        let started = std::thread::Builder::new()
            .name("gort-blocking".into())
            .spawn(move || {
                let mut keepalive = KeepAlive(Instant::now());
                self.work(job, Job::run, |f| self.finish(f), &mut keepalive)
            });
        started.map(drop).map_err(|e| {
            // The closure, and the job in it, were dropped unrun.
            self.spawn_failed();
            BlockingError::Spawn(e)
        })
    }

    /// Wakes a finished job's caller; the job no longer counts as in flight.
    fn finish(&self, f: Finish) {
        f.wake();
        if self.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            // The woken goroutine may have run and blocked for good, and the last M gone idle,
            // while `busy` still kept that M's deadlock check silent: check again (as a plain
            // thread does after parking). Under the idle lock, one of the two checks sees the
            // final state (module docs).
            crate::scheduler::check_deadlock_now();
        }
    }
}

/// The real wait: on the condvar, until the keep-alive since going idle is over.
struct KeepAlive(Instant);

impl Wait for KeepAlive {
    fn begin(&mut self) {
        self.0 = Instant::now() + keepalive();
    }

    fn wait<'a, J>(
        &mut self,
        pool: &'a Pool<J>,
        g: MutexGuard<'a, State<J>>,
    ) -> (MutexGuard<'a, State<J>>, bool) {
        let Some(left) = self.0.checked_duration_since(Instant::now()) else {
            return (g, true);
        };
        let g = match pool.cv.wait_timeout(g, left) {
            Ok((g, _)) => g,
            Err(poisoned) => poisoned.into_inner().0,
        };
        (g, Instant::now() >= self.0)
    }
}
