//! Scoped goroutines: [`scope`] runs a closure that may start goroutines borrowing from the
//! caller's stack, and returns only once all of them have ended, as `std::thread::scope` does
//! for threads.
//!
//! # How
//!
//! A scoped goroutine is an ordinary goroutine (`sched::Builder::spawn`) whose closure has had
//! its lifetime `'scope` erased to `'static` (the one `unsafe` here, argued in
//! `docs/SOUNDNESS.md`, "Scoped goroutines"). What makes that sound is that [`scope`] waits,
//! before it returns, for every such closure to be gone:
//!
//! - `ScopeData::running` (a [`WaitGroup`]) counts the scope's goroutines. `spawn` adds one
//!   before it makes the goroutine's [`Body`]; the `Body`'s `Drop` is the only `done`, and
//!   the last thing it does. A `Body` is dropped exactly once: at the end of its goroutine's
//!   run, or, if the goroutine never ran (no stack could be had for it), when the scheduler
//!   drops its closure. The user never holds a `Body`, so `mem::forget` cannot skip it.
//! - `scope` catches a panic of its closure, then waits for `running` to reach zero, then
//!   resumes the panic. A panic out of that wait itself (the scheduler failing) aborts: the
//!   borrowed data might still be in use.
//!
//! A goroutine's result goes into a [`Packet`] shared (an `Arc`) by its `Body` and its
//! [`ScopedJoinHandle`]; the handle's [`join`](ScopedJoinHandle::join) waits on the packet's
//! [`Cond`] until the `Body` has published the result, and takes it. Whichever of the two drops
//! the packet last drops a result nobody took: the `Body` does so before its `done`; a handle
//! cannot outlive `'scope`.
//!
//! # Panics
//!
//! A goroutine's panic is caught in its `Body`. A `join` returns it as `Err`, as
//! `std::thread::ScopedJoinHandle::join` does. A panic nobody joins (the handle dropped, or
//! forgotten) makes [`scope`] panic once every goroutine has ended: it resumes the first such
//! panic with its payload (std's scope panics with a message of its own instead). A panic of
//! the closure itself wins over those.
//!
//! Invariants:
//! - `running` is above zero while any `Body` of the scope exists.
//! - `unjoined_panics` is the number of goroutines that ended by panicking (or never ran), plus
//!   panics of results dropped in a `Body`, minus the panics a `join` took. A `Body` counts its
//!   panic before it publishes it, so a `join` never takes away what was not yet counted.
//! - `first_panic` holds the payload of a panic counted in `unjoined_panics`, if any reached
//!   a place where it could be kept (a forgotten handle keeps its payload with it).

use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chan::sync::{Cond, Mutex, WaitGroup};
use sched::{Builder, JoinHandle, Panic};

/// Runs `f` with a [`Scope`] in which it can start goroutines that borrow from the caller
/// (anything that outlives the call to `scope`), and returns `f`'s result once every goroutine
/// started in the scope has ended, as `std::thread::scope` does for threads.
///
/// Callable from a goroutine (which parks while it waits) or from a plain thread (which
/// blocks). Goroutines of the scope may start more in it (they get `&Scope` too).
///
/// # Panics
///
/// If `f` panics, `scope` resumes that panic once every goroutine has ended. Otherwise, if a
/// goroutine of the scope panicked and nobody [joined](ScopedJoinHandle::join) it, `scope`
/// resumes the first such panic, with its payload, once every goroutine has ended.
///
/// ```
/// let mut totals = vec![0u64; 4];
/// let data: Vec<u64> = (1..=100).collect();
/// gort::scope(|s| {
///     for (chunk, total) in data.chunks(25).zip(totals.iter_mut()) {
///         s.spawn(move || *total = chunk.iter().sum());
///     }
/// });
/// assert_eq!(totals.iter().sum::<u64>(), 5050); // `data` and `totals` were borrowed
/// ```
///
/// A goroutine cannot borrow what does not outlive the scope:
///
/// ```compile_fail
/// gort::scope(|s| {
///     let local = vec![1, 2, 3];
///     s.spawn(|| local.len()); // error: the goroutine may outlive `local`
/// });
/// ```
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    // The scope's goroutines borrow this goroutine's locals while it may park: its stack is
    // lent until they have all ended (`enable_stack_compaction`).
    let lent = sched::lend_stack();
    let scope = Scope {
        data: Arc::new(ScopeData::new()),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    scope.data.wait_all();
    drop(lent);
    match result {
        Err(payload) => resume_unwind(payload),
        Ok(value) => {
            scope.data.resume_unjoined_panic();
            value
        }
    }
}

