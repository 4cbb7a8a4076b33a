//! Channels: Go's `hchan` (chan.go) with Rust's ownership on top.
//!
//! One lock per channel guards a FIFO buffer of up to `cap` values and two queues of blocked
//! operations (`recvq`, `sendq`: intrusive lists of entries that live in the blocked
//! goroutines' frames, any of which leaves in O(1); see `waiter.rs`, `list.rs`). `cap == 0` is
//! a rendezvous channel: a send completes only when a receiver takes the value, handed over
//! directly.
//!
//! Invariants (under the lock), as in chan.go:
//! - at least one of `recvq`/`sendq` holds no selectable entry of another waiter: a receiver
//!   arriving while a sender waits takes its value at once, and vice versa;
//! - `recvq` is non-empty only if the buffer is empty; `sendq` only if the buffer is full;
//! - once `closed`, both queues are empty and stay empty; receivers drain the buffer, then get
//!   `RecvError`; senders get their value back.
//!
//! Wake-ups happen after the lock is released (Go's rule: never ready a goroutine while holding
//! a channel lock; [`Locked`]'s drop does it). A woken goroutine goes home (`sched`'s
//! `scheduler/home.rs`): it runs next if the waker runs on its thread.
//!
//! Dropping the last `Sender` closes the channel. Dropping the last `Receiver` makes every send
//! fail (a value could never be received); blocked senders are woken with their value back.

use crate::loom::{AtomicBool, AtomicUsize, Ordering};
use std::mem::ManuallyDrop;
use std::sync::Arc;

use crate::shim::{self, Mutex, RawLock};
use sched::debug::WaitReason;
use std::time::{Duration, Instant};

use crate::error::{
    CloseError, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
use crate::list::Node;
use crate::waiter::{deadline_after, Entry, EntryNode, Selection, Slot, WaitQueue, Waiter};

/// The shared part of a channel.
pub(crate) struct Chan<T> {
    state: Mutex<State<T>>,
    cap: usize,
    /// Set once, by `close`, under the lock. Read under the lock (`Relaxed`: the lock orders
    /// it) or without it by `is_closed` (`Acquire`, pairing with the `Release` store).
    closed: AtomicBool,
    senders: AtomicUsize,
    receivers: AtomicUsize,
}

pub(crate) struct State<T> {
    buf: std::collections::VecDeque<T>,
    /// The peer an operation under the lock completed: woken once the lock is released
    /// ([`Locked`]'s drop, or the select that holds several locks). At most one per lock hold.
    woken: Option<shim::Unparker>,
    recvq: WaitQueue<T>,
    sendq: WaitQueue<T>,
}

/// Creates a channel of capacity `cap` and returns its two ends, like Go's `make(chan T, cap)`.
/// `cap == 0` makes a rendezvous (unbuffered) channel.
///
/// ```
/// let (tx, rx) = chan::chan(1);
/// tx.send("hello").unwrap();
/// assert_eq!(rx.recv(), Ok("hello"));
/// drop(tx); // the last sender closes the channel
/// assert!(rx.recv().is_err());
/// ```
pub fn chan<T: Send>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let c = Arc::new(Chan {
        state: Mutex::new(State {
            buf: std::collections::VecDeque::with_capacity(cap.min(1024)),
            woken: None,
            recvq: WaitQueue::new(),
            sendq: WaitQueue::new(),
        }),
        cap,
        closed: AtomicBool::new(false),
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
    });
    (Sender { c: c.clone() }, Receiver { c })
}

impl<T> State<T> {
    /// Records the peer an operation completed, to wake once the lock is released.
    fn wake_after_unlock(&mut self, u: shim::Unparker) {
        debug_assert!(
            self.woken.is_none(),
            "two peers completed under one lock hold"
        );
        self.woken = Some(u);
    }

    /// Takes the peer to wake (for a select that releases several locks itself).
    pub(crate) fn take_woken(&mut self) -> Option<shim::Unparker> {
        self.woken.take()
    }
}

/// A channel's lock, held. Dropping it releases the lock and then wakes the peer that an
/// operation completed under it (`State::woken`): Go's rule, never ready a goroutine while
/// holding a channel lock, written once for every operation that holds one lock.
pub(crate) struct Locked<'a, T> {
    guard: ManuallyDrop<shim::Guard<'a, State<T>>>,
}

