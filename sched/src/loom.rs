//! The synchronisation types the scheduler's protocols are written against: std's normally,
//! loom's under `--cfg loom`, so the same code is model-checked (`RUSTFLAGS="--cfg loom" cargo
//! test -p gort-sched --lib --release loom`; tokio's `crate::loom` is the model).
//!
//! Types used in `static` initialisers stay std's (loom's constructors are not `const`); each
//! such use says why where it is declared.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

pub(crate) use std::sync::atomic::Ordering;

/// Locks `m`, ignoring poison: the scheduler's critical sections run no user code, so a
/// panic inside one is a runtime bug that aborts before anyone could see the state.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
