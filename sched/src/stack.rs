//! Goroutine stacks, carved from large slabs.
//!
//! Length: about 880 lines of code, a third of them comments (the design, the guard
//! mechanism per platform), and 470 of tests. Slabs, size classes, guards, the pools and the
//! slab counts are one data structure; the platform guard probe (`guard_install_supported` and
//! the `mprotect` fallback) is the part to move to a file of its own if it grows. When to
//! release is `scavenger.rs`'s; how is here.
//!
//! # Design
//!
//! A goroutine runs on its own stack ([`Stack`]), which corosensei switches to. A million live
//! goroutines must fit on a stock Linux kernel, whose per-process limit on memory mappings
//! (`vm.max_map_count`) is 65,530, so a stack can never be a mapping of its own. Instead:
//!
//! * **Slabs.** Stacks of one size (a *size class*) are cut from slabs: one anonymous
//!   `mmap(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)` of at least
//!   [`SLAB_BYTES`] and at least [`MIN_SLAB_SLOTS`] slots. `MAP_NORESERVE` and lazy faulting mean
//!   a slab costs address space, not memory, until a stack is touched.
//! * **Slots.** A slot is `[guard page | usable stack]`, lowest address first. Stacks grow down,
//!   so the guard sits just below the usable area; the usable area ends at the slot's end, which
//!   is page-aligned and is what [`corosensei::stack::Stack::base`] returns. The first frames of
//!   a goroutine therefore land in the topmost usable page, and a goroutine that parks quickly
//!   touches exactly one page.
//! * **Guards.** A slot's guard is installed once, when the slot is first carved from its slab,
//!   and is never removed. On Linux >= 6.13 it is `madvise(MADV_GUARD_INSTALL)`: a marker in the
//!   page tables that faults on any access and does *not* split the mapping, so a slab stays one
//!   mapping (adjacent slabs even merge: a million stacks add a handful of mappings). Whether
//!   the kernel has it is probed once and cached. Elsewhere the guard is `mprotect(PROT_NONE)`,
//!   which splits the slab: every carved slot then costs two mappings, about 32,000 stacks under
//!   the default `vm.max_map_count`. Running out gives a [`StackError`] that names the limit, its
//!   value and the fix rather than a panic.
//! * **No huge pages.** Every slab gets `madvise(MADV_NOHUGEPAGE)`: with transparent huge pages a
//!   goroutine touching one page of its stack could fault in 2 MiB.
//! * **Recycling; memory back in bulk.** A freed stack ([`free_stack`], or dropping the
//!   [`Stack`]) goes to the back of its class's dirty list, untouched, and is handed out again
//!   first: a push under the class's lock, no system call (releasing at free time cost a TLB
//!   shootdown per exiting goroutine, `docs/BENCHMARKS.md`). The background scavenger
//!   (`scavenger.rs`, on the sysmon thread) takes the stacks at the cold front of a dirty list
//!   that no allocation reached for a whole period ([`take_idle`]: below the list's low-water
//!   mark), releases them whole (`MADV_DONTNEED` of the usable area) in runs of adjacent slots,
//!   one call per run ([`release_run`]), and puts them on the free list, where a stack costs no
//!   resident memory, only its share of page tables. Without sysmon, an M going idle releases
//!   the dirty stacks beyond `DIRTY_CAP` itself ([`scavenge`]).
//! * **Slabs, not slots, are unmapped.** Unmapping one slot would split the slab mapping
//!   (defeating the point of slabs), so a class counts per slab the slots out of its free list
//!   (`SlabUse`); a slab at zero holds nothing in use, and the scavenger unmaps such slabs beyond
//!   `IDLE_SLABS_KEPT` per class ([`unmap_idle_slabs`]), which gives back their page tables
//!   and address space. The count changes on the free-list, carve and release paths only, never
//!   on a dirty push or pop.
//!
//! Guard markers and `PROT_NONE` both survive `MADV_DONTNEED`, so a recycled stack keeps its
//! guard; the tests check this on the running kernel.
//!
//! # Limits
//!
//! * One guard page. Rust code touches every page of a frame larger than a page in order (stack
//!   probes), so an overflow always hits the guard first. C code built without
//!   `-fstack-clash-protection` that allocates a frame larger than a page near the bottom of the
//!   stack could step over the guard into the topmost page of the slot below (another
//!   goroutine's stack). `GUARD_PAGES` trades address space for a wider guard.
//! * `MAP_NORESERVE` is ignored under strict overcommit (`vm.overcommit_memory = 2`): there every
//!   slab is charged in full against the commit limit.
//! * A pooled stack keeps its share of page tables (one 4 KiB page-table page per 2 MiB of slab
//!   that was ever touched, about 140 bytes per 64 KiB stack: the guard markers keep them from
//!   being freed by `MADV_DONTNEED`) until its whole slab is idle and unmapped. One stack in use
//!   keeps its slab, and with it the slab's page tables, mapped: stacks are handed out LIFO,
//!   not packed into the fullest slab.
//!
//! # Invariants
//!
//! * Every slot of a mapped slab belongs to exactly one of: its class's uncarved ranges
//!   (`ClassState::fresh`, no guard yet), a live [`Stack`] value (running, parked, in a P's
//!   cache, or taken by the scavenger and not yet released), its class's dirty list
//!   (`ClassState::dirty`: freed, memory not yet released) or its free list (`ClassState::free`:
//!   released).
//! * A slab's `SlabUse::out` counts its slots in neither `fresh` nor `free`; a slab is unmapped
//!   only at 0, under its class's lock, after its slots left both lists.
//! * A slot that has left `fresh` has its guard installed for the rest of the process.
//! * Both ends of every slot are page-aligned, hence aligned to corosensei's `STACK_ALIGNMENT`.
//! * Locks: one `Mutex` per size class, held to push or pop (or, for the scavenger, to move at
//!   most `TAKE_CHUNK` stacks, or to forget an idle slab's slots); no system call runs under
//!   it.
//!
//! The scheduler keeps a per-processor cache of stacks on top of this module; the global path
//! here is the slow path.

use crate::chunked::ChunkedDeque;
use crate::loom::std_only::{AtomicUsize, Mutex, OnceLock};
use crate::loom::Ordering;
use std::fmt;
use std::io;
use std::ptr;

use corosensei::stack::StackPointer;
use libc::c_void;

/// Smallest usable stack, in bytes.
const MIN_STACK_SIZE: usize = 16 << 10;

/// A slab holds at least this many bytes of slots...
const SLAB_BYTES: usize = 64 << 20;

/// ...and at least this many slots.
const MIN_SLAB_SLOTS: usize = 16;

/// Guard pages at the low end of every slot.
const GUARD_PAGES: usize = 1;

/// Distinct stack sizes that may be in use at once.
const MAX_CLASSES: usize = 32;

