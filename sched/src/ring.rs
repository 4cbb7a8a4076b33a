//! `Ring`: a growable ring buffer whose memory comes from mimalloc, not from the program's
//! allocator: the storage of `ChunkedDeque` (`chunked.rs`), the runtime's list for anything a
//! burst of goroutines can make long.
//!
//! Why not `VecDeque`: the runtime's threads (the Ms, sysmon) fill and empty these lists by the
//! megabyte during a burst, and with the program's allocator (glibc's `malloc` by default) each
//! of those threads gets an arena whose top glibc never gives back: `malloc_trim` returns the
//! free pages inside an arena but trims only the main arena's top, so every runtime thread kept
//! up to its trim threshold plus its top pad (128 + 128 KiB by default) resident after the
//! burst (`docs/BENCHMARKS.md`, "Session 8: memory returned"). mimalloc, which already holds the
//! goroutine cells (`cellcache.rs`), gives a thread's free pages back when that thread collects
//! (`cellcache::return_freed_pages`, on an M going idle): freeing a chunk is counted
//! ([`note_chunk_freed`]), and a scavenger period that saw one asks every thread to collect.
//! A chunk a plain thread allocated (readying many goroutines into an M's remote queue) stays
//! in that thread's mimalloc heap: its pages come back when that thread next allocates there.
//!
//! Layout: `cap` slots at `buf`; the entries are the `len` slots from `head` on, wrapping
//! around at `cap`, a power of two, so that a slot's index is a mask, not a branch (a branch
//! that went the other way every `cap` operations cost a short queue, an M's `later` on every
//! yield, about 2 ns). Invariants: `cap` is 0 or a power of two; `len <= cap`; `head < cap`
//! (or 0 when `cap` is 0); the slots
//! holding entries are initialised and owned by the ring, the others are not; `buf` came from
//! `mi_malloc_aligned` with `cap * size_of::<T>()` bytes and `T`'s alignment, or is dangling
//! when `cap` is 0 (or `T` is zero-sized, when `cap` is `ZST_CAP` and nothing is
//! allocated).

use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ptr::{self, NonNull};

use crate::loom::std_only::AtomicUsize;
use crate::loom::Ordering;

/// A ring buffer on mimalloc (module docs).
pub(crate) struct Ring<T> {
    buf: NonNull<T>,
    cap: usize,
    head: usize,
    len: usize,
    _owns: PhantomData<T>,
}

// SAFETY: a `Ring` owns its entries as a `VecDeque` does; sending or sharing it sends or shares
// them, so it is `Send`/`Sync` exactly when `T` is.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above; `&Ring` only gives `&T`.
unsafe impl<T: Sync> Sync for Ring<T> {}

/// Full chunks freed so far (`note_chunk_freed`).
static CHUNKS_FREED: AtomicUsize = AtomicUsize::new(0);

/// Records that a ring of at least `CHUNK_NOTE_BYTES` was freed (its buffer, on a move or a
/// drop), so that the scavenger has the threads return the pages (`scavenger::look`).
fn note_chunk_freed() {
    CHUNKS_FREED.fetch_add(1, Ordering::Relaxed);
}

/// Chunks freed so far, for the scavenger.
pub(crate) fn chunks_freed() -> usize {
    CHUNKS_FREED.load(Ordering::Relaxed)
}

/// The room of a ring of zero-sized entries, which allocates nothing (a power of two).
const ZST_CAP: usize = 1 << (usize::BITS - 1);

/// Rings of at least this many bytes count as chunks for `note_chunk_freed`.
const CHUNK_NOTE_BYTES: usize = 4 << 10;

impl<T> Ring<T> {
    /// An empty ring; allocates nothing.
    pub(crate) const fn new() -> Ring<T> {
        Ring {
            buf: NonNull::dangling(),
            cap: if size_of::<T>() == 0 { ZST_CAP } else { 0 },
            head: 0,
            len: 0,
            _owns: PhantomData,
        }
    }

