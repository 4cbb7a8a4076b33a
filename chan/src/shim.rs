//! The channel lock and parking, switched for loom under `--cfg loom`. Normally the lock word
//! ([`RawLock`]) is a small spin-then-yield lock and parking is `sched`'s park/unpark; under
//! loom they are loom's `Mutex` and a token over loom's thread park (the same contract as
//! `sched`'s park state), so the loom models explore every interleaving of the channel and
//! `sync` protocols (including a select that holds several channel locks at once) and report a
//! lost wake-up as a deadlock.
//! [`Mutex`] (a value behind a `RawLock`) and its guard are the same code in both.

pub(crate) use imp::{park_for, park_timeout_for, preempt_point, stack_compaction, unparker};
pub use imp::{RawLock, Unparker};

/// True when a drop guard runs because loom is tearing a model down (it found a deadlock and
/// unwinds the parked threads): there is no execution left to withdraw a waiter from, and
/// touching loom's lock would abort. Always false outside loom.
pub(crate) fn model_torn_down() -> bool {
    cfg!(loom) && std::thread::panicking()
}

use std::cell::UnsafeCell;

/// A value behind a [`RawLock`]: the channel state.
pub(crate) struct Mutex<T> {
    raw: RawLock,
    value: UnsafeCell<T>,
}

// SAFETY: the lock gives one thread at a time access to `value`; `T: Send` moves between
// threads with it.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Mutex<T> {
        Mutex {
            raw: RawLock::new(),
            value: UnsafeCell::new(value),
        }
    }

    /// The lock alone, to take with others (a select with `default`).
    pub(crate) fn raw(&self) -> &RawLock {
        &self.raw
    }

    /// The protected value, while the caller holds the lock through [`Mutex::raw`].
    ///
    /// # Safety
    /// The caller holds the lock, and keeps at most one reference from this call alive at a
    /// time, none past the unlock.
    #[allow(clippy::mut_from_ref)] // the lock is what makes the reference unique
    pub(crate) unsafe fn data_locked(&self) -> &mut T {
        // SAFETY: the caller holds the lock and has no other reference (contract above).
        unsafe { &mut *self.value.get() }
    }
}

/// The channel lock held; unlocks on drop (also during unwinding).
pub(crate) struct Guard<'a, T> {
    m: &'a Mutex<T>,
}

impl<T> std::ops::Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock; the shared borrow of the guard bounds this one.
        unsafe { self.m.data_locked() }
    }
}

impl<T> std::ops::DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock; the unique borrow of the guard bounds this one.
        unsafe { self.m.data_locked() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard took the lock in `lock`; its references ended with its borrows.
        unsafe { self.m.raw.unlock() };
    }
}

/// Takes `m`'s lock for the life of the returned guard.
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> Guard<'_, T> {
    m.raw.lock();
    Guard { m }
}

#[cfg(not(loom))]
mod imp {
    use sched::debug::WaitReason;
    pub(crate) use sched::unparker;
    pub use sched::Unparker;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// `sched::preempt_point`: every channel operation offers to yield if the runtime asked.
    #[inline]
    pub(crate) fn preempt_point() {
        sched::preempt_point();
    }

    /// `sched::stack_compaction`: parked stacks may be compacted, so a single operation's
    /// waiter goes to the heap (`channel.rs`, `Blocked`).
    #[inline]
    pub(crate) fn stack_compaction() -> bool {
        sched::stack_compaction()
    }

    /// `sched::park_for`: parks, telling the goroutine dump why; behind the test-only fault
    /// hook.
    pub(crate) fn park_for(reason: WaitReason) {
        super::fault::check();
        sched::park_for(reason, None);
    }

    /// `sched::park_timeout_for`, behind the test-only fault hook.
    pub(crate) fn park_timeout_for(timeout: std::time::Duration, reason: WaitReason) -> bool {
        super::fault::check();
        sched::park_timeout_for(timeout, reason, None)
    }

    /// The lock word of a channel: test-and-test-and-set with bounded exponential spinning,
    /// then yielding the thread. Channel critical sections are a few dozen instructions, never
    /// park and never run user code, so a waiter is better off spinning than sleeping in the
    /// kernel (which is what made a contended `std::sync::Mutex` slow here: futex round trips
    /// under MPMC load). Unlock is a plain release store.
    ///
    /// [`Mutex`](super::Mutex) pairs it with the data it guards. On its own it is what a select
    /// with `default` takes for each of its channels, in address order, before it polls its
    /// cases (Go's `sellock` / `selunlock`).
    #[doc(hidden)]
    pub struct RawLock {
        locked: AtomicBool,
    }

    impl RawLock {
        pub(crate) fn new() -> RawLock {
            RawLock {
                locked: AtomicBool::new(false),
            }
        }

        /// Takes the lock; the caller must call [`RawLock::unlock`] once.
        #[inline]
        pub(crate) fn lock(&self) {
            if self
                .locked
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                self.lock_contended();
            }
        }

        /// Releases the lock.
        ///
        /// # Safety
        /// The caller took it with [`RawLock::lock`], and no reference to the data it guards
        /// (from `Mutex::data_locked`) outlives this call.
        #[inline]
        pub(crate) unsafe fn unlock(&self) {
            self.locked.store(false, Ordering::Release);
        }

        #[cold]
        fn lock_contended(&self) {
            let mut round = 0u32;
            loop {
                while self.locked.load(Ordering::Relaxed) {
                    if round < 10 {
                        for _ in 0..(1u32 << round) {
                            std::hint::spin_loop();
                        }
                    } else {
                        std::thread::yield_now();
                    }
                    round = round.saturating_add(1);
                }
                if self
                    .locked
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
            }
        }
    }
}

