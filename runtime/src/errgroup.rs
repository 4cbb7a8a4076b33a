//! Go's `golang.org/x/sync/errgroup`: a [`Group`] of goroutines working on parts of one task,
//! whose [`wait`](Group::wait) returns when all are done, with the first error any returned.
//!
//! [`Group::with_context`] also derives a [`Context`] that is cancelled on the first error (so
//! the other members, selecting on its `done()`, stop early), with that error as its
//! [`cause`](Context::cause), and when `wait` returns.
//! [`set_limit`](Group::set_limit) bounds how many members run at once:
//! [`go`](Group::go) parks (a plain thread blocks) while the limit is reached, and
//! [`try_go`](Group::try_go) declines instead.
//!
//! ```
//! use gort::context;
//! use gort::errgroup::Group;
//!
//! let (group, ctx) = Group::with_context(&context::background());
//! for part in 0..10u32 {
//!     let ctx = ctx.clone();
//!     group.go(move || {
//!         if part == 7 {
//!             return Err(format!("part {part} failed"));
//!         }
//!         // Go's `select { case <-ctx.Done(): return ctx.Err() ... }`: the others stop early.
//!         let _ = ctx.done().recv();
//!         Err("cancelled".to_string())
//!     });
//! }
//! assert_eq!(group.wait(), Err("part 7 failed".to_string())); // the first error wins
//! assert_eq!(ctx.cause().unwrap().to_string(), "part 7 failed"); // and is the cause
//! ```
//!
//! # Panics
//!
//! A member that panics does not take the process down: the group records the first panic,
//! cancels the derived context as for an error (the cause says a member panicked, with the
//! panic's message), and [`wait`](Group::wait), once every member
//! is done, resumes it on the waiting goroutine (a panic outranks an error). `wait` is the
//! members' join, so the unjoined-panic policy
//! ([`set_unjoined_panic_policy`](crate::set_unjoined_panic_policy)) does not apply to them;
//! the panic hook still prints a member's panic when it happens, so a group that is waited
//! for late, or never, does not hide it. (Go's x/sync shipped this propagation in 2025 and
//! took it back: there, a panic had crashed the program at once, and a late `Wait` held it
//! back.)
//!
//! # Invariants
//!
//! - `members` counts the members started and not yet finished; a member's slot of the limit
//!   is released before it leaves the count, so `wait` returns with every slot free.
//! - `outcome` holds the first error and the first panic since the last `wait`; the cancel
//!   that goes with the first of either is made after the outcome's lock is released.
//!
//! Go's x/sync/errgroup is the reference design; no Go code is copied.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};

use chan::sync::{Semaphore, WaitGroup};

use crate::context::{self, CancelFn, Context};

/// A group of goroutines working on parts of one task (Go's `errgroup.Group`); `E` is the
/// members' error type. The module's top comment has the model.
///
/// A `Group` is a handle (an `Arc` inside): clones are the same group, so a member may start
/// more members through a clone. `Send` and `Sync` when `E: Send`. Every method works from
/// goroutines and plain threads alike.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let group = gort::errgroup::Group::<std::io::Error>::new();
/// let sum = Arc::new(AtomicU64::new(0));
/// for i in 1..=100 {
///     let sum = sum.clone();
///     group.go(move || {
///         sum.fetch_add(i, Ordering::Relaxed);
///         Ok(())
///     });
/// }
/// group.wait().unwrap();
/// assert_eq!(sum.load(Ordering::Relaxed), 5050);
/// ```
pub struct Group<E> {
    inner: Arc<Inner<E>>,
}

struct Inner<E> {
    members: WaitGroup,
    outcome: Mutex<Outcome<E>>,
    /// The derived context (`with_context` groups only).
    derived: Option<Derived<E>>,
    /// The limit on running members, `None` without one.
    limit: Mutex<Option<Slots>>,
}

/// The canceller of a `with_context` group's context, and how an error becomes its cause.
struct Derived<E> {
    cancel: CancelFn,
    /// `E`'s `Display`: the cause's text.
    describe: fn(&E) -> String,
}

/// What the members have returned since the last `wait`.
struct Outcome<E> {
    error: Option<E>,
    panic: Option<Box<dyn Any + Send>>,
}

/// The limit on running members: a semaphore of `capacity` permits.
#[derive(Clone)]
struct Slots {
    semaphore: Arc<Semaphore>,
    capacity: usize,
}

