//! `select`: wait on several channel operations, complete exactly one (Go's select.go).
//!
//! The cases are looked at in a random order (a fresh permutation per select: when several are
//! ready, each is chosen with equal probability).
//!
//! With a `default` case (Go's non-blocking select): lock every case's channel, in address
//! order and each channel once (Go's `sellock`), complete the first case that can proceed,
//! unlock, and take `default` if none could. Holding all the locks makes the poll one instant:
//! `default` runs only if no case was ready at that instant. (Looking at the cases one lock at
//! a time can see `c2` empty before a send and then `c1` empty after a receive, although one
//! of them held a value throughout: Go's TestNonblockSelectRace.) No other code holds two
//! channel locks, so the address order is the whole lock order.
//!
//! Without `default`:
//! 1. Poll: lock each case's channel in turn and complete the first case that can proceed
//!    without waiting. Done.
//! 2. Register: create one `Waiter` and, channel by channel (each under its lock), queue an
//!    entry for each case, unless the case has become ready since the poll (a peer arrived in
//!    between). Then the waiter aborts itself (it wins its own selection with `Aborted`, so no
//!    peer can complete a case for it any more), unregisters, and starts again at 1; if a peer
//!    selected it first, it waits for that peer instead (crossbeam-channel's approach).
//! 3. Wait until a peer completes one case for us (`done`), or the deadline passes and we win
//!    our own selection with `TimedOut` (`Waiter::wait_for`, the one blocking path of
//!    channel operations and selects).
//! 4. Unregister: remove our remaining entries from every channel, under each lock, before
//!    returning (so no peer can reach our stack frame afterwards).
//!
//! Unlike Go, a blocking select never holds two channel locks: the waiter's selection CAS is
//! what makes "exactly one case fires" hold, even when two selects race for the same sender.
//! Its one-lock-at-a-time poll is enough because blocking is not a claim about one instant: a
//! case found not ready in step 1 is looked at again, under its lock, when step 2 queues it,
//! and from then on any peer that makes it ready finds the entry and completes it. A
//! `select_timeout` likewise reports a timeout only after a whole registered wait. So the
//! blocking path pays one lock per case, as before, and only `default` pays for holding all.

use std::any::TypeId;
use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::channel::{Attempt, Chan, Receiver, Sender, State};
use crate::error::{RecvError, SendError};
use crate::list::Node;
use crate::shim::{RawLock, Unparker};
use crate::waiter::{deadline_after, Entry, EntryNode, Selection, Slot, Waiter};
use sched::debug::WaitReason;

/// Seals [`Case`]: only this crate's case types implement it.
mod sealed {
    /// Implemented by [`RecvCase`](super::RecvCase) and [`SendCase`](super::SendCase) only.
    pub trait Sealed {}
}

/// One case of a select, type-erased. Implemented by [`RecvCase`] and [`SendCase`] only: the
/// trait is sealed, because `run_select` trusts its contract for soundness. `register` queues
/// an entry (a list node inside the case) that points into the case (its slot) and at the
/// waiter; `unregister` must withdraw it under the channel's lock before it returns; and
/// `finish` runs only once it is withdrawn. An outside implementation could break that
/// and leave a channel pointing into a dead frame, so there is none.
#[doc(hidden)]
pub trait Case: sealed::Sealed {
    /// Completes the case if it can proceed now, under its channel's lock. Used in the poll
    /// pass of a select without `default`.
    fn try_now(&mut self) -> bool;
    /// The lock of this case's channel (`None` for a nil channel), for a select with
    /// `default`, which takes all its cases' locks before polling them with
    /// [`Case::try_locked`]. It lives as long as the channel end the case borrows.
    fn raw_lock(&self) -> Option<&RawLock>;
    /// As [`Case::try_now`], with the channel's lock already held by the caller. Returns
    /// whether the case fired, and the peer it completed, to wake once the locks are released.
    ///
    /// # Safety
    /// The caller holds this case's [`Case::raw_lock`].
    unsafe fn try_locked(&mut self) -> (bool, Option<Unparker>);
    /// Queues the case for `me` as case `index`, unless it became ready since the poll (then
    /// returns false and queues nothing).
    #[doc(hidden)]
    fn register(&mut self, me: &Waiter, index: usize) -> bool;
    /// Withdraws the entry `register` queued, if it is still queued, under the channel's lock.
    #[doc(hidden)]
    fn unregister(&mut self);
    /// A peer completed this case for us: collect the result from the slot.
    fn finish(&mut self);
    /// The result type, for the dynamic [`Select`]'s checked downcast.
    fn result_type(&self) -> TypeId;
    /// A pointer to the `Option<Result>` this case produced.
    fn result_ptr(&mut self) -> *mut ();
}

