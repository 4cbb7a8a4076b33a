//! One goroutine calls `yield_now` N times; reports the cost of one yield (a switch to the
//! scheduler and back, through the run queue).
//!
//! `cargo run --release --example yield_many -- 10000000`

use std::time::Instant;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(10_000_000, |a| a.parse().expect("N"));
    let elapsed = gort::run(move || {
        let start = Instant::now();
        for _ in 0..n {
            gort::yield_now();
        }
        start.elapsed()
    });
    println!(
        "yield_many: n={n} maxprocs={} ns_per_yield={:.1}",
        gort::maxprocs(),
        elapsed.as_nanos() as f64 / n as f64
    );
}
