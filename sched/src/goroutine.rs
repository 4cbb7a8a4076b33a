//! G: one goroutine: its cell, and the join packet beside it.
//!
//! A goroutine is a `GCell<F, T>`: a type-erased [`Header`] followed by a pointer to its join
//! [`Packet`] (where its result goes) and its closure until it runs. The scheduler, run queues
//! and wakers only ever see a thin pointer to the header ([`GRef`]); typed operations go
//! through the header's `Vtable`, as tokio's task cells do. No boxing of the closure: a spawn is
//! two allocations from the P's cache (`cellcache.rs`), the cell and the packet. The cell is
//! freed when the goroutine ends (and reused by the next spawn); only the packet waits for the
//! join (`join.rs`).
//!
//! The stack is bound lazily: a goroutine that has not yet run is only a closure in a queue
//! (`coroutine` is `None`); its first `execute` takes a stack (`Processor::take_stack`), homes
//! the goroutine to its M (`home`) and builds the coroutine on it. A million spawns therefore
//! cost two million small allocations (cells and packets) and no stacks.
//!
//! Invariants:
//! - `refs` counts [`GRef`]s. The scheduler's reference travels with the right to run the
//!   goroutine (in a run queue, on an M, or held by the park state while parked: see `park.rs`);
//!   `Unparker`s hold their own. A `JoinHandle` holds none: it owns the join packet.
//! - The fields in `UnsafeCell`/`Cell` (`coroutine`, `yielder`, `locals`, the closure) are
//!   touched only by the thread that currently holds the run right: the M executing the
//!   goroutine, or code running on the goroutine's own stack. The park protocol hands the run
//!   right from one thread to another with acquire/release ordering, so these accesses are
//!   never concurrent.
//! - The holder of the run right stores the result in the packet, then completes it once
//!   (`GRef::publish_end`); after that the cell never touches the packet again (the handle may
//!   already have freed it).
//! - A goroutine parked forever is never freed (the park state owns the scheduler's reference),
//!   exactly as Go leaks a goroutine blocked forever. Its stack is therefore never reused while
//!   anything on it may still be referenced.

use crate::debug::Origin;
use crate::loom::std_only::AtomicU64;
use crate::loom::{fence, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::alloc::Layout;
use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::Arc;

use corosensei::{Coroutine, Yielder};

use crate::join::Packet;
use crate::local::LocalMap;
use crate::park::ParkState;
use crate::scheduler::Home;
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
    /// Runs the closure on the goroutine's own stack and stores its result in the packet.
    run: unsafe fn(NonNull<Header>),
    /// Stores `Err(payload)` as the result without running the closure.
    fail: unsafe fn(NonNull<Header>, Panic),
    /// Publishes completion to the packet (see `join.rs`).
    publish_end: unsafe fn(NonNull<Header>),
    /// Frees the cell.
    dealloc: unsafe fn(NonNull<Header>),
}

/// The untyped part of a goroutine: everything the scheduler needs.
#[repr(C)]
pub(crate) struct Header {
    refs: AtomicUsize,
    /// The park/unpark handshake state (see `park.rs`).
    pub(crate) park: ParkState,
    /// Live [`StackLent`](crate::StackLent) guards on this goroutine: while non-zero its stack
    /// is not compacted (`compact.rs`). Beside `park`, in what would be padding.
    pub(crate) lent: AtomicU32,
    /// Its place in its M's registry, a list through the headers (`debug/registry.rs`).
    pub(crate) listing: crate::debug::registry::Links,
    /// What it waits for and since when, stored as it parks (`debug/wait.rs`).
    pub(crate) wait: AtomicU64,
    /// Where, by whom and in which leak-check scope it was spawned (`debug/mod.rs`).
    pub(crate) origin: Origin,
    vtable: &'static Vtable,
    /// Goroutine id, unique for the life of the process (1 is the first goroutine).
    pub(crate) id: u64,
    /// Name given with `Builder::name`.
    pub(crate) name: Option<Arc<String>>,
    /// Requested stack size in bytes (already rounded), or 0 for the default.
    pub(crate) stack_size: usize,
    /// The coroutine, once the goroutine has run for the first time.
    pub(crate) coroutine: UnsafeCell<Option<GCoroutine>>,
    /// The lowest usable address of the bound stack, just above its guard
    /// ([`stack_bounds`](Header::stack_bounds)). Written once, by the first `execute`, before
    /// the goroutine can first park.
    pub(crate) stack_lo: Cell<usize>,
    /// Where its stack was when it parked, and whether it is compacted (`compact.rs`).
    pub(crate) parked: crate::compact::Parked,
    /// Set by the goroutine itself when its coroutine starts.
    pub(crate) yielder: Cell<*const GYielder>,
    /// Goroutine-local storage (`local.rs`).
    pub(crate) locals: UnsafeCell<LocalMap>,
    /// The M this goroutine runs on for life, set by its first `execute` (null until then, and
    /// always in migrate mode; `docs/SOUNDNESS.md`). Written once by the holder of the run
    /// right before the goroutine first parks; read by whoever readies it, after winning the
    /// unpark (which orders the read after the write).
    home: AtomicPtr<Home>,
}