impl<T> std::ops::Deref for Locked<'_, T> {
    type Target = State<T>;
    fn deref(&self) -> &State<T> {
        &self.guard
    }
}

impl<T> std::ops::DerefMut for Locked<'_, T> {
    fn deref_mut(&mut self) -> &mut State<T> {
        &mut self.guard
    }
}

impl<T> Drop for Locked<'_, T> {
    fn drop(&mut self) {
        let woken = self.guard.woken.take();
        // SAFETY: the guard is dropped here only, once; `self.guard` is not used after.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        if let Some(u) = woken {
            u.unpark();
        }
    }
}

/// What an attempt found, for callers that then block or give up.
pub(crate) enum Attempt<T> {
    Done,
    Closed(T),
    WouldBlock(T),
}

impl<T: Send> Chan<T> {
    /// Takes the channel lock. Dropping the returned guard releases it, then wakes the peer
    /// an operation completed under it.
    pub(crate) fn lock(&self) -> Locked<'_, T> {
        Locked {
            guard: ManuallyDrop::new(shim::lock(&self.state)),
        }
    }

    /// Whether the channel is closed; the caller holds the lock.
    fn closed_locked(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// The channel's lock word, for a select that locks several channels at once.
    pub(crate) fn raw_lock(&self) -> &RawLock {
        self.state.raw()
    }

    /// The state, while the caller holds [`Chan::raw_lock`].
    ///
    /// # Safety
    /// As for `shim::Mutex::data_locked`: the caller holds the lock and keeps one such
    /// reference at a time, none past the unlock.
    #[allow(clippy::mut_from_ref)] // the lock is what makes the reference unique
    pub(crate) unsafe fn state_locked(&self) -> &mut State<T> {
        // SAFETY: the caller's contract is `data_locked`'s.
        unsafe { self.state.data_locked() }
    }

    /// Sends without blocking, with the lock held. A receiver it completes is left in
    /// `st.woken`, to wake once the lock is released.
    pub(crate) fn try_send_locked(&self, st: &mut State<T>, v: T) -> Attempt<T> {
        if self.closed_locked() || self.receivers.load(Ordering::Acquire) == 0 {
            return Attempt::Closed(v);
        }
        // SAFETY: we hold the channel lock.
        if let Some(e) = unsafe { st.recvq.claim_first(std::ptr::null()) } {
            // SAFETY: we won the entry's selection and hold the lock: its slot is ours to fill.
            unsafe { e.slot().put(v) };
            // SAFETY: as above; `complete` is our last touch of the waiter.
            let u = unsafe { e.waiter() }.complete();
            st.wake_after_unlock(u);
            return Attempt::Done;
        }
        if st.buf.len() < self.cap {
            st.buf.push_back(v);
            return Attempt::Done;
        }
        Attempt::WouldBlock(v)
    }

    /// Receives without blocking, with the lock held. `Ok(None)` would block. A sender it
    /// completes is left in `st.woken`, to wake once the lock is released.
    pub(crate) fn try_recv_locked(&self, st: &mut State<T>) -> Result<Option<T>, RecvError> {
        if let Some(v) = st.buf.pop_front() {
            // A sender blocked on the full buffer moves its value into the freed place.
            // SAFETY: we hold the channel lock.
            if let Some(e) = unsafe { st.sendq.claim_first(std::ptr::null()) } {
                // SAFETY: we won the entry's selection and hold the lock.
                let sent = unsafe { e.slot().take() }.expect("blocked sender has a value");
                st.buf.push_back(sent);
                // SAFETY: as above; last touch of the waiter.
                let u = unsafe { e.waiter() }.complete();
                st.wake_after_unlock(u);
            }
            return Ok(Some(v));
        }
        // SAFETY: we hold the channel lock.
        if let Some(e) = unsafe { st.sendq.claim_first(std::ptr::null()) } {
            // SAFETY: we won the entry's selection and hold the lock.
            let v = unsafe { e.slot().take() }.expect("blocked sender has a value");
            // SAFETY: as above; last touch of the waiter.
            let u = unsafe { e.waiter() }.complete();
            st.wake_after_unlock(u);
            return Ok(Some(v));
        }
        if self.closed_locked() {
            return Err(RecvError);
        }
        Ok(None)
    }

    /// True if a receive by `me` could proceed now (a value, a waiting sender of another
    /// waiter, or a close). A waiting sender may turn out to be selected elsewhere already;
    /// the caller then polls again and finds out.
    pub(crate) fn recv_ready(&self, st: &State<T>, me: *const Waiter) -> bool {
        !st.buf.is_empty() || self.closed_locked() || st.sendq.has_other(me)
    }

    /// True if a send by `me` could proceed now (room, a waiting receiver of another waiter,
    /// or a close).
    pub(crate) fn send_ready(&self, st: &State<T>, me: *const Waiter) -> bool {
        self.closed_locked()
            || self.receivers.load(Ordering::Acquire) == 0
            || st.buf.len() < self.cap
            || st.recvq.has_other(me)
    }

    /// Queues a blocked operation: `node` on `sendq` if `send`, else on `recvq`.
    ///
    /// # Safety
    /// `st` is this channel's locked state; `node`, and the waiter and slot its entry points
    /// to, stay alive and in place until [`Chan::withdraw`] has been called for it (the
    /// caller's drop guard does so).
    pub(crate) unsafe fn enqueue(st: &mut State<T>, node: &EntryNode<T>, send: bool) {
        let q = if send { &mut st.sendq } else { &mut st.recvq };
        // SAFETY: the caller's contract is `push`'s.
        unsafe { q.push(node) };
    }

    /// Withdraws `node` (queued by [`Chan::enqueue`] with the same `send`) if it is still
    /// queued, under the lock: O(1). Once this returns, no peer is completing it (a peer
    /// completes an entry under this lock).
    pub(crate) fn withdraw(&self, node: &EntryNode<T>, send: bool) {
        let mut st = self.lock();
        let q = if send { &mut st.sendq } else { &mut st.recvq };
        // SAFETY: we hold the lock; `node` is alive (borrowed) and was queued only here.
        unsafe { q.remove(node) };
    }

    /// Closes the channel: wakes every blocked receiver (they get `RecvError` once the buffer
    /// is drained, which it is if they are blocked) and every blocked sender (value back).
    fn close(&self) -> Result<(), CloseError> {
        let mut woken = sched::ChunkedDeque::new();
        {
            let mut st = self.lock();
            if self.closed_locked() {
                return Err(CloseError);
            }
            self.closed.store(true, Ordering::Release);
            wake_all(&mut st.recvq, &mut woken);
            wake_all(&mut st.sendq, &mut woken);
        }
        for u in woken {
            u.unpark();
        }
        Ok(())
    }

    /// The last receiver is gone: blocked senders can never complete.
    fn receivers_gone(&self) {
        let mut woken = sched::ChunkedDeque::new();
        wake_all(&mut self.lock().sendq, &mut woken);
        for u in woken {
            u.unpark();
        }
    }

    fn send(&self, v: T) -> Result<(), SendError<T>> {
        match self.send_until(v, None) {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Closed(v)) => Err(SendError(v)),
            Err(SendTimeoutError::Timeout(_)) => unreachable!("no deadline"),
        }
    }

    fn send_until(&self, v: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        shim::preempt_point();
        let mut st = self.lock();
        let v = match self.try_send_locked(&mut st, v) {
            Attempt::Done => return Ok(()),
            Attempt::Closed(v) => return Err(SendTimeoutError::Closed(v)),
            Attempt::WouldBlock(v) => v,
        };
        if shim::stack_compaction() {
            return self.send_boxed(st, v, deadline);
        }
        let waiter = Waiter::new();
        let slot = Slot::new(Some(v));
        let node = Node::new(Entry::new(&waiter, &slot, 0));
        self.send_blocked(st, &waiter, &slot, &node, deadline)
    }

    /// `send_until`'s wait with its operation in a box (`Blocked`). Out of line: the default
    /// mode's path stays as it was.
    #[cold]
    #[inline(never)]
    fn send_boxed(
        &self,
        st: Locked<'_, T>,
        v: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let op = Box::new(Blocked::new(Some(v))).link();
        self.send_blocked(st, &op.waiter, &op.slot, &op.node, deadline)
    }

    /// Queues `node` (a send if `send`) under `st`, the lock, and blocks until a peer
    /// completed it (true) or `deadline` passed (false); on return the node is out of the
    /// queue either way. `node`, and the waiter and slot its entry points at, live in the
    /// caller's frame or its box (`Blocked`).
    #[inline(always)]
    fn block_queued(
        &self,
        mut st: Locked<'_, T>,
        waiter: &Waiter,
        node: &EntryNode<T>,
        send: bool,
        deadline: Option<Instant>,
    ) -> bool {
        // SAFETY: we hold the lock; `queued` (below, with nothing that can panic in between)
        // withdraws the node before we return, so before it or what it points at is gone.
        unsafe { Self::enqueue(&mut st, node, send) };
        drop(st);
        let queued = Queued {
            chan: self,
            waiter,
            node,
            send,
        };
        queued.block(deadline)
    }

    /// `send_until`'s wait, queued as `node` (wherever `Blocked` says it lives).
    #[inline(always)]
    fn send_blocked(
        &self,
        st: Locked<'_, T>,
        waiter: &Waiter,
        slot: &Slot<T>,
        node: &EntryNode<T>,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let completed = self.block_queued(st, waiter, node, true, deadline);
        // SAFETY: the guard is gone: our entry is out of the queue, and a peer that completed
        // it finished before the guard saw `done` or took the lock: the slot is ours alone.
        let closed = unsafe { slot.is_closed() };
        match (completed, closed) {
            (true, false) => Ok(()),
            // SAFETY: as above.
            (true, true) => Err(SendTimeoutError::Closed(
                unsafe { slot.take() }.expect("value returned on close"),
            )),
            // SAFETY: as above.
            (false, _) => Err(SendTimeoutError::Timeout(
                unsafe { slot.take() }.expect("unsent"),
            )),
        }
    }

    fn recv(&self) -> Result<T, RecvError> {
        match self.recv_until(None) {
            Ok(v) => Ok(v),
            Err(RecvTimeoutError::Closed) => Err(RecvError),
            Err(RecvTimeoutError::Timeout) => unreachable!("no deadline"),
        }
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        shim::preempt_point();
        let mut st = self.lock();
        match self.try_recv_locked(&mut st) {
            Ok(Some(v)) => return Ok(v),
            Err(RecvError) => return Err(RecvTimeoutError::Closed),
            Ok(None) => {}
        }
        if shim::stack_compaction() {
            return self.recv_boxed(st, deadline);
        }
        let waiter = Waiter::new();
        let slot = Slot::new(None);
        let node = Node::new(Entry::new(&waiter, &slot, 0));
        self.recv_blocked(st, &waiter, &slot, &node, deadline)
    }

    /// `recv_until`'s wait with its operation in a box (`Blocked`); out of line.
    #[cold]
    #[inline(never)]
    fn recv_boxed(
        &self,
        st: Locked<'_, T>,
        deadline: Option<Instant>,
    ) -> Result<T, RecvTimeoutError> {
        let op = Box::new(Blocked::new(None)).link();
        self.recv_blocked(st, &op.waiter, &op.slot, &op.node, deadline)
    }

    /// `recv_until`'s wait, queued as `node` (wherever `Blocked` says it lives).
    #[inline(always)]
    fn recv_blocked(
        &self,
        st: Locked<'_, T>,
        waiter: &Waiter,
        slot: &Slot<T>,
        node: &EntryNode<T>,
        deadline: Option<Instant>,
    ) -> Result<T, RecvTimeoutError> {
        if !self.block_queued(st, waiter, node, false, deadline) {
            return Err(RecvTimeoutError::Timeout);
        }
        // SAFETY: the guard is gone and the peer that completed us finished with the slot
        // before `done`, which `block` saw.
        unsafe { slot.take() }.ok_or(RecvTimeoutError::Closed)
    }

    fn len(&self) -> usize {
        self.lock().buf.len()
    }

    /// Entries queued: (blocked receives, blocked sends).
    fn queue_lens(&self) -> (usize, usize) {
        let st = self.lock();
        (st.recvq.len(), st.sendq.len())
    }
}

