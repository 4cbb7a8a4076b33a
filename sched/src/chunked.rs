//! `ChunkedDeque`: the runtime's list for anything that a burst of goroutines can make long
//! (the Ms' run queues, the stack lists, a channel's wake list).
//!
//! A double-ended queue kept in chunks of at most [`CHUNK_BYTES`] each, so that however long it
//! grows, no single allocation is large, and a chunk that empties is freed (or kept as the one
//! spare): the memory of a burst goes back in small blocks. A deque that empties keeps no more
//! than a small first chunk ([`SMALL_KEEP`] entries), so one that a burst used holds nothing
//! after. The chunks are `Ring`s (`ring.rs`), ring buffers on mimalloc rather than the
//! program's allocator; `ring.rs` says why the runtime keeps its bulk memory out of glibc's
//! arenas. (With glibc, a single block above its mmap threshold, 128 KiB at first, is also
//! mapped on its own, and freeing it raises the mmap and trim thresholds for the whole process:
//! `docs/BENCHMARKS.md`, "Session 7: memory returned".)
//!
//! Layout: `front` is the first chunk and holds everything while the deque is short, so a
//! short deque costs what a ring buffer costs plus one branch. Behind it, `middle` holds full
//! chunks and `back` the last one (pushing at the back of a long deque is a push at `back`'s
//! end); a chunk that reaches the front becomes `front` without a copy. Invariants: `front` is
//! empty only if the whole deque is; every chunk in `middle` holds exactly
//! [`ChunkedDeque::CHUNK_LEN`] entries, so entry `i` is found by arithmetic
//! ([`ChunkedDeque::get`]); no chunk holds more.

use crate::ring::Ring;

/// The largest allocation a chunk makes, in bytes: well under glibc's initial mmap threshold.
pub const CHUNK_BYTES: usize = 8 << 10;

/// Entries of room an empty deque keeps (its `front`): a queue that fills and empties all the
/// time (an M's run queue) does not reallocate, one a burst made long gives its room back.
const SMALL_KEEP: usize = 256;

/// A deque stored in chunks of at most [`CHUNK_BYTES`] (module docs).
///
/// ```
/// use sched::ChunkedDeque;
/// let mut q = ChunkedDeque::new();
/// for i in 0..100_000u64 {
///     q.push_back(i);
/// }
/// assert_eq!(q.len(), 100_000);
/// assert_eq!(q.get(70_000), Some(&70_000));
/// assert_eq!(q.pop_front(), Some(0));
/// assert_eq!(q.pop_back(), Some(99_999));
/// ```
pub struct ChunkedDeque<T> {
    front: Ring<T>,
    middle: Ring<Ring<T>>,
    back: Ring<T>,
    /// One emptied chunk kept for the next one needed, so a deque whose length crosses a chunk
    /// boundary back and forth does not allocate each time.
    spare: Option<Ring<T>>,
}

impl<T> Default for ChunkedDeque<T> {
    fn default() -> Self {
        ChunkedDeque::new()
    }
}

/// Where an entry is (`ChunkedDeque::locate`).
enum Place {
    Front(usize),
    Middle(usize, usize),
    Back(usize),
}

impl<T> ChunkedDeque<T> {
    /// An empty deque; allocates nothing.
    pub const fn new() -> ChunkedDeque<T> {
        ChunkedDeque {
            front: Ring::new(),
            middle: Ring::new(),
            back: Ring::new(),
            spare: None,
        }
    }

    /// Entries per chunk: the largest power of two that fits in [`CHUNK_BYTES`], at least 16.
    pub const CHUNK_LEN: usize = {
        let size = std::mem::size_of::<T>();
        if size == 0 || CHUNK_BYTES / size < 16 {
            16
        } else {
            // A power of two (a `Ring`'s room is one): the largest that fits.
            1 << (usize::BITS - 1 - (CHUNK_BYTES / size).leading_zeros())
        }
    };