/// A case's slot, where its value waits or lands, and the entry `register` queues (pointing
/// at the slot and the waiter).
struct Parts<T> {
    slot: Slot<T>,
    node: EntryNode<T>,
}

impl<T> Parts<T> {
    fn new(value: Option<T>) -> Parts<T> {
        Parts {
            slot: Slot::new(value),
            node: Node::new(Entry::unset()),
        }
    }
}

/// Where a case's [`Parts`] live: in the case, in the selecting goroutine's frame, or, while
/// parked stacks may be compacted (`sched::stack_compaction`), moved into a box of their own
/// as the case registers, so that a peer never touches the stack of a goroutine whose stack
/// may have been released (`docs/SOUNDNESS.md`, "Parked stacks stay resident").
enum Place<T> {
    Here(Parts<T>),
    Boxed(Box<Parts<T>>),
}

impl<T> Place<T> {
    #[inline]
    fn get(&self) -> &Parts<T> {
        match self {
            Place::Here(p) => p,
            Place::Boxed(b) => b,
        }
    }

    #[inline]
    fn get_mut(&mut self) -> &mut Parts<T> {
        match self {
            Place::Here(p) => p,
            Place::Boxed(b) => b,
        }
    }

    /// The parts, where they stay while registered: boxed first if stacks may be compacted.
    /// Only before registering: the parts are not linked yet, so they may move.
    fn settle(&mut self) -> &mut Parts<T> {
        if crate::shim::stack_compaction() && matches!(self, Place::Here(_)) {
            if let Place::Here(parts) = std::mem::replace(self, Place::Here(Parts::new(None))) {
                *self = Place::Boxed(Box::new(parts));
            }
        }
        self.get_mut()
    }
}

/// A receive case: `recv(rx) -> v`.
#[doc(hidden)]
pub struct RecvCase<'a, T: Send> {
    rx: Option<&'a Receiver<T>>,
    parts: Place<T>,
    result: Option<Result<T, RecvError>>,
}

/// A send case: `send(tx, value) -> res`.
#[doc(hidden)]
pub struct SendCase<'a, T: Send> {
    tx: Option<&'a Sender<T>>,
    parts: Place<T>,
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T: Send> RecvCase<'a, T> {
    /// A receive from `rx` (`None`: Go's nil channel, never ready).
    pub fn new(rx: Option<&'a Receiver<T>>) -> Self {
        RecvCase {
            rx,
            parts: Place::Here(Parts::new(None)),
            result: None,
        }
    }

    /// True if this case fired.
    pub fn fired(&self) -> bool {
        self.result.is_some()
    }

    /// The received value (`Err` if the channel was closed and drained).
    pub fn take(&mut self) -> Result<T, RecvError> {
        self.result.take().expect("select case fired")
    }
}

impl<'a, T: Send> SendCase<'a, T> {
    /// A send of `v` on `tx` (`None`: Go's nil channel, never ready).
    pub fn new(tx: Option<&'a Sender<T>>, v: T) -> Self {
        SendCase {
            tx,
            parts: Place::Here(Parts::new(Some(v))),
            result: None,
        }
    }

