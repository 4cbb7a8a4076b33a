//! Go's `context` package: cancellation, deadlines and request-scoped values carried down a
//! tree of [`Context`]s.
//!
//! A context is made from a parent ([`background`] at the root) and is cancelled when its
//! [`CancelFn`] is called or dropped, when its deadline passes, or when its parent is cancelled,
//! whichever comes first; its [`done`](Context::done) channel is then closed, so a goroutine
//! waiting on it in a `select!` wakes, and [`err`](Context::err) says why. Cancelling a parent
//! cancels every descendant with the parent's error; a child never cancels its parent.
//!
//! ```
//! use std::time::Duration;
//! use gort::context::{self, ContextError};
//!
//! let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_millis(5));
//! let (_tx, rx) = gort::chan::<u32>(0); // nobody ever sends
//! let worker = gort::go!(move || {
//!     // Go's `select { case <-ctx.Done(): return ctx.Err(); case v := <-ch: ... }`
//!     gort::select! {
//!         recv(ctx.done()) -> _ => Err(ctx.err().unwrap()),
//!         recv(rx) -> v => Ok(v.unwrap()),
//!     }
//! });
//! assert_eq!(worker.join().unwrap(), Err(ContextError::DeadlineExceeded));
//! ```
//!
//! A send is the same idiom with a `send(tx, v)` case; [`recv`] and [`send`] wrap the two.
//!
//! # Blocking calls that take a context
//!
//! gort's own waits give up when a context is done, as Go's `ctx`-taking calls do:
//! [`recv`], [`send`], [`acquire`] / [`acquire_many`] (a `Semaphore`), [`lock`] (a `Mutex`) and
//! [`TcpStream::connect_context`](crate::net::TcpStream::connect_context). A waiter is woken
//! by the cancellation itself, not only at the deadline. `docs/CONTEXT.md` has the table of
//! Go calls and their gort counterparts.
//!
//! # Go 1.21's additions
//!
//! [`after_func`] runs a function once a context is done; [`without_cancel`] keeps a
//! context's values and drops its cancellation and deadline; [`with_deadline_cause`] and
//! [`with_timeout_cause`] say why the deadline cancelled.
//!
//! # Dropping a `CancelFn` cancels
//!
//! Go's `WithCancel` returns a function that must be called (`defer cancel()`), and `go vet`
//! warns when it is not: a context that is never cancelled stays registered in its parent, and
//! its timer stays armed, until the parent goes. Here the [`CancelFn`] is that `defer`: it
//! cancels when dropped, so a handler that returns, or panics, releases its context's
//! registration and timer without a line of code, which is what keeps a long-lived parent
//! leak-free when it has millions of short-lived children. Keep it alive as long as the
//! context should be: `let (ctx, _cancel) = ...` (not `let (ctx, _) = ...`, which drops it, and
//! cancels the context, at once); move it into the goroutine or struct that owns the work.
//! [`CancelFn::cancel`] cancels earlier, and a second cancel does nothing.
//!
//! # Values
//!
//! [`with_value`] attaches a value under a typed [`Key`], Go's `type ctxKey struct{}` idiom: a
//! key is a value of a type you define, so two packages never collide and the value comes back
//! with its type. A lookup walks up from the context to the root and returns the nearest
//! ancestor's value; values flow down to descendants, never up or sideways.
//!
//! # Cost
//!
//! A `Context` is one `Arc`: clone it freely, send it to goroutines and threads. `done()` and
//! `err()` take no lock; each cancellable context owns a small channel and, with a deadline, one
//! scheduler timer. `docs/CONTEXT.md` has the design and the argument that a cancelled subtree
//! leaves nothing behind.

mod after;
mod cancel;
mod error;
mod wait;

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chan::Receiver;

pub(crate) use after::on_done;
pub use after::{after_func, StopFn};
use cancel::Canceller;
pub use error::{Cause, ContextError, RecvError, SendError};
pub use wait::{acquire, acquire_many, lock, recv, send};