    /// An empty ring with room for `cap` entries (rounded up to a power of two).
    pub(crate) fn with_capacity(cap: usize) -> Ring<T> {
        let mut ring = Ring::new();
        if cap > ring.cap {
            ring.grow_to(cap.next_power_of_two());
        }
        ring
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// The slot of entry `i` (`i < cap`, `cap > 0`).
    #[inline(always)]
    fn slot(&self, i: usize) -> *mut T {
        let at = (self.head + i) & (self.cap - 1);
        // SAFETY: `at < cap` (a power of two), so the offset stays inside the allocation (a
        // dangling `buf` only for zero-sized `T`, where every offset is zero bytes).
        unsafe { self.buf.as_ptr().add(at) }
    }

    /// Appends `x`.
    #[inline(always)]
    pub(crate) fn push_back(&mut self, x: T) {
        if self.len == self.cap {
            self.grow();
        }
        // SAFETY: `len < cap`, so slot `len` is free (not initialised); it now holds `x`.
        unsafe { self.slot(self.len).write(x) };
        self.len += 1;
    }

    /// Puts `x` first.
    pub(crate) fn push_front(&mut self, x: T) {
        if self.len == self.cap {
            self.grow();
        }
        self.head = self.head.wrapping_sub(1) & (self.cap - 1);
        // SAFETY: `len < cap`, so the slot before the old head is free; it now holds `x`.
        unsafe { self.buf.as_ptr().add(self.head).write(x) };
        self.len += 1;
    }

    /// Takes the first entry.
    #[inline(always)]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        // SAFETY: entry 0 is initialised; it leaves the ring here (head moves past it).
        let x = unsafe { self.slot(0).read() };
        self.head = (self.head + 1) & (self.cap - 1);
        self.len -= 1;
        Some(x)
    }

    /// Takes the last entry.
    #[inline]
    pub(crate) fn pop_back(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: entry `len` (the old last) is initialised; it leaves the ring here.
        Some(unsafe { self.slot(self.len).read() })
    }