    /// True if this case fired.
    pub fn fired(&self) -> bool {
        self.result.is_some()
    }

    /// `Ok` if sent, or the value back if the channel was closed.
    pub fn take(&mut self) -> Result<(), SendError<T>> {
        self.result.take().expect("select case fired")
    }

    /// The value, if this case did not fire: called after the select returned (another case
    /// won, or its deadline or `default`), so the value was never sent and comes back.
    pub fn take_unsent(&mut self) -> Option<T> {
        if self.fired() {
            return None;
        }
        // SAFETY: `run_select` has returned, and with it every entry of this case was
        // withdrawn from its channel (the selection's drop guards: `waiter.rs`): no peer can
        // reach the slot any more, so it is ours again, as before registration.
        unsafe { self.parts.get().slot.take() }
    }
}

impl<T: Send> RecvCase<'_, T> {
    /// The poll of one receive case with `c`'s lock held (`st`).
    fn attempt(&mut self, c: &Chan<T>, st: &mut State<T>) -> bool {
        match c.try_recv_locked(st) {
            Ok(None) => false,
            Ok(Some(v)) => {
                self.result = Some(Ok(v));
                true
            }
            Err(e) => {
                self.result = Some(Err(e));
                true
            }
        }
    }
}

impl<T: Send> sealed::Sealed for RecvCase<'_, T> {}

impl<T: Send + 'static> Case for RecvCase<'_, T> {
    fn try_now(&mut self) -> bool {
        let Some(rx) = self.rx else { return false };
        let c: &Chan<T> = rx.chan();
        self.attempt(c, &mut c.lock())
    }

    fn raw_lock(&self) -> Option<&RawLock> {
        self.rx.map(|rx| rx.chan().raw_lock())
    }

    unsafe fn try_locked(&mut self) -> (bool, Option<Unparker>) {
        let Some(rx) = self.rx else {
            return (false, None);
        };
        let c: &Chan<T> = rx.chan();
        // SAFETY: the caller holds `c`'s lock; this is the only reference to its state now.
        let st = unsafe { c.state_locked() };
        let fired = self.attempt(c, st);
        (fired, st.take_woken())
    }

    fn register(&mut self, me: &Waiter, index: usize) -> bool {
        let Some(rx) = self.rx else { return true };
        let c: &Chan<T> = rx.chan();
        let mut st = c.lock();
        if c.recv_ready(&st, me) {
            return false;
        }
        let parts = self.parts.settle();
        *parts.node.value_mut() = Entry::new(me, &parts.slot, index);
        // SAFETY: we hold the lock. The case (and its parts, in it or boxed) is borrowed in
        // place by `run_select` until its `Registration` guard has called `unregister` (on
        // every path out), and the waiter outlives that guard.
        unsafe { Chan::enqueue(&mut st, &parts.node, false) };
        true
    }

    fn unregister(&mut self) {
        if let Some(rx) = self.rx {
            rx.chan().withdraw(&self.parts.get().node, false);
        }
    }

    fn finish(&mut self) {
        // SAFETY: the winner published `done` (observed with acquire) and touches the slot no
        // more; we also removed our entries, so no peer can reach it.
        let v = unsafe { self.parts.get().slot.take() };
        self.result = Some(v.ok_or(RecvError));
    }

    fn result_type(&self) -> TypeId {
        TypeId::of::<Result<T, RecvError>>()
    }

    fn result_ptr(&mut self) -> *mut () {
        (&mut self.result as *mut Option<Result<T, RecvError>>).cast()
    }
}

