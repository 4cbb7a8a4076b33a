//! `chan::sync::Pool` at maxprocs 1, 2 and 4: a value put is the value got back (goroutines
//! and plain threads), concurrent users reuse values instead of making new ones, and the
//! per-shard capacity bounds what a pool keeps.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chan::sync::Pool;
use common::{each_procs, start, Side};

/// put then get on the same goroutine (same processor, no yield in between) and on a plain
/// thread returns the very value put.
#[test]
fn round_trip() {
    each_procs("round_trip", |_| {
        let pool = Arc::new(Pool::new());
        for side in [Side::Goroutine, Side::Thread] {
            let pool = pool.clone();
            start(side, move || {
                let buf: Vec<u8> = Vec::with_capacity(1000);
                let ptr = buf.as_ptr();
                pool.put(buf);
                let back = pool.get().expect("value put is there");
                assert_eq!(back.as_ptr(), ptr, "got a different value");
                assert!(pool.get().is_none());
            })();
        }
    });
}

/// 8 goroutines × 1000 get_or/put cycles: values are reused (far fewer made than taken), and
/// every value taken is one that was made.
#[test]
fn concurrent_reuse() {
    each_procs("concurrent_reuse", |_| {
        const USERS: usize = 8;
        const CYCLES: usize = 1000;
        let pool = Arc::new(Pool::new());
        let made = Arc::new(AtomicUsize::new(0));
        let joins: Vec<_> = (0..USERS)
            .map(|_| {
                let (pool, made) = (pool.clone(), made.clone());
                start(Side::Goroutine, move || {
                    for i in 0..CYCLES {
                        let v = pool.get_or(|| made.fetch_add(1, Ordering::Relaxed));
                        if i % 100 == 0 {
                            sched::yield_now();
                        }
                        pool.put(v);
                    }
                })
            })
            .collect();
        for j in joins {
            j();
        }
        let made = made.load(Ordering::Relaxed);
        assert!(made <= USERS * 4, "{made} values made for {USERS} users");
        let mut seen = Vec::new();
        while let Some(v) = pool.get() {
            assert!(v < made, "a value nobody made");
            seen.push(v);
        }
        seen.sort_unstable();
        seen.dedup();
        assert!(!seen.is_empty() && seen.len() <= made);
    });
}

/// A pool of per-shard capacity 2 keeps at most 2 per shard (maxprocs + 1 shards); `clear`
/// empties it.
#[test]
fn capacity_bounds_the_pool() {
    each_procs("capacity_bounds_the_pool", |procs| {
        let pool = Pool::with_capacity(2);
        for i in 0..100 {
            pool.put(i);
        }
        let mut kept = 0;
        while pool.get().is_some() {
            kept += 1;
        }
        assert!(kept > 0 && kept <= 2 * (procs + 1), "kept {kept}");
        pool.put(1);
        pool.clear();
        assert!(pool.get().is_none());
    });
}