    /// The number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.front.len() + self.middle.len() * Self::CHUNK_LEN + self.back.len()
    }

    /// True if there are no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.front.is_empty()
    }

    /// True if a push at the back may go to `front`: no chunk behind it. (`back` has no room
    /// only while `middle` is empty: `middle` gets a chunk only as `back` gets a new one, and
    /// `back` is taken only once `middle` is empty.)
    #[inline]
    fn all_in_front(&self) -> bool {
        self.back.capacity() == 0
    }

    /// Appends `x`.
    #[inline(always)]
    pub fn push_back(&mut self, x: T) {
        if self.all_in_front() && self.front.len() < Self::CHUNK_LEN {
            self.front.push_back(x);
            return;
        }
        self.push_back_behind(x);
    }

    /// `push_back` past `front`.
    #[inline(never)]
    fn push_back_behind(&mut self, x: T) {
        if self.back.len() == Self::CHUNK_LEN || self.back.capacity() == 0 {
            self.new_back();
        }
        self.back.push_back(x);
    }

    /// `back` is full (or has no room yet): it joins `middle`, and an empty chunk replaces it.
    #[cold]
    fn new_back(&mut self) {
        let chunk = self.new_chunk();
        let full = std::mem::replace(&mut self.back, chunk);
        if !full.is_empty() {
            debug_assert_eq!(full.len(), Self::CHUNK_LEN);
            self.middle.push_back(full);
        }
    }

    /// Puts `x` first.
    #[inline]
    pub fn push_front(&mut self, x: T) {
        if self.front.len() < Self::CHUNK_LEN {
            self.front.push_front(x);
            return;
        }
        let chunk = self.new_chunk();
        let full = std::mem::replace(&mut self.front, chunk);
        if self.all_in_front() {
            // `back` takes it (`all_in_front`'s invariant: `middle` needs a `back` with room).
            self.back = full;
        } else {
            self.middle.push_front(full);
        }
        self.front.push_front(x);
    }

    /// Takes the first entry.
    #[inline]
    pub fn pop_front(&mut self) -> Option<T> {
        let x = self.front.pop_front()?;
        if self.front.is_empty() && self.holds_more_than_front() {
            self.front_emptied();
        }
        Some(x)
    }

    /// True if anything but a small `front` is held: the next chunk, or room to give back
    /// once empty. False for a short deque that fills and empties (an M's run queue, on every
    /// switch), whose emptying then costs these few loads.
    #[inline]
    fn holds_more_than_front(&self) -> bool {
        !self.all_in_front() || self.front.capacity() > SMALL_KEEP
    }

    /// `front` emptied: the next chunk becomes `front`, or, if there is none, the deque is
    /// empty and gives back what a burst left it.
    #[cold]
    fn front_emptied(&mut self) {
        let next = match self.middle.pop_front() {
            Some(chunk) => chunk,
            None if !self.back.is_empty() => {
                // The last chunk becomes `front`: the deque is short again, and keeps no spare
                // (`spare` is only kept beside a `back`, so `holds_more_than_front` need not
                // look at it).
                self.spare = None;
                let last = std::mem::take(&mut self.back);
                self.front = last;
                return;
            }
            None => return self.emptied(),
        };
        let empty = std::mem::replace(&mut self.front, next);
        self.keep_spare(empty);
        self.shrink_middle();
    }

    /// The deque is empty: frees the spare and the chunks, and `front` unless it is small.
    fn emptied(&mut self) {
        debug_assert!(self.is_empty());
        self.spare = None;
        if self.front.capacity() > SMALL_KEEP {
            self.front = Ring::new();
        }
        if self.middle.capacity() != 0 {
            self.middle = Ring::new();
        }
        if self.back.capacity() != 0 {
            self.back = Ring::new();
        }
    }

    /// Takes the last entry.
    pub fn pop_back(&mut self) -> Option<T> {
        if self.back.is_empty() {
            if let Some(last) = self.middle.pop_back() {
                let empty = std::mem::replace(&mut self.back, last);
                self.keep_spare(empty);
                self.shrink_middle();
            }
        }
        let x = match self.back.pop_back() {
            Some(x) => x,
            None => self.front.pop_back()?,
        };
        if self.front.is_empty() && self.holds_more_than_front() {
            self.front_emptied();
        }
        Some(x)
    }

    /// Entry `i` (0 is the front).
    pub fn get(&self, i: usize) -> Option<&T> {
        match self.locate(i)? {
            Place::Front(at) => self.front.get(at),
            Place::Middle(c, at) => self.middle.get(c)?.get(at),
            Place::Back(at) => self.back.get(at),
        }
    }

    /// Entry `i`, mutably.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        match self.locate(i)? {
            Place::Front(at) => self.front.get_mut(at),
            Place::Middle(c, at) => self.middle.get_mut(c)?.get_mut(at),
            Place::Back(at) => self.back.get_mut(at),
        }
    }

    fn locate(&self, i: usize) -> Option<Place> {
        if i >= self.len() {
            return None;
        }
        if i < self.front.len() {
            return Some(Place::Front(i));
        }
        let j = i - self.front.len();
        let in_middle = self.middle.len() * Self::CHUNK_LEN;
        if j < in_middle {
            return Some(Place::Middle(j / Self::CHUNK_LEN, j % Self::CHUNK_LEN));
        }
        Some(Place::Back(j - in_middle))
    }

    /// Removes entry `i`, putting the last entry in its place (`Vec::swap_remove`).
    pub fn swap_remove(&mut self, i: usize) -> Option<T> {
        if i >= self.len() {
            return None;
        }
        let last = self.pop_back().expect("i < len");
        if i == self.len() {
            return Some(last);
        }
        Some(std::mem::replace(self.get_mut(i).expect("i < len"), last))
    }

    /// Moves every entry of `other` to the back of this deque, in order; `other` is left empty.
    pub fn append(&mut self, other: &mut ChunkedDeque<T>) {
        if self.is_empty() {
            std::mem::swap(self, other);
            return;
        }
        while let Some(x) = other.pop_front() {
            self.push_back(x);
        }
    }

    /// Drops every entry and frees every chunk.
    pub fn clear(&mut self) {
        *self = ChunkedDeque::new();
    }

    /// The entries, front to back.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.front
            .iter()
            .chain(self.middle.iter().flat_map(|c| c.iter()))
            .chain(self.back.iter())
    }

    /// Removes the entries for which `keep` is false, keeping the others in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let mut kept = ChunkedDeque::new();
        while let Some(x) = self.pop_front() {
            if keep(&x) {
                kept.push_back(x);
            }
        }
        *self = kept;
    }

    /// An empty chunk with room for [`CHUNK_LEN`](Self::CHUNK_LEN) entries: the spare, or a
    /// new one.
    fn new_chunk(&mut self) -> Ring<T> {
        self.spare
            .take()
            .unwrap_or_else(|| Ring::with_capacity(Self::CHUNK_LEN))
    }

    fn keep_spare(&mut self, empty: Ring<T>) {
        debug_assert!(empty.is_empty());
        if self.spare.is_none() && empty.capacity() >= Self::CHUNK_LEN && !self.all_in_front() {
            self.spare = Some(empty);
        }
    }

    /// `middle`'s own buffer (one `Vec` header per chunk) is given back once it is mostly
    /// unused, so a burst's room for chunk headers does not stay either.
    fn shrink_middle(&mut self) {
        let cap = self.middle.capacity();
        if cap > 64 && self.middle.len() < cap / 4 {
            self.middle.shrink_to(self.middle.len() * 2);
        }
    }
}

