//! [`PollFd`]: a non-blocking socket registered with the netpoller, and the retry loop that
//! turns `WouldBlock` into parking (Go's `internal/poll.FD` with its `pollDesc`).
//!
//! Every operation runs the same loop: fail early if the descriptor is closed or its
//! direction's deadline has passed; take the slot's edge snapshot; try the syscall; on
//! `WouldBlock`, wait (a goroutine parks on the `PollDesc`, a plain thread blocks in `poll(2)`,
//! see `thread.rs`) and try again. Readiness is never assumed: only a syscall tells, so a
//! spurious wake-up costs one `WouldBlock` and nothing else.
//!
//! Ownership: the `PollFd` owns the socket and its descriptor-table entry. Fields drop in
//! order: the socket first (closing the file removes it from epoll), then the registration
//! (the table entry is released only once no new event can name it).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::event::Source;

use crate::deadline::Deadlines;
use crate::desc::{Direction, PollDesc, WaitOutcome};
use crate::poller::NetPoller;

/// A non-blocking socket registered with a [`NetPoller`], whose operations park the calling
/// goroutine (or block the calling plain thread) until the socket is ready.
///
/// `S` is a mio socket (`mio::net::TcpStream`, `UdpSocket`, `UnixListener`...). Share a
/// `PollFd` between goroutines by reference or `Arc`; any number may wait on it at once.
///
/// ```
/// use std::io::{Read, Write};
/// use netpoller::PollFd;
///
/// let (a, b) = mio::net::UnixStream::pair().unwrap();
/// let (a, b) = (PollFd::new(a).unwrap(), PollFd::new(b).unwrap());
/// a.write_with(|s| (&*s).write(b"ping")).unwrap();
/// let mut buf = [0u8; 4];
/// let n = b.read_with(|s| (&*s).read(&mut buf)).unwrap(); // a plain thread: blocks in poll(2)
/// assert_eq!(&buf[..n], b"ping");
/// ```
pub struct PollFd<S: Source + AsRawFd> {
    io: S,
    reg: Registration,
    deadlines: Deadlines,
    nonblocking: AtomicBool,
    /// `s + 1`, where `s` is the read edge count taken before the last stream read that came
    /// back short (it emptied the receive queue), or 0. See [`PollFd::read_stream_with`].
    drained: AtomicU64,
}

/// A descriptor-table entry, released when dropped (after the socket field has closed).
struct Registration {
    poller: &'static NetPoller,
    index: u32,
    /// `poller`'s entry `index`, borrowed once (table pages live as long as the poller).
    desc: &'static PollDesc,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.poller.release(self.index);
    }
}

/// The error of an operation on a closed descriptor, or one closed while the operation
/// waited: kind `NotConnected`, message Go's "use of closed network connection".
pub fn closed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "use of closed network connection",
    )
}

/// The error of an operation whose deadline or timeout passed: kind `TimedOut`, message Go's
/// "i/o timeout".
pub fn timed_out_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")
}

impl<S: Source + AsRawFd> PollFd<S> {
    /// Registers `io` (which must be in non-blocking mode, as mio's sockets are) with the
    /// process's netpoller, [`crate::global`].
    pub fn new(io: S) -> io::Result<PollFd<S>> {
        PollFd::with_poller(crate::global(), io)
    }

    /// Registers `io` with `poller`. Goroutines waiting on it are woken only by whoever calls
    /// `poller`'s [`sched::Poller::poll`].
    pub fn with_poller(poller: &'static NetPoller, mut io: S) -> io::Result<PollFd<S>> {
        let index = poller.register(&mut io)?;
        Ok(PollFd {
            io,
            reg: Registration {
                poller,
                index,
                desc: poller.desc(index),
            },
            deadlines: Deadlines::default(),
            nonblocking: AtomicBool::new(false),
            drained: AtomicU64::new(0),
        })
    }

    /// The socket. Use it for operations that never block (addresses, options); blocking ones
    /// go through [`read_with`](PollFd::read_with) or [`write_with`](PollFd::write_with).
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Runs `op` (a read, receive or accept on the socket) until it does not return
    /// `WouldBlock`, waiting for read readiness in between.
    ///
    /// Errors besides `op`'s own: [`closed_error`] if the descriptor is or gets closed,
    /// [`timed_out_error`] if the read deadline or timeout passes, `WouldBlock` if the
    /// descriptor was put in non-blocking mode.
    pub fn read_with<R>(&self, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.io_with(Direction::Read, op)
    }

