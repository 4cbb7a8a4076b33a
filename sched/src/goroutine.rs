//! G: one goroutine, in one heap allocation.
//!
//! A goroutine is a `Cell<F, T>`: a type-erased [`Header`] followed by its `Stage` (the closure
//! before it runs, its result after). The scheduler, run queues and wakers only ever see a thin
//! pointer to the header ([`GRef`]); typed operations go through the header's `Vtable`, as
//! tokio's task cells do. One allocation per spawn, no boxing of the closure.
//!
//! The stack is bound lazily: a goroutine that has not yet run is only a closure in a queue
//! (`coroutine` is `None`); its first `execute` takes a stack from the processor's cache and
//! builds the coroutine on it. A million spawns therefore cost a million small allocations and
//! no stacks.
//!
//! Invariants:
//! - `refs` counts [`GRef`]s. The scheduler's reference travels with the right to run the
//!   goroutine (in a run queue, on an M, or held by the park state while parked: see `park.rs`);
//!   `JoinHandle`s and `Unparker`s hold their own.
//! - The fields in `UnsafeCell`/`Cell` (`coroutine`, `yielder`, `locals`, `stage` until it is
//!   `Done`) are touched only by the thread that currently holds the run right: the M executing
//!   the goroutine, or code running on the goroutine's own stack. The park protocol hands the run
//!   right from one thread to another with acquire/release ordering, so these accesses are
//!   never concurrent.
//! - After completion (`JoinState::COMPLETE` published with release ordering) the stage is read
//!   only by the join handle, and only once.
//! - A goroutine parked forever is never freed (the park state owns the scheduler's reference),
//!   exactly as Go leaks a goroutine blocked forever. Its stack is therefore never reused while
//!   anything on it may still be referenced.

use std::alloc::Layout;
use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use corosensei::{Coroutine, Yielder};

use crate::join::JoinState;
use crate::local::LocalMap;
use crate::park::ParkState;
use crate::stack::Stack;

/// Why a goroutine handed control back to its M.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Switch {
    /// `park()`: wait to be readied.
    Park,
    /// `yield_now()`: stay runnable, let others run first.
    Yield,
}

/// The coroutine a goroutine runs in, once it has a stack.
pub(crate) type GCoroutine = Coroutine<(), Switch, (), Stack>;

/// The yielder a goroutine uses to switch back to its M.
pub(crate) type GYielder = Yielder<(), Switch>;

/// Payload of a goroutine that ended by panicking (or could not start).
pub type Panic = Box<dyn Any + Send + 'static>;

/// Type-specific operations on a goroutine cell.
pub(crate) struct Vtable {
    /// Runs the closure on the goroutine's own stack and stores its result.
    run: unsafe fn(NonNull<Header>),
    /// Stores `Err(payload)` as the result without running the closure.
    fail: unsafe fn(NonNull<Header>, Panic),
    /// Moves the result into `*mut Option<std::thread::Result<T>>`.
    take_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Returns the panic message if the result is an unconsumed panic.
    panic_message: unsafe fn(NonNull<Header>) -> Option<String>,
    /// Frees the cell.
    dealloc: unsafe fn(NonNull<Header>),
}

/// The untyped part of a goroutine: everything the scheduler needs.
#[repr(C)]
pub(crate) struct Header {
    refs: AtomicUsize,
    /// The park/unpark handshake state (see `park.rs`).
    pub(crate) park: ParkState,
    /// Completion and join-waiter handshake (see `join.rs`).
    pub(crate) join: JoinState,
    vtable: &'static Vtable,
    /// Goroutine id, unique for the life of the process (1 is the first goroutine).
    pub(crate) id: u64,
    /// Name given with `Builder::name`.
    pub(crate) name: Option<Box<str>>,
    /// Requested stack size in bytes (already rounded), or 0 for the default.
    pub(crate) stack_size: usize,
    /// The coroutine, once the goroutine has run for the first time.
    pub(crate) coroutine: UnsafeCell<Option<GCoroutine>>,
    /// The guard page range `[lo, hi)` of the bound stack (for the overflow report).
    pub(crate) guard: Cell<(usize, usize)>,
    /// Set by the goroutine itself when its coroutine starts.
    pub(crate) yielder: Cell<*const GYielder>,
    /// Goroutine-local storage (`local.rs`).
    pub(crate) locals: UnsafeCell<LocalMap>,
}

/// A goroutine's allocation: the header, then the typed stage.
#[repr(C)]
struct GCell<F, T> {
    header: Header,
    stage: UnsafeCell<Stage<F, T>>,
}

enum Stage<F, T> {
    Pending(F),
    Running,
    Done(std::thread::Result<T>),
    Taken,
}

