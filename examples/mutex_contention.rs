//! 8 goroutines contend for one `gort::sync::Mutex`, each locking and unlocking it N/8 times
//! around a plain counter; reports the cost of one lock/unlock pair (total time / N) and checks
//! the counter.
//!
//! `cargo run --release --example mutex_contention -- 8000000`
//! The Go twin is `benches/go/cmd/mutex`.

#[path = "bench_mode.rs"]
mod bench_mode;

use std::sync::Arc;
use std::time::Instant;

const WORKERS: u64 = 8;

fn main() {
    let mode = bench_mode::init();
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(8_000_000, |a| a.parse().expect("N"));
    let per = n / WORKERS;
    let (count, elapsed) = gort::run(move || {
        let counter = Arc::new(gort::sync::Mutex::new(0u64));
        let start = Instant::now();
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let counter = counter.clone();
                gort::go!(move || {
                    for _ in 0..per {
                        *counter.lock() += 1;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let elapsed = start.elapsed();
        let count = *counter.lock();
        (count, elapsed)
    });
    assert_eq!(
        count,
        per * WORKERS,
        "every increment happened under the lock"
    );
    println!(
        "mutex_contention: mode={mode} ops={count} goroutines={WORKERS} maxprocs={} ns_per_op={:.1}",
        gort::maxprocs(),
        elapsed.as_nanos() as f64 / count as f64
    );
}
