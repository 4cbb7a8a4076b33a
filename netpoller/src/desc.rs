//! The per-descriptor readiness state (Go's `pollDesc`) and the wait/ready protocol that makes
//! edge-triggered readiness impossible to lose.
//!
//! A [`PollDesc`] has a read [`Slot`] and a write [`Slot`] and a `closed` flag. A slot does not
//! hold a "ready" bit that someone must consume: it holds an *edge count* (`seq`), bumped by the
//! poller each time the kernel reports the direction ready, and the list of goroutines parked on
//! that direction.
//!
//! The protocol, per direction:
//!
//! ```text
//!  waiter (goroutine)                          poller (in NetPoller::poll)
//!  s0 = seq.load()          ─┐                  kernel reports an edge
//!  syscall → WouldBlock      │ any edge after   seq += 1               (SeqCst RMW)
//!  push self; nwait += 1     │ s0 bumps seq     if nwait > 0:          (SeqCst load)
//!  if seq != s0 → retry     ─┘                     take all waiters; unpark each
//!  if closed → error; read deadline
//!  park; remove self; re-check seq / closed / deadline
//! ```
//!
//! Why nothing is lost: the waiter takes its snapshot *before* the syscall, so an edge for data
//! that arrived after the syscall looked is an increment after the snapshot. The waiter's
//! `nwait` increment and the poller's `seq` increment are both SeqCst RMWs followed by a SeqCst
//! load of the other variable (Dekker): either the poller sees the waiter registered and
//! unparks it, or the waiter sees the new `seq` and retries without parking. An unpark that
//! arrives before the waiter parks is kept as a token by `sched::park` and makes the park
//! return at once.
//!
//! Why an edge count and not Go's single `pdReady` bit: Rust lets several goroutines read one
//! socket at once (`&TcpStream` is `Read`, listeners are shared by accept loops), and Go's bit
//! relies on its `fdMutex` to allow only one waiter per direction. With a shared bit, one
//! waiter can consume the edge, take one of two pending connections and leave the other waiter
//! parked with a connection pending. With a count, each waiter judges the edges against its
//! own snapshot, and every edge wakes every waiter of that direction (each retries its syscall;
//! the losers see `WouldBlock` and park again).
//!
//! Closing and deadline changes follow the same pattern: the closer stores `closed` (the
//! setter its new deadline) with SeqCst, then reads `nwait` and drains the waiters; a waiter
//! reads `closed` and its deadline after its `nwait` increment. Either the waker finds the
//! waiter registered, or the waiter sees the change.
//!
//! Invariants:
//! - `nwait` equals the number of entries in `waiters`; both change only under the `waiters`
//!   lock.
//! - A waiter is in a slot's list only between its push and its own removal or a drain. It
//!   registers afresh before every park and removes itself after, so a drain can never leave
//!   it parked unlisted: a drain between its push and its park unparks it, and the token
//!   makes that park return at once.
//! - A waiter leaves in O(1), whatever the number of waiters: its push returns a [`Ticket`]
//!   (the list's epoch and the entry's index). Within one epoch an occupied entry is vacated
//!   only by its owner's removal, so the index still names it; every drain starts a new epoch,
//!   so a ticket from before the drain names nothing. (Go's `pollDesc` needs no list: its
//!   `fdMutex` admits one reader and one writer per descriptor. gort admits any number, see
//!   above, and a thousand goroutines accepting on one listener with deadlines must not pay
//!   a scan per time-out.)
//! - `seq` only grows (wrapping); spurious increments (a stale event for a reused descriptor,
//!   see `table.rs`) cost a waiter one extra syscall, never correctness.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use sched::debug::WaitReason;
use sched::Unparker;

/// Which half of a descriptor an operation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Reading, receiving, accepting.
    Read,
    /// Writing, sending, connecting.
    Write,
}

/// The state of one registered descriptor (Go's `pollDesc`). Lives in the poller's table and
/// is reused after its descriptor is closed (`gen` tells incarnations apart).
pub(crate) struct PollDesc {
    /// Incarnation number, bumped when the descriptor is released; part of the mio token.
    pub(crate) gen: AtomicU64,
    /// Set (SeqCst) by [`PollDesc::close`]; waiters check it after registering.
    closed: AtomicBool,
    /// Set (SeqCst, before the edge is counted) once the poller reports the read side hung up,
    /// an error, or urgent data: from then on a short read no longer proves the receive queue
    /// empty (EOF, an error or the data after the urgent mark are there with no edge to come).
    read_irregular: AtomicBool,
    read: Slot,
    write: Slot,
}

