//! Waiters: what a blocked channel operation leaves in a channel's queue (Go's `sudog`).
//!
//! A goroutine (or thread) that must block on one or more channel operations creates one
//! [`Waiter`] on its own stack and puts an [`Entry`] for each operation in the queue of that
//! operation's channel (under the channel's lock). The entry points back at the waiter and at
//! the operation's [`Slot`] (where a sender's value waits, or where a receiver's value lands).
//!
//! Selection: any number of wakers may find entries of the same waiter (a `select` waits on
//! several channels). The first to win `Waiter::try_select` (a CAS of its [`Selection`] from
//! `Waiting` to `Case(i)`, Go's `selectDone`) completes that operation: it moves the value
//! into or out of the slot, then publishes `done` (release) and only then unparks the waiter.
//! Losers drop the entry they popped and look for another waiter. A waiter that gives up wins
//! the same CAS with `TimedOut` or `Aborted`.
//!
//! Lifetime invariants (why raw pointers into another goroutine's stack are sound):
//! - an entry is in a queue only while its waiter's frame is alive: right after queueing, the
//!   waiter makes a drop guard (`channel::Queued`, `select::Registration`) that removes all its
//!   remaining entries, each under its channel's lock, on every way out of the frame: return,
//!   timeout, and unwinding (a panic while parked);
//! - a waker touches an entry's waiter and slot only while holding that channel's lock (so
//!   the waiter cannot be past its cleanup of that channel), and the winner completes the
//!   operation and stores `done` before it releases that lock, then touches nothing of the
//!   waiter (it unparks the `Unparker` it moved out). So once the guard has taken and released
//!   the lock of every channel it was queued on, no peer is still completing anything for it;
//!   a guard that sees `done` skips the winning case's channel (the winner removed that entry).
//!
//! Deadlines: a timeout too far away to be an `Instant` (`Duration::MAX`) means no deadline
//! ([`deadline_after`]), and a wait parks at most [`MAX_PARK`] at a time, so no far deadline
//! makes this crate or the scheduler compute an `Instant` that overflows.

use std::cell::UnsafeCell;
use std::time::{Duration, Instant};

use crate::list::{List, Node};
use crate::loom::{AtomicBool, AtomicUsize, Ordering};
use crate::shim;
use sched::debug::WaitReason;

/// Who claimed a waiter, and for what (crossbeam's `Selected`). It moves once, from `Waiting`
/// to one of the others, by the CAS in [`Waiter::try_select`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Selection {
    /// Nobody yet: a peer may still complete one of the waiter's operations.
    Waiting,
    /// A peer claimed it to complete the operation of this case (0 for a single operation).
    Case(usize),
    /// The waiter claimed itself: its deadline passed.
    TimedOut,
    /// The waiter claimed itself to withdraw: a case became ready while a select registered,
    /// or the waiter is leaving by unwinding.
    Aborted,
}

impl Selection {
    /// The word stored in `Waiter::selected`: the case index, or one of the three largest
    /// values (no select has that many cases).
    fn encode(self) -> usize {
        match self {
            Selection::Waiting => usize::MAX,
            Selection::TimedOut => usize::MAX - 1,
            Selection::Aborted => usize::MAX - 2,
            Selection::Case(i) => {
                debug_assert!(i < usize::MAX - 2, "case index out of range");
                i
            }
        }
    }

    fn decode(word: usize) -> Selection {
        match word {
            usize::MAX => Selection::Waiting,
            w if w == usize::MAX - 1 => Selection::TimedOut,
            w if w == usize::MAX - 2 => Selection::Aborted,
            i => Selection::Case(i),
        }
    }
}

/// The longest single park of a timed wait: a far deadline is waited for in steps of this.
const MAX_PARK: Duration = Duration::from_secs(3600);

/// The deadline `timeout` from now, or `None` (wait without one) if that is past the last
/// `Instant` (as `Duration::MAX` is): std's `recv_timeout` accepts such timeouts too.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// One blocked goroutine or thread, waiting on one or more channel operations. (Public only
/// because the hidden `Case` trait names it; it has no public methods.)
#[doc(hidden)]
pub struct Waiter {
    /// A [`Selection`], encoded.
    selected: AtomicUsize,
    done: AtomicBool,
    /// Owned by the waiter until a winner's `complete` moves it out (then `done` is set and the
    /// waiter must not drop it).
    unparker: std::mem::ManuallyDrop<shim::Unparker>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // (A model loom tears down leaks the unparker: no atomic may be touched then.)
        if !shim::model_torn_down() && !self.is_done() {
            // SAFETY: not completed, so nobody moved the unparker out; this is its only drop.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.unparker) };
        }
    }
}

