//! `chan::sync::Semaphore` at maxprocs 1, 2 and 4: never more holders than permits, every
//! acquirer finishes and the permits all come back; waiters are served first come, first
//! served, including multi-permit requests (head of line blocks those behind it).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use chan::sync::Semaphore;
use common::{each_procs, start, wait_until, Side};

/// 50 goroutines and 2 threads × 20 rounds through a 3-permit semaphore, yielding inside:
/// at most 3 inside at once, and all 1,040 passes complete.
#[test]
fn never_exceeds_permits() {
    each_procs("never_exceeds_permits", |_| {
        const PERMITS: usize = 3;
        const ROUNDS: usize = 20;
        let sem = Arc::new(Semaphore::new(PERMITS));
        let inside = Arc::new(AtomicUsize::new(0));
        let max_inside = Arc::new(AtomicUsize::new(0));
        let passes = Arc::new(AtomicUsize::new(0));
        let sides = (0..50)
            .map(|_| Side::Goroutine)
            .chain([Side::Thread, Side::Thread]);
        let joins: Vec<_> = sides
            .map(|side| {
                let (sem, inside, max_inside, passes) = (
                    sem.clone(),
                    inside.clone(),
                    max_inside.clone(),
                    passes.clone(),
                );
                start(side, move || {
                    for _ in 0..ROUNDS {
                        sem.acquire();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max_inside.fetch_max(now, Ordering::SeqCst);
                        sched::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        passes.fetch_add(1, Ordering::Relaxed);
                        sem.release();
                    }
                })
            })
            .collect();
        for j in joins {
            j();
        }
        let max = max_inside.load(Ordering::SeqCst);
        assert!((1..=PERMITS).contains(&max), "{max} holders at once");
        assert_eq!(passes.load(Ordering::Relaxed), 52 * ROUNDS);
        assert_eq!(sem.available(), PERMITS);
    });
}

/// With no permits: A asks for 2, then B for 1. One released permit satisfies neither (B is
/// behind A, and `try_acquire` refuses while anyone waits); a second lets A in; a third, B.
#[test]
fn fifo_with_multi_permit_requests() {
    each_procs("fifo_with_multi_permit_requests", |_| {
        let sem = Arc::new(Semaphore::new(0));
        let a_done = Arc::new(AtomicBool::new(false));
        let b_done = Arc::new(AtomicBool::new(false));
        let a = {
            let (sem, done) = (sem.clone(), a_done.clone());
            start(Side::Goroutine, move || {
                sem.acquire_many(2);
                done.store(true, Ordering::SeqCst);
            })
        };
        // One permit released: `available` reads 0 exactly when A is queued (permits held
        // back for the queue), 1 before.
        sem.release();
        wait_until("A queued", || sem.available() == 0);
        assert!(!sem.try_acquire(), "try_acquire overtook a queued waiter");
        let b = {
            let (sem, done) = (sem.clone(), b_done.clone());
            start(Side::Thread, move || {
                sem.acquire();
                done.store(true, Ordering::SeqCst);
            })
        };
        for _ in 0..100 {
            sched::yield_now();
        }
        assert!(!a_done.load(Ordering::SeqCst) && !b_done.load(Ordering::SeqCst));
        sem.release();
        wait_until("A served", || a_done.load(Ordering::SeqCst));
        assert!(!b_done.load(Ordering::SeqCst), "B overtook A");
        sem.release();
        a();
        b();
        assert!(b_done.load(Ordering::SeqCst));
        assert_eq!(sem.available(), 0);
    });
}

/// `try_acquire_many` and `release_many` move permits in bulk.
#[test]
fn bulk_permits() {
    each_procs("bulk_permits", |_| {
        let sem = Semaphore::new(4);
        assert!(sem.try_acquire_many(3));
        assert!(!sem.try_acquire_many(2));
        sem.release_many(3);
        assert_eq!(sem.available(), 4);
        sem.acquire_many(4);
        assert!(!sem.try_acquire());
        sem.release_many(4);
        assert_eq!(sem.available(), 4);
    });
}