/// What a blocked single operation leaves where its peers reach it: its waiter, the slot its
/// value waits in or lands in, and its queue entry, boxed together while parked stacks may be
/// compacted (`sched::stack_compaction`), so that a peer never touches the stack of a
/// goroutine whose stack may have been released (`docs/SOUNDNESS.md`, "Parked stacks stay
/// resident"). Otherwise the three are locals of the blocked goroutine's frame.
struct Blocked<T> {
    waiter: Waiter,
    slot: Slot<T>,
    node: EntryNode<T>,
}

impl<T> Blocked<T> {
    fn new(value: Option<T>) -> Blocked<T> {
        Blocked {
            waiter: Waiter::new(),
            slot: Slot::new(value),
            node: Node::new(Entry::unset()),
        }
    }

    /// Points the entry at the waiter and the slot, which the box keeps in place.
    fn link(mut self: Box<Self>) -> Box<Self> {
        let entry = Entry::new(&self.waiter, &self.slot, 0);
        *self.node.value_mut() = entry;
        self
    }
}

/// The calling goroutine's single operation, queued on `chan` for `waiter`: the drop guard
/// that withdraws it. Made right after the entry is queued, so the entry cannot outlive the
/// frame holding the waiter and slot, however the frame is left: return, timeout, or a panic
/// while parked (`waiter.rs`, lifetime invariants).
struct Queued<'a, T: Send> {
    chan: &'a Chan<T>,
    waiter: &'a Waiter,
    node: &'a EntryNode<T>,
    /// Which queue: `sendq` if true, else `recvq`.
    send: bool,
}

