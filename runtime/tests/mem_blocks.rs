//! No block of a burst's size (issue 15, memory returned): while a burst of 100,000 goroutines
//! parks, ends and is scavenged, the runtime's threads never ask the program's allocator for a
//! block of 128 KiB or more (glibc's initial mmap threshold). Freeing one that large raises
//! glibc's mmap and trim thresholds for the rest of the process, after which its thread arenas
//! keep megabytes resident that the runtime gave back (`sched/src/chunked.rs`); so the
//! runtime's lists are `ChunkedDeque`s and a P's run queue is bounded. Before that change the
//! burst made blocks of up to 2 MiB (the close's wake list, the stack lists, the registry).
//!
//! This binary's global allocator records the largest block asked for by a thread named
//! `gort-*` (the Ms, sysmon and the scavenger it runs) once the test arms it, after the
//! runtime's one-time start-up allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod common;

use common::rss_bytes;

/// The allocator: `System`, plus the record of the largest block a runtime thread asked for.
struct Recording;

/// Set once the runtime has started; blocks are recorded from then on.
static ARMED: AtomicBool = AtomicBool::new(false);
/// The largest block (bytes) a runtime thread asked for while armed.
static LARGEST: AtomicUsize = AtomicUsize::new(0);
/// Where the first block of `LIMIT` bytes or more was asked for (a backtrace), for the report.
static WHERE: Mutex<Option<String>> = Mutex::new(None);

/// The block size glibc maps on its own at first (its initial mmap threshold).
const LIMIT: usize = 128 << 10;

thread_local! {
    /// Whether this thread is a runtime thread: 0 not known yet, 1 yes, 2 no.
    static RUNTIME_THREAD: Cell<u8> = const { Cell::new(0) };
    /// Set while this thread works out its name or captures a backtrace (which allocate).
    static ASKING: Cell<bool> = const { Cell::new(false) };
}

fn note(size: usize) {
    // Not the allocations this recorder makes itself (a name, a backtrace).
    if !ARMED.load(Ordering::Relaxed) || size < 64 << 10 || ASKING.with(Cell::get) {
        return;
    }
    let runtime = RUNTIME_THREAD.with(|known| {
        if known.get() == 0 && !ASKING.with(|a| a.replace(true)) {
            let gort = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("gort-"));
            known.set(if gort { 1 } else { 2 });
            ASKING.with(|a| a.set(false));
        }
        known.get() == 1
    });
    if runtime {
        LARGEST.fetch_max(size, Ordering::Relaxed);
        if size >= LIMIT && !ASKING.with(|a| a.replace(true)) {
            let trace = std::backtrace::Backtrace::force_capture().to_string();
            WHERE
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(trace);
            ASKING.with(|a| a.set(false));
        }
    }
}

// SAFETY: every call is passed on to `System` unchanged; `note` only reads and writes atomics
// and thread-locals (its own allocations, for the thread's name or a backtrace, are skipped while
// `ASKING` is set).
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `System.dealloc`'s.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller's contract is `System.realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

/// Goroutines in the burst.
const BURST: usize = 100_000;
/// How long the scavenger may take to give the burst's memory back.
const RETURN_BOUND: Duration = Duration::from_secs(20);

#[test]
fn a_burst_makes_no_large_block() {
    common::each_procs("a_burst_makes_no_large_block", |procs| {
        gort::spawn(|| ()).join().unwrap();
        ARMED.store(true, Ordering::Relaxed);
        LARGEST.store(0, Ordering::Relaxed);
        let before = rss_bytes();
        let peak = gort::spawn(|| common::parked_burst(BURST, rss_bytes))
            .join()
            .unwrap();
        // Idle until the scavenger has given most of it back (its take, release and unmap
        // paths ran too).
        let start = Instant::now();
        while rss_bytes().saturating_sub(before) > peak.saturating_sub(before) / 4
            && start.elapsed() < RETURN_BOUND
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let largest = LARGEST.load(Ordering::Relaxed);
        let at = WHERE.lock().unwrap_or_else(|e| e.into_inner()).take();
        assert!(
            largest < LIMIT,
            "at maxprocs {procs} a runtime thread asked for a block of {largest} bytes, at\n{}",
            at.unwrap_or_default()
        );
    });
}
