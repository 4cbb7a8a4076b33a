//! What other threads see of an M: the slot where an idle M waits for a P (Go's `m.nextp` and
//! `notesleep(&m.park)`), and the queue of goroutines homed to the M that other threads readied
//! (`home.rs` says where goroutines go; `docs/SOUNDNESS.md` why).
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
//! - No homed goroutine is stranded: a waker pushes to `remote`, then a SeqCst fence, then reads
//!   `idle` ([`push_remote`](Handoff::push_remote)); the M sets `idle`, then a fence, then reads
//!   `remote` (`IdleSet::stop_m`). If the waker sees the M idle, it hands it a P
//!   (`IdleSet::wake_home`); if not, the M sees the goroutine before it sleeps.
//! - Locks (their order is in `docs/HACKING.md`): nothing is taken while the slot's lock or the
//!   remote queue's lock is held.

use std::time::Instant;

use crate::chunked::ChunkedDeque;

use crate::loom::{fence, lock, AtomicBool, AtomicUsize, Condvar, Mutex, Ordering};

/// The shared part of an M: where it is handed a P, what it sleeps on, and the goroutines homed
/// to it that other threads readied. `G` is what the remote queue holds (a `GRef`).
pub(crate) struct Handoff<P, G> {
    /// The M's id, for tracing.
    pub(crate) id: usize,
    slot: Mutex<Slot<P>>,
    wakeup: Condvar,
    /// True while this M blocks in the poller (`wake` and `poke` must interrupt it there).
    in_poll: AtomicBool,
    /// Set by `poke_to_poll`: as the watcher, block in the poller next, even beside busy Ps.
    poll_asked: AtomicBool,
    /// Goroutines homed to this M, readied by other threads; only this M takes them out.
    remote: Mutex<Remote<G>>,
    /// How many goroutines `remote` holds, readable without the lock.
    nremote: AtomicUsize,
    /// True from the moment the M lists itself idle until it holds a P again.
    idle: AtomicBool,
    /// Goroutines other Ms homed here at their spawn (`balance.rs`) that this M has not started.
    incoming: AtomicUsize,
    /// What sysmon and the preemption signal handler see of this M (`preempt.rs`).
    pub(crate) monitor: crate::preempt::Monitor,
    /// The goroutines homed to this M that have switched out (`debug/registry.rs`).
    pub(crate) registry: crate::debug::registry::Registry,
}

/// The remote queue: what other threads readied for this M, by kind. Hand-offs run soon (the
/// M's local queue); other wake-ups (`ready_later`: I/O, timers, a joiner) go behind the M's
/// other work (its `later`), as they do when the M readies its own goroutines, so a goroutine's
/// place does not depend on which thread saw its socket ready.
struct Remote<G> {
    next: ChunkedDeque<G>,
    later: ChunkedDeque<G>,
}

struct Slot<P> {
    /// The P handed to this M and whether it was counted as spinning.
    p: Option<(P, bool)>,
    /// Set by `poke`: look at the timers (or the poller) again.
    poked: bool,
    /// Set by `resume`: a stopped M goes on without a P (`preempt.rs`).
    resume: bool,
}

impl<P, G> Handoff<P, G> {
    pub(crate) fn new(id: usize) -> Handoff<P, G> {
        Handoff {
            id,
            slot: Mutex::new(Slot {
                p: None,
                poked: false,
                resume: false,
            }),
            wakeup: Condvar::new(),
            in_poll: AtomicBool::new(false),
            poll_asked: AtomicBool::new(false),
            remote: Mutex::new(Remote {
                next: ChunkedDeque::new(),
                later: ChunkedDeque::new(),
            }),
            nremote: AtomicUsize::new(0),
            idle: AtomicBool::new(false),
            incoming: AtomicUsize::new(0),
            monitor: crate::preempt::Monitor::new(),
            registry: crate::debug::registry::Registry::new(),
        }
    }

    /// Another thread readies `g`, homed to this M: a hand-off, or with `later` a wake-up that
    /// is not one (`Remote`). True if the M may be idle: the caller must then make sure it gets
    /// a P (`IdleSet::wake_home`). The fence pairs with `stop_m`'s (module docs).
    pub(crate) fn push_remote(&self, g: G, later: bool) -> bool {
        {
            let mut remote = lock(&self.remote);
            if later {
                remote.later.push_back(g);
            } else {
                remote.next.push_back(g);
            }
        }
        self.nremote.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.idle.load(Ordering::SeqCst)
    }

    /// True if other threads readied goroutines homed here that this M has not taken yet.
    pub(crate) fn has_remote(&self) -> bool {
        self.nremote.load(Ordering::SeqCst) != 0
    }

    /// How many goroutines other threads readied for this M wait in its remote queue.
    pub(crate) fn remote_len(&self) -> usize {
        self.nremote.load(Ordering::Relaxed)
    }

