//! Unix-domain stream sockets: [`UnixListener`] and [`UnixStream`] on mio's non-blocking
//! sockets, through the netpoller.
//!
//! Invariant: every socket is non-blocking and registered from construction to drop. Writes
//! use `send(2)` with `MSG_NOSIGNAL` (std's Unix-socket write is a plain `write(2)`, which
//! raises `SIGPIPE` on a closed peer in processes that have not ignored it).

use std::io::{self, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netpoller::Direction;

use super::accept::{accept_with, Stalls};
use super::{connect_done, raise_backlog, AcceptStall, Shutdown, Socket};

/// `send(2)` flags: no `SIGPIPE` where the platform has the flag (elsewhere the process's
/// `SIGPIPE` disposition applies; Rust programs ignore it from `main`).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const SEND_FLAGS: libc::c_int = 0;

/// A Unix-domain stream listener. `accept` parks the calling goroutine.
///
/// ```
/// use std::io::{Read, Write};
/// use gort::net::{UnixListener, UnixStream};
///
/// let dir = std::env::temp_dir().join(format!("gort-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("echo.sock");
/// let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path).unwrap();
/// let server = gort::go!(move || {
///     let (mut c, _) = listener.accept().unwrap();
///     let mut buf = [0u8; 4];
///     c.read_exact(&mut buf).unwrap();
///     c.write_all(&buf).unwrap();
/// });
/// let mut c = UnixStream::connect(&path).unwrap();
/// c.write_all(b"ping").unwrap();
/// let mut buf = [0u8; 4];
/// c.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"ping");
/// server.join().unwrap();
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct UnixListener {
    sock: Socket<mio::net::UnixListener>,
    /// Exhaustion episodes and the stall hook, shared by every handle.
    stalls: Arc<Stalls>,
}

impl UnixListener {
    /// Binds a listener to a filesystem path (which must not exist yet).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let l = mio::net::UnixListener::bind(path)?;
        raise_backlog(&l)?;
        UnixListener::wrap(l)
    }

    /// Wraps a std listener (switching it to non-blocking mode).
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        UnixListener::wrap(mio::net::UnixListener::from_std(listener))
    }

    fn wrap(l: mio::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            sock: Socket::new(l)?,
            stalls: Arc::default(),
        })
    }

    /// Waits for a connection. Retries through descriptor exhaustion like
    /// `TcpListener::accept`.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let name = || {
            let path = self.local_addr().ok();
            match path.as_ref().and_then(SocketAddr::as_pathname) {
                Some(p) => format!("unix {}", p.display()),
                None => "unix (unnamed)".into(),
            }
        };
        let (s, peer) = accept_with(&self.sock, &self.stalls, &name, |l| l.accept())?;
        Ok((UnixStream::wrap(s)?, peer))
    }

    /// Reports descriptor-exhaustion episodes of `accept` to `hook`, as
    /// [`TcpListener::on_accept_stall`](super::TcpListener::on_accept_stall).
    pub fn on_accept_stall(&self, hook: impl Fn(&AcceptStall) + Send + Sync + 'static) {
        self.stalls.set_hook(Arc::new(hook));
    }

    /// An endless iterator of accepted connections.
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get_ref().local_addr()
    }

    /// Another handle to the same listener. Dropping one leaves the other working; `close`
    /// closes it for both.
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener {
            sock: self.sock.share(),
            stalls: Arc::clone(&self.stalls),
        })
    }

    /// Closes the listener for every handle; pending `accept`s wake with `NotConnected`.
    pub fn close(&self) {
        self.sock.close();
    }

    /// Sets Go's accept deadline.
    pub fn set_deadline(&self, at: Option<Instant>) {
        self.sock.set_deadline(Direction::Read, at);
    }

    /// Takes the socket's pending error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.get_ref().take_error()
    }

    /// Makes `accept` return `WouldBlock` instead of waiting.
    #[doc(hidden)]
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }
}

/// The iterator of [`UnixListener::incoming`].
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A Unix-domain stream connection. Reads and writes park the calling goroutine.
///
/// ```
/// use std::io::{Read, Write};
/// let (mut a, mut b) = gort::net::UnixStream::pair().unwrap();
/// let h = gort::go!(move || {
///     let mut s = String::new();
///     b.read_to_string(&mut s).unwrap();
///     s
/// });
/// a.write_all(b"over and out").unwrap();
/// drop(a);
/// assert_eq!(h.join().unwrap(), "over and out");
/// ```
pub struct UnixStream {
    sock: Socket<mio::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the listener at `path`. If the listener's queue is full the connect is
    /// retried after a pause (1 ms doubling to 100 ms), parking the goroutine, where a
    /// blocking connect would wait.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let mut pause = Duration::ZERO;
        loop {
            match mio::net::UnixStream::connect(path.as_ref()) {
                Ok(s) => return UnixStream::finish_connect(s),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    pause = (pause * 2).clamp(Duration::from_millis(1), Duration::from_millis(100));
                    crate::time::sleep(pause);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn finish_connect(s: mio::net::UnixStream) -> io::Result<UnixStream> {
        let stream = UnixStream::wrap(s)?;
        stream
            .sock
            .write_with(|s| connect_done(s.take_error(), s.peer_addr()))?;
        Ok(stream)
    }

    /// A connected pair of sockets.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::wrap(a)?, UnixStream::wrap(b)?))
    }

    fn wrap(s: mio::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            sock: Socket::new(s)?,
        })
    }

    /// Wraps a connected std stream (switching it to non-blocking mode).
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        UnixStream::wrap(mio::net::UnixStream::from_std(stream))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get_ref().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get_ref().peer_addr()
    }

    /// Shuts down the read half, the write half, or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.get_ref().shutdown(how)
    }

    /// Another handle to the same connection. Dropping one leaves the other working; `close`
    /// closes it for both (see the module docs of `gort::net`).
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            sock: self.sock.share(),
        })
    }

    /// Closes the connection for every handle; blocked goroutines wake with `NotConnected`.
    pub fn close(&self) {
        self.sock.close();
    }

    /// Takes the socket's pending error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.get_ref().take_error()
    }

    /// Bounds how long each read may wait (std's `set_read_timeout`); expiry is `TimedOut`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Direction::Read, timeout)
    }

    /// Bounds how long each write may wait.
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

    /// Sets Go's read deadline.
    pub fn set_read_deadline(&self, at: Option<Instant>) {
        self.sock.set_deadline(Direction::Read, at);
    }

    /// Sets Go's write deadline.
    pub fn set_write_deadline(&self, at: Option<Instant>) {
        self.sock.set_deadline(Direction::Write, at);
    }

    /// Makes reads and writes return `WouldBlock` instead of waiting.
    #[doc(hidden)]
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }
}

/// One `send(2)` without `SIGPIPE`.
fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the duration of the call,
    // and `fd` is a socket the caller borrows; send(2) does not retain the pointer.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), SEND_FLAGS) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl Read for &UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read_with(|mut s| s.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.sock.read_with(|mut s| s.read_vectored(bufs))
    }
}

impl Write for &UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write_with(|s| send(s.as_raw_fd(), buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.get_ref().as_fd()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.get_ref().as_fd()
    }
}

impl std::fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixStream")
            .field("fd", &self.as_raw_fd())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixListener")
            .field("fd", &self.as_raw_fd())
            .finish_non_exhaustive()
    }
}