/// How one round of [`Slot::wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitOutcome {
    /// An edge arrived since the snapshot: retry the syscall.
    Ready,
    /// The descriptor was closed.
    Closed,
    /// The deadline passed.
    TimedOut,
    /// Woken for another reason (a deadline change, a stale token): re-evaluate and retry.
    Woken,
}

impl PollDesc {
    pub(crate) fn new() -> PollDesc {
        PollDesc {
            gen: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            read_irregular: AtomicBool::new(false),
            read: Slot::new(),
            write: Slot::new(),
        }
    }

    pub(crate) fn slot(&self, dir: Direction) -> &Slot {
        match dir {
            Direction::Read => &self.read,
            Direction::Write => &self.write,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Poller side, before counting the read edge of an event that reports a hang-up, an
    /// error or urgent data (see `read_irregular`).
    pub(crate) fn mark_read_irregular(&self) {
        if !self.read_irregular.load(Ordering::Relaxed) {
            self.read_irregular.store(true, Ordering::SeqCst);
        }
    }

    /// True once [`mark_read_irregular`](PollDesc::mark_read_irregular) was called for this
    /// incarnation. Read after the edge-count snapshot: if the marking event was counted before
    /// the snapshot, this sees it (both SeqCst).
    pub(crate) fn read_irregular(&self) -> bool {
        self.read_irregular.load(Ordering::SeqCst)
    }

    /// Marks the descriptor closed and wakes every waiter (Go's `evict`). Idempotent; true
    /// for the first call.
    pub(crate) fn close(&self) -> bool {
        let first = !self.closed.swap(true, Ordering::SeqCst);
        self.read.wake_all();
        self.write.wake_all();
        first
    }

    /// One wait round on `dir` (see [`Slot::wait`]); `fd` names the descriptor in goroutine
    /// dumps.
    pub(crate) fn wait(
        &self,
        dir: Direction,
        snapshot: u64,
        deadline: impl Fn() -> Option<Instant>,
        parked: &AtomicUsize,
        fd: Option<u64>,
    ) -> WaitOutcome {
        let reason = match dir {
            Direction::Read => WaitReason::IoRead,
            Direction::Write => WaitReason::IoWrite,
        };
        self.slot(dir)
            .wait(snapshot, &self.closed, deadline, parked, (reason, fd))
    }

    /// Prepares a released descriptor for its next owner. Called with no waiters possible
    /// (the owner is gone).
    pub(crate) fn reset(&self) {
        self.closed.store(false, Ordering::SeqCst);
        self.read_irregular.store(false, Ordering::SeqCst);
    }
}

/// One direction of a descriptor: the edge count and the parked waiters.
pub(crate) struct Slot {
    /// Edges reported by the poller for this direction (wrapping).
    seq: AtomicU64,
    /// Length of `waiters`, readable without the lock (written only under it).
    nwait: AtomicUsize,
    waiters: Mutex<Waiters>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            seq: AtomicU64::new(0),
            nwait: AtomicUsize::new(0),
            waiters: Mutex::new(Waiters::default()),
        }
    }

    /// The snapshot a waiter takes before its syscall.
    #[inline]
    pub(crate) fn snapshot(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Poller side: records an edge and unparks every waiter. Returns how many it unparked.
    #[inline]
    pub(crate) fn ready(&self) -> usize {
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.nwait.load(Ordering::SeqCst) == 0 {
            return 0;
        }
        self.wake_all()
    }

    /// Unparks every waiter without recording an edge (close, deadline change). The caller
    /// has stored what changed (SeqCst) first: with the waiter's registration, that is the
    /// same Dekker pair as `ready`'s, so a zero `nwait` means any later waiter sees the change.
    pub(crate) fn wake_all(&self) -> usize {
        if self.nwait.load(Ordering::SeqCst) == 0 {
            return 0;
        }
        let taken = {
            let mut w = self.lock();
            let taken = w.drain();
            self.nwait.store(0, Ordering::SeqCst);
            taken
        };
        // Unpark outside the lock: a woken goroutine may run at once and lock the slot.
        taken.unpark_all()
    }

    /// Waiter side: one round of register, check, park, unregister. `snapshot` is the value of
    /// [`snapshot`](Slot::snapshot) taken before the syscall that returned `WouldBlock`;
    /// `deadline` reads the waiter's current deadline (read after registering, so a deadline
    /// changed concurrently is either seen here or wakes the waiter); `parked` counts the
    /// goroutines parked on I/O (the poller's `has_waiters`).
    pub(crate) fn wait(
        &self,
        snapshot: u64,
        closed: &AtomicBool,
        deadline: impl Fn() -> Option<Instant>,
        parked: &AtomicUsize,
        (reason, fd): (WaitReason, Option<u64>),
    ) -> WaitOutcome {
        let ticket = self.register(sched::unparker());
        let until = deadline();
        if let Some(outcome) = check(self, snapshot, closed, until) {
            self.unregister(ticket);
            return outcome;
        }
        parked.fetch_add(1, Ordering::SeqCst);
        match until {
            None => sched::park_for(reason, fd),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                sched::park_timeout_for(left, reason, fd);
            }
        }
        parked.fetch_sub(1, Ordering::SeqCst);
        self.unregister(ticket);
        // A timer wake-up with an unchanged deadline reports TimedOut here; a moved deadline,
        // a close or an edge report themselves; anything else is a spurious wake-up.
        check(self, snapshot, closed, deadline()).unwrap_or(WaitOutcome::Woken)
    }