impl<T: Send> Queued<'_, T> {
    /// Blocks until a peer completed the operation (true), or the deadline passed and we
    /// claimed the waiter for ourselves (false; dropping the guard then removes the entry).
    fn block(&self, deadline: Option<Instant>) -> bool {
        let reason = if self.send {
            WaitReason::ChanSend
        } else {
            WaitReason::ChanReceive
        };
        self.waiter.wait_for(deadline, reason) != Selection::TimedOut
    }
}

impl<T: Send> Drop for Queued<'_, T> {
    fn drop(&mut self) {
        if shim::model_torn_down() || self.waiter.is_done() {
            return; // The winner removed our entry and is done with the frame.
        }
        // Timed out (already claimed) or unwinding: claim the waiter so no peer completes the
        // operation from now on (fails if one already did), then remove the entry. Taking the
        // lock also waits out a peer that claimed us and is still completing (it does so under
        // the lock).
        let _ = self.waiter.try_select(Selection::Aborted);
        self.chan.withdraw(self.node, self.send);
    }
}

/// Completes every entry of `q` as "closed" and collects their unparkers.
/// (`woken` is chunked: a close that wakes a burst's waiters leaves no block of megabytes
/// behind in the allocator, `sched`'s `chunked.rs`.)
fn wake_all<T>(q: &mut WaitQueue<T>, woken: &mut sched::ChunkedDeque<shim::Unparker>) {
    while let Some(e) = q.pop_front() {
        // SAFETY: the caller holds the channel lock (entries' waiters are alive).
        let w = unsafe { e.waiter() };
        if w.try_select(Selection::Case(e.case)) {
            // SAFETY: we won the selection and hold the lock.
            unsafe { e.slot().set_closed() };
            woken.push_back(w.complete());
        }
    }
}

