//! `gort::scope` (issue 13): scoped goroutines borrowing from the caller, at maxprocs 1, 2
//! and 4, from a plain thread and from a goroutine, each run bounded in time by the harness.
//!
//! Pins down: goroutines borrow the caller's locals (one mutably, others shared) and every
//! one has ended when `scope` returns; a panic nobody joins reaches the caller with its
//! payload, only after every other goroutine of the scope has finished; a joined panic does
//! not; a panic of the closure itself is resumed after the goroutines end; scoped goroutines
//! spawn more in the same scope; 10,000 goroutines sum slices of one borrowed array. That a
//! goroutine cannot outlive what it borrows is the `compile_fail` example of `gort::scope`.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{Expected, EXPECTED};

/// Scoped goroutines in the 10,000-goroutine scenario.
const MANY: usize = 10_000;
/// Numbers in the array they sum.
const ARRAY: usize = 100_000;
/// Goroutines that wait out a sibling's panic.
const SIBLINGS: usize = 16;
/// Levels of the nested-spawn tree (each goroutine starts two more below it).
const NEST_DEPTH: u32 = 8;

#[test]
fn goroutines_borrow_locals_mutably_and_shared() {
    common::each_procs("borrow from a thread", |_| borrow_locals());
    common::each_procs_in_goroutine("borrow from a goroutine", |_| borrow_locals());
}

fn borrow_locals() {
    let mut evens = Vec::new();
    let all: Vec<u64> = (0..1_000).collect();
    let (evens_mut, numbers) = (&mut evens, &all);
    let lens = gort::scope(|s| {
        // One goroutine borrows `evens` mutably...
        s.spawn(move || evens_mut.extend(numbers.iter().filter(|n| *n % 2 == 0)));
        // ...while others share `numbers`.
        let readers: Vec<_> = (0..4)
            .map(|i| s.spawn(move || numbers.iter().filter(|n| *n % 4 == i).count()))
            .collect();
        readers
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(lens, [250; 4]);
    // The unjoined writer has ended: `evens` is ours again, complete.
    assert_eq!(evens.len(), 500);
    assert_eq!(
        evens.iter().sum::<u64>(),
        (0..1_000).filter(|n| n % 2 == 0).sum()
    );
}

#[test]
fn an_unjoined_panic_reaches_the_caller_after_the_others_finish() {
    common::quiet_expected_panics();
    common::each_procs("unjoined panic from a thread", |_| unjoined_panic());
    common::each_procs_in_goroutine("unjoined panic from a goroutine", |_| unjoined_panic());
}

fn unjoined_panic() {
    let panicked = AtomicBool::new(false);
    let finished = AtomicUsize::new(0);
    let caught = std::panic::catch_unwind(|| {
        gort::scope(|s| {
            for _ in 0..SIBLINGS {
                s.spawn(|| {
                    // Still running when the sibling panics.
                    common::wait_until("sibling panicked", || panicked.load(Ordering::SeqCst));
                    for _ in 0..10 {
                        gort::yield_now();
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
            s.spawn(|| {
                panicked.store(true, Ordering::SeqCst);
                std::panic::panic_any(Expected(42));
            });
        })
    });
    let payload = caught.expect_err("the scope resumes the goroutine's panic");
    assert_eq!(payload.downcast_ref::<Expected>(), Some(&Expected(42)));
    assert_eq!(
        finished.load(Ordering::SeqCst),
        SIBLINGS,
        "scope returned before every sibling finished"
    );
}

#[test]
fn a_joined_panic_stays_with_the_joiner() {
    common::quiet_expected_panics();
    common::each_procs("joined panic", |_| {
        let message = gort::scope(|s| {
            let h = s.spawn(|| panic!("{EXPECTED} joined"));
            let payload = h.join().unwrap_err();
            common::panic_message(payload.as_ref()).map(str::to_owned)
        });
        assert_eq!(message.as_deref(), Some("expected: joined"));
    });
}

#[test]
fn the_closures_panic_is_resumed_after_the_goroutines_end() {
    common::quiet_expected_panics();
    common::each_procs("closure panic", |_| {
        let finished = AtomicUsize::new(0);
        let caught = std::panic::catch_unwind(|| {
            gort::scope(|s| {
                for _ in 0..SIBLINGS {
                    s.spawn(|| {
                        for _ in 0..10 {
                            gort::yield_now();
                        }
                        finished.fetch_add(1, Ordering::SeqCst);
                    });
                }
                std::panic::panic_any(Expected(7));
            })
        });
        let payload = caught.expect_err("the closure's panic");
        assert_eq!(payload.downcast_ref::<Expected>(), Some(&Expected(7)));
        assert_eq!(finished.load(Ordering::SeqCst), SIBLINGS);
    });
}

#[test]
fn scoped_goroutines_spawn_more_in_the_scope() {
    common::each_procs("nested spawns", |_| {
        let visits = AtomicUsize::new(0);
        let leaves = std::sync::Mutex::new(Vec::new());
        gort::scope(|s| {
            s.spawn(|| branch(s, 0, 0, &visits, &leaves));
        });
        let total = (1usize << (NEST_DEPTH + 1)) - 1;
        assert_eq!(visits.load(Ordering::SeqCst), total);
        let mut leaves = leaves.into_inner().unwrap();
        leaves.sort_unstable();
        assert_eq!(leaves, (0..1u64 << NEST_DEPTH).collect::<Vec<_>>());
    });
}

/// One node of a binary tree of scoped goroutines: counts itself, and starts its two
/// children in the same scope (a leaf records its index instead).
fn branch<'scope>(
    s: &'scope gort::Scope<'scope, '_>,
    depth: u32,
    index: u64,
    visits: &'scope AtomicUsize,
    leaves: &'scope std::sync::Mutex<Vec<u64>>,
) {
    visits.fetch_add(1, Ordering::SeqCst);
    if depth == NEST_DEPTH {
        leaves.lock().unwrap().push(index);
        return;
    }
    for bit in 0..2 {
        s.spawn(move || branch(s, depth + 1, index * 2 + bit, visits, leaves));
    }
}

#[test]
fn ten_thousand_goroutines_sum_a_borrowed_array() {
    common::each_procs("10k sums from a thread", |_| sum_slices());
    common::each_procs_in_goroutine("10k sums from a goroutine", |_| sum_slices());
}

fn sum_slices() {
    let numbers: Vec<u64> = (1..=ARRAY as u64).collect();
    let mut partial = vec![0u64; MANY];
    let chunk = ARRAY / MANY;
    gort::scope(|s| {
        for (slice, sum) in numbers.chunks(chunk).zip(partial.iter_mut()) {
            s.spawn(move || *sum = slice.iter().sum());
        }
    });
    let n = ARRAY as u64;
    assert_eq!(partial.iter().sum::<u64>(), n * (n + 1) / 2);
    assert!(
        partial.iter().all(|&p| p > 0),
        "a goroutine's sum is missing"
    );
}

#[test]
fn named_scoped_goroutines_carry_their_names() {
    common::each_procs("named", |_| {
        let label = String::from("worker");
        gort::scope(|s| {
            let h = s.spawn_with(gort::Builder::new().name(label.clone()), || {
                gort::current().and_then(|g| g.name().map(str::to_owned))
            });
            assert_eq!(h.name(), Some("worker"));
            assert_eq!(h.join().unwrap().as_deref(), Some(label.as_str()));
        });
    });
}
