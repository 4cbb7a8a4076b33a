//! Per-P caches of goroutine cells, so a spawn/exit cycle does not go through `malloc`/`free`
//! (Go keeps free `g`s per P the same way, `gFree`).
//!
//! A goroutine's cell (`goroutine.rs`) has a size that depends on its closure and result, so
//! cells are grouped into size classes `STEP` (16) bytes apart up to `MAX_CACHED`; every cell
//! of a class is allocated with the class's layout, which makes any free cell of the class fit
//! any goroutine of the class. Join packets (`join.rs`) are allocated the same way.
//!
//! Free cells are kept in lists threaded through the cells themselves (`CellList`, Go's `gList`
//! through `g.schedlink`), so the caches allocate nothing of their own. Each P keeps two lists
//! per class: the one it pushes to and pops from (up to `BATCH` cells) and at most one full
//! batch beside it. When both are full, the full batch moves to a global pool per class, and
//! when both are empty, a batch comes back (one lock per `BATCH` cells, as Go's
//! `gfput`/`gfget`); a batch moves as one list head. The global pool keeps at most
//! `GLOBAL_MAX` cells per class; beyond that, and on a thread without a P, cells go back to
//! the allocator. So the memory the caches hold is bounded by
//! `(Ps × 2 × BATCH + GLOBAL_MAX) × class size` per class in use. The background scavenger
//! (`scavenger.rs`), once per period, frees the global pools' batches that no P took for the
//! whole period (by each pool's low-water mark) and the cached cells of the Ps that are idle
//! at that moment (`trim_idle`); then an M going idle has mimalloc give its free pages back
//! (`return_freed_pages`). A pool is a `ChunkedDeque` of list heads, never one block the size
//! of a burst (`chunked.rs` says why that matters). The caches only ever hold memory
//! allocated with the class layout, so handing a cell back to the allocator is sound.
//!
//! The allocator behind the caches is mimalloc (`libmimalloc-sys`, its C library, used
//! directly for cells only; the program's global allocator is left alone). A burst of spawns
//! that outruns the caches (a million goroutines spawned before any is joined) allocates a
//! cell and a packet per goroutine, and the packets are freed later by the joiner, often on
//! another thread. glibc's malloc was slow on that path (malloc, `_int_free`, arena growth by
//! `mprotect`); mimalloc's thread-local free lists and its cross-thread free list are not
//! (`docs/BENCHMARKS.md`, spawn+join), and it returns freed pages to the system as glibc does.
//! It is built with `no_thp`: with mimalloc's transparent huge pages a burst could stall on a
//! 2 MiB fault that has to be backed at once, and gort's cells gain nothing from huge pages.

use crate::chunked::ChunkedDeque;
use crate::loom::std_only::{AtomicUsize, Mutex};
use crate::loom::Ordering;
use std::alloc::Layout;
use std::ptr::NonNull;

/// Bytes per size class step.
const STEP: usize = 16;
/// Largest cell size that is cached.
const MAX_CACHED: usize = 1024;
/// Number of classes.
pub(crate) const CLASSES: usize = MAX_CACHED / STEP;
/// Cells moved between a P and the global pool at a time. A P keeps up to two batches per
/// class: the one it pushes to and one full one.
const BATCH: usize = 64;
/// Free cells kept per class in the global pool.
const GLOBAL_MAX: usize = 64 * 1024;

/// The first word of a free cell: the next free cell of its list.
struct FreeNode {
    next: Option<NonNull<FreeNode>>,
}

/// Free cells of one class, threaded through their first words, newest first. Invariant: the
/// list owns its cells (free memory of its class layout, at least 16 bytes and 16-aligned),
/// so it may write their first word; `len` counts them.
struct CellList {
    head: Option<NonNull<FreeNode>>,
    len: usize,
}

// SAFETY: the list's cells are plain free memory owned by the list; moving the list to
// another thread moves that ownership.
unsafe impl Send for CellList {}

impl CellList {
    const fn new() -> CellList {
        CellList { head: None, len: 0 }
    }

    fn push(&mut self, cell: NonNull<u8>) {
        let node = cell.cast::<FreeNode>();
        // SAFETY: `cell` is free memory of a class layout (16-aligned, at least 16 bytes)
        // that the caller gives to this list; nothing else reads or writes it now.
        unsafe { node.as_ptr().write(FreeNode { next: self.head }) };
        self.head = Some(node);
        self.len += 1;
    }

    fn pop(&mut self) -> Option<NonNull<u8>> {
        let node = self.head?;
        // SAFETY: `node` is a cell of this list (type invariant), its first word written by
        // `push`.
        self.head = unsafe { (*node.as_ptr()).next };
        self.len -= 1;
        Some(node.cast())
    }

    /// Takes the whole list, leaving this one empty.
    fn take(&mut self) -> CellList {
        std::mem::replace(self, CellList::new())
    }

    /// Gives every cell back to mimalloc.
    fn free_all(mut self) {
        while let Some(cell) = self.pop() {
            // SAFETY: the caches hold only memory from `mi_malloc_aligned` (`alloc_in`) that
            // no one uses, and `cell` has left its list.
            unsafe { libmimalloc_sys::mi_free(cell.as_ptr().cast()) };
        }
    }
}

