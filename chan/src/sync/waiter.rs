//! One blocked goroutine or thread, as the queues of `sema.rs`, `cond.rs` and `semaphore.rs`
//! hold it: a list node ([`WaitNode`], `crate::list`) in the waiter's own stack frame (boxed
//! while stacks may be compacted: [`wait_node!`]), holding its unparker and a flag its waker
//! sets.
//!
//! Protocol: the waiter makes a [`WaitNode`] on its stack, pushes it onto a queue under that
//! queue's lock, makes a drop guard ([`Queued`]) right after releasing the lock, and calls
//! [`Waiter::wait`], which parks until `woken` is set. The waker pops the node under the lock
//! and, still under it, calls [`Waiter::wake_locked`]: it moves the unparker out and sets
//! `woken` (release), its last touch of the node; after releasing the lock it unparks. Because
//! the waiter loops on `woken`, an unpark that comes early leaves a token and is not lost, and
//! an old token only costs one more turn of the loop.
//!
//! A timed or interruptible wait ([`Waiter::wait_until`], with a [`GiveUp`]) parks the same
//! way, also returning when its deadline passes or its `stop` check says so; the waiter then
//! leaves the queue under the queue's lock (`Queued::withdraw`), in O(1). If the waker popped
//! it first, it was handed something (a permit, a lock) meanwhile, and the caller passes that
//! on: a waiter that gives up never keeps, and never loses, what it was handed.
//!
//! Invariants:
//! - each node is woken at most once: it is in at most one queue, and whoever pops it owns the
//!   wake-up;
//! - a node is linked only while its frame is alive: the guard, on every way out of the frame
//!   (only unwinding can leave it unwoken: a panic inside park), takes the queue's lock and
//!   unlinks the node if it is still queued. A waker wakes under that same lock, so once the
//!   guard has held it, nobody touches the node again; a guard that sees `woken` needs no lock.

use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;
use std::time::{Duration, Instant};

use super::shim::{park_for, park_timeout_for, unparker, Lock, Unparker};
use crate::list::{List, Node};
use crate::loom::{AtomicBool, Ordering};
use sched::debug::WaitReason;

/// A queued waiter: the node the lists link.
pub(crate) type WaitNode = Node<Waiter>;

/// `let $me: &WaitNode = ...;`: a waiter for the calling goroutine or thread (as
/// [`Waiter::new`]), in its frame, or in a box of its own while parked stacks may be
/// compacted (`sched::stack_compaction`), so that its waker never touches the stack of a
/// goroutine whose stack may have been released (`docs/SOUNDNESS.md`, "Parked stacks stay
/// resident"). Either lives until the end of the enclosing block.
macro_rules! wait_node {
    ($me:ident = $need:expr, $reason:expr) => {
        let (boxed, on_stack);
        let $me: &$crate::sync::waiter::WaitNode = if $crate::shim::stack_compaction() {
            boxed = Box::new($crate::sync::waiter::Waiter::new($need, $reason));
            &*boxed
        } else {
            on_stack = $crate::sync::waiter::Waiter::new($need, $reason);
            &on_stack
        };
    };
}
pub(crate) use wait_node;

/// A queue of waiters: FIFO, O(1) removal (`crate::list`).
pub(crate) type WaitList = List<Waiter>;

pub(crate) struct Waiter {
    /// Owned by the waiter until `wake_locked` moves it out (then `woken` is set and the
    /// waiter must not drop it).
    unparker: UnsafeCell<ManuallyDrop<Unparker>>,
    /// Set once by the waker, under the queue lock, before it unparks. Release/acquire: what
    /// the waker wrote before waking (a permit handed over, a lock's data) is visible to the
    /// waiter after `wait`.
    woken: AtomicBool,
    /// What the waiter asks for (a `Semaphore`'s permits; unused elsewhere).
    pub(crate) need: usize,
    /// What the goroutine dump says it waits for (`sched::debug`).
    reason: WaitReason,
}

// SAFETY: other threads reach a `Waiter` only as the value of a queued node, under the queue's
// lock: they read `need`, and the one waker that pops it moves `unparker` out (exclusively:
// see `wake_locked`) and sets `woken` (atomic). `Unparker` is `Send`.
unsafe impl Sync for Waiter {}

impl Drop for Waiter {
    fn drop(&mut self) {
        // (A model loom tears down leaks the unparker: no atomic may be touched then.)
        if !crate::shim::model_torn_down() && !self.is_woken() {
            // SAFETY: not woken, so nobody moved the unparker out; this is its only drop.
            unsafe { ManuallyDrop::drop(self.unparker.get_mut()) };
        }
    }
}

impl Waiter {
    /// A waiter for the calling goroutine or thread, asking for `need` (see [`Waiter::need`]),
    /// waiting for `reason` (as the goroutine dump shows it).
    pub(crate) fn new(need: usize, reason: WaitReason) -> WaitNode {
        Node::new(Waiter {
            unparker: UnsafeCell::new(ManuallyDrop::new(unparker())),
            woken: AtomicBool::new(false),
            need,
            reason,
        })
    }

    /// Parks until a waker has woken this waiter. Only the waiter itself calls this.
    pub(crate) fn wait(&self) {
        while !self.is_woken() {
            park_for(self.reason);
        }
    }

