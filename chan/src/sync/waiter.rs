//! One blocked goroutine or thread, as the queues of `sema.rs`, `cond.rs` and `semaphore.rs`
//! hold it: the waiter's unparker and a flag its waker sets.
//!
//! Protocol: the waiter creates a `Waiter`, pushes a clone of the `Arc` into a queue under
//! that queue's lock, releases the lock and calls [`Waiter::wait`], which parks until `woken`
//! is set. The waker pops the `Arc` under the lock, releases the lock and calls
//! [`Waiter::wake`]: set `woken` (release), then unpark. Because the waiter loops on `woken`,
//! an unpark that comes early leaves a token and is not lost, and an old token only costs one
//! more turn of the loop. The waker's `Arc` keeps the unparker alive even if the waiter has
//! already seen the flag and gone.
//!
//! Invariant: each `Waiter` is woken at most once (it is in at most one queue, and whoever
//! pops it owns the wake-up).

use std::sync::Arc;

use super::shim::{park, unparker, Unparker};
use crate::loom::{AtomicBool, Ordering};

pub(crate) struct Waiter {
    unparker: Unparker,
    /// Set once by the waker, before it unparks. Release/acquire: what the waker wrote before
    /// waking (a permit handed over, a lock's data) is visible to the waiter after `wait`.
    woken: AtomicBool,
}

impl Waiter {
    /// A waiter for the calling goroutine or thread.
    pub(crate) fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            unparker: unparker(),
            woken: AtomicBool::new(false),
        })
    }

    /// Parks until [`wake`](Waiter::wake) has been called. Only the waiter itself calls this.
    pub(crate) fn wait(&self) {
        while !self.is_woken() {
            park();
        }
    }

    /// True once a waker has popped this waiter and woken it.
    pub(crate) fn is_woken(&self) -> bool {
        self.woken.load(Ordering::Acquire)
    }

    /// Wakes the waiter. Call with no internal lock held.
    pub(crate) fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.unparker.unpark();
    }
}
