//! park/unpark under stress, at maxprocs 1, 2 and 4, with exact counts.
//!
//! park/unpark is the one blocking primitive channels, mutexes and the netpoller build on, so
//! its promises are pinned down here between goroutines and plain threads in every pairing:
//! - no lost wake-up: a waiter unparked once wakes, whether the unpark lands before its park,
//!   while it is switching out, or after it is parked;
//! - no spurious return: with exactly one unpark per park, each park returns for its own
//!   unpark (the waiter sees that round's number);
//! - visibility: what the waker wrote before `unpark` (even with relaxed stores) is visible to
//!   the waiter after `park` returns;
//! - no double scheduling when many unparkers race one waiter.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use gort::Unparker;

/// Round trips in the goroutine/goroutine ping-pong.
const ROUND_TRIPS: usize = 100_000;
/// Round trips in the ping-pongs that involve a plain thread (each costs OS wake-ups).
const THREAD_ROUND_TRIPS: usize = 10_000;
/// Goroutines waiting for a shared counter.
const WAITERS: usize = 1000;
/// Rounds of one-unpark-per-park races between goroutines, and in pairings with a plain
/// thread (where each round costs OS wake-ups and, on a loaded machine, time slices).
const RACE_ROUNDS: usize = 10_000;
const THREAD_RACE_ROUNDS: usize = 2_000;
/// Concurrent unparkers of one goroutine, and unparks each.
const UNPARKERS: usize = 4;
const UNPARKS_EACH: usize = 10_000;

/// Where one side of a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Goroutine,
    Thread,
}

