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

/// Atomics with `const` constructors, for the `sync` types that can live in a `static`
/// (`Mutex`, `RwMutex`, `Once`). std's normally; under loom (whose `new` is not `const`) a
/// loom atomic made on first use, from the initial value kept until then. Models create their
/// objects inside `loom::model`, so that first use falls in the model's execution.
#[cfg(not(loom))]
pub(crate) mod lazy {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32};
}

#[cfg(loom)]
pub(crate) mod lazy {
    use super::Ordering;
    use std::sync::OnceLock;

    macro_rules! lazy_atomic {
        ($name:ident, $loom:ty, $v:ty $(, $arith:ident)*) => {
            pub(crate) struct $name {
                init: $v,
                cell: OnceLock<$loom>,
            }

            #[allow(dead_code)] // each type uses some of them
            impl $name {
                pub(crate) const fn new(init: $v) -> $name {
                    $name {
                        init,
                        cell: OnceLock::new(),
                    }
                }

                fn get(&self) -> &$loom {
                    self.cell.get_or_init(|| <$loom>::new(self.init))
                }

                pub(crate) fn load(&self, o: Ordering) -> $v {
                    self.get().load(o)
                }

                pub(crate) fn store(&self, v: $v, o: Ordering) {
                    self.get().store(v, o)
                }

                pub(crate) fn compare_exchange(
                    &self,
                    current: $v,
                    new: $v,
                    success: Ordering,
                    failure: Ordering,
                ) -> Result<$v, $v> {
                    self.get().compare_exchange(current, new, success, failure)
                }

                pub(crate) fn compare_exchange_weak(
                    &self,
                    current: $v,
                    new: $v,
                    success: Ordering,
                    failure: Ordering,
                ) -> Result<$v, $v> {
                    self.get()
                        .compare_exchange_weak(current, new, success, failure)
                }

                $(
                    pub(crate) fn $arith(&self, v: $v, o: Ordering) -> $v {
                        self.get().$arith(v, o)
                    }
                )*
            }
        };
    }

    lazy_atomic!(AtomicBool, loom::sync::atomic::AtomicBool, bool);
    lazy_atomic!(
        AtomicI32,
        loom::sync::atomic::AtomicI32,
        i32,
        fetch_add,
        fetch_sub
    );
    lazy_atomic!(
        AtomicU32,
        loom::sync::atomic::AtomicU32,
        u32,
        fetch_add,
        fetch_sub
    );
}

/// `loom::model` with at most `preemptions` preemptions per execution, unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise: for models that run for minutes unbounded (as
/// `sched`'s `crate::loom::model_bounded`).
#[cfg(all(test, loom))]
pub(crate) fn model_bounded(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    builder.check(f);
}