/// A key for [`with_value`]: a type of your own (usually a unit struct), whose values are
/// compared with `==`, naming the type of the value stored under it.
///
/// ```
/// use gort::context::{self, Key};
///
/// #[derive(PartialEq)]
/// struct RequestId;
/// impl Key for RequestId {
///     type Value = u64;
/// }
///
/// let ctx = context::with_value(&context::background(), RequestId, 7);
/// assert_eq!(ctx.value(&RequestId), Some(&7));
/// ```
pub trait Key: PartialEq + Send + Sync + 'static {
    /// The type of the value stored under this key.
    type Value: Send + Sync + 'static;
}

/// A context: a cancellation signal, an optional deadline and request-scoped values, shared by
/// the goroutines working on one request (Go's `context.Context`). Cheap to clone (one `Arc`),
/// `Send` and `Sync`.
///
/// ```
/// let ctx = gort::context::background();
/// let for_worker = ctx.clone();
/// let h = gort::go!(move || for_worker.err());
/// assert_eq!(h.join().unwrap(), None);
/// ```
#[derive(Clone)]
pub struct Context(Arc<Node>);

struct Node {
    kind: Kind,
    parent: Option<Context>,
    /// The nearest cancellable context at or above this one; `None` if nothing above can be
    /// cancelled (then `done` never fires).
    cancel: Option<Arc<Canceller>>,
    done: Receiver<()>,
    deadline: Option<Instant>,
    /// A value context's key and value.
    value: Option<(Box<dyn Any + Send + Sync>, Box<dyn Any + Send + Sync>)>,
}

impl Drop for Node {
    /// Unlinks the chain of ancestors this node held last, one at a time: dropping the end of
    /// a long chain (a value context per step of a loop) must not recurse once per link.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(Context(node)) = next {
            next = Arc::into_inner(node).and_then(|mut n| n.parent.take());
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Background,
    Todo,
    Cancel,
    Deadline,
    Value,
    WithoutCancel,
}

/// The `done` channel of a context that can never be done.
fn never() -> Receiver<()> {
    static NEVER: OnceLock<Receiver<()>> = OnceLock::new();
    NEVER.get_or_init(Receiver::never).clone()
}

fn root(kind: Kind) -> Context {
    Context(Arc::new(Node {
        kind,
        parent: None,
        cancel: None,
        done: never(),
        deadline: None,
        value: None,
    }))
}

/// The root context: never cancelled, no deadline, no values (Go's `context.Background()`).
/// Its [`done`](Context::done) channel never fires.
///
/// ```
/// let ctx = gort::context::background();
/// assert!(ctx.err().is_none() && ctx.deadline().is_none());
/// assert!(ctx.done().try_recv().is_err()); // nothing, ever
/// ```
pub fn background() -> Context {
    static BACKGROUND: OnceLock<Context> = OnceLock::new();
    BACKGROUND.get_or_init(|| root(Kind::Background)).clone()
}

/// A root context like [`background`], for code that has no context to pass yet (Go's
/// `context.TODO()`); it differs only in its `Debug` output.
///
/// ```
/// assert_eq!(format!("{:?}", gort::context::todo()), "context.TODO");
/// ```
pub fn todo() -> Context {
    static TODO: OnceLock<Context> = OnceLock::new();
    TODO.get_or_init(|| root(Kind::Todo)).clone()
}

/// A child of `parent` that is cancelled when the returned [`CancelFn`] is called or dropped,
/// or when `parent` is cancelled (Go's `context.WithCancel`). If `parent` is already
/// cancelled, so is the child, at once, with the parent's error.
///
/// ```
/// use gort::context::{self, ContextError};
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// assert_eq!(ctx.err(), None);
/// cancel.cancel();
/// assert_eq!(ctx.err(), Some(ContextError::Canceled));
/// assert!(ctx.done().recv().is_err()); // closed
/// ```
pub fn with_cancel(parent: &Context) -> (Context, CancelFn) {
    cancellable(parent, Kind::Cancel, parent.0.deadline)
}

fn cancellable(parent: &Context, kind: Kind, deadline: Option<Instant>) -> (Context, CancelFn) {
    let c = Canceller::new(parent.0.cancel.as_ref());
    let ctx = Context(Arc::new(Node {
        kind,
        parent: Some(parent.clone()),
        done: c.done.clone(),
        cancel: Some(c.clone()),
        deadline,
        value: None,
    }));
    (ctx, CancelFn(c))
}