    /// Entry `i` (0 is the front).
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        // SAFETY: `i < len`: an initialised entry, borrowed with `self`.
        (i < self.len).then(|| unsafe { &*self.slot(i) })
    }

    /// Entry `i`, mutably.
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        // SAFETY: `i < len`: an initialised entry, borrowed mutably with `self`.
        (i < self.len).then(|| unsafe { &mut *self.slot(i) })
    }

    /// The entries as one slice, front first (moved into one run first if they wrap around).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        if self.head + self.len > self.cap {
            self.move_to(self.cap);
        }
        // SAFETY: the entries now sit in `[head, head + len)`, initialised and owned by the
        // ring, borrowed mutably with it (a dangling `buf` only with `len == 0` or a
        // zero-sized `T`).
        unsafe { std::slice::from_raw_parts_mut(self.buf.as_ptr().add(self.head), self.len) }
    }

    /// The entries, front to back.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        (0..self.len).map(|i| self.get(i).expect("i < len"))
    }

    /// Gives back room beyond `max(len, min_cap)` entries (rounded up to a power of two).
    pub(crate) fn shrink_to(&mut self, min_cap: usize) {
        let want = match self.len.max(min_cap) {
            0 => 0,
            n => n.next_power_of_two(),
        };
        if want < self.cap && size_of::<T>() != 0 {
            self.move_to(want);
        }
    }

    /// Doubles the room (at least 4 entries).
    #[cold]
    fn grow(&mut self) {
        self.grow_to(self.cap.max(2) * 2);
    }

    fn grow_to(&mut self, new_cap: usize) {
        debug_assert!(new_cap > self.cap && size_of::<T>() != 0);
        self.move_to(new_cap);
    }

    /// Moves the entries, in order, to a new buffer of `new_cap >= len` slots (0 or a power of
    /// two; none if 0) and frees the old one.
    fn move_to(&mut self, new_cap: usize) {
        debug_assert!(new_cap >= self.len && (new_cap == 0 || new_cap.is_power_of_two()));
        if new_cap == 0 {
            self.free_buffer();
            (self.buf, self.cap, self.head) = (NonNull::dangling(), 0, 0);
            return;
        }
        let bytes = new_cap
            .checked_mul(size_of::<T>())
            .expect("ring capacity overflow");
        // SAFETY: plain allocation of a non-zero size with a power-of-two alignment.
        let new = unsafe { libmimalloc_sys::mi_malloc_aligned(bytes, align_of::<T>()) };
        let Some(new) = NonNull::new(new.cast::<T>()) else {
            let layout = std::alloc::Layout::from_size_align(bytes, align_of::<T>());
            std::alloc::handle_alloc_error(layout.expect("valid ring layout"));
        };
        // The entries are `[head, head + first)` and, wrapped, `[0, len - first)`.
        let first = self.len.min(self.cap - self.head);
        // SAFETY: both ranges are initialised entries of the old buffer; the new buffer has
        // room for `len <= new_cap` entries and does not overlap the old one. The entries move:
        // the old buffer is freed below without dropping them.
        unsafe {
            ptr::copy_nonoverlapping(self.buf.as_ptr().add(self.head), new.as_ptr(), first);
            ptr::copy_nonoverlapping(self.buf.as_ptr(), new.as_ptr().add(first), self.len - first);
        }
        self.free_buffer();
        self.buf = new;
        self.cap = new_cap;
        self.head = 0;
    }

    /// Frees the buffer (not the entries).
    fn free_buffer(&mut self) {
        if self.cap == 0 || size_of::<T>() == 0 {
            return;
        }
        if self.cap * size_of::<T>() >= CHUNK_NOTE_BYTES {
            note_chunk_freed();
        }
        // SAFETY: `buf` came from `mi_malloc_aligned` (type invariant) and is not used again:
        // the caller replaces it or drops the ring.
        unsafe { libmimalloc_sys::mi_free(self.buf.as_ptr().cast()) };
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        if std::mem::needs_drop::<T>() {
            while self.pop_front().is_some() {}
        }
        self.free_buffer();
    }
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Ring::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A random mix of operations gives what a `VecDeque` gives, through growth and wrap-around,
    /// and every entry is dropped exactly once.
    #[test]
    fn behaves_as_a_vecdeque() {
        let mut ours: Ring<Box<u64>> = Ring::new();
        let mut model: VecDeque<Box<u64>> = VecDeque::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for step in 0..100_000u64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let growing = (step / 5_000) % 2 == 0;
            match (seed % 6, growing) {
                (0..=2, true) | (0, false) => {
                    ours.push_back(Box::new(step));
                    model.push_back(Box::new(step));
                }
                (3, _) => {
                    ours.push_front(Box::new(step));
                    model.push_front(Box::new(step));
                }
                (4, _) | (1..=2, false) => assert_eq!(ours.pop_front(), model.pop_front()),
                _ => assert_eq!(ours.pop_back(), model.pop_back()),
            }
            assert_eq!(ours.len(), model.len());
            if step % 997 == 0 {
                assert!(ours.iter().eq(model.iter()));
                let i = (seed >> 8) as usize % model.len().max(1);
                assert_eq!(ours.get(i), model.get(i));
            }
        }
        // The rest is dropped with the ring (Miri or a leak checker would see a double drop
        // or a leak; the boxes make either visible to them).
    }

    #[test]
    fn with_capacity_holds_that_many_without_growing() {
        let mut r: Ring<u32> = Ring::with_capacity(256);
        assert_eq!(r.capacity(), 256);
        for i in 0..256 {
            r.push_back(i);
        }
        assert_eq!(r.capacity(), 256);
        assert_eq!(r.pop_front(), Some(0));
        r.push_back(256);
        assert_eq!(r.capacity(), 256);
        assert!(r.iter().copied().eq(1..257));
        assert_eq!(Ring::<u32>::with_capacity(341).capacity(), 512);
        assert_eq!(r.get_mut(0).map(|x| *x), Some(1));
    }

    #[test]
    fn zero_sized_entries_allocate_nothing() {
        let mut r: Ring<()> = Ring::new();
        for _ in 0..1000 {
            r.push_back(());
        }
        assert_eq!(r.len(), 1000);
        assert_eq!(r.pop_back(), Some(()));
        assert_eq!(r.pop_front(), Some(()));
        assert_eq!(r.len(), 998);
    }
}
