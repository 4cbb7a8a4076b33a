//! Giving back the room of a runtime list that a burst made large (the scavenger's pending
//! stacks, a stack class's lists, the global cell pools), so that it leaves the process's
//! resident memory whatever the allocator does with the freed block.
//!
//! Those lists live in the program's global allocator (glibc's `malloc` by default), and
//! freeing a large block there does not always give its memory back: glibc raises its mmap and
//! trim thresholds when a block above them is freed (up to 32 MiB), after which a freed block
//! of a few MiB stays in its arena, resident, and `malloc_trim` does not release the top of a
//! thread's arena (`docs/BENCHMARKS.md`, session 6). [`free`] therefore releases the block's
//! whole pages (`MADV_DONTNEED`: they read as zero if touched again) before freeing it: one
//! system call per list of at least `RELEASE_MIN` bytes, only when a list is given up after a
//! burst, never per goroutine or per stack.
//!
//! Invariant: the pages released lie strictly inside the list's own allocation (its capacity,
//! rounded inwards to whole pages), after its elements are dropped and before the block goes
//! back to the allocator, so no live value and no allocator metadata (which sits outside the
//! block, or is written by `free` afterwards) is lost.

use std::collections::VecDeque;

/// Lists smaller than this are freed as they are: a system call would cost more than the few
/// pages it could release.
const RELEASE_MIN: usize = 64 << 10;

/// Drops `list`'s elements, releases the whole pages of its buffer and frees it.
pub(crate) fn free<T>(mut list: Vec<T>) {
    list.clear();
    let bytes = list.capacity() * std::mem::size_of::<T>();
    if bytes >= RELEASE_MIN {
        release_pages(list.as_mut_ptr() as usize, bytes);
    }
}

/// [`free`] for a deque (`Vec::from` reuses its buffer).
pub(crate) fn free_deque<T>(list: VecDeque<T>) {
    free(Vec::from(list));
}

/// `MADV_DONTNEED` on the whole pages of `[start, start + len)`.
#[cfg(unix)]
fn release_pages(start: usize, len: usize) {
    let page = crate::stack::page_size();
    let lo = start.next_multiple_of(page);
    let hi = (start + len) / page * page;
    if hi <= lo {
        return;
    }
    // SAFETY: `[lo, hi)` lies inside the buffer of a list the caller owns, whose elements were
    // dropped: no value in it is read again, and the allocator's own data sits outside it.
    // `MADV_DONTNEED` on private anonymous memory only replaces the contents with zeros.
    unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_DONTNEED) };
}

/// Elsewhere the block is simply freed.
#[cfg(not(unix))]
fn release_pages(_start: usize, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frees_large_and_small_lists() {
        let mut big: Vec<u64> = Vec::with_capacity(1 << 20);
        big.extend(0..1000);
        free(big);
        free(vec![String::from("dropped"); 3]);
        let mut deque: VecDeque<u32> = VecDeque::with_capacity(1 << 16);
        deque.push_back(1);
        deque.push_front(0);
        free_deque(deque);
        free(Vec::<u8>::new());
    }

    #[test]
    fn released_pages_stay_usable() {
        // A list freed with `free` leaves its memory to the allocator; blocks handed out again
        // from it must read and write normally.
        for _ in 0..4 {
            let mut v: Vec<u8> = vec![7; 1 << 20];
            assert!(v.iter().all(|&b| b == 7));
            v.clear();
            free(v);
        }
    }
}