/// Appends each entry in turn (`push_back`).
impl<T> Extend<T> for ChunkedDeque<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for x in iter {
            self.push_back(x);
        }
    }
}

impl<T> FromIterator<T> for ChunkedDeque<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut q = ChunkedDeque::new();
        q.extend(iter);
        q
    }
}

/// Takes entries from the front until the deque is empty.
pub struct IntoIter<T>(ChunkedDeque<T>);

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.0.len(), Some(self.0.len()))
    }
}

impl<T> IntoIterator for ChunkedDeque<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter(self)
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for ChunkedDeque<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A model check: a random mix of operations gives what a `VecDeque` gives, across chunk
    /// boundaries (small `T`, so chunks are long; `[u8; 1024]`-sized, so they are short).
    #[test]
    fn behaves_as_a_vecdeque() {
        fn run<T: Clone + PartialEq + std::fmt::Debug>(make: impl Fn(u64) -> T) {
            let mut ours = ChunkedDeque::new();
            let mut model = VecDeque::new();
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            for step in 0..200_000u64 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Phases that grow, then shrink, so the length crosses many chunks both ways.
                let growing = (step / 20_000) % 2 == 0;
                match (seed % 8, growing) {
                    (0..=3, true) | (0, false) => {
                        ours.push_back(make(step));
                        model.push_back(make(step));
                    }
                    (4, _) => {
                        ours.push_front(make(step));
                        model.push_front(make(step));
                    }
                    (5, _) | (1..=3, false) => assert_eq!(ours.pop_front(), model.pop_front()),
                    (6, _) => assert_eq!(ours.pop_back(), model.pop_back()),
                    _ => {
                        if !model.is_empty() {
                            let i = (seed >> 8) as usize % model.len();
                            assert_eq!(ours.get(i), model.get(i));
                            assert_eq!(ours.swap_remove(i), model.swap_remove_back(i));
                        }
                    }
                }
                assert_eq!(ours.len(), model.len());
                assert!(ours.is_empty() || !ours.front.is_empty());
                assert!(ours.back.capacity() != 0 || ours.middle.is_empty());
                assert!(ours.back.capacity() != 0 || ours.spare.is_none());
                assert!(ours.back.len() <= ChunkedDeque::<T>::CHUNK_LEN);
                assert!(ours
                    .middle
                    .iter()
                    .all(|c| c.len() == ChunkedDeque::<T>::CHUNK_LEN));
            }
            assert!(ours.iter().eq(model.iter()));
            assert!(ours.into_iter().eq(model));
        }
        run(|i| i);
        run(|i| [i as u8; 1024]);
    }

    /// No chunk allocates more than `CHUNK_BYTES`, however long the deque.
    #[test]
    fn chunks_stay_small() {
        let mut q = ChunkedDeque::new();
        for i in 0..1_000_000u64 {
            q.push_back(i);
        }
        assert!(q.front.capacity() * 8 <= CHUNK_BYTES);
        assert!(q.middle.iter().all(|c| c.capacity() * 8 <= CHUNK_BYTES));
        assert!(q.back.capacity() * 8 <= CHUNK_BYTES);
        assert!(q.middle.capacity() * std::mem::size_of::<Ring<u64>>() <= CHUNK_BYTES * 8);
        while q.pop_front().is_some() {}
        assert_eq!(
            q.middle.capacity(),
            0,
            "the chunk list's room is given back"
        );
        assert!(q.spare.is_none() && q.front.capacity() <= SMALL_KEEP);
        // Emptied from the back, too.
        q.extend(0..100_000);
        while q.pop_back().is_some() {}
        assert_eq!(q.middle.capacity(), 0);
        assert!(q.spare.is_none() && q.front.capacity() <= SMALL_KEEP);
    }

    /// `extend` against the one-at-a-time operations, across chunk boundaries.
    #[test]
    fn extend_matches_single_ones() {
        let mut q: ChunkedDeque<u32> = ChunkedDeque::new();
        let mut model: VecDeque<u32> = VecDeque::new();
        let mut next = 0u32;
        for round in 0..200usize {
            let n = (round * 7919) % 3000;
            q.extend(next..next + n as u32);
            model.extend(next..next + n as u32);
            next += n as u32;
            if round % 2 == 0 {
                for _ in 0..n / 2 + 1 {
                    assert_eq!(q.pop_front(), model.pop_front());
                }
            } else {
                for _ in 0..n / 3 + 1 {
                    assert_eq!(q.pop_back(), model.pop_back());
                }
            }
            assert_eq!(q.len(), model.len());
            assert!(q.iter().eq(model.iter()));
            assert!(q
                .middle
                .iter()
                .all(|c| c.len() == ChunkedDeque::<u32>::CHUNK_LEN));
            assert!(q.is_empty() || !q.front.is_empty());
            for i in (0..model.len()).step_by(97) {
                assert_eq!(q.get(i), model.get(i));
            }
        }
    }

    #[test]
    fn append_and_retain_keep_order() {
        let mut a: ChunkedDeque<u32> = (0..5000).collect();
        let mut b: ChunkedDeque<u32> = (5000..12000).collect();
        a.append(&mut b);
        assert!(b.is_empty());
        assert!(a.iter().copied().eq(0..12000));
        a.retain(|x| x % 3 == 0);
        assert!(a.iter().copied().eq((0..12000).filter(|x| x % 3 == 0)));
        let mut empty = ChunkedDeque::new();
        empty.append(&mut a);
        assert!(a.is_empty());
        assert_eq!(empty.len(), 4000);
    }
}
