//! Compaction of parked stacks: how a goroutine parked for a while gives its stack pages back
//! and gets them back, byte for byte at the same addresses, before it runs again. Only in the
//! `unsafe` opt-in (`config::enable_stack_compaction`, whose `# Safety` is the contract;
//! `docs/SOUNDNESS.md`, "Parked stacks stay resident", says why it is not the default).
//!
//! A parked goroutine's live stack is `[sp, top)`: usually a few hundred bytes at the top of
//! its slot's topmost page, which the goroutine keeps resident for as long as it is parked. As
//! it parks, the goroutine records where its stack ends, with a margin for the frames of the
//! switch below it ([`note_park`]). The compactor thread (`gort-compact`, started with the
//! runtime in this mode) walks every M's registry of goroutines that have switched out
//! (`debug/registry.rs`) once a [`PERIOD`]. A goroutine parked for at least a period, in a
//! wait whose state lives off its stack ([`stack_private`]: not a call in the blocking pool,
//! which may lend its locals), and inside no [`StackLent`], is
//! *claimed*; its bytes are copied to the heap, and its whole usable stack is released with
//! `MADV_DONTNEED` (adjacent slots of one batch in one call). The M that resumes it copies
//! the bytes back first ([`ensure_resident`]).
//!
//! One word per goroutine says where its stack is (`Parked::stash`):
//!
//! ```text
//!   parked at low: RESIDENT(low) ── claim: CAS, then it is still PARKED ──► BUSY
//!          ▲   ▲                                                            │ saved, released
//!          │   └─ note_park (a CAS; waits while BUSY) ◄── runs ◄─┐          ▼
//!          │                                                     │    COMPACTED(p)
//!          └────── copied back by its resumer (CAS to BUSY) ─────┘─────────┘
//! ```
//!
//! RESIDENT(low) is `low | LOW` (`low` is 16-aligned); a goroutine that never parked holds 0;
//! COMPACTED(p) is the address of the saved bytes, whose allocation starts with `low`. A claim
//! that finds the goroutine not PARKED puts back what it found, and the compactor may also hold
//! a COMPACTED goroutine claimed for a moment (its place in a list, below).
//!
//! Invariants:
//! - Nobody but the goroutine itself touches its stack memory while the word is RESIDENT, and
//!   only the thread whose CAS set BUSY touches it while BUSY. A goroutine runs only after its
//!   M saw the word RESIDENT.
//! - The compactor claims a goroutine only if it sees it PARKED after its claim. The resumer
//!   reads the word after the unpark that ended the park. A SeqCst fence on each side (after
//!   the claim; before the read) orders the two: either the compactor sees the unpark and puts
//!   the word back, or the resumer sees BUSY and waits for it to clear. (The loom model below
//!   checks this.)
//! - A parking goroutine records `low` with a CAS that waits out a claim: a claim made while it
//!   runs ends as soon as the claimer sees it is not PARKED, and the new `low` is never
//!   overwritten by an old one.
//! - A claimed goroutine cannot run, hence cannot end, hence stays listed: between batches the
//!   compactor keeps its place in a list by keeping the last goroutine it visited claimed.
//! - One compactor at a time (`PASS`).

use std::alloc::Layout;
use std::time::Duration;

use crate::debug::WaitReason;
use crate::goroutine::Header;
use crate::loom::std_only::{AtomicU64, AtomicUsize as StdAtomicUsize, Mutex};
use crate::loom::{fence, AtomicUsize, Ordering};

/// How long a goroutine stays parked before it is compacted, and how often the compactor
/// looks: the scavenger's period (`scavenger.rs`).
pub(crate) const PERIOD: Duration = Duration::from_millis(500);

