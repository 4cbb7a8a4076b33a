//! Go's `sync` package on park/unpark: [`Mutex`], [`RwMutex`], [`WaitGroup`], [`Cond`],
//! [`Once`] / [`OnceValue`], [`Pool`], a counting [`Semaphore`], and [`Locker`], the trait
//! of "a lock" that a [`Cond`] can hold.
//!
//! Every blocking operation parks ([`sched::park`]): a goroutine that waits gives its thread
//! to other goroutines, a plain OS thread that waits blocks itself. So each type works between
//! goroutines, between goroutines and threads, and between threads. Nothing here spins for
//! long: a mutex spins a few hundred cycles at most, and only on more than one processor, as
//! Go's `sync_runtime_canSpin`.
//!
//! # Layout
//!
//! | file            | job                                                                  |
//! |-----------------|----------------------------------------------------------------------|
//! | `shim.rs`       | the internal queue lock and park/unpark, switched to loom's under `--cfg loom` |
//! | `waiter.rs`     | one blocked goroutine or thread: a list node on its stack (unparker, "woken" flag), its drop guard, and when a wait gives up (`GiveUp`) |
//! | `sema.rs`       | a per-object semaphore with a FIFO queue (Go's `sema.go`, per object) |
//! | `mutex.rs`      | [`Mutex`]: Go's state word (locked, woken, starving, waiters) on a `Sema` |
//! | `mutex_loom_models.rs` | its loom models (a child module of `mutex.rs`)          |
//! | `rwmutex.rs`    | [`RwMutex`]: Go's reader count / reader wait on two `Sema`s + a mutex |
//! | `waitgroup.rs`  | [`WaitGroup`]: counter and waiter count in one word, a `Sema` (loom model) |
//! | `locker.rs`     | [`Locker`]: one trait for a lock (a guard that unlocks on drop), for `Mutex`, `RwMutex` and its read side ([`ReadLocker`]) |
//! | `cond.rs`       | [`Cond`]: a FIFO list of waiters; with its own [`Locker`], waits through a [`CondGuard`] |
//! | `once.rs`       | [`Once`], [`OnceValue`]: a done flag over a [`Mutex`]                 |
//! | `pool.rs`       | [`Pool`]: per-processor caches, and a `new` function for misses       |
//! | `semaphore.rs`  | [`Semaphore`]: permits and a "queued" bit in one word, FIFO waiters (loom model) |
//!
//! # Rules every file follows
//!
//! - A waiter publishes itself (a `Waiter` in a queue, under that queue's
//!   internal lock) before it re-checks the condition it waits for, and loops on its own
//!   "woken" flag around `park` (park may return because of an old token).
//! - Queues are the crate's intrusive lists (`crate::list`): a waiter's node lives in its own
//!   stack frame, and any node leaves in O(1). A waker pops a node and wakes it under the queue
//!   lock (`Waiter::wake_locked`), and unparks after releasing it.
//! - Right after queueing, a waiter makes a drop guard (`waiter::Queued`) that takes it out of
//!   the queue if it leaves unwoken by unwinding (a panic inside the scheduler's park), so no
//!   queue keeps a waiter that is gone; a `Cond` signal or `Semaphore` permits handed to a
//!   waiter as it unwinds are passed on.
//! - A wait that gives up (a deadline or a `stop` check: the `_timeout`, `_deadline` and
//!   `_until` forms of [`Semaphore::acquire_many`] and [`Mutex::lock`]) leaves its queue
//!   itself, under the queue lock, in O(1). If a waker popped it first, it passes on what it
//!   was handed (permits; the mutex or the wake-up to compete for it), so giving up never
//!   keeps or loses anything.
//! - Internal locks (`shim::Lock`) guard only queue manipulation: no park, no unpark, no user
//!   code while one is held. Wakers collect the waiters to wake, release the lock, then unpark.
//! - Lock order: no two internal locks are ever held at once. (A user's [`Mutex`] may be held
//!   while an internal lock is taken, as in [`Cond::wait`]; never the other way round.)
//!
//! # What blocks what
//!
//! | operation                                   | goroutine caller         | plain-thread caller |
//! |---------------------------------------------|--------------------------|---------------------|
//! | waiting in any type here (lock, wait, acquire) | parks: its thread runs other goroutines | parks the thread |
//! | an internal queue lock (`shim::Lock`)        | holds the thread for a few instructions (never across a park) | same |
//! | `Mutex` spinning (`maxprocs` > 1 and > 1 CPU) | at most 4 × 30 `spin_loop` hints per slow path | same |
//!
//! # Poisoning
//!
//! None, as in Go. A panic while a guard is held unlocks on unwind (the guard's `Drop`); the
//! data stays as the panicking code left it. Code that needs to know must track it itself.
//! A panic from inside a blocking wait itself (the scheduler's park failing) leaves no waiter
//! queued, but a `Mutex`, `RwMutex` or `WaitGroup` may still count the waiter that left: treat
//! that primitive as broken.
//!
//! ```
//! use chan::sync::{Mutex, WaitGroup};
//! use std::sync::Arc;
//!
//! let total = Arc::new(Mutex::new(0u64));
//! let wg = WaitGroup::new();
//! for i in 1..=10u64 {
//!     let (total, wg) = (total.clone(), wg.clone());
//!     wg.add(1);
//!     sched::spawn(move || {
//!         *total.lock() += i;
//!         wg.done();
//!     });
//! }
//! wg.wait();
//! assert_eq!(*total.lock(), 55);
//! ```

mod cond;
mod locker;
#[cfg(all(test, loom))]
mod loom_cancel;
mod mutex;
mod once;
mod pool;
mod rwmutex;
mod sema;
mod semaphore;
mod shim;
mod waiter;
mod waitgroup;

pub use cond::{Cond, CondGuard};
pub use locker::{Locker, ReadLocker};
pub use mutex::{Mutex, MutexGuard};
pub use once::{Once, OnceValue};
pub use pool::Pool;
pub use rwmutex::{RwMutex, RwMutexReadGuard, RwMutexWriteGuard};
pub use semaphore::Semaphore;
pub use waitgroup::WaitGroup;
