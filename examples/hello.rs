//! The main demo: a fan-out/fan-in pipeline. A producer goroutine feeds numbers into a channel,
//! 100 worker goroutines square them and send the results on, and the main goroutine sums them
//! with a `select!` that also watches a ticker; at the end it shows how the workers spread over
//! the runtime's threads.
//!
//! `cargo run --release --example hello`

use std::collections::BTreeMap;
use std::time::Duration;

fn main() {
    let (sum, per_thread, ticks) = gort::run(|| {
        let (jobs_tx, jobs_rx) = gort::chan::<u64>(64);
        let (results_tx, results_rx) = gort::chan::<(u64, usize)>(64);

        gort::go!(move || {
            for n in 1..=100_000u64 {
                jobs_tx.send(n).unwrap();
            }
            // Dropping the last sender closes `jobs`: the workers' loops end.
        });
        for _ in 0..100 {
            let (jobs, results) = (jobs_rx.clone(), results_tx.clone());
            gort::go!(move || {
                for n in &jobs {
                    let thread = gort::current_machine_id().unwrap_or(0);
                    results.send((n * n, thread)).unwrap();
                }
            });
        }
        drop((jobs_rx, results_tx)); // now only the workers hold the ends

        let ticker = gort::time::tick(Duration::from_millis(10));
        let (mut sum, mut ticks) = (0u64, 0u32);
        let mut per_thread = BTreeMap::new();
        loop {
            gort::select! {
                recv(results_rx) -> r => match r {
                    Ok((square, thread)) => {
                        sum += square;
                        *per_thread.entry(thread).or_insert(0u32) += 1;
                    }
                    Err(_) => break, // every worker is done: the channel closed
                },
                recv(ticker) -> _t => ticks += 1,
            }
        }
        (sum, per_thread, ticks)
    });
    let expected: u64 = (1..=100_000u64).map(|n| n * n).sum();
    assert_eq!(sum, expected);
    println!("sum of squares 1..=100000 = {sum} (checked)");
    for (thread, count) in per_thread {
        println!("  thread gort-m{thread}: squared {count} numbers");
    }
    println!(
        "hello: maxprocs={} ticks_seen={ticks} goroutines_left={}",
        gort::maxprocs(),
        gort::num_goroutine()
    );
}
