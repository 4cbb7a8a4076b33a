//! `ChunkedDeque`: the runtime's list for anything that a burst of goroutines can make long
//! (the Ms' run queues, the registry, the stack and cell pools, a channel's wake list).
//!
//! A double-ended queue kept in chunks of at most [`CHUNK_BYTES`] each, so that however long it
//! grows, no single allocation is large. That matters because of what the program's allocator
//! (glibc's `malloc` by default) does with large blocks: one above its mmap threshold (128 KiB
//! at first) is mapped on its own, and freeing it raises the mmap and trim thresholds up to
//! 32 and 64 MiB, after which glibc keeps freed memory of that size in its thread arenas,
//! resident, for the rest of the process (`docs/BENCHMARKS.md`, "Session 7: memory returned").
//! A `Vec` that doubles to 100,000 entries crosses that line; a `ChunkedDeque` never does, and
//! a chunk that empties is freed (or kept as the one spare), so the memory of a burst goes back
//! to the allocator in small blocks it trims normally. A deque that empties keeps no more than
//! a small first chunk ([`SMALL_KEEP`] entries), so one that a burst used holds nothing after.
//!
//! Layout: `front` is the first chunk and holds everything while the deque is short, so a
//! short deque costs what a `VecDeque` costs plus one branch. Further chunks wait in `rest`.
//! Invariant: every chunk in `rest` except the last is full ([`ChunkedDeque::CHUNK_LEN`]
//! entries), so entry `i` is found by arithmetic ([`ChunkedDeque::get`]); `front` may hold
//! fewer, and is empty only if the whole deque is.

use std::collections::VecDeque;

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
    front: VecDeque<T>,
    rest: VecDeque<VecDeque<T>>,
    /// One emptied chunk kept for the next one needed, so a deque whose length crosses a chunk
    /// boundary back and forth does not allocate each time.
    spare: Option<VecDeque<T>>,
    len: usize,
}

impl<T> Default for ChunkedDeque<T> {
    fn default() -> Self {
        ChunkedDeque::new()
    }
}

impl<T> ChunkedDeque<T> {
    /// An empty deque; allocates nothing.
    pub const fn new() -> ChunkedDeque<T> {
        ChunkedDeque {
            front: VecDeque::new(),
            rest: VecDeque::new(),
            spare: None,
            len: 0,
        }
    }

    /// Entries per chunk: [`CHUNK_BYTES`] worth, at least 16.
    pub const CHUNK_LEN: usize = {
        let size = std::mem::size_of::<T>();
        if size == 0 || CHUNK_BYTES / size < 16 {
            16
        } else {
            CHUNK_BYTES / size
        }
    };

    /// The number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `x`.
    #[inline]
    pub fn push_back(&mut self, x: T) {
        self.len += 1;
        if self.rest.is_empty() && self.front.len() < Self::CHUNK_LEN {
            self.front.push_back(x);
            return;
        }
        self.push_back_rest(x);
    }

    fn push_back_rest(&mut self, x: T) {
        match self.rest.back_mut() {
            Some(last) if last.len() < Self::CHUNK_LEN => last.push_back(x),
            _ => {
                let mut chunk = self.new_chunk();
                chunk.push_back(x);
                self.rest.push_back(chunk);
            }
        }
    }

    /// Puts `x` first.
    #[inline]
    pub fn push_front(&mut self, x: T) {
        self.len += 1;
        if self.front.len() < Self::CHUNK_LEN {
            self.front.push_front(x);
            return;
        }
        let mut chunk = self.new_chunk();
        chunk.push_front(x);
        let full = std::mem::replace(&mut self.front, chunk);
        self.rest.push_front(full);
    }

    /// Takes the first entry.
    #[inline]
    pub fn pop_front(&mut self) -> Option<T> {
        let x = self.front.pop_front()?;
        self.len -= 1;
        if self.front.is_empty() {
            self.front_emptied();
        }
        Some(x)
    }

