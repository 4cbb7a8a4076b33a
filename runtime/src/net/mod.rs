//! Go's `net` package: TCP, UDP and Unix-domain sockets whose blocking operations park the
//! calling goroutine, not its thread.
//!
//! Every socket here is non-blocking underneath and registered once with the netpoller
//! (`netpoller::PollFd`). An operation tries its syscall; on `WouldBlock` a goroutine parks
//! until the scheduler's poll reports the socket ready (so ten thousand connections need ten
//! thousand goroutines, not ten thousand threads), and a plain thread blocks in `poll(2)` on
//! that one socket, as it would with std. The API follows `std::net` (`Read`/`Write` on the
//! stream and on `&stream`, `set_read_timeout`, `incoming`...), with Go's additions: absolute
//! deadlines (`set_read_deadline`), an explicit `close`, and `try_clone` that shares one
//! connection.
//!
//! ```
//! use std::io::{Read, Write};
//! use gort::net::{TcpListener, TcpStream};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = gort::go!(move || {
//!     let (mut conn, _) = listener.accept().unwrap();
//!     let mut buf = [0u8; 5];
//!     conn.read_exact(&mut buf).unwrap();
//!     conn.write_all(&buf).unwrap(); // echo
//! });
//! let reply = gort::go!(move || {
//!     let mut c = TcpStream::connect(addr).unwrap();
//!     c.write_all(b"hello").unwrap();
//!     let mut buf = [0u8; 5];
//!     c.read_exact(&mut buf).unwrap();
//!     buf
//! });
//! assert_eq!(&reply.join().unwrap(), b"hello");
//! server.join().unwrap();
//! ```
//!
//! Policies, the same for every socket type (`docs/NETPOLLER.md` has the reasons):
//! - **Closing.** Handles made by `try_clone` share one connection, as in Go. As with std,
//!   dropping one handle leaves the others working, and the last one closes the descriptor.
//!   [`TcpStream::close`] and friends close the connection for every handle at once (Go's
//!   `Close`): goroutines and threads blocked on it wake with an error of kind
//!   `NotConnected` ("use of closed network connection"), later operations fail the same way,
//!   and the peer sees the connection end.
//! - **Timeouts and deadlines.** `set_read_timeout` bounds each operation that has to wait, as
//!   std's; `set_read_deadline` is Go's absolute deadline, after which every operation in that
//!   direction fails at once until it is moved. Either expiry is an error of kind `TimedOut`
//!   ("i/o timeout"); std reports `WouldBlock` on Unix, so portable code accepts both.
//! - **Errors are errors.** A reset or broken connection is an `io::Error` (writes use
//!   `MSG_NOSIGNAL`, so no `SIGPIPE` ends the process). `accept` does not fail on
//!   `EMFILE`/`ENFILE`/`ENOBUFS`/`ENOMEM`: it backs off (5 ms doubling to 1 s) and retries,
//!   as Go's servers do, and it retries at once on `ECONNABORTED`. Each episode of such
//!   retries is reported once when it begins and once when it ends, to the listener's
//!   [`on_accept_stall`](TcpListener::on_accept_stall) hook ([`AcceptStall`]).
//! - **Name resolution.** Addresses are taken as a [`ToSocketAddrs`] (gort's, for std's types):
//!   literal addresses are used as they are, and a host name is resolved with `getaddrinfo` on
//!   the blocking pool ([`crate::blocking`]), parking only the goroutine (`addr.rs` says why a
//!   trait of gort's). [`lookup_host`] resolves a name alone.
//! - **`TCP_NODELAY`** is on for new TCP connections, as in Go (std leaves it off).

mod accept;
mod addr;
mod tcp;
mod udp;
#[cfg(unix)]
mod unix;

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use mio::event::Source;
use netpoller::PollFd;

use addr::Resolve;

pub use accept::AcceptStall;
pub use addr::ToSocketAddrs;
pub use std::net::Shutdown;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
#[cfg(unix)]
pub use unix::{UnixIncoming, UnixListener, UnixStream};

/// Resolves `host` ("name:port" or "ip:port") to socket addresses, as `ToSocketAddrs` does,
/// without blocking the goroutine's thread: in a goroutine, `getaddrinfo` runs on the blocking
/// pool ([`crate::blocking`]) while the goroutine parks; on a plain thread it runs on that
/// thread. A literal address is parsed, never looked up.
///
/// ```
/// let addrs = gort::go!(|| gort::net::lookup_host("localhost:80")).join().unwrap().unwrap();
/// assert!(addrs.iter().all(|a| a.port() == 80 && a.ip().is_loopback()));
/// ```
pub fn lookup_host(host: &str) -> io::Result<Vec<SocketAddr>> {
    Ok(host.resolve()?.collect())
}

/// Runs `f` on each address `addr` resolves to until one succeeds (std's `each_addr`).
fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr.resolve()? {
        match f(a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// One handle to a registered socket. Handles made by [`Socket::share`] (`try_clone`) point at
/// the same `PollFd`. As with std's `try_clone`, dropping one handle leaves the others working;
/// the last one to go closes the file descriptor (by dropping the `PollFd`). To close the
/// socket for every handle at once and wake whoever waits on it (Go's `Close`), call `close()`.
struct Socket<S: Source + AsRawFd>(Arc<PollFd<S>>);

impl<S: Source + AsRawFd> Socket<S> {
    fn new(io: S) -> io::Result<Socket<S>> {
        Ok(Socket(Arc::new(PollFd::new(io)?)))
    }

    fn share(&self) -> Socket<S> {
        Socket(Arc::clone(&self.0))
    }
}

impl<S: Source + AsRawFd> std::ops::Deref for Socket<S> {
    type Target = PollFd<S>;

    fn deref(&self) -> &PollFd<S> {
        &self.0
    }
}

/// Backlog asked of `listen(2)`. The kernel caps it at `net.core.somaxconn` (4096 on current
/// Linux); 65535 is the largest value that old kernels, which store it in 16 bits, keep intact.
const LISTEN_BACKLOG: libc::c_int = 65535;

/// Raises a listening socket's accept queue to [`LISTEN_BACKLOG`] (mio listens with 1024,
/// std with 128; a burst of connects beyond the queue waits a SYN retransmit, one second).
/// Calling `listen` again on a listening socket only changes its backlog.
fn raise_backlog(fd: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: listen(2) on a descriptor we own and borrow for the call; no pointers.
    if unsafe { libc::listen(fd.as_raw_fd(), LISTEN_BACKLOG) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Completion check of a non-blocking connect, run when the socket turns writable: the
/// pending error if the connect failed, `WouldBlock` while it is still in progress.
fn connect_done(
    take_error: io::Result<Option<io::Error>>,
    peer: io::Result<impl Sized>,
) -> io::Result<()> {
    if let Some(e) = take_error? {
        return Err(e);
    }
    match peer {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(e),
    }
}