impl<T: Send> SendCase<'_, T> {
    /// The poll of one send case with `c`'s lock held (`st`).
    fn attempt(&mut self, c: &Chan<T>, st: &mut State<T>) -> bool {
        // SAFETY: the slot is ours until registered.
        let v = unsafe { self.parts.get().slot.take() }.expect("send case holds its value");
        match c.try_send_locked(st, v) {
            Attempt::Done => {
                self.result = Some(Ok(()));
                true
            }
            Attempt::Closed(v) => {
                self.result = Some(Err(SendError(v)));
                true
            }
            Attempt::WouldBlock(v) => {
                // SAFETY: still unregistered: the slot is ours.
                unsafe { self.parts.get().slot.put(v) };
                false
            }
        }
    }
}

impl<T: Send> sealed::Sealed for SendCase<'_, T> {}

impl<T: Send + 'static> Case for SendCase<'_, T> {
    fn try_now(&mut self) -> bool {
        let Some(tx) = self.tx else { return false };
        let c: &Chan<T> = tx.chan();
        self.attempt(c, &mut c.lock())
    }

    fn raw_lock(&self) -> Option<&RawLock> {
        self.tx.map(|tx| tx.chan().raw_lock())
    }

    unsafe fn try_locked(&mut self) -> (bool, Option<Unparker>) {
        let Some(tx) = self.tx else {
            return (false, None);
        };
        let c: &Chan<T> = tx.chan();
        // SAFETY: the caller holds `c`'s lock; this is the only reference to its state now.
        let st = unsafe { c.state_locked() };
        let fired = self.attempt(c, st);
        (fired, st.take_woken())
    }

    fn register(&mut self, me: &Waiter, index: usize) -> bool {
        let Some(tx) = self.tx else { return true };
        let c: &Chan<T> = tx.chan();
        let mut st = c.lock();
        if c.send_ready(&st, me) {
            return false;
        }
        let parts = self.parts.settle();
        *parts.node.value_mut() = Entry::new(me, &parts.slot, index);
        // SAFETY: as in `RecvCase::register`.
        unsafe { Chan::enqueue(&mut st, &parts.node, true) };
        true
    }

    fn unregister(&mut self) {
        if let Some(tx) = self.tx {
            tx.chan().withdraw(&self.parts.get().node, true);
        }
    }

    fn finish(&mut self) {
        let slot = &self.parts.get().slot;
        // SAFETY: as in `RecvCase::finish`. A receiver took the value (slot empty) or a closer
        // marked the slot closed and left the value for us.
        self.result = Some(if unsafe { slot.is_closed() } {
            // SAFETY: as above.
            Err(SendError(
                unsafe { slot.take() }.expect("value returned on close"),
            ))
        } else {
            Ok(())
        });
    }

    fn result_type(&self) -> TypeId {
        TypeId::of::<Result<(), SendError<T>>>()
    }

    fn result_ptr(&mut self) -> *mut () {
        (&mut self.result as *mut Option<Result<(), SendError<T>>>).cast()
    }
}

/// Up to this many cases a select keeps its scratch arrays (poll order, locks) on the stack.
const INLINE_CASES: usize = 16;

/// Runs the select protocol over `cases`. Returns the index of the case that fired, or `None`
/// if `has_default` and none was ready, or if `deadline` passed.
#[doc(hidden)]
pub fn run_select(
    cases: &mut [&mut dyn Case],
    has_default: bool,
    deadline: Option<Instant>,
) -> Option<usize> {
    // Go's for-select busy loop (a `default` case, nothing ready) must not starve the others.
    crate::shim::preempt_point();
    let mut inline = [0usize; INLINE_CASES];
    let mut heap = Vec::new();
    let order = scratch(&mut inline, &mut heap, cases.len(), 0);
    random_order(order);
    if has_default {
        return poll_all_locked(cases, order);
    }
    loop {
        for &i in order.iter() {
            if cases[i].try_now() {
                return Some(i);
            }
        }
        if cases.is_empty() && deadline.is_none() {
            block_forever();
        }
        // In the frame, or boxed while stacks may be compacted (as the cases' parts: `Place`).
        let (boxed, on_stack);
        let waiter: &Waiter = if crate::shim::stack_compaction() {
            boxed = Box::new(Waiter::new());
            &boxed
        } else {
            on_stack = Waiter::new();
            &on_stack
        };
        let mut reg = Registration {
            cases: &mut *cases,
            order,
            count: 0,
            waiter,
        };
        if !reg.register_all() && waiter.try_select(Selection::Aborted) {
            continue; // A case became ready: `reg` withdraws the others; poll again.
        }
        let chosen = match waiter.wait_for(deadline, WaitReason::Select) {
            Selection::Case(i) => Some(i),
            _ => None,
        };
        drop(reg);
        if let Some(i) = chosen {
            cases[i].finish();
        }
        return chosen;
    }
}

