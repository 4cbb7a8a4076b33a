//! gort's netpoller: sockets that park goroutines, on mio (Go's `netpoll.go` and
//! `internal/poll`, read as the reference design).
//!
//! - [`NetPoller`] owns the process's `epoll` instance (through `mio::Poll`), a table of
//!   per-descriptor states (Go's `pollDesc`: per direction an edge count and the parked
//!   waiters, plus a closed flag), and implements [`sched::Poller`]: the scheduler calls
//!   `poll` when it runs out of work, and the goroutines whose sockets became ready are
//!   unparked from inside it.
//! - [`PollFd`] is one registered non-blocking socket: its `read_with`/`write_with` run a
//!   syscall and, on `WouldBlock`, park the goroutine until the poller reports readiness (or
//!   block a plain thread in `poll(2)`), with deadlines, timeouts and closing.
//! - [`global`] is the process-wide poller, installed into the scheduler on first use.
//!
//! This crate holds no scheduling policy, and knows nothing of channels; the `gort` crate
//! builds `gort::net` on [`PollFd`]. `docs/NETPOLLER.md` explains the design: the wait
//! protocol and why readiness that arrives between `WouldBlock` and the park is never lost,
//! who polls when, deadlines, closing, and what plain threads do.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::sync::Arc;
//!
//! let (a, b) = mio::net::UnixStream::pair().unwrap();
//! let b = Arc::new(netpoller::PollFd::new(b).unwrap());
//! let reader = {
//!     let b = b.clone();
//!     // A goroutine: parks on the netpoller until the scheduler's poll reports `b` readable.
//!     sched::spawn(move || {
//!         let mut buf = [0u8; 5];
//!         let n = b.read_with(|s| (&*s).read(&mut buf)).unwrap();
//!         buf[..n].to_vec()
//!     })
//! };
//! let a = netpoller::PollFd::new(a).unwrap();
//! a.write_with(|s| (&*s).write(b"hello")).unwrap();
//! assert_eq!(reader.join().unwrap(), b"hello");
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

mod deadline;
mod desc;
mod fd;
mod poller;
mod table;
mod thread;

use std::sync::{Once, OnceLock};

pub use desc::Direction;
pub use fd::{closed_error, timed_out_error, PollFd};
pub use poller::NetPoller;

/// The process's netpoller, created and installed into the scheduler
/// ([`sched::install_poller`]) on first use.
///
/// # Panics
/// If the poller cannot be created (the process is out of file descriptors for the epoll
/// instance and its waker), or if another [`sched::Poller`] was installed first (then no one
/// would ever poll this one, and every socket wait would hang).
///
/// ```
/// use sched::Poller;
/// let p = netpoller::global();
/// assert!(std::ptr::eq(p, netpoller::global()));
/// let _idle = !p.has_waiters();
/// ```
pub fn global() -> &'static NetPoller {
    static GLOBAL: OnceLock<NetPoller> = OnceLock::new();
    static INSTALL: Once = Once::new();
    let poller = GLOBAL.get_or_init(|| {
        NetPoller::new().unwrap_or_else(|e| panic!("gort netpoller: cannot create epoll: {e}"))
    });
    INSTALL.call_once(|| {
        assert!(
            sched::install_poller(poller),
            "gort netpoller: another sched::Poller is installed; gort's sockets need this one"
        );
    });
    poller
}