impl<E: Send + 'static> Group<E> {
    /// A group with no context and no limit (Go's zero `errgroup.Group`).
    ///
    /// ```
    /// let group = gort::errgroup::Group::<String>::new();
    /// assert_eq!(group.wait(), Ok(())); // no members: at once
    /// ```
    pub fn new() -> Group<E> {
        Group::with_derived(None)
    }

    /// A group and a context derived from `parent` (Go's `errgroup.WithContext`): the context
    /// is cancelled the first time a member returns an error (or panics), or when
    /// [`wait`](Group::wait) returns, whichever comes first; also when the last handle of the
    /// group is dropped.
    ///
    /// The first error is the context's [`cause`](Context::cause), as Go's `context.Cause`
    /// gives it: an error whose text is the member's error's (`E`'s `Display`); a panic's
    /// cause is `errgroup: a member panicked: ` and its message. Cancelled by `wait` or a
    /// drop with no error, the cause is the context's `err()`.
    ///
    /// ```
    /// use gort::context;
    /// let (group, ctx) = gort::errgroup::Group::<String>::with_context(&context::background());
    /// group.go(|| Ok(()));
    /// assert!(ctx.err().is_none());
    /// group.wait().unwrap();
    /// assert_eq!(ctx.err(), Some(context::ContextError::Canceled)); // wait cancels it
    ///
    /// let (group, ctx) = gort::errgroup::Group::with_context(&context::background());
    /// group.go(|| Err(std::io::Error::other("disk full")));
    /// assert_eq!(group.wait().unwrap_err().to_string(), "disk full");
    /// assert_eq!(ctx.cause().unwrap().to_string(), "disk full");
    /// ```
    pub fn with_context(parent: &Context) -> (Group<E>, Context)
    where
        E: fmt::Display,
    {
        let (ctx, cancel) = context::with_cancel(parent);
        let derived = Derived {
            cancel,
            describe: |e: &E| e.to_string(),
        };
        (Group::with_derived(Some(derived)), ctx)
    }

    fn with_derived(derived: Option<Derived<E>>) -> Group<E> {
        Group {
            inner: Arc::new(Inner {
                members: WaitGroup::new(),
                outcome: Mutex::new(Outcome {
                    error: None,
                    panic: None,
                }),
                derived,
                limit: Mutex::new(None),
            }),
        }
    }

    /// Runs `f` in a new goroutine, a member of the group (Go's `g.Go(f)`). With a limit set,
    /// first parks until fewer than the limit are running. The first error any member returns
    /// is what [`wait`](Group::wait) returns; it cancels the derived context.
    ///
    /// ```
    /// let group = gort::errgroup::Group::new();
    /// group.go(|| Err("no"));
    /// group.go(|| Ok(()));
    /// assert_eq!(group.wait(), Err("no"));
    /// ```
    pub fn go(&self, f: impl FnOnce() -> Result<(), E> + Send + 'static) {
        let slot = self.inner.slots();
        if let Some(slots) = &slot {
            slots.semaphore.acquire();
        }
        self.start(f, slot);
    }

    /// Runs `f` in a new goroutine, a member of the group, if the limit allows one more now
    /// (Go's `g.TryGo(f)`); true if it started. Without a limit, always starts it.
    ///
    /// ```
    /// let group = gort::errgroup::Group::<()>::new();
    /// group.set_limit(1);
    /// let (tx, rx) = gort::chan::<()>(0);
    /// assert!(group.try_go(move || rx.recv().map_err(drop)));
    /// assert!(!group.try_go(|| Ok(()))); // the one slot is taken
    /// tx.send(()).unwrap();
    /// group.wait().unwrap();
    /// assert!(group.try_go(|| Ok(())));
    /// # group.wait().unwrap();
    /// ```
    pub fn try_go(&self, f: impl FnOnce() -> Result<(), E> + Send + 'static) -> bool {
        let slot = self.inner.slots();
        if let Some(slots) = &slot {
            if !slots.semaphore.try_acquire() {
                return false;
            }
        }
        self.start(f, slot);
        true
    }

    /// Starts the member, which holds `slot` (already acquired) until it is done.
    fn start(&self, f: impl FnOnce() -> Result<(), E> + Send + 'static, slot: Option<Slots>) {
        self.inner.members.add(1);
        let inner = self.inner.clone();
        // Detached: the member reports through `inner`, and catches its own panic, so its
        // goroutine always ends normally.
        drop(sched::spawn(move || {
            // Unwind safety: a panic is handed to `wait`'s caller, who sees it as if `f` had
            // run there; nothing here observes state `f` left half-changed.
            let result = panic::catch_unwind(AssertUnwindSafe(f));
            inner.record(result);
            if let Some(slots) = slot {
                slots.semaphore.release();
            }
            inner.members.done();
        }));
    }

    /// Waits until every member has returned, cancels the derived context, and returns the
    /// first error a member returned (Go's `g.Wait()`). The error is handed out once: a later
    /// `wait` reports only what members return after this one.
    ///
    /// Members may be started while a `wait` is on (from a running member, say); as with
    /// [`sync::WaitGroup`](crate::sync::WaitGroup), starting one after the group has emptied
    /// while a `wait` is still returning is a race (Go's rule).
    ///
    /// # Panics
    ///
    /// If a member panicked: with the first member's panic payload, once every member is
    /// done (`std::panic::resume_unwind`).
    ///
    /// ```
    /// let group = gort::errgroup::Group::<()>::new();
    /// group.go(|| panic!("member failed"));
    /// let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| group.wait()));
    /// let payload = caught.unwrap_err();
    /// assert_eq!(payload.downcast_ref::<&str>(), Some(&"member failed"));
    /// ```
    pub fn wait(&self) -> Result<(), E> {
        self.inner.members.wait();
        self.inner.cancel();
        let (error, panic) = {
            let mut outcome = self.inner.outcome();
            (outcome.error.take(), outcome.panic.take())
        };
        if let Some(payload) = panic {
            panic::resume_unwind(payload);
        }
        error.map_or(Ok(()), Err)
    }

    /// Limits the group to `n` running members (Go's `g.SetLimit(n)`): [`go`](Group::go)
    /// parks and [`try_go`](Group::try_go) declines while `n` are running. A limit of 0 lets
    /// none start.
    ///
    /// # Panics
    ///
    /// If members started under the current limit are still running (Go's rule: change the
    /// limit between rounds, not during one).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let group = gort::errgroup::Group::<()>::new();
    /// group.set_limit(2);
    /// let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// for _ in 0..20 {
    ///     let (running, most) = (running.clone(), most.clone());
    ///     group.go(move || {
    ///         most.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
    ///         gort::yield_now();
    ///         running.fetch_sub(1, Ordering::SeqCst);
    ///         Ok(())
    ///     });
    /// }
    /// group.wait().unwrap();
    /// assert!(most.load(Ordering::SeqCst) <= 2);
    /// ```
    pub fn set_limit(&self, n: usize) {
        self.replace_limit(Some(Slots {
            semaphore: Arc::new(Semaphore::new(n)),
            capacity: n,
        }));
    }

    /// Removes the limit (Go's `g.SetLimit(-1)`).
    ///
    /// # Panics
    ///
    /// As [`set_limit`](Group::set_limit).
    ///
    /// ```
    /// let group = gort::errgroup::Group::<()>::new();
    /// group.set_limit(0);
    /// assert!(!group.try_go(|| Ok(())));
    /// group.remove_limit();
    /// assert!(group.try_go(|| Ok(())));
    /// # group.wait().unwrap();
    /// ```
    pub fn remove_limit(&self) {
        self.replace_limit(None);
    }

    fn replace_limit(&self, new: Option<Slots>) {
        let mut limit = self.inner.limit.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = &*limit {
            let running = old.capacity - old.semaphore.available().min(old.capacity);
            assert!(
                running == 0,
                "errgroup: modify limit while {running} goroutines in the group are still active"
            );
        }
        *limit = new;
    }
}

