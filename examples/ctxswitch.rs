//! The seeds' BenchmarkContextSwitch: a sender goroutine sends N empty tokens over an
//! unbuffered channel to a receiver goroutine; both start together. Every token is a hand-off
//! from one goroutine to the other (the sender parks until the receiver takes it).
//!
//! `cargo run --release --example ctxswitch -- 10000000`
//! The Go twin is `benches/go/cmd/ctxswitch`.

#[path = "bench_mode.rs"]
mod bench_mode;

use std::time::Instant;

fn main() {
    let mode = bench_mode::init();
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(10_000_000, |a| a.parse().expect("N"));
    let (received, elapsed) = gort::run(move || {
        let (tx, rx) = gort::chan::<()>(0);
        let (start_tx, start_rx) = gort::chan::<()>(0);
        let start_rx2 = start_rx.clone();
        let sender = gort::go!(move || {
            let _ = start_rx.recv();
            for _ in 0..n {
                tx.send(()).expect("receiver alive");
            }
        });
        let receiver = gort::go!(move || {
            let _ = start_rx2.recv();
            let mut got = 0u64;
            for () in &rx {
                got += 1;
            }
            got
        });
        let start = Instant::now();
        drop(start_tx); // closing releases both at once
        sender.join().unwrap();
        let got = receiver.join().unwrap();
        (got, start.elapsed())
    });
    assert_eq!(received, n, "every token received exactly once");
    println!(
        "ctxswitch: mode={mode} n={n} maxprocs={} ns_per_switch={:.1}",
        gort::maxprocs(),
        elapsed.as_nanos() as f64 / n as f64
    );
}