/// Bytes kept below the address a parking goroutine records (in `note_park`'s frame): the
/// frames of `switch_out`, of corosensei's `suspend` and the registers its switch pushes. On
/// x86-64 the stack pointer of a parked goroutine ends 184 bytes below that address in a debug
/// build and 24 above it in a release build; `runtime/tests/stack_compaction.rs`, run in both
/// (`.ci/run`), fails if a margin is too small.
const MARGIN: usize = if cfg!(debug_assertions) { 512 } else { 128 };

/// Goroutines saved and released together: one `madvise` for each run of adjacent slots.
const BATCH: usize = 256;

/// Headers visited under a list's lock before the compactor lets the list go for a while.
const VISITS: usize = 4096;

/// The stash word of a goroutine that never parked: resident.
const NEVER_PARKED: usize = 0;
/// The stash word: a claimer copies the stack (out or back); wait.
const BUSY: usize = 1;
/// The tag of a resident stack's word, `low | LOW`.
const LOW: usize = 2;
/// Bytes before the saved stack bytes in their allocation: `low`, then padding to 16.
const SAVED_HEADER: usize = 16;

/// True if the word says the stack is resident.
fn resident(word: usize) -> bool {
    word == NEVER_PARKED || word & LOW != 0
}

/// Goroutines compacted now, compactions and restores ever, and bytes saved now.
static COMPACTED_NOW: StdAtomicUsize = StdAtomicUsize::new(0);
static COMPACTIONS: AtomicU64 = AtomicU64::new(0);
static RESTORES: AtomicU64 = AtomicU64::new(0);
static SAVED_BYTES: StdAtomicUsize = StdAtomicUsize::new(0);
/// 1 once the compactor thread runs (the deadlock check counts it as a known thread).
static STARTED: StdAtomicUsize = StdAtomicUsize::new(0);
/// Held by the one compaction pass that runs.
static PASS: Mutex<()> = Mutex::new(());

/// A goroutine's stack as it parked (in its `Header`): one word, `stash` (module docs).
pub(crate) struct Parked {
    stash: AtomicUsize,
}

impl Parked {
    pub(crate) fn new() -> Parked {
        Parked {
            stash: AtomicUsize::new(NEVER_PARKED),
        }
    }

    /// The parking goroutine's side: records `low` (16-aligned), waiting out a claim made
    /// while it ran.
    fn record(&self, low: usize) {
        let mut now = self.stash.load(Ordering::Relaxed);
        loop {
            if now == BUSY {
                spin_or_yield();
                now = self.stash.load(Ordering::Relaxed);
                continue;
            }
            match self.stash.compare_exchange_weak(
                now,
                low | LOW,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => now = actual,
            }
        }
    }

