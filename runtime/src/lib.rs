//! gort: Go's runtime as a Rust library.
//!
//! Goroutines are stackful coroutines, cheap enough to start a million of, multiplexed onto
//! `GORT_MAXPROCS` OS threads by a work-stealing M:N scheduler, as in Go. Code that blocks (a
//! [`JoinHandle::join`], a channel operation, a socket read, a [`sync`] lock, a
//! [`time::sleep`], a [`park`]) parks the goroutine, not the thread: no `async`, no colouring.
//! Calls that must block a thread (files: [`fs`]; child processes: [`process`]; your own) go
//! through [`blocking`], which parks the goroutine while a pool thread makes the call.
//!
//! ```
//! let total = gort::run(|| {
//!     let workers: Vec<_> = (1..=100u64).map(|i| gort::go!(move || i * i)).collect();
//!     workers.into_iter().map(|w| w.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, 338_350);
//! ```
//!
//! This crate is the only public face of the runtime; it re-exports the scheduler (`sched`).
//! A goroutine stays for life on the thread that first runs it, so thread-locals and other
//! thread-bound values behave across a park as they do in a thread (`docs/SOUNDNESS.md`);
//! they are shared with the other goroutines of that thread: use [`local!`] for per-goroutine
//! state. Go's migration of started goroutines is an `unsafe` opt-in, [`enable_migration`];
//! so is giving back the stack pages of goroutines parked for a while,
//! [`enable_stack_compaction`].
#![deny(unsafe_op_in_unsafe_fn)]

pub use sched::{
    current_id, current_machine_id, current_name, current_processor_id, enable_migration,
    enable_stack_compaction, lend_stack, local, maxprocs, num_goroutine, park, park_timeout,
    preempt_point, run, set_maxprocs, set_unjoined_panic_policy, spawn, stats, unparker, yield_now,
    Builder, JoinHandle, LocalKey, Panic, RuntimeStarted, StackError, StackLent, Stats,
    UnjoinedPanic, Unparker, DEFAULT_STACK_SIZE, MAX_PROCS,
};

#[doc(hidden)]
pub use sched::compact_parked_stacks;

pub use sched::{
    blocking, max_blocking_threads, set_max_blocking_threads, BlockingError,
    DEFAULT_MAX_BLOCKING_THREADS,
};

pub use chan::{
    chan, select, CloseError, IntoIter, Iter, Receiver, RecvError, RecvTimeoutError, Select,
    Selected, SendError, SendTimeoutError, Sender, TryRecvError, TrySendError,
};

pub mod context;
/// Seeing inside the runtime: goroutine dumps ([`debug::dump`], also on SIGQUIT), snapshots
/// ([`debug::goroutines`]), leak checks for tests ([`debug::LeakCheck`],
/// [`debug::verify_none`]) and the execution trace ([`debug::trace`], `GORT_TRACE`);
/// `docs/DEBUGGING.md` shows each, with `GORT_DEBUG=schedtrace`.
pub mod debug {
    pub use sched::debug::*;
}
pub mod errgroup;
pub mod fs;
pub mod net;
pub mod process;
pub mod rate;
mod scope;
pub mod time;

pub use scope::{scope, Scope, ScopedJoinHandle};

/// Go's `sync` package: mutexes, wait groups, conditions, once, pools and semaphores, all
/// parking the goroutine (not the thread) while they wait.
pub mod sync {
    pub use chan::sync::*;
}

/// The calling goroutine, as `std::thread::current` is the calling thread.
///
/// ```
/// let me = gort::spawn(gort::current).join().unwrap().unwrap();
/// assert!(me.id() > 0);
/// assert!(gort::current().is_none()); // a plain thread is not a goroutine
/// ```
pub fn current() -> Option<Goroutine> {
    Some(Goroutine {
        id: current_id()?,
        name: current_name(),
    })
}

/// Identity of a goroutine: its id (unique for the process's life, like Go's goid) and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goroutine {
    id: u64,
    name: Option<String>,
}

impl Goroutine {
    /// The goroutine's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The goroutine's name, if it was given one with [`Builder::name`].
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// Starts a goroutine, as Go's `go` statement: `go!(move || work())` is [`spawn`]. Returns its
/// [`JoinHandle`]; dropping the handle lets the goroutine run on, detached, like Go's.
///
/// ```
/// let h = gort::go!(move || 2 + 2);
/// assert_eq!(h.join().unwrap(), 4);
/// ```
#[macro_export]
macro_rules! go {
    ($f:expr) => {
        $crate::spawn($f)
    };
}
