//! A pipeline that needs more than one thread: 4 producer goroutines send N messages into one
//! channel (capacity 1024) and 4 consumer goroutines each spend 1 µs of CPU on every message
//! they receive. With 2 Ps it should take about half as long as with 1: the measure of whether
//! work spreads over the threads (issue 11; Go measures 1.9x here). Every value is checked
//! (count and sum).
//!
//! `cargo run --release --example pipeline -- 2000000`
//! Prints `pipeline: mode=<affine|migrate> maxprocs=<P> msgs=<N> ns_per_msg=<f>`.
//! The Go twin is `benches/go/cmd/pipeline`.

#[path = "bench_mode.rs"]
mod bench_mode;

use std::time::{Duration, Instant};

const PRODUCERS: u64 = 4;
const CONSUMERS: usize = 4;
/// CPU time each message costs its consumer.
const WORK: Duration = Duration::from_micros(1);

/// Spins for `WORK` (reading the clock, as the Go twin does).
fn work(v: u64) -> u64 {
    let start = Instant::now();
    let mut x = v;
    while start.elapsed() < WORK {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    x
}

fn main() {
    let mode = bench_mode::init();
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(2_000_000, |a| a.parse().expect("N"));
    let per_producer = n / PRODUCERS;
    let total = per_producer * PRODUCERS;
    let ((count, sum), elapsed) = gort::run(move || {
        let (tx, rx) = gort::chan::<u64>(1024);
        let start = Instant::now();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let tx = tx.clone();
                gort::go!(move || {
                    for i in p * per_producer..(p + 1) * per_producer {
                        tx.send(i).expect("consumers alive");
                    }
                })
            })
            .collect();
        drop(tx);
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let rx = rx.clone();
                gort::go!(move || {
                    rx.iter().fold((0u64, 0u64), |(c, s), v| {
                        std::hint::black_box(work(v));
                        (c + 1, s + v)
                    })
                })
            })
            .collect();
        drop(rx);
        for p in producers {
            p.join().unwrap();
        }
        let totals = consumers
            .into_iter()
            .map(|c| c.join().unwrap())
            .fold((0, 0), |(c, s), (c2, s2)| (c + c2, s + s2));
        (totals, start.elapsed())
    });
    assert_eq!(count, total, "messages received");
    assert_eq!(sum, total * (total - 1) / 2, "sum of values received");
    println!(
        "pipeline: mode={mode} maxprocs={} msgs={total} ns_per_msg={:.1}",
        gort::maxprocs(),
        elapsed.as_nanos() as f64 / total as f64
    );
}
