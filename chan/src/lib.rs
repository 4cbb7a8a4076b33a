//! gort's channels, `select!` and sync primitives, built on `sched`'s park/unpark.
//!
//! Everything here blocks by parking: a goroutine waiting on a channel or a mutex gives its
//! thread to other goroutines; a plain OS thread waiting blocks itself. So these types work
//! between goroutines, between a goroutine and a thread, and between threads.
#![deny(unsafe_op_in_unsafe_fn)]

mod loom;
pub mod sync;
