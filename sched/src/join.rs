//! Joining a goroutine: the completion handshake between a finished goroutine and its
//! [`JoinHandle`], and the report of panics nobody joins.
//!
//! `JoinState` holds three bits. `COMPLETE` is set once, by the M that ran the goroutine to
//! its end, after the result is stored. `WAITER` is set by a joiner after it stored its
//! `Unparker` in `waiter`; `DETACHED` by a handle dropped without joining. Whoever sets its bit
//! second sees the other's: a completer that sees `WAITER` wakes the joiner; a joiner that sees
//! `COMPLETE` takes the result without parking; a completer that sees `DETACHED`, or a handle
//! dropped after `COMPLETE`, reports an unjoined panic.
//!
//! Invariants: `waiter` is written only before `WAITER` is set (release) and read only by the
//! completer after it observed `WAITER` (acquire). The result is read only after `COMPLETE` was
//! observed with acquire ordering, and at most once.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::goroutine::{GRef, Panic};
use crate::park::{park, unparker, Unparker};

const COMPLETE: u8 = 1;
const WAITER: u8 = 2;
const DETACHED: u8 = 4;

/// Completion state of one goroutine (lives in its header).
pub(crate) struct JoinState {
    bits: AtomicU8,
    waiter: UnsafeCell<Option<Unparker>>,
}

impl JoinState {
    pub(crate) fn new() -> JoinState {
        JoinState {
            bits: AtomicU8::new(0),
            waiter: UnsafeCell::new(None),
        }
    }

    fn is_complete(&self) -> bool {
        self.bits.load(Ordering::Acquire) & COMPLETE != 0
    }
}

/// Publishes the completion of `g` (its result is stored): wakes a joiner, or reports an
/// unjoined panic if the handle is already gone. Called by the M after the goroutine returned.
pub(crate) fn complete(g: &GRef) {
    let header = g.header();
    let prev = header.join.bits.fetch_or(COMPLETE, Ordering::AcqRel);
    if prev & WAITER != 0 {
        // SAFETY: WAITER was set after the joiner wrote `waiter` (release), observed here
        // with acquire; the joiner never touches `waiter` again.
        let waiter = unsafe { (*header.join.waiter.get()).take() };
        if let Some(w) = waiter {
            w.unpark_later();
        }
    }
    if prev & DETACHED != 0 {
        report_unjoined(g);
    }
}

/// Reports an unjoined panic of a completed goroutine whose handle is gone.
pub(crate) fn report_unjoined(g: &GRef) {
    // SAFETY: the goroutine completed (observed with acquire) and its handle is gone, so no one
    // takes the output concurrently.
    if let Some(msg) = unsafe { g.panic_message() } {
        crate::config::report_unjoined_panic(g.header().id, g.header().name_str(), &msg);
    }
}

/// An owned permission to join a goroutine (wait for it to end and take its result), as
/// `std::thread::JoinHandle` is for a thread.
///
/// Dropping the handle detaches the goroutine: it keeps running, and if it panics the panic is
/// reported on stderr with its id and name (see [`crate::set_unjoined_panic_policy`]).
///
/// ```
/// let h = sched::spawn(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// ```
pub struct JoinHandle<T> {
    g: Option<GRef>,
    _result: PhantomData<fn() -> T>,
}

// SAFETY: the handle only reads the result (T: Send) once completion is published; the rest
// of the header it touches is atomic.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only allows reading atomics (`is_finished`, `id`).
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(crate) fn new(g: GRef) -> JoinHandle<T> {
        JoinHandle {
            g: Some(g),
            _result: PhantomData,
        }
    }

    fn g(&self) -> &GRef {
        self.g.as_ref().expect("join handle used after join")
    }

    /// Waits for the goroutine to end and returns its result, or the payload it panicked with
    /// (`Err`), like `std::thread::JoinHandle::join`. Parks the calling goroutine (or blocks the
    /// calling thread outside the runtime).
    ///
    /// ```
    /// let h = sched::spawn(|| panic!("boom"));
    /// let err = h.join().unwrap_err();
    /// assert_eq!(*err.downcast_ref::<&str>().unwrap(), "boom");
    /// ```
    pub fn join(mut self) -> Result<T, Panic> {
        let g = self.g.take().expect("join handle used after join");
        wait_complete(&g);
        let mut out: Option<std::thread::Result<T>> = None;
        // SAFETY: completion was observed with acquire in `wait_complete`; `out` has the
        // goroutine's result type `T` (this handle was created for it); we take it once.
        unsafe { g.take_output((&mut out as *mut Option<std::thread::Result<T>>).cast()) };
        out.expect("goroutine output missing")
    }

    /// True once the goroutine has ended (`join` will not block).
    pub fn is_finished(&self) -> bool {
        self.g().header().join.is_complete()
    }

    /// The goroutine's id (as [`crate::current_id`] returns inside it).
    pub fn id(&self) -> u64 {
        self.g().header().id
    }

    /// The goroutine's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.g().header().name.as_deref()
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .finish()
    }
}

fn wait_complete(g: &GRef) {
    let join = &g.header().join;
    if join.is_complete() {
        return;
    }
    // SAFETY: until WAITER is set, only this (the unique) handle touches `waiter`.
    unsafe { *join.waiter.get() = Some(unparker()) };
    if join.bits.fetch_or(WAITER, Ordering::AcqRel) & COMPLETE != 0 {
        return;
    }
    while !join.is_complete() {
        park();
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let Some(g) = self.g.take() else { return };
        let prev = g.header().join.bits.fetch_or(DETACHED, Ordering::AcqRel);
        if prev & COMPLETE != 0 {
            report_unjoined(&g);
        }
    }
}