/// A child of `parent` that is also cancelled, with [`ContextError::DeadlineExceeded`], at
/// `deadline` (Go's `context.WithDeadline`). If `parent`'s deadline comes first (or at the same
/// time), the child keeps the parent's and arms no timer of its own. A deadline already past
/// cancels the child at once. Cancelling the child stops its timer.
///
/// ```
/// use std::time::{Duration, Instant};
/// use gort::context::{self, ContextError};
/// let at = Instant::now() + Duration::from_millis(2);
/// let (ctx, _cancel) = context::with_deadline(&context::background(), at);
/// assert_eq!(ctx.deadline(), Some(at));
/// let _ = ctx.done().recv(); // closed at the deadline
/// assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
/// ```
pub fn with_deadline(parent: &Context, deadline: Instant) -> (Context, CancelFn) {
    deadline_child(parent, deadline, None)
}

/// Like [`with_deadline`], and when the deadline cancels the child, [`Context::cause`] on it
/// and its descendants is `cause` (Go 1.21's `context.WithDeadlineCause`); `err` is still
/// [`ContextError::DeadlineExceeded`]. Cancelling through the [`CancelFn`] records no cause,
/// as in Go.
///
/// ```
/// use std::time::Instant;
/// use gort::context::{self, ContextError};
/// let (ctx, _cancel) = context::with_deadline_cause(&context::background(), Instant::now(), "too slow");
/// assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
/// assert_eq!(ctx.cause().unwrap().to_string(), "too slow");
/// ```
pub fn with_deadline_cause(
    parent: &Context,
    deadline: Instant,
    cause: impl Into<Box<dyn Error + Send + Sync>>,
) -> (Context, CancelFn) {
    deadline_child(parent, deadline, Some(Arc::from(cause.into())))
}

fn deadline_child(
    parent: &Context,
    deadline: Instant,
    cause: Option<Cause>,
) -> (Context, CancelFn) {
    if let Some(theirs) = parent.0.deadline {
        if theirs <= deadline {
            return cancellable(parent, Kind::Cancel, Some(theirs));
        }
    }
    let (ctx, cancel) = cancellable(parent, Kind::Deadline, Some(deadline));
    cancel.0.arm(deadline, cause);
    (ctx, cancel)
}

/// [`with_deadline`]`(parent, now + timeout)` (Go's `context.WithTimeout`). A timeout too long
/// for `Instant` saturates (in practice: never).
///
/// ```
/// use std::time::Duration;
/// let (ctx, cancel) = gort::context::with_timeout(&gort::context::todo(), Duration::from_secs(60));
/// assert!(ctx.deadline().is_some());
/// drop(cancel); // cancels, and stops the timer
/// assert!(ctx.err().is_some());
/// ```
pub fn with_timeout(parent: &Context, timeout: Duration) -> (Context, CancelFn) {
    with_deadline(parent, crate::time::later(Instant::now(), timeout))
}

/// [`with_deadline_cause`]`(parent, now + timeout, cause)` (Go 1.21's
/// `context.WithTimeoutCause`).
///
/// ```
/// use std::time::Duration;
/// use gort::context;
/// let (ctx, _cancel) =
///     context::with_timeout_cause(&context::background(), Duration::from_millis(1), "backend slow");
/// let _ = ctx.done().recv();
/// assert_eq!(ctx.cause().unwrap().to_string(), "backend slow");
/// ```
pub fn with_timeout_cause(
    parent: &Context,
    timeout: Duration,
    cause: impl Into<Box<dyn Error + Send + Sync>>,
) -> (Context, CancelFn) {
    with_deadline_cause(parent, crate::time::later(Instant::now(), timeout), cause)
}

/// A child of `parent` that keeps its values but is never cancelled and has no deadline (Go
/// 1.21's `context.WithoutCancel`): for work that must outlive the request that started it
/// (an audit log written after the reply). Its [`done`](Context::done) never fires, and
/// contexts made under it are cancelled only by their own `CancelFn` or deadline.
///
/// ```
/// use gort::context::{self, Key};
/// #[derive(PartialEq)]
/// struct Trace;
/// impl Key for Trace {
///     type Value = u64;
/// }
/// let (req, cancel) = context::with_cancel(&context::with_value(&context::background(), Trace, 9));
/// let detached = context::without_cancel(&req);
/// cancel.cancel();
/// assert!(req.err().is_some());
/// assert_eq!(detached.err(), None);
/// assert_eq!(detached.deadline(), None);
/// assert_eq!(detached.value(&Trace), Some(&9));
/// ```
pub fn without_cancel(parent: &Context) -> Context {
    Context(Arc::new(Node {
        kind: Kind::WithoutCancel,
        parent: Some(parent.clone()),
        cancel: None,
        done: never(),
        deadline: None,
        value: None,
    }))
}