/// A goroutine's allocation: the header, then the typed part.
#[repr(C)]
struct GCell<F, T> {
    header: Header,
    /// Where the result goes; shared with the join handle (see `join.rs`).
    packet: NonNull<Packet<T>>,
    /// The closure, until the goroutine runs it.
    f: UnsafeCell<Option<F>>,
}

/// A counted reference to a goroutine.
pub(crate) struct GRef(NonNull<Header>);

// SAFETY: the header's shared fields are atomics; the unsynchronised ones are touched only by the
// holder of the run right, which the park protocol and the run queues pass between threads with
// release/acquire ordering (see the module invariants). The closure and result are `Send`. A
// `GRef` crossing threads does not move a started goroutine's stack to another thread: in the
// default mode a started goroutine is resumed only on its home M (`execute` checks it, and
// aborts otherwise); in migrate mode, the caller of the `unsafe` `enable_migration` promised
// that nothing thread-bound lives on a goroutine's stack across a park (`docs/SOUNDNESS.md`).
unsafe impl Send for GRef {}
// SAFETY: as above: `&GRef` gives access only to the atomics and immutable fields.
unsafe impl Sync for GRef {}

impl GRef {
    /// Allocates a goroutine that will run `f`, and the packet its join handle will own. The
    /// returned reference is the scheduler's.
    pub(crate) fn new<F, T>(
        mut cells: Option<&mut crate::cellcache::CellCache>,
        id: u64,
        name: Option<Arc<String>>,
        stack_size: usize,
        origin: Origin,
        f: F,
    ) -> (GRef, NonNull<Packet<T>>)
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let packet = Packet::alloc(cells.as_deref_mut(), id, name.clone());
        let cell = GCell {
            header: Header {
                refs: AtomicUsize::new(1),
                park: ParkState::new(),
                lent: AtomicU32::new(0),
                listing: crate::debug::registry::Links::new(),
                wait: AtomicU64::new(0),
                origin,
                vtable: vtable::<F, T>(),
                id,
                name,
                stack_size,
                coroutine: UnsafeCell::new(None),
                stack_lo: Cell::new(0),
                parked: crate::compact::Parked::new(),
                yielder: Cell::new(std::ptr::null()),
                locals: UnsafeCell::new(LocalMap::new()),
                home: AtomicPtr::new(std::ptr::null_mut()),
            },
            packet,
            f: UnsafeCell::new(Some(f)),
        };
        let ptr =
            crate::cellcache::alloc_in(cells, Layout::new::<GCell<F, T>>()).cast::<GCell<F, T>>();
        // SAFETY: `ptr` is a fresh allocation with the layout of `GCell<F, T>`.
        unsafe { ptr.as_ptr().write(cell) };
        (GRef(ptr.cast()), packet)
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

    /// Publishes the goroutine's end to its join handle (wakes a joiner, or reports an unjoined
    /// panic). Called once, by the M that ran it to its end (or failed to start it).
    pub(crate) fn publish_end(&self) {
        // SAFETY: the caller held the run right through the end: the result is stored.
        unsafe { (self.header().vtable.publish_end)(self.0) }
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
        fence(Ordering::Acquire);
        // SAFETY: this was the last reference; nothing else can reach the cell.
        unsafe { (self.header().vtable.dealloc)(self.0) }
    }
}

impl Header {
    /// The M this goroutine is homed to, once it has started (never in migrate mode).
    #[inline]
    pub(crate) fn home(&self) -> Option<&'static Home> {
        let home = self.home.load(Ordering::Relaxed);
        // SAFETY: a non-null `home` points to an M's `Home`, which is leaked when the M starts
        // (Ms never exit), so it lives for the rest of the process.
        (!home.is_null()).then(|| unsafe { &*home })
    }

    /// Homes the goroutine to `home`: called by its first `execute`, before it runs.
    pub(crate) fn set_home(&self, home: &'static Home) {
        self.home
            .store(home as *const Home as *mut Home, Ordering::Relaxed);
    }

    /// The goroutine's name, or "" if it has none.
    /// `[lowest usable address, top)` of the bound stack, for compaction (the overflow report
    /// needs only the low end, just above the guard). A stack's usable size is what its
    /// goroutine asked for (`processor::stack_size_for`, as `take_stack` allocates).
    pub(crate) fn stack_bounds(&self) -> (usize, usize) {
        let lo = self.stack_lo.get();
        (lo, lo + crate::processor::stack_size_for(self.stack_size))
    }

    pub(crate) fn name_str(&self) -> &str {
        self.name.as_deref().map_or("", String::as_str)
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
        publish_end: publish_end::<F, T>,
        dealloc: dealloc::<F, T>,
    }
}

