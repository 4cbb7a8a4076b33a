//! Spawning and joining, at maxprocs 1, 2 and 4.
//!
//! Pins down the contract of `spawn`/`join`/`run` that everything else builds on: every
//! goroutine's result comes back to its own handle, intact and exactly once (sums and sets
//! checked exactly, also for results that own heap memory or are large); a goroutine can
//! spawn and join from anywhere (plain thread, goroutine, deep trees of goroutines); `run`
//! hands back the main goroutine's value; names and stack sizes given to `Builder` are
//! honoured; goroutine ids are unique; and `num_goroutine` counts exactly the goroutines that
//! are alive, returning to its starting value once they are joined.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Goroutines per "many" scenario.
const MANY: u64 = 10_000;
/// Depth of the binary spawn tree (2^(depth+1) - 1 goroutines).
const TREE_DEPTH: u32 = 10;
/// Goroutines held parked while `num_goroutine` is checked.
const PARKED: usize = 100;
/// Spawn/join rounds checking `num_goroutine` after each join. A join from a plain thread
/// costs an OS wake-up; an exit counted after the joiner's wake-up shows within a few rounds.
const ROUNDS: usize = 2_000;

/// A distinct value per goroutine.
fn value(i: u64) -> u64 {
    3 * i + 1
}

fn expected_sum(n: u64) -> u64 {
    (0..n).map(value).sum()
}

#[test]
fn values_come_back_to_their_handles() {
    common::each_procs("values", |_| {
        // From a plain thread: every spawn goes to the global queue.
        let handles: Vec<_> = (0..MANY).map(|i| gort::spawn(move || value(i))).collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, expected_sum(MANY));

        // From a goroutine: to its processor's queue, more than it holds (the rest waits in
        // its spill, `processor.rs`); joined in reverse order.
        let sum = gort::run(|| {
            let handles: Vec<_> = (0..MANY).map(|i| gort::go!(move || value(i))).collect();
            handles
                .into_iter()
                .rev()
                .map(|h| h.join().unwrap())
                .sum::<u64>()
        });
        assert_eq!(sum, expected_sum(MANY));

        // Results that own memory, and large results, are moved out intact.
        let strings: Vec<_> = (0..1000u64)
            .map(|i| gort::spawn(move || i.to_string()))
            .collect();
        for (i, h) in strings.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), i.to_string());
        }
        let big: Vec<_> = (0..100u64).map(|i| gort::spawn(move || [i; 512])).collect();
        for (i, h) in big.into_iter().enumerate() {
            assert!(h.join().unwrap().iter().all(|&x| x == i as u64));
        }
    });
}

#[test]
fn handles_can_be_joined_by_another_goroutine() {
    common::each_procs("join elsewhere", |_| {
        // One goroutine spawns, another joins: handles are Send.
        let handles: Vec<_> = (0..MANY).map(|i| gort::spawn(move || value(i))).collect();
        let joiner =
            gort::spawn(move || handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>());
        assert_eq!(joiner.join().unwrap(), expected_sum(MANY));
    });
}

/// Spawns both children, joins them, and returns the size of the subtree rooted here.
fn subtree(depth: u32) -> u64 {
    if depth == 0 {
        return 1;
    }
    let left = gort::spawn(move || subtree(depth - 1));
    let right = gort::spawn(move || subtree(depth - 1));
    1 + left.join().unwrap() + right.join().unwrap()
}

#[test]
fn nested_spawn_tree() {
    common::each_procs("spawn tree", |_| {
        let nodes = (1 << (TREE_DEPTH + 1)) - 1;
        assert_eq!(gort::run(|| subtree(TREE_DEPTH)), nodes);
        assert_eq!(gort::spawn(|| subtree(TREE_DEPTH)).join().unwrap(), nodes);
    });
}

#[test]
fn run_returns_the_main_goroutines_value() {
    common::each_procs("run", |_| {
        assert_eq!(gort::run(|| 42), 42);
        assert_eq!(gort::run(|| String::from("done")), "done");
        let main = gort::run(gort::current).expect("run's closure is a goroutine");
        assert_eq!(main.name(), Some("main"));
        // `run` from inside a goroutine is a spawn and a join.
        assert_eq!(gort::run(|| gort::run(|| 7) + 1), 8);
    });
}

#[test]
fn identity_inside_and_outside_goroutines() {
    common::each_procs("identity", |_| {
        // A plain thread is no goroutine and no M.
        assert!(gort::current().is_none());
        assert_eq!(gort::current_id(), None);
        assert_eq!(gort::current_machine_id(), None);

        let named = gort::Builder::new()
            .name("worker-7")
            .spawn(|| (gort::current(), gort::current_machine_id()));
        assert_eq!(named.name(), Some("worker-7"));
        let id = named.id();
        let (me, machine) = named.join().unwrap();
        let me = me.expect("a goroutine sees itself");
        assert_eq!(me.name(), Some("worker-7"));
        assert_eq!(me.id(), id);
        assert!(machine.is_some());

        let unnamed = gort::spawn(gort::current);
        assert_eq!(unnamed.name(), None);
        assert_eq!(unnamed.join().unwrap().unwrap().name(), None);
    });
}

