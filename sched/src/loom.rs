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
        compiler_fence, AtomicBool, AtomicI32, AtomicIsize, AtomicPtr, AtomicU64, AtomicU8,
        AtomicUsize,
    };
    pub(crate) use std::sync::{Condvar, Mutex, MutexGuard, Once, OnceLock};
}

/// Locks `m`, ignoring poison: the scheduler's critical sections run no user code, so a
/// panic inside one is a runtime bug that aborts before anyone could see the state.
///
/// While the guard lives, this thread counts as inside the runtime (`preempt.rs`): a signal
/// preemption never stops a thread that holds, or waits for, one of the scheduler's locks,
/// which sysmon and every other M may need to make progress.
pub(crate) fn lock<T>(m: &Mutex<T>) -> Locked<'_, T> {
    crate::preempt::runtime_lock_enter();
    Locked(Some(m.lock().unwrap_or_else(|e| e.into_inner())))
}

/// A scheduler lock held ([`lock`]): the mutex guard, and this thread's count of held locks.
pub(crate) struct Locked<'a, T>(Option<MutexGuard<'a, T>>);

impl<'a, T> Locked<'a, T> {
    fn guard(self) -> MutexGuard<'a, T> {
        let mut this = std::mem::ManuallyDrop::new(self);
        this.0.take().expect("a held lock has its guard")
    }

    /// Waits on `cv`, releasing the lock meanwhile (the thread still counts as in the runtime).
    pub(crate) fn wait(self, cv: &Condvar) -> Locked<'a, T> {
        let g = self.guard();
        Locked(Some(cv.wait(g).unwrap_or_else(|e| e.into_inner())))
    }

    /// Like [`wait`](Self::wait), for at most `d`.
    pub(crate) fn wait_timeout(self, cv: &Condvar, d: std::time::Duration) -> Locked<'a, T> {
        let g = self.guard();
        Locked(Some(
            cv.wait_timeout(g, d).unwrap_or_else(|e| e.into_inner()).0,
        ))
    }
}

impl<T> std::ops::Deref for Locked<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().expect("a held lock has its guard")
    }
}

impl<T> std::ops::DerefMut for Locked<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().expect("a held lock has its guard")
    }
}

impl<T> Drop for Locked<'_, T> {
    fn drop(&mut self) {
        drop(self.0.take());
        crate::preempt::runtime_lock_exit();
    }
}

/// Locks a std `Mutex` (one in a `static`: [`std_only`]) the same way as [`lock`].
pub(crate) fn lock_std<T>(m: &std_only::Mutex<T>) -> StdLocked<'_, T> {
    crate::preempt::runtime_lock_enter();
    StdLocked(m.lock().unwrap_or_else(|e| e.into_inner()))
}

/// A std scheduler lock held ([`lock_std`]).
pub(crate) struct StdLocked<'a, T>(std_only::MutexGuard<'a, T>);

impl<T> std::ops::Deref for StdLocked<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for StdLocked<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> Drop for StdLocked<'_, T> {
    fn drop(&mut self) {
        crate::preempt::runtime_lock_exit();
    }
}

/// A loom model's objects, leaked instead of dropped if its thread unwinds: loom fails a model
/// that deadlocks by panicking in the blocked thread, and dropping a loom `Arc` during that
/// unwinding would abort the whole test binary instead of failing the one test. Used by the
/// models in `scheduler/watcher.rs` and `scheduler/retake_loom_models.rs`.
#[cfg(all(test, loom))]
pub(crate) struct Model<T>(pub(crate) Option<T>);

#[cfg(all(test, loom))]
impl<T> Model<T> {
    pub(crate) fn new(t: T) -> Model<T> {
        Model(Some(t))
    }
}

#[cfg(all(test, loom))]
impl<T> std::ops::Deref for Model<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().expect("taken only in drop")
    }
}

#[cfg(all(test, loom))]
impl<T> Drop for Model<T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::mem::forget(self.0.take());
        }
    }
}

/// `loom::model` with at most `preemptions` preemptions per execution, unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise: for models that run for many minutes unbounded (as
/// `chan`'s `Mutex` models do).
#[cfg(all(test, loom))]
pub(crate) fn model_bounded(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    builder.check(f);
}
