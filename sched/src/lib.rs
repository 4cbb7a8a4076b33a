//! `sched`: gort's scheduler, the bottom layer of the runtime.
//!
//! Goroutines (G) are stackful coroutines (corosensei) multiplexed onto OS threads (M) through
//! logical processors (P), as in Go's runtime (`src/runtime/proc.go`). This crate owns:
//!
//! - goroutines and their stacks (`goroutine.rs`, `stack.rs`, `signal.rs` for overflow reports);
//! - Ps with their local run queues and `runnext`, the global queue, work stealing and the
//!   parking of idle Ms (`processor.rs`, `scheduler/`, `machine.rs`);
//! - the park/unpark primitive everything blocking is built on ([`park`], [`Unparker`]);
//! - joining ([`JoinHandle`]), goroutine-local storage ([`local!`]), deadlock detection.
//!
//! Users depend on the `gort` crate, which re-exports what is public here. `docs/ARCHITECTURE.md`
//! tells the life of a goroutine; `docs/SOUNDNESS.md` what gort does about thread-locals.
//!
//! ```
//! let h = sched::spawn(|| {
//!     let inner = sched::spawn(|| 20);
//!     inner.join().unwrap() + 22
//! });
//! assert_eq!(h.join().unwrap(), 42);
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

#[macro_use]
mod trace;

mod blocking;
mod cellcache;
mod chunked;
mod compact;
mod config;
mod deadlock;
pub mod debug;
mod global_queue;
mod goroutine;
mod join;
mod local;
mod loom;
mod machine;
mod park;
mod poller;
mod preempt;
mod processor;
mod ring;
mod run_queue;
mod runnext;
mod scavenger;
mod scheduler;
mod signal;
mod spawn;
mod stack;
mod stats;
mod sysmon;
mod timer;

pub use blocking::{
    blocking, blocking_pool_busy, blocking_pool_threads, max_blocking_threads,
    set_blocking_keepalive, set_max_blocking_threads, BlockingError, DEFAULT_MAX_BLOCKING_THREADS,
};
pub use chunked::ChunkedDeque;
pub use compact::{compact_parked_stacks, lend_stack, stack_compaction, StackLent};
pub use config::{
    enable_migration, enable_stack_compaction, set_unjoined_panic_policy, RuntimeStarted,
    UnjoinedPanic, DEFAULT_STACK_SIZE,
};
pub use goroutine::{panic_message, Panic};
pub use join::JoinHandle;
pub use local::LocalKey;
pub use machine::{current_id, current_machine_id, current_name, current_processor_id, yield_now};
pub use park::{
    park, park_for, park_timeout, park_timeout_for, park_until_for, unparker, Unparker,
};
pub use poller::{install_poller, Poller};
pub use preempt::preempt_point;
pub use scheduler::MAX_PROCS;
pub use spawn::{maxprocs, num_goroutine, run, set_maxprocs, spawn, Builder, PanicPayload};
pub use stack::StackError;
pub use stats::{stats, Stats};
pub use timer::timer_entries;
pub use timer::{at, Timer};
