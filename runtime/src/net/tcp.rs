//! TCP: [`TcpListener`] and [`TcpStream`] on mio's non-blocking sockets, through the
//! netpoller.
//!
//! Invariants: every socket here is non-blocking and registered (a `Socket`, see `mod.rs`)
//! from construction to drop; blocking-style calls go through `read_with`/`write_with` (or
//! `accept_with`), so they park goroutines and never block an M on the socket.

use std::io::{self, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netpoller::Direction;

use super::accept::{accept_with, Stalls};
use super::{connect_done, each_addr, raise_backlog, AcceptStall, Socket, ToSocketAddrs};
use crate::context::{self, Context, ContextError};

/// A TCP socket server, listening for connections (Go's `net.TCPListener`).
///
/// `accept` parks the calling goroutine until a connection arrives.
///
/// ```
/// use std::io::{Read, Write};
/// use gort::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = gort::go!(move || {
///     for conn in listener.incoming().take(2) {
///         let mut conn = conn.unwrap();
///         gort::go!(move || {
///             let mut buf = [0u8; 2];
///             conn.read_exact(&mut buf).unwrap();
///             conn.write_all(&buf).unwrap();
///         });
///     }
/// });
/// for msg in [b"hi", b"yo"] {
///     let mut c = TcpStream::connect(addr).unwrap();
///     c.write_all(msg).unwrap();
///     let mut buf = [0u8; 2];
///     c.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, msg);
/// }
/// server.join().unwrap();
/// ```
pub struct TcpListener {
    sock: Socket<mio::net::TcpListener>,
    /// Exhaustion episodes and the stall hook, shared by every handle.
    stalls: Arc<Stalls>,
}

impl TcpListener {
    /// Binds a listener to `addr` (the first of its addresses that binds), with
    /// `SO_REUSEADDR` and the largest accept queue the system allows. Port 0 picks a free
    /// port; see [`local_addr`](TcpListener::local_addr).
    ///
    /// ```
    /// let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(l.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            let l = mio::net::TcpListener::bind(a)?;
            raise_backlog(&l)?;
            TcpListener::wrap(l)
        })
    }

    /// Wraps a std listener (switching it to non-blocking mode).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        TcpListener::wrap(mio::net::TcpListener::from_std(listener))
    }

    fn wrap(l: mio::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            sock: Socket::new(l)?,
            stalls: Arc::default(),
        })
    }

    /// Waits for a connection and returns it with the peer's address. Retries through
    /// descriptor exhaustion and aborted handshakes (see the module docs).
    ///
    /// ```
    /// let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let c = gort::go!(move || gort::net::TcpStream::connect(addr).unwrap());
    /// let (conn, peer) = l.accept().unwrap();
    /// assert_eq!(peer, c.join().unwrap().local_addr().unwrap());
    /// assert_eq!(conn.local_addr().unwrap(), addr);
    /// ```
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let name = || match self.local_addr() {
            Ok(a) => format!("tcp {a}"),
            Err(_) => "tcp (unknown address)".into(),
        };
        let (s, peer) = accept_with(&self.sock, &self.stalls, &name, |l| l.accept())?;
        Ok((TcpStream::from_connected(s)?, peer))
    }

    /// Calls `hook` when `accept` starts retrying because the process ran out of file descriptors
    /// (or the system out of descriptors or memory), and again when that is over (an accept finds a
    /// descriptor free): once per episode, however many accepts fail in it and however many
    /// goroutines accept on this listener. [`AcceptStall`] says what happened (the listener, the
    /// error, `RLIMIT_NOFILE` and how to raise it; then the episode's length and retries), and its
    /// `Display` is the line to log. Go's `http.Server` logs every retry to its error log; gort
    /// logs nothing unless told where.
    ///
    /// The hook runs on the goroutine whose accept began or ended the episode, and other
    /// accepts on this listener that have something to report wait for it: keep it short,
    /// and do not accept or set the hook from inside it. Every handle shares one hook; a new
    /// one replaces the old.
    ///
    /// ```
    /// let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// l.on_accept_stall(|stall| eprintln!("server: {stall}"));
    /// ```
    pub fn on_accept_stall(&self, hook: impl Fn(&AcceptStall) + Send + Sync + 'static) {
        self.stalls.set_hook(Arc::new(hook));
    }

    /// An endless iterator of [`accept`](TcpListener::accept)ed connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get_ref().local_addr()
    }

    /// Another handle to the same listener (several goroutines may accept on it). As with
    /// std, dropping one handle leaves the other working; `close` closes it for both.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            sock: self.sock.share(),
            stalls: Arc::clone(&self.stalls),
        })
    }

    /// Closes the listener for every handle: pending and later `accept`s fail with
    /// `NotConnected`. The port is released when the last handle is dropped.
    ///
    /// ```
    /// let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// l.close();
    /// assert_eq!(l.accept().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    /// ```
    pub fn close(&self) {
        self.sock.close();
    }

    /// Sets Go's accept deadline: after `at`, `accept` fails with `TimedOut`.
    pub fn set_deadline(&self, at: Option<Instant>) {
        self.sock.set_deadline(Direction::Read, at);
    }

    /// Sets the IP time-to-live of accepted connections.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.get_ref().set_ttl(ttl)
    }

    /// The IP time-to-live.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.get_ref().ttl()
    }

    /// Takes the socket's pending error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.get_ref().take_error()
    }

    /// Makes `accept` return `WouldBlock` instead of waiting (the socket underneath is always
    /// non-blocking; this only changes whether gort waits for it).
    #[doc(hidden)]
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }
}

