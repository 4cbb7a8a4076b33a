//! Every goroutine that has switched out at least once, listed per M (Go's `allgs`), so the
//! goroutine dump can find the parked ones.
//!
//! A goroutine is listed the first time it switches out (parks or yields), by the M running
//! it, on the M's stack (`machine::execute`), and unlisted by the M that runs it to its end,
//! before its cell is freed. A goroutine that never switches out (most short ones) is never
//! listed: it costs nothing here. While it runs, the dump sees it through its M's monitor
//! (`preempt.rs`); while it waits to start, only as a count.
//!
//! Where: a homed goroutine (the default mode) is listed with its home M, which is also the M
//! that unlists it, so each list's lock is taken by one thread and, rarely, the dump. In
//! migrate mode there are no homes and one process-wide list serves.
//!
//! Each list is threaded through the goroutines' headers (`Header::listing`, Go's `allgs` is a
//! slice; a list through the `g`s is its `sched.gFree`): listing and unlisting are a few
//! pointer writes under the list's lock, and a burst of parked goroutines allocates nothing
//! here.
//!
//! Invariants:
//! - A listed header is alive: it is unlisted, under the list's lock, before the goroutine's
//!   end is published and its cell can be freed. So the dump, and a neighbour's unlisting, may
//!   read a listed header while they hold that list's lock.
//! - `Links::prev` and `Links::next` are read and written only under the lock of the list the
//!   goroutine is in, except that whether `prev` is 0 ("not listed") is read without it by the
//!   thread that holds the goroutine's run right (`note_switch_out`, `note_end`), the only
//!   thread that lists or unlists it.
//! - The lock is a leaf: nothing else is taken while it is held (`docs/HACKING.md`).

use crate::goroutine::Header;
use crate::loom::std_only::{AtomicPtr, AtomicUsize, Mutex};
use crate::loom::{lock_std, Ordering};
use std::ptr;

/// A goroutine's place in its registry list (in its `Header`, two words).
pub(crate) struct Links {
    /// 0: not listed; [`FIRST`]: listed first; else the address of the previous header.
    prev: AtomicUsize,
    next: AtomicPtr<Header>,
}

/// `Links::prev` of the first header in a list (headers are 8-aligned, so no address is 1).
const FIRST: usize = 1;