/// The global pools, one per class: full batches, newest last.
static GLOBAL: [Mutex<ChunkedDeque<CellList>>; CLASSES] =
    [const { Mutex::new(ChunkedDeque::new()) }; CLASSES];

/// Lengths of the global pools, in cells (a hint read without the lock, so that an allocation
/// that finds both its P's lists and the pool empty, as in a burst of spawns, takes no lock).
static GLOBAL_LEN: [AtomicUsize; CLASSES] = [const { AtomicUsize::new(0) }; CLASSES];

/// The fewest cells each global pool has held since the scavenger's last `trim_idle` (written
/// under the pool's lock): the batches below it sat idle all that time.
static GLOBAL_LOW: [AtomicUsize; CLASSES] = [const { AtomicUsize::new(0) }; CLASSES];

/// One P's free cells of one class. Invariant: `full` is empty or holds exactly `BATCH`.
struct ClassCache {
    /// The list spawns pop from and exits push to (at most `BATCH`).
    current: CellList,
    /// A full batch kept beside `current`, or nothing.
    full: CellList,
}

/// One P's free cells.
pub(crate) struct CellCache {
    free: [ClassCache; CLASSES],
}

impl CellCache {
    pub(crate) fn new() -> CellCache {
        CellCache {
            free: std::array::from_fn(|_| ClassCache {
                current: CellList::new(),
                full: CellList::new(),
            }),
        }
    }

    /// Empties this cache, for the scavenger while its P is idle (`scavenger::look`), and
    /// returns what it held, for `trim_idle` to free. A P's cache holds up to `2 × BATCH` cells
    /// per class, and after a burst those are scattered over as many of mimalloc's pages, each
    /// kept resident whole by one cell (`docs/BENCHMARKS.md`, session 6). No allocation.
    pub(crate) fn take(&mut self) -> CellCache {
        std::mem::replace(self, CellCache::new())
    }

    fn len(&self) -> usize {
        self.free.iter().map(|c| c.current.len + c.full.len).sum()
    }

    fn pop(&mut self, class: usize) -> Option<NonNull<u8>> {
        let cache = &mut self.free[class];
        if cache.current.len == 0 {
            if cache.full.len > 0 {
                cache.current = cache.full.take();
            } else if GLOBAL_LEN[class].load(Ordering::Relaxed) > 0 {
                let mut global = crate::loom::lock_std(&GLOBAL[class]);
                if let Some(batch) = global.pop_back() {
                    cache.current = batch;
                }
                let cells = global.len() * BATCH;
                GLOBAL_LEN[class].store(cells, Ordering::Relaxed);
                let low = GLOBAL_LOW[class].load(Ordering::Relaxed).min(cells);
                GLOBAL_LOW[class].store(low, Ordering::Relaxed);
            }
        }
        cache.current.pop()
    }

    /// Caches `ptr`; gives it back if both this P's lists and the global pool are full.
    fn push(&mut self, class: usize, ptr: NonNull<u8>) -> Result<(), NonNull<u8>> {
        let cache = &mut self.free[class];
        if cache.current.len >= BATCH {
            if cache.full.len > 0 {
                if GLOBAL_LEN[class].load(Ordering::Relaxed) + BATCH > GLOBAL_MAX {
                    return Err(ptr);
                }
                let mut global = crate::loom::lock_std(&GLOBAL[class]);
                if (global.len() + 1) * BATCH > GLOBAL_MAX {
                    return Err(ptr);
                }
                global.push_back(cache.full.take());
                GLOBAL_LEN[class].store(global.len() * BATCH, Ordering::Relaxed);
            }
            cache.full = cache.current.take();
        }
        cache.current.push(ptr);
        Ok(())
    }
}

/// For the scavenger, once per period: frees the cells at the bottom of each global pool that
/// no P took since the previous call (below the pool's low-water mark: idle for a whole
/// period), and starts the next period; the pools keep what the program took from them during
/// the period. Also frees the cells of `caches`, the idle Ps' caches (`CellCache::take`).
/// Returns how many cells it freed. Frees outside every lock.
pub(crate) fn trim_idle(caches: Vec<CellCache>) -> usize {
    // The oldest batches, below the low-water mark (a `ChunkedDeque` too: no list of a
    // burst's size is made here either).
    let mut idle: ChunkedDeque<CellList> = ChunkedDeque::new();
    for class in 0..CLASSES {
        let mut global = crate::loom::lock_std(&GLOBAL[class]);
        if global.is_empty() {
            continue;
        }
        let take = GLOBAL_LOW[class].load(Ordering::Relaxed) / BATCH;
        for _ in 0..take.min(global.len()) {
            idle.push_back(global.pop_front().expect("take <= len"));
        }
        let cells = global.len() * BATCH;
        GLOBAL_LEN[class].store(cells, Ordering::Relaxed);
        GLOBAL_LOW[class].store(cells, Ordering::Relaxed);
    }
    let freed = idle.len() * BATCH + caches.iter().map(CellCache::len).sum::<usize>();
    let cached = caches
        .into_iter()
        .flat_map(|c| c.free)
        .flat_map(|c| [c.current, c.full]);
    idle.into_iter().chain(cached).for_each(CellList::free_all);
    freed
}