impl<E> Inner<E> {
    /// The current limit's slots (cloned: a member keeps the ones it was started under).
    fn slots(&self) -> Option<Slots> {
        self.limit.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn outcome(&self) -> MutexGuard<'_, Outcome<E>> {
        // Only `take`s and assignments run under the lock; a poisoned one is consistent.
        self.outcome.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records what a member returned; the first error or panic cancels the context, with it
    /// as the cause (described under the lock, as the error moves into the outcome; the
    /// cancel runs after the lock is released).
    fn record(&self, result: std::thread::Result<Result<(), E>>) {
        let cause = {
            let mut outcome = self.outcome();
            let first = outcome.error.is_none() && outcome.panic.is_none();
            let describe = self.derived.as_ref().filter(|_| first).map(|d| d.describe);
            match result {
                Ok(Ok(())) => return,
                Ok(Err(e)) => {
                    let cause = describe.map(|describe| describe(&e));
                    outcome.error.get_or_insert(e);
                    cause
                }
                Err(payload) => {
                    let cause = describe.map(|_| {
                        format!(
                            "errgroup: a member panicked: {}",
                            sched::panic_message(&*payload)
                        )
                    });
                    outcome.panic.get_or_insert(payload);
                    cause
                }
            }
        };
        if let (Some(cause), Some(derived)) = (cause, &self.derived) {
            derived.cancel.cancel_with_cause(cause);
        }
    }

    fn cancel(&self) {
        if let Some(derived) = &self.derived {
            derived.cancel.cancel();
        }
    }
}

impl<E> Clone for Group<E> {
    /// Another handle to the same group.
    fn clone(&self) -> Group<E> {
        Group {
            inner: self.inner.clone(),
        }
    }
}

impl<E: Send + 'static> Default for Group<E> {
    fn default() -> Group<E> {
        Group::new()
    }
}

