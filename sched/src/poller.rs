//! The I/O poller interface the scheduler calls when it runs out of work (Go's netpoll hooks).
//!
//! `sched` knows nothing of sockets: a poller (the `netpoller` crate, on mio) is installed once
//! with [`install_poller`], and the scheduler calls it:
//! - non-blocking (`poll(Some(ZERO))`) from `find_runnable` when a P has nothing queued, so
//!   goroutines whose I/O is ready run before an M goes idle, and every 61st schedule of a P;
//! - blocking, from the one idle M that watches timers, with the timeout of the earliest timer
//!   (`None` if there is none): an idle process sleeps in `epoll_wait`, not in a spin;
//! - [`Poller::wake`] interrupts that blocking poll when the M is needed (new work handed to
//!   it, or a new earliest timer), as Go's `netpollBreak`.
//!
//! One thread polls at a time, and this module is the one gate that ensures it:
//! `try_begin_poll` and `end_poll` around every call. A P's periodic poll that finds the gate
//! taken skips it (the thread inside delivers what is ready); a P out of work that finds the
//! watcher blocking there ends that poll and takes the gate (`find.rs`,
//! `take_gate_from_watcher`); the watcher yields its thread and looks again (`poll_once`), so
//! it never waits behind another blocking poll that could consume the wake meant for it. A
//! poller therefore sees one caller at a time and needs no gate of its own ([`Poller::poll`]
//! states the contract).
//!
//! A poller reports readiness by unparking the goroutines that wait for it (their `Unparker`s),
//! from inside `poll`; the scheduler sends each one home (`scheduler/home.rs`), or, in migrate
//! mode, onto the polling M's P, or the global queue if the M has none (the watcher). Those
//! unparks reach the scheduler's locks while the poller may hold its own (`docs/HACKING.md`,
//! lock order). `has_waiters` keeps deadlock detection silent while any goroutine waits for
//! I/O.

use crate::loom::std_only::{AtomicBool, AtomicU64, OnceLock};
use crate::loom::Ordering;
use std::time::Duration;

/// An I/O readiness poller the scheduler blocks in when idle.
pub trait Poller: Send + Sync + 'static {
    /// Waits up to `timeout` (`None`: until woken; `Some(ZERO)`: do not block) for I/O
    /// readiness, unparks every goroutine whose I/O became ready, and returns how many it
    /// unparked.
    ///
    /// The scheduler calls `poll` from one thread at a time (its gate, module docs), and an
    /// implementation may rely on that: for instance, on at most one blocking call for
    /// [`wake`](Self::wake) to end. Anyone else who calls `poll` on the installed poller breaks
    /// that, so the installed poller is the scheduler's alone to poll.
    fn poll(&self, timeout: Option<Duration>) -> usize;

    /// Makes a concurrent or the next blocking `poll` return soon. Callable from any thread.
    fn wake(&self);

    /// True if some goroutine or thread waits for I/O through this poller.
    fn has_waiters(&self) -> bool;
}

static POLLER: OnceLock<&'static dyn Poller> = OnceLock::new();

/// Installs the process's poller. The first call wins; later calls return `false`.
///
/// ```
/// struct Nothing;
/// impl sched::Poller for Nothing {
///     fn poll(&self, _: Option<std::time::Duration>) -> usize { 0 }
///     fn wake(&self) {}
///     fn has_waiters(&self) -> bool { false }
/// }
/// static NOTHING: Nothing = Nothing;
/// let _first = sched::install_poller(&NOTHING);
/// ```
pub fn install_poller(poller: &'static dyn Poller) -> bool {
    POLLER.set(poller).is_ok()
}

/// The installed poller, if any.
#[inline]
pub(crate) fn poller() -> Option<&'static dyn Poller> {
    POLLER.get().copied()
}

/// True if a poller is installed and something waits on it.
pub(crate) fn io_waiters() -> bool {
    poller().is_some_and(|p| p.has_waiters())
}

/// True while some thread is inside `Poller::poll` (only one may be: the module's gate).
static POLLING: AtomicBool = AtomicBool::new(false);

/// Calls of `try_begin_poll`, granted or not: how the watcher tells that busy Ps poll
/// (`scheduler/watcher.rs`, `leave_io_to_ps`), even while it holds the gate itself.
static TRIES: AtomicU64 = AtomicU64::new(0);

/// Claims the right to call `poll`. False if another thread holds it. Acquire: pairs with the
/// last holder's `end_poll`.
pub(crate) fn try_begin_poll() -> bool {
    TRIES.fetch_add(1, Ordering::Relaxed);
    !POLLING.swap(true, Ordering::Acquire)
}

/// True while the gate's holder is the watcher, in a poll that blocks (`scheduler/watcher.rs`).
/// A hint (relaxed): a stale answer costs one needless `Poller::wake` or one missed one.
static BLOCKING: AtomicBool = AtomicBool::new(false);

/// `try_begin_poll` for the watcher's blocking poll: marks the gate as held by it.
pub(crate) fn try_begin_blocking_poll() -> bool {
    let granted = try_begin_poll();
    if granted {
        BLOCKING.store(true, Ordering::Relaxed);
    }
    granted
}

/// True if the watcher holds the gate in a blocking poll (`BLOCKING`).
pub(crate) fn in_blocking_poll() -> bool {
    BLOCKING.load(Ordering::Relaxed)
}

/// How many times anyone tried to poll so far (`TRIES`).
pub(crate) fn tries() -> u64 {
    TRIES.load(Ordering::Relaxed)
}

/// Gives the right to poll back.
pub(crate) fn end_poll() {
    BLOCKING.store(false, Ordering::Relaxed);
    POLLING.store(false, Ordering::Release);
}