/// The sending end of a channel (Go's `chan<- T`). Clone it for more senders; the channel
/// closes when the last one is dropped (or when any calls [`close`](Sender::close)).
///
/// ```
/// let (tx, rx) = chan::chan(0);
/// let t = std::thread::spawn(move || tx.send(7).unwrap());
/// assert_eq!(rx.recv(), Ok(7)); // rendezvous: the send completes when we take the value
/// t.join().unwrap();
/// ```
pub struct Sender<T: Send> {
    c: Arc<Chan<T>>,
}

/// The receiving end of a channel (Go's `<-chan T`). Clone it for more receivers (each value
/// goes to exactly one). `for v in &rx` receives until the channel is closed and drained.
///
/// ```
/// let (tx, rx) = chan::chan(3);
/// for i in 0..3 {
///     tx.send(i).unwrap();
/// }
/// drop(tx);
/// assert_eq!((&rx).into_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
/// ```
pub struct Receiver<T: Send> {
    c: Arc<Chan<T>>,
}

impl<T: Send> Sender<T> {
    /// Sends `v`, blocking (parking) until a receiver takes it or the buffer has room. Returns
    /// the value back if the channel is closed or every receiver is gone.
    ///
    /// ```
    /// let (tx, rx) = chan::chan(1);
    /// tx.send(1).unwrap();
    /// tx.close().unwrap();
    /// assert_eq!(tx.send(2).unwrap_err().into_inner(), 2);
    /// assert_eq!(rx.recv(), Ok(1));
    /// ```
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        self.c.send(v)
    }

    /// Sends `v` only if that needs no waiting.
    ///
    /// ```
    /// let (tx, _rx) = chan::chan(1);
    /// assert!(tx.try_send(1).is_ok());
    /// assert!(matches!(tx.try_send(2), Err(chan::TrySendError::Full(2))));
    /// ```
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        shim::preempt_point();
        match self.c.try_send_locked(&mut self.c.lock(), v) {
            Attempt::Done => Ok(()),
            Attempt::Closed(v) => Err(TrySendError::Closed(v)),
            Attempt::WouldBlock(v) => Err(TrySendError::Full(v)),
        }
    }

    /// Like [`send`](Sender::send), but gives up after `timeout` (a timeout too long to be an
    /// `Instant`, such as `Duration::MAX`, waits without one).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, _rx) = chan::chan(0);
    /// let r = tx.send_timeout(1, Duration::from_millis(1));
    /// assert!(matches!(r, Err(chan::SendTimeoutError::Timeout(1))));
    /// ```
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.c.send_until(v, deadline_after(timeout))
    }

    /// Like [`send`](Sender::send), but gives up at `deadline`.
    pub fn send_deadline(&self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.c.send_until(v, Some(deadline))
    }

    /// Closes the channel (Go's `close(ch)`): receivers drain the buffer, then get
    /// `RecvError`; blocked and later senders get their value back. A second close is an
    /// error.
    ///
    /// ```
    /// let (tx, rx) = chan::chan::<i32>(0);
    /// assert!(tx.close().is_ok());
    /// assert_eq!(tx.close(), Err(chan::CloseError));
    /// assert!(rx.recv().is_err());
    /// ```
    pub fn close(&self) -> Result<(), CloseError> {
        self.c.close()
    }

    /// True once the channel is closed.
    pub fn is_closed(&self) -> bool {
        self.c.closed.load(Ordering::Acquire)
    }

    /// Values in the buffer.
    pub fn len(&self) -> usize {
        self.c.len()
    }

    /// True if the buffer holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's capacity (0 for a rendezvous channel).
    pub fn capacity(&self) -> usize {
        self.c.cap
    }

    /// Blocked operations queued on the channel: (receives, sends). For tests that check that
    /// a waiter leaves nothing behind; not part of the API.
    #[doc(hidden)]
    pub fn queue_lens(&self) -> (usize, usize) {
        self.c.queue_lens()
    }

    pub(crate) fn chan(&self) -> &Arc<Chan<T>> {
        &self.c
    }

    /// True if both are ends of the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.c, &other.c)
    }
}