    /// `front` emptied: the next chunk becomes `front`, or, if there is none, the deque is
    /// empty and gives back what a burst left it.
    #[cold]
    fn front_emptied(&mut self) {
        if self.rest.is_empty() {
            self.emptied();
        } else {
            self.advance_front();
        }
    }

    /// The deque is empty: frees the spare, and `front` unless it is small.
    fn emptied(&mut self) {
        debug_assert!(self.is_empty());
        self.spare = None;
        if self.front.capacity() > SMALL_KEEP {
            self.front = VecDeque::new();
        }
        self.rest = VecDeque::new();
    }

    /// `front` emptied: the next chunk becomes `front`.
    fn advance_front(&mut self) {
        if let Some(next) = self.rest.pop_front() {
            let empty = std::mem::replace(&mut self.front, next);
            self.keep_spare(empty);
        }
        self.shrink_rest();
    }

    /// Takes the last entry.
    pub fn pop_back(&mut self) -> Option<T> {
        let Some(last) = self.rest.back_mut() else {
            let x = self.front.pop_back()?;
            self.len -= 1;
            if self.front.is_empty() {
                self.emptied();
            }
            return Some(x);
        };
        let x = last.pop_back().expect("chunks in `rest` are never empty");
        self.len -= 1;
        if last.is_empty() {
            let empty = self.rest.pop_back().expect("just seen");
            self.keep_spare(empty);
            self.shrink_rest();
        }
        Some(x)
    }

    /// Entry `i` (0 is the front).
    pub fn get(&self, i: usize) -> Option<&T> {
        let (chunk, at) = self.locate(i)?;
        match chunk {
            None => self.front.get(at),
            Some(c) => self.rest[c].get(at),
        }
    }

