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
//! Invariants:
//! - A listed header is alive: it is unlisted, under the list's lock, before the goroutine's
//!   end is published and its cell can be freed. So the dump may read a listed header while
//!   it holds that list's lock.
//! - `Header::slot` is the goroutine's index in its list plus one (0: not listed). It is
//!   read and written only under the list's lock, except the "listed at all?" check
//!   (`is_listed`) by the thread that holds the goroutine's run right, the only writer of
//!   the 0 / non-0 transition.
//! - The lock is a leaf: nothing else is taken while it is held (`docs/HACKING.md`).

use crate::chunked::ChunkedDeque;
use crate::goroutine::Header;
use crate::loom::std_only::Mutex;
use crate::loom::{lock_std, Ordering};

/// One list of goroutines that have switched out.
pub(crate) struct Registry {
    /// Chunked, so a burst's list leaves no large block behind (`chunked.rs`).
    list: Mutex<ChunkedDeque<*const Header>>,
}

// SAFETY: the pointers are only dereferenced under the lock, and a listed header is alive
// (module invariants); the headers' fields read through them are immutable after spawn or
// atomic.
unsafe impl Send for Registry {}
// SAFETY: as above; every access goes through the mutex.
unsafe impl Sync for Registry {}

/// The list of migrate mode, where goroutines have no home.
static HOMELESS: Registry = Registry::new();

impl Registry {
    pub(crate) const fn new() -> Registry {
        Registry {
            list: Mutex::new(ChunkedDeque::new()),
        }
    }

    /// Calls `f` on every listed goroutine, under the lock (keep `f` short; it must not park,
    /// allocate a goroutine or take another lock).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Header)) {
        let list = lock_std(&self.list);
        for &h in list.iter() {
            // SAFETY: listed headers are alive while the lock is held (module invariants).
            f(unsafe { &*h });
        }
    }

    fn add(&self, h: &Header) {
        let mut list = lock_std(&self.list);
        list.push_back(h);
        h.slot.store(list.len() as u32, Ordering::Relaxed);
    }

    fn remove(&self, h: &Header) {
        let mut list = lock_std(&self.list);
        let i = h.slot.load(Ordering::Relaxed) as usize - 1;
        debug_assert!(
            list.get(i).is_some_and(|&p| std::ptr::eq(p, h)),
            "registry slot out of date"
        );
        list.swap_remove(i);
        if let Some(&moved) = list.get(i) {
            // SAFETY: listed, so alive (module invariants).
            unsafe { &*moved }
                .slot
                .store(i as u32 + 1, Ordering::Relaxed);
        }
        h.slot.store(0, Ordering::Relaxed);
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
    if h.slot.load(Ordering::Relaxed) == 0 {
        list_of(h).add(h);
    }
}

/// Unlists `h` if it is listed. By the M that ran it to its end, before publishing the end.
#[inline]
pub(crate) fn note_end(h: &Header) {
    if h.slot.load(Ordering::Relaxed) != 0 {
        list_of(h).remove(h);
    }
}

/// Calls `f` on every listed goroutine, one list at a time (so not an atomic snapshot: a
/// goroutine may be seen in no list or, in migrate mode never, twice).
pub(crate) fn for_each_listed(mut f: impl FnMut(&Header)) {
    for home in crate::sysmon::machines() {
        home.registry.for_each(&mut f);
    }
    HOMELESS.for_each(f);
}
