//! What channels take from outside, switched for loom under `--cfg loom`: the channel lock and
//! parking. Normally std's `Mutex` and `sched`'s park/unpark; under loom, loom's `Mutex` and
//! loom's thread park/unpark, so the loom models in `channel.rs` and `select.rs` explore every
//! interleaving of the channel protocols and report a lost wake-up as a deadlock.

pub(crate) use imp::{lock, park, park_timeout, unparker, Mutex, Unparker};

#[cfg(not(loom))]
mod imp {
    pub(crate) use sched::{park, park_timeout, unparker, Unparker};
    pub(crate) use std::sync::Mutex;

    /// Locks, ignoring poison: channel critical sections only move values and never panic
    /// halfway, so the state is consistent even if a holder panicked elsewhere.
    pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::Mutex;
    pub(crate) use loom::thread::park;

    /// Under loom a waiter is a loom thread.
    pub(crate) type Unparker = loom::thread::Thread;

    pub(crate) fn unparker() -> Unparker {
        loom::thread::current()
    }

    /// Timed waits are not modelled: the models use untimed operations only.
    pub(crate) fn park_timeout(_: std::time::Duration) -> bool {
        loom::thread::park();
        true
    }

    pub(crate) fn lock<T>(m: &Mutex<T>) -> loom::sync::MutexGuard<'_, T> {
        m.lock().unwrap()
    }
}
