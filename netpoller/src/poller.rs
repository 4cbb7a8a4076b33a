//! [`NetPoller`]: the process's `epoll` (through mio), the descriptor table, and the
//! `sched::Poller` implementation the scheduler calls when it runs out of work.
//!
//! Who polls (see `sched/src/poller.rs` for the scheduler's side, whose gate lets one thread
//! poll at a time):
//! - a P that found nothing to run, and every P every 61st schedule unless another thread
//!   polls, polls without blocking (`poll(Some(ZERO))`); if no goroutine waits for I/O that
//!   returns at once without a syscall;
//! - the one idle M that watches timers blocks in `poll(timeout of the next timer)`;
//!   [`NetPoller::wake`] interrupts it (Go's `netpollBreak`).
//!
//! Plain threads never poll here: they wait with `poll(2)` on their own descriptor
//! (`thread.rs`), so nothing depends on an M being alive to deliver their readiness.
//!
//! The wake-up handshake: `wake` stores `wake_pending` and then reads `sleeping`; a blocking
//! poll stores `sleeping` and then swaps `wake_pending` (all SeqCst). Either the waker sees
//! the sleeper and writes the eventfd (mio's `Waker`), or the sleeper sees the pending wake
//! and polls with a zero timeout. Non-blocking polls leave `wake_pending` alone, so they cannot
//! swallow a wake meant for the sleeper (mio's waker is edge-triggered: an event consumed by a
//! non-blocking poll would otherwise be lost to the blocking one). A wake with nobody asleep
//! makes the next blocking poll return at once, which the contract allows. One `sleeping`
//! flag and one pending wake suffice because the scheduler's gate admits one poll at a time.
//!
//! Lock: `state` (the `mio::Poll` and the events buffer) is held for the whole of a poll. It
//! is not a gate: under the scheduler's it is never contended. It exists because `poll` takes
//! `&self`, and it keeps a caller who breaks the contract sound (that caller waits its turn;
//! a wake may then end the wrong blocking poll). Waiters are unparked while it is held, so the
//! scheduler's locks those unparks take come after it in the lock order (`docs/HACKING.md`);
//! nothing an unpark does (`sched::ready`, `wakep`, `Poller::wake`) takes it.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use mio::event::{Event, Events, Source};
use mio::{Interest, Poll, Registry, Token, Waker};

use crate::desc::{Direction, PollDesc};
use crate::table::{Table, WAKER_TOKEN};

/// Events fetched per `epoll_wait` (Go's netpoll takes 128); more wait for the next poll.
const EVENTS_PER_POLL: usize = 256;

/// The netpoller: registers sockets, tracks their readiness and parked goroutines, and is
/// driven by the scheduler through [`sched::Poller`].
///
/// Most code uses the process-wide instance, [`crate::global`], through [`crate::PollFd`].
///
/// ```
/// use sched::Poller;
/// let poller = netpoller::NetPoller::new().unwrap();
/// assert!(!poller.has_waiters());
/// poller.wake();
/// // The pending wake makes this blocking poll return at once.
/// assert_eq!(poller.poll(None), 0);
/// ```
pub struct NetPoller {
    state: Mutex<PollState>,
    registry: Registry,
    waker: Waker,
    table: Table,
    /// Goroutines parked on I/O (`has_waiters`). Raised before a goroutine parks, lowered
    /// after it resumes.
    parked: AtomicUsize,
    /// A `wake` no blocking poll has consumed yet.
    wake_pending: AtomicBool,
    /// A thread is in, or entering, a blocking poll.
    sleeping: AtomicBool,
}

struct PollState {
    poll: Poll,
    events: Events,
}