/// Uses about 512 KiB of stack: twice the default stack size.
fn deep(n: u32) -> u64 {
    let frame = std::hint::black_box([n as u8; 4096]);
    if n == 0 {
        return u64::from(frame[0]);
    }
    deep(n - 1) + u64::from(frame[4095])
}

#[test]
fn builder_stack_size_is_honoured() {
    common::each_procs("stack size", |_| {
        let expected: u64 = (0..=128).sum();
        let h = gort::Builder::new()
            .name("deep")
            .stack_size(4 << 20)
            .spawn(|| deep(128));
        assert_eq!(h.join().unwrap(), expected);
    });
}

#[test]
fn goroutine_ids_are_unique() {
    common::each_procs("unique ids", |_| {
        // Four spawners at once, so the per-processor id caches are exercised concurrently.
        const SPAWNERS: u64 = 4;
        let spawners: Vec<_> = (0..SPAWNERS)
            .map(|_| {
                gort::spawn(|| {
                    let me = gort::current_id().unwrap();
                    let children: Vec<_> = (0..MANY / SPAWNERS)
                        .map(|_| gort::spawn(|| gort::current_id().unwrap()))
                        .collect();
                    let mut ids = vec![me];
                    for h in children {
                        let handle_id = h.id();
                        let id = h.join().unwrap();
                        assert_eq!(id, handle_id, "JoinHandle::id is the goroutine's id");
                        ids.push(id);
                    }
                    ids
                })
            })
            .collect();
        let mut all = HashSet::new();
        for h in spawners {
            for id in h.join().unwrap() {
                assert!(all.insert(id), "goroutine id {id} given out twice");
            }
        }
        assert_eq!(all.len() as u64, MANY + SPAWNERS);
    });
}

#[test]
fn num_goroutine_counts_live_goroutines() {
    common::each_procs("num_goroutine", |_| {
        let before = gort::num_goroutine();
        let release = Arc::new(AtomicBool::new(false));
        let parked = Arc::new(AtomicUsize::new(0));
        let waiters = Arc::new(Mutex::new(Vec::new()));
        let handles: Vec<_> = (0..PARKED)
            .map(|_| {
                let (release, parked, waiters) = (release.clone(), parked.clone(), waiters.clone());
                gort::spawn(move || {
                    waiters.lock().unwrap().push(gort::unparker());
                    parked.fetch_add(1, Ordering::SeqCst);
                    while !release.load(Ordering::SeqCst) {
                        gort::park();
                    }
                })
            })
            .collect();
        common::wait_until("all goroutines registered", || {
            parked.load(Ordering::SeqCst) == PARKED
        });
        assert_eq!(gort::num_goroutine(), before + PARKED);

        release.store(true, Ordering::SeqCst);
        for u in waiters.lock().unwrap().iter() {
            u.unpark();
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(
            gort::num_goroutine(),
            before,
            "joined goroutines are still counted"
        );
    });
}

#[test]
fn num_goroutine_excludes_a_goroutine_once_joined() {
    // Minimal form of the check above: after `join` returns, the goroutine has ended, so it
    // must no longer be counted. Many rounds, joined from a plain thread and from a goroutine.
    common::each_procs("num_goroutine after join", |_| {
        let before = gort::num_goroutine();
        for round in 0..ROUNDS {
            gort::spawn(|| ()).join().unwrap();
            assert_eq!(
                gort::num_goroutine(),
                before,
                "plain-thread join, round {round}"
            );
        }
        let leftover = gort::run(move || {
            let mine = gort::num_goroutine();
            for round in 0..ROUNDS {
                gort::spawn(|| ()).join().unwrap();
                let now = gort::num_goroutine();
                if now != mine {
                    return Some((round, now - mine));
                }
            }
            None
        });
        assert_eq!(leftover, None, "goroutine join: (round, still counted)");
    });
}

/// Counts its drops: a result must be dropped exactly once, whoever ends up owning it.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn every_result_is_dropped_exactly_once() {
    // A goroutine's result lives in a packet shared with its handle; whichever of the two is
    // last frees it. Race the three endings against completion: joined, detached at once
    // (usually before the goroutine ends), detached after a yield (often after it ends).
    common::each_procs("result drops", |_| {
        const N: usize = 20_000;
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let joined = gort::run(move || {
            let mut joined = 0;
            let mut late = Vec::new();
            for i in 0..N {
                let d = d.clone();
                let h = gort::go!(move || Counted(d));
                match i % 3 {
                    0 => joined += usize::from(h.join().is_ok()),
                    1 => drop(h),
                    _ => late.push(h),
                }
                if i % 64 == 0 {
                    gort::yield_now();
                    late.clear();
                }
            }
            drop(late);
            joined
        });
        assert_eq!(joined, N.div_ceil(3));
        common::wait_until("every detached goroutine ended", || {
            drops.load(Ordering::Relaxed) >= N
        });
        assert_eq!(drops.load(Ordering::Relaxed), N, "a result dropped twice");
    });
}
