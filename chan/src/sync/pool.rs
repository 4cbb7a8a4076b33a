//! [`Pool`]: a cache of reusable values with one shard per processor, in the spirit of Go's
//! `sync.Pool` (per-P private and shared lists, stealing from other Ps on a miss).
//!
//! Layout: `shards` is allocated on first use with `maxprocs` + 1 entries, each on its own
//! cache line. A goroutine uses shard `processor id % maxprocs_at_first_use`; plain threads
//! share the last one. `get` tries the home shard, then the others (Go's `getSlow`); `put`
//! tries the home shard, then the others, and drops the value when every shard is full or
//! busy. Processors added later share shards (more contention, same behaviour).
//!
//! Invariants: shard locks are only ever *tried* (`try_lock`): nobody blocks on one, nobody
//! holds two, no user code runs under one (a value is dropped after its shard is unlocked).
//! The processor id is only a hint: a goroutine may move between reading it and using the
//! shard, which costs locality, never correctness.
//!
//! Differences from Go: with no garbage collector to empty it, a pool keeps at most
//! `capacity` values per shard (excess `put`s drop the value, as Go's pool may drop anything
//! at any time), and [`Pool::clear`] empties it on demand.

use std::sync::OnceLock;

use super::shim::{Lock, LockGuard};

/// Values a shard keeps by default.
const DEFAULT_CAPACITY: usize = 64;

/// A set of spare values that goroutines can take ([`get`](Pool::get)) and give back
/// ([`put`](Pool::put)) without contending with goroutines on other processors, like Go's
/// `sync.Pool`. Good for buffers that are costly to allocate and used briefly.
///
/// A pool may drop a value at any time (when a shard is full or busy) and hands back values
/// in no particular order: never rely on getting a particular one, or any.
///
/// ```
/// use chan::sync::Pool;
///
/// static BUFFERS: Pool<Vec<u8>> = Pool::new();
/// let mut buf = BUFFERS.get_or(|| Vec::with_capacity(4096));
/// buf.extend_from_slice(b"hello");
/// buf.clear();
/// BUFFERS.put(buf);
/// assert!(BUFFERS.get().is_some_and(|b| b.capacity() >= 4096));
/// ```
pub struct Pool<T> {
    shards: OnceLock<Box<[Shard<T>]>>,
    capacity: usize,
}

/// One processor's cache, alone on its cache line(s).
#[repr(align(128))]
struct Shard<T> {
    items: Lock<Vec<T>>,
}

impl<T> Pool<T> {
    /// An empty pool keeping up to 64 values per processor; `const`, usable in a `static`.
    ///
    /// ```
    /// let pool: chan::sync::Pool<String> = chan::sync::Pool::new();
    /// assert!(pool.get().is_none());
    /// ```
    pub const fn new() -> Pool<T> {
        Pool::with_capacity(DEFAULT_CAPACITY)
    }

    /// An empty pool keeping up to `per_processor` values per processor (and as many for
    /// plain threads).
    ///
    /// ```
    /// let pool = chan::sync::Pool::with_capacity(1);
    /// pool.put(1);
    /// pool.put(2); // the home shard is full: dropped (or kept in another shard)
    /// assert!(pool.get().is_some());
    /// ```
    pub const fn with_capacity(per_processor: usize) -> Pool<T> {
        Pool {
            shards: OnceLock::new(),
            capacity: per_processor,
        }
    }

    /// Takes a value from the pool: from the caller's processor's shard if it has one, else
    /// from another's. `None` if the pool is empty (or every shard is busy).
    ///
    /// ```
    /// let pool = chan::sync::Pool::new();
    /// pool.put(7);
    /// assert_eq!(pool.get(), Some(7));
    /// assert_eq!(pool.get(), None);
    /// ```
    pub fn get(&self) -> Option<T> {
        let shards = self.shards();
        let home = home(shards.len());
        (0..shards.len()).find_map(|i| shards[(home + i) % shards.len()].pop())
    }

    /// Takes a value from the pool, or makes one with `new` (Go's `Get` with `New` set).
    ///
    /// ```
    /// let pool = chan::sync::Pool::new();
    /// assert_eq!(pool.get_or(|| 5), 5);
    /// ```
    pub fn get_or(&self, new: impl FnOnce() -> T) -> T {
        self.get().unwrap_or_else(new)
    }

    /// Gives a value to the pool: to the caller's processor's shard, else to another with
    /// room. Dropped if every shard is full or busy.
    ///
    /// ```
    /// let pool = chan::sync::Pool::new();
    /// pool.put(String::from("reuse me"));
    /// assert_eq!(pool.get().as_deref(), Some("reuse me"));
    /// ```
    pub fn put(&self, value: T) {
        let shards = self.shards();
        let home = home(shards.len());
        let mut value = Some(value);
        for i in 0..shards.len() {
            let shard = &shards[(home + i) % shards.len()];
            if shard.push(&mut value, self.capacity) {
                return;
            }
        }
        drop(value);
    }

    /// Drops every value the pool holds (what Go's garbage collector does to a pool). Values
    /// in shards that are busy at that moment are kept.
    ///
    /// ```
    /// let pool = chan::sync::Pool::new();
    /// pool.put(1);
    /// pool.clear();
    /// assert_eq!(pool.get(), None);
    /// ```
    pub fn clear(&self) {
        for shard in self.shards().iter() {
            let taken = shard
                .try_lock()
                .map(|mut items| std::mem::take(&mut *items));
            drop(taken);
        }
    }

    fn shards(&self) -> &[Shard<T>] {
        self.shards.get_or_init(|| {
            (0..=sched::maxprocs())
                .map(|_| Shard {
                    items: Lock::new(Vec::new()),
                })
                .collect()
        })
    }
}

/// The caller's shard: its processor's, or the last one (shared by plain threads).
fn home(nshards: usize) -> usize {
    match sched::current_processor_id() {
        Some(p) => p % (nshards - 1),
        None => nshards - 1,
    }
}

impl<T> Shard<T> {
    fn try_lock(&self) -> Option<LockGuard<'_, Vec<T>>> {
        self.items.try_lock()
    }

    fn pop(&self) -> Option<T> {
        self.try_lock()?.pop()
    }

    /// Moves `value` in if the shard is free and has room; true if it did.
    fn push(&self, value: &mut Option<T>, capacity: usize) -> bool {
        let Some(mut items) = self.try_lock() else {
            return false;
        };
        if items.len() >= capacity {
            return false;
        }
        items.extend(value.take());
        true
    }
}

impl<T> Default for Pool<T> {
    fn default() -> Pool<T> {
        Pool::new()
    }
}

impl<T> std::fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}