/// `madvise` advice: install guard markers (Linux 6.13); not yet in the `libc` crate.
#[cfg(target_os = "linux")]
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Test hook (env var): make `guard_install_supported()` report false, to exercise the mprotect
/// fallback in a child process.
#[cfg(all(test, target_os = "linux"))]
const FORCE_MPROTECT: &str = "GORT_TEST_FORCE_MPROTECT_GUARD";

/// Extra `mmap` flags for slabs.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SLAB_MAP_FLAGS: libc::c_int = libc::MAP_NORESERVE;
/// Extra `mmap` flags for slabs: OpenBSD faults if the stack pointer leaves a `MAP_STACK` region.
#[cfg(target_os = "openbsd")]
const SLAB_MAP_FLAGS: libc::c_int = libc::MAP_STACK;
/// Extra `mmap` flags for slabs.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "openbsd")))]
const SLAB_MAP_FLAGS: libc::c_int = 0;

/// Stacks allocated and not yet freed (including those parked in the scheduler's caches).
/// Relaxed: a statistic for messages and metrics, synchronises nothing.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The size classes in use, filled in order, never emptied.
static CLASSES: [OnceLock<SizeClass>; MAX_CLASSES] = [const { OnceLock::new() }; MAX_CLASSES];

/// One goroutine stack: a slot of a slab, owned exclusively by this value.
///
/// Dropping a `Stack` returns it to its class's dirty list, exactly like [`free_stack`].
///
/// Two words: the slot's top and its class (which knows the slot and guard sizes), because a
/// goroutine carries its stack in its header and a million of them are live at once.
pub(crate) struct Stack {
    /// One past the highest usable address (what `base()` returns); page-aligned.
    top: usize,
    /// The class the slot returns to.
    class: &'static SizeClass,
}

// SAFETY: `limit()..base()` is a whole slot, owned by this value alone: a slot leaves the
// allocator through `alloc_stack` only, and comes back only when its `Stack` is dropped. Its
// lowest page is a guard that faults on any access, installed before the slot was first handed
// out and never removed (slots are never unmapped or re-protected, and guards survive
// `MADV_DONTNEED`). The usable area is at least `MIN_STACK_SIZE` = 16 KiB, above corosensei's
// `MIN_STACK_SIZE`. Both addresses are page-aligned, hence aligned to `STACK_ALIGNMENT`.
unsafe impl corosensei::stack::Stack for Stack {
    #[inline]
    fn base(&self) -> StackPointer {
        StackPointer::new(self.top).expect("stack top is never null")
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.lo()).expect("stack slot is never at address zero")
    }
}

impl Stack {
    /// Lowest address of the slot: the start of the guard.
    fn lo(&self) -> usize {
        self.top - self.class.slot_size
    }

    /// End of the guard, lowest usable address.
    fn usable_lo(&self) -> usize {
        self.lo() + self.class.guard_size
    }

    /// Bytes a goroutine may use, guard excluded.
    pub(crate) fn usable_size(&self) -> usize {
        self.top - self.usable_lo()
    }

    /// `[lo, hi)` of the guard page(s) below the usable area.
    #[cfg(test)]
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (self.lo(), self.usable_lo())
    }

    /// One past the highest usable address.
    pub(crate) fn top(&self) -> usize {
        self.top
    }

    /// Gives the whole usable area back to the kernel (one `madvise`): the test suite's way to
    /// release one stack as the scavenger releases a run.
    #[cfg(test)]
    fn release_memory(&self) {
        // SAFETY: the tests call this on stacks nothing runs on.
        unsafe { release_range(self.usable_lo(), self.top) };
    }
}

/// The guard's size below every slot's usable area (`GUARD_PAGES`): a load on the path that
/// starts every goroutine run (`machine::guard_info`).
#[inline]
pub(crate) fn guard_bytes() -> usize {
    static GUARD: AtomicUsize = AtomicUsize::new(0);
    match GUARD.load(Ordering::Relaxed) {
        0 => {
            let bytes = GUARD_PAGES * page_size();
            GUARD.store(bytes, Ordering::Relaxed);
            bytes
        }
        bytes => bytes,
    }
}

/// Gives `[lo, hi)`, page-aligned slots of one slab that nothing runs on, back to the kernel
/// (`MADV_DONTNEED`: the pages read as zero on the next touch). The range may hold guards
/// (a run of adjacent slots): both kinds survive, as the tests check.
///
/// # Safety
/// Nothing in `[lo, hi)` may be read or written before it is rewritten: every slot in it is
/// pooled, or is the stack of a parked goroutine whose live bytes `compact.rs` has saved and
/// that nobody resumes until they are copied back.
pub(crate) unsafe fn release_range(lo: usize, hi: usize) {
    // `[lo, hi)` lies inside one slab (a run of adjacent slots of one class, which are only
    // ever adjacent inside a slab, or slabs that happen to be adjacent: both mapped RW
    // anonymous memory of ours or guard ranges). SAFETY: the caller's contract: no coroutine
    // runs on it and no live data is lost; DONTNEED leaves the mapping and guards.
    let rc = unsafe { libc::madvise(lo as *mut c_void, hi - lo, libc::MADV_DONTNEED) };
    debug_assert_eq!(
        rc,
        0,
        "madvise(MADV_DONTNEED): {}",
        io::Error::last_os_error()
    );
}

impl Drop for Stack {
    /// Returns the slot to its class's dirty list: no system call here (module docs: releasing
    /// at free time cost a TLB shootdown per stack). The scavenger releases it later, in bulk.
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        let slot = Stack {
            top: self.top,
            class: self.class,
        };
        self.class.lock().dirty.push_back(slot);
        DIRTY.fetch_add(1, Ordering::Relaxed);
    }
}

/// Freed stacks kept per size class by the inline fallback (`scavenge`, when sysmon does not
/// run) without releasing their memory: `DIRTY_CAP` × the class's stack size at worst (64 MiB
/// for the default 256 KiB), a page or two each in practice.
const DIRTY_CAP: usize = 256;

/// Stacks released per `madvise` at most: bounds one call (and the time the scavenger works
/// between two looks at its budget) to 256 slots' worth of zapping.
const RUN_MAX: usize = 256;

/// Stacks the cold end of a dirty list gives up per hold of its class's lock (`take_idle`), so
/// an allocation never waits for more than a short copy.
const TAKE_CHUNK: usize = 4096;

/// Stacks on their way to release (`release_run`): a ring on mimalloc (`ring.rs`), so the
/// megabytes of them the scavenger holds after a burst stay out of the program's allocator.
pub(crate) type Batch = crate::ring::Ring<Stack>;

/// Freed stacks not yet released, over all classes (a hint for `scavenge`).
static DIRTY: AtomicUsize = AtomicUsize::new(0);

/// Stacks on free lists: released, resident memory nothing (a statistic for tests).
static RELEASED: AtomicUsize = AtomicUsize::new(0);