/// A counted reference to a goroutine.
pub(crate) struct GRef(NonNull<Header>);

// SAFETY: the header's shared fields are atomics; the unsynchronised ones are touched only by the
// holder of the run right, which the park protocol and the run queues pass between threads with
// release/acquire ordering (see the module invariants). The closure and result are `Send`.
// What this does NOT check: the values live on a suspended goroutine's stack, which move to
// another thread with it. That is gort's migration decision and its one soundness caveat
// (thread-bound values held across a blocking call); `docs/SOUNDNESS.md` states it.
unsafe impl Send for GRef {}
// SAFETY: as above: `&GRef` gives access only to the atomics and immutable fields.
unsafe impl Sync for GRef {}

impl GRef {
    /// Allocates a goroutine that will run `f`. The returned reference is the scheduler's; clone
    /// it for the join handle.
    pub(crate) fn new<F, T>(
        cells: Option<&mut crate::cellcache::CellCache>,
        id: u64,
        name: Option<Box<str>>,
        stack_size: usize,
        f: F,
    ) -> GRef
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let cell = GCell {
            header: Header {
                refs: AtomicUsize::new(1),
                park: ParkState::new(),
                join: JoinState::new(),
                vtable: vtable::<F, T>(),
                id,
                name,
                stack_size,
                coroutine: UnsafeCell::new(None),
                guard: Cell::new((0, 0)),
                yielder: Cell::new(std::ptr::null()),
                locals: UnsafeCell::new(LocalMap::new()),
            },
            stage: UnsafeCell::new(Stage::<F, T>::Pending(f)),
        };
        let ptr =
            crate::cellcache::alloc_in(cells, Layout::new::<GCell<F, T>>()).cast::<GCell<F, T>>();
        // SAFETY: `ptr` is a fresh allocation with the layout of `GCell<F, T>`.
        unsafe { ptr.as_ptr().write(cell) };
        GRef(ptr.cast())
    }

    /// The header. Valid for as long as this reference lives.
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: a live `GRef` keeps the allocation alive (refs >= 1).
        unsafe { self.0.as_ref() }
    }

    /// Gives up this reference as a raw pointer, for queues that store pointers.
    #[inline]
    pub(crate) fn into_raw(self) -> NonNull<Header> {
        ManuallyDrop::new(self).0
    }

    /// Takes back a reference given up with [`GRef::into_raw`].
    ///
    /// # Safety
    /// `ptr` must come from `into_raw` and be used to rebuild exactly one `GRef`.
    #[inline]
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> GRef {
        GRef(ptr)
    }

    /// Takes a new counted reference from a pointer to a live goroutine.
    ///
    /// # Safety
    /// The goroutine must be kept alive by some other reference for the duration of this call.
    #[inline]
    pub(crate) unsafe fn clone_from_ptr(ptr: *const Header) -> GRef {
        // SAFETY: the caller guarantees the header is alive.
        let header = unsafe { &*ptr };
        header.refs.fetch_add(1, Ordering::Relaxed);
        GRef(NonNull::from(header))
    }

    #[inline]
    pub(crate) fn as_ptr(&self) -> *const Header {
        self.0.as_ptr()
    }

    /// Runs the goroutine's closure. Called once, on the goroutine's own stack.
    pub(crate) fn run(&self) {
        // SAFETY: only the holder of the run right calls this, once (see `machine::execute`).
        unsafe { (self.header().vtable.run)(self.0) }
    }

    /// Completes the goroutine with `payload` as its panic, without running it.
    pub(crate) fn fail(&self, payload: Panic) {
        // SAFETY: called by the holder of the run right before the closure ever ran.
        unsafe { (self.header().vtable.fail)(self.0, payload) }
    }

    /// Moves the result out into `out`, which must be `*mut Option<std::thread::Result<T>>` for
    /// the goroutine's `T`.
    ///
    /// # Safety
    /// The goroutine has completed (acquire-observed), `out` has the right type, and this is the
    /// only call.
    pub(crate) unsafe fn take_output(&self, out: *mut ()) {
        // SAFETY: forwarded from the caller.
        unsafe { (self.header().vtable.take_output)(self.0, out) }
    }

    /// The message of an unconsumed panic result, if any.
    ///
    /// # Safety
    /// The goroutine has completed (acquire-observed) and nobody takes the output concurrently.
    pub(crate) unsafe fn panic_message(&self) -> Option<String> {
        // SAFETY: forwarded from the caller.
        unsafe { (self.header().vtable.panic_message)(self.0) }
    }
}

impl Clone for GRef {
    #[inline]
    fn clone(&self) -> GRef {
        self.header().refs.fetch_add(1, Ordering::Relaxed);
        GRef(self.0)
    }
}