impl<E> fmt::Debug for Group<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = self.inner.slots().map(|s| s.capacity);
        f.debug_struct("Group")
            .field("limit", &limit)
            .field("with_context", &self.inner.derived.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! The group's bookkeeping, from a plain thread: outcomes, limits, the context.

    use super::*;
    use crate::context::ContextError;

    #[test]
    fn wait_hands_out_the_first_error_once() {
        let group = Group::new();
        group.go(|| Err(1));
        group.wait().unwrap_err();
        assert_eq!(group.wait(), Ok(()));
        group.go(|| Err(2));
        assert_eq!(group.wait(), Err(2));
    }

    #[test]
    fn the_context_is_cancelled_by_the_first_error() {
        let (group, ctx) = Group::with_context(&context::background());
        let (tx, rx) = chan::chan::<()>(0);
        let watcher = ctx.clone();
        group.go(move || {
            let _ = watcher.done().recv();
            tx.send(()).map_err(|_| "gone")
        });
        assert!(ctx.err().is_none());
        group.go(|| Err("first"));
        rx.recv().unwrap(); // the watcher saw `done`
        assert_eq!(ctx.err(), Some(ContextError::Canceled));
        assert_eq!(group.wait(), Err("first"));
    }

    #[test]
    fn a_panic_is_the_cause_with_its_message() {
        let (group, ctx) = Group::<String>::with_context(&context::background());
        group.go(|| panic!("member {} failed", 3));
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| group.wait()));
        assert!(caught.is_err());
        assert_eq!(
            ctx.cause().unwrap().to_string(),
            "errgroup: a member panicked: member 3 failed"
        );
    }

    #[test]
    fn dropping_the_group_cancels_its_context() {
        let (group, ctx) = Group::<String>::with_context(&context::background());
        drop(group);
        assert_eq!(ctx.err(), Some(ContextError::Canceled));
    }

    #[test]
    fn a_limit_of_zero_starts_nothing() {
        let group = Group::<()>::new();
        group.set_limit(0);
        assert!(!group.try_go(|| Ok(())));
        group.set_limit(1); // nothing running under the old limit: allowed
        assert!(group.try_go(|| Ok(())));
        group.wait().unwrap();
    }

    #[test]
    fn changing_the_limit_while_members_run_panics() {
        let group = Group::<()>::new();
        group.set_limit(2);
        let (tx, rx) = chan::chan::<()>(0);
        group.go(move || rx.recv().map_err(drop));
        let refused = panic::catch_unwind(AssertUnwindSafe(|| group.set_limit(3)));
        let message = refused.unwrap_err();
        assert_eq!(
            message.downcast_ref::<String>().map(String::as_str),
            Some("errgroup: modify limit while 1 goroutines in the group are still active")
        );
        tx.send(()).unwrap();
        group.wait().unwrap();
        group.set_limit(3);
    }

    #[test]
    fn a_panic_outranks_an_error_and_every_member_finishes_first() {
        testkit::quiet_expected_panics();
        let group = Group::new();
        let (tx, rx) = chan::chan::<()>(0);
        group.go(|| Err("an error"));
        group.go(|| std::panic::panic_any(testkit::Expected(7)));
        let finished = Arc::new(Mutex::new(false));
        let flag = finished.clone();
        group.go(move || {
            rx.recv().unwrap();
            *flag.lock().unwrap() = true;
            Ok(())
        });
        let waiter = std::thread::spawn(move || {
            panic::catch_unwind(AssertUnwindSafe(|| group.wait()))
                .map_err(|p| *p.downcast::<testkit::Expected>().unwrap())
        });
        tx.send(()).unwrap();
        assert_eq!(waiter.join().unwrap(), Err(testkit::Expected(7)));
        assert!(
            *finished.lock().unwrap(),
            "wait returned before the last member"
        );
    }
}