    /// Like [`read_with`](PollFd::read_with), for a read of at most `len` bytes from a TCP
    /// stream, which saves the system call that would only say `WouldBlock`.
    ///
    /// A stream read that returns fewer bytes than asked (and more than none) emptied the
    /// kernel's receive queue. Until the poller reports a new read edge, another read can
    /// only fail with `WouldBlock`, so the next call parks at once instead of trying: any data
    /// that arrives after the emptying read raises an edge (edge-triggered epoll reports
    /// every arrival on a socket it is not already reporting), and the edge wakes the wait.
    /// An echo or request/response server thus makes two system calls per request (read,
    /// write) instead of three. Go's `internal/poll` always reads until `EAGAIN`.
    ///
    /// Exceptions, where a short read does not mean an empty queue: end of stream, a pending
    /// error, urgent data (TCP stops a read at the urgent mark). The poller flags a descriptor
    /// whose events reported any of them, and from then on every read is tried. Not for
    /// datagram sockets, peeks, or Unix streams (a read stops early at a message that carried
    /// descriptors or other credentials). In non-blocking mode, and on a plain thread, every
    /// call makes the system call.
    pub fn read_stream_with(
        &self,
        len: usize,
        op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let emptied = |snapshot: u64| {
            // Relaxed: whatever value is seen was stored after a short read that followed
            // the edge count reaching that value; if it matches `snapshot`, no edge came since
            // the queue was last empty, however stale the load. Only a goroutine skips: its
            // wait ends on the next edge, which the scheduler's polls deliver. A plain thread
            // waits in `poll(2)`, level-triggered, and nothing may be moving the edge count,
            // so it must read to see.
            crate::poller::REPORTS_PRIORITY
                && self.drained.load(Ordering::Relaxed) == snapshot.wrapping_add(1)
                && !self.desc().read_irregular()
                && sched::current_id().is_some()
        };
        let noted = |snapshot: u64, n: &usize| self.note_read(snapshot, *n, len);
        self.io_loop(Direction::Read, op, emptied, noted)
    }

    /// Records whether a stream read of `n` of `len` bytes, started at edge count `snapshot`,
    /// emptied the receive queue.
    fn note_read(&self, snapshot: u64, n: usize, len: usize) {
        let hint = if n > 0 && n < len {
            snapshot.wrapping_add(1)
        } else {
            0
        };
        if self.drained.load(Ordering::Relaxed) != hint {
            self.drained.store(hint, Ordering::Relaxed);
        }
    }

    /// Like [`read_with`](PollFd::read_with), for a write, send or connect completion,
    /// waiting for write readiness.
    pub fn write_with<R>(&self, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.io_with(Direction::Write, op)
    }

    /// The retry loop behind `read_with` and `write_with`.
    pub fn io_with<R>(&self, dir: Direction, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.io_loop(dir, op, |_| false, |_, _| {})
    }

