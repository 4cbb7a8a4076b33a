//! Spawns and joins N goroutines and reports the cost per goroutine.
//!
//! `cargo run --release --example spawn_many -- 1000000 [batch]`
//!
//! With `batch` = 0 (the default) all N are spawned before any is joined (every one is queued
//! at once); with `batch` = B they are spawned and joined B at a time. Each goroutine returns
//! its index + 1 and the join checks it, so `ok` counts goroutines whose result was seen. The
//! Go twin is `benches/go/cmd/spawn_many` (`go f()` + `sync.WaitGroup`).

#[path = "bench_mode.rs"]
mod bench_mode;

use std::time::Instant;

fn main() {
    let mode = bench_mode::init();
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(1_000_000, |a| a.parse().expect("N"));
    let batch: usize = args.next().map_or(0, |a| a.parse().expect("batch"));
    let (ok, elapsed) = gort::run(move || {
        let start = Instant::now();
        let ok = if batch == 0 {
            spawn_join(0, n)
        } else {
            (0..n)
                .step_by(batch)
                .map(|lo| spawn_join(lo, (lo + batch).min(n)))
                .sum()
        };
        (ok, start.elapsed())
    });
    println!(
        "spawn_many: mode={mode} maxprocs={} batch={batch} elapsed_ms={:.1}",
        gort::maxprocs(),
        elapsed.as_secs_f64() * 1e3
    );
    println!(
        "spawn_many: n={n} ok={ok} ns_per_goroutine={:.1}",
        elapsed.as_nanos() as f64 / n as f64
    );
    if ok != n {
        std::process::exit(1);
    }
}

/// Spawns goroutines `lo..hi`, joins them all, returns how many returned the right value.
fn spawn_join(lo: usize, hi: usize) -> usize {
    let start = Instant::now();
    let handles: Vec<_> = (lo..hi).map(|i| gort::go!(move || i + 1)).collect();
    if hi - lo >= 100_000 {
        eprintln!(
            "spawn_many: spawning {} took {:.1} ns each",
            hi - lo,
            start.elapsed().as_nanos() as f64 / (hi - lo) as f64
        );
    }
    handles
        .into_iter()
        .zip(lo..hi)
        .map(|(h, i)| usize::from(h.join().ok() == Some(i + 1)))
        .sum()
}
