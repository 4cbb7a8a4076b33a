//! Joining a goroutine: the [`Packet`] a goroutine and its [`JoinHandle`] share (completion
//! state, the joiner's unparker, the result), and the report of panics nobody joins.
//!
//! The packet is a small allocation of its own, separate from the goroutine's cell, as
//! std::thread's `Packet` is: a goroutine's cell (header, closure, stack binding) is freed the
//! moment it ends and recycled by the next spawn, while only the packet waits for the join.
//! A million goroutines spawned before any is joined therefore keep a million small packets
//! alive, not a million cells.
//!
//! [`JoinState`] holds three bits. `COMPLETE` is set once, by the M that ran the goroutine to
//! its end, after the result is stored; from then on that M never touches the packet again.
//! `WAITER` is set by a joiner after it stored its `Unparker` in `waiter`; `DETACHED` by a
//! handle dropped without joining. Whoever sets its bit second sees the other's: a completer
//! that sees `WAITER` takes the unparker out *before* publishing `COMPLETE`, then wakes the
//! joiner; a joiner that sees `COMPLETE` takes the result without parking; a completer that
//! sees `DETACHED`, or a handle dropped after `COMPLETE`, reports an unjoined panic.
//!
//! Invariants:
//! - The packet is freed exactly once: by the handle (after `join`, or when dropped after
//!   `COMPLETE`), or by the completer if the handle was dropped before `COMPLETE`.
//! - `waiter` is written only by the joiner before `WAITER` is set (release), and read only
//!   by the completer after it observed `WAITER` (acquire) and before it sets `COMPLETE`.
//! - The result is written only before `COMPLETE` (release) and read only after `COMPLETE` was
//!   observed (acquire), by whoever frees the packet.
//!
//! The bit protocol is model-checked with loom (`loom_tests` below).

use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::debug::WaitReason;
use crate::goroutine::{panic_message, Panic};
use crate::loom::{AtomicU32, Ordering};
use crate::park::{park_for, unparker, Unparker};

const COMPLETE: u32 = 1;
const WAITER: u32 = 2;
const DETACHED: u32 = 4;

/// The completion handshake of one goroutine (see the module docs).
pub(crate) struct JoinState(AtomicU32);

/// What the completer must do after publishing completion.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Completed {
    /// A joiner waits: wake it with the unparker taken out of the packet.
    WakeJoiner,
    /// The handle is still alive; it will free the packet.
    HandleFrees,
    /// The handle is gone: report an unconsumed panic and free the packet.
    CompleterFrees,
}

impl JoinState {
    pub(crate) fn new() -> JoinState {
        JoinState(AtomicU32::new(0))
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.0.load(Ordering::Acquire) & COMPLETE != 0
    }

    /// Completer: publishes completion. `take_waiter` runs (once) if a joiner registered, before
    /// completion is published, so the joiner cannot free the packet under it.
    pub(crate) fn set_complete(&self, take_waiter: impl FnOnce()) -> Completed {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            if cur & WAITER != 0 {
                // The joiner is inside `join` and changes nothing until it sees COMPLETE.
                take_waiter();
                self.0.fetch_or(COMPLETE, Ordering::Release);
                return Completed::WakeJoiner;
            }
            match self
                .0
                .compare_exchange(cur, cur | COMPLETE, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if cur & DETACHED != 0 => return Completed::CompleterFrees,
                Ok(_) => return Completed::HandleFrees,
                Err(now) => cur = now,
            }
        }
    }

    /// Joiner, after storing its unparker: true if it must wait (not complete yet); false if
    /// the goroutine completed first (the completer never saw the unparker: it is the joiner's
    /// again).
    pub(crate) fn register_waiter(&self) -> bool {
        self.0.fetch_or(WAITER, Ordering::AcqRel) & COMPLETE == 0
    }

    /// Handle dropped without joining: true if the goroutine already completed (the handle
    /// then reports and frees).
    pub(crate) fn detach(&self) -> bool {
        self.0.fetch_or(DETACHED, Ordering::AcqRel) & COMPLETE != 0
    }
}

/// What a goroutine and its handle share: see the module docs.
pub(crate) struct Packet<T> {
    state: JoinState,
    id: u64,
    name: Option<Arc<String>>,
    waiter: UnsafeCell<Option<Unparker>>,
    result: UnsafeCell<Option<std::thread::Result<T>>>,
}

impl<T> Packet<T> {
    /// Allocates a packet for goroutine `id` (from `cells`, the caller's P's cache, if any).
    pub(crate) fn alloc(
        cells: Option<&mut crate::cellcache::CellCache>,
        id: u64,
        name: Option<Arc<String>>,
    ) -> NonNull<Packet<T>> {
        let ptr = crate::cellcache::alloc_in(cells, std::alloc::Layout::new::<Packet<T>>())
            .cast::<Packet<T>>();
        let packet = Packet {
            state: JoinState::new(),
            id,
            name,
            waiter: UnsafeCell::new(None),
            result: UnsafeCell::new(None),
        };
        // SAFETY: `ptr` is a fresh allocation with the layout of `Packet<T>`.
        unsafe { ptr.as_ptr().write(packet) };
        ptr
    }