    /// This M takes the goroutines others readied for it, oldest first: hand-offs into `into`
    /// (with `into` empty, as `Machine::pop_local` calls it, the chunks change hands whole), the
    /// other wake-ups to `later`.
    #[inline]
    pub(crate) fn take_remote(&self, into: &mut ChunkedDeque<G>, later: impl FnMut(G)) {
        if self.has_remote() {
            self.take_remote_locked(into, later);
        }
    }

    /// [`take_remote`](Self::take_remote) once something waits: out of line, so that the check
    /// on every schedule is a load, not a call that sets up the lock's frame.
    #[inline(never)]
    fn take_remote_locked(&self, into: &mut ChunkedDeque<G>, mut later: impl FnMut(G)) {
        let mut remote = lock(&self.remote);
        let n = remote.next.len() + remote.later.len();
        self.nremote.fetch_sub(n, Ordering::SeqCst);
        into.append(&mut remote.next);
        while let Some(g) = remote.later.pop_front() {
            later(g);
        }
    }

    /// True while this M is listed idle, waiting for a P.
    pub(crate) fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Relaxed)
    }

    /// Another M homed a goroutine it spawned to this M (`balance.rs`).
    pub(crate) fn count_incoming(&self) {
        self.incoming.fetch_add(1, Ordering::Relaxed);
    }

    /// This M starts a goroutine another M homed here (`count_incoming`).
    pub(crate) fn count_arrived(&self) {
        self.incoming.fetch_sub(1, Ordering::Relaxed);
    }

    /// This M's long-lived goroutines: those that have switched out and not ended (its
    /// registry: goroutines that never park cost nothing here), and those other Ms homed here
    /// that it has not started.
    pub(crate) fn live(&self) -> usize {
        let listed = self.registry.len();
        listed.wrapping_add(self.incoming.load(Ordering::Relaxed))
    }

    /// Marks this M idle (listed, no P) or running again. Setting it is followed by a SeqCst
    /// fence and a look at `remote` (`IdleSet::stop_m`).
    pub(crate) fn set_idle(&self, on: bool) {
        self.idle.store(on, Ordering::SeqCst);
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

    /// Asks this M, the watcher, to block in the poller at its next look rather than leave I/O
    /// to busy Ps (an M went idle while goroutines wait for I/O: the Ps still busy may not poll
    /// for a long time), and pokes it unless it is in the poller already. The request is stored
    /// before `in_poll` is read, and the watcher takes it
    /// ([`take_poll_request`](Self::take_poll_request)) each time it decides how to wait, after
    /// clearing `in_poll`: so it sees the request at its next decision, whether it was in the
    /// poller (and not poked) or about to sleep (and poked out of it).
    pub(crate) fn poke_to_poll(&self) {
        self.poll_asked.store(true, Ordering::SeqCst);
        if !self.is_in_poll() {
            self.poke();
        }
    }

    /// Takes the request of [`poke_to_poll`](Self::poke_to_poll), if any.
    pub(crate) fn take_poll_request(&self) -> bool {
        self.poll_asked.load(Ordering::SeqCst) && self.poll_asked.swap(false, Ordering::SeqCst)
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
                None => slot.wait(&self.wakeup),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    slot.wait_timeout(&self.wakeup, d - now)
                }
            };
        }
    }

    /// A stopped M (in its preemption signal handler) sleeps until handed a P (returned), or
    /// until sysmon resumes it without one (`None`). Pokes are ignored: it does not watch.
    pub(crate) fn wait_stopped(&self) -> Option<(P, bool)> {
        let mut slot = lock(&self.slot);
        loop {
            if let Some(handed) = slot.p.take() {
                slot.resume = false;
                return Some(handed);
            }
            if std::mem::take(&mut slot.resume) {
                return None;
            }
            slot.poked = false;
            slot = slot.wait(&self.wakeup);
        }
    }

    /// Lets a stopped M go on without a P (after taking it off the idle list).
    pub(crate) fn resume(&self) {
        lock(&self.slot).resume = true;
        self.wakeup.notify_one();
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Hand-offs from other threads come out for the local queue, other wake-ups for `later`,
    /// each kind in the order it was pushed; the count covers both.
    #[test]
    fn remote_queue_keeps_hand_offs_and_later_wake_ups_apart() {
        let m: Handoff<(), u32> = Handoff::new(0);
        for (g, later) in [(1, true), (2, false), (3, true), (4, false)] {
            assert!(!m.push_remote(g, later), "the M is not idle");
        }
        assert_eq!(m.remote_len(), 4);
        let mut local = ChunkedDeque::new();
        let mut behind = Vec::new();
        m.take_remote(&mut local, |g| behind.push(g));
        assert_eq!(local.iter().copied().collect::<Vec<_>>(), [2, 4]);
        assert_eq!(behind, [1, 3]);
        assert!(!m.has_remote());
    }
}