/// A child of `parent` carrying `value` under `key` (Go's `context.WithValue`); it shares the
/// parent's cancellation and deadline. [`Context::value`] on it, or on any descendant, finds
/// the value unless a nearer context shadows the key.
///
/// ```
/// use gort::context::{self, Key};
/// #[derive(PartialEq)]
/// struct User;
/// impl Key for User {
///     type Value = String;
/// }
/// let root = context::background();
/// let ctx = context::with_value(&root, User, "gopher".to_string());
/// assert_eq!(ctx.value(&User).map(String::as_str), Some("gopher"));
/// assert_eq!(root.value(&User), None); // values never flow up
/// ```
pub fn with_value<K: Key>(parent: &Context, key: K, value: K::Value) -> Context {
    let p = &parent.0;
    Context(Arc::new(Node {
        kind: Kind::Value,
        parent: Some(parent.clone()),
        cancel: p.cancel.clone(),
        done: p.done.clone(),
        deadline: p.deadline,
        value: Some((Box::new(key), Box::new(value))),
    }))
}

impl Context {
    /// A channel closed when this context is cancelled (Go's `ctx.Done()`), for a `select!`
    /// case: `recv(ctx.done()) -> _ => ...`. For a context that can never be cancelled
    /// (`background()` and its value children) it never fires. Borrowed, so a `select!` in a
    /// loop costs no reference count; `.clone()` it to keep it apart from the context.
    ///
    /// ```
    /// let (ctx, cancel) = gort::context::with_cancel(&gort::context::background());
    /// let done = ctx.done().clone();
    /// let waiter = gort::go!(move || done.recv().is_err());
    /// cancel.cancel();
    /// assert!(waiter.join().unwrap());
    /// ```
    pub fn done(&self) -> &Receiver<()> {
        &self.0.done
    }

    /// `None` while the context is live; once it is cancelled, why (Go's `ctx.Err()`). Set
    /// before `done` closes and never changes after.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gort::context::{self, ContextError};
    /// let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::ZERO);
    /// assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
    /// ```
    pub fn err(&self) -> Option<ContextError> {
        self.0.cancel.as_ref()?.err()
    }

    /// The time at which this context will be cancelled by a deadline, its own or an
    /// ancestor's (Go's `ctx.Deadline()`); `None` if it has none.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use gort::context;
    /// let at = Instant::now() + Duration::from_secs(60);
    /// let (parent, _c1) = context::with_deadline(&context::background(), at);
    /// let (child, _c2) = context::with_timeout(&parent, Duration::from_secs(3600));
    /// assert_eq!(child.deadline(), Some(at)); // the earlier one
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.0.deadline
    }

    /// The value stored under `key` by the nearest [`with_value`] at or above this context
    /// (Go's `ctx.Value(key)`), or `None`.
    ///
    /// ```
    /// use gort::context::{self, Key};
    /// #[derive(PartialEq)]
    /// struct Depth;
    /// impl Key for Depth {
    ///     type Value = u32;
    /// }
    /// let a = context::with_value(&context::background(), Depth, 1);
    /// let (b, _cancel) = context::with_cancel(&a);
    /// let c = context::with_value(&b, Depth, 2);
    /// assert_eq!(b.value(&Depth), Some(&1));
    /// assert_eq!(c.value(&Depth), Some(&2)); // the nearest wins
    /// ```
    pub fn value<K: Key>(&self, key: &K) -> Option<&K::Value> {
        let mut node = &self.0;
        loop {
            if let Some((k, v)) = &node.value {
                if k.downcast_ref::<K>() == Some(key) {
                    return v.downcast_ref::<K::Value>();
                }
            }
            node = &node.parent.as_ref()?.0;
        }
    }

    /// Why this context was cancelled (Go 1.20's `context.Cause`): the cause given to
    /// [`CancelFn::cancel_with_cause`] on it or on the ancestor whose cancellation reached it,
    /// else its [`err`](Context::err) as an error. `None` while it is live.
    ///
    /// ```
    /// use gort::context;
    /// let (parent, cancel) = context::with_cancel(&context::background());
    /// let (child, _c) = context::with_cancel(&parent);
    /// cancel.cancel_with_cause("shutting down");
    /// assert_eq!(child.cause().unwrap().to_string(), "shutting down");
    /// assert_eq!(child.err(), Some(context::ContextError::Canceled));
    /// ```
    pub fn cause(&self) -> Option<Cause> {
        self.0.cancel.as_ref()?.cause()
    }

    /// The number of live cancellable children and pending [`after_func`]s (and waits on this
    /// context) registered with its nearest cancellable context (0 for `background()`). For
    /// tests and diagnostics: a cancelled child, a stopped or fired `after_func`, is no longer
    /// counted.
    ///
    /// ```
    /// let (parent, _c) = gort::context::with_cancel(&gort::context::background());
    /// let (_child, cancel) = gort::context::with_cancel(&parent);
    /// assert_eq!(parent.child_count(), 1);
    /// drop(cancel);
    /// assert_eq!(parent.child_count(), 0);
    /// ```
    #[doc(hidden)]
    pub fn child_count(&self) -> usize {
        self.0.cancel.as_ref().map_or(0, |c| c.child_count())
    }
}

