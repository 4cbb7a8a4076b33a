//! gort: Go's runtime as a Rust library.
#![deny(unsafe_op_in_unsafe_fn)]
pub use sched::*;
