//! MPMC throughput: 4 producer goroutines and 4 consumer goroutines share one channel of
//! capacity 1024; N u64 messages in total; every value must be received exactly once (checked
//! with a per-value sum and count).
//!
//! `cargo run --release --example chan_throughput -- 10000000`
//! The Go twin is `benches/go/cmd/chan_throughput`.

#[path = "bench_mode.rs"]
mod bench_mode;

use std::time::Instant;

const PRODUCERS: u64 = 4;
const CONSUMERS: usize = 4;

fn main() {
    let mode = bench_mode::init();
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(10_000_000, |a| a.parse().expect("N"));
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
                gort::go!(move || rx.iter().fold((0u64, 0u64), |(c, s), v| (c + 1, s + v)))
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
    // Every value 0..total exactly once: the count and the sum of all values both match.
    assert_eq!(count, total, "messages received");
    assert_eq!(sum, total * (total - 1) / 2, "sum of values received");
    println!(
        "chan_throughput: mode={mode} msgs={total} maxprocs={} mmsgs_per_s={:.2}",
        gort::maxprocs(),
        total as f64 / elapsed.as_secs_f64() / 1e6
    );
}