    /// Stores the goroutine's result.
    ///
    /// # Safety
    /// Called by the completer, once, before [`Packet::publish`].
    pub(crate) unsafe fn set_result(&self, result: std::thread::Result<T>) {
        // SAFETY: before COMPLETE nobody else touches the result (module invariants).
        unsafe { *self.result.get() = Some(result) };
    }

    /// Publishes completion: wakes the joiner, or reports and frees if the handle is gone.
    /// The completer must not touch the packet afterwards.
    ///
    /// # Safety
    /// `this` is a live packet; called once, by the completer, after `set_result`.
    pub(crate) unsafe fn publish(this: NonNull<Packet<T>>) {
        // SAFETY: the packet lives until COMPLETE is published (the handle frees only after
        // observing it) or, if the handle is gone, until we free it below.
        let packet = unsafe { this.as_ref() };
        let mut waiter = None;
        let done = packet.state.set_complete(|| {
            // SAFETY: WAITER observed (acquire) after the joiner wrote `waiter` (release); the
            // joiner does not touch it again until COMPLETE.
            waiter = unsafe { (*packet.waiter.get()).take() };
        });
        match done {
            Completed::WakeJoiner => {
                if let Some(w) = waiter {
                    w.unpark_later();
                }
            }
            Completed::HandleFrees => {}
            Completed::CompleterFrees => {
                packet.report_unjoined();
                // SAFETY: the handle is gone (DETACHED before COMPLETE): we are the last user.
                unsafe { free(this) };
            }
        }
    }

    fn name_str(&self) -> &str {
        self.name.as_deref().map_or("", String::as_str)
    }

    /// Reports the result if it is a panic nobody will consume.
    fn report_unjoined(&self) {
        // SAFETY: called by the packet's last user after COMPLETE: nobody else reads it.
        if let Some(Err(payload)) = unsafe { &*self.result.get() } {
            let msg = panic_message(payload.as_ref());
            crate::config::report_unjoined_panic(self.id, self.name_str(), &msg);
        }
    }
}

/// Drops and frees a packet.
///
/// The result (a value or a panic payload) is user data whose destructor may panic. As std's
/// `JoinHandle` does ("thread result panicked on drop"), that aborts with a clear message: it
/// runs either in the runtime (the completer of a detached goroutine), where it must not
/// unwind, or in a dropped handle, where unwinding depended on timing (before or after the end).
///
/// # Safety
/// `this` came from [`Packet::alloc`], and its last user calls this once.
unsafe fn free<T>(this: NonNull<Packet<T>>) {
    // SAFETY: the caller is the last user: nobody else reads or writes the result.
    let result = unsafe { (*(*this.as_ptr()).result.get()).take() };
    // SAFETY: as above; the packet is still alive for its id.
    let id = unsafe { this.as_ref() }.id;
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(result))).is_err() {
        crate::config::fatal(&format!(
            "the result of goroutine {id} panicked when dropped"
        ));
    }
    // SAFETY: the caller is the last user; the layout is the one `alloc` used. What is left
    // (the state, the name, an unused waiter) runs no user code when dropped.
    unsafe {
        std::ptr::drop_in_place(this.as_ptr());
        crate::cellcache::dealloc(this.cast(), std::alloc::Layout::new::<Packet<T>>());
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
    packet: Option<NonNull<Packet<T>>>,
}

// SAFETY: the handle takes the result (T: Send) only after completion is published, with
// acquire ordering; everything else it reads is atomic or immutable.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only reads the atomic state and the immutable id and name.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(crate) fn new(packet: NonNull<Packet<T>>) -> JoinHandle<T> {
        JoinHandle {
            packet: Some(packet),
        }
    }

    fn packet(&self) -> &Packet<T> {
        let p = self.packet.expect("join handle used after join");
        // SAFETY: the handle keeps the packet alive until it joins or is dropped.
        unsafe { p.as_ref() }
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
        // An entry point like the others (`preempt.rs`): a loop joining goroutines that have
        // already ended never parks, and without this sysmon could stop it only by signal.
        crate::preempt::preempt_point();
        let this = self.packet.take().expect("join handle used after join");
        // SAFETY: the handle kept the packet alive; it is ours to free after COMPLETE.
        let packet = unsafe { this.as_ref() };
        wait_complete(packet);
        // SAFETY: COMPLETE observed with acquire: the completer is done with the packet.
        let out = unsafe { (*packet.result.get()).take() };
        // SAFETY: we are the last user (module invariants).
        unsafe { free(this) };
        out.expect("goroutine result missing")
    }

    /// True once the goroutine has ended (`join` will not block).
    pub fn is_finished(&self) -> bool {
        self.packet().state.is_complete()
    }

    /// The goroutine's id (as [`crate::current_id`] returns inside it).
    pub fn id(&self) -> u64 {
        self.packet().id
    }

    /// The goroutine's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.packet().name.as_deref().map(String::as_str)
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .finish()
    }
}

