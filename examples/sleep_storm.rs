//! Many short sleeps at once: the load that once lost a timer wake-up and hung the runtime
//! (issue 16). Each round starts 64 goroutines that each sleep 200 times for 20-209 µs, then
//! joins them, so Ms go idle and are woken constantly and the timer watcher changes hands.
//!
//! `cargo run --release --example sleep_storm -- [rounds]` (default 400; about 20 s).
//! Prints a line every 50 rounds and `sleep_storm: rounds=<n> done in <ms> ms` at the end.
//! `benches/sleep_storm.sh` runs it repeatedly at several maxprocs and counts hangs.

use std::time::{Duration, Instant};

fn main() {
    let rounds: u64 = std::env::args()
        .nth(1)
        .map_or(400, |a| a.parse().expect("rounds"));
    let t = Instant::now();
    gort::run(move || {
        for round in 0..rounds {
            let hs: Vec<_> = (0..64u64)
                .map(|i| {
                    gort::go!(move || {
                        for _ in 0..200 {
                            gort::time::sleep(Duration::from_micros(20 + i * 3));
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            if round % 50 == 0 {
                println!("round {round} t_ms={}", t.elapsed().as_millis());
            }
        }
    });
    println!(
        "sleep_storm: maxprocs={} rounds={rounds} done in {} ms",
        gort::maxprocs(),
        t.elapsed().as_millis()
    );
}