/// The inline fallback of the background scavenger (`scavenger.rs`), for a program without
/// sysmon (`GORT_SYSMON=off`): releases the memory of freed stacks beyond `DIRTY_CAP` per
/// class, in runs of adjacent slots, until done or until `stop` says the caller is needed
/// elsewhere (the rest waits for the next call). Called by an M about to go idle
/// (`scheduler/sleep.rs`, `stopm`); that M is not yet listed idle, so nothing it is needed for
/// can reach it meanwhile but through `stop`. With sysmon running it only has the M hand
/// mimalloc pages freed by the scavenger back (`cellcache::return_freed_pages`) and returns:
/// the scavenger does the rest, paced, and also releases what `DIRTY_CAP` keeps here.
pub(crate) fn scavenge(stop: impl Fn() -> bool) {
    crate::cellcache::return_freed_pages();
    if crate::sysmon::threads() != 0 || DIRTY.load(Ordering::Relaxed) <= DIRTY_CAP {
        return;
    }
    let mut batch = Batch::with_capacity(RUN_MAX);
    for class in CLASSES.iter().filter_map(OnceLock::get) {
        while !stop() {
            class.take_excess_dirty(&mut batch);
            if batch.is_empty() {
                break;
            }
            sort_for_release(batch.as_mut_slice());
            while !batch.is_empty() {
                release_run(&mut batch);
            }
        }
    }
}

/// For the scavenger, once per period: moves into `out` the stacks at the cold end of every
/// class's dirty list that no allocation reached since the previous call (those below the
/// list's low-water mark: idle for a whole period), and starts the next period. What stays is
/// the retained target: the stacks the program took from the pool during the period.
///
/// `out` gets them in batches of at most `TAKE_CHUNK`, each sorted for [`release_run`]: one
/// list of a burst's stacks would be a block of megabytes (`chunked.rs`).
pub(crate) fn take_idle(out: &mut Vec<Batch>) {
    for class in CLASSES.iter().filter_map(OnceLock::get) {
        loop {
            let mut batch = Batch::new();
            let done = class.take_idle_chunk(&mut batch);
            if !batch.is_empty() {
                sort_for_release(batch.as_mut_slice());
                out.push(batch);
            }
            if done {
                break;
            }
        }
    }
}

/// Orders stacks for [`release_run`]: by class, then by address, so adjacent slots sit next to
/// each other and leave the batch from the top down.
pub(crate) fn sort_for_release(stacks: &mut [Stack]) {
    stacks.sort_unstable_by_key(|s| (s.class as *const SizeClass as usize, s.top));
}

/// Releases the memory of the run of adjacent slots at the end of `stacks` (sorted by
/// [`sort_for_release`]; at most `RUN_MAX` slots) with one `madvise`, and moves them to their
/// class's free list. Returns how many stacks it released.
pub(crate) fn release_run(batch: &mut Batch) -> usize {
    let stacks = batch.as_mut_slice();
    let Some(last) = stacks.last() else {
        return 0;
    };
    let (class, hi) = (last.class, last.top);
    let mut lo_slot = stacks.len() - 1;
    while lo_slot > 0 && stacks.len() - lo_slot < RUN_MAX {
        let below = &stacks[lo_slot - 1];
        if !ptr::eq(below.class, class) || below.top + class.slot_size != stacks[lo_slot].top {
            break;
        }
        lo_slot -= 1;
    }
    // SAFETY: the batch's stacks were taken from the dirty lists: pooled, nothing runs on them.
    unsafe { release_range(stacks[lo_slot].usable_lo(), hi) };
    let run = stacks.len() - lo_slot;
    let mut state = class.lock();
    for _ in 0..run {
        let stack = batch.pop_back().expect("the run is in the batch");
        state.slab_of(stack.lo()).out -= 1;
        state.free.push_back(stack);
    }
    RELEASED.fetch_add(run, Ordering::Relaxed);
    run
}

/// Idle slabs a class keeps mapped (`unmap_idle_slabs`): a program whose use of one class
/// swings within a slab never maps and unmaps it over and over.
const IDLE_SLABS_KEPT: usize = 1;

/// For the scavenger, once everything it took is released: unmaps the slabs of each class
/// with no slot in use (all released or never carved) beyond `IDLE_SLABS_KEPT` per class,
/// which gives back their page tables (released stacks keep them: about slot size / 512 bytes
/// each, 51 MB after a burst of 100,000 256 KiB stacks, `docs/BENCHMARKS.md`) and address
/// space. Their slots leave the free and uncarved lists under the class's lock; the `munmap`
/// runs after it. Returns how many slabs it unmapped.
pub(crate) fn unmap_idle_slabs() -> usize {
    CLASSES
        .iter()
        .filter_map(OnceLock::get)
        .map(SizeClass::unmap_idle_slabs)
        .sum()
}

/// Pooled stacks: (dirty, their memory still resident; released, on free lists).
pub(crate) fn pooled_stacks() -> (usize, usize) {
    (
        DIRTY.load(Ordering::Relaxed),
        RELEASED.load(Ordering::Relaxed),
    )
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field(
                "guard",
                &format_args!("{:#x}..{:#x}", self.lo(), self.usable_lo()),
            )
            .field("top", &format_args!("{:#x}", self.top))
            .finish()
    }
}

/// Rounds a requested stack size to what [`alloc_stack`] takes: a multiple of the page size,
/// at least 16 KiB. Saturates at the largest page multiple (which `alloc_stack` then refuses).
pub(crate) fn round_stack_size(requested: usize) -> usize {
    let mask = page_size() - 1;
    requested.max(MIN_STACK_SIZE).saturating_add(mask) & !mask
}

/// Hands out a stack with `size` usable bytes (`size` from [`round_stack_size`]): a recycled one
/// from the size class's dirty list, else its free list, else a slot carved from a slab
/// (mapping a new slab when the class has none left).
///
/// # Errors
///
/// Fails when the kernel refuses memory: address space for a new slab, or (without
/// `MADV_GUARD_INSTALL`) mappings for guard pages. The [`StackError`] says which limit was hit
/// and how to raise it.
pub(crate) fn alloc_stack(size: usize) -> Result<Stack, StackError> {
    debug_assert_eq!(size, round_stack_size(size), "stack size not rounded");
    let size = round_stack_size(size);
    let stack = SizeClass::get(size)?.alloc()?;
    LIVE.fetch_add(1, Ordering::Relaxed);
    Ok(stack)
}

/// Returns the stack to its size class's dirty list without releasing its memory (`scavenge`
/// does that later, in bulk). The slot stays mapped for the life of the process; see the module
/// docs for why slots are never unmapped. Same as dropping the `Stack`.
pub(crate) fn free_stack(stack: Stack) {
    drop(stack);
}

/// Stacks allocated and not freed (stacks in the scheduler's caches count as live).
pub(crate) fn live_stacks() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(n)
            .ok()
            .filter(|n| n.is_power_of_two())
            .expect("sysconf(_SC_PAGESIZE) returned a bad page size")
    })
}