impl<T: Send> Receiver<T> {
    /// Receives a value, blocking (parking) until one is available. `Err(RecvError)` once the
    /// channel is closed and drained: Go's `v, ok := <-ch`.
    ///
    /// ```
    /// let (tx, rx) = chan::chan(1);
    /// tx.send(5).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv(), Ok(5));
    /// assert_eq!(rx.recv(), Err(chan::RecvError));
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        self.c.recv()
    }

    /// Receives a value only if that needs no waiting.
    ///
    /// ```
    /// let (tx, rx) = chan::chan(1);
    /// assert_eq!(rx.try_recv(), Err(chan::TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        shim::preempt_point();
        match self.c.try_recv_locked(&mut self.c.lock()) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(TryRecvError::Empty),
            Err(RecvError) => Err(TryRecvError::Closed),
        }
    }

    /// Like [`recv`](Receiver::recv), but gives up after `timeout` (a timeout too long to be
    /// an `Instant`, such as `Duration::MAX`, waits without one).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (_tx, rx) = chan::chan::<i32>(0);
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(chan::RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.c.recv_until(deadline_after(timeout))
    }

    /// Like [`recv`](Receiver::recv), but gives up at `deadline`.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.c.recv_until(Some(deadline))
    }

    /// A receiver that never receives and is never closed: Go's nil channel. In a `select!`
    /// its case never fires; a plain `recv` on it blocks forever.
    ///
    /// ```
    /// let never = chan::Receiver::<i32>::never();
    /// assert_eq!(never.try_recv(), Err(chan::TryRecvError::Empty));
    /// ```
    pub fn never() -> Receiver<T> {
        let (tx, rx) = chan(0);
        // The sender count stays at one forever: the channel can never close.
        std::mem::forget(tx);
        rx
    }

    /// True once the channel is closed (values may still be buffered).
    pub fn is_closed(&self) -> bool {
        self.c.closed.load(Ordering::Acquire)
    }

    /// Values in the buffer.
    pub fn len(&self) -> usize {
        self.c.len()
    }

    /// True if the buffer holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's capacity (0 for a rendezvous channel).
    pub fn capacity(&self) -> usize {
        self.c.cap
    }

    /// An iterator that receives until the channel is closed and drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// Blocked operations queued on the channel: (receives, sends). For tests that check that
    /// a waiter leaves nothing behind; not part of the API.
    #[doc(hidden)]
    pub fn queue_lens(&self) -> (usize, usize) {
        self.c.queue_lens()
    }

    pub(crate) fn chan(&self) -> &Arc<Chan<T>> {
        &self.c
    }

    /// True if both are ends of the same channel.
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.c, &other.c)
    }
}

