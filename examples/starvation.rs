//! Hazard: starvation (Cox-Buday, "Concurrency in Go", ch. 1, "Starvation"): a greedy and a
//! polite worker share a lock.
//!
//! Go's idea: both workers do the same simulated work (3 ns of sleep per loop) under one
//! `sync.Mutex` for the same time. The greedy one holds the lock for its whole loop; the polite
//! one takes it only around each third of its work, three times per loop. In the book's run
//! the greedy worker does almost twice the loops: it keeps the shared resource longer than its
//! work needs and starves the other. Counting the work each does is how starvation shows.
//!
//! In gort: `gort::sync::Mutex` (Go's, with its starvation mode: a waiter that has waited over
//! 1 ms is handed the lock directly) and `gort::time::sleep`, which parks the goroutine for its
//! few nanoseconds, as Go's `time.Sleep` does. The counts vary run to run and with
//! `GORT_MAXPROCS`; the greedy worker comes out ahead.
//!
//! Prints both counts after 100 ms (the book runs 1 s).
//!
//! `cargo run --example starvation`

use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::sync::{Mutex, WaitGroup};

const RUNTIME: Duration = Duration::from_millis(100);

fn greedy_worker(shared: &Mutex<()>) -> u64 {
    let mut count = 0;
    let begin = Instant::now();
    while begin.elapsed() <= RUNTIME {
        let _held = shared.lock();
        gort::time::sleep(Duration::from_nanos(3));
        count += 1;
    }
    count
}

fn polite_worker(shared: &Mutex<()>) -> u64 {
    let mut count = 0;
    let begin = Instant::now();
    while begin.elapsed() <= RUNTIME {
        for _ in 0..3 {
            let _held = shared.lock();
            gort::time::sleep(Duration::from_nanos(1));
        }
        count += 1;
    }
    count
}

fn main() {
    gort::run(|| {
        let shared = Arc::new(Mutex::new(()));
        let wg = WaitGroup::new();
        wg.add(2);
        let workers = [
            ("Greedy", greedy_worker as fn(&Mutex<()>) -> u64),
            ("Polite", polite_worker),
        ]
        .map(|(name, work)| {
            let (shared, wg) = (shared.clone(), wg.clone());
            gort::go!(move || {
                let count = work(&shared);
                wg.done();
                (name, count)
            })
        });
        wg.wait();
        let mut counts = Vec::new();
        for w in workers {
            let (name, count) = w.join().unwrap();
            println!("starvation: {name} worker was able to execute {count} work loops");
            counts.push(count);
        }
        println!(
            "starvation: in the same {} ms the greedy worker did {:.1}x the polite one's loops",
            RUNTIME.as_millis(),
            counts[0] as f64 / counts[1].max(1) as f64
        );
    });
}
