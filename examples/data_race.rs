//! Hazard: a race condition, fixed by a `Mutex` and by channel ownership (Cox-Buday,
//! "Concurrency in Go", ch. 1, "Race Conditions" and "Memory Access Synchronization"; ch. 2,
//! "Go's Philosophy on Concurrency").
//!
//! Go's idea: goroutines that read and write the same variable without synchronisation race
//! (`go func() { data++ }()` beside `if data == 0 {...}`): the result depends on an order
//! nothing guarantees. Two fixes: guard the critical section with a `sync.Mutex`, or give the
//! data one owner and send it the changes on a channel ("share memory by communicating").
//!
//! In Rust the data race itself does not compile: a goroutine cannot capture `&mut data`
//! while another reads it. What remains expressible is the race condition: each increment here
//! is a read then a write of an atomic, with a `gort::yield_now()` between them, so the other
//! goroutines may read the same value in between and their updates are lost. The `Mutex`
//! version holds the lock across the read, yield and write; the owner version has one
//! goroutine hold the counter and receive increments.
//!
//! Prints the racy total (lower than expected on most runs; it varies) and the two exact ones.
//!
//! `cargo run --example data_race`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use gort::sync::Mutex;

const GOROUTINES: u64 = 4;
const INCREMENTS: u64 = 2_000;
const EXPECTED: u64 = GOROUTINES * INCREMENTS;

/// Runs `increment` `INCREMENTS` times in each of `GOROUTINES` goroutines, and waits.
fn run_incrementers(increment: impl Fn() + Clone + Send + 'static) {
    let workers: Vec<_> = (0..GOROUTINES)
        .map(|_| {
            let increment = increment.clone();
            gort::go!(move || (0..INCREMENTS).for_each(|_| increment()))
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
}

/// Read, yield, write: another goroutine may write in between, and its update is lost.
fn racy() -> u64 {
    let counter = Arc::new(AtomicU64::new(0));
    let c = counter.clone();
    run_incrementers(move || {
        let seen = c.load(Ordering::SeqCst);
        gort::yield_now();
        c.store(seen + 1, Ordering::SeqCst);
    });
    counter.load(Ordering::SeqCst)
}

/// The same steps inside a critical section.
fn with_mutex() -> u64 {
    let counter = Arc::new(Mutex::new(0u64));
    let c = counter.clone();
    run_incrementers(move || {
        let mut value = c.lock();
        let seen = *value;
        gort::yield_now();
        *value = seen + 1;
    });
    let total = *counter.lock();
    total
}

/// One goroutine owns the counter; the others send it increments. The owner's loop ends when
/// the last sender is dropped (every incrementer is done).
fn with_owner() -> u64 {
    let (increments, received) = gort::chan::<u64>(64);
    let owner = gort::go!(move || {
        let mut counter = 0;
        for n in &received {
            let seen = counter;
            gort::yield_now();
            counter = seen + n;
        }
        counter
    });
    run_incrementers(move || {
        increments
            .send(1)
            .expect("the owner receives until we are done")
    });
    owner.join().unwrap()
}

fn main() {
    gort::run(|| {
        let lost = racy();
        println!(
            "data_race: read-yield-write without a lock: {lost} of {EXPECTED} ({} updates lost)",
            EXPECTED - lost
        );
        let locked = with_mutex();
        assert_eq!(locked, EXPECTED);
        println!("data_race: fixed by gort::sync::Mutex: {locked} of {EXPECTED}");
        let owned = with_owner();
        assert_eq!(owned, EXPECTED);
        println!("data_race: fixed by channel ownership: {owned} of {EXPECTED}");
    });
}
