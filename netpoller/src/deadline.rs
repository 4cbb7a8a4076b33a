//! Per-direction deadlines (Go's `SetReadDeadline`) and timeouts (std's `set_read_timeout`),
//! stored in atomics so that the hot path (a syscall that does not block) reads one word and
//! takes no lock.
//!
//! - A *deadline* is absolute: once it has passed, every operation in that direction fails
//!   with `TimedOut` before trying its syscall, as in Go, until the deadline is moved.
//! - A *timeout* is relative to each operation: an operation that has to wait waits at most
//!   that long from its first `WouldBlock`, as std's `SO_RCVTIMEO`.
//!
//! An operation waits until the earlier of the two. Encoding: `0` is "none"; a deadline is
//! nanoseconds since a process-wide base instant plus one (an instant before the base encodes
//! as the base, which has passed); a timeout is its length in nanoseconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::desc::Direction;

/// The deadlines and timeouts of one descriptor.
#[derive(Default)]
pub(crate) struct Deadlines {
    deadline: [AtomicU64; 2],
    timeout: [AtomicU64; 2],
}

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::Read => 0,
        Direction::Write => 1,
    }
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
}

impl Deadlines {
    pub(crate) fn set_deadline(&self, dir: Direction, at: Option<Instant>) {
        let v = at.map_or(0, |t| nanos(t.saturating_duration_since(base())) + 1);
        self.deadline[idx(dir)].store(v, Ordering::SeqCst);
    }

    pub(crate) fn deadline(&self, dir: Direction) -> Option<Instant> {
        match self.deadline[idx(dir)].load(Ordering::SeqCst) {
            0 => None,
            v => Some(base() + Duration::from_nanos(v - 1)),
        }
    }

    /// True if `dir` has a deadline and it has passed.
    #[inline]
    pub(crate) fn expired(&self, dir: Direction) -> bool {
        self.deadline[idx(dir)].load(Ordering::Relaxed) != 0
            && self.deadline(dir).is_some_and(|d| Instant::now() >= d)
    }

    /// `None` clears the timeout; the caller has rejected `Some(ZERO)`.
    pub(crate) fn set_timeout(&self, dir: Direction, t: Option<Duration>) {
        self.timeout[idx(dir)].store(t.map_or(0, |d| nanos(d).max(1)), Ordering::SeqCst);
    }

    pub(crate) fn timeout(&self, dir: Direction) -> Option<Duration> {
        match self.timeout[idx(dir)].load(Ordering::SeqCst) {
            0 => None,
            v => Some(Duration::from_nanos(v)),
        }
    }

    /// The instant an operation that first blocked at `started` must give up at.
    pub(crate) fn op_deadline(&self, dir: Direction, started: Instant) -> Option<Instant> {
        let by_timeout = self.timeout(dir).map(|t| started + t);
        match (self.deadline(dir), by_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_minimum() {
        let d = Deadlines::default();
        assert_eq!(d.deadline(Direction::Read), None);
        assert!(!d.expired(Direction::Read));
        let at = Instant::now() + Duration::from_secs(5);
        d.set_deadline(Direction::Read, Some(at));
        let got = d.deadline(Direction::Read).unwrap();
        assert!(got.max(at) - got.min(at) < Duration::from_micros(1));
        d.set_timeout(Direction::Read, Some(Duration::from_secs(1)));
        let now = Instant::now();
        assert_eq!(
            d.op_deadline(Direction::Read, now),
            Some(now + Duration::from_secs(1))
        );
        assert_eq!(d.op_deadline(Direction::Write, now), None);
        d.set_deadline(Direction::Write, Some(now - Duration::from_millis(1)));
        assert!(d.expired(Direction::Write));
    }
}