impl NetPoller {
    /// A new poller with its own `epoll` instance and waker.
    pub fn new() -> io::Result<NetPoller> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(poll.registry(), Token(WAKER_TOKEN))?;
        Ok(NetPoller {
            state: Mutex::new(PollState {
                poll,
                events: Events::with_capacity(EVENTS_PER_POLL),
            }),
            registry,
            waker,
            table: Table::new(),
            parked: AtomicUsize::new(0),
            wake_pending: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
        })
    }

    /// Registers `source` for read and write readiness (and, on Linux, priority data: see
    /// `interest`), edge-triggered, once for its life.
    /// Returns the index of its descriptor state.
    pub(crate) fn register<S: Source + ?Sized>(&self, source: &mut S) -> io::Result<u32> {
        let index = self.table.alloc()?;
        let token = Token(self.table.token(index));
        match self.registry.register(source, token, interest()) {
            Ok(()) => Ok(index),
            Err(e) => {
                self.table.release(index);
                Err(e)
            }
        }
    }

    /// Ends a registration. The descriptor's file must already be closed.
    pub(crate) fn release(&self, index: u32) {
        self.table.release(index);
    }

    pub(crate) fn desc(&self, index: u32) -> &PollDesc {
        self.table.get(index)
    }

    pub(crate) fn parked(&self) -> &AtomicUsize {
        &self.parked
    }

    /// The poll state (module docs: uncontended, not a gate).
    fn lock_state(&self) -> MutexGuard<'_, PollState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocking poll prologue: announce the sleep, then consume a pending wake (which turns
    /// the sleep into a non-blocking poll).
    fn begin_sleep(&self, timeout: Option<Duration>) -> Option<Duration> {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.wake_pending.swap(false, Ordering::SeqCst) {
            Some(Duration::ZERO)
        } else {
            timeout
        }
    }

    /// Records the readiness one event reports; returns the goroutines it unparked.
    fn dispatch(&self, ev: &Event) -> usize {
        let Some(desc) = self.table.lookup(ev.token().0) else {
            return 0; // the waker, or a stale token of a closed descriptor
        };
        let mut woken = 0;
        if ev.is_read_closed() || ev.is_error() || ev.is_priority() {
            desc.mark_read_irregular();
        }
        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
            woken += desc.slot(Direction::Read).ready();
        }
        if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
            woken += desc.slot(Direction::Write).ready();
        }
        woken
    }
}

/// What every descriptor is registered for. On Linux also `EPOLLPRI`: a TCP read stops at the
/// urgent mark, so a short read does not prove the receive queue empty when urgent data is
/// pending, and the poller must see that to flag the descriptor (`PollDesc::read_irregular`).
/// Without the interest, epoll never reports `EPOLLPRI` (`net_echo.rs`'s urgent-data test
/// hung now and then).
fn interest() -> Interest {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    return Interest::READABLE | Interest::WRITABLE;
}

/// True where the poller reports priority data, which `PollFd::read_stream_with` needs before
/// it may skip a read.
pub(crate) const REPORTS_PRIORITY: bool = cfg!(any(target_os = "linux", target_os = "android"));

impl sched::Poller for NetPoller {
    fn poll(&self, timeout: Option<Duration>) -> usize {
        let blocking = timeout != Some(Duration::ZERO);
        if !blocking && !self.has_waiters() {
            // Unread edges stay queued in the kernel until a poll that matters.
            return 0;
        }
        let mut state = self.lock_state();
        let timeout = if blocking {
            self.begin_sleep(timeout)
        } else {
            timeout
        };
        let PollState { poll, events } = &mut *state;
        let result = poll.poll(events, timeout);
        if blocking {
            self.sleeping.store(false, Ordering::SeqCst);
        }
        match result {
            Ok(()) => events.iter().map(|ev| self.dispatch(ev)).sum(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            // epoll_wait fails only on a programming error (bad fd, bad buffer).
            Err(e) => panic!("gort netpoller: epoll_wait failed: {e}"),
        }
    }

    fn wake(&self) {
        self.wake_pending.store(true, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            // An eventfd write cannot fail short of a full counter, which mio handles.
            let _ = self.waker.wake();
        }
    }

    fn has_waiters(&self) -> bool {
        self.parked.load(Ordering::SeqCst) != 0
    }
}

impl std::fmt::Debug for NetPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetPoller")
            .field("parked", &self.parked.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sched::Poller;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn wake_interrupts_a_blocking_poll() {
        let p = Arc::new(NetPoller::new().unwrap());
        let p2 = p.clone();
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            p2.poll(Some(Duration::from_secs(10)));
            start.elapsed()
        });
        // Keep waking until the poller thread is surely inside (a wake before it sleeps is
        // kept as pending, which also ends the poll at once).
        while !t.is_finished() {
            p.wake();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(t.join().unwrap() < Duration::from_secs(5));
    }

    #[test]
    fn blocking_poll_honours_its_timeout() {
        let p = NetPoller::new().unwrap();
        let start = Instant::now();
        assert_eq!(p.poll(Some(Duration::from_millis(20))), 0);
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn nonblocking_poll_without_waiters_is_free() {
        let p = NetPoller::new().unwrap();
        assert_eq!(p.poll(Some(Duration::ZERO)), 0);
    }
}
