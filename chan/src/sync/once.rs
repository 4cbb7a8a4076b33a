//! [`Once`] and [`OnceValue`]: Go's `sync.Once` (a done flag checked first, then a mutex
//! serialising the slow path) and a value computed once on top of it.
//!
//! Invariant: `done` is set (release) only after the function returned, and only while the
//! slow-path mutex is held; a caller that reads it set (acquire) sees everything the function
//! did. Callers that find it clear queue on the mutex (parking) and, once in, re-check it.
//!
//! Panics (a choice; Go differs): if the function panics, `done` stays clear, the mutex is
//! unlocked by the unwinding guard, and the next caller (a waiting one, or a later one) runs
//! its own function. Go instead counts a panicking `Do` as done. Retrying matches
//! `std::sync::OnceLock::get_or_init` and does not leave a value half-made behind a flag that
//! says "ready".

use crate::loom::lazy::AtomicBool;
use crate::loom::Ordering;

use super::mutex::Mutex;

/// Runs a function exactly once, however many goroutines call [`call_once`](Once::call_once)
/// (Go's `sync.Once`). Callers that arrive while it runs park until it has finished, then
/// return without running theirs.
///
/// If the function panics, the `Once` stays incomplete and the next caller runs its own
/// function (Go instead treats a panicking call as done).
///
/// ```
/// use chan::sync::Once;
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// static INIT: Once = Once::new();
/// static RUNS: AtomicU32 = AtomicU32::new(0);
/// let hs: Vec<_> = (0..8)
///     .map(|_| sched::spawn(|| INIT.call_once(|| { RUNS.fetch_add(1, Ordering::Relaxed); })))
///     .collect();
/// for h in hs {
///     h.join().unwrap();
/// }
/// assert_eq!(RUNS.load(Ordering::Relaxed), 1);
/// ```
pub struct Once {
    done: AtomicBool,
    slow: Mutex<()>,
}

impl Once {
    /// A `Once` that has not run; `const`, usable in a `static`.
    ///
    /// ```
    /// assert!(!chan::sync::Once::new().is_completed());
    /// ```
    pub const fn new() -> Once {
        Once {
            done: AtomicBool::new(false),
            slow: Mutex::new(()),
        }
    }

    /// Runs `f` if no call has completed yet (Go's `Do`). When this returns, some call's
    /// function has completed, and its effects are visible to the caller.
    ///
    /// ```
    /// let once = chan::sync::Once::new();
    /// let mut n = 0;
    /// once.call_once(|| n += 1);
    /// once.call_once(|| n += 1);
    /// assert_eq!(n, 1);
    /// ```
    #[inline]
    pub fn call_once(&self, f: impl FnOnce()) {
        if !self.done.load(Ordering::Acquire) {
            self.call_slow(f);
        }
    }

    #[cold]
    fn call_slow(&self, f: impl FnOnce()) {
        let _serial = self.slow.lock();
        if !self.done.load(Ordering::Relaxed) {
            f();
            self.done.store(true, Ordering::Release);
        }
    }

    /// True once a call's function has completed.
    ///
    /// ```
    /// let once = chan::sync::Once::new();
    /// once.call_once(|| ());
    /// assert!(once.is_completed());
    /// ```
    pub fn is_completed(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

impl Default for Once {
    fn default() -> Once {
        Once::new()
    }
}

impl std::fmt::Debug for Once {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Once")
            .field("completed", &self.is_completed())
            .finish()
    }
}

/// A value computed once, on first use, by whichever goroutine gets there first; the others
/// park until it is ready (Go's `sync.OnceValue`, as a cell like `std::sync::OnceLock` whose
/// waiters park instead of blocking their thread).
///
/// A panicking initialiser leaves the cell empty; the next caller tries its own.
///
/// ```
/// use chan::sync::OnceValue;
///
/// static CONFIG: OnceValue<String> = OnceValue::new();
/// let len = sched::spawn(|| CONFIG.get_or_init(|| "loaded".to_string()).len());
/// assert_eq!(len.join().unwrap(), 6);
/// assert_eq!(CONFIG.get().map(String::as_str), Some("loaded"));
/// ```
pub struct OnceValue<T> {
    once: Once,
    // Written only inside `once` (so `set` never meets a concurrent writer and never blocks);
    // read without it.
    value: std::sync::OnceLock<T>,
}

impl<T> OnceValue<T> {
    /// An empty cell; `const`, usable in a `static`.
    ///
    /// ```
    /// let cell: chan::sync::OnceValue<u8> = chan::sync::OnceValue::new();
    /// assert!(cell.get().is_none());
    /// ```
    pub const fn new() -> OnceValue<T> {
        OnceValue {
            once: Once::new(),
            value: std::sync::OnceLock::new(),
        }
    }

    /// The value, if it has been set.
    ///
    /// ```
    /// let cell = chan::sync::OnceValue::new();
    /// cell.get_or_init(|| 3);
    /// assert_eq!(cell.get(), Some(&3));
    /// ```
    pub fn get(&self) -> Option<&T> {
        self.value.get()
    }

    /// The value, computing it with `f` if it is not set yet. Concurrent callers park until
    /// the first one's `f` returns; only one `f` runs (unless it panics).
    ///
    /// ```
    /// let cell = chan::sync::OnceValue::new();
    /// assert_eq!(*cell.get_or_init(|| 1), 1);
    /// assert_eq!(*cell.get_or_init(|| 2), 1);
    /// ```
    pub fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
        if let Some(v) = self.value.get() {
            return v;
        }
        self.once.call_once(|| {
            let _ = self.value.set(f());
        });
        self.value
            .get()
            .expect("OnceValue: set inside the completed Once")
    }

    /// Sets the value if it is not set yet; otherwise hands `value` back.
    ///
    /// ```
    /// let cell = chan::sync::OnceValue::new();
    /// assert_eq!(cell.set(1), Ok(()));
    /// assert_eq!(cell.set(2), Err(2));
    /// ```
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.once.call_once(|| {
            if let Some(v) = value.take() {
                let _ = self.value.set(v);
            }
        });
        match value {
            None => Ok(()),
            Some(v) => Err(v),
        }
    }

    /// Consumes the cell and returns the value, if set.
    ///
    /// ```
    /// let cell = chan::sync::OnceValue::new();
    /// cell.set("x").unwrap();
    /// assert_eq!(cell.into_inner(), Some("x"));
    /// ```
    pub fn into_inner(self) -> Option<T> {
        self.value.into_inner()
    }
}

impl<T> Default for OnceValue<T> {
    fn default() -> OnceValue<T> {
        OnceValue::new()
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for OnceValue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnceValue")
            .field("value", &self.get())
            .finish()
    }
}