/// A scope to start goroutines in, from [`scope`]. `'scope` is the scope's own lifetime
/// (goroutines started in it end within it); `'env` is that of what they may borrow.
///
/// ```
/// let name = String::from("gort");
/// let len = gort::scope(|s| s.spawn(|| name.len()).join().unwrap());
/// assert_eq!(len, 4);
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    /// Invariant in `'scope` and `'env`, as std's `Scope`: neither may be shortened or
    /// lengthened by subtyping.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl<'scope> Scope<'scope, '_> {
    /// Starts a goroutine running `f` in this scope and returns a handle to join it. `f` may
    /// borrow anything that outlives the scope; the goroutine ends before [`scope`] returns,
    /// joined or not.
    ///
    /// ```
    /// let mut log = Vec::new();
    /// let words = ["go", "rust"];
    /// gort::scope(|s| {
    ///     let h = s.spawn(|| words.iter().map(|w| w.len()).sum::<usize>());
    ///     s.spawn(|| log.push("counted"));
    ///     assert_eq!(h.join().unwrap(), 6);
    /// });
    /// assert_eq!(log, ["counted"]);
    /// ```
    ///
    /// What a goroutine borrows stays borrowed until the scope ends:
    ///
    /// ```compile_fail
    /// let mut v = vec![1];
    /// gort::scope(|s| {
    ///     s.spawn(|| v.push(2));
    ///     drop(v); // error: cannot move out of `v` because it is borrowed
    /// });
    /// ```
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.spawn_with(Builder::new(), f)
    }

    /// Like [`spawn`](Scope::spawn), configured by `builder` (its name and stack size), as
    /// std's `Builder::spawn_scoped`.
    ///
    /// ```
    /// let n = 7;
    /// gort::scope(|s| {
    ///     let h = s.spawn_with(gort::Builder::new().name("doubler"), || {
    ///         assert_eq!(gort::current_name().as_deref(), Some("doubler"));
    ///         n * 2
    ///     });
    ///     assert_eq!(h.name(), Some("doubler"));
    ///     assert_eq!(h.join().unwrap(), 14);
    /// });
    /// ```
    pub fn spawn_with<F, T>(&'scope self, builder: Builder, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let packet = Arc::new(Packet::new(self.data.clone()));
        self.data.running.add(1);
        let body = Body {
            f: Some(f),
            result: None,
            packet: Some(packet.clone()),
            scope: self.data.clone(),
        };
        let run: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || body.run());
        // SAFETY: only the lifetime bound changes (same type otherwise, so same layout). The
        // closure is used only while `'scope` is alive: it owns a `Body`, whose drop is the
        // `done` that `scope` waits for before it returns (also when its closure panics), and
        // the `Body` is dropped (at the end of the run, or with the never-run closure) after
        // everything it owns that borrows from `'scope`. After that `done`, what is left of
        // the closure is a `Body` emptied of those (a 'static `Arc<ScopeData>` and the box's
        // memory). `docs/SOUNDNESS.md`, "Scoped goroutines", has the whole SAFETY argument.
        let run: Box<dyn FnOnce() + Send + 'static> = unsafe {
            std::mem::transmute::<
                Box<dyn FnOnce() + Send + 'scope>,
                Box<dyn FnOnce() + Send + 'static>,
            >(run)
        };
        ScopedJoinHandle {
            goroutine: builder.spawn(run),
            packet,
            scope: PhantomData,
        }
    }
}

impl std::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

