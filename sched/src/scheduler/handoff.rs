//! Where an idle M waits for a P: its hand-off slot (Go's `m.nextp` and `notesleep(&m.park)`).
//!
//! An M with nothing to run lists its `Handoff` in the idle set (`idle.rs`) and sleeps on it.
//! Another thread wakes it by depositing a P (with the spinning flag `wakep` counted for it):
//! `deposit` under the idle lock, in the critical section that takes the M off the idle list,
//! then `wake` once that lock is dropped. The watcher (the idle M that waits for timers and
//! I/O) also sleeps here with a deadline, or blocks in the poller with `in_poll` set, and is
//! `poke`d when the earliest timer changes or I/O needs a poller.
//!
//! Invariants:
//! - The slot holds at most one P. A P in the slot belongs to the M; only the M takes it out.
//! - No wake-up is lost: the slot's state (`p`, `poked`) changes under its own lock and every
//!   change is followed by `notify_one`, which the sleeper, checking the state under the same
//!   lock before it waits, cannot miss. For the poller, `wake`/`poke` store the state, then read
//!   `in_poll`; the M stores `in_poll`, then reads the state (`is_handed`, the earliest timer)
//!   before it blocks: one of the two sees the other (SeqCst on `in_poll`, the slot lock for
//!   the state).
//! - Lock order: the idle lock, then a slot lock; nothing is taken while a slot lock is held.

use std::time::Instant;

use crate::loom::{lock, AtomicBool, Condvar, Mutex, Ordering};

/// An idle M's slot: where it is handed a P, and what it sleeps on.
pub(crate) struct Handoff<P> {
    /// The M's id, for tracing.
    pub(crate) id: usize,
    slot: Mutex<Slot<P>>,
    wakeup: Condvar,
    /// True while this M blocks in the poller (`wake` and `poke` must interrupt it there).
    in_poll: AtomicBool,
}

struct Slot<P> {
    /// The P handed to this M and whether it was counted as spinning.
    p: Option<(P, bool)>,
    /// Set by `poke`: look at the timers (or the poller) again.
    poked: bool,
}

impl<P> Handoff<P> {
    pub(crate) fn new(id: usize) -> Handoff<P> {
        Handoff {
            id,
            slot: Mutex::new(Slot {
                p: None,
                poked: false,
            }),
            wakeup: Condvar::new(),
            in_poll: AtomicBool::new(false),
        }
    }

    /// Leaves `p` for this M. Called with the idle lock held, by the thread that has just
    /// taken this M off the idle list; follow with [`wake`](Self::wake) after dropping it.
    pub(crate) fn deposit(&self, p: P, spinning: bool) {
        let mut slot = lock(&self.slot);
        assert!(slot.p.is_none(), "gort: M{} handed two Ps", self.id);
        slot.p = Some((p, spinning));
    }

    /// Wakes this M after a [`deposit`](Self::deposit): from its condvar, or from the poller.
    pub(crate) fn wake(&self) {
        self.wakeup.notify_one();
        self.wake_poller();
    }

    /// Makes this M look again at what it waits for (the earliest timer, I/O waiters).
    pub(crate) fn poke(&self) {
        lock(&self.slot).poked = true;
        self.wakeup.notify_one();
        self.wake_poller();
    }

    /// True if a P waits in the slot. Under the idle lock this also says whether the M was
    /// taken off the idle list by someone else (invariant 2 of `idle.rs`).
    pub(crate) fn is_handed(&self) -> bool {
        lock(&self.slot).p.is_some()
    }

    /// Sleeps until handed a P; returns it and its spinning flag.
    pub(crate) fn wait(&self) -> (P, bool) {
        loop {
            if let Some(handed) = self.wait_until(None) {
                return handed;
            }
        }
    }

    /// Sleeps until handed a P (returned), or until `deadline` passes or a poke (`None`).
    pub(crate) fn wait_until(&self, deadline: Option<Instant>) -> Option<(P, bool)> {
        let mut slot = lock(&self.slot);
        loop {
            if let Some(handed) = slot.p.take() {
                return Some(handed);
            }
            if std::mem::take(&mut slot.poked) {
                return None;
            }
            slot = match deadline {
                None => self.wakeup.wait(slot).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    self.wakeup
                        .wait_timeout(slot, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Takes a P handed to this M, if any, without waiting.
    pub(crate) fn take(&self) -> Option<(P, bool)> {
        lock(&self.slot).p.take()
    }

    /// True while this M blocks in the poller.
    pub(crate) fn is_in_poll(&self) -> bool {
        self.in_poll.load(Ordering::SeqCst)
    }

    /// Marks this M as blocking in the poller, or no longer. After setting it, the M must read
    /// what it waits for (`is_handed`, the earliest timer) before it blocks (module docs).
    pub(crate) fn set_in_poll(&self, on: bool) {
        self.in_poll.store(on, Ordering::SeqCst);
    }

    fn wake_poller(&self) {
        if self.in_poll.load(Ordering::SeqCst) {
            if let Some(poller) = crate::poller::poller() {
                poller.wake();
            }
        }
    }
}