impl Links {
    pub(crate) const fn new() -> Links {
        Links {
            prev: AtomicUsize::new(0),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    fn listed(&self) -> bool {
        self.prev.load(Ordering::Relaxed) != 0
    }
}

/// One list of goroutines that have switched out: its head, newest first.
pub(crate) struct Registry {
    head: Mutex<Head>,
    /// How many goroutines are listed: changed under the lock, read without it (a count for
    /// `scheduler/balance.rs`'s heuristic).
    len: AtomicUsize,
}

/// The first listed header, or null.
struct Head(*const Header);

// SAFETY: the pointers are only dereferenced under the lock, and a listed header is alive
// (module invariants); the headers' fields read through them are immutable after spawn or
// atomic.
unsafe impl Send for Head {}

/// The list of migrate mode, where goroutines have no home.
static HOMELESS: Registry = Registry::new();

impl Registry {
    pub(crate) const fn new() -> Registry {
        Registry {
            head: Mutex::new(Head(ptr::null())),
            len: AtomicUsize::new(0),
        }
    }

    /// How many goroutines are listed: for a home M's list, its goroutines that have switched
    /// out and not ended (its long-lived ones).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Calls `f` on every listed goroutine, under the lock (keep `f` short; it must not park,
    /// allocate a goroutine or take another lock).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Header)) {
        let head = lock_std(&self.head);
        let mut at = head.0;
        while !at.is_null() {
            // SAFETY: listed headers are alive while the lock is held (module invariants).
            let h = unsafe { &*at };
            f(h);
            at = h.listing.next.load(Ordering::Relaxed);
        }
    }

    /// Calls `f` under the lock on the listed goroutines after `after` (from the head if
    /// `None`), until `f` returns false or the list ends. Returns the header `f` returned false
    /// on, to go on after it later, or `None` at the end of the list.
    ///
    /// # Safety
    /// `after`, if given, must still be listed: it was returned by the previous call, and the
    /// caller has kept it from ending since (`compact.rs` holds it claimed, so it cannot run).
    pub(crate) unsafe fn visit_after(
        &self,
        after: Option<*const Header>,
        mut f: impl FnMut(&Header) -> bool,
    ) -> Option<*const Header> {
        let head = lock_std(&self.head);
        let mut at = match after {
            // SAFETY: the caller's contract: `h` is listed, so alive, and we hold the lock.
            Some(h) => unsafe { &*h }
                .listing
                .next
                .load(Ordering::Relaxed)
                .cast_const(),
            None => head.0,
        };
        while !at.is_null() {
            // SAFETY: listed headers are alive while the lock is held (module invariants).
            let h = unsafe { &*at };
            if !f(h) {
                return Some(at);
            }
            at = h.listing.next.load(Ordering::Relaxed);
        }
        None
    }

    fn add(&self, h: &Header) {
        let mut head = lock_std(&self.head);
        let old = head.0;
        h.listing.next.store(old.cast_mut(), Ordering::Relaxed);
        if !old.is_null() {
            // SAFETY: the old head is listed, so alive, and we hold its list's lock.
            let old = unsafe { &*old };
            old.listing
                .prev
                .store(ptr::from_ref(h) as usize, Ordering::Relaxed);
        }
        head.0 = h;
        h.listing.prev.store(FIRST, Ordering::Relaxed);
        self.len
            .store(self.len.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    fn remove(&self, h: &Header) {
        let mut head = lock_std(&self.head);
        let prev = h.listing.prev.load(Ordering::Relaxed);
        let next = h.listing.next.load(Ordering::Relaxed);
        debug_assert_ne!(prev, 0, "registry: unlisting a header that is not listed");
        if prev == FIRST {
            debug_assert!(
                ptr::eq(head.0, h),
                "registry: the first header is not the head"
            );
            head.0 = next;
        } else {
            // SAFETY: `prev` is the address of a header listed in this list, so alive, and we
            // hold the lock.
            let prev = unsafe { &*(prev as *const Header) };
            prev.listing.next.store(next, Ordering::Relaxed);
        }
        if !next.is_null() {
            // SAFETY: `next` is listed in this list, so alive, and we hold the lock.
            let next = unsafe { &*next };
            next.listing.prev.store(prev, Ordering::Relaxed);
        }
        h.listing.next.store(ptr::null_mut(), Ordering::Relaxed);
        self.len
            .store(self.len.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
        h.listing.prev.store(0, Ordering::Relaxed);
    }
}

/// The list `h` belongs in.
fn list_of(h: &Header) -> &'static Registry {
    match h.home() {
        Some(home) => &home.registry,
        None => &HOMELESS,
    }
}

/// Lists `h` if it is not listed yet. By the holder of its run right, as it switches out.
#[inline]
pub(crate) fn note_switch_out(h: &Header) {
    if !h.listing.listed() {
        list_of(h).add(h);
    }
}

/// Unlists `h` if it is listed. By the M that ran it to its end, before publishing the end.
#[inline]
pub(crate) fn note_end(h: &Header) {
    if h.listing.listed() {
        list_of(h).remove(h);
    }
}

/// Every list: one per M that ever started, and migrate mode's.
pub(crate) fn all_lists() -> impl Iterator<Item = &'static Registry> {
    crate::sysmon::machines()
        .into_iter()
        .map(|home| &home.registry)
        .chain(std::iter::once(&HOMELESS))
}

/// Calls `f` on every listed goroutine, one list at a time (so not an atomic snapshot: a
/// goroutine may be seen in no list or, in migrate mode never, twice).
pub(crate) fn for_each_listed(mut f: impl FnMut(&Header)) {
    for home in crate::sysmon::machines() {
        home.registry.for_each(&mut f);
    }
    HOMELESS.for_each(f);
}
