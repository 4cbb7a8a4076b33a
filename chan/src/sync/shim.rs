//! What the sync primitives take from outside, switched for loom under `--cfg loom`: the
//! internal lock that guards a waiter queue or a `Pool` shard ([`Lock`]), and parking, which
//! is the crate's (`crate::shim`, shared with the channels).
//!
//! Normally these are std's `Mutex` and `sched`'s park/unpark. Under loom they are loom's
//! `Mutex` and the crate's loom parker, so a model explores every interleaving of a
//! counter-and-queue handshake and reports a lost wake-up as a deadlock (every loom thread
//! parked). Atomics come from `crate::loom` (`crate::loom::lazy` for the `const` ones) as
//! everywhere in the crate: no `std::sync::atomic` in `sync/`.
//!
//! Invariant: a `Lock` is held only around queue manipulation; nobody parks, unparks or runs
//! user code while holding one (see `mod.rs`).

pub(crate) use crate::shim::{park_for, park_timeout_for, unparker, Unparker};
pub(crate) use imp::{Lock, LockGuard};

#[cfg(not(loom))]
mod imp {
    use std::sync::{PoisonError, TryLockError};

    pub(crate) type LockGuard<'a, T> = std::sync::MutexGuard<'a, T>;

    /// The internal lock of a waiter queue (or a `Pool` shard). Never poisoned in practice
    /// (nothing that can panic runs under it); a poisoned one is used as is.
    pub(crate) struct Lock<T>(std::sync::Mutex<T>);

    impl<T> Lock<T> {
        pub(crate) const fn new(value: T) -> Lock<T> {
            Lock(std::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> LockGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// The lock if it is free now.
        pub(crate) fn try_lock(&self) -> Option<LockGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            }
        }
    }
}

#[cfg(loom)]
mod imp {
    use std::sync::OnceLock;

    pub(crate) type LockGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    /// loom's `Mutex::new` is not `const`, and the types that embed a `Lock` have `const`
    /// constructors; so the loom mutex is created on first use, from `T::default()` (every
    /// queue starts empty, which is its default).
    pub(crate) struct Lock<T>(OnceLock<loom::sync::Mutex<T>>);

    impl<T: Default> Lock<T> {
        pub(crate) const fn new(value: T) -> Lock<T> {
            // An empty queue owns no memory; forgetting it leaks nothing.
            std::mem::forget(value);
            Lock(OnceLock::new())
        }

        fn mutex(&self) -> &loom::sync::Mutex<T> {
            self.0.get_or_init(|| loom::sync::Mutex::new(T::default()))
        }

        pub(crate) fn lock(&self) -> LockGuard<'_, T> {
            self.mutex().lock().unwrap()
        }

        pub(crate) fn try_lock(&self) -> Option<LockGuard<'_, T>> {
            self.mutex().try_lock().ok()
        }
    }
}
