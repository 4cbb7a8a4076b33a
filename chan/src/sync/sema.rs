//! A per-object semaphore: Go's `runtime/sema.go` (`semacquire` / `semrelease`) without the
//! global hash table, since each `Mutex`, `RwMutex` and `WaitGroup` owns its queue.
//!
//! It is a wake-up primitive, not a lock: the owner keeps its real state in its own atomic
//! word and calls `release` exactly once per waiter it has counted there, `acquire` once per
//! time it counted itself as a waiter. A permit released before its waiter arrives is stored
//! and taken by the next `acquire` without blocking, so the order of the two does not matter.
//!
//! Invariants (under `state`'s lock):
//! - `permits > 0` implies `waiters` is empty: a release hands its permit to the head waiter
//!   if there is one (the handoff is the `Waiter`'s woken flag) and stores it otherwise.
//! - A waiter popped from `waiters` has been handed exactly one permit.

use std::collections::VecDeque;
use std::sync::Arc;

use super::shim::Lock;
use super::waiter::Waiter;

pub(crate) struct Sema {
    state: Lock<SemaState>,
}

#[derive(Default)]
struct SemaState {
    permits: usize,
    waiters: VecDeque<Arc<Waiter>>,
}

impl Sema {
    pub(crate) const fn new() -> Sema {
        Sema {
            state: Lock::new(SemaState {
                permits: 0,
                waiters: VecDeque::new(),
            }),
        }
    }

    /// Takes one permit, parking until one is handed over. With `lifo`, queues at the head:
    /// for a waiter that was woken, lost the race for its object and waits again (Go's
    /// `queueLifo`), so it keeps its place ahead of later arrivals.
    pub(crate) fn acquire(&self, lifo: bool) {
        let me = Waiter::new();
        {
            let mut s = self.state.lock();
            if s.permits > 0 {
                s.permits -= 1;
                return;
            }
            if lifo {
                s.waiters.push_front(me.clone());
            } else {
                s.waiters.push_back(me.clone());
            }
        }
        let _queued = Queued {
            sema: self,
            me: &me,
        };
        me.wait();
    }

    /// Removes `me` from the queue if it is still there (a waiter leaving without its permit).
    fn withdraw(&self, me: &Arc<Waiter>) {
        self.state.lock().waiters.retain(|w| !Arc::ptr_eq(w, me));
    }

    /// Releases one permit: to the head waiter (woken), or stored if nobody waits.
    pub(crate) fn release(&self) {
        let head = {
            let mut s = self.state.lock();
            let head = s.waiters.pop_front();
            if head.is_none() {
                s.permits += 1;
            }
            head
        };
        if let Some(w) = head {
            w.wake();
        }
    }

    /// Waiters queued (for tests).
    pub(crate) fn queue_len(&self) -> usize {
        self.state.lock().waiters.len()
    }

    /// Releases `n` permits: one to each of the first `n` waiters, the rest stored.
    pub(crate) fn release_many(&self, n: usize) {
        if n <= 1 {
            if n == 1 {
                self.release();
            }
            return;
        }
        let woken: Vec<Arc<Waiter>> = {
            let mut s = self.state.lock();
            let k = n.min(s.waiters.len());
            s.permits += n - k;
            s.waiters.drain(..k).collect()
        };
        for w in woken {
            w.wake();
        }
    }
}

/// A waiter queued in `acquire`: the drop guard that takes it out of the queue if it leaves
/// without its permit (only possible by unwinding: a panic while parked). The owner's own
/// count of waiters still counts it then, so the owning `Mutex`, `RwMutex` or `WaitGroup` must
/// be treated as poisoned; what the guard ensures is that no queue keeps the gone waiter.
struct Queued<'a> {
    sema: &'a Sema,
    me: &'a Arc<Waiter>,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if !crate::shim::model_torn_down() && !self.me.is_woken() {
            self.sema.withdraw(self.me);
        }
    }
}
