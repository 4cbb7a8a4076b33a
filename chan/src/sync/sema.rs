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
        me.wait();
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
