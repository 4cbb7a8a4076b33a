//! UDP: [`UdpSocket`] on mio's non-blocking socket, through the netpoller.
//!
//! Invariant: the socket is non-blocking and registered from construction to drop; receives
//! and sends that would block park the calling goroutine.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use netpoller::Direction;

use super::{each_addr, Socket, ToSocketAddrs};

/// A UDP socket (Go's `net.UDPConn`). `recv_from` parks the calling goroutine until a
/// datagram arrives.
///
/// ```
/// use gort::net::UdpSocket;
///
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b_addr = b.local_addr().unwrap();
/// let echo = gort::go!(move || {
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf).unwrap();
///     b.send_to(&buf[..n], from).unwrap();
/// });
/// a.send_to(b"ping", b_addr).unwrap();
/// let mut buf = [0u8; 16];
/// let (n, from) = a.recv_from(&mut buf).unwrap();
/// assert_eq!((&buf[..n], from), (&b"ping"[..], b_addr));
/// echo.join().unwrap();
/// ```
pub struct UdpSocket {
    sock: Socket<mio::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds a socket to `addr` (the first of its addresses that binds).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |a| {
            Ok(UdpSocket {
                sock: Socket::new(mio::net::UdpSocket::bind(a)?)?,
            })
        })
    }

    /// Wraps a std socket (switching it to non-blocking mode).
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket {
            sock: Socket::new(mio::net::UdpSocket::from_std(socket))?,
        })
    }

    /// Sends a datagram to the first address `addr` resolves to.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let target = addr.resolve()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.sock.write_with(|s| s.send_to(buf, target))
    }

    /// Waits for a datagram; returns its length (truncated to `buf`) and sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.read_with(|s| s.recv_from(buf))
    }

    /// Like `recv_from`, without removing the datagram from the queue.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.read_with(|s| s.peek_from(buf))
    }

    /// Sets the default peer (the first of `addr`'s addresses that connects): `send` goes
    /// there and only its datagrams are received.
    ///
    /// ```
    /// let a = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// b.connect(a.local_addr().unwrap()).unwrap();
    /// a.send(b"hi").unwrap();
    /// let mut buf = [0u8; 4];
    /// assert_eq!(b.recv(&mut buf).unwrap(), 2);
    /// ```
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| self.sock.get_ref().connect(a))
    }

    /// Sends to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write_with(|s| s.send(buf))
    }

    /// Waits for a datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read_with(|s| s.recv(buf))
    }

    /// Like `recv`, without removing the datagram from the queue.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read_with(|s| s.peek(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get_ref().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get_ref().peer_addr()
    }

    /// Another handle to the same socket. Dropping one leaves the other working; `close`
    /// closes it for both (see the module docs).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            sock: self.sock.share(),
        })
    }

    /// Closes the socket for every handle; blocked receivers wake with `NotConnected`.
    pub fn close(&self) {
        self.sock.close();
    }

    /// Bounds how long each receive may wait (std's `set_read_timeout`); expiry is
    /// `TimedOut`. Zero is rejected with `InvalidInput`.
    ///
    /// ```
    /// let s = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_read_timeout(Some(std::time::Duration::from_millis(5))).unwrap();
    /// let err = s.recv_from(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Direction::Read, timeout)
    }

    /// Bounds how long each send may wait.
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

    /// Sets Go's read deadline (see `TcpStream::set_read_deadline`).
    pub fn set_read_deadline(&self, at: Option<Instant>) {
        self.sock.set_deadline(Direction::Read, at);
    }

    /// Sets Go's write deadline.
    pub fn set_write_deadline(&self, at: Option<Instant>) {
        self.sock.set_deadline(Direction::Write, at);
    }

    /// Enables or disables `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.sock.get_ref().set_broadcast(on)
    }

    /// Whether `SO_BROADCAST` is on.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.sock.get_ref().broadcast()
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

    /// Makes receives and sends return `WouldBlock` instead of waiting.
    #[doc(hidden)]
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.get_ref().as_fd()
    }
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("addr", &self.local_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
