//! Leak checks for tests (goleak's `VerifyNone`): goroutines started inside a scope, directly or
//! by goroutines started there, that are still alive after it.
//!
//! A [`LeakCheck`] opens a `Scope` and makes it the calling goroutine's (or thread's) spawn
//! scope (a goroutine-local, so it follows the caller across parks); every goroutine spawned
//! while it is open is counted in it (`Origin::scope`), and passes it on to the goroutines it
//! spawns. A goroutine leaves the count as it ends, before its joiner can see the end, so
//! "every goroutine I started was joined" means a count of zero. [`LeakCheck::finish`] closes
//! the scope, waits up to its patience for the count to reach zero (goroutines told to stop are
//! often still on their way out, as goleak retries), and otherwise reports the ones alive with
//! their dump.
//!
//! Only spawns count: goroutines spawned by plain threads that the scope's code started do not
//! inherit the scope (a new thread has no spawn scope), as goleak sees only goroutines.
//!
//! Cost outside a check: a spawn reads `ACTIVE` (one relaxed load and a branch) and clones the
//! spawner's scope if it has one.

use crate::loom::std_only::{AtomicU64, AtomicUsize};
use crate::loom::Ordering;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::goroutine::Header;

/// One leak check's count of live goroutines.
pub(crate) struct Scope {
    id: u64,
    live: AtomicUsize,
}

/// Leak checks open now, anywhere (spawns look up the goroutine-local only when it is not 0).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

crate::local! {
    /// The scope the calling goroutine or thread spawns into, while a check it opened is open.
    static SPAWN_SCOPE: RefCell<Option<Arc<Scope>>> = RefCell::new(None);
}

/// The scope a goroutine spawned now by `spawner` (None: a plain thread) belongs to, counted in.
#[inline]
pub(crate) fn scope_for_spawn(spawner: Option<&Header>) -> Option<Arc<Scope>> {
    let mut scope = spawner.and_then(|h| h.origin.scope.clone());
    if ACTIVE.load(Ordering::Relaxed) != 0 {
        if let Some(open) = SPAWN_SCOPE.with(|s| s.borrow().clone()) {
            scope = Some(open);
        }
    }
    if let Some(s) = &scope {
        s.live.fetch_add(1, Ordering::Relaxed);
    }
    scope
}

/// A goroutine of `scope` ended (before its end is published to a joiner).
pub(crate) fn note_end(h: &Header) {
    if let Some(s) = &h.origin.scope {
        // Release: pairs with `finish`'s acquire load, so a count of 0 is seen after the end.
        s.live.fetch_sub(1, Ordering::Release);
    }
}

/// True if `h` was spawned inside the check whose scope id is `id`.
pub(crate) fn in_scope(h: &Header, id: u64) -> bool {
    h.origin.scope.as_ref().is_some_and(|s| s.id == id)
}

/// A leak check: open it before the code under test, [`finish`](LeakCheck::finish) it after.
/// Goroutines spawned in between (and their descendants) must all have ended by then, or end
/// within the check's patience (1 s unless [`patience`](LeakCheck::patience) says otherwise).
///
/// ```
/// use sched::debug::LeakCheck;
/// let check = LeakCheck::new();
/// let h = sched::spawn(|| 1 + 1);
/// assert_eq!(h.join().unwrap(), 2);
/// check.finish().expect("no goroutine leaked");
///
/// let check = LeakCheck::new().patience(std::time::Duration::from_millis(10));
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// let u = std::sync::Arc::new(std::sync::Mutex::new(None));
/// let u2 = u.clone();
/// sched::spawn(move || {
///     *u2.lock().unwrap() = Some(sched::unparker());
///     tx.send(()).unwrap();
///     sched::park(); // parked until unparked below
/// });
/// rx.recv().unwrap();
/// let leaked = check.finish().unwrap_err();
/// assert_eq!(leaked.count(), 1);
/// assert!(leaked.to_string().contains("[park"));
/// u.lock().unwrap().take().unwrap().unpark();
/// ```
#[must_use = "a leak check reports only when finished"]
pub struct LeakCheck {
    scope: Arc<Scope>,
    previous: Option<Option<Arc<Scope>>>,
    patience: Duration,
}

