//! The cost of one lock/unlock of a contended `chan::sync::Mutex`: 8 goroutines × 1,000,000
//! lock/increment/unlock of one counter, total time / total operations, at maxprocs 1 and 2.
//! Go's equivalent (8 goroutines, `sync.Mutex`, `counter++`) is the reference.
//!
//! A benchmark, not a test: `cargo test -p gort-chan --release --test sync_mutex_cost --
//! --ignored --nocapture`.

use std::sync::Arc;
use std::time::Instant;

use chan::sync::Mutex;

const GOROUTINES: usize = 8;
const OPS: usize = 1_000_000;
const RUNS: usize = 5;

fn once(procs: usize) -> f64 {
    sched::set_maxprocs(procs);
    let m = Arc::new(Mutex::new(0u64));
    let start = Instant::now();
    let hs: Vec<_> = (0..GOROUTINES)
        .map(|_| {
            let m = m.clone();
            sched::spawn(move || {
                for _ in 0..OPS {
                    *m.lock() += 1;
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(*m.lock(), (GOROUTINES * OPS) as u64);
    elapsed.as_nanos() as f64 / (GOROUTINES * OPS) as f64
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn mutex_cost_per_lock_unlock() {
    for procs in [1, 2] {
        let mut runs: Vec<f64> = (0..RUNS).map(|_| once(procs)).collect();
        runs.sort_by(f64::total_cmp);
        println!(
            "gort Mutex, {GOROUTINES} goroutines x {OPS} lock/unlock, maxprocs {procs}: \
             median {:.1} ns/op (min {:.1}, max {:.1})",
            runs[RUNS / 2],
            runs[0],
            runs[RUNS - 1]
        );
    }
}