fn wait_complete<T>(packet: &Packet<T>) {
    if packet.state.is_complete() {
        return;
    }
    // SAFETY: until WAITER is set, only this (the unique) handle touches `waiter`.
    unsafe { *packet.waiter.get() = Some(unparker()) };
    if !packet.state.register_waiter() {
        // Completed first without seeing WAITER: the unparker is ours again.
        // SAFETY: the completer never reads `waiter` unless it saw WAITER before COMPLETE.
        unsafe { *packet.waiter.get() = None };
        return;
    }
    while !packet.state.is_complete() {
        park_for(WaitReason::Join, None);
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let Some(this) = self.packet.take() else {
            return;
        };
        // SAFETY: the handle kept the packet alive.
        let packet = unsafe { this.as_ref() };
        if packet.state.detach() {
            packet.report_unjoined();
            // SAFETY: COMPLETE was set before DETACHED: the completer is done; we are last.
            unsafe { free(this) };
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;
    use loom::thread;

    /// A completer racing a joiner (both spawned threads): the joiner sees the result, the
    /// unparker is taken only if registered, and exactly one side would free.
    #[test]
    fn loom_complete_races_join() {
        loom::model(|| {
            let state = Arc::new(JoinState::new());
            let result = Arc::new(AtomicUsize::new(0));
            let woken = Arc::new(AtomicUsize::new(0));
            let (s, r, w) = (state.clone(), result.clone(), woken.clone());
            let completer = thread::spawn(move || {
                r.store(42, Ordering::Relaxed);
                let mut took = false;
                let done = s.set_complete(|| took = true);
                assert_eq!(took, done == Completed::WakeJoiner);
                if took {
                    w.fetch_add(1, Ordering::Relaxed);
                }
                assert_ne!(done, Completed::CompleterFrees, "the handle is alive");
            });
            let joiner = thread::spawn(move || {
                let mut registered = false;
                if !state.is_complete() {
                    registered = state.register_waiter();
                    while !state.is_complete() {
                        thread::yield_now();
                    }
                }
                assert_eq!(
                    result.load(Ordering::Relaxed),
                    42,
                    "result published with COMPLETE"
                );
                registered
            });
            let registered = joiner.join().unwrap();
            completer.join().unwrap();
            assert_eq!(woken.load(Ordering::Relaxed), usize::from(registered));
        });
    }

    /// A completer racing a detach (both spawned threads): exactly one of them frees.
    #[test]
    fn loom_complete_races_detach() {
        loom::model(|| {
            let state = Arc::new(JoinState::new());
            let frees = Arc::new(AtomicUsize::new(0));
            let (s, f) = (state.clone(), frees.clone());
            let completer = thread::spawn(move || {
                let done = s.set_complete(|| panic!("no joiner registered"));
                if done == Completed::CompleterFrees {
                    f.fetch_add(1, Ordering::Relaxed);
                }
            });
            let detacher = {
                let frees = frees.clone();
                thread::spawn(move || {
                    if state.detach() {
                        frees.fetch_add(1, Ordering::Relaxed);
                    }
                })
            };
            detacher.join().unwrap();
            completer.join().unwrap();
            assert_eq!(frees.load(Ordering::Relaxed), 1);
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn packet_outlives_a_detached_goroutine_once() {
        // Detach first, then complete: the completer frees (no double free under Miri/ASan).
        let p = Packet::<u32>::alloc(None, 7, None);
        let handle = JoinHandle::new(p);
        drop(handle);
        // SAFETY: the completer's single call, after storing the result.
        unsafe {
            p.as_ref().set_result(Ok(1));
            Packet::publish(p);
        }
    }

    #[test]
    fn join_after_completion_takes_the_result() {
        let p = Packet::<String>::alloc(None, 8, Some(Arc::new("n".to_string())));
        let handle = JoinHandle::new(p);
        assert_eq!(handle.name(), Some("n"));
        assert_eq!(handle.id(), 8);
        assert!(!handle.is_finished());
        // SAFETY: as above.
        unsafe {
            p.as_ref().set_result(Ok("done".to_string()));
            Packet::publish(p);
        }
        assert!(handle.is_finished());
        assert_eq!(handle.join().unwrap(), "done");
    }
}