/// The cases a blocking select has queued for `waiter` (the first `count` of `order`): the
/// drop guard that withdraws them. It exists from the first registration on, so no entry can
/// outlive the frame holding the waiter and the cases' slots, however the frame is left:
/// return, timeout, a case found ready while registering, or a panic while parked
/// (`waiter.rs`, lifetime invariants).
struct Registration<'r, 'c> {
    cases: &'r mut [&'c mut dyn Case],
    order: &'r [usize],
    count: usize,
    waiter: &'r Waiter,
}

impl Registration<'_, '_> {
    /// Queues the cases in `order`; stops at the first that became ready since the poll
    /// (false).
    fn register_all(&mut self) -> bool {
        while self.count < self.order.len() {
            let i = self.order[self.count];
            if !self.cases[i].register(self.waiter, i) {
                return false;
            }
            self.count += 1;
        }
        true
    }
}

impl Drop for Registration<'_, '_> {
    fn drop(&mut self) {
        if crate::shim::model_torn_down() {
            return;
        }
        let fired = if self.waiter.is_done() {
            // The winner removed the fired case's entry and is done with the frame.
            match self.waiter.selected() {
                Selection::Case(i) => Some(i),
                _ => None,
            }
        } else {
            // Claim the waiter so no peer completes a case from now on (fails if we already
            // did: timed out or aborted; or if a peer did and is still completing: then taking
            // its channel's lock below waits it out).
            let _ = self.waiter.try_select(Selection::Aborted);
            None
        };
        for &i in &self.order[..self.count] {
            if Some(i) != fired {
                self.cases[i].unregister();
            }
        }
    }
}

/// The first `n` places of `inline`, or of `heap` filled to `n` with `fill` if `inline` is too
/// short.
fn scratch<'s, T: Copy>(
    inline: &'s mut [T],
    heap: &'s mut Vec<T>,
    n: usize,
    fill: T,
) -> &'s mut [T] {
    if n <= inline.len() {
        &mut inline[..n]
    } else {
        heap.resize(n, fill);
        heap
    }
}

/// The non-blocking select: with every case's channel locked (each once, in address order),
/// completes the first case in `order` that can proceed. `None`: no case was ready at that one
/// instant, so `default` is right.
fn poll_all_locked(cases: &mut [&mut dyn Case], order: &[usize]) -> Option<usize> {
    let mut inline = [std::ptr::null::<RawLock>(); INLINE_CASES];
    let mut heap = Vec::new();
    let locks = scratch(&mut inline, &mut heap, cases.len(), std::ptr::null());
    let mut n = 0;
    for case in cases.iter() {
        if let Some(lock) = case.raw_lock() {
            locks[n] = lock;
            n += 1;
        }
    }
    // SAFETY: each lock lives in a channel that the case's channel end keeps alive, and the
    // cases borrow their ends for longer than this call.
    let held = unsafe { HeldLocks::lock_all(&mut locks[..n]) };
    let mut fired = None;
    for &i in order {
        // SAFETY: `held` holds every case's channel lock, this one's included.
        let (ready, woken) = unsafe { cases[i].try_locked() };
        if ready {
            fired = Some((i, woken));
            break;
        }
    }
    drop(held);
    // The one place a wake-up is not `Locked`'s: this select releases several locks itself.
    let (i, woken) = fired?;
    if let Some(u) = woken {
        u.unpark();
    }
    Some(i)
}