/// The usable sizes and slab geometry of one class.
struct SizeClass {
    stack_size: usize,
    /// Guard plus usable size.
    slot_size: usize,
    /// Bytes of guard at the bottom of each slot.
    guard_size: usize,
    /// Bytes per slab: a multiple of `slot_size`.
    slab_size: usize,
    state: Mutex<ClassState>,
}

/// The slots of a class that are not in a live `Stack`. The lists are `ChunkedDeque`s: a burst
/// makes them long, and their room must go when they shrink (`chunked.rs`).
struct ClassState {
    /// Freed but not yet released (their touched pages still resident), newest at the back;
    /// handed out first from the back, as the warmest. The scavenger releases the cold front.
    dirty: ChunkedDeque<Stack>,
    /// The shortest `dirty` has been since the scavenger's last `take_idle`: the stacks below
    /// it sat idle all that time.
    dirty_low: usize,
    /// Guarded, released, ready to hand out (LIFO: the most recently freed is the warmest).
    free: ChunkedDeque<Stack>,
    /// Slots of mapped slabs not yet carved (no guard yet).
    fresh: Vec<Fresh>,
    /// Every mapped slab of the class, by address, with its slots out of the free list.
    slabs: Vec<SlabUse>,
}

/// One mapped slab and how many of its slots are carved and not on the free list (live, in a
/// cache, dirty, or taken by the scavenger). At 0 every slot is free or uncarved: nothing in
/// the slab is in use, and it may be unmapped (`unmap_idle_slabs`).
struct SlabUse {
    lo: usize,
    out: usize,
}

impl ClassState {
    /// The slab holding `addr` (which is in one of the class's slabs).
    fn slab_of(&mut self, addr: usize) -> &mut SlabUse {
        let at = self.slabs.partition_point(|s| s.lo <= addr);
        &mut self.slabs[at - 1]
    }
}

/// Uncarved slots `next, next + slot_size, ..` up to `end` (exclusive), all in one slab.
struct Fresh {
    next: usize,
    end: usize,
}

/// What one look at a class's state found.
enum Take {
    Pooled(Stack),
    Uncarved(usize),
    Empty,
}

impl SizeClass {
    /// The class for `stack_size` (a rounded size), registering it on first use.
    fn get(stack_size: usize) -> Result<&'static SizeClass, StackError> {
        let guard_size = GUARD_PAGES * page_size();
        let slot_size = stack_size
            .checked_add(guard_size)
            .ok_or_else(|| StackError::new(ErrorKind::TooLarge, stack_size, None))?;
        let slots = SLAB_BYTES.div_ceil(slot_size).max(MIN_SLAB_SLOTS);
        let slab_size = slot_size
            .checked_mul(slots)
            .ok_or_else(|| StackError::new(ErrorKind::TooLarge, stack_size, None))?;
        let new = || SizeClass {
            stack_size,
            slot_size,
            guard_size,
            slab_size,
            state: Mutex::new(ClassState {
                dirty: ChunkedDeque::new(),
                dirty_low: 0,
                free: ChunkedDeque::new(),
                fresh: Vec::new(),
                slabs: Vec::new(),
            }),
        };
        // Cells fill in order; a racing registration of another size makes us move on.
        CLASSES
            .iter()
            .map(|cell| cell.get_or_init(new))
            .find(|class| class.stack_size == stack_size)
            .ok_or_else(|| StackError::new(ErrorKind::TooManySizes, stack_size, None))
    }

    fn lock(&self) -> crate::loom::StdLocked<'_, ClassState> {
        // The critical sections only push and pop, so a poisoned state is still consistent.
        crate::loom::lock_std(&self.state)
    }

    fn alloc(&'static self) -> Result<Stack, StackError> {
        loop {
            match self.take() {
                Take::Pooled(stack) => return Ok(stack),
                Take::Uncarved(lo) => return self.carve(lo),
                Take::Empty => {
                    // Racing threads may each map a slab; the spare one is simply used later.
                    let slab = self.map_slab()?;
                    let mut state = self.lock();
                    let at = state.slabs.partition_point(|s| s.lo < slab.next);
                    state.slabs.insert(
                        at,
                        SlabUse {
                            lo: slab.next,
                            out: 0,
                        },
                    );
                    state.fresh.push(slab);
                }
            }
        }
    }

    /// Up to `RUN_MAX` dirty stacks beyond `DIRTY_CAP`, the coldest, into `out` (for
    /// `scavenge`).
    fn take_excess_dirty(&self, out: &mut Batch) {
        let mut state = self.lock();
        let take = state.dirty.len().saturating_sub(DIRTY_CAP).min(RUN_MAX);
        (0..take)
            .map_while(|_| state.dirty.pop_front())
            .for_each(|s| out.push_back(s));
        state.dirty_low = state.dirty_low.min(state.dirty.len());
        DIRTY.fetch_sub(take, Ordering::Relaxed);
    }

    /// The cold front of `dirty` below its low-water mark into `out`, at most `TAKE_CHUNK`
    /// stacks (one hold of the lock). True once the mark is reached: the mark then restarts at
    /// the list's length; false if more idle stacks are left for the next call.
    fn take_idle_chunk(&self, out: &mut Batch) -> bool {
        let mut state = self.lock();
        let idle = state.dirty_low.min(state.dirty.len());
        let take = idle.min(TAKE_CHUNK);
        (0..take)
            .map_while(|_| state.dirty.pop_front())
            .for_each(|s| out.push_back(s));
        DIRTY.fetch_sub(take, Ordering::Relaxed);
        if take == idle {
            state.dirty_low = state.dirty.len();
            return true;
        }
        state.dirty_low = idle - take;
        false
    }

    /// `unmap_idle_slabs` for this class.
    fn unmap_idle_slabs(&self) -> usize {
        let idle = self.remove_idle_slabs();
        for &lo in &idle {
            // SAFETY: `[lo, lo + slab_size)` is one of our slabs, which `remove_idle_slabs`
            // has just forgotten: none of its slots is in use or in any list, so nothing
            // refers to the memory any more.
            let rc = unsafe { libc::munmap(lo as *mut c_void, self.slab_size) };
            debug_assert_eq!(rc, 0, "munmap: {}", io::Error::last_os_error());
        }
        idle.len()
    }

    /// Forgets the slabs with no slot in use beyond the first `IDLE_SLABS_KEPT`: drops their
    /// slots from the free list and their uncarved ranges; returns their addresses, for the
    /// caller to unmap.
    fn remove_idle_slabs(&self) -> Vec<usize> {
        let mut state = self.lock();
        let mut idle: Vec<usize> = state
            .slabs
            .iter()
            .filter(|s| s.out == 0)
            .map(|s| s.lo)
            .skip(IDLE_SLABS_KEPT)
            .collect();
        if idle.is_empty() {
            return idle;
        }
        idle.sort_unstable();
        let slab_size = self.slab_size;
        let in_idle = |addr: usize| {
            let at = idle.partition_point(|&lo| lo <= addr);
            at > 0 && addr < idle[at - 1] + slab_size
        };
        let state = &mut *state;
        let old = std::mem::take(&mut state.free);
        let mut kept = ChunkedDeque::new();
        let mut gone = 0;
        for stack in old {
            if in_idle(stack.lo()) {
                // Not dropped: dropping a `Stack` frees it to the dirty list. The slot simply
                // ceases to exist with its slab.
                std::mem::forget(stack);
                gone += 1;
            } else {
                kept.push_back(stack);
            }
        }
        state.free = kept;
        RELEASED.fetch_sub(gone, Ordering::Relaxed);
        state.fresh.retain(|f| !in_idle(f.next));
        state.slabs.retain(|s| !in_idle(s.lo));
        idle
    }

    /// Pops a dirty or free stack, else reserves an uncarved slot, under one short lock.
    fn take(&self) -> Take {
        let mut state = self.lock();
        if let Some(stack) = state.dirty.pop_back() {
            state.dirty_low = state.dirty_low.min(state.dirty.len());
            DIRTY.fetch_sub(1, Ordering::Relaxed);
            return Take::Pooled(stack);
        }
        if let Some(stack) = state.free.pop_back() {
            RELEASED.fetch_sub(1, Ordering::Relaxed);
            state.slab_of(stack.lo()).out += 1;
            return Take::Pooled(stack);
        }
        let Some(range) = state.fresh.last_mut() else {
            return Take::Empty;
        };
        let lo = range.next;
        range.next += self.slot_size;
        if range.next == range.end {
            state.fresh.pop();
        }
        state.slab_of(lo).out += 1;
        Take::Uncarved(lo)
    }

    /// Installs the guard of the uncarved slot at `lo` and wraps the slot in a `Stack`.
    /// On failure the slot goes back to `fresh`.
    fn carve(&'static self, lo: usize) -> Result<Stack, StackError> {
        match install_guard(lo, self.guard_size) {
            Ok(()) => Ok(Stack {
                top: lo + self.slot_size,
                class: self,
            }),
            Err(err) => {
                let mut state = self.lock();
                state.fresh.push(Fresh {
                    next: lo,
                    end: lo + self.slot_size,
                });
                state.slab_of(lo).out -= 1;
                drop(state);
                let kind = match err.raw_os_error() {
                    // ENOMEM from mprotect: splitting the slab needs a mapping over the limit.
                    Some(libc::ENOMEM)
                        if cfg!(target_os = "linux") && !guard_install_supported() =>
                    {
                        ErrorKind::MapCount
                    }
                    _ => ErrorKind::Guard,
                };
                Err(StackError::new(kind, self.stack_size, err.raw_os_error()))
            }
        }
    }

    /// Maps a new slab for this class: every slot uncarved.
    fn map_slab(&self) -> Result<Fresh, StackError> {
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | SLAB_MAP_FLAGS;
        // SAFETY: a new anonymous mapping at an address the kernel picks; no existing memory is
        // affected.
        let p = unsafe { libc::mmap(ptr::null_mut(), self.slab_size, prot, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            let errno = io::Error::last_os_error().raw_os_error();
            let kind = if map_count_exhausted() {
                ErrorKind::MapCount
            } else {
                ErrorKind::Slab {
                    slab_size: self.slab_size,
                }
            };
            return Err(StackError::new(kind, self.stack_size, errno));
        }
        no_huge_pages(p, self.slab_size);
        let lo = p as usize;
        Ok(Fresh {
            next: lo,
            end: lo + self.slab_size,
        })
    }
}