/// An owned permission to join a scoped goroutine (wait for it to end and take its result),
/// from [`Scope::spawn`]. Dropping it does not stop the goroutine: [`scope`] still waits for
/// it, and resumes its panic if it panicked.
///
/// ```
/// gort::scope(|s| {
///     let h = s.spawn(|| 6 * 7);
///     assert_eq!(h.join().unwrap(), 42);
/// });
/// ```
pub struct ScopedJoinHandle<'scope, T> {
    /// The goroutine itself, for its id and name, and for the `StackError` of one that never
    /// ran. Its result is `()`: the scoped result goes through `packet`.
    goroutine: JoinHandle<()>,
    packet: Arc<Packet<T>>,
    scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the goroutine to end and returns its result, or the payload it panicked with
    /// (`Err`). A panic taken here is handled: [`scope`] does not resume it. Parks the calling
    /// goroutine (or blocks the calling thread).
    ///
    /// ```
    /// gort::scope(|s| {
    ///     let h = s.spawn(|| panic!("boom"));
    ///     let err = h.join().unwrap_err();
    ///     assert_eq!(*err.downcast_ref::<&str>().unwrap(), "boom");
    /// }); // joined: `scope` returns normally
    /// ```
    pub fn join(self) -> Result<T, Panic> {
        let (ran, result) = self.packet.take_when_ended();
        if result.is_err() {
            self.packet
                .scope
                .unjoined_panics
                .fetch_sub(1, Ordering::Relaxed);
        }
        if !ran {
            // The scheduler could not start it: its own handle holds the `StackError`.
            self.goroutine.join()?;
        }
        result
    }

    /// True once the goroutine has ended (`join` will not block).
    ///
    /// ```
    /// gort::scope(|s| {
    ///     let h = s.spawn(|| ());
    ///     while !h.is_finished() {
    ///         gort::yield_now();
    ///     }
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.packet.slot.lock().ended
    }

    /// The goroutine's id (as [`crate::current_id`] returns inside it).
    ///
    /// ```
    /// gort::scope(|s| {
    ///     let h = s.spawn(gort::current_id);
    ///     let id = h.id();
    ///     assert_eq!(h.join().unwrap(), Some(id));
    /// });
    /// ```
    pub fn id(&self) -> u64 {
        self.goroutine.id()
    }

    /// The goroutine's name, if it was started with [`Scope::spawn_with`] and a named
    /// [`Builder`].
    ///
    /// ```
    /// gort::scope(|s| assert_eq!(s.spawn(|| ()).name(), None));
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.goroutine.name()
    }
}

impl<T> std::fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

/// What a scope's goroutines share with it: see the module invariants.
struct ScopeData {
    running: WaitGroup,
    unjoined_panics: AtomicUsize,
    first_panic: Mutex<Option<Panic>>,
}

impl ScopeData {
    fn new() -> ScopeData {
        ScopeData {
            running: WaitGroup::new(),
            unjoined_panics: AtomicUsize::new(0),
            first_panic: Mutex::new(None),
        }
    }

    /// Waits until every goroutine of the scope has ended. Never unwinds: returning early
    /// would leave goroutines using what they borrowed.
    fn wait_all(&self) {
        if catch_unwind(AssertUnwindSafe(|| self.running.wait())).is_err() {
            eprintln!("fatal error: gort::scope could not wait for its goroutines");
            std::process::abort();
        }
    }

    /// A panic nobody can join (a result's drop panicked in a `Body`): counts and keeps it.
    fn panicked(&self, payload: Panic) {
        self.unjoined_panics.fetch_add(1, Ordering::Relaxed);
        self.keep(payload);
    }

    /// Keeps `payload` (already counted) if it is the first.
    fn keep(&self, payload: Panic) {
        let mut first = self.first_panic.lock();
        if first.is_none() {
            *first = Some(payload);
        }
    }

    /// After `wait_all`: resumes the first unjoined panic, if there was one. The counter is
    /// read after `running`'s `wait`, which every `done` (and so every count) happens before.
    fn resume_unjoined_panic(&self) {
        if self.unjoined_panics.load(Ordering::Relaxed) == 0 {
            return;
        }
        match self.first_panic.lock().take() {
            Some(payload) => resume_unwind(payload),
            None => panic!("a scoped goroutine panicked and its handle was forgotten"),
        }
    }
}

/// Where a scoped goroutine's result waits for its handle.
struct Packet<T> {
    slot: Cond<Mutex<Slot<T>>>,
    scope: Arc<ScopeData>,
}

struct Slot<T> {
    /// Set once, by the `Body`, with `result`.
    ended: bool,
    /// False if the goroutine never ran (no stack could be had for it).
    ran: bool,
    /// Taken by `join`; dropped with the packet otherwise.
    result: Option<Result<T, Panic>>,
}

impl<T> Packet<T> {
    fn new(scope: Arc<ScopeData>) -> Packet<T> {
        let slot = Slot {
            ended: false,
            ran: false,
            result: None,
        };
        Packet {
            slot: Cond::with_lock(Mutex::new(slot)),
            scope,
        }
    }

    /// The `Body`'s side: stores the result and wakes a joiner.
    fn publish(&self, ran: bool, result: Result<T, Panic>) {
        let mut slot = self.slot.lock();
        slot.ran = ran;
        slot.result = Some(result);
        slot.ended = true;
        drop(slot);
        self.slot.broadcast();
    }

