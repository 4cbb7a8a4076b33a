//! gort's channels, `select!` and sync primitives, built on `sched`'s park/ready.
//!
//! Empty until the channels issue lands; see `docs/ARCHITECTURE.md` for the layering.
#![deny(unsafe_op_in_unsafe_fn)]
