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
//! - A waiter that leaves unwoken is unlinked: by `acquire_until` when it gives up (the owner
//!   then un-counts it in its own word: `mutex.rs`), or by its guard when it unwinds (a panic
//!   inside park; the owner's own count still counts it then: see `sync/mod.rs`, Poisoning).
//!   A waiter that gives up after it was handed a permit holds that permit, and its owner
//!   passes it on (`Outcome::HandedWhileLeaving`).

use super::shim::Lock;
use super::waiter::{unpark_all, wait_node, wake_front, GiveUp, Outcome, Queued, WaitList};
use sched::debug::WaitReason;

pub(crate) struct Sema {
    state: Lock<SemaState>,
    /// What its waiters wait for, as the goroutine dump shows it (the owner's kind).
    reason: WaitReason,
}

#[derive(Default)]
struct SemaState {
    permits: usize,
    waiters: WaitList,
}

fn waiters(s: &mut SemaState) -> &mut WaitList {
    &mut s.waiters
}

impl Sema {
    /// A semaphore whose waiters wait for `reason` (the owner's kind: `Mutex`, ...).
    pub(crate) const fn new(reason: WaitReason) -> Sema {
        Sema {
            state: Lock::new(SemaState {
                permits: 0,
                waiters: WaitList::new(),
            }),
            reason,
        }
    }

    /// Takes one permit, parking until one is handed over. With `lifo`, queues at the head:
    /// for a waiter that was woken, lost the race for its object and waits again (Go's
    /// `queueLifo`), so it keeps its place ahead of later arrivals.
    pub(crate) fn acquire(&self, lifo: bool) {
        let outcome = self.acquire_until(lifo, &GiveUp::NEVER);
        debug_assert_eq!(outcome, Outcome::Woken);
    }

    /// As [`acquire`](Sema::acquire), giving up when `give_up` is due: then the waiter leaves
    /// the queue in O(1) (`Withdrew`), unless a permit was handed to it first
    /// (`HandedWhileLeaving`: it holds that permit).
    pub(crate) fn acquire_until(&self, lifo: bool, give_up: &GiveUp<'_>) -> Outcome {
        wait_node!(me = 0, self.reason);
        let mut s = self.state.lock();
        if s.permits > 0 {
            s.permits -= 1;
            return Outcome::Woken;
        }
        // SAFETY: `s` is `state` locked; the guard is dropped after `s`, before `me`.
        let queued = unsafe { Queued::push(&self.state, &mut s, waiters, me, lifo) };
        drop(s);
        let outcome = queued.wait_until(give_up);
        drop(queued);
        outcome
    }

    /// Releases one permit: to the head waiter (woken), or stored if nobody waits.
    pub(crate) fn release(&self) {
        let woken = {
            let mut s = self.state.lock();
            let woken = wake_front(&mut s.waiters);
            if woken.is_none() {
                s.permits += 1;
            }
            woken
        };
        if let Some(u) = woken {
            u.unpark();
        }
    }

    /// Waiters queued (for tests).
    pub(crate) fn queue_len(&self) -> usize {
        self.state.lock().waiters.len()
    }

    /// Permits stored for waiters yet to come (for the loom models).
    #[cfg(all(test, loom))]
    pub(crate) fn stored(&self) -> usize {
        self.state.lock().permits
    }

    /// Releases `n` permits: one to each of the first `n` waiters, the rest stored.
    pub(crate) fn release_many(&self, n: usize) {
        if n <= 1 {
            if n == 1 {
                self.release();
            }
            return;
        }
        let woken: sched::ChunkedDeque<_> = {
            let mut s = self.state.lock();
            let woken: sched::ChunkedDeque<_> =
                (0..n).map_while(|_| wake_front(&mut s.waiters)).collect();
            s.permits += n - woken.len();
            woken
        };
        unpark_all(woken);
    }
}