impl LeakCheck {
    /// Opens a check: goroutines spawned by the caller from now on are counted.
    pub fn new() -> LeakCheck {
        let scope = Arc::new(Scope {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            live: AtomicUsize::new(0),
        });
        let previous = SPAWN_SCOPE.with(|s| s.borrow_mut().replace(Arc::clone(&scope)));
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        LeakCheck {
            scope,
            previous: Some(previous),
            patience: Duration::from_secs(1),
        }
    }

    /// How long [`finish`](LeakCheck::finish) waits for goroutines on their way out.
    pub fn patience(mut self, patience: Duration) -> LeakCheck {
        self.patience = patience;
        self
    }

    /// Goroutines of this check alive now.
    pub fn live(&self) -> usize {
        self.scope.live.load(Ordering::Acquire)
    }

    /// Closes the check (the caller's later spawns no longer count) and waits up to its
    /// patience for every goroutine counted to end. `Err` names the ones still alive.
    pub fn finish(mut self) -> Result<(), Leaked> {
        self.close();
        let deadline = Instant::now() + self.patience;
        let mut pause = Duration::from_micros(100);
        while self.live() != 0 && Instant::now() < deadline {
            // A goroutine caller sleeps as a goroutine (its thread runs the ones on their way
            // out); a thread caller sleeps as a thread.
            crate::park_timeout(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        let count = self.live();
        if count == 0 {
            return Ok(());
        }
        let id = self.scope.id;
        let listed: Vec<_> = super::dump::snapshot(|h| in_scope(h, id));
        Err(Leaked { count, listed })
    }

    fn close(&mut self) {
        if let Some(previous) = self.previous.take() {
            SPAWN_SCOPE.with(|s| *s.borrow_mut() = previous);
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Default for LeakCheck {
    fn default() -> LeakCheck {
        LeakCheck::new()
    }
}

impl Drop for LeakCheck {
    fn drop(&mut self) {
        // Dropped without `finish` (a test that failed first): just close the scope.
        self.close();
    }
}

impl std::fmt::Debug for LeakCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeakCheck")
            .field("live", &self.live())
            .field("patience", &self.patience)
            .finish()
    }
}

/// Runs `f` inside a [`LeakCheck`] and panics, with the dump of the leaked goroutines, if any
/// goroutine it started is still alive a second after it returned (goleak's `VerifyNone`).
///
/// ```
/// let sum = sched::debug::verify_none(|| {
///     let hs: Vec<_> = (0..10).map(|i| sched::spawn(move || i)).collect();
///     hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
/// });
/// assert_eq!(sum, 45);
/// ```
#[track_caller]
pub fn verify_none<R>(f: impl FnOnce() -> R) -> R {
    let check = LeakCheck::new();
    let r = f();
    if let Err(leaked) = check.finish() {
        panic!("{leaked}");
    }
    r
}

/// What [`LeakCheck::finish`] found: goroutines of the check still alive.
#[derive(Debug)]
pub struct Leaked {
    count: usize,
    listed: Vec<super::GoroutineInfo>,
}

impl Leaked {
    /// How many goroutines of the check were alive.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Those the dump could see (every one that has parked or yielded at least once); the rest
    /// were running or had not started yet.
    pub fn goroutines(&self) -> &[super::GoroutineInfo] {
        &self.listed
    }
}

impl std::fmt::Display for Leaked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "found {} leaked goroutine(s):", self.count)?;
        let mut text = Vec::new();
        super::dump::write_groups(&mut text, &self.listed, usize::MAX)
            .map_err(|_| std::fmt::Error)?;
        f.write_str(&String::from_utf8_lossy(&text))?;
        let unseen = self.count.saturating_sub(self.listed.len());
        if unseen > 0 {
            writeln!(f, "{unseen} more running or not yet started")?;
        }
        Ok(())
    }
}

impl std::error::Error for Leaked {}