/// Starts `f` on `side`; the returned closure joins it (propagating a panic).
fn start<T: Send + 'static>(
    side: Side,
    f: impl FnOnce() -> T + Send + 'static,
) -> Box<dyn FnOnce() -> T> {
    match side {
        Side::Goroutine => {
            let h = gort::spawn(f);
            Box::new(move || h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        }
        Side::Thread => {
            let h = std::thread::spawn(f);
            Box::new(move || h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        }
    }
}

/// Publishes the caller's unparker in `slots[me]` and returns the partner's, once published.
fn exchange_unparkers(slots: &[OnceLock<Unparker>; 2], me: usize) -> Unparker {
    slots[me]
        .set(gort::unparker())
        .expect("each side publishes once");
    common::wait_until("partner's unparker", || slots[1 - me].get().is_some());
    slots[1 - me].get().unwrap().clone()
}

/// Two players take turns `round_trips` times each. Each waits for its turn with
/// `while turn != me { park() }`, makes its move, hands the turn over and unparks the other.
/// `moves` is updated with a plain load and store, so a move made without holding the turn,
/// or not seeing the previous move, would lose a count.
fn ping_pong(sides: [Side; 2], round_trips: usize) {
    let turn = Arc::new(AtomicUsize::new(0));
    let moves = Arc::new(AtomicUsize::new(0));
    let slots = Arc::new([OnceLock::new(), OnceLock::new()]);
    let players: Vec<_> = (0..2)
        .map(|me| {
            let (turn, moves, slots) = (turn.clone(), moves.clone(), slots.clone());
            start(sides[me], move || {
                let other = exchange_unparkers(&slots, me);
                for _ in 0..round_trips {
                    while turn.load(Ordering::Acquire) != me {
                        gort::park();
                    }
                    moves.store(moves.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                    turn.store(1 - me, Ordering::Release);
                    other.unpark();
                }
            })
        })
        .collect();
    for join in players {
        join();
    }
    assert_eq!(moves.load(Ordering::Relaxed), 2 * round_trips);
    assert_eq!(turn.load(Ordering::Relaxed), 0);
}

#[test]
fn ping_pong_between_goroutines() {
    common::each_procs("goroutine ping-pong", |_| {
        ping_pong([Side::Goroutine, Side::Goroutine], ROUND_TRIPS);
    });
}

#[test]
fn ping_pong_between_goroutine_and_thread() {
    // Both directions each round: the thread parks and a goroutine unparks it, then the
    // goroutine parks and the thread unparks it.
    common::each_procs("goroutine/thread ping-pong", |_| {
        ping_pong([Side::Thread, Side::Goroutine], THREAD_ROUND_TRIPS);
        ping_pong([Side::Goroutine, Side::Thread], THREAD_ROUND_TRIPS);
    });
}

#[test]
fn waiters_wake_in_counter_order() {
    common::each_procs("counter waiters", |_| {
        // Waiter i parks until the counter reaches i. The waker raises the counter one step at
        // a time and unparks waiter k, and also waiter k + 1 too early (it must re-check and
        // park again). The slot mutex orders "register, then check" against "raise, then look".
        let counter = Arc::new(AtomicUsize::new(0));
        let slots: Arc<Vec<Mutex<Option<Unparker>>>> =
            Arc::new((0..=WAITERS + 1).map(|_| Mutex::new(None)).collect());
        let waiters: Vec<_> = (1..=WAITERS)
            .map(|i| {
                let (counter, slots) = (counter.clone(), slots.clone());
                gort::spawn(move || {
                    *slots[i].lock().unwrap() = Some(gort::unparker());
                    while counter.load(Ordering::SeqCst) < i {
                        gort::park();
                    }
                    i
                })
            })
            .collect();
        let waker = {
            let (counter, slots) = (counter.clone(), slots.clone());
            gort::spawn(move || {
                for k in 1..=WAITERS {
                    counter.store(k, Ordering::SeqCst);
                    for slot in &slots[k..=k + 1] {
                        if let Some(u) = &*slot.lock().unwrap() {
                            u.unpark();
                        }
                    }
                    gort::yield_now();
                }
            })
        };
        waker.join().unwrap();
        let woken: Vec<usize> = waiters.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(woken, (1..=WAITERS).collect::<Vec<_>>());
    });
}

/// The state of one unpark-races-park pairing.
#[derive(Default)]
struct Race {
    /// The waiter is in round r (set at the start of each round).
    ready: AtomicUsize,
    /// Round r's unpark has been made (used in "before" rounds only).
    sent: AtomicUsize,
    /// Round r's payload, written with a relaxed store before its unpark.
    round: AtomicUsize,
    waiter: OnceLock<Unparker>,
}

/// When, relative to the waiter's park, round r's unpark happens.
#[derive(Debug, Clone, Copy)]
enum When {
    /// Strictly before the park: the waiter parks only after the unpark was made.
    Before,
    /// As soon as the waiter announces it is about to park: races the switch-out.
    During,
    /// After a few yields: usually once the waiter is parked.
    After,
}

fn when(round: usize) -> When {
    match round % 3 {
        0 => When::Before,
        1 => When::During,
        _ => When::After,
    }
}

/// `rounds` rounds of exactly one unpark per park, the waiter on `waiter_side` and the waker
/// on `waker_side`. The waiter calls `park` once per round, with no loop around it: a
/// lost token hangs the test, and a park that returned early sees a stale round number.
fn unpark_races_park(waiter_side: Side, waker_side: Side, rounds: usize) {
    let race = Arc::new(Race::default());
    let waiter = {
        let race = race.clone();
        start(waiter_side, move || {
            race.waiter.set(gort::unparker()).expect("set once");
            for r in 1..=rounds {
                race.ready.store(r, Ordering::SeqCst);
                if let When::Before = when(r) {
                    common::wait_until("the round's unpark", || {
                        race.sent.load(Ordering::SeqCst) == r
                    });
                }
                gort::park();
                let seen = race.round.load(Ordering::Relaxed);
                assert_eq!(
                    seen,
                    r,
                    "park returned without round {r}'s unpark ({:?})",
                    when(r)
                );
            }
        })
    };
    let waker = {
        let race = race.clone();
        start(waker_side, move || {
            common::wait_until("waiter's unparker", || race.waiter.get().is_some());
            let u = race.waiter.get().unwrap();
            for r in 1..=rounds {
                common::wait_until("waiter to reach the round", || {
                    race.ready.load(Ordering::SeqCst) == r
                });
                if let When::After = when(r) {
                    for _ in 0..r % 8 {
                        gort::yield_now();
                    }
                }
                race.round.store(r, Ordering::Relaxed);
                u.unpark();
                race.sent.store(r, Ordering::SeqCst);
            }
        })
    };
    waker();
    waiter();
}

#[test]
fn unpark_before_during_and_after_park() {
    common::each_procs("unpark races park", |_| {
        unpark_races_park(Side::Goroutine, Side::Goroutine, RACE_ROUNDS);
        unpark_races_park(Side::Goroutine, Side::Thread, THREAD_RACE_ROUNDS);
        unpark_races_park(Side::Thread, Side::Goroutine, THREAD_RACE_ROUNDS);
    });
}

#[test]
fn many_unparkers_one_waiter() {
    common::each_procs("many unparkers", |_| {
        // Unparkers race each other and the waiter's parks. A goroutine scheduled twice would
        // corrupt the run; one never scheduled would hang. Every park return consumes at least
        // one unpark, so the waiter parks at most as often as it is unparked.
        const TOTAL: usize = UNPARKERS * UNPARKS_EACH;
        let sent = Arc::new(AtomicUsize::new(0));
        let slot = Arc::new(OnceLock::new());
        let waiter = {
            let (sent, slot) = (sent.clone(), slot.clone());
            gort::spawn(move || {
                slot.set(gort::unparker()).expect("set once");
                let mut parks = 0;
                while sent.load(Ordering::Acquire) < TOTAL {
                    gort::park();
                    parks += 1;
                }
                parks
            })
        };
        let unparkers: Vec<_> = (0..UNPARKERS)
            .map(|i| {
                let (sent, slot) = (sent.clone(), slot.clone());
                // Half on goroutines, half on plain threads.
                let side = if i % 2 == 0 {
                    Side::Goroutine
                } else {
                    Side::Thread
                };
                start(side, move || {
                    common::wait_until("waiter's unparker", || slot.get().is_some());
                    let u: &Unparker = slot.get().unwrap();
                    for k in 0..UNPARKS_EACH {
                        sent.fetch_add(1, Ordering::Release);
                        u.unpark();
                        if k % 64 == 0 {
                            gort::yield_now();
                        }
                    }
                })
            })
            .collect();
        for join in unparkers {
            join();
        }
        let parks = waiter.join().unwrap();
        assert!(parks <= TOTAL, "{parks} park returns for {TOTAL} unparks");
        assert_eq!(sent.load(Ordering::Relaxed), TOTAL);
    });
}