/// Why a wait under `ctx` must end now: `ctx`'s error, or `DeadlineExceeded` once its deadline
/// has passed even if the timer that cancels it has not run yet.
fn done(ctx: &Context) -> Option<ContextError> {
    ctx.err().or_else(|| {
        ctx.deadline()
            .filter(|d| Instant::now() >= *d)
            .map(|_| ContextError::DeadlineExceeded)
    })
}

/// The iterator of [`TcpListener::incoming`]: never ends, each item is one `accept`.
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A TCP connection (Go's `net.TCPConn`). Reads and writes park the calling goroutine while
/// the socket is not ready.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use gort::net::{TcpListener, TcpStream};
///
/// let l = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = l.local_addr().unwrap();
/// gort::go!(move || {
///     let (mut c, _) = l.accept().unwrap();
///     c.write_all(b"line one\nline two\n").unwrap();
/// });
/// let c = TcpStream::connect(addr).unwrap();
/// let lines: Vec<String> = BufReader::new(c).lines().map(Result::unwrap).collect();
/// assert_eq!(lines, ["line one", "line two"]);
/// ```
pub struct TcpStream {
    sock: Socket<mio::net::TcpStream>,
}

impl TcpStream {
    /// Connects to `addr` (each of its addresses in turn until one accepts), parking the
    /// goroutine until the handshake completes. A name is resolved on the blocking pool
    /// ([`ToSocketAddrs`]).
    ///
    /// ```
    /// // Nothing listens on a port just released: refused, not hung.
    /// let port = gort::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    /// let err = gort::net::TcpStream::connect(port).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    /// ```
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_addr(a, None))
    }

    /// Connects to `addr`, failing with `TimedOut` if the handshake takes longer than
    /// `timeout` (std's `connect_timeout`). A zero timeout is rejected with `InvalidInput`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_addr(*addr, Some(timeout))
    }

    /// Connects to `addr` unless `ctx` is done first (Go's `Dialer.DialContext`): the
    /// handshake is abandoned, and the socket closed, when `ctx` is cancelled or its deadline
    /// passes, and the error is then `ctx`'s, as an `io::Error` (kind `TimedOut` for
    /// [`ContextError::DeadlineExceeded`], `Other` for `Canceled`, the `ContextError` inside;
    /// see its `From` impl). The addresses of a name are tried in turn under the one
    /// deadline. Resolving a name (on the blocking pool) is not interrupted: the context is
    /// looked at before each address.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gort::context::{self, ContextError};
    /// use gort::net::{TcpListener, TcpStream};
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let (ctx, cancel) = context::with_timeout(&context::background(), Duration::from_secs(5));
    /// let c = TcpStream::connect_context(&ctx, l.local_addr().unwrap()).unwrap();
    /// assert_eq!(c.peer_addr().unwrap(), l.local_addr().unwrap());
    /// cancel.cancel();
    /// let e = TcpStream::connect_context(&ctx, l.local_addr().unwrap()).unwrap_err();
    /// let why = e.get_ref().and_then(|e| e.downcast_ref::<ContextError>());
    /// assert_eq!(why, Some(&ContextError::Canceled));
    /// ```
    pub fn connect_context<A: ToSocketAddrs>(ctx: &Context, addr: A) -> io::Result<TcpStream> {
        if let Some(e) = done(ctx) {
            return Err(e.into());
        }
        each_addr(addr, |a| TcpStream::connect_addr_context(ctx, a))
    }

    /// One address of `connect_context`: the connect's wait has the context's deadline as its
    /// write deadline, and a hook on the context closes the socket when the context is done,
    /// which wakes the wait (a goroutine's park, or a plain thread's `poll(2)`). Whatever the
    /// connect's own outcome, once the hook has run the socket is closed: the context's error
    /// is returned, as Go does for a cancellation that races a completed connect.
    fn connect_addr_context(ctx: &Context, addr: SocketAddr) -> io::Result<TcpStream> {
        if let Some(e) = done(ctx) {
            return Err(e.into());
        }
        let sock = Socket::new(mio::net::TcpStream::connect(addr)?)?;
        sock.set_deadline(Direction::Write, ctx.deadline());
        let closer = sock.share();
        let hook = context::on_done(ctx, move || closer.close());
        let connected = sock.write_with(|s| connect_done(s.take_error(), s.peer_addr()));
        let interrupted = !hook.stop();
        match (interrupted, connected) {
            (false, Ok(())) => {}
            (true, _) => return Err(done(ctx).unwrap_or(ContextError::Canceled).into()),
            (false, Err(e)) => return Err(done(ctx).map_or(e, io::Error::from)),
        }
        sock.set_deadline(Direction::Write, None);
        sock.get_ref().set_nodelay(true)?;
        Ok(TcpStream { sock })
    }

    fn connect_addr(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let sock = Socket::new(mio::net::TcpStream::connect(addr)?)?;
        sock.set_timeout(Direction::Write, timeout)?;
        sock.write_with(|s| connect_done(s.take_error(), s.peer_addr()))?;
        sock.set_timeout(Direction::Write, None)?;
        sock.get_ref().set_nodelay(true)?;
        Ok(TcpStream { sock })
    }

    /// Wraps a connected mio stream (from `accept`), with Go's `TCP_NODELAY` default.
    fn from_connected(s: mio::net::TcpStream) -> io::Result<TcpStream> {
        s.set_nodelay(true)?;
        Ok(TcpStream {
            sock: Socket::new(s)?,
        })
    }

    /// Wraps a connected std stream (switching it to non-blocking mode; options such as
    /// `TCP_NODELAY` are left as they are).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream {
            sock: Socket::new(mio::net::TcpStream::from_std(stream))?,
        })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get_ref().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get_ref().local_addr()
    }

    /// Shuts down the read half, the write half (the peer reads end-of-file), or both. The
    /// handle stays open; see [`close`](TcpStream::close).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.get_ref().shutdown(how)
    }

    /// Closes the connection for every handle (Go's `Close`): goroutines blocked on it wake
    /// with `NotConnected`, later operations fail, the peer sees the connection end.
    ///
    /// ```
    /// use std::io::Read;
    /// let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = gort::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let reader = c.try_clone().unwrap();
    /// let blocked = gort::go!(move || (&reader).read(&mut [0u8; 8]).unwrap_err().kind());
    /// gort::time::sleep(std::time::Duration::from_millis(10));
    /// c.close();
    /// assert_eq!(blocked.join().unwrap(), std::io::ErrorKind::NotConnected);
    /// ```
    pub fn close(&self) {
        self.sock.close();
    }

    /// Another handle to the same connection (one descriptor, shared, as Go's `net.Conn`). As
    /// with std, dropping one handle leaves the other working; `close` closes the connection
    /// for both and wakes whoever waits on it (see the module docs).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            sock: self.sock.share(),
        })
    }

    /// Reads without consuming (`MSG_PEEK`), waiting for data like `read`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read_with(|s| s.peek(buf))
    }

    /// Enables or disables `TCP_NODELAY` (on by default, as in Go).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is on.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.get_ref().nodelay()
    }

    /// Sets the IP time-to-live.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.get_ref().set_ttl(ttl)
    }

    /// The IP time-to-live.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.get_ref().ttl()
    }

    /// Takes the socket's pending error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.get_ref().take_error()
    }

    /// Bounds how long each read may wait (std's `set_read_timeout`); `None` waits forever.
    /// A read that times out fails with `TimedOut`. Zero is rejected with `InvalidInput`.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut c = gort::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// c.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    /// let err = c.read(&mut [0u8; 1]).unwrap_err(); // the server never writes
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Direction::Read, timeout)
    }

    /// Bounds how long each write may wait (std's `set_write_timeout`).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Direction::Write, timeout)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.timeout(Direction::Read))
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.timeout(Direction::Write))
    }

    /// Sets Go's read deadline: after `at`, reads fail with `TimedOut` at once, until the
    /// deadline is moved or cleared (`None`). A read already waiting sees the change.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::{Duration, Instant};
    /// let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut c = gort::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// c.set_read_deadline(Some(Instant::now() + Duration::from_millis(10)));
    /// assert_eq!(c.read(&mut [0u8; 1]).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_deadline(&self, at: Option<Instant>) {
        self.sock.set_deadline(Direction::Read, at);
    }

    /// Sets Go's write deadline.
    pub fn set_write_deadline(&self, at: Option<Instant>) {
        self.sock.set_deadline(Direction::Write, at);
    }

    /// Sets both deadlines (Go's `SetDeadline`).
    pub fn set_deadline(&self, at: Option<Instant>) {
        self.set_read_deadline(at);
        self.set_write_deadline(at);
    }

    /// Makes reads and writes return `WouldBlock` instead of waiting.
    #[doc(hidden)]
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read_stream_with(buf.len(), |mut s| s.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.sock
            .read_stream_with(len, |mut s| s.read_vectored(bufs))
    }
}

/// Writes go through `send(MSG_NOSIGNAL)` (std's TCP write on Linux), so a reset peer is a
/// `BrokenPipe` or `ConnectionReset` error, never a `SIGPIPE`. Vectored writes use the
/// default (one buffer at a time) because std's `writev` path does not suppress the signal.
impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write_with(|mut s| s.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.get_ref().as_fd()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.get_ref().as_fd()
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.local_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