    /// Compactor side: CAS the word from what it holds to BUSY, then check `parked()` after a
    /// SeqCst fence. Returns what the word held (to put back, or to compact) if the goroutine
    /// is claimed; `None` if someone else holds it or it is not parked.
    fn claim(&self, parked: impl Fn() -> bool) -> Option<usize> {
        let was = self.stash.load(Ordering::Relaxed);
        if was == BUSY
            || self
                .stash
                .compare_exchange(was, BUSY, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        fence(Ordering::SeqCst);
        if parked() {
            Some(was)
        } else {
            self.stash.store(was, Ordering::Release);
            None
        }
    }

    /// Ends a claim (the compactor's or the resumer's), leaving the word at `to`.
    fn publish(&self, to: usize) {
        self.stash.store(to, Ordering::Release);
    }

    /// Resumer side: waits until no compactor holds the word and takes the saved bytes, if
    /// any (leaving the word BUSY until [`publish`](Parked::publish)). `None` if the stack is
    /// resident. The resumer must hold the goroutine's run right, after its unpark.
    fn take_for_run(&self) -> Option<usize> {
        fence(Ordering::SeqCst);
        let mut was = self.stash.load(Ordering::SeqCst);
        loop {
            if resident(was) {
                return None;
            }
            if was == BUSY {
                spin_or_yield();
                was = self.stash.load(Ordering::Acquire);
                continue;
            }
            match self
                .stash
                .compare_exchange(was, BUSY, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Some(was),
                Err(now) => was = now,
            }
        }
    }
}

/// Waits a little for a claim to end (a compactor copying a batch: microseconds).
fn spin_or_yield() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// Records where the calling goroutine's stack ends, as it parks: the address of a local of
/// this frame (a callee of `park_current_goroutine`, as `switch_out` is next) less [`MARGIN`],
/// rounded down to 16. Out of line, so that the default mode's park path stays as it was.
#[cold]
#[inline(never)]
pub(crate) fn note_park(h: &Header) {
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    h.parked.record(sp.saturating_sub(MARGIN) & !15);
}

/// False if `h` was certainly never compacted: its word is 0, as every goroutine's is in the
/// default mode and as a goroutine's is until its first park in compaction mode (it records
/// its mark before it can be claimed). A relaxed load of the header's hot line: the resume
/// path's only cost in the default mode. Nonzero sends the resumer to [`ensure_resident`],
/// which fences before it reads the word again. (A claim may turn a 0 into BUSY for a moment,
/// but only to find the goroutine not PARKED and put the 0 back without touching its stack.)
#[inline(always)]
pub(crate) fn may_be_compacted(h: &Header) -> bool {
    h.parked.stash.load(Ordering::Relaxed) != NEVER_PARKED
}

/// Before `h` runs again: copies its saved bytes back, if it was compacted (waiting for a
/// compactor that holds it). Called by the M that holds its run right, before resuming it.
/// Out of line, so that the default mode's resume path stays as it was.
#[cold]
#[inline(never)]
pub(crate) fn ensure_resident(h: &Header) {
    if let Some(saved) = h.parked.take_for_run() {
        restore(h, saved);
    }
}

#[cold]
fn restore(h: &Header, saved: usize) {
    // SAFETY: `saved` came from `save`: an allocation that starts with `low`.
    let low = unsafe { *(saved as *const usize) };
    let (_, top) = h.stack_bounds();
    let len = top - low;
    // The allocation holds `SAVED_HEADER + len` bytes (`save`; `low` and `top` have not changed:
    // the goroutine has not run), and our CAS made us its only owner. Released pages fault in.
    // SAFETY: `[low, top)` is this goroutine's stack, touched by no one else while BUSY.
    unsafe {
        let bytes = (saved as *const u8).add(SAVED_HEADER);
        std::ptr::copy_nonoverlapping(bytes, low as *mut u8, len);
        std::alloc::dealloc(saved as *mut u8, layout(len));
    }
    h.parked.publish(low | LOW);
    COMPACTED_NOW.fetch_sub(1, Ordering::Relaxed);
    SAVED_BYTES.fetch_sub(len, Ordering::Relaxed);
    RESTORES.fetch_add(1, Ordering::Relaxed);
}

/// The allocation of `len` saved bytes: `SAVED_HEADER`, then the bytes.
fn layout(len: usize) -> Layout {
    Layout::from_size_align(SAVED_HEADER + len, 16).expect("a stack's size fits a layout")
}

/// True for the waits whose state lives off the waiting goroutine's stack, so that no other
/// thread reads or writes that stack while it waits: timers, joins, the netpoller's
/// descriptors (all on the heap), channel operations, `select!` and the sync primitives'
/// waits (whose waiters and slots `chan` boxes in this mode), and a bare `park` (whose caller
/// the `unsafe` contract covers). Not a blocking-pool call: it may lend the goroutine's locals
/// to a pool thread. (A list of those that are, not of those that are not: a new kind of wait
/// is not compacted until someone checks where its state lives.)
fn stack_private(reason: WaitReason) -> bool {
    matches!(
        reason,
        WaitReason::Park
            | WaitReason::Timer
            | WaitReason::Sleep
            | WaitReason::Join
            | WaitReason::IoRead
            | WaitReason::IoWrite
            | WaitReason::ChanReceive
            | WaitReason::ChanSend
            | WaitReason::Select
            | WaitReason::SelectNoCases
            | WaitReason::Mutex
            | WaitReason::RwMutexRead
            | WaitReason::WaitGroup
            | WaitReason::Cond
            | WaitReason::Semaphore
    )
}

/// A goroutine this pass holds claimed, and what its word becomes when the claim ends.
struct Claim {
    h: *const Header,
    publish: usize,
    /// To be compacted: parked long enough in a stack-private wait, lent to no one, resident.
    compact: bool,
    /// Its bytes are saved (at `publish`) and its stack is to be released.
    saved: bool,
}

impl Claim {
    fn header(&self) -> &Header {
        // SAFETY: a claimed goroutine cannot run, so cannot end: its header is alive until the
        // claim is published (module invariants).
        unsafe { &*self.h }
    }

