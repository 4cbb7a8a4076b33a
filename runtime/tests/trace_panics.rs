//! No user panic unwinds through the scheduler (issue 9, item 3): a `tracing` subscriber that
//! panics inside scheduler events (park, unpark, spawn, exit, steal, M sleep and wake) is
//! contained and reported, and the program carries on with every goroutine and value accounted
//! for. Before the fix, a panic in the `park` event (between the park commit and the hand-over
//! of the scheduler's reference) freed a live goroutine, and one in `unpark` lost the goroutine
//! it had just woken. Runs at maxprocs 1, 2 and 4, bounded in time.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tracing::Event;

/// Panics the subscriber raised.
static PANICS: AtomicUsize = AtomicUsize::new(0);
/// Panics it may raise in all (each is reported on stderr).
const PANIC_BUDGET: usize = 3_000;

/// The subscriber's body: panics in every scheduler event, up to the budget.
fn panics(event: &Event<'_>) {
    if event.metadata().target().starts_with("sched")
        && PANICS.fetch_add(1, Ordering::Relaxed) < PANIC_BUDGET
    {
        panic!(
            "{}: subscriber panics in a scheduler event",
            common::EXPECTED
        );
    }
}

#[test]
fn panicking_subscriber_is_contained() {
    common::quiet_expected_panics();
    tracing::subscriber::set_global_default(common::OnEvent(panics)).expect("first subscriber");
    common::each_procs("panicking_subscriber_is_contained", |procs| {
        let before = PANICS.load(Ordering::Relaxed);
        let (tx, rx) = gort::chan::<u64>(0);
        let consumer = gort::go!(move || rx.iter().count());
        let producers: Vec<_> = (0..8u64)
            .map(|_| {
                let tx = tx.clone();
                gort::go!(move || {
                    for i in 0..100u64 {
                        tx.send(i).unwrap();
                        if i % 10 == 0 {
                            gort::time::sleep(Duration::from_micros(50));
                        }
                    }
                    // Spawns and exits too.
                    gort::go!(|| 1u64).join().unwrap()
                })
            })
            .collect();
        drop(tx);
        let spawned: u64 = producers.into_iter().map(|p| p.join().unwrap()).sum();
        assert_eq!(spawned, 8, "at maxprocs {procs}");
        assert_eq!(consumer.join().unwrap(), 800, "at maxprocs {procs}");
        assert!(
            PANICS.load(Ordering::Relaxed) > before,
            "the subscriber never ran"
        );
    });
}