/// Channel locks held together, taken in address order, each once; all released on drop (also
/// if a poll panics, so no channel stays locked).
struct HeldLocks<'l> {
    locks: &'l [*const RawLock],
}

impl<'l> HeldLocks<'l> {
    /// Sorts `locks` by address, drops repeats (a channel in several cases), and takes them in
    /// that order: the one global order in which any code holds two channel locks.
    ///
    /// # Safety
    /// Every pointer is to a live lock that outlives the returned value.
    unsafe fn lock_all(locks: &'l mut [*const RawLock]) -> HeldLocks<'l> {
        locks.sort_unstable();
        let mut unique = 0;
        for i in 0..locks.len() {
            if unique == 0 || locks[i] != locks[unique - 1] {
                locks[unique] = locks[i];
                unique += 1;
            }
        }
        let locks = &locks[..unique];
        for &lock in locks {
            // SAFETY: live for as long as `HeldLocks` (the caller's contract).
            unsafe { &*lock }.lock();
        }
        HeldLocks { locks }
    }
}

impl Drop for HeldLocks<'_> {
    fn drop(&mut self) {
        for &lock in self.locks.iter().rev() {
            // SAFETY: `lock_all` took each of these once, and they are live (its contract); the
            // polls' references to channel state ended with their calls.
            unsafe { (*lock).unlock() };
        }
    }
}

/// `select! {}`: blocks forever (deadlock detection sees it).
#[doc(hidden)]
pub fn block_forever() -> ! {
    loop {
        crate::shim::park_for(WaitReason::SelectNoCases);
    }
}

/// Fills `order` with a random permutation of `0..order.len()` (Go randomises poll order so
/// ready cases are chosen fairly). Under loom the order is fixed: a model must be
/// deterministic apart from thread scheduling.
fn random_order(order: &mut [usize]) {
    for (i, o) in order.iter_mut().enumerate() {
        *o = i;
    }
    if cfg!(loom) {
        return;
    }
    for i in (1..order.len()).rev() {
        let j = (next_random() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

/// xorshift64* on a per-thread state (no reference to it is held across a park).
#[inline(never)]
fn next_random() -> u64 {
    std::thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x9E37_79B9, |d| d.as_nanos() as u64);
            x = seed ^ (s as *const Cell<u64> as u64) | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// A select over a number of cases known only at run time (Go's `reflect.Select`).
///
/// ```
/// let (tx1, rx1) = chan::chan::<i32>(1);
/// let (_tx2, rx2) = chan::chan::<String>(1);
/// tx1.send(7).unwrap();
/// let mut sel = chan::Select::new();
/// let a = sel.recv(&rx1);
/// let _b = sel.recv(&rx2);
/// let mut op = sel.select();
/// assert_eq!(op.index(), Some(a));
/// assert_eq!(op.recv::<i32>(), Ok(7));
/// ```
pub struct Select<'a> {
    cases: Vec<Box<dyn Case + 'a>>,
    has_default: bool,
}

/// The case a [`Select`] completed.
pub struct Selected<'a> {
    index: Option<usize>,
    cases: Vec<Box<dyn Case + 'a>>,
}

impl<'a> Select<'a> {
    /// An empty select.
    pub fn new() -> Select<'a> {
        Select {
            cases: Vec::new(),
            has_default: false,
        }
    }

    /// Adds a receive from `rx`; returns the case's index.
    pub fn recv<T: Send + 'static>(&mut self, rx: &'a Receiver<T>) -> usize {
        self.cases.push(Box::new(RecvCase::new(Some(rx))));
        self.cases.len() - 1
    }

    /// Adds a send of `v` on `tx`; returns the case's index.
    pub fn send<T: Send + 'static>(&mut self, tx: &'a Sender<T>, v: T) -> usize {
        self.cases.push(Box::new(SendCase::new(Some(tx), v)));
        self.cases.len() - 1
    }

    /// Adds a `default`: `select` returns at once (index `None`) if no case is ready.
    pub fn default(&mut self) {
        self.has_default = true;
    }

    /// Blocks until one case completes (or returns `None` at once with a `default`).
    pub fn select(self) -> Selected<'a> {
        self.run(None)
    }

    /// Like [`select`](Select::select), but gives up after `timeout` (index `None`; a
    /// timeout too long to be an `Instant`, such as `Duration::MAX`, waits without one).
    pub fn select_timeout(self, timeout: Duration) -> Selected<'a> {
        self.run(deadline_after(timeout))
    }

    fn run(mut self, deadline: Option<Instant>) -> Selected<'a> {
        let index = {
            let mut refs: Vec<&mut dyn Case> = self
                .cases
                .iter_mut()
                .map(|c| -> &mut dyn Case { &mut **c })
                .collect();
            run_select(&mut refs, self.has_default, deadline)
        };
        Selected {
            index,
            cases: self.cases,
        }
    }
}

