//! Migrate mode, the `unsafe` opt-in to Go's behaviour (`gort::enable_migration`,
//! `docs/SOUNDNESS.md`): started goroutines do move between threads, and the opt-in is refused
//! once the runtime has started. (The rest of the suite runs in this mode with
//! `GORT_TEST_MIGRATE=1`, see `.ci/run`.)

mod common;

use std::collections::HashSet;
use std::sync::Once;

/// Enables migration before this binary's runtime starts.
fn migrate() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: these tests keep nothing thread-bound across a park (they read the M id
        // through `current_machine_id`, which reads the scheduler's thread-local afresh).
        unsafe { gort::enable_migration() }.expect("before the runtime starts");
    });
}

#[test]
fn started_goroutines_move_between_threads() {
    migrate();
    common::each_procs_at("started_goroutines_migrate", &[4], |_| {
        // Goroutines that park often, readied by a feeder that runs wherever it runs: in
        // migrate mode each resumes on the waker's M (or wherever a thief takes it).
        let (txs, hs): (Vec<_>, Vec<_>) = (0..64)
            .map(|_| {
                let (tx, rx) = gort::chan::<u32>(0);
                let h = gort::go!(move || {
                    let mut ms = HashSet::new();
                    for _ in 0..200 {
                        ms.insert(gort::current_machine_id().unwrap());
                        rx.recv().unwrap();
                    }
                    ms.len()
                });
                (tx, h)
            })
            .unzip();
        let feeders: Vec<_> = txs
            .chunks(16)
            .map(|chunk| {
                let chunk = chunk.to_vec();
                gort::go!(move || {
                    for k in 0..200 {
                        for tx in &chunk {
                            tx.send(k).unwrap();
                        }
                    }
                })
            })
            .collect();
        for f in feeders {
            f.join().unwrap();
        }
        let moved = hs
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&n| n > 1)
            .count();
        assert!(
            moved > 0,
            "no goroutine ran on more than one M in migrate mode"
        );
    });
}

#[test]
fn enabling_after_start_is_refused() {
    migrate();
    gort::spawn(|| ()).join().unwrap();
    // SAFETY: the runtime has started, so the call is refused and changes nothing.
    let again = unsafe { gort::enable_migration() };
    assert_eq!(again, Err(gort::RuntimeStarted));
}
