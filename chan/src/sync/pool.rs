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
//! Go's `New` field is the type parameter `N`: `Pool<T>` (`N` = `()`) has none, and its `get`
//! returns `Option<T>`; [`Pool::with_new`] makes a `Pool<T, N>` whose `get` calls `N` on a miss
//! and returns a `T`. `N` is a type, not a boxed closure, so a pool with `new` is still `const`
//! (a `static`, with a plain `fn` or a closure that captures nothing).
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
/// `Pool<T>` has no function to make values: its [`get`](Pool::get) returns `Option<T>`.
/// [`Pool::with_new`] gives one (Go's `sync.Pool{New: f}`), making a `Pool<T, N>` whose
/// `get` returns a `T`, made by `N` when the pool has none.
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
pub struct Pool<T, N = ()> {
    shards: OnceLock<Box<[Shard<T>]>>,
    capacity: usize,
    /// Makes a value on a miss (`()`: none).
    new: N,
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
            new: (),
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
        self.take()
    }
}

impl<T, N: Fn() -> T> Pool<T, N> {
    /// An empty pool whose `get` calls `new` when it has no value to give (Go's
    /// `sync.Pool{New: new}`), keeping up to 64 values per processor; `const`, usable in a
    /// `static` (then `N` is a `fn() -> T`).
    ///
    /// ```
    /// use chan::sync::Pool;
    ///
    /// static BUFFERS: Pool<Vec<u8>, fn() -> Vec<u8>> =
    ///     Pool::with_new(|| Vec::with_capacity(4096));
    /// let mut buf = BUFFERS.get(); // empty pool: made by `new`
    /// buf.extend_from_slice(b"hello");
    /// buf.clear();
    /// BUFFERS.put(buf);
    /// assert!(BUFFERS.get().capacity() >= 4096);
    /// ```
    pub const fn with_new(new: N) -> Pool<T, N> {
        Pool {
            shards: OnceLock::new(),
            capacity: DEFAULT_CAPACITY,
            new,
        }
    }

    /// Like [`with_new`](Pool::with_new), keeping up to `per_processor` values per processor
    /// (and as many for plain threads).
    ///
    /// ```
    /// let pool = chan::sync::Pool::with_new_and_capacity(1, String::new);
    /// pool.put(String::from("kept"));
    /// assert_eq!(pool.get(), "kept");
    /// assert_eq!(pool.get(), ""); // empty: made by `new`
    /// ```
    pub const fn with_new_and_capacity(per_processor: usize, new: N) -> Pool<T, N> {
        Pool {
            shards: OnceLock::new(),
            capacity: per_processor,
            new,
        }
    }

    /// Takes a value from the pool (the caller's processor's shard first, then the others),
    /// or makes one with the pool's `new` if it has none (Go's `Get` with `New` set).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let made = AtomicUsize::new(0);
    /// let pool = chan::sync::Pool::with_new(|| made.fetch_add(1, Ordering::Relaxed));
    /// assert_eq!(pool.get(), 0); // made
    /// pool.put(10);
    /// assert_eq!(pool.get(), 10); // reused
    /// assert_eq!(made.load(Ordering::Relaxed), 1);
    /// ```
    pub fn get(&self) -> T {
        self.take().unwrap_or_else(&self.new)
    }
}

impl<T, N> Pool<T, N> {
    /// Takes a value from the pool, or makes one with `new` (Go's `Get` with `New` set, for a
    /// pool without a `new` of its own, or to make this one differently).
    ///
    /// ```
    /// let pool = chan::sync::Pool::new();
    /// assert_eq!(pool.get_or(|| 5), 5);
    /// ```
    pub fn get_or(&self, new: impl FnOnce() -> T) -> T {
        self.take().unwrap_or_else(new)
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

    /// A value from the home shard, else from another; `None` if none (or all busy).
    fn take(&self) -> Option<T> {
        let shards = self.shards();
        let home = home(shards.len());
        (0..shards.len()).find_map(|i| shards[(home + i) % shards.len()].pop())
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

impl<T, N> std::fmt::Debug for Pool<T, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn new_runs_only_on_a_miss() {
        let made = AtomicUsize::new(0);
        let pool = Pool::with_new(|| {
            made.fetch_add(1, Ordering::Relaxed);
            Vec::<u8>::with_capacity(16)
        });
        let a = pool.get();
        assert_eq!(made.load(Ordering::Relaxed), 1);
        pool.put(a);
        let b = pool.get();
        assert_eq!(made.load(Ordering::Relaxed), 1, "reused, not made");
        assert!(b.capacity() >= 16);
        let c = pool.get();
        assert_eq!(made.load(Ordering::Relaxed), 2, "empty again: made");
        drop((b, c));
    }

    #[test]
    fn a_static_pool_takes_a_plain_fn() {
        static NAMES: Pool<String, fn() -> String> = Pool::with_new(String::new);
        NAMES.put(String::from("x"));
        assert_eq!(NAMES.get(), "x");
        assert_eq!(NAMES.get(), "");
    }

    #[test]
    fn goroutines_share_a_pool_with_new() {
        testkit::bounded("pool with new", goroutines_share_a_pool);
    }

    fn goroutines_share_a_pool() {
        const GOROUTINES: usize = 32;
        let made = Arc::new(AtomicUsize::new(0));
        let m = made.clone();
        let pool = Arc::new(Pool::with_new(move || {
            m.fetch_add(1, Ordering::Relaxed);
            0u64
        }));
        let handles: Vec<_> = (0..GOROUTINES)
            .map(|_| {
                let pool = pool.clone();
                sched::spawn(move || {
                    for _ in 0..100 {
                        let v = pool.get();
                        pool.put(v + 1);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // At least one value was made, and at most one per `get`.
        let made = made.load(Ordering::Relaxed);
        assert!((1..=GOROUTINES * 100).contains(&made), "made {made}");
    }
}
