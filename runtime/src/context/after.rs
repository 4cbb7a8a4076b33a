//! Functions run once when a context is done: Go 1.21's `context.AfterFunc` ([`after_func`])
//! and, inside gort, the wake-up of a blocking call waiting on a context ([`on_done`]).
//!
//! A [`Hook`] holds the function until one of two parties claims it: the cancellation of the
//! context (which runs it) or [`StopFn::stop`] (which drops it). The claim is the take of
//! `f` under the hook's lock, so exactly one of them gets it. The hook is registered as a
//! child of the context's nearest cancellable ancestor (`cancel.rs`); cancellation takes it out
//! with the other children, and `stop` removes it, so a stopped or fired hook leaves nothing
//! in the tree. A context that can never be done (`background()`, `without_cancel`) gets an
//! unregistered hook, which only `stop` can claim.
//!
//! Locks: the hook's lock is held only to take `f`, never together with a context's lock, and
//! `f` runs with no lock held.

use std::fmt;
use std::sync::{Arc, Mutex};

use super::cancel::Canceller;
use super::Context;

type HookFn = Box<dyn FnOnce() + Send>;

pub(super) struct Hook {
    /// The node whose child set holds the hook; `None` if the context can never be done.
    owner: Option<Arc<Canceller>>,
    /// The function, until cancellation or `stop` takes it.
    f: Mutex<Option<HookFn>>,
    /// Run on the cancelling goroutine or thread (a wake-up: short, never blocks) instead of
    /// in a goroutine of its own.
    inline: bool,
}

impl Hook {
    /// A hook running `f` once `ctx` is done (at once if it already is).
    fn register(ctx: &Context, f: HookFn, inline: bool) -> Arc<Hook> {
        let hook = Arc::new(Hook {
            owner: ctx.0.cancel.clone(),
            f: Mutex::new(Some(f)),
            inline,
        });
        if let Some(owner) = &hook.owner {
            if !owner.add_hook(&hook) {
                hook.fire();
            }
        }
        hook
    }

    fn claim(&self) -> Option<HookFn> {
        self.f.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The context is done: runs `f` unless `stop` claimed it first.
    pub(super) fn fire(&self) {
        let Some(f) = self.claim() else { return };
        if self.inline {
            f();
        } else {
            drop(sched::spawn(f));
        }
    }

    /// Claims `f` before cancellation does, and leaves the owner's child set; true if it did.
    fn stop(&self) -> bool {
        let Some(f) = self.claim() else { return false };
        drop(f);
        if let Some(owner) = &self.owner {
            owner.remove_hook(self);
        }
        true
    }
}

/// Arranges for `f` to run in a goroutine of its own once `ctx` is done (Go 1.21's
/// `context.AfterFunc`): when `ctx` is cancelled, its deadline passes or an ancestor is
/// cancelled. If `ctx` is already done, `f` starts at once. If `ctx` can never be done
/// (`background()`, [`without_cancel`](super::without_cancel)), `f` never runs.
///
/// The [`StopFn`] disassociates `f` from `ctx`; dropping it does not, so `f` stays registered
/// with `ctx` until `ctx` is done or `stop` is called (Go's `stop` is optional too).
///
/// ```
/// use gort::context;
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// let (tx, rx) = gort::chan::<&str>(1);
/// let _stop = context::after_func(&ctx, move || tx.send("cleaned up").unwrap());
/// cancel.cancel();
/// assert_eq!(rx.recv(), Ok("cleaned up"));
/// ```
pub fn after_func(ctx: &Context, f: impl FnOnce() + Send + 'static) -> StopFn {
    StopFn(Hook::register(ctx, Box::new(f), false))
}

/// Runs `f` on the cancelling goroutine or thread once `ctx` is done (at once, on the caller,
/// if it already is): the wake-up of a blocking call that waits on `ctx`. `f` must be short
/// and must not block (an unpark, a socket close). Stop it when the wait is over.
pub(crate) fn on_done(ctx: &Context, f: impl FnOnce() + Send + 'static) -> StopFn {
    StopFn(Hook::register(ctx, Box::new(f), true))
}

/// Stops an [`after_func`] (Go's `stop func() bool`).
pub struct StopFn(Arc<Hook>);

impl StopFn {
    /// Disassociates the function from its context. True if this call stopped it from
    /// running; false if the context was already done and the function has been started in
    /// its goroutine (it may still be running: `stop` does not wait for it), or if it was
    /// already stopped.
    ///
    /// ```
    /// use gort::context;
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// let stop = context::after_func(&ctx, || unreachable!("stopped first"));
    /// assert_eq!(ctx.child_count(), 1);
    /// assert!(stop.stop());
    /// assert!(!stop.stop()); // already stopped
    /// assert_eq!(ctx.child_count(), 0); // nothing left registered
    /// cancel.cancel();
    /// ```
    pub fn stop(&self) -> bool {
        self.0.stop()
    }
}

impl fmt::Debug for StopFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pending = self.0.f.lock().is_ok_and(|f| f.is_some());
        f.debug_struct("StopFn").field("pending", &pending).finish()
    }
}
