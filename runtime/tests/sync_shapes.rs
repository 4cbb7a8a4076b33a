//! The shapes of `gort::sync` that Go users reach for (issue 13), at maxprocs 1, 2 and 4,
//! each run bounded in time by the harness: a `Cond` that holds its lock, waited on under an
//! `RwMutex`'s read lock by many goroutines and a plain thread while a writer changes the
//! state and broadcasts; code generic over `Locker`; a `Pool` with a `new` function shared by
//! scoped goroutines.

mod common;

use std::ops::DerefMut;
use std::sync::atomic::{AtomicUsize, Ordering};

use gort::sync::{Cond, Locker, Mutex, Pool, RwMutex};

/// Goroutines that wait under read locks.
const READERS: usize = 16;
/// Generations the writer publishes.
const GENERATIONS: u32 = 20;

#[test]
fn readers_wait_under_read_locks_while_a_writer_broadcasts() {
    common::each_procs("read-locker cond", |_| read_locker_cond());
    common::each_procs_in_goroutine("read-locker cond from a goroutine", |_| read_locker_cond());
}

/// Every reader (16 goroutines and one plain thread) waits for each generation in turn under
/// a read lock. The writer publishes the next one only once every reader waits (so each sees
/// every generation), under the write lock, then broadcasts.
fn read_locker_cond() {
    let state = RwMutex::new(0u32);
    let cond = Cond::with_lock(state.read_locker());
    let seen = AtomicUsize::new(0);
    let reader = || {
        for generation in 1..=GENERATIONS {
            let mut now = cond.lock();
            now.wait_while(|now| *now < generation);
            assert_eq!(*now, generation, "a generation was skipped");
            seen.fetch_add(1, Ordering::SeqCst);
        }
    };
    std::thread::scope(|threads| {
        gort::scope(|s| {
            for _ in 0..READERS {
                s.spawn(reader);
            }
            threads.spawn(reader);
            for generation in 1..=GENERATIONS {
                common::wait_until("every reader waits", || cond.queue_len() == READERS + 1);
                *state.write() = generation;
                cond.broadcast();
            }
        });
    });
    assert_eq!(
        seen.load(Ordering::SeqCst),
        (READERS + 1) * GENERATIONS as usize
    );
    assert_eq!(cond.queue_len(), 0);
    assert!(state.try_write().is_some(), "a read lock was left behind");
}

#[test]
fn one_function_takes_any_locker() {
    common::each_procs("locker", |_| {
        let m = Mutex::new(0u64);
        let rw = RwMutex::new(0u64);
        gort::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| add_many(&m));
                s.spawn(|| add_many(&rw)); // the write lock
            }
        });
        assert_eq!(*m.lock(), 8 * 1_000);
        assert_eq!(*rw.read(), 8 * 1_000);
    });
}

/// Adds 1,000 ones to the number behind `lock`, one lock at a time.
fn add_many<L>(lock: &L)
where
    L: Locker<Data = u64>,
    for<'a> L::Guard<'a>: DerefMut,
{
    for _ in 0..1_000 {
        *lock.lock() += 1;
    }
}

#[test]
fn a_cond_with_its_mutex_hands_off_between_goroutines() {
    common::each_procs("cond with mutex", |_| {
        const ITEMS: u64 = 1_000;
        let queue = Cond::with_lock(Mutex::new(Vec::new()));
        let total = gort::scope(|s| {
            let consumer = s.spawn(|| {
                let mut total = 0;
                let mut got = 0;
                while got < ITEMS {
                    let mut items = queue.lock();
                    items.wait_while(|items| items.is_empty());
                    got += items.len() as u64;
                    total += items.drain(..).sum::<u64>();
                }
                total
            });
            for i in 1..=ITEMS {
                queue.lock().push(i);
                queue.signal();
            }
            consumer.join().unwrap()
        });
        assert_eq!(total, ITEMS * (ITEMS + 1) / 2);
    });
}

#[test]
fn a_pool_makes_values_only_on_a_miss() {
    common::each_procs("pool with new", |_| {
        let made = AtomicUsize::new(0);
        let pool = Pool::with_new(|| {
            made.fetch_add(1, Ordering::SeqCst);
            Vec::<u8>::with_capacity(1024)
        });
        gort::scope(|s| {
            for _ in 0..64 {
                s.spawn(|| {
                    for _ in 0..100 {
                        let mut buf = pool.get();
                        assert!(buf.is_empty() && buf.capacity() >= 1024);
                        buf.push(1);
                        buf.clear();
                        pool.put(buf);
                    }
                });
            }
        });
        assert!(made.load(Ordering::SeqCst) >= 1, "the first get makes one");
        // Alone on the pool: a value put back is the next one got, and nothing is made.
        let buf = pool.get();
        let before = made.load(Ordering::SeqCst);
        pool.put(buf);
        drop(pool.get());
        assert_eq!(made.load(Ordering::SeqCst), before, "made on a hit");
    });
}