/// Times the scavenger found pages for the threads to return (`ask_threads_to_collect`).
static COLLECTS: AtomicUsize = AtomicUsize::new(0);

std::thread_local! {
    /// `COLLECTS` when this thread last had mimalloc return its free pages.
    static COLLECTS_SEEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// For the scavenger, at most once per period: it freed cells, or the runtime's lists freed
/// chunks (`ring.rs`), so each thread should have mimalloc return the free pages it owns
/// (`return_freed_pages`). Once per period, not per free: a collection walks the thread's
/// heap.
pub(crate) fn ask_threads_to_collect() {
    COLLECTS.fetch_add(1, Ordering::Release);
}

extern "C" {
    /// mimalloc's collection of the calling thread's heap (`force`: free pages are returned to
    /// the system now, not after mimalloc's purge delay). Not bound by `libmimalloc-sys`
    /// without its `extended` feature; the symbol is in the library linked for `mi_malloc`.
    fn mi_collect(force: bool);
}

/// Called by an M going idle (`stack::scavenge`, from `stopm`), by an idle M woken by a
/// poke (the scavenger pokes every M after freeing cells) and by the scavenger itself
/// (`scavenger::trim_malloc`): if the scavenger asked for it since this thread last looked
/// (`ask_threads_to_collect`), has mimalloc return this thread's free pages to the system. Only the thread that owns a mimalloc page can give it back: cells the scavenger
/// frees from the sysmon thread wait on their page's cross-thread free list until the owner
/// collects. One atomic load and a thread-local read otherwise.
pub(crate) fn return_freed_pages() {
    let asked = COLLECTS.load(Ordering::Acquire);
    if COLLECTS_SEEN.with(|seen| seen.replace(asked)) != asked {
        // SAFETY: `mi_collect` has no preconditions; it only touches the calling thread's heap
        // and mimalloc's shared arenas, under mimalloc's own synchronisation.
        unsafe { mi_collect(true) };
    }
}

/// Cells in the global pools, over all classes (read without their locks: a hint).
pub(crate) fn pooled_globally() -> usize {
    GLOBAL_LEN.iter().map(|n| n.load(Ordering::Relaxed)).sum()
}

/// The class of `layout`, if cells of it are cached.
fn class_of(layout: Layout) -> Option<usize> {
    (layout.size() <= MAX_CACHED && layout.align() <= 16 && layout.size() > 0)
        .then(|| layout.size().div_ceil(STEP) - 1)
}

fn class_layout(class: usize) -> Layout {
    Layout::from_size_align((class + 1) * STEP, 16).expect("valid class layout")
}

/// Allocates memory for a cell of `layout`, from `cache` (the caller's P's) if it has one.
pub(crate) fn alloc_in(cache: Option<&mut CellCache>, layout: Layout) -> NonNull<u8> {
    let layout = match class_of(layout) {
        Some(class) => {
            if let Some(ptr) = cache.and_then(|c| c.pop(class)) {
                return ptr;
            }
            class_layout(class)
        }
        None => layout,
    };
    // SAFETY: plain allocation; any size and power-of-two alignment is accepted (cell and
    // packet layouts have non-zero size).
    let ptr = unsafe { libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()) };
    NonNull::new(ptr.cast::<u8>()).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
}

/// Frees a cell allocated by [`alloc_in`] with the same `layout`.
///
/// # Safety
/// `ptr` came from `alloc_in(_, layout)` and is not used afterwards.
pub(crate) unsafe fn dealloc(ptr: NonNull<u8>, layout: Layout) {
    if let Some(class) = class_of(layout) {
        let rejected = crate::machine::with_current_p(|p| match p {
            Some(p) => p.cells.push(class, ptr),
            None => Err(ptr),
        });
        if rejected.is_ok() {
            return;
        }
    }
    // SAFETY: `alloc_in` allocated `ptr` with `mi_malloc_aligned`; the caller gives it up.
    unsafe { libmimalloc_sys::mi_free(ptr.as_ptr().cast()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_sizes() {
        let class = |size| class_of(Layout::from_size_align(size, 8).unwrap());
        assert_eq!(class(1), Some(0));
        assert_eq!(class(STEP), Some(0));
        assert_eq!(class(STEP + 1), Some(1));
        assert_eq!(class(MAX_CACHED), Some(CLASSES - 1));
        assert_eq!(class(MAX_CACHED + 1), None);
        assert_eq!(class_of(Layout::from_size_align(64, 64).unwrap()), None);
        for class in 0..CLASSES {
            assert!(class_layout(class).size() >= (class + 1) * STEP);
        }
    }

    #[test]
    fn alloc_free_outside_runtime() {
        let layout = Layout::from_size_align(200, 8).unwrap();
        let p = alloc_in(None, layout);
        // SAFETY: allocated just above with this layout.
        unsafe { dealloc(p, layout) };
    }
}