    fn register(&self, me: Unparker) -> Ticket {
        let mut w = self.lock();
        let ticket = w.push(me);
        // SeqCst RMW, then the caller's SeqCst loads of `seq`, `closed` and the deadline: the
        // Dekker pair with `ready` and `wake_all`.
        self.nwait.fetch_add(1, Ordering::SeqCst);
        ticket
    }

    fn unregister(&self, ticket: Ticket) {
        let mut w = self.lock();
        if w.remove(ticket) {
            self.nwait.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The conditions that end a wait, in priority order (readiness first: a ready descriptor is
/// retried even if its deadline has just passed; the retry path checks the deadline again).
fn check(
    slot: &Slot,
    snapshot: u64,
    closed: &AtomicBool,
    deadline: Option<Instant>,
) -> Option<WaitOutcome> {
    if slot.seq.load(Ordering::SeqCst) != snapshot {
        return Some(WaitOutcome::Ready);
    }
    if closed.load(Ordering::SeqCst) {
        return Some(WaitOutcome::Closed);
    }
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Some(WaitOutcome::TimedOut);
    }
    None
}

/// A waiter's place in a slot's [`Waiters`]: the epoch it was pushed in and its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ticket {
    epoch: u64,
    index: usize,
}

/// The goroutines parked on one direction: a slab, so that a waiter leaves by index in O(1)
/// (see the invariants at the top). Almost always zero or one waiter, so index 0 lives inline
/// and a wait allocates nothing.
#[derive(Default)]
struct Waiters {
    /// Bumped by every [`drain`](Waiters::drain): tickets of earlier epochs name nothing.
    epoch: u64,
    /// Index 0.
    first: Option<Unparker>,
    /// Index `i + 1` is `rest[i]`; `None` entries are vacant and listed in `vacant`.
    rest: Vec<Option<Unparker>>,
    vacant: Vec<usize>,
}

impl Waiters {
    fn push(&mut self, u: Unparker) -> Ticket {
        let index = if self.first.is_none() {
            self.first = Some(u);
            0
        } else if let Some(i) = self.vacant.pop() {
            self.rest[i] = Some(u);
            i + 1
        } else {
            self.rest.push(Some(u));
            self.rest.len()
        };
        Ticket {
            epoch: self.epoch,
            index,
        }
    }

    /// Removes the entry `t` names; false if a drain took it (the ticket's epoch is over).
    fn remove(&mut self, t: Ticket) -> bool {
        if t.epoch != self.epoch {
            return false;
        }
        let entry = match t.index {
            0 => self.first.take(),
            i => {
                self.vacant.push(i - 1);
                self.rest[i - 1].take()
            }
        };
        debug_assert!(
            entry.is_some(),
            "a ticket of the current epoch names a vacant entry"
        );
        true
    }

    /// Takes every entry and starts a new epoch.
    fn drain(&mut self) -> Waiters {
        let next = Waiters {
            epoch: self.epoch.wrapping_add(1),
            ..Waiters::default()
        };
        std::mem::replace(self, next)
    }

    fn unpark_all(self) -> usize {
        let mut n = 0;
        for u in self.first.iter().chain(self.rest.iter().flatten()) {
            u.unpark_later();
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// The race the protocol closes, run many times on plain threads (park/unpark behave the
    /// same there): a "poller" thread reports edges while a waiter snapshots, finds nothing,
    /// and parks. Every edge after a snapshot must end the wait; none may be lost.
    #[test]
    fn no_edge_is_lost() {
        const ROUNDS: u64 = 20_000;
        let desc = Arc::new(PollDesc::new());
        let produced = Arc::new(AtomicU64::new(0));
        let taken = Arc::new(AtomicU64::new(0));
        let parked = AtomicUsize::new(0);
        let (d2, p2, t2) = (desc.clone(), produced.clone(), taken.clone());
        let poller = std::thread::spawn(move || {
            for i in 1..=ROUNDS {
                while t2.load(Ordering::SeqCst) != i - 1 {
                    std::hint::spin_loop(); // one item in flight at a time
                }
                // Data arrives, then the kernel reports the edge.
                p2.store(i, Ordering::SeqCst);
                d2.slot(Direction::Read).ready();
            }
        });
        let mut consumed = 0;
        while consumed < ROUNDS {
            let s0 = desc.slot(Direction::Read).snapshot();
            // The "syscall": is there an item we have not taken?
            if produced.load(Ordering::SeqCst) > consumed {
                consumed += 1;
                taken.store(consumed, Ordering::SeqCst);
                continue;
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            let out = desc.wait(Direction::Read, s0, || Some(deadline), &parked, None);
            assert_ne!(
                out,
                WaitOutcome::TimedOut,
                "lost an edge at item {consumed}"
            );
        }
        poller.join().unwrap();
    }

    #[test]
    fn close_wakes_a_waiter() {
        let desc = Arc::new(PollDesc::new());
        let parked = Arc::new(AtomicUsize::new(0));
        let (d2, p2) = (desc.clone(), parked.clone());
        let t = std::thread::spawn(move || {
            let s0 = d2.slot(Direction::Write).snapshot();
            d2.wait(Direction::Write, s0, || None, &p2, None)
        });
        while parked.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        desc.close();
        assert_eq!(t.join().unwrap(), WaitOutcome::Closed);
        assert_eq!(parked.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn deadline_ends_a_wait() {
        let desc = PollDesc::new();
        let parked = AtomicUsize::new(0);
        let start = Instant::now();
        let s0 = desc.slot(Direction::Read).snapshot();
        let until = start + Duration::from_millis(20);
        let out = desc.wait(Direction::Read, s0, || Some(until), &parked, None);
        assert_eq!(out, WaitOutcome::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn waiters_leave_by_ticket() {
        let us: Vec<Unparker> = (0..5)
            .map(|_| std::thread::spawn(sched::unparker).join().unwrap())
            .collect();
        let mut w = Waiters::default();
        let tickets: Vec<Ticket> = us.iter().map(|u| w.push(u.clone())).collect();
        assert_eq!(
            tickets.iter().map(|t| t.index).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        // Out of order, including the inline entry; each leaves exactly once.
        for i in [2, 0, 4] {
            assert!(w.remove(tickets[i]));
        }
        assert!(w.first.is_none());
        let listed: Vec<&Unparker> = w.rest.iter().flatten().collect();
        assert_eq!(listed.len(), 2);
        assert!(listed[0].will_wake(&us[1]) && listed[1].will_wake(&us[3]));
        // Vacant places are reused: the inline one first, then the slab's.
        let again = [w.push(us[0].clone()), w.push(us[2].clone())];
        assert_eq!(again.map(|t| t.index), [0, 4]);
        assert_eq!(
            w.rest.len(),
            4,
            "a vacant entry was reused, the slab did not grow"
        );
        // A drain takes everyone; tickets from before it name nothing.
        let taken = w.drain();
        assert_eq!(
            taken.first.iter().count() + taken.rest.iter().flatten().count(),
            4
        );
        for t in [tickets[1], tickets[3], again[0], again[1]] {
            assert!(!w.remove(t));
        }
        let fresh = w.push(us[4].clone());
        assert_eq!(fresh.index, 0);
        assert!(!w.remove(again[0]), "same index, earlier epoch");
        assert!(w.remove(fresh));
        assert!(w.first.is_none() && w.rest.is_empty());
    }

    /// Waiters that time out leave without disturbing the others: 64 goroutines wait on one
    /// direction with staggered deadlines; each times out on its own, and `nwait` ends at 0.
    #[test]
    fn timed_out_waiters_leave_one_by_one() {
        const WAITERS: u64 = 64;
        let desc = Arc::new(PollDesc::new());
        let parked = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let handles: Vec<_> = (0..WAITERS)
            .map(|i| {
                let (d, p) = (desc.clone(), parked.clone());
                sched::spawn(move || {
                    let s0 = d.slot(Direction::Read).snapshot();
                    let until = start + Duration::from_millis(5 + i % 8);
                    d.wait(Direction::Read, s0, || Some(until), &p, None)
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), WaitOutcome::TimedOut);
        }
        assert_eq!(desc.slot(Direction::Read).nwait.load(Ordering::SeqCst), 0);
        assert_eq!(parked.load(Ordering::SeqCst), 0);
    }
}
