//! Two goroutines homed to different Ms, at `GORT_MAXPROCS=1`, that wait for each other by
//! yielding in a loop (the pattern of `chan/tests/select_default.rs`'s reproducer, and of any
//! polling loop): each turn needs the one P to move to the other M. They take every turn,
//! exactly, within the harness's time bound. How many yields a turn costs is printed, not
//! asserted (a measurement: `docs/BENCHMARKS.md`, session 12): a yield that leaves its M nothing
//! else to run hands the P to a hungry M at once (`scheduler/find.rs`, `yield_p_if_hungry`),
//! where before the P moved only every 61st schedule.
//!
//! Alone in its binary: it changes maxprocs.

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Turns taken in all (each goroutine takes every other one).
const TURNS: u64 = 20_000;

#[test]
fn yield_polling_goroutines_on_two_ms_take_turns_at_one_p() {
    common::bounded("yield_polling_across_ms", || {
        gort::set_maxprocs(2);
        let turn = Arc::new(AtomicU64::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let go = Arc::new(AtomicU64::new(0));
        let players: Vec<_> = (0..2u64)
            .map(|me| {
                let (turn, started, go) = (turn.clone(), started.clone(), go.clone());
                gort::spawn(move || {
                    let m = gort::current_machine_id().unwrap();
                    // Hold this M until the other has started too: it then starts on the
                    // other P's M, and each is homed to its own.
                    started.fetch_add(1, Ordering::SeqCst);
                    while started.load(Ordering::SeqCst) < 2 {
                        std::hint::spin_loop();
                    }
                    while go.load(Ordering::SeqCst) == 0 {
                        gort::yield_now();
                    }
                    let (mut taken, mut waits) = (0u64, 0u64);
                    loop {
                        let t = turn.load(Ordering::SeqCst);
                        if t >= TURNS {
                            return (m, taken, waits);
                        }
                        if t % 2 == me {
                            turn.store(t + 1, Ordering::SeqCst);
                            taken += 1;
                        } else {
                            waits += 1;
                            gort::yield_now();
                        }
                    }
                })
            })
            .collect();
        common::wait_until("both players started", || {
            started.load(Ordering::SeqCst) == 2
        });
        gort::set_maxprocs(1);
        let start = Instant::now();
        go.store(1, Ordering::SeqCst);
        let ends: Vec<(usize, u64, u64)> = players.into_iter().map(|p| p.join().unwrap()).collect();
        let took = start.elapsed();
        let homed_apart = ends[0].0 != ends[1].0;
        assert!(
            homed_apart || common::migrating(),
            "the players started on the same M"
        );
        assert_eq!(ends[0].1, TURNS / 2, "player 0's turns");
        assert_eq!(ends[1].1, TURNS / 2, "player 1's turns");
        let waits = ends[0].2 + ends[1].2;
        eprintln!(
            "yield_across_ms: {TURNS} turns at maxprocs 1 in {took:?}, {:.1} yields a turn",
            waits as f64 / TURNS as f64
        );
    });
}