impl<T: Send> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.c.senders.fetch_add(1, Ordering::Relaxed);
        Sender { c: self.c.clone() }
    }
}

impl<T: Send> Clone for Receiver<T> {
    fn clone(&self) -> Receiver<T> {
        self.c.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver { c: self.c.clone() }
    }
}

impl<T: Send> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.c.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.c.close();
        }
    }
}

impl<T: Send> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.c.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.c.receivers_gone();
        }
    }
}

impl<T: Send> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("cap", &self.c.cap).finish()
    }
}

impl<T: Send> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("cap", &self.c.cap)
            .finish()
    }
}

/// Receives until the channel is closed and drained (`for v in &rx`).
pub struct Iter<'a, T: Send> {
    rx: &'a Receiver<T>,
}

impl<T: Send> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T: Send> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// Receives until the channel is closed and drained, owning the receiver.
pub struct IntoIter<T: Send> {
    rx: Receiver<T>,
}

impl<T: Send> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T: Send> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

/// Every sender and receiver is a spawned thread; the model's own thread only sets up, joins
/// and checks (tokio-rs/loom#392: see HACKING.md).
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::thread;

    /// Rendezvous: the value a sender hands over is received exactly once, whatever the
    /// interleaving of the sender's and receiver's lock, enqueue and park.
    #[test]
    fn rendezvous_hand_off() {
        loom::model(|| {
            let (tx, rx) = chan::<u32>(0);
            let t = thread::spawn(move || tx.send(7).unwrap());
            let r = thread::spawn(move || assert_eq!(rx.recv(), Ok(7)));
            r.join().unwrap();
            t.join().unwrap();
        });
    }

    /// A receive that times out at once (its deadline has passed when it has queued) racing
    /// a sender: the sender either claims the queued entry before the receiver withdraws it
    /// (the receive gets the value) or finds it gone and queues itself (a second receive gets
    /// the value). Never both, never lost, and no entry is left behind: the O(1) withdrawal
    /// against the waker's claim, under every interleaving.
    #[test]
    fn timed_out_receive_races_sender() {
        loom::model(|| {
            let (tx, rx) = chan::<u32>(0);
            let t = thread::spawn(move || tx.send(7).unwrap());
            let r = thread::spawn(move || {
                match rx.recv_deadline(std::time::Instant::now()) {
                    Ok(v) => assert_eq!(v, 7),
                    Err(RecvTimeoutError::Timeout) => assert_eq!(rx.recv(), Ok(7)),
                    Err(e) => panic!("unexpected {e:?}"),
                }
                rx
            });
            let rx = r.join().unwrap();
            t.join().unwrap();
            assert_eq!(rx.queue_lens(), (0, 0), "entry left behind");
        });
    }

    /// Buffered send/recv with close: values sent before the close are all received, in
    /// order, then the receiver sees the close; nothing is lost or woken twice.
    #[test]
    fn buffered_with_close() {
        loom::model(|| {
            let (tx, rx) = chan::<u32>(1);
            let t = thread::spawn(move || {
                tx.send(1).unwrap();
                tx.send(2).unwrap();
                drop(tx); // the last sender closes the channel
            });
            let r = thread::spawn(move || {
                assert_eq!(rx.recv(), Ok(1));
                assert_eq!(rx.recv(), Ok(2));
                assert_eq!(rx.recv(), Err(RecvError));
            });
            r.join().unwrap();
            t.join().unwrap();
        });
    }
}