impl Waiter {
    pub(crate) fn new() -> Waiter {
        Waiter {
            selected: AtomicUsize::new(Selection::Waiting.encode()),
            done: AtomicBool::new(false),
            unparker: std::mem::ManuallyDrop::new(shim::unparker()),
        }
    }

    /// Claims this waiter (`to` is not `Waiting`). True for exactly one caller.
    pub(crate) fn try_select(&self, to: Selection) -> bool {
        debug_assert_ne!(to, Selection::Waiting);
        self.selected
            .compare_exchange(
                Selection::Waiting.encode(),
                to.encode(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Who claimed the waiter so far.
    pub(crate) fn selected(&self) -> Selection {
        Selection::decode(self.selected.load(Ordering::Acquire))
    }

    /// The winner's last touch: publish the completed operation and return the handle to
    /// wake the waiter with (to be used after the channel lock is released).
    ///
    /// The waiter's unparker is moved out (no reference-count traffic): only the winner of
    /// `try_select` calls this, once, and the waiter's `Drop` skips the unparker once `done`.
    pub(crate) fn complete(&self) -> shim::Unparker {
        // SAFETY: we won the selection, so no one else moves the unparker out; the waiter reads
        // `done` before dropping it and we set `done` only after this read.
        let unparker = unsafe { std::ptr::read(&*self.unparker) };
        self.done.store(true, Ordering::Release);
        unparker
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Parks until a winner completed an operation for this waiter.
    fn wait(&self, reason: WaitReason) {
        while !self.is_done() {
            shim::park_for(reason);
        }
    }

    /// The one blocking path of every channel operation and select: parks until a peer has
    /// completed one of the waiter's operations (`Case(i)`), or until `deadline` passes and the
    /// waiter claims itself (`TimedOut`; the caller's drop guard then withdraws its entries).
    /// A peer that claimed the waiter just before the deadline is waited for.
    /// `reason` is what the goroutine dump says it waits for.
    pub(crate) fn wait_for(&self, deadline: Option<Instant>, reason: WaitReason) -> Selection {
        if deadline.is_none_or(|d| self.wait_until(d, reason))
            || !self.try_select(Selection::TimedOut)
        {
            self.wait(reason);
            return self.selected();
        }
        Selection::TimedOut
    }

    /// Parks until completed or until `deadline`; true if completed. On false the caller must
    /// still try to claim the waiter for itself (a winner may be completing it right now).
    fn wait_until(&self, deadline: Instant, reason: WaitReason) -> bool {
        while !self.is_done() {
            let now = Instant::now();
            if now >= deadline {
                return self.is_done();
            }
            shim::park_timeout_for((deadline - now).min(MAX_PARK), reason);
        }
        true
    }
}

/// Where one operation's value waits (send) or lands (receive).
pub(crate) struct Slot<T> {
    value: UnsafeCell<Option<T>>,
    /// Set by a closer that completed this operation: the channel was closed under it.
    closed: UnsafeCell<bool>,
}

impl<T> Slot<T> {
    pub(crate) fn new(value: Option<T>) -> Slot<T> {
        Slot {
            value: UnsafeCell::new(value),
            closed: UnsafeCell::new(false),
        }
    }

    /// Moves the value out.
    ///
    /// # Safety
    /// The caller has exclusive access: it is the waiter after `done`, or a winner holding
    /// the channel lock before `done`.
    pub(crate) unsafe fn take(&self) -> Option<T> {
        // SAFETY: exclusive access is the caller's contract.
        unsafe { (*self.value.get()).take() }
    }

    /// Stores the value.
    ///
    /// # Safety
    /// As for [`Slot::take`].
    pub(crate) unsafe fn put(&self, v: T) {
        // SAFETY: exclusive access is the caller's contract.
        unsafe { *self.value.get() = Some(v) };
    }

    /// Marks the operation as ended by a close.
    ///
    /// # Safety
    /// As for [`Slot::take`].
    pub(crate) unsafe fn set_closed(&self) {
        // SAFETY: exclusive access is the caller's contract.
        unsafe { *self.closed.get() = true };
    }

    /// # Safety
    /// As for [`Slot::take`].
    pub(crate) unsafe fn is_closed(&self) -> bool {
        // SAFETY: exclusive access is the caller's contract.
        unsafe { *self.closed.get() }
    }
}

/// An operation waiting in a channel's queue: the value of its list node, which lives in the
/// blocked goroutine's frame (in a select case, or next to the slot of a single operation).
pub(crate) struct Entry<T> {
    pub(crate) waiter: *const Waiter,
    pub(crate) slot: *const Slot<T>,
    pub(crate) case: usize,
}

/// A queued operation: the entry with its links (`list.rs`).
pub(crate) type EntryNode<T> = Node<Entry<T>>;

// SAFETY: an entry is read by other threads only under its channel's lock, and what it points
// to is kept alive by the lifetime invariants in the module docs; the values that travel
// through its slot are `T: Send` (the channel requires it).
unsafe impl<T: Send> Sync for Entry<T> {}

impl<T> Entry<T> {
    /// A placeholder, for a select case's node until it is registered.
    pub(crate) fn unset() -> Entry<T> {
        Entry {
            waiter: std::ptr::null(),
            slot: std::ptr::null(),
            case: 0,
        }
    }

    /// An entry for `waiter`'s case `case`, whose value waits in or lands in `slot`.
    pub(crate) fn new(waiter: &Waiter, slot: &Slot<T>, case: usize) -> Entry<T> {
        Entry { waiter, slot, case }
    }

    /// # Safety
    /// The caller holds the lock of the channel whose queue held this entry.
    pub(crate) unsafe fn waiter(&self) -> &Waiter {
        // SAFETY: the waiter outlives its queued entries (module invariants).
        unsafe { &*self.waiter }
    }

    /// # Safety
    /// As for [`Entry::waiter`].
    pub(crate) unsafe fn slot(&self) -> &Slot<T> {
        // SAFETY: the slot outlives its queued entries (module invariants).
        unsafe { &*self.slot }
    }
}

/// A channel's queue of waiting senders or receivers: a FIFO whose entries leave in O(1).
pub(crate) struct WaitQueue<T>(List<Entry<T>>);

impl<T> WaitQueue<T> {
    pub(crate) fn new() -> WaitQueue<T> {
        WaitQueue(List::new())
    }

    /// Appends `node`.
    ///
    /// # Safety
    /// The caller holds this queue's channel lock, and `node` (with the waiter and slot its
    /// entry points to) stays alive and in place until it is withdrawn: its owner's drop guard
    /// calls [`WaitQueue::remove`] under the lock before the frame ends (module invariants).
    pub(crate) unsafe fn push(&mut self, node: &EntryNode<T>) {
        // SAFETY: the caller's contract is `push_back`'s.
        unsafe { self.0.push_back(node) };
    }

    /// Removes and claims the first entry not belonging to `me` whose waiter can still be
    /// selected; entries of waiters already selected elsewhere are unlinked on the way. The
    /// entry returned may be used only until its waiter is completed (`Waiter::complete`).
    ///
    /// # Safety
    /// The caller holds this queue's channel lock.
    pub(crate) unsafe fn claim_first(&mut self, me: *const Waiter) -> Option<&Entry<T>> {
        let mut cur = self.0.front();
        while let Some(node) = cur {
            // SAFETY: `node` is linked in this list, and we hold its lock.
            cur = unsafe { self.0.next(node) };
            // SAFETY: linked, so alive: its owner's guard needs our lock to withdraw it.
            let node = unsafe { node.as_ref() };
            let e = node.value();
            if e.waiter == me {
                // A select with a send and a receive on one channel never matches itself.
                continue;
            }
            // SAFETY: linked in this list, under its lock.
            unsafe { self.0.remove(node) };
            // SAFETY: we hold the lock: the owner cannot be past its guard (module invariants).
            if unsafe { e.waiter() }.try_select(Selection::Case(e.case)) {
                return Some(e);
            }
            // Its waiter was selected elsewhere, timed out or aborted: the entry is unlinked,
            // and its owner (who holds it) leaves once it takes our lock.
        }
        None
    }

    /// True if some entry of another waiter is queued (it may still lose its selection).
    pub(crate) fn has_other(&self, me: *const Waiter) -> bool {
        let mut cur = self.0.front();
        while let Some(node) = cur {
            // SAFETY: linked in this list, whose lock the caller holds (`&self` of the queue
            // comes from the channel's locked state).
            if unsafe { node.as_ref() }.value().waiter != me {
                return true;
            }
            // SAFETY: as above.
            cur = unsafe { self.0.next(node) };
        }
        false
    }

    /// Withdraws `node` if it is still queued. O(1).
    ///
    /// # Safety
    /// The caller holds this queue's channel lock; `node` is alive, and if queued, queued
    /// here.
    pub(crate) unsafe fn remove(&mut self, node: &EntryNode<T>) {
        // SAFETY: the caller's contract is `List::remove`'s.
        unsafe { self.0.remove(node) };
    }

    /// Unlinks and returns the first entry (for close). The same limits as for
    /// [`WaitQueue::claim_first`] apply to the entry.
    pub(crate) fn pop_front(&mut self) -> Option<&Entry<T>> {
        let node = self.0.pop_front()?;
        // SAFETY: just unlinked under the lock (`&mut self`); its owner cannot be past its
        // guard before it takes that lock or sees its waiter completed.
        Some(unsafe { node.as_ref() }.value())
    }

    /// Entries queued.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}