/// Turns off transparent huge pages for a new slab (best effort: a kernel without THP refuses).
#[cfg(target_os = "linux")]
fn no_huge_pages(slab: *mut c_void, len: usize) {
    // SAFETY: `slab..slab + len` is a mapping we just created; the advice only changes how
    // future faults are served, never the contents.
    unsafe { libc::madvise(slab, len, libc::MADV_NOHUGEPAGE) };
}

/// Transparent huge pages are a Linux feature.
#[cfg(not(target_os = "linux"))]
fn no_huge_pages(_slab: *mut c_void, _len: usize) {}

/// Makes `[lo, lo + len)`, the guard of a slot no one uses yet, fault on any access.
fn install_guard(lo: usize, len: usize) -> io::Result<()> {
    let addr = lo as *mut c_void;
    #[cfg(target_os = "linux")]
    if guard_install_supported() {
        // SAFETY: the range is the guard of an uncarved slot of one of our slabs: mapped,
        // anonymous and referenced by nothing, so replacing it with a guard marker loses nothing.
        let rc = unsafe { libc::madvise(addr, len, MADV_GUARD_INSTALL) };
        return if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        };
    }
    // SAFETY: as above; revoking access to memory nothing references cannot break anything.
    let rc = unsafe { libc::mprotect(addr, len, libc::PROT_NONE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether the kernel has `MADV_GUARD_INSTALL`: probed once on a scratch mapping, then cached.
pub(crate) fn guard_install_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(probe_guard_install)
}

#[cfg(target_os = "linux")]
fn probe_guard_install() -> bool {
    // Tests run the mprotect fallback in a child process by setting this.
    #[cfg(test)]
    if std::env::var_os(FORCE_MPROTECT).is_some() {
        return false;
    }
    let len = page_size();
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: a new anonymous mapping at an address the kernel picks.
    let p = unsafe { libc::mmap(ptr::null_mut(), len, prot, flags, -1, 0) };
    if p == libc::MAP_FAILED {
        return false;
    }
    // SAFETY: `p..p + len` is the mapping just created; nothing references it. Any error (EINVAL
    // on kernels before 6.13, a seccomp filter, ...) means "unsupported".
    let ok = unsafe { libc::madvise(p, len, MADV_GUARD_INSTALL) } == 0;
    // SAFETY: unmaps only the scratch mapping created above.
    unsafe { libc::munmap(p, len) };
    ok
}

#[cfg(not(target_os = "linux"))]
fn probe_guard_install() -> bool {
    false
}

/// `vm.max_map_count`, if readable.
fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether the process is at (or within a few mappings of) `vm.max_map_count`.
fn map_count_exhausted() -> bool {
    const SLACK: u64 = 8;
    let Some(max) = max_map_count() else {
        return false;
    };
    std::fs::read("/proc/self/maps")
        .is_ok_and(|maps| maps.iter().filter(|&&b| b == b'\n').count() as u64 + SLACK >= max)
}

/// `(value, unit)` for a byte count: MiB or KiB when exact, else bytes. Allocation-free, so the
/// overflow report (a signal handler) shares it.
pub(crate) fn human_size(bytes: usize) -> (usize, &'static str) {
    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    if bytes >= MIB && bytes % MIB == 0 {
        (bytes / MIB, "MiB")
    } else if bytes >= KIB && bytes % KIB == 0 {
        (bytes / KIB, "KiB")
    } else {
        (bytes, "bytes")
    }
}

/// Displays a byte count with [`human_size`].
struct Bytes(usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, unit) = human_size(self.0);
        write!(f, "{n} {unit}")
    }
}

