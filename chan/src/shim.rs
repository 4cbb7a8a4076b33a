//! What channels take from outside, switched for loom under `--cfg loom`: the channel lock and
//! parking. Normally a small spin-then-yield lock (below) and `sched`'s park/unpark; under loom,
//! loom's `Mutex` and loom's thread park/unpark, so the loom models in `channel.rs` and `select.rs` explore every
//! interleaving of the channel protocols and report a lost wake-up as a deadlock.

pub(crate) use imp::{lock, park, park_timeout, unparker, Mutex, Unparker};

#[cfg(not(loom))]
mod imp {
    pub(crate) use sched::{park, park_timeout, unparker, Unparker};
    use std::cell::UnsafeCell;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// The channel lock: test-and-test-and-set with bounded exponential spinning, then
    /// yielding the thread. Channel critical sections are a few dozen instructions, never
    /// park and never run user code, so a waiter is better off spinning than sleeping in the
    /// kernel (which is what made a contended `std::sync::Mutex` slow here: futex round trips
    /// under MPMC load). Unlock is a plain release store.
    pub(crate) struct Mutex<T> {
        locked: AtomicBool,
        value: UnsafeCell<T>,
    }

    // SAFETY: the lock gives one thread at a time access to `value`; `T: Send` moves between
    // threads with it.
    unsafe impl<T: Send> Sync for Mutex<T> {}
    // SAFETY: as above.
    unsafe impl<T: Send> Send for Mutex<T> {}

    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Mutex<T> {
            Mutex {
                locked: AtomicBool::new(false),
                value: UnsafeCell::new(value),
            }
        }
    }

    pub(crate) struct Guard<'a, T> {
        m: &'a Mutex<T>,
    }

    impl<T> std::ops::Deref for Guard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // SAFETY: the guard holds the lock.
            unsafe { &*self.m.value.get() }
        }
    }

    impl<T> std::ops::DerefMut for Guard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: the guard holds the lock exclusively.
            unsafe { &mut *self.m.value.get() }
        }
    }

    impl<T> Drop for Guard<'_, T> {
        fn drop(&mut self) {
            self.m.locked.store(false, Ordering::Release);
        }
    }

    pub(crate) fn lock<T>(m: &Mutex<T>) -> Guard<'_, T> {
        if m.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            lock_contended(m);
        }
        Guard { m }
    }

    #[cold]
    fn lock_contended<T>(m: &Mutex<T>) {
        let mut round = 0u32;
        loop {
            while m.locked.load(Ordering::Relaxed) {
                if round < 10 {
                    for _ in 0..(1u32 << round) {
                        std::hint::spin_loop();
                    }
                } else {
                    std::thread::yield_now();
                }
                round = round.saturating_add(1);
            }
            if m.locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::Mutex;
    pub(crate) use loom::thread::park;

    /// Under loom a waiter is a loom thread.
    pub(crate) type Unparker = loom::thread::Thread;

    pub(crate) fn unparker() -> Unparker {
        loom::thread::current()
    }

    /// Timed waits are not modelled: the models use untimed operations only.
    pub(crate) fn park_timeout(_: std::time::Duration) -> bool {
        loom::thread::park();
        true
    }

    pub(crate) fn lock<T>(m: &Mutex<T>) -> loom::sync::MutexGuard<'_, T> {
        m.lock().unwrap()
    }
}
