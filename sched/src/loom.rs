//! The synchronisation types the scheduler's protocols are written against: std's normally,
//! loom's under `--cfg loom`, so the same code is model-checked (`RUSTFLAGS="--cfg loom" cargo
//! test -p gort-sched --lib --release loom`; tokio's `crate::loom` is the model).
//!
//! Every atomic, `Mutex` and `Condvar` of the crate is named through this module. Those in a
//! value (a goroutine's header, a P, an M's slot, the idle set, a timer) are the switchable
//! types above `std_only`, so loom sees them. Those in a `static` cannot be loom's (their
//! constructors are not `const`) and come from [`std_only`], std's always: process-wide counters
//! and flags (the timer heap's `NEXT`/`LIVE`, the stack and cell pools, the deadlock counter,
//! the runtime's `OnceLock`) and the signal handler's state, which must stay plain std
//! atomics to be async-signal-safe. The protocols loom checks are written against the
//! switchable types; a protocol that rests on a static says so where the static is declared.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

pub(crate) use std::sync::atomic::Ordering;

/// std's types, for `static`s and for what loom has no model of (`OnceLock`, `Once`; module
/// docs): loom never sees these.
pub(crate) mod std_only {
    pub(crate) use std::sync::atomic::{
        compiler_fence, AtomicBool, AtomicIsize, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize,
    };
    pub(crate) use std::sync::{Mutex, MutexGuard, Once, OnceLock, PoisonError};
}

/// Locks `m`, ignoring poison: the scheduler's critical sections run no user code, so a
/// panic inside one is a runtime bug that aborts before anyone could see the state.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
