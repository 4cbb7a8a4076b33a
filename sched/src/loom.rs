//! The atomics the park handshake is written against: std's normally, loom's under
//! `--cfg loom`, so the same code is model-checked (`RUSTFLAGS="--cfg loom" cargo test -p
//! gort-sched --lib --release loom`).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicU32;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::AtomicU32;

pub(crate) use std::sync::atomic::Ordering;