    /// The retry loop: check the descriptor, take the edge snapshot, try `op` (unless
    /// `known_empty(snapshot)` says it can only block: then wait at once), wait on
    /// `WouldBlock`, repeat. `done(snapshot, &result)` sees each success.
    fn io_loop<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut(&S) -> io::Result<R>,
        known_empty: impl Fn(u64) -> bool,
        mut done: impl FnMut(u64, &R),
    ) -> io::Result<R> {
        // I/O is a preemption point: a loop of reads that never block must not starve the
        // goroutines that share its thread.
        sched::preempt_point();
        let mut started = None;
        loop {
            self.check_usable(dir)?;
            let snapshot = self.desc().slot(dir).snapshot();
            let nonblocking = self.nonblocking.load(Ordering::Relaxed);
            if nonblocking || !known_empty(snapshot) {
                match op(&self.io) {
                    Ok(r) => {
                        done(snapshot, &r);
                        return Ok(r);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if nonblocking {
                            return Err(e);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            let started = *started.get_or_insert_with(Instant::now);
            self.wait(dir, snapshot, started)?;
        }
    }

    /// Closes the descriptor for every user (Go's `Close` on a shared connection): marks it
    /// closed, wakes every goroutine waiting on it with [`closed_error`], and shuts the socket
    /// down in both directions, which tells the peer at once and wakes plain threads blocked
    /// in `poll(2)` on it. Later operations fail with [`closed_error`]. The file descriptor
    /// itself is closed when the `PollFd` is dropped. Idempotent.
    pub fn close(&self) {
        if self.desc().close() {
            // SAFETY: the descriptor is owned by `self.io` and open while `self` is borrowed;
            // shutdown(2) takes no pointers. Errors (ENOTCONN on an unconnected datagram
            // socket, ENOTSOCK) are irrelevant: the descriptor is closed either way.
            unsafe { libc::shutdown(self.io.as_raw_fd(), libc::SHUT_RDWR) };
        }
    }

    /// True once [`close`](PollFd::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.desc().is_closed()
    }

    /// Sets the absolute deadline of one direction (Go's `SetReadDeadline` /
    /// `SetWriteDeadline`); `None` clears it. A goroutine already waiting re-evaluates at once.
    pub fn set_deadline(&self, dir: Direction, at: Option<Instant>) {
        self.deadlines.set_deadline(dir, at);
        self.desc().slot(dir).wake_all();
    }

    /// The deadline of one direction.
    pub fn deadline(&self, dir: Direction) -> Option<Instant> {
        self.deadlines.deadline(dir)
    }

    /// Sets the per-operation timeout of one direction (std's `set_read_timeout`); `None`
    /// clears it. A zero duration is rejected with `InvalidInput`, as std does.
    pub fn set_timeout(&self, dir: Direction, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        self.deadlines.set_timeout(dir, t);
        self.desc().slot(dir).wake_all();
        Ok(())
    }

    /// The per-operation timeout of one direction.
    pub fn timeout(&self, dir: Direction) -> Option<Duration> {
        self.deadlines.timeout(dir)
    }

    /// In non-blocking mode, operations return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
    }

    #[inline]
    fn desc(&self) -> &PollDesc {
        self.reg.desc
    }

    #[inline]
    fn check_usable(&self, dir: Direction) -> io::Result<()> {
        if self.desc().is_closed() {
            return Err(closed_error());
        }
        if self.deadlines.expired(dir) {
            return Err(timed_out_error());
        }
        Ok(())
    }

    /// Waits until an edge after `snapshot`, a close, a deadline change or the deadline of an
    /// operation that first blocked at `started`.
    fn wait(&self, dir: Direction, snapshot: u64, started: Instant) -> io::Result<()> {
        let deadline = || self.deadlines.op_deadline(dir, started);
        if sched::current_id().is_none() {
            return self.wait_thread(dir, deadline());
        }
        let parked = self.reg.poller.parked();
        let fd = Some(self.io.as_raw_fd() as u64);
        match self.desc().wait(dir, snapshot, deadline, parked, fd) {
            WaitOutcome::Ready | WaitOutcome::Woken => Ok(()),
            WaitOutcome::Closed => Err(closed_error()),
            WaitOutcome::TimedOut => Err(timed_out_error()),
        }
    }

    fn wait_thread(&self, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
        if self.is_closed() {
            return Err(closed_error());
        }
        let ready = crate::thread::wait_fd(self.io.as_raw_fd(), dir, deadline)?;
        if self.is_closed() {
            return Err(closed_error());
        }
        if ready {
            Ok(())
        } else {
            Err(timed_out_error())
        }
    }
}

impl<S: Source + AsRawFd> AsRawFd for PollFd<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl<S: Source + AsRawFd + std::fmt::Debug> std::fmt::Debug for PollFd<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollFd")
            .field("io", &self.io)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sched::Poller;
    use std::io::{Read, Write};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// A private poller driven by its own thread, so these tests do not depend on the
    /// scheduler's idle path calling the global one.
    fn driven_poller() -> (
        &'static NetPoller,
        Arc<AtomicBool>,
        std::thread::JoinHandle<()>,
    ) {
        let poller: &'static NetPoller = Box::leak(Box::new(NetPoller::new().unwrap()));
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let driver = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                poller.poll(Some(Duration::from_millis(5)));
            }
        });
        (poller, stop, driver)
    }

    /// Goroutines ping-pong over socket pairs, parking on every read: each message must be
    /// delivered (no lost edge) and the waiter count must return to zero.
    #[test]
    fn goroutines_ping_pong_through_the_poller() {
        const PAIRS: usize = 50;
        const ROUNDS: usize = 200;
        let (poller, stop, driver) = driven_poller();
        let hs: Vec<_> = (0..PAIRS)
            .map(|_| {
                let (a, b) = mio::net::UnixStream::pair().unwrap();
                let a = PollFd::with_poller(poller, a).unwrap();
                let b = PollFd::with_poller(poller, b).unwrap();
                let echo = sched::spawn(move || {
                    let mut buf = [0u8; 8];
                    for _ in 0..ROUNDS {
                        let n = b.read_with(|s| (&*s).read(&mut buf)).unwrap();
                        b.write_with(|s| (&*s).write(&buf[..n])).unwrap();
                    }
                });
                sched::spawn(move || {
                    let mut buf = [0u8; 8];
                    for i in 0..ROUNDS as u64 {
                        a.write_with(|s| (&*s).write(&i.to_le_bytes())).unwrap();
                        let n = a.read_with(|s| (&*s).read(&mut buf)).unwrap();
                        assert_eq!(&buf[..n], &i.to_le_bytes());
                    }
                    echo.join().unwrap();
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert!(!poller.has_waiters());
        stop.store(true, Ordering::Relaxed);
        driver.join().unwrap();
    }

    #[test]
    fn close_wakes_a_parked_goroutine() {
        let (poller, stop, driver) = driven_poller();
        let (_a, b) = mio::net::UnixStream::pair().unwrap();
        let b = Arc::new(PollFd::with_poller(poller, b).unwrap());
        let b2 = b.clone();
        let reader = sched::spawn(move || {
            let mut buf = [0u8; 1];
            b2.read_with(|s| (&*s).read(&mut buf))
        });
        while !poller.has_waiters() {
            std::thread::yield_now();
        }
        b.close();
        let err = reader.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
        stop.store(true, Ordering::Relaxed);
        driver.join().unwrap();
    }

    #[test]
    fn close_wakes_a_blocked_plain_thread() {
        let (_a, b) = mio::net::UnixStream::pair().unwrap();
        let b = Arc::new(PollFd::new(b).unwrap());
        let b2 = b.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 1];
            b2.read_with(|s| (&*s).read(&mut buf))
        });
        std::thread::sleep(Duration::from_millis(20));
        b.close();
        let err = reader.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    }

    #[test]
    fn timeouts_and_deadlines() {
        let (poller, stop, driver) = driven_poller();
        let (_a, b) = mio::net::UnixStream::pair().unwrap();
        let b = Arc::new(PollFd::with_poller(poller, b).unwrap());
        assert!(b
            .set_timeout(Direction::Read, Some(Duration::ZERO))
            .is_err());
        b.set_timeout(Direction::Read, Some(Duration::from_millis(30)))
            .unwrap();
        for on_goroutine in [false, true] {
            let b2 = b.clone();
            let op = move || {
                let start = Instant::now();
                let mut buf = [0u8; 1];
                let err = b2.read_with(|s| (&*s).read(&mut buf)).unwrap_err();
                (err.kind(), start.elapsed())
            };
            let (kind, took) = if on_goroutine {
                sched::spawn(op).join().unwrap()
            } else {
                op()
            };
            assert_eq!(kind, io::ErrorKind::TimedOut);
            assert!(took >= Duration::from_millis(30), "{took:?}");
            assert!(took < Duration::from_secs(5), "{took:?}");
        }
        // A deadline in the past fails at once, before the syscall.
        b.set_deadline(Direction::Read, Some(Instant::now()));
        let mut buf = [0u8; 1];
        let err = b.read_with(|s| (&*s).read(&mut buf)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        stop.store(true, Ordering::Relaxed);
        driver.join().unwrap();
    }
}
