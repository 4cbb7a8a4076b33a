//! Goroutine-local storage: a value per goroutine where a `thread_local!` is shared by every
//! goroutine of a thread (and, in migrate mode, is unsafe to hold across a blocking call: see
//! `docs/SOUNDNESS.md`). A [`LocalKey`] stores one value per goroutine, in the goroutine's own
//! header, so the value travels with the goroutine. Outside any goroutine (a plain thread) the
//! thread itself plays the goroutine's part.
//!
//! Invariants: a goroutine's `LocalMap` is touched only by that goroutine (it runs on one thread
//! at a time, and the scheduler's hand-off orders its accesses). Each value is boxed, so adding
//! a key never moves a value a caller holds a reference to. Values are dropped on the goroutine's
//! own stack when it ends (after its closure returned), never while borrowed.

use std::any::Any;

use crate::goroutine::Header;

/// A goroutine's values: (address of the `LocalKey`, boxed value).
type Entries = Vec<(usize, Box<dyn Any + Send>)>;

/// The values of one goroutine (or plain thread), keyed by the address of their `LocalKey`.
/// One word when unused (most goroutines never touch a local).
pub(crate) struct LocalMap(Option<Box<Entries>>);

impl LocalMap {
    pub(crate) const fn new() -> LocalMap {
        LocalMap(None)
    }

    fn find<T: 'static>(&self, key: usize) -> Option<*const T> {
        let entries = self.0.as_ref()?;
        let (_, v) = entries.iter().find(|(k, _)| *k == key)?;
        Some(v.downcast_ref::<T>().expect("local key type") as *const T)
    }

    /// Inserts `value` for `key` unless an initialiser that ran meanwhile already did; returns
    /// the value that stays, and gives back the one that does not (for the caller to drop
    /// once the map is no longer borrowed).
    fn insert<T: Send + 'static>(&mut self, key: usize, value: T) -> (*const T, Option<T>) {
        if let Some(existing) = self.find::<T>(key) {
            return (existing, Some(value));
        }
        let boxed: Box<dyn Any + Send> = Box::new(value);
        let ptr = boxed.downcast_ref::<T>().expect("local key type") as *const T;
        self.0
            .get_or_insert_with(Default::default)
            .push((key, boxed));
        (ptr, None)
    }

    fn take(&mut self) -> Option<Box<Entries>> {
        self.0.take()
    }
}

/// A goroutine-local variable, declared with [`local!`](crate::local!).
///
/// Each goroutine sees its own value, created lazily by the initialiser on first use and
/// dropped when the goroutine ends. A plain thread has its own value too.
///
/// ```
/// sched::local! { static COUNT: std::cell::Cell<u32> = std::cell::Cell::new(0); }
///
/// COUNT.with(|c| c.set(c.get() + 1));
/// let in_goroutine = sched::spawn(|| COUNT.with(|c| c.get())).join().unwrap();
/// assert_eq!(in_goroutine, 0); // a fresh value per goroutine
/// assert_eq!(COUNT.with(|c| c.get()), 1);
/// ```
pub struct LocalKey<T: Send + 'static> {
    init: fn() -> T,
}

impl<T: Send + 'static> LocalKey<T> {
    /// A key whose per-goroutine value starts as `init()`. Use [`local!`](crate::local!).
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey { init }
    }

    /// Calls `f` with this goroutine's value. `f` may block (park); the value stays valid
    /// because it belongs to the goroutine, not to the thread.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self as *const Self as usize;
        let ptr = match with_map(|m| m.find::<T>(key)) {
            Some(ptr) => ptr,
            None => {
                // The initialiser runs with no borrow of the map (it may use other keys).
                let value = (self.init)();
                let (ptr, extra) = with_map(|m| m.insert(key, value));
                drop(extra);
                ptr
            }
        };
        // SAFETY: the value is boxed in the map and is dropped only when its goroutine (or
        // thread) ends, which cannot happen while `f` runs on it.
        f(unsafe { &*ptr })
    }
}

/// Calls `f` with the caller's map (its goroutine's, or its thread's). `f` is runtime code
/// that does not re-enter `with_map`, so its borrow is the only one.
fn with_map<R>(f: impl FnOnce(&mut LocalMap) -> R) -> R {
    let h = crate::machine::current_header();
    if h.is_null() {
        // SAFETY: the thread's map is only touched by this thread, and `f` does not re-enter.
        THREAD_LOCALS.with(|m| f(unsafe { &mut *m.get() }))
    } else {
        // SAFETY: only the running goroutine touches its own map (module invariants), the
        // header is alive while it runs, and `f` does not re-enter.
        f(unsafe { &mut *(*h).locals.get() })
    }
}

std::thread_local! {
    static THREAD_LOCALS: std::cell::UnsafeCell<LocalMap> = const {
        std::cell::UnsafeCell::new(LocalMap::new())
    };
}

/// Drops the locals of the goroutine `h` at its end, on its own stack. Destructors that use
/// other keys create new values; those are dropped in the next round.
pub(crate) fn drop_locals(h: &Header) {
    for _ in 0..8 {
        // SAFETY: called by the goroutine itself as it ends; no `with` borrow is live.
        let Some(values) = (unsafe { (*h.locals.get()).take() }) else {
            return;
        };
        drop(values);
    }
}

/// Declares goroutine-local variables, like `thread_local!` but per goroutine.
///
/// ```
/// sched::local! {
///     /// Requests served by this goroutine.
///     static SERVED: std::cell::Cell<u64> = std::cell::Cell::new(0);
/// }
/// SERVED.with(|s| s.set(s.get() + 1));
/// ```
#[macro_export]
macro_rules! local {
    ($($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr;)+) => {
        $(
            $(#[$attr])*
            $vis static $name: $crate::LocalKey<$t> = $crate::LocalKey::new(|| $init);
        )+
    };
}