    /// Entry `i`, mutably.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        let (chunk, at) = self.locate(i)?;
        match chunk {
            None => self.front.get_mut(at),
            Some(c) => self.rest[c].get_mut(at),
        }
    }

    /// Where entry `i` is: `None` for `front`, else the index in `rest`; and the offset there.
    fn locate(&self, i: usize) -> Option<(Option<usize>, usize)> {
        if i >= self.len {
            return None;
        }
        if i < self.front.len() {
            return Some((None, i));
        }
        let j = i - self.front.len();
        Some((Some(j / Self::CHUNK_LEN), j % Self::CHUNK_LEN))
    }

    /// Removes entry `i`, putting the last entry in its place (`Vec::swap_remove`).
    pub fn swap_remove(&mut self, i: usize) -> Option<T> {
        if i >= self.len {
            return None;
        }
        let last = self.pop_back().expect("i < len");
        if i == self.len {
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

    /// Moves up to `n` entries from the back into `out` (the last chunk's first, each chunk's
    /// in order): a bulk [`pop_back`](Self::pop_back).
    pub fn take_back(&mut self, n: usize, out: &mut Vec<T>) {
        let mut n = n.min(self.len);
        while n > 0 {
            let tail = match self.rest.back_mut() {
                Some(last) => last,
                None => &mut self.front,
            };
            let k = n.min(tail.len());
            out.extend(tail.drain(tail.len() - k..));
            let now_empty = tail.is_empty();
            self.len -= k;
            n -= k;
            if now_empty {
                match self.rest.pop_back() {
                    Some(empty) => {
                        self.keep_spare(empty);
                        self.shrink_rest();
                    }
                    None => self.emptied(),
                }
            }
        }
    }

    /// Moves up to `n` entries from the front into `out`, in order: a bulk
    /// [`pop_front`](Self::pop_front).
    pub fn take_front(&mut self, n: usize, out: &mut Vec<T>) {
        let mut n = n.min(self.len);
        while n > 0 {
            let k = n.min(self.front.len());
            out.extend(self.front.drain(..k));
            self.len -= k;
            n -= k;
            if self.front.is_empty() {
                self.front_emptied();
            }
        }
    }

    /// Drops every entry and frees every chunk.
    pub fn clear(&mut self) {
        *self = ChunkedDeque::new();
    }

    /// The entries, front to back.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.front.iter().chain(self.rest.iter().flatten())
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

    /// A chunk with room for [`CHUNK_LEN`](Self::CHUNK_LEN) entries: the spare, or a new one.
    fn new_chunk(&mut self) -> VecDeque<T> {
        self.spare
            .take()
            .unwrap_or_else(|| VecDeque::with_capacity(Self::CHUNK_LEN))
    }

    fn keep_spare(&mut self, empty: VecDeque<T>) {
        debug_assert!(empty.is_empty());
        if self.spare.is_none() && empty.capacity() >= Self::CHUNK_LEN {
            self.spare = Some(empty);
        }
    }

    /// `rest`'s own buffer (one `VecDeque` header per chunk) is given back once it is mostly
    /// unused, so a burst's room for chunk headers does not stay either.
    fn shrink_rest(&mut self) {
        let cap = self.rest.capacity();
        if cap > 64 && self.rest.len() < cap / 4 {
            self.rest.shrink_to(self.rest.len() * 2);
        }
    }
}

/// Appends a chunk at a time (a tight loop per chunk, not a `push_back` per entry).
impl<T> Extend<T> for ChunkedDeque<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let mut iter = iter.into_iter().peekable();
        while iter.peek().is_some() {
            // A new tail chunk if the tail (the last of `rest`, else `front`) is full.
            let tail_full = match self.rest.back() {
                Some(last) => last.len() == Self::CHUNK_LEN,
                None => self.front.len() == Self::CHUNK_LEN,
            };
            if tail_full {
                let chunk = self.new_chunk();
                self.rest.push_back(chunk);
            }
            let tail = match self.rest.back_mut() {
                Some(last) => last,
                None => &mut self.front,
            };
            let room = Self::CHUNK_LEN - tail.len();
            let before = tail.len();
            tail.extend(iter.by_ref().take(room));
            self.len += tail.len() - before;
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
        assert!(q.rest.iter().all(|c| c.capacity() * 8 <= CHUNK_BYTES));
        assert!(q.rest.capacity() * std::mem::size_of::<VecDeque<u64>>() <= CHUNK_BYTES * 8);
        while q.pop_front().is_some() {}
        assert_eq!(q.rest.capacity(), 0, "the chunk list's room is given back");
        assert!(q.spare.is_none() && q.front.capacity() <= SMALL_KEEP);
        // Emptied from the back, too.
        q.extend(0..100_000);
        while q.pop_back().is_some() {}
        assert_eq!(q.rest.capacity(), 0);
        assert!(q.spare.is_none() && q.front.capacity() <= SMALL_KEEP);
    }

    /// The bulk operations against the one-at-a-time ones, across chunk boundaries.
    #[test]
    fn bulk_operations_match_single_ones() {
        let mut q: ChunkedDeque<u32> = ChunkedDeque::new();
        let mut model: VecDeque<u32> = VecDeque::new();
        let mut next = 0u32;
        for round in 0..200usize {
            let n = (round * 7919) % 3000;
            q.extend(next..next + n as u32);
            model.extend(next..next + n as u32);
            next += n as u32;
            let mut out = Vec::new();
            if round % 2 == 0 {
                q.take_front(n / 2 + 1, &mut out);
                let want: Vec<u32> = (0..n / 2 + 1).map_while(|_| model.pop_front()).collect();
                assert_eq!(out, want);
            } else {
                q.take_back(n / 3 + 1, &mut out);
                let mut want: Vec<u32> = (0..n / 3 + 1).map_while(|_| model.pop_back()).collect();
                out.sort_unstable();
                want.sort_unstable();
                assert_eq!(out, want);
            }
            assert_eq!(q.len(), model.len());
            assert!(q.iter().eq(model.iter()));
            assert!(q.rest.iter().all(|c| !c.is_empty()));
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
