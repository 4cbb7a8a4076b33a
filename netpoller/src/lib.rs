//! gort's netpoller: implements `sched::Poller` on mio.
//!
//! Empty until the netpoller issue lands; see `docs/ARCHITECTURE.md` for the layering.
#![deny(unsafe_op_in_unsafe_fn)]
