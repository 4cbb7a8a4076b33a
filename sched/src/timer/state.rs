//! One timer's state: PENDING, then FIRED or STOPPED, once; and its action, taken out by
//! whoever wins that transition.
//!
//! Invariants: the state leaves PENDING exactly once, by a compare-exchange, so an action runs
//! at most once (by the winner of PENDING→FIRED) and a stopped timer's action never runs (the
//! winner of PENDING→STOPPED drops it). The winner also settles the set's live count
//! (`set.rs`); the loser touches nothing.

use crate::loom::{AtomicU32, Ordering};

pub(super) const PENDING: u32 = 0;
pub(super) const FIRED: u32 = 1;
pub(super) const STOPPED: u32 = 2;

pub(super) type Action = Box<dyn FnOnce() + Send>;

pub(super) struct TimerState {
    /// PENDING, then FIRED or STOPPED, once.
    state: AtomicU32,
    action: crate::loom::Mutex<Option<Action>>,
}

impl TimerState {
    pub(super) fn new(action: Action) -> TimerState {
        TimerState {
            state: AtomicU32::new(PENDING),
            action: crate::loom::Mutex::new(Some(action)),
        }
    }

    pub(super) fn is_pending(&self) -> bool {
        self.state.load(Ordering::Acquire) == PENDING
    }

    pub(super) fn has_fired(&self) -> bool {
        self.state.load(Ordering::Acquire) == FIRED
    }

    /// PENDING→STOPPED and drop the action. True if this call stopped it.
    pub(super) fn stop(&self) -> bool {
        let stopped = self
            .state
            .compare_exchange(PENDING, STOPPED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if stopped {
            crate::loom::lock(&self.action).take();
        }
        stopped
    }

    /// PENDING→FIRED; returns the action to run if this call won.
    pub(super) fn claim(&self) -> Option<Action> {
        self.state
            .compare_exchange(PENDING, FIRED, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        crate::loom::lock(&self.action).take()
    }
}
