//! The atomics the chan crate's protocols are written against: std's normally, loom's under
//! `--cfg loom`, so the same code is model-checked (`RUSTFLAGS="--cfg loom" cargo test -p
//! gort-chan --lib --release loom`).
#![allow(unused_imports)] // each protocol uses some of them

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize};

pub(crate) use std::sync::atomic::Ordering;
