//! `set_maxprocs` while every P is busy (issue 9, item 5): goroutines hand values over
//! channels while another goroutine shrinks and grows the number of Ps in a loop (1, 4, 2, 3,
//! ...). Growing back over a P whose M had not yet retired it once built a second `Processor`
//! for its id: two owners of one `runnext`, and a queue nobody could steal from, so goroutines
//! were never run and every M went idle. Exact counts, bounded in time; starts at maxprocs 1, 2
//! and 4.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Rounds per starting maxprocs (the old bug showed in about one round in thirty).
const ROUNDS: usize = 10;

#[test]
fn maxprocs_changes_under_load_lose_nothing() {
    common::each_procs("maxprocs_changes_under_load", |procs| {
        for _ in 0..ROUNDS {
            churn_round(procs);
        }
    });
}

fn churn_round(procs: usize) {
    {
        const PAIRS: u64 = 16;
        const MESSAGES: u64 = 3_000;
        let stop = Arc::new(AtomicBool::new(false));
        let changer = {
            let stop = stop.clone();
            gort::go!(move || {
                let mut changes = 0u64;
                for n in [1, 4, 2, 3, 1, 3, 4, 2].into_iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    gort::set_maxprocs(n);
                    changes += 1;
                    gort::yield_now();
                }
                changes
            })
        };
        let pairs: Vec<_> = (0..PAIRS)
            .map(|_| {
                let (tx, rx) = gort::chan::<u64>(0);
                let consumer = gort::go!(move || rx.iter().sum::<u64>());
                gort::go!(move || {
                    for v in 0..MESSAGES {
                        tx.send(v).unwrap();
                        if v % 64 == 0 {
                            // Spawned work too: unstarted goroutines sit in the queues that move.
                            gort::go!(move || v).join().unwrap();
                        }
                    }
                    drop(tx);
                    consumer.join().unwrap()
                })
            })
            .collect();
        for p in pairs {
            assert_eq!(p.join().unwrap(), MESSAGES * (MESSAGES - 1) / 2);
        }
        stop.store(true, Ordering::Relaxed);
        assert!(changer.join().unwrap() > 0);
        gort::set_maxprocs(procs);
    }
}