impl Drop for GRef {
    #[inline]
    fn drop(&mut self) {
        if self.header().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        std::sync::atomic::fence(Ordering::Acquire);
        // SAFETY: this was the last reference; nothing else can reach the cell.
        unsafe { (self.header().vtable.dealloc)(self.0) }
    }
}

impl Header {
    /// The goroutine's name, or "" if it has none.
    pub(crate) fn name_str(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

fn vtable<F, T>() -> &'static Vtable
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    &Vtable {
        run: run::<F, T>,
        fail: fail::<F, T>,
        take_output: take_output::<F, T>,
        panic_message: panic_message::<F, T>,
        dealloc: dealloc::<F, T>,
    }
}

/// # Safety
/// `ptr` points to a live `GCell<F, T>` and the caller holds its run right.
unsafe fn stage<'a, F, T>(ptr: NonNull<Header>) -> &'a mut Stage<F, T> {
    // SAFETY: the header is the first field of the `repr(C)` cell; exclusivity is the caller's.
    unsafe { &mut *(*ptr.cast::<GCell<F, T>>().as_ptr()).stage.get() }
}

unsafe fn run<F, T>(ptr: NonNull<Header>)
where
    F: FnOnce() -> T,
{
    // SAFETY: the caller holds the run right (vtable contract).
    let st = unsafe { stage::<F, T>(ptr) };
    let Stage::Pending(f) = std::mem::replace(st, Stage::Running) else {
        unreachable!("goroutine run twice");
    };
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    // SAFETY: still the run right holder; the closure's borrows ended when it returned.
    *unsafe { stage::<F, T>(ptr) } = Stage::Done(result);
}

unsafe fn fail<F, T>(ptr: NonNull<Header>, payload: Panic) {
    // SAFETY: the caller holds the run right (vtable contract).
    *unsafe { stage::<F, T>(ptr) } = Stage::Done(Err(payload));
}

unsafe fn take_output<F, T>(ptr: NonNull<Header>, out: *mut ()) {
    // SAFETY: completion was acquire-observed and this is the only reader (vtable contract).
    let st = unsafe { stage::<F, T>(ptr) };
    let Stage::Done(result) = std::mem::replace(st, Stage::Taken) else {
        unreachable!("goroutine output taken before completion or twice");
    };
    // SAFETY: the caller passes a `*mut Option<thread::Result<T>>` for this `T`.
    unsafe { *out.cast::<Option<std::thread::Result<T>>>() = Some(result) };
}

unsafe fn panic_message<F, T>(ptr: NonNull<Header>) -> Option<String> {
    // SAFETY: completion was acquire-observed and nobody takes the output concurrently.
    match unsafe { stage::<F, T>(ptr) } {
        Stage::Done(Err(payload)) => Some(payload_message(payload.as_ref())),
        _ => None,
    }
}

unsafe fn dealloc<F, T>(ptr: NonNull<Header>) {
    let cell = ptr.cast::<GCell<F, T>>();
    // SAFETY: the last reference is gone: nothing else can reach the cell, which was written
    // by `GRef::new` into an allocation of this layout from `cellcache::alloc`.
    unsafe {
        std::ptr::drop_in_place(cell.as_ptr());
        crate::cellcache::dealloc(cell.cast(), Layout::new::<GCell<F, T>>());
    }
}

/// A human-readable message for a panic payload.
pub(crate) fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(e) = payload.downcast_ref::<crate::stack::StackError>() {
        e.to_string()
    } else {
        "Box<dyn Any>".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_stays_small() {
        // The header is per-goroutine overhead at the million scale; keep an eye on it.
        assert!(
            std::mem::size_of::<Header>() <= 192,
            "{}",
            std::mem::size_of::<Header>()
        );
    }

    #[test]
    fn refcount_frees_once() {
        use std::sync::Arc;
        let token = Arc::new(());
        let t2 = token.clone();
        let g = GRef::new(None, 1, None, 0, move || drop(t2));
        let g2 = g.clone();
        drop(g);
        assert_eq!(Arc::strong_count(&token), 2);
        drop(g2);
        assert_eq!(
            Arc::strong_count(&token),
            1,
            "closure dropped with the cell"
        );
    }

    #[test]
    fn run_then_take_output() {
        let g = GRef::new(None, 1, None, 0, || 41 + 1);
        g.run();
        let mut out: Option<std::thread::Result<i32>> = None;
        // SAFETY: run completed on this thread; `out` matches T = i32; taken once.
        unsafe { g.take_output((&mut out as *mut Option<std::thread::Result<i32>>).cast()) };
        assert_eq!(out.unwrap().unwrap(), 42);
    }
}