    /// The handle's side: waits for the end and takes the result.
    fn take_when_ended(&self) -> (bool, Result<T, Panic>) {
        let mut slot = self.slot.lock();
        slot.wait_while(|slot| !slot.ended);
        let result = slot
            .result
            .take()
            .expect("a scoped goroutine's result taken twice");
        (slot.ran, result)
    }
}

impl<T> Drop for Packet<T> {
    fn drop(&mut self) {
        // Nobody joined: a panic is the scope's to resume.
        if let Some(Err(payload)) = self.slot.lock().result.take() {
            self.scope.keep(payload);
        }
    }
}

/// A scoped goroutine's closure and what it reports to: see the module docs. Its `Drop` ends
/// the goroutine's part in the scope.
struct Body<F, T> {
    /// The user's closure until it runs (still here at drop: it never ran).
    f: Option<F>,
    result: Option<Result<T, Panic>>,
    /// `None` only during `drop`.
    packet: Option<Arc<Packet<T>>>,
    scope: Arc<ScopeData>,
}

impl<F: FnOnce() -> T, T> Body<F, T> {
    /// The goroutine's run: the user's closure, its panic caught. Dropping `self` publishes.
    fn run(mut self) {
        let f = self.f.take().expect("a scoped goroutine run twice");
        self.result = Some(catch_unwind(AssertUnwindSafe(f)));
    }
}

impl<F, T> Drop for Body<F, T> {
    fn drop(&mut self) {
        let (ran, result) = match self.f.take() {
            None => (true, self.result.take().expect("a run stores its result")),
            Some(f) => {
                // Never ran. Its closure is dropped here, before `done`, like everything else
                // that borrows from the scope.
                if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(f))) {
                    self.scope.panicked(payload);
                }
                let not_started: Panic = Box::new("a scoped goroutine could not start");
                (false, Err(not_started))
            }
        };
        if result.is_err() {
            self.scope.unjoined_panics.fetch_add(1, Ordering::Relaxed);
        }
        let packet = self.packet.take().expect("a Body is dropped once");
        packet.publish(ran, result);
        // If the handle is gone, this drops the result: user code, so its panic is caught.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(packet))) {
            self.scope.panicked(payload);
        }
        // Last: from here on nothing of the scope's borrows is touched.
        self.scope.running.done();
    }
}

#[cfg(test)]
mod tests {
    //! Each test runs bounded in time (`testkit::bounded`).
    use super::*;
    use testkit::bounded;

    #[test]
    fn a_dropped_handle_leaves_the_panic_to_the_scope() {
        testkit::quiet_expected_panics();
        bounded("dropped handle", || {
            let caught = catch_unwind(|| {
                scope(|s| {
                    drop(s.spawn(|| resume_unwind(Box::new(testkit::Expected(7)))));
                })
            });
            let payload = caught.expect_err("the scope resumes the panic");
            assert_eq!(payload.downcast_ref(), Some(&testkit::Expected(7)));
        });
    }

    #[test]
    fn a_forgotten_handle_still_makes_the_scope_wait_and_panic() {
        testkit::quiet_expected_panics();
        bounded("forgotten handle", || {
            let caught = catch_unwind(|| {
                scope(|s| {
                    std::mem::forget(s.spawn(|| resume_unwind(Box::new(testkit::Expected(8)))));
                })
            });
            let payload = caught.expect_err("the scope panics");
            let msg = payload.downcast_ref::<&str>().copied();
            assert_eq!(
                msg,
                Some("a scoped goroutine panicked and its handle was forgotten")
            );
        });
    }

    #[test]
    fn a_goroutine_that_cannot_start_is_reported() {
        bounded("cannot start", || {
            // No stack can be had for this size: the goroutine never runs.
            let huge = Builder::new().stack_size(1 << 46);
            let mut ran = false;
            scope(|s| {
                let h = s.spawn_with(huge.clone(), || ran = true);
                let err = h.join().expect_err("never ran");
                assert!(err.downcast_ref::<sched::StackError>().is_some());
            });
            assert!(!ran);
            let caught = catch_unwind(AssertUnwindSafe(|| {
                scope(|s| drop(s.spawn_with(huge, || ran = true)))
            }));
            assert!(
                caught.is_err(),
                "an unjoined goroutine that never ran fails the scope"
            );
            assert!(!ran);
        });
    }
}