/// Why a goroutine stack could not be allocated. Its message names the limit that was hit and
/// how to raise it.
#[derive(Debug, Clone)]
pub struct StackError {
    kind: ErrorKind,
    stack_size: usize,
    live: usize,
    errno: Option<i32>,
    /// `vm.max_map_count` when the error happened (Linux).
    max_map_count: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    /// `mmap` of a new slab failed.
    Slab { slab_size: usize },
    /// The process reached `vm.max_map_count`.
    MapCount,
    /// Installing a guard failed for another reason.
    Guard,
    /// The stack size does not fit the address space.
    TooLarge,
    /// More than `MAX_CLASSES` distinct stack sizes.
    TooManySizes,
}

impl StackError {
    fn new(kind: ErrorKind, stack_size: usize, errno: Option<i32>) -> Self {
        let max_map_count = if kind == ErrorKind::MapCount {
            max_map_count()
        } else {
            None
        };
        StackError {
            kind,
            stack_size,
            live: live_stacks(),
            errno,
            max_map_count,
        }
    }

    /// The OS error code (`errno`) of the failed call, if a system call failed.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.errno
    }

    fn os_error(&self) -> impl fmt::Display {
        match self.errno {
            Some(e) => io::Error::from_raw_os_error(e).to_string(),
            None => "unknown error".to_owned(),
        }
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = Bytes(self.stack_size);
        let live = self.live;
        write!(
            f,
            "cannot allocate a {size} goroutine stack ({live} stacks live): "
        )?;
        match self.kind {
            ErrorKind::Slab { slab_size } => write!(
                f,
                "mapping a new {} slab of stacks failed: {}; use smaller stacks \
                 (gort::Builder::stack_size or the GORT_STACK_SIZE environment variable), \
                 fewer goroutines, or raise the address-space limit (ulimit -v)",
                Bytes(slab_size),
                self.os_error()
            ),
            ErrorKind::MapCount => {
                let max = self
                    .max_map_count
                    .map_or("unknown".to_owned(), |n| n.to_string());
                write!(
                    f,
                    "the process reached the kernel's limit on memory mappings \
                     (vm.max_map_count = {max}); without MADV_GUARD_INSTALL every stack's guard \
                     page costs two mappings. Raise the limit (e.g. \
                     `sysctl -w vm.max_map_count=2200000` allows about a million goroutines) or \
                     run Linux >= 6.13, whose MADV_GUARD_INSTALL guards need no extra mappings"
                )
            }
            ErrorKind::Guard => {
                write!(f, "installing its guard page failed: {}", self.os_error())
            }
            ErrorKind::TooLarge => write!(
                f,
                "the size does not fit the address space; lower gort::Builder::stack_size or \
                 the GORT_STACK_SIZE environment variable"
            ),
            ErrorKind::TooManySizes => write!(
                f,
                "more than {MAX_CLASSES} distinct stack sizes are in use; use fewer distinct sizes"
            ),
        }
    }
}

impl std::error::Error for StackError {}