impl Default for Select<'_> {
    fn default() -> Self {
        Select::new()
    }
}

impl Selected<'_> {
    /// The index of the completed case (as returned by `Select::recv`/`send`), or `None` for
    /// the default case or a timeout.
    pub fn index(&self) -> Option<usize> {
        self.index
    }

    /// The result of the completed receive case. Panics if the completed case is not a
    /// receive of `T`.
    pub fn recv<T: Send + 'static>(&mut self) -> Result<T, RecvError> {
        self.take::<Result<T, RecvError>>()
    }

    /// The result of the completed send case. Panics if the completed case is not a send of
    /// `T`.
    pub fn send<T: Send + 'static>(&mut self) -> Result<(), SendError<T>> {
        self.take::<Result<(), SendError<T>>>()
    }

    fn take<R: 'static>(&mut self) -> R {
        let i = self.index.expect("no case completed (default or timeout)");
        let case = &mut self.cases[i];
        assert!(
            case.result_type() == TypeId::of::<R>(),
            "Selected: case {i} has another result type"
        );
        // SAFETY: the type id matches, so `result_ptr` points to an `Option<R>`.
        let slot = unsafe { &mut *case.result_ptr().cast::<Option<R>>() };
        slot.take().expect("completed case has a result")
    }
}

/// Every select and every sender is a spawned thread; the model's own thread only sets up,
/// joins and checks (tokio-rs/loom#392: see HACKING.md).
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::channel::chan;
    use loom::thread;

    /// One round of Go's TestNonblockSelectRace: `c1` holds a value; another thread fills
    /// `c2`, then empties `c1`, so one of them is ready at every moment. A select with
    /// `default` over both (`c2` polled first: loom fixes the order) must take a case, under
    /// every interleaving. `select` runs the protocol; `poll_one_at_a_time` is the broken one.
    fn nonblock_round(select: fn(&mut [&mut dyn Case]) -> Option<usize>) {
        loom::model(move || {
            let (t1, r1) = chan::<u32>(1);
            let (t2, r2) = chan::<u32>(1);
            t1.send(1).unwrap();
            let r1_other = r1.clone();
            let other = thread::spawn(move || {
                t2.send(2).unwrap();
                let _ = r1_other.try_recv();
                t2 // kept open until the select is over
            });
            let selector = thread::spawn(move || {
                let mut c2 = RecvCase::new(Some(&r2));
                let mut c1 = RecvCase::new(Some(&r1));
                let fired = select(&mut [&mut c2, &mut c1]);
                (fired, r1, r2) // kept open until the other thread is over
            });
            let (fired, _r1, _r2) = selector.join().unwrap();
            assert!(fired.is_some(), "default taken while a case was ready");
            drop(other.join().unwrap());
        });
    }

    #[test]
    fn default_only_when_no_case_was_ready() {
        nonblock_round(|cases| run_select(cases, true, None));
    }

    /// Looking at the cases one lock at a time (gort before it locked them all) sees `c2`
    /// empty, then `c1` empty: the model must catch it.
    #[test]
    #[should_panic(expected = "default taken while a case was ready")]
    fn loom_finds_default_taken_by_one_at_a_time_poll() {
        fn poll_one_at_a_time(cases: &mut [&mut dyn Case]) -> Option<usize> {
            (0..cases.len()).find(|&i| cases[i].try_now())
        }
        nonblock_round(poll_one_at_a_time);
    }

    /// A two-case select that times out at once (its deadline has passed when it has
    /// registered) racing a blocking sender on `a`: the select takes the value or times out,
    /// its entries are withdrawn from both channels whatever the interleaving (the O(1)
    /// withdrawal against the sender's claim), and the value is received exactly once.
    #[test]
    fn timed_out_select_races_sender() {
        loom::model(|| {
            let (a_tx, a_rx) = chan::<u32>(0);
            let (_b_tx, b_rx) = chan::<u32>(0);
            let ta = thread::spawn(move || a_tx.send(1).unwrap());
            let selector = thread::spawn(move || {
                let mut sel = Select::new();
                let ia = sel.recv(&a_rx);
                sel.recv(&b_rx);
                let mut op = sel.select_timeout(Duration::ZERO);
                let got_a = op.index() == Some(ia);
                if got_a {
                    assert_eq!(op.recv::<u32>(), Ok(1));
                } else {
                    assert_eq!(op.index(), None, "b is never ready");
                }
                drop(op);
                assert_eq!(a_rx.queue_lens().0, 0, "entry left on a");
                assert_eq!(b_rx.queue_lens(), (0, 0), "entry left on b");
                if !got_a {
                    assert_eq!(a_rx.recv(), Ok(1));
                }
            });
            selector.join().unwrap();
            ta.join().unwrap();
        });
    }

    /// A two-case select racing two senders: a blocking sender on `a` and a non-blocking one
    /// on `b`. Exactly one case fires: if the select took `b`'s value, `b`'s try_send saw it
    /// taken; otherwise `b`'s value was refused (never both, never lost).
    ///
    /// Bounded to 4 preemptions: with the select on a spawned thread, unbounded it runs for
    /// over ten minutes (in release: 0.15 s at 2, 1 s at 3, 2.9 s at 4, 14.5 s at 5).
    #[test]
    fn two_case_select_races_senders() {
        crate::loom::model_bounded(4, || {
            let (a_tx, a_rx) = chan::<u32>(0);
            let (b_tx, b_rx) = chan::<u32>(0);
            let ta = thread::spawn(move || a_tx.send(1).unwrap());
            // The thread sends on a clone, so `b` stays open (its close would fire the case).
            let b_tx2 = b_tx.clone();
            let tb = thread::spawn(move || b_tx2.try_send(2).is_ok());
            let selector = thread::spawn(move || {
                let got = crate::select! {
                    recv(a_rx) -> v => v.unwrap(),
                    recv(b_rx) -> v => v.unwrap(),
                };
                if got == 2 {
                    assert_eq!(a_rx.recv(), Ok(1), "a's value is still there, once");
                }
                (got, a_rx, b_rx) // kept open until the senders are over
            });
            let (got, _a_rx, _b_rx) = selector.join().unwrap();
            let b_delivered = tb.join().unwrap();
            if got == 2 {
                assert!(b_delivered, "select got b's value, so b's send completed");
            } else {
                assert_eq!(got, 1);
                assert!(!b_delivered, "b's value was not taken by anyone");
            }
            ta.join().unwrap();
            drop(b_tx);
        });
    }
}
