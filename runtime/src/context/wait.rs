//! gort's blocking calls with a context (Go's `ctx`-taking calls): each waits as the plain call
//! does and gives up when the context is done, returning its error.
//!
//! Channels wait in a `select!` with the context's `done` channel ([`recv`], [`send`]). The
//! sync primitives wait in their own queues, which know nothing of contexts: they take a
//! `stop` check (`Semaphore::acquire_many_until`, `Mutex::lock_until`), and the waiter
//! registers an inline hook on the context (`after.rs`) that unparks it when the context is
//! done, so it wakes, sees `stop` true and leaves its queue at once: at a cancellation as at
//! the deadline (which cancels the context), not later. The hook is stopped when the wait
//! ends; if the context is done just then, the hook's unpark may land after the wait, as a
//! stray token that makes the goroutine's next park return at once (every park loop re-checks
//! its condition, so that costs one turn).

use chan::sync::{Mutex, MutexGuard, Semaphore};
use chan::{Receiver, Sender, TrySendError};

use super::after::on_done;
use super::{Context, ContextError, RecvError, SendError};

/// `ctx`'s error, for a wait that gave up because `ctx` is done.
fn done_err(ctx: &Context) -> ContextError {
    ctx.err().unwrap_or(ContextError::Canceled)
}

/// Runs `wait` with a `stop` check that turns true once `ctx` is done, and a hook on `ctx`
/// that unparks the caller then (module docs).
fn interruptible<R>(ctx: &Context, wait: impl FnOnce(&dyn Fn() -> bool) -> R) -> R {
    if ctx.0.cancel.is_none() {
        return wait(&|| false); // never done
    }
    let me = sched::unparker();
    let hook = on_done(ctx, move || me.unpark());
    let r = wait(&|| ctx.err().is_some());
    hook.stop();
    r
}

/// Receives from `rx` unless `ctx` is done first: Go's
/// `select { case <-ctx.Done(): return ctx.Err(); case v, ok := <-ch: ... }`. If both are ready,
/// either may win, as in Go's `select`.
///
/// ```
/// use gort::context::{self, RecvError, ContextError};
/// let (tx, rx) = gort::chan(1);
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// tx.send(1).unwrap();
/// assert_eq!(context::recv(&ctx, &rx), Ok(1));
/// cancel.cancel();
/// assert_eq!(context::recv(&ctx, &rx), Err(RecvError::Done(ContextError::Canceled)));
/// ```
pub fn recv<T: Send + 'static>(ctx: &Context, rx: &Receiver<T>) -> Result<T, RecvError> {
    chan::select! {
        recv(rx) -> v => v.map_err(|_| RecvError::Closed),
        recv(ctx.done()) -> _ => Err(RecvError::Done(done_err(ctx))),
    }
}

/// Sends `v` on `tx` unless `ctx` is done first: Go's
/// `select { case ch <- v: case <-ctx.Done(): return ctx.Err() }`. If both are ready, either
/// may win, as in Go's `select`.
///
/// The value is never lost: a closed channel returns it ([`SendError::Closed`]), and so does a
/// context that is done first ([`SendError::Done`]), as Go's caller still holds a value its
/// `select` did not send.
///
/// ```
/// use gort::context::{self, ContextError, SendError};
/// let (tx, rx) = gort::chan(1);
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// assert_eq!(context::send(&ctx, &tx, 1), Ok(())); // room in the buffer
/// cancel.cancel();
/// assert_eq!(context::send(&ctx, &tx, 2), Err(SendError::Done(ContextError::Canceled, 2)));
/// drop(rx);
/// assert_eq!(context::send(&context::background(), &tx, 3), Err(SendError::Closed(3)));
/// ```
pub fn send<T: Send + 'static>(ctx: &Context, tx: &Sender<T>, v: T) -> Result<(), SendError<T>> {
    let v = match tx.try_send(v) {
        Ok(()) => return Ok(()),
        Err(TrySendError::Closed(v)) => return Err(SendError::Closed(v)),
        Err(TrySendError::Full(v)) => v,
    };
    // `select!`'s expansion, by hand, to get an unsent value back from its case.
    let mut send = chan::internal::SendCase::new(Some(tx), v);
    let mut done = chan::internal::RecvCase::new(Some(ctx.done()));
    match chan::internal::run_select(&mut [&mut send, &mut done], false, None) {
        Some(0) => send.take().map_err(|e| SendError::Closed(e.0)),
        _ => {
            let v = send
                .take_unsent()
                .expect("a send that did not fire keeps its value");
            Err(SendError::Done(done_err(ctx), v))
        }
    }
}

/// Takes one permit of `sem` unless `ctx` is done first (Go's `x/sync/semaphore`
/// `Weighted.Acquire(ctx, 1)`); see [`acquire_many`].
///
/// ```
/// use gort::context::{self, ContextError};
/// use gort::sync::Semaphore;
/// let sem = Semaphore::new(1);
/// let ctx = context::background();
/// assert_eq!(context::acquire(&ctx, &sem), Ok(()));
/// let (ctx, cancel) = context::with_cancel(&ctx);
/// cancel.cancel();
/// sem.release();
/// assert_eq!(context::acquire(&ctx, &sem), Err(ContextError::Canceled)); // done wins
/// ```
pub fn acquire(ctx: &Context, sem: &Semaphore) -> Result<(), ContextError> {
    acquire_many(ctx, sem, 1)
}

/// Takes `n` permits of `sem` at once unless `ctx` is done first (Go's `x/sync/semaphore`
/// `Weighted.Acquire(ctx, n)`). As there, a context already done fails even if the permits
/// are free, and a waiter whose context is done leaves the queue at once (letting smaller
/// requests behind it be served) and returns any permits handed to it meanwhile. On `Err`,
/// nothing was taken.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use gort::context::{self, ContextError};
/// let sem = Arc::new(gort::sync::Semaphore::new(1));
/// let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_millis(5));
/// assert_eq!(context::acquire_many(&ctx, &sem, 2), Err(ContextError::DeadlineExceeded));
/// assert_eq!(sem.available(), 1); // nothing taken, nothing lost
/// ```
pub fn acquire_many(ctx: &Context, sem: &Semaphore, n: usize) -> Result<(), ContextError> {
    if let Some(e) = ctx.err() {
        return Err(e);
    }
    if sem.try_acquire_many(n) || interruptible(ctx, |stop| sem.acquire_many_until(n, None, stop)) {
        return Ok(());
    }
    Err(done_err(ctx))
}

/// Locks `m` unless `ctx` is done first. Go has no such call (its `Mutex` has only
/// `TryLock`); this is [`Mutex::lock_until`] with the context's cancellation, so a waiter
/// whose context is done leaves the queue at once and passes on a hand-off that reached it
/// meanwhile. A context already done fails even if the mutex is free.
///
/// ```
/// use gort::context::{self, ContextError};
/// use std::time::Duration;
/// let m = gort::sync::Mutex::new(0);
/// let held = m.lock();
/// let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_millis(5));
/// assert_eq!(context::lock(&ctx, &m).err(), Some(ContextError::DeadlineExceeded));
/// drop(held);
/// *context::lock(&context::background(), &m).unwrap() += 1;
/// ```
pub fn lock<'a, T: ?Sized>(
    ctx: &Context,
    m: &'a Mutex<T>,
) -> Result<MutexGuard<'a, T>, ContextError> {
    if let Some(e) = ctx.err() {
        return Err(e);
    }
    if let Some(g) = m.try_lock() {
        return Ok(g);
    }
    interruptible(ctx, |stop| m.lock_until(None, stop)).ok_or_else(|| done_err(ctx))
}
