//! Parks N goroutines at once, measures the resident memory each costs, then wakes them all.
//!
//! `cargo run --release --example park_many -- 1000000`
//!
//! Each goroutine registers its `Unparker` at a shared gate and parks until the gate opens;
//! the main goroutine waits until all N have registered, reads the process's RSS, opens the
//! gate (unparking every one) and waits until all have ended. The figure is
//! (RSS with N parked − RSS before spawning) / N: one goroutine's header, its touched stack
//! page(s) and its place at the gate. The Go twin is `benches/go/cmd/park_many` (N goroutines
//! blocked on one channel receive).
//!
//! `park_many N chan` blocks the goroutines in a receive on one channel instead, as the Go twin
//! does, and closes it to wake them.
//!
//! `GORT_BENCH_COMPACT=1` runs it with parked-stack compaction (`gort::enable_stack_compaction`):
//! it then also waits, before it reads the RSS, until the compactor has compacted every parked
//! goroutine (at most 10 s), and prints how long that took and how long the wake-up of all N
//! (which copies each stack back) took.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct Gate {
    open: AtomicBool,
    waiters: Mutex<Vec<gort::Unparker>>,
    registered: AtomicUsize,
    finished: AtomicUsize,
    main: gort::Unparker,
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().expect("N"));
    if std::env::var("GORT_BENCH_COMPACT").is_ok_and(|v| v == "1") {
        // SAFETY: no goroutine here lends its stack to another thread: each parks with only
        // its own locals, and its wake-up comes through an `Unparker` on the heap.
        unsafe { gort::enable_stack_compaction() }.expect("before the runtime starts");
    }
    let on_channel = std::env::args().nth(2).is_some_and(|a| a == "chan");
    let (per_goroutine, pte) = gort::run(move || park_many(n, on_channel));
    println!("park_many: page_tables_bytes_per_goroutine={pte}");
    println!("park_many: n={n} rss_bytes_per_goroutine={per_goroutine}");
}

fn park_many(n: usize, on_channel: bool) -> (usize, usize) {
    let gate = Arc::new(Gate {
        open: AtomicBool::new(false),
        waiters: Mutex::new(Vec::with_capacity(n)),
        registered: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        main: gort::unparker(),
    });
    let (release, released) = gort::chan::<()>(0);
    let (rss_before, pte_before) = memory();
    for _ in 0..n {
        let gate = gate.clone();
        if on_channel {
            let released = released.clone();
            drop(gort::go!(move || wait_on_channel(&gate, &released, n)));
        } else {
            drop(gort::go!(move || wait_at(&gate, n)));
        }
    }
    drop(released);
    while gate.registered.load(Ordering::Acquire) < n {
        gort::yield_now();
    }
    // Let the last registrants finish switching out.
    for _ in 0..1000 {
        gort::yield_now();
    }
    if compacting() {
        wait_for_compaction(n);
    }
    let (rss_parked, pte_parked) = memory();
    let wake = std::time::Instant::now();
    gate.open.store(true, Ordering::Release);
    drop(release);
    let waiters = std::mem::take(&mut *gate.waiters.lock().unwrap());
    for w in &waiters {
        w.unpark();
    }
    while gate.finished.load(Ordering::Acquire) < n {
        gort::park();
    }
    let s = gort::stats();
    println!(
        "park_many: woke all in {:?}; stack_restores={}",
        wake.elapsed(),
        s.stack_restores
    );
    assert_eq!(waiters.len(), if on_channel { 0 } else { n });
    (
        rss_parked.saturating_sub(rss_before) / n,
        pte_parked.saturating_sub(pte_before) / n,
    )
}

fn wait_at(gate: &Gate, n: usize) {
    gate.waiters.lock().unwrap().push(gort::unparker());
    gate.registered.fetch_add(1, Ordering::Release);
    while !gate.open.load(Ordering::Acquire) {
        gort::park();
    }
    if gate.finished.fetch_add(1, Ordering::AcqRel) + 1 == n {
        gate.main.unpark();
    }
}

fn compacting() -> bool {
    std::env::var("GORT_BENCH_COMPACT").is_ok_and(|v| v == "1")
}

/// Waits (at most 10 s) until the compactor has compacted all `n` parked goroutines.
fn wait_for_compaction(n: usize) {
    let start = std::time::Instant::now();
    while gort::stats().stacks_compacted < n && start.elapsed().as_secs() < 10 {
        gort::time::sleep(std::time::Duration::from_millis(20));
    }
    let s = gort::stats();
    println!(
        "park_many: {} of {n} stacks compacted after {:?}, {} bytes saved each",
        s.stacks_compacted,
        start.elapsed(),
        s.compacted_stack_bytes / s.stacks_compacted.max(1)
    );
}

fn wait_on_channel(gate: &Gate, released: &gort::Receiver<()>, n: usize) {
    gate.registered.fetch_add(1, Ordering::Release);
    assert!(released.recv().is_err(), "the channel is only closed");
    if gate.finished.fetch_add(1, Ordering::AcqRel) + 1 == n {
        gate.main.unpark();
    }
}

/// (RSS, page-table bytes) of this process, from /proc/self/status.
fn memory() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmPTE:"))
}
