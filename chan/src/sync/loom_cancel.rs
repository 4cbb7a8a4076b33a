//! loom models' stand-in for a context's cancellation of a wait that can give up (the
//! `Mutex` and `Semaphore` give-up models): the waiter publishes its unparker, then waits with
//! a stop check; `cancel` sets the flag, then unparks the waiter if it has published (if not,
//! the waiter sees the flag before it parks). Waiter and canceller are both spawned threads
//! (tokio-rs/loom#392: see HACKING.md).

use crate::loom::{AtomicBool, Ordering};
use std::sync::Arc;

pub(super) struct Cancel {
    stop: AtomicBool,
    waiter: loom::sync::Mutex<Option<crate::shim::Unparker>>,
}

impl Cancel {
    pub(super) fn new() -> Arc<Cancel> {
        Arc::new(Cancel {
            stop: AtomicBool::new(false),
            waiter: loom::sync::Mutex::new(None),
        })
    }

    /// As the waiter, before it waits: publishes its unparker and returns the stop check to
    /// wait with.
    pub(super) fn arm(&self) -> impl Fn() -> bool + '_ {
        *self.waiter.lock().unwrap() = Some(crate::shim::unparker());
        || self.stop.load(Ordering::SeqCst)
    }

    /// As the canceller: sets the flag, then wakes the waiter if it has published.
    pub(super) fn cancel(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(u) = self.waiter.lock().unwrap().take() {
            u.unpark();
        }
    }
}