    /// Parks until a waker has woken this waiter (true) or `give_up` is due (false: the
    /// caller must then withdraw, and may find it was woken in between). Woken wins: a waiter
    /// woken before it looked at `give_up` reports true. Only the waiter itself calls this.
    pub(crate) fn wait_until(&self, give_up: &GiveUp<'_>) -> bool {
        loop {
            if self.is_woken() {
                return true;
            }
            if give_up.is_due() {
                return false;
            }
            match give_up.deadline {
                None => park_for(self.reason),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    park_timeout_for(left.min(MAX_PARK), self.reason);
                }
            }
        }
    }

    /// True once a waker has popped this waiter and woken it.
    pub(crate) fn is_woken(&self) -> bool {
        self.woken.load(Ordering::Acquire)
    }

    /// The waker's last touch of a node it popped: moves the unparker out and sets `woken`.
    /// Unpark the result after releasing the queue lock.
    ///
    /// # Safety
    /// The caller popped this waiter's node from its queue and still holds the queue's lock
    /// (so the waiter's frame is alive, and no one else wakes it).
    pub(crate) unsafe fn wake_locked(&self) -> Unparker {
        // SAFETY: we popped the node, so we are its only waker: nobody else moves the unparker
        // out, and the waiter reads `woken` before dropping it, which we set only after this.
        let unparker = unsafe { ManuallyDrop::take(&mut *self.unparker.get()) };
        self.woken.store(true, Ordering::Release);
        unparker
    }
}

/// The longest single park of a timed wait: a far deadline is waited for in steps of this.
const MAX_PARK: Duration = Duration::from_secs(3600);

/// When a timed or interruptible wait gives up: once `deadline` has passed, or once `stop`
/// returns true. `stop` is called only by the waiter (before it parks and each time it is
/// unparked), so whoever makes it true must unpark the waiter afterwards for it to notice
/// before the deadline; an unpark that comes before the park is kept as a token, not lost.
#[derive(Clone, Copy)]
pub(crate) struct GiveUp<'a> {
    pub(crate) deadline: Option<Instant>,
    pub(crate) stop: Option<&'a dyn Fn() -> bool>,
}

impl GiveUp<'_> {
    /// A wait that never gives up.
    pub(crate) const NEVER: GiveUp<'static> = GiveUp {
        deadline: None,
        stop: None,
    };

    /// True once the wait should give up.
    pub(crate) fn is_due(&self) -> bool {
        self.stop.is_some_and(|stop| stop()) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// How a wait that could give up ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Woken: handed what it waited for before it gave up.
    Woken,
    /// Gave up and left the queue unwoken: it holds nothing.
    Withdrew,
    /// Gave up, but a waker had popped it meanwhile: it holds what it was handed, and must
    /// pass it on.
    HandedWhileLeaving,
}

/// Pops the head waiter of `list` and wakes it (under the lock the caller holds through
/// `list`); returns its unparker, to unpark after releasing the lock.
pub(crate) fn wake_front(list: &mut WaitList) -> Option<Unparker> {
    let node = list.pop_front()?;
    // SAFETY: just popped, under the lock; its owner cannot be past its guard until it sees
    // `woken` or takes this lock.
    Some(unsafe { node.as_ref().value().wake_locked() })
}

/// Unparks every waiter `wake_front` woke; call with no lock held.
/// (Callers that can wake a burst's waiters collect them in a `sched::ChunkedDeque`, not a
/// `Vec`: one block of megabytes may stay resident in the allocator once freed, `chunked.rs`.)
pub(crate) fn unpark_all(woken: impl IntoIterator<Item = Unparker>) {
    for u in woken {
        u.unpark();
    }
}

/// A waiter queued in some `Lock<Q>`'s list: the drop guard that unlinks it if it leaves
/// unwoken (see the module invariants). `list` picks the queue out of the locked state.
pub(crate) struct Queued<'a, Q: Default> {
    pub(crate) lock: &'a Lock<Q>,
    pub(crate) list: fn(&mut Q) -> &mut WaitList,
    pub(crate) node: &'a WaitNode,
}

impl<Q: Default> Queued<'_, Q> {
    /// Pushes `node` at the tail (or the head if `front`) of `list(q)` and returns its guard.
    ///
    /// # Safety
    /// `q` is the locked state of `lock` (the caller holds it), and the caller drops the
    /// returned guard only after releasing it, before `node` goes out of scope.
    pub(crate) unsafe fn push<'a>(
        lock: &'a Lock<Q>,
        q: &mut Q,
        list: fn(&mut Q) -> &mut WaitList,
        node: &'a WaitNode,
        front: bool,
    ) -> Queued<'a, Q> {
        let l = list(q);
        // SAFETY: `node` is fresh (in no list); the guard returned unlinks it before the
        // node's frame ends, and the caller keeps the node in place until then.
        unsafe {
            if front {
                l.push_front(node);
            } else {
                l.push_back(node);
            }
        }
        Queued { lock, list, node }
    }

    /// True if the waiter was woken (handed whatever its queue hands out).
    pub(crate) fn woken(&self) -> bool {
        self.node.value().is_woken()
    }

    /// Unlinks the node if it is still queued; true if it was (it left unwoken). Either way,
    /// nobody touches the node once this returns.
    pub(crate) fn withdraw(&self) -> bool {
        let mut q = self.lock.lock();
        // SAFETY: we hold the lock; the node is alive (borrowed) and was pushed onto this list.
        unsafe { (self.list)(&mut q).remove(self.node) }
    }
}

impl<Q: Default> Queued<'_, Q> {
    /// Waits as [`Waiter::wait_until`]; on giving up, leaves the queue. Says which way the
    /// wait ended.
    pub(crate) fn wait_until(&self, give_up: &GiveUp<'_>) -> Outcome {
        if self.node.value().wait_until(give_up) {
            Outcome::Woken
        } else if self.withdraw() {
            Outcome::Withdrew
        } else {
            Outcome::HandedWhileLeaving
        }
    }
}

impl<Q: Default> Drop for Queued<'_, Q> {
    fn drop(&mut self) {
        if crate::shim::model_torn_down() || self.woken() {
            return;
        }
        self.withdraw();
    }
}