#[cfg(loom)]
mod imp {
    /// No preemption under loom.
    #[inline]
    pub(crate) fn preempt_point() {}

    /// Never in the models: waiters stay on the stack.
    pub(crate) fn stack_compaction() -> bool {
        false
    }

    use loom::sync::atomic::{AtomicU8, Ordering};
    use sched::debug::WaitReason;
    use std::sync::Arc;

    const EMPTY: u8 = 0;
    const PARKED: u8 = 1;
    const NOTIFIED: u8 = 2;

    loom::thread_local! {
        static PARKER: Arc<Parker> = Arc::new(Parker {
            state: AtomicU8::new(EMPTY),
            thread: loom::thread::current(),
        });
    }

    /// Under loom a waiter's parker is a token (as `sched`'s park state) over loom's thread
    /// park. An unparker calls loom's `unpark` only when it finds the waiter `PARKED`, and a
    /// waiter that went `PARKED` parks until it has consumed that unpark: so no unpark ever
    /// reaches a thread blocked in something else (a loom mutex, a join), which loom would
    /// wake by mistake and `sched`'s park never does.
    struct Parker {
        state: AtomicU8,
        thread: loom::thread::Thread,
    }

    #[doc(hidden)]
    #[derive(Clone)]
    pub struct Unparker(Arc<Parker>);

    impl Unparker {
        pub(crate) fn unpark(&self) {
            if self.0.state.swap(NOTIFIED, Ordering::AcqRel) == PARKED {
                self.0.thread.unpark();
            }
        }
    }

    pub(crate) fn unparker() -> Unparker {
        PARKER.with(|p| Unparker(p.clone()))
    }

    fn park() {
        let p = PARKER.with(Arc::clone);
        loop {
            // A token: nobody owes us a loom unpark.
            if p.state
                .compare_exchange(NOTIFIED, EMPTY, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
            if p.state
                .compare_exchange(EMPTY, PARKED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break;
            }
            // Notified in between: take that token on the next turn.
        }
        // Whoever notifies us now owes us exactly one loom unpark: consume it.
        loop {
            loom::thread::park();
            if p.state
                .compare_exchange(NOTIFIED, EMPTY, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
        }
    }

    /// The reason is for goroutine dumps, which models do not take.
    pub(crate) fn park_for(_: WaitReason) {
        park();
    }

    /// Timed waits are not modelled: the models use untimed operations, or deadlines that
    /// have already passed (which never park).
    pub(crate) fn park_timeout_for(_: std::time::Duration, _: WaitReason) -> bool {
        park();
        true
    }

    /// Under loom the lock word is loom's `Mutex` (a spin lock would multiply the states a
    /// model explores), with the guard kept inside between `lock` and `unlock`.
    #[doc(hidden)]
    pub struct RawLock {
        mutex: loom::sync::Mutex<()>,
        /// The guard of the holder; touched only by the thread holding `mutex`.
        held: std::cell::UnsafeCell<Option<loom::sync::MutexGuard<'static, ()>>>,
    }

    // SAFETY: `held` is only touched by the thread that holds `mutex` (lock and unlock), so
    // the lock serialises every access to it.
    unsafe impl Sync for RawLock {}
    // SAFETY: as above; the guard stored is never moved to another thread while held.
    unsafe impl Send for RawLock {}

    impl RawLock {
        pub(crate) fn new() -> RawLock {
            RawLock {
                mutex: loom::sync::Mutex::new(()),
                held: std::cell::UnsafeCell::new(None),
            }
        }

        pub(crate) fn lock(&self) {
            let guard = self.mutex.lock().unwrap();
            // SAFETY: the guard borrows `self.mutex`; it is stored in `self` and dropped by
            // `unlock` (which the holder must call) before `self` can be dropped, so the
            // 'static lifetime is never relied on past the borrow.
            let guard: loom::sync::MutexGuard<'static, ()> = unsafe { std::mem::transmute(guard) };
            // SAFETY: we hold the mutex: `held` is ours.
            unsafe { *self.held.get() = Some(guard) };
        }

        /// # Safety
        /// The caller took the lock with [`RawLock::lock`].
        pub(crate) unsafe fn unlock(&self) {
            // SAFETY: the caller holds the mutex: `held` is ours. Dropping the guard unlocks.
            drop(unsafe { (*self.held.get()).take() });
        }
    }
}

/// Test-only fault injection: make the calling thread's next park panic, as if the scheduler's
/// park had failed while the caller was queued on a channel or a sync primitive (the unwind
/// tests in `unwind_tests.rs`). Set and consumed on one thread, with no park in between.
#[cfg(all(test, not(loom)))]
pub(crate) mod fault {
    use std::cell::Cell;

    std::thread_local! {
        static PANIC_AT_NEXT_PARK: Cell<bool> = const { Cell::new(false) };
    }

    /// The next park on this thread panics with a message starting `expected:`.
    pub(crate) fn panic_at_next_park() {
        PANIC_AT_NEXT_PARK.with(|p| p.set(true));
    }

    pub(crate) fn check() {
        if PANIC_AT_NEXT_PARK.with(|p| p.replace(false)) {
            panic!("expected: injected park panic");
        }
    }
}

/// No fault injection outside the crate's unit tests.
#[cfg(not(any(test, loom)))]
mod fault {
    #[inline(always)]
    pub(crate) fn check() {}
}
