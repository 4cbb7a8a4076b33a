//! How a plain OS thread (not a goroutine) waits for a descriptor: `poll(2)` on that one
//! descriptor, level-triggered, with the operation's deadline as the timeout.
//!
//! Why not park on the `PollDesc` like a goroutine: then some thread must be running the
//! netpoller to unpark it, and in a program that uses sockets from plain threads only, no M
//! may exist at all (or all may be asleep outside the poller). Taking turns at the poller
//! between plain threads and the scheduler's sleeper would need a hand-off protocol of its
//! own; blocking the thread in `poll(2)` needs none, costs the thread nothing it was not going
//! to spend anyway (it blocks, as std's sockets do), and leaves the edge-triggered
//! registration untouched (a level-triggered `poll(2)` consumes no edge).
//!
//! Closing a descriptor while a plain thread waits on it: the closer marks the `PollDesc`
//! closed and shuts the socket down (`PollFd::close`), which on Linux wakes `poll(2)` for
//! stream and datagram sockets and listeners alike (they report `POLLHUP`); the thread then
//! sees the closed flag. A new deadline set while a plain thread is inside `poll(2)` applies
//! from its next wait.

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

use crate::desc::Direction;

/// Blocks the calling thread until `fd` is ready for `dir` (or reports an error or hang-up),
/// or until `deadline`. Returns false on timeout. A signal interrupting the wait counts as
/// ready (the caller retries its syscall and waits again).
pub(crate) fn wait_fd(fd: RawFd, dir: Direction, deadline: Option<Instant>) -> io::Result<bool> {
    let events = match dir {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                None => return Ok(false),
                // Round up so the thread never wakes before the deadline and spins.
                Some(left) => left
                    .as_nanos()
                    .div_ceil(1_000_000)
                    .try_into()
                    .unwrap_or(libc::c_int::MAX),
            },
        };
        // SAFETY: `pfd` is a valid, exclusively borrowed pollfd array of length 1 for the
        // duration of the call; poll(2) does not retain the pointer.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        match r {
            0 => continue, // the loop re-checks the deadline
            r if r > 0 => return Ok(true),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    return Ok(true);
                }
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    #[test]
    fn times_out_then_sees_data() {
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let start = Instant::now();
        let deadline = Some(start + Duration::from_millis(20));
        assert!(!wait_fd(b.as_raw_fd(), Direction::Read, deadline).unwrap());
        assert!(start.elapsed() >= Duration::from_millis(20));
        a.write_all(b"x").unwrap();
        assert!(wait_fd(b.as_raw_fd(), Direction::Read, None).unwrap());
        assert!(wait_fd(a.as_raw_fd(), Direction::Write, None).unwrap());
    }
}
