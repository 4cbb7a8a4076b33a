//! Starting goroutines: [`spawn`], [`Builder`], and [`run`] (the main goroutine).
//!
//! A spawn allocates the goroutine (two allocations: its cell and its join packet,
//! `goroutine.rs`) and queues it (`scheduler/submit.rs`); it takes no stack (that happens when it
//! first runs) and never blocks. The first spawn starts the runtime.

use crate::debug::Origin;
use crate::goroutine::{GRef, Panic};
use crate::join::JoinHandle;
use crate::scheduler;

/// Starts a goroutine running `f` and returns a handle to join it, like `std::thread::spawn`.
///
/// Callable from a goroutine or a plain thread (the runtime starts on first use). From a
/// goroutine, the new goroutine runs next on the caller's processor when the caller blocks, as
/// in Go, unless one spawned earlier already waits there; other processors may take it sooner.
///
/// ```
/// let handles: Vec<_> = (0..10u64).map(|i| sched::spawn(move || i * i)).collect();
/// let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, 285);
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f)
}

/// Goroutine configuration: name and stack size, like `std::thread::Builder`.
///
/// ```
/// let h = sched::Builder::new()
///     .name("parser")
///     .stack_size(1 << 20)
///     .spawn(|| sched::current_name())
///     .join()
///     .unwrap();
/// assert_eq!(h.as_deref(), Some("parser"));
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: usize,
}

impl Builder {
    /// A builder with no name and the default stack size (`GORT_STACK_SIZE`, 256 KiB).
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the goroutine (shown in panic, overflow and deadlock reports).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the usable stack size in bytes (rounded up to whole pages, at least 16 KiB). The
    /// stack cannot grow: a goroutine that needs more aborts the process with a message naming
    /// it (see `docs/ARCHITECTURE.md`). Virtual address space is reserved for the whole size;
    /// physical memory only for the pages the goroutine touches.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = crate::stack::round_stack_size(bytes);
        self
    }

    /// Starts the goroutine. If no stack can be had for it when it first runs (the kernel's
    /// mapping limit, or address space), it ends without running and `join` returns the
    /// [`StackError`](crate::StackError) as its panic payload.
    ///
    /// The caller's source location is recorded as the goroutine's spawn site (goroutine dumps:
    /// [`debug`](crate::debug)); wrappers that spawn for their caller should be
    /// `#[track_caller]` too.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let name = self.name.map(std::sync::Arc::new);
        let stack_size = self.stack_size;
        let origin = Origin::here(std::panic::Location::caller());
        let packet = scheduler::spawn(move |id, cells| {
            trace_record!(Create, id, origin.parent);
            GRef::new(cells, id, name, stack_size, origin, f)
        });
        JoinHandle::new(packet)
    }
}

/// Runs `f` as the main goroutine and returns its result; the calling thread blocks until it
/// ends. A panic in `f` is resumed in the caller.
///
/// If every goroutine and the caller end up blocked with nothing left that could wake them,
/// the process exits with `fatal error: all goroutines are asleep - deadlock!` (see
/// `deadlock.rs` for when gort can tell).
///
/// ```
/// let answer = sched::run(|| sched::spawn(|| 42).join().unwrap());
/// assert_eq!(answer, 42);
/// ```
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().name("main").spawn(f).join() {
        Ok(v) => v,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Live goroutines: spawned and not yet ended (Go's `runtime.NumGoroutine`).
///
/// ```
/// let before = sched::num_goroutine();
/// let h = sched::spawn(|| ());
/// h.join().unwrap();
/// assert!(sched::num_goroutine() <= before + 1);
/// ```
pub fn num_goroutine() -> usize {
    scheduler::num_goroutine()
}

/// Sets the number of logical processors (goroutines running in parallel) and returns the
/// previous value, like Go's `runtime.GOMAXPROCS`. Before the runtime starts this only records
/// the value. Clamped to `1..=MAX_PROCS`.
///
/// ```
/// let old = sched::set_maxprocs(2);
/// assert_eq!(sched::maxprocs(), 2);
/// sched::set_maxprocs(old);
/// ```
pub fn set_maxprocs(n: usize) -> usize {
    // One read-modify-write, not "started? then store": a runtime starting between the two
    // would read the old count and lose this call (config.rs, `MAXPROCS_BEFORE_START`).
    match crate::config::set_maxprocs_before_start(n.clamp(1, scheduler::MAX_PROCS)) {
        Some(old) => old,
        None => scheduler::set_maxprocs(n),
    }
}

/// The number of logical processors.
///
/// ```
/// assert!(sched::maxprocs() >= 1);
/// ```
pub fn maxprocs() -> usize {
    match crate::config::maxprocs_before_start() {
        Some(n) => n,
        None => scheduler::maxprocs(),
    }
}

/// Payload type of a goroutine that panicked, as [`JoinHandle::join`] returns it.
pub type PanicPayload = Panic;