impl fmt::Debug for Context {
    /// Go's `String()` form: the chain from the root, e.g. `context.Background.WithCancel`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds = Vec::new();
        let mut node = Some(self);
        while let Some(c) = node {
            kinds.push(c.0.kind);
            node = c.0.parent.as_ref();
        }
        for (i, kind) in kinds.iter().rev().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(match kind {
                Kind::Background => "context.Background",
                Kind::Todo => "context.TODO",
                Kind::Cancel => "WithCancel",
                Kind::Deadline => "WithDeadline",
                Kind::Value => "WithValue",
                Kind::WithoutCancel => "WithoutCancel",
            })?;
        }
        Ok(())
    }
}

/// Cancels its context (Go's `CancelFunc`), when [`cancel`](CancelFn::cancel) is called or when
/// it is dropped (the module's top comment says why). Cancelling is idempotent: the first
/// cancellation of a context, by whatever means, sets its error for good.
///
/// ```
/// use gort::context::{self, ContextError};
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// {
///     let _moved = cancel; // e.g. into the goroutine that owns the work
/// } // dropped here: cancelled
/// assert_eq!(ctx.err(), Some(ContextError::Canceled));
/// ```
#[must_use = "dropping a CancelFn cancels its context at once: bind it, `let (ctx, _cancel) = ...`"]
pub struct CancelFn(Arc<Canceller>);

impl CancelFn {
    /// Cancels the context and its descendants with [`ContextError::Canceled`]; stops its
    /// timer and removes it from its parent. Does nothing if it is already cancelled.
    ///
    /// ```
    /// let (ctx, cancel) = gort::context::with_cancel(&gort::context::background());
    /// cancel.cancel();
    /// cancel.cancel(); // no effect
    /// assert!(ctx.err().is_some());
    /// ```
    pub fn cancel(&self) {
        self.0.cancel(ContextError::Canceled, None);
    }

    /// Like [`cancel`](CancelFn::cancel), recording `cause` for [`Context::cause`] on the
    /// context and its descendants (Go's `WithCancelCause`). Ignored if already cancelled.
    ///
    /// ```
    /// let (ctx, cancel) = gort::context::with_cancel(&gort::context::background());
    /// cancel.cancel_with_cause(std::io::Error::other("upstream gone"));
    /// assert_eq!(ctx.cause().unwrap().to_string(), "upstream gone");
    /// ```
    pub fn cancel_with_cause(&self, cause: impl Into<Box<dyn Error + Send + Sync>>) {
        self.0
            .cancel(ContextError::Canceled, Some(Arc::from(cause.into())));
    }
}

impl Drop for CancelFn {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for CancelFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelFn")
            .field("err", &self.0.err())
            .finish()
    }
}