/// `Command::output` bounded in time, for the tests' children (the workspace's test
/// harness's, which this crate's own tests cannot depend on).
#[cfg(test)]
#[path = "../../testkit/src/child.rs"]
mod test_child;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::{Command, Output};

    /// Env var: this process is a child rerun of one test (see [`run_child`]).
    const CHILD: &str = "GORT_TEST_CHILD";

    fn assert_send<T: Send>() {}

    fn touch_all(stack: &Stack) {
        for addr in (stack.usable_lo()..stack.top).step_by(page_size()) {
            // SAFETY: `addr` is in the usable area of a stack this test owns and runs nothing on.
            unsafe { ptr::write_volatile(addr as *mut u8, 0xa5) };
        }
    }

    /// Whether this process is a child started by [`run_child`].
    pub(crate) fn is_child() -> bool {
        std::env::var_os(CHILD).is_some()
    }

    /// Reruns test `name` of module `module` (its `module_path!()`) in a child process of this
    /// test binary, with `env` set and [`is_child`] true; returns the child's output.
    pub(crate) fn run_child(module: &str, name: &str, env: &[(&str, &str)]) -> Output {
        // libtest names tests by their path without the crate name.
        let module = module.split_once("::").map_or("", |(_, rest)| rest);
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new(exe);
        let path = format!("{module}::{name}");
        cmd.args(["--exact", &path, "--nocapture", "--test-threads=1"]);
        cmd.env(CHILD, "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        super::test_child::output_within(&mut cmd, std::time::Duration::from_secs(60))
    }

    #[test]
    fn round_size() {
        let page = page_size();
        assert_eq!(round_stack_size(0), MIN_STACK_SIZE);
        assert_eq!(round_stack_size(MIN_STACK_SIZE + 1), MIN_STACK_SIZE + page);
        assert_eq!(round_stack_size(256 << 10), 256 << 10);
        assert_eq!(round_stack_size(usize::MAX) % page, 0);
        assert!(alloc_stack(round_stack_size(usize::MAX)).is_err());
    }

    #[test]
    fn alloc_free_round_trip() {
        use corosensei::stack::Stack as _;
        assert_send::<Stack>();
        // A size no other test uses, so the free list is this test's alone.
        let size = round_stack_size(80 << 10);
        let stack = alloc_stack(size).unwrap();
        assert!(live_stacks() >= 1);
        let page = page_size();
        let (glo, ghi) = stack.guard_range();
        assert_eq!(stack.usable_size(), size);
        assert_eq!(ghi - glo, GUARD_PAGES * page);
        assert_eq!(stack.limit().get(), glo);
        assert_eq!(stack.base().get() - ghi, size);
        assert_eq!(stack.base().get() % page, 0);
        touch_all(&stack);
        free_stack(stack);
        let again = alloc_stack(size).unwrap();
        assert_eq!(
            again.guard_range(),
            (glo, ghi),
            "the freed slot is reused first"
        );
        let other = alloc_stack(size).unwrap();
        assert_ne!(other.guard_range(), again.guard_range());
    }

    /// Threads allocating and freeing the same class concurrently never share a slot.
    #[test]
    fn concurrent_alloc_free_is_exclusive() {
        const THREADS: usize = 4;
        const ROUNDS: usize = 200;
        const BATCH: usize = 64;
        let size = round_stack_size(24 << 10);
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                std::thread::spawn(move || {
                    for round in 0..ROUNDS {
                        let stamp = (t * ROUNDS + round) as u64;
                        let stacks: Vec<Stack> =
                            (0..BATCH).map(|_| alloc_stack(size).unwrap()).collect();
                        let tops: Vec<*mut u64> =
                            stacks.iter().map(|s| (s.top - 8) as *mut u64).collect();
                        // SAFETY: each pointer is the top word of a stack this thread owns.
                        tops.iter()
                            .for_each(|&p| unsafe { p.write_volatile(stamp) });
                        std::thread::yield_now();
                        // SAFETY: as above.
                        assert!(tops.iter().all(|&p| unsafe { p.read_volatile() } == stamp));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    }

    /// Forks; the child writes the first byte of `addr`'s page and exits 0 if it survives.
    /// Returns the child's wait status.
    fn write_in_child(addr: usize) -> libc::c_int {
        // SAFETY: the child only performs async-signal-safe operations (a store and `_exit`), as
        // required after fork in a multi-threaded process.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: deliberately faulting store to the guard page: if the guard is present the
            // kernel kills the child with SIGSEGV before memory is touched; if not, the page is
            // this child's copy-on-write copy of the slot, which nothing else uses.
            unsafe { ptr::write_volatile(addr as *mut u8, 1) };
            // SAFETY: `_exit` is async-signal-safe and skips the parent's atexit handlers.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(rc, pid, "waitpid: {}", io::Error::last_os_error());
        status
    }

    fn assert_killed_by_fault(status: libc::c_int) {
        assert!(
            libc::WIFSIGNALED(status),
            "child survived the guard write: {status:#x}"
        );
        let sig = libc::WTERMSIG(status);
        assert!(
            sig == libc::SIGSEGV || sig == libc::SIGBUS,
            "child killed by signal {sig}"
        );
    }

    #[test]
    fn guard_survives_release_memory() {
        let stack = alloc_stack(round_stack_size(32 << 10)).unwrap();
        let (glo, ghi) = stack.guard_range();
        touch_all(&stack);
        assert_killed_by_fault(write_in_child(glo));
        stack.release_memory();
        assert_killed_by_fault(write_in_child(glo));
        assert_killed_by_fault(write_in_child(ghi - 1));
        // The usable area just above stays writable.
        let status = write_in_child(ghi);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        // And a recycled stack still has its guard.
        free_stack(stack);
        let again = alloc_stack(round_stack_size(32 << 10)).unwrap();
        assert_killed_by_fault(write_in_child(again.guard_range().0));
    }

    #[test]
    fn error_messages_name_the_fix() {
        let e = StackError {
            kind: ErrorKind::MapCount,
            stack_size: 64 << 10,
            live: 32_000,
            errno: Some(libc::ENOMEM),
            max_map_count: Some(65530),
        };
        let msg = e.to_string();
        for want in [
            "64 KiB",
            "32000 stacks live",
            "vm.max_map_count = 65530",
            "sysctl",
            "6.13",
        ] {
            assert!(msg.contains(want), "{want:?} missing from {msg:?}");
        }
        let e = StackError {
            kind: ErrorKind::Slab {
                slab_size: 64 << 20,
            },
            max_map_count: None,
            ..e
        };
        let msg = e.to_string();
        for want in [
            "64 KiB",
            "32000 stacks live",
            "GORT_STACK_SIZE",
            "64 MiB slab",
        ] {
            assert!(msg.contains(want), "{want:?} missing from {msg:?}");
        }
    }

    /// Tests that read /proc or depend on Linux-only behaviour.
    #[cfg(target_os = "linux")]
    mod linux {
        use super::super::*;
        use super::{assert_killed_by_fault, is_child, run_child, touch_all, write_in_child};
        use std::collections::HashSet;

        const MANY_STACKS: usize = 200_000;
        const MANY_STACK_SIZE: usize = 64 << 10;
        const MAX_MAPS_FOR_MANY: usize = 1000;

        /// Lines in /proc/self/maps: the process's mapping count.
        fn maps_count() -> usize {
            std::fs::read_to_string("/proc/self/maps")
                .unwrap()
                .lines()
                .count()
        }

        /// Resident pages in `[lo, hi)` (page-aligned), by mincore: exact and unaffected by
        /// other tests running in the same process.
        fn resident_pages(lo: usize, hi: usize) -> usize {
            let page = page_size();
            let mut vec = vec![0u8; (hi - lo) / page];
            // SAFETY: `[lo, hi)` is mapped (part of a live stack's usable area) and `vec` has
            // one byte per page of it, as mincore requires.
            let rc = unsafe { libc::mincore(lo as *mut c_void, hi - lo, vec.as_mut_ptr()) };
            assert_eq!(rc, 0, "mincore: {}", io::Error::last_os_error());
            vec.iter().filter(|&&b| b & 1 != 0).count()
        }

        /// Resident set size of the process in KiB (/proc/self/statm).
        fn rss_kib() -> usize {
            let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
            let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
            pages * page_size() / 1024
        }

        #[test]
        fn many_stacks_few_mappings() {
            let before = maps_count();
            let stacks: Vec<Stack> = (0..MANY_STACKS)
                .map(|_| alloc_stack(MANY_STACK_SIZE).unwrap())
                .collect();
            let after = maps_count();
            let distinct: HashSet<usize> = stacks.iter().map(|s| s.guard_range().0).collect();
            assert_eq!(distinct.len(), MANY_STACKS);
            eprintln!(
                "{MANY_STACKS} stacks of {}: /proc/self/maps {before} -> {after} lines \
                 (MADV_GUARD_INSTALL: {})",
                Bytes(MANY_STACK_SIZE),
                guard_install_supported()
            );
            if guard_install_supported() {
                assert!(
                    after < MAX_MAPS_FOR_MANY,
                    "{after} mappings for {MANY_STACKS} stacks"
                );
            } else {
                eprintln!("MADV_GUARD_INSTALL unavailable: mapping-count assertion skipped");
            }
        }

        /// The requirement behind the design: a million live stacks on a stock kernel. Ignored
        /// by default (it keeps ~68 GiB of address space reserved for the rest of the process).
        #[test]
        #[ignore = "reserves ~68 GiB of address space for the rest of the test process"]
        fn million_stacks() {
            let start = std::time::Instant::now();
            let stacks: Vec<Stack> = (0..1_000_000)
                .map(|_| alloc_stack(MANY_STACK_SIZE).unwrap())
                .collect();
            let allocated = start.elapsed();
            let maps = maps_count();
            drop(stacks);
            eprintln!(
                "1000000 stacks of {}: allocated in {allocated:?}, freed in {:?}; {maps} \
                 mappings, RSS {} KiB",
                Bytes(MANY_STACK_SIZE),
                start.elapsed() - allocated,
                rss_kib()
            );
            if guard_install_supported() {
                assert!(maps < MAX_MAPS_FOR_MANY, "{maps} mappings");
            }
        }

        #[test]
        fn release_memory_drops_rss() {
            let size = round_stack_size(8 << 20);
            let stack = alloc_stack(size).unwrap();
            let pages = size / page_size();
            let rss0 = rss_kib();
            touch_all(&stack);
            let rss1 = rss_kib();
            assert_eq!(resident_pages(stack.usable_lo(), stack.top), pages);
            stack.release_memory();
            let rss2 = rss_kib();
            let left = resident_pages(stack.usable_lo(), stack.top);
            eprintln!(
                "{}: resident pages {pages} -> {left}; process RSS {rss0} KiB, touched {rss1} \
                 KiB, released {rss2} KiB",
                Bytes(size)
            );
            assert_eq!(left, 0, "{left} pages resident after release_memory");
        }

        /// `SizeClass::take_idle_chunk` until the class's idle stacks are all in `out`.
        fn take_all_idle(class: &SizeClass, out: &mut Batch) {
            while !class.take_idle_chunk(out) {}
        }

        /// The scavenger's path: stacks freed together sit idle for a whole period (between two
        /// `take_idle` calls no allocation reaches them) and are taken, except those an
        /// allocation used meanwhile; adjacent slots go back to the kernel in one run; guards,
        /// including those inside the run, survive. Runs again in a child process with the
        /// mprotect fallback forced (`release_run_keeps_guards_mprotect`).
        #[test]
        fn idle_stacks_released_in_runs_keep_guards() {
            const N: usize = 8;
            // A size no other test uses: this class's lists are this test's alone.
            let size = round_stack_size(40 << 10);
            let class = SizeClass::get(size).unwrap();
            let stacks: Vec<Stack> = (0..N).map(|_| alloc_stack(size).unwrap()).collect();
            stacks.iter().for_each(touch_all);
            let usable: Vec<(usize, usize)> =
                stacks.iter().map(|s| (s.usable_lo(), s.top)).collect();
            let guards: Vec<usize> = stacks.iter().map(|s| s.guard_range().0).collect();
            drop(stacks);
            let mut idle = Batch::new();
            // The first call only starts a period; then 3 of the N are used and freed again.
            take_all_idle(class, &mut idle);
            assert!(idle.is_empty(), "nothing has been idle for a period yet");
            let used: Vec<Stack> = (0..3).map(|_| alloc_stack(size).unwrap()).collect();
            drop(used);
            take_all_idle(class, &mut idle);
            assert_eq!(idle.len(), N - 3, "the 3 used in the period stay pooled");
            take_all_idle(class, &mut idle);
            assert_eq!(idle.len(), N, "idle for the next period: taken too");
            sort_for_release(idle.as_mut_slice());
            let mut runs = 0;
            while !idle.is_empty() {
                release_run(&mut idle);
                runs += 1;
            }
            assert_eq!(runs, 1, "{N} adjacent slots in one madvise");
            for &(lo, hi) in &usable {
                assert_eq!(resident_pages(lo, hi), 0, "released stack still resident");
            }
            for &g in &guards {
                assert_killed_by_fault(write_in_child(g));
            }
            // Released stacks are handed out again, zeroed, with their guard.
            let again = alloc_stack(size).unwrap();
            assert!(guards.contains(&again.guard_range().0));
            assert_killed_by_fault(write_in_child(again.guard_range().0));
        }

        /// Slabs whose every slot is released are unmapped, all but `IDLE_SLABS_KEPT`; the
        /// class goes on handing out stacks afterwards.
        #[test]
        fn idle_slabs_are_unmapped() {
            // A size no other test uses; 16 slots a slab (`MIN_SLAB_SLOTS`).
            let size = round_stack_size(6 << 20);
            let class = SizeClass::get(size).unwrap();
            let per_slab = class.slab_size / class.slot_size;
            let n = 2 * per_slab + 1;
            let stacks: Vec<Stack> = (0..n).map(|_| alloc_stack(size).unwrap()).collect();
            for s in &stacks {
                // SAFETY: the top word of a stack this test owns and runs nothing on.
                unsafe { ((s.top - 8) as *mut u64).write_volatile(7) };
            }
            let slabs: Vec<usize> = class.lock().slabs.iter().map(|s| s.lo).collect();
            assert_eq!(slabs.len(), 3);
            assert_eq!(class.unmap_idle_slabs(), 0, "every slab has a live stack");
            drop(stacks);
            let mut idle = Batch::new();
            take_all_idle(class, &mut idle);
            take_all_idle(class, &mut idle);
            assert_eq!(idle.len(), n);
            assert_eq!(class.unmap_idle_slabs(), 0, "the scavenger holds them");
            sort_for_release(idle.as_mut_slice());
            while !idle.is_empty() {
                release_run(&mut idle);
            }
            assert_eq!(class.unmap_idle_slabs(), 3 - IDLE_SLABS_KEPT);
            let kept: Vec<usize> = class.lock().slabs.iter().map(|s| s.lo).collect();
            assert_eq!(kept.len(), IDLE_SLABS_KEPT);
            for lo in slabs.into_iter().filter(|lo| !kept.contains(lo)) {
                let mut vec = [0u8; 1];
                // SAFETY: mincore only reads the page tables; `vec` has room for one page.
                let rc = unsafe { libc::mincore(lo as *mut c_void, page_size(), vec.as_mut_ptr()) };
                assert_eq!(rc, -1, "slab at {lo:#x} still mapped");
            }
            let again: Vec<Stack> = (0..n).map(|_| alloc_stack(size).unwrap()).collect();
            let distinct: HashSet<usize> = again.iter().map(|s| s.top).collect();
            assert_eq!(distinct.len(), n);
            for s in &again {
                // SAFETY: as above; a stack from a kept or a new slab reads zero, then holds
                // what is written.
                unsafe {
                    let top = (s.top - 8) as *mut u64;
                    assert_eq!(top.read_volatile(), 0);
                    top.write_volatile(9);
                }
            }
        }

        #[test]
        fn release_run_keeps_guards_mprotect() {
            let name = "idle_stacks_released_in_runs_keep_guards";
            let out = run_child(module_path!(), name, &[(FORCE_MPROTECT, "1")]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "child failed: {stderr}");
        }

        /// With the mprotect fallback forced (in a child process), allocating stacks until the
        /// mapping limit gives a `MapCount` error naming the limit, not a panic.
        #[test]
        fn mprotect_fallback_reports_map_count() {
            if is_child() {
                assert!(!guard_install_supported());
                // The runtime's lists and cells live in mimalloc, which maps its arena at first
                // use. A program has used it by the time stacks run out (every spawn allocates
                // a cell); this test allocates stacks directly, so it uses it first, or the
                // stack lists could not grow once the mappings are gone.
                let mut warm = crate::ChunkedDeque::new();
                warm.push_back(0u64);
                let mut stacks = Vec::new();
                let err = loop {
                    match alloc_stack(MIN_STACK_SIZE) {
                        Ok(s) => stacks.push(s),
                        Err(e) => break e,
                    }
                };
                eprintln!("after {} stacks: {err}", stacks.len());
                assert_eq!(err.kind, ErrorKind::MapCount);
                return;
            }
            let name = "mprotect_fallback_reports_map_count";
            let out = run_child(module_path!(), name, &[(FORCE_MPROTECT, "1")]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            eprintln!("child: {stderr}");
            assert!(out.status.success(), "child failed: {stderr}");
            let want = format!("vm.max_map_count = {}", max_map_count().unwrap());
            assert!(stderr.contains(&want), "{want:?} missing from {stderr:?}");
            assert!(stderr.contains("stacks live"));
        }
    }
}