/// # Safety
/// `ptr` points to a live `GCell<F, T>`.
unsafe fn cell<'a, F, T>(ptr: NonNull<Header>) -> &'a GCell<F, T> {
    // SAFETY: the header is the first field of the `repr(C)` cell.
    unsafe { ptr.cast::<GCell<F, T>>().as_ref() }
}

unsafe fn run<F, T>(ptr: NonNull<Header>)
where
    F: FnOnce() -> T,
{
    // SAFETY: the caller holds the run right (vtable contract).
    let cell = unsafe { cell::<F, T>(ptr) };
    // SAFETY: the run right makes us the only user of the closure slot.
    let f = unsafe { (*cell.f.get()).take() }.expect("goroutine run twice");
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    // SAFETY: the packet lives until we complete it; we store the result once, before that.
    unsafe { cell.packet.as_ref().set_result(result) };
}

unsafe fn fail<F, T>(ptr: NonNull<Header>, payload: Panic) {
    // SAFETY: the caller holds the run right (vtable contract); the closure never ran.
    let cell = unsafe { cell::<F, T>(ptr) };
    // SAFETY: as in `run`.
    unsafe { cell.packet.as_ref().set_result(Err(payload)) };
}

unsafe fn publish_end<F, T>(ptr: NonNull<Header>) {
    // SAFETY: the caller ran the goroutine to its end (vtable contract).
    let cell = unsafe { cell::<F, T>(ptr) };
    // SAFETY: the result is stored; this is the one completion.
    unsafe { Packet::publish(cell.packet) };
}

unsafe fn dealloc<F, T>(ptr: NonNull<Header>) {
    let cell = ptr.cast::<GCell<F, T>>();
    // SAFETY: the last reference is gone: nothing else can reach the cell, which was written
    // by `GRef::new` into an allocation of this layout from `cellcache::alloc`. Dropping it
    // drops the closure if it never ran; the packet is not the cell's to drop.
    unsafe {
        std::ptr::drop_in_place(cell.as_ptr());
        crate::cellcache::dealloc(cell.cast(), Layout::new::<GCell<F, T>>());
    }
}

/// The body of every goroutine's coroutine, on the goroutine's own stack.
pub(crate) fn goroutine_main(h: *const Header, yielder: &GYielder) {
    // SAFETY: the M that first resumes us holds a reference to the goroutine for as long as it
    // runs, and the goroutine cannot end before this function returns.
    let header = unsafe { &*h };
    header.yielder.set(yielder);
    // SAFETY: `h` is alive (above). The reference is borrowed from the M's (never dropped here),
    // which saves a count/uncount pair per goroutine.
    let g = std::mem::ManuallyDrop::new(unsafe { GRef::from_raw(std::ptr::NonNull::from(header)) });
    g.run();
    // Destructors of goroutine-locals are user code: a panic there is reported, never allowed
    // to unwind into the scheduler (it would kill this M and strand its P).
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::local::drop_locals(header)
    }));
    if let Err(payload) = dropped {
        let what = format!(
            "goroutine {} dropping its goroutine-local values",
            header.id
        );
        crate::config::contained_panic(&what, payload);
    }
}

/// A panic payload's message: the `&str` or `String` that `panic!` gave it (or a stack
/// overflow's report), else `Box<dyn Any>`, as std's panic hook prints it.
///
/// ```
/// let payload = sched::spawn(|| panic!("out of {}", "cheese")).join().unwrap_err();
/// assert_eq!(sched::panic_message(&*payload), "out of cheese");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
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
    use crate::join::JoinHandle;

    #[test]
    fn header_stays_small() {
        // The header is per-goroutine overhead at the million scale; keep an eye on it. 120
        // bytes of scheduling state, 48 for the goroutine dump (`debug/`: origin, wait, the
        // registry's links) and 8 for compaction (`compact.rs`; its lent count sits in
        // `park`'s padding). One more word moves the cells to another allocation size, whose
        // aligned allocation took mimalloc's slow path: 9 % more instructions per spawn.
        assert!(
            std::mem::size_of::<Header>() <= 176,
            "{}",
            std::mem::size_of::<Header>()
        );
    }

    #[test]
    fn refcount_frees_once() {
        let token = Arc::new(());
        let t2 = token.clone();
        let (g, packet) = GRef::new(None, 1, None, 0, Origin::test(), move || drop(t2));
        let handle = JoinHandle::<()>::new(packet);
        let g2 = g.clone();
        drop(g);
        assert_eq!(Arc::strong_count(&token), 2);
        g2.fail(Box::new("not started"));
        g2.publish_end();
        drop(g2);
        assert_eq!(
            Arc::strong_count(&token),
            1,
            "closure dropped with the cell"
        );
        assert!(handle.join().is_err());
    }

    #[test]
    fn run_complete_join() {
        let (g, packet) = GRef::new(None, 1, None, 0, Origin::test(), || 41 + 1);
        let handle = JoinHandle::new(packet);
        g.run();
        g.publish_end();
        drop(g);
        assert_eq!(handle.join().unwrap(), 42);
    }
}
