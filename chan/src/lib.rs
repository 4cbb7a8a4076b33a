//! gort's channels, `select!` and sync primitives, built on `sched`'s park/unpark.
//!
//! Everything here blocks by parking: a goroutine waiting on a channel or a mutex gives its
//! thread to other goroutines; a plain OS thread waiting blocks itself. So these types work
//! between goroutines, between a goroutine and a thread, and between threads.
#![deny(unsafe_op_in_unsafe_fn)]

mod channel;
mod error;
mod list;
mod loom;
mod macros;
mod select;
mod shim;
pub mod sync;
mod waiter;

/// The integration tests' harness (maxprocs 1/2/4, bounded), for the unit tests that need the
/// crate's internals.
#[cfg(all(test, not(loom)))]
#[path = "../tests/common/mod.rs"]
mod test_harness;
#[cfg(all(test, not(loom)))]
mod unwind_tests;

pub use channel::{chan, IntoIter, Iter, Receiver, Sender};
pub use error::{
    CloseError, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
pub use select::{Select, Selected};

/// Items the `select!` macro expands to. Not part of the API.
#[doc(hidden)]
pub mod internal {
    pub use crate::macros::{recv, send, AsReceiver, AsSender};
    pub use crate::select::{block_forever, run_select, Case, RecvCase, SendCase};
    pub use crate::shim::{RawLock, Unparker};
    pub use crate::waiter::Waiter;
}
