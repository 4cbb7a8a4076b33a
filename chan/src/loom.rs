//! The atomics and cells the chan crate's protocols are written against: std's normally,
//! loom's under `--cfg loom`, so the same code is model-checked (`RUSTFLAGS="--cfg loom" cargo
//! test -p gort-chan --lib --release loom`).
#![allow(unused_imports)] // each protocol uses some of them

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize};

pub(crate) use std::sync::atomic::Ordering;

/// A cell whose accesses loom checks (two threads touching it without a happens-before edge
/// is a reported race): loom's own under `--cfg loom`, a plain `UnsafeCell` otherwise, with
/// loom's `with`/`with_mut` interface in both.
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> UnsafeCell<T> {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Reads through a raw pointer; the caller's `unsafe` block states why no one writes
    /// meanwhile.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Writes through a raw pointer; the caller's `unsafe` block states why the access is
    /// exclusive.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