    fn end(self) {
        self.header().parked.publish(self.publish);
    }
}

/// Claims `h` if it is parked, and says whether to compact it.
fn claim(h: &Header, older_than: Duration) -> Option<Claim> {
    let was = h.parked.claim(|| h.park.is_parked_seqcst())?;
    // After the claim saw it PARKED (acquire): the wait word of this park.
    let (reason, _, parked_for) = crate::debug::wait::unpack(h.wait.load(Ordering::Relaxed));
    let compact = was & LOW != 0
        && parked_for >= older_than
        && reason.is_some_and(stack_private)
        && h.lent.load(Ordering::Relaxed) == 0;
    Some(Claim {
        h,
        publish: was,
        compact,
        saved: false,
    })
}

/// Copies the claimed goroutine's live bytes to the heap. False if memory ran out (it then
/// stays resident).
fn save(c: &mut Claim) -> bool {
    let (usable_lo, top) = c.header().stack_bounds();
    let low = (c.publish & !LOW).max(usable_lo);
    if low >= top {
        return false;
    }
    let len = top - low;
    // SAFETY: `layout` has a non-zero size.
    let to = unsafe { std::alloc::alloc(layout(len)) };
    if to.is_null() {
        return false;
    }
    // SAFETY: `to` is a fresh allocation of `SAVED_HEADER + len` bytes, 16-aligned; `[low,
    // top)` is the claimed goroutine's stack (its slot's usable area, from `low` up): mapped,
    // and touched by no one else while we hold the claim.
    unsafe {
        (to as *mut usize).write(low);
        std::ptr::copy_nonoverlapping(low as *const u8, to.add(SAVED_HEADER), len);
    }
    c.publish = to as usize;
    c.saved = true;
    COMPACTED_NOW.fetch_add(1, Ordering::Relaxed);
    SAVED_BYTES.fetch_add(len, Ordering::Relaxed);
    COMPACTIONS.fetch_add(1, Ordering::Relaxed);
    true
}

/// Releases the usable stacks of the saved claims, one `madvise` per run of adjacent slots.
fn release(batch: &mut [Claim]) {
    let mut spans: Vec<(usize, usize)> = batch
        .iter()
        .filter(|c| c.saved)
        .map(|c| c.header().stack_bounds())
        .collect();
    spans.sort_unstable();
    let guard = crate::stack::guard_bytes();
    let mut i = 0;
    while i < spans.len() {
        let (lo, mut hi) = spans[i];
        i += 1;
        while i < spans.len() && spans[i].0 == hi + guard {
            hi = spans[i].1;
            i += 1;
        }
        // SAFETY: `[lo, hi)` is the usable areas of claimed goroutines' stacks whose live
        // bytes are saved, and the guards between them: nothing there is read before it is
        // copied back by the goroutine's resumer, who waits for our claim to end.
        unsafe { crate::stack::release_range(lo, hi) };
    }
}

/// Releases the stacks `batch` saved, and ends every claim but the `keep` last (the list's
/// place, kept for the next visit). Returns how many it saved.
fn compact_batch(batch: &mut Vec<Claim>, keep: usize) -> usize {
    let saved = batch.iter_mut().filter(|c| c.saved).count();
    release(batch);
    let kept = batch.len().saturating_sub(keep);
    for c in batch.drain(..kept) {
        c.end();
    }
    saved
}

/// One pass over every list: compacts the goroutines parked for at least `older_than`.
/// Returns how many it compacted.
pub(crate) fn pass(older_than: Duration) -> usize {
    let _one = crate::loom::lock_std(&PASS);
    crate::debug::registry::all_lists()
        .map(|list| pass_list(list, older_than))
        .sum()
}

fn pass_list(list: &crate::debug::registry::Registry, older_than: Duration) -> usize {
    let mut compacted = 0;
    // The claim that keeps our place in the list (the last header visited), if we paused.
    let mut place: Option<Claim> = None;
    loop {
        let mut batch: Vec<Claim> = Vec::with_capacity(BATCH);
        let mut visited = 0;
        let after = place.as_ref().map(|c| c.h);
        // SAFETY: `after` is the header we kept claimed since the last visit returned it, so
        // it has not run, ended or left the list.
        let paused = unsafe {
            list.visit_after(after, |h| {
                visited += 1;
                let Some(claim) = claim(h, older_than) else {
                    return true;
                };
                if claim.compact {
                    batch.push(claim);
                    batch.len() < BATCH
                } else if visited >= VISITS {
                    batch.push(claim); // only to hold our place
                    false
                } else {
                    claim.end();
                    true
                }
            })
        };
        if let Some(p) = place.take() {
            p.end();
        }
        for c in batch.iter_mut().filter(|c| c.compact) {
            save(c);
        }
        let keep = usize::from(paused.is_some());
        compacted += compact_batch(&mut batch, keep);
        match paused {
            Some(_) => place = batch.pop(),
            None => return compacted,
        }
    }
}

/// Starts the compactor thread, in compaction mode. Called once, when the runtime starts.
pub(crate) fn start() {
    if !crate::config::compaction() {
        return;
    }
    let started = std::thread::Builder::new()
        .name("gort-compact".into())
        .spawn(|| loop {
            std::thread::sleep(PERIOD);
            pass(PERIOD);
        });
    if started.is_ok() {
        STARTED.store(1, Ordering::Release);
    }
}

/// The runtime threads compaction adds: 1 if its thread runs.
pub(crate) fn threads() -> usize {
    STARTED.load(Ordering::Acquire)
}

/// Goroutines compacted now, compactions and restores so far, bytes saved now.
pub(crate) fn counts() -> (usize, u64, u64, usize) {
    (
        COMPACTED_NOW.load(Ordering::Relaxed),
        COMPACTIONS.load(Ordering::Relaxed),
        RESTORES.load(Ordering::Relaxed),
        SAVED_BYTES.load(Ordering::Relaxed),
    )
}

/// Keeps the calling goroutine's stack resident while it lives (see
/// [`enable_stack_compaction`](crate::enable_stack_compaction)): hold one across a park while
/// another thread may use the goroutine's locals. `gort::scope` holds one for its whole body.
/// Does nothing on a plain thread or when compaction is off. Not `Send`: it is dropped by the
/// goroutine that made it.
///
/// ```
/// let data = vec![1, 2, 3];
/// let sum = sched::spawn(move || {
///     let _lent = sched::lend_stack();
///     let total = std::sync::atomic::AtomicU32::new(0);
///     std::thread::scope(|s| {
///         s.spawn(|| total.fetch_add(data.iter().sum(), std::sync::atomic::Ordering::Relaxed));
///     });
///     total.into_inner()
/// });
/// assert_eq!(sum.join().unwrap(), 6);
/// ```
#[must_use = "the stack is lent only while the guard lives"]
pub struct StackLent {
    h: *const Header,
}

/// Lends the calling goroutine's stack for as long as the returned guard lives: it is not
/// compacted meanwhile ([`StackLent`]).
pub fn lend_stack() -> StackLent {
    let h = crate::machine::current_header();
    if !h.is_null() {
        // SAFETY: the running goroutine's header is alive while it runs.
        unsafe { &*h }.lent.fetch_add(1, Ordering::Relaxed);
    }
    StackLent { h }
}

impl Drop for StackLent {
    fn drop(&mut self) {
        if !self.h.is_null() {
            // SAFETY: the guard is not `Send` and is dropped on the goroutine that made it
            // (maybe after it migrated: still running, so alive).
            unsafe { &*self.h }.lent.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for StackLent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackLent").finish_non_exhaustive()
    }
}

/// True if parked stacks may be compacted ([`enable_stack_compaction`](crate::enable_stack_compaction)
/// was called before the runtime started). Blocking primitives whose waiters other threads
/// write into then keep those waiters off the stack (`chan` boxes those of its channel
/// operations, `select!` and sync primitives).
///
/// ```
/// assert!(!sched::stack_compaction()); // the default
/// ```
#[inline]
pub fn stack_compaction() -> bool {
    crate::config::compaction()
}

/// Runs one compaction pass now, on the calling thread, compacting the goroutines parked for
/// at least `older_than` (in compaction mode; otherwise nothing). Returns how many. For tests
/// and benchmarks that cannot wait for the compactor's period.
///
/// ```
/// assert_eq!(sched::compact_parked_stacks(std::time::Duration::ZERO), 0); // mode is off
/// ```
#[doc(hidden)]
pub fn compact_parked_stacks(older_than: Duration) -> usize {
    if stack_compaction() {
        pass(older_than)
    } else {
        0
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::park::ParkState;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    /// A compactor claims a parked goroutine while a waker unparks it and its M resumes it:
    /// the compactor's copy of the stack and the goroutine's run never overlap (loom's cell
    /// checks), and the resumer sees every compaction the compactor made.
    #[test]
    fn loom_claim_races_the_resume() {
        loom::model(|| {
            let parked = Arc::new(Parked::new());
            let park = Arc::new(ParkState::new());
            let stack = Arc::new(UnsafeCell::new(7u32));
            parked.record(0x40);
            assert!(park.commit_park());
            let compactor = {
                let (parked, park, stack) = (parked.clone(), park.clone(), stack.clone());
                loom::thread::spawn(move || {
                    if let Some(was) = parked.claim(|| park.is_parked_seqcst()) {
                        assert_eq!(was, 0x40 | LOW);
                        // "Save and release": the stack now reads 0; the bytes live at 0x100.
                        // SAFETY: loom checks that no access overlaps this one.
                        stack.with_mut(|s| unsafe { *s = 0 });
                        parked.publish(0x100);
                    }
                })
            };
            let resumer = {
                let (parked, park, stack) = (parked.clone(), park.clone(), stack.clone());
                loom::thread::spawn(move || {
                    if park.unpark() {
                        // We won: we hold the run right and resume it.
                        if let Some(saved) = parked.take_for_run() {
                            assert_eq!(saved, 0x100);
                            // SAFETY: loom checks that no access overlaps this one.
                            stack.with_mut(|s| unsafe { *s = 7 });
                            parked.publish(0x40 | LOW);
                        }
                        // SAFETY: loom checks that no access overlaps this one.
                        let now = stack.with(|s| unsafe { *s });
                        assert_eq!(now, 7, "ran on a released stack");
                        // It runs, and parks again: its new mark must not be lost.
                        parked.record(0x80);
                    }
                })
            };
            compactor.join().unwrap();
            resumer.join().unwrap();
            let end = parked.stash.load(Ordering::Relaxed);
            assert_eq!(end, 0x80 | LOW, "the mark of its next park was lost");
        });
    }
}
