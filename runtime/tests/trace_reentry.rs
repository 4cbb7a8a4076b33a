//! Scheduler events reach a `tracing` subscriber only where the scheduler's state is consistent
//! (issue 9, item 2; `sched/src/trace.rs`). The subscriber here does everything a subscriber
//! might: inside every event from the scheduler it checks `current_id()`, spawns a goroutine,
//! unparks the current goroutine, drops an `Unparker` (possibly the last reference to an ended
//! goroutine, which frees its cell) and yields. Before the fix, the `park` event ran while the
//! parked goroutine was still the M's current one: `current_id()` named it, and `yield_now()`
//! switched from the wrong stack (SIGSEGV). Runs at maxprocs 1, 2 and 4, bounded in time.

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::Event;

/// Goroutines the subscriber spawned, and how many of them ran.
static SPAWNED: AtomicUsize = AtomicUsize::new(0);
static RAN: AtomicUsize = AtomicUsize::new(0);
/// Events emitted on an M's own stack that still saw a current goroutine.
static INCONSISTENT: AtomicUsize = AtomicUsize::new(0);
/// Events seen, by kind.
static PARKS: AtomicUsize = AtomicUsize::new(0);
/// Unparkers of ended goroutines, dropped one per event.
static UNPARKERS: Mutex<Vec<gort::Unparker>> = Mutex::new(Vec::new());
/// Goroutines the subscriber may spawn in all (each spawn makes more events).
const SPAWN_BUDGET: usize = 20_000;

std::thread_local! {
    /// Set while this thread is inside the subscriber (its own calls emit events too).
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// The subscriber's body: calls back into gort from every scheduler event.
fn call_back(event: &Event<'_>) {
    if !event.metadata().target().starts_with("sched") || INSIDE.with(|i| i.replace(true)) {
        return;
    }
    let mut msg = Message(String::new());
    event.record(&mut msg);
    // These are emitted on an M's own stack, between goroutines.
    if ["park", "exit", "steal", "machine sleep", "machine wake"].contains(&msg.0.as_str())
        && gort::current().is_some()
    {
        INCONSISTENT.fetch_add(1, Ordering::Relaxed);
    }
    if msg.0 == "park" {
        PARKS.fetch_add(1, Ordering::Relaxed);
    }
    if SPAWNED.fetch_add(1, Ordering::Relaxed) < SPAWN_BUDGET {
        drop(gort::go!(|| {
            RAN.fetch_add(1, Ordering::Relaxed);
            UNPARKERS.lock().unwrap().push(gort::unparker());
        }));
    } else {
        SPAWNED.fetch_sub(1, Ordering::Relaxed);
    }
    if gort::current().is_some() {
        // A token for the current goroutine: its next park returns at once, which every
        // blocking call must tolerate.
        gort::unparker().unpark();
    }
    let last = UNPARKERS.lock().unwrap().pop();
    drop(last);
    INSIDE.with(|i| i.set(false));
    gort::yield_now();
}

#[test]
fn subscriber_may_call_back_into_gort_from_every_event() {
    tracing::subscriber::set_global_default(common::OnEvent(call_back)).expect("first subscriber");
    common::each_procs("subscriber_may_call_back", |procs| {
        let parks_before = PARKS.load(Ordering::Relaxed);
        // Channel hand-offs, sleeps and spawn/join: park, unpark, spawn, exit, steal events.
        let (tx, rx) = gort::chan::<u64>(0);
        let consumer = gort::go!(move || rx.iter().sum::<u64>());
        let producers: Vec<_> = (0..4u64)
            .map(|k| {
                let tx = tx.clone();
                gort::go!(move || {
                    for i in 0..500 {
                        tx.send(k * 1000 + i).unwrap();
                        if i % 50 == 0 {
                            gort::time::sleep(Duration::from_micros(100));
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        for p in producers {
            p.join().unwrap();
        }
        let want: u64 = (0..4u64)
            .map(|k| (0..500).map(|i| k * 1000 + i).sum::<u64>())
            .sum();
        assert_eq!(consumer.join().unwrap(), want, "at maxprocs {procs}");
        assert!(
            PARKS.load(Ordering::Relaxed) > parks_before,
            "no park events seen"
        );
        common::wait_until("the subscriber's goroutines ran", || {
            RAN.load(Ordering::Relaxed) == SPAWNED.load(Ordering::Relaxed)
        });
    });
    assert_eq!(
        INCONSISTENT.load(Ordering::Relaxed),
        0,
        "events on an M's own stack saw a current goroutine"
    );
    UNPARKERS.lock().unwrap().clear();
}
