//! park / unpark: the one blocking primitive everything else (channels, sync, the netpoller)
//! is built on.
//!
//! A waiter takes an [`Unparker`] for itself, publishes it where a waker will find it (a
//! channel's wait queue, a mutex's waiter list), re-checks its condition, and calls [`park`].
//! A waker calls [`Unparker::unpark`]. The handshake has token semantics, like
//! `std::thread::park`: an `unpark` that happens before the `park` is not lost, it makes the next
//! `park` return at once. `park` can therefore return because of an old token; callers loop on
//! their own condition (`while !done { park() }`), which they must do anyway.
//!
//! The same state machine serves goroutines and plain OS threads:
//!
//! ```text
//!            unpark                       park (token present)
//!  RUNNING ─────────► NOTIFIED ─────────────────────────────────► RUNNING
//!     │                  ▲  │ unpark (stays NOTIFIED, release RMW)
//!     │ park: commit     │  └──┘
//!     ▼                  │ (commit fails: a token arrived while switching out → run again)
//!  PARKED ──── unpark: CAS PARKED→RUNNING; the winner makes it runnable ───► RUNNING
//! ```
//!
//! For a goroutine, `park` first tries to consume a token, then switches to its M; the M (now
//! off the goroutine's stack) commits RUNNING→PARKED. If a token arrived in between, the commit
//! fails and the M resumes the goroutine at once. This is Go's `gopark` with the "unlock after
//! switching" step replaced by the commit CAS. While PARKED, the park state owns the scheduler's
//! reference to the goroutine (`GRef::into_raw`); the unparker that wins PARKED→RUNNING takes it
//! back and readies the goroutine. Exactly one party can win that CAS, so a goroutine is never
//! queued twice, and a parked goroutine nobody ever unparks is leaked, never freed under a
//! waiter's feet.
//!
//! Memory ordering: every transition an unparker makes is a release RMW (including
//! NOTIFIED→NOTIFIED, so each unparker's prior writes join the release sequence that the
//! parker's acquire reads); the parker's transitions are acquire. Whatever a waker wrote before
//! `unpark` is visible to the waiter after `park` returns.

use std::sync::Arc;

use crate::debug::WaitReason;
use crate::goroutine::GRef;
use crate::loom::{AtomicU32, Ordering};

const RUNNING: u32 = 0;
const NOTIFIED: u32 = 1;
const PARKED: u32 = 2;

/// The park/unpark handshake state of one goroutine or thread.
pub(crate) struct ParkState(AtomicU32);

impl ParkState {
    pub(crate) fn new() -> ParkState {
        ParkState(AtomicU32::new(RUNNING))
    }

    /// Waiter side: consumes a pending token. True if there was one (do not block).
    #[inline]
    pub(crate) fn try_consume_token(&self) -> bool {
        // A plain load first: usually there is no token, and a failing CAS would still take
        // the cache line exclusively.
        self.0.load(Ordering::Relaxed) == NOTIFIED
            && self
                .0
                .compare_exchange(NOTIFIED, RUNNING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Waiter side, once committed to blocking: RUNNING→PARKED. False if a token arrived first;
    /// the token is then consumed and the waiter must not block.
    #[inline]
    pub(crate) fn commit_park(&self) -> bool {
        match self
            .0
            .compare_exchange(RUNNING, PARKED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(_) => {
                // Only unparkers write while we are not PARKED, and they only ever write NOTIFIED.
                self.0.swap(RUNNING, Ordering::Acquire);
                false
            }
        }
    }

    /// Waiter side, giving up a timed wait: PARKED→RUNNING. False if an unparker won the race
    /// (it will make, or has made, the waiter runnable).
    pub(crate) fn cancel_park(&self) -> bool {
        self.0
            .compare_exchange(PARKED, RUNNING, Ordering::Acquire, Ordering::Acquire)
            .is_ok()
    }

    /// True while the waiter is blocked (used by a parked thread to tell a wake-up from a
    /// spurious return of the OS primitive).
    pub(crate) fn is_parked(&self) -> bool {
        self.0.load(Ordering::Acquire) == PARKED
    }

    /// True while the waiter is blocked, as a SeqCst load: for the compactor's claim, which
    /// pairs it with a SeqCst fence (`compact.rs`).
    pub(crate) fn is_parked_seqcst(&self) -> bool {
        self.0.load(Ordering::SeqCst) == PARKED
    }

    /// Waker side. True if the caller won PARKED→RUNNING and must make the waiter runnable.
    #[inline]
    pub(crate) fn unpark(&self) -> bool {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let next = match cur {
                PARKED => RUNNING,
                _ => NOTIFIED,
            };
            match self
                .0
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return cur == PARKED,
                Err(actual) => cur = actual,
            }
        }
    }
}

/// A handle that wakes one parked goroutine or thread. Cheap to clone; `Send + Sync`.
///
/// Obtained with [`unparker`] by the code that is about to [`park`].
///
/// ```
/// let u = sched::unparker();
/// let t = std::thread::spawn(move || u.unpark());
/// sched::park(); // returns once the other thread has unparked us
/// t.join().unwrap();
/// ```
#[derive(Clone)]
pub struct Unparker(Target);

#[derive(Clone)]
enum Target {
    Goroutine(GRef),
    Thread(Arc<ThreadParker>),
}

impl Unparker {
    /// Makes the waiter runnable, or, if it is not parked, leaves a token so that its next
    /// [`park`] returns at once. Never blocks; callable from any thread or goroutine.
    pub fn unpark(&self) {
        self.unpark_with(crate::scheduler::ready);
    }

    /// Like [`unpark`](Unparker::unpark), but a woken goroutine runs after the goroutines
    /// already waiting where it is queued, instead of next. For wake-ups that are not
    /// hand-offs (I/O readiness, a goroutine's end): they keep first-come order among
    /// many woken at once, where `unpark` favours the one woken last.
    ///
    /// ```
    /// let u = sched::unparker();
    /// u.unpark_later();
    /// sched::park(); // consumes the token
    /// ```
    pub fn unpark_later(&self) {
        self.unpark_with(crate::scheduler::ready_later);
    }

    fn unpark_with(&self, ready: fn(GRef)) {
        match &self.0 {
            Target::Goroutine(g) => {
                if g.header().park.unpark() {
                    // SAFETY: we won PARKED→RUNNING, so we own the reference the parked
                    // goroutine's park state was holding (see `machine::execute`).
                    let owned = unsafe { GRef::from_raw(std::ptr::NonNull::from(g.header())) };
                    // Before it is queued, so the unpark precedes the run it causes.
                    trace_record!(Unpark, g.header().id, 0);
                    ready(owned);
                    // After the goroutine is queued (trace.rs); our own reference keeps the
                    // header alive for the id.
                    trace_event!(goid = g.header().id, "unpark");
                }
            }
            Target::Thread(t) => t.unpark(),
        }
    }

    /// The id of the goroutine this wakes, or `None` for a plain thread.
    pub fn goroutine_id(&self) -> Option<u64> {
        match &self.0 {
            Target::Goroutine(g) => Some(g.header().id),
            Target::Thread(_) => None,
        }
    }

    /// True if both handles wake the same waiter.
    pub fn will_wake(&self, other: &Unparker) -> bool {
        match (&self.0, &other.0) {
            (Target::Goroutine(a), Target::Goroutine(b)) => a.as_ptr() == b.as_ptr(),
            (Target::Thread(a), Target::Thread(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl std::fmt::Debug for Unparker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Target::Goroutine(g) => write!(f, "Unparker(goroutine {})", g.header().id),
            Target::Thread(_) => write!(f, "Unparker(thread)"),
        }
    }
}

/// Returns the [`Unparker`] of the calling goroutine, or of the calling thread when called
/// outside any goroutine.
///
/// ```
/// let u = sched::unparker();
/// u.unpark(); // leaves a token
/// sched::park(); // consumes it and returns at once
/// ```
pub fn unparker() -> Unparker {
    match crate::machine::current_goroutine() {
        Some(g) => Unparker(Target::Goroutine(g)),
        None => Unparker(Target::Thread(ThreadParker::current())),
    }
}

/// Blocks the calling goroutine until its [`Unparker`] is used, or returns at once if a token
/// is pending. Outside a goroutine, blocks the calling OS thread the same way.
///
/// A goroutine that parks gives its thread to other goroutines and resumes on the same thread
/// (on any thread if migration was enabled: `docs/SOUNDNESS.md`).
///
/// ```
/// let u = sched::unparker();
/// u.unpark();
/// sched::park();
/// ```
pub fn park() {
    park_for(WaitReason::Park, None);
}

/// [`park`], telling the goroutine dump what the goroutine waits for (`reason`, and `detail`
/// such as a file descriptor). gort's channels, locks, sockets and timers park this way.
///
/// ```
/// use sched::debug::WaitReason;
/// let u = sched::unparker();
/// u.unpark();
/// sched::park_for(WaitReason::ChanReceive, None);
/// ```
#[inline]
pub fn park_for(reason: WaitReason, detail: Option<u64>) {
    if !crate::machine::park_current_goroutine(|| crate::debug::wait::pack(reason, detail)) {
        ThreadParker::current().park(None);
    }
}

/// Like [`park`], but gives up after `timeout`. Returns true if woken (or a token was
/// pending), false on timeout. Works in goroutines (a timer unparks the goroutine) and on plain
/// threads.
///
/// ```
/// use std::time::Duration;
/// assert!(!sched::park_timeout(Duration::from_millis(1)));
/// let timed_out = sched::spawn(|| !sched::park_timeout(Duration::from_millis(1)));
/// assert!(timed_out.join().unwrap());
/// ```
pub fn park_timeout(timeout: std::time::Duration) -> bool {
    park_timeout_for(timeout, WaitReason::Timer, None)
}

/// [`park_timeout`], telling the goroutine dump what the goroutine waits for ([`park_for`]).
///
/// ```
/// use sched::debug::WaitReason;
/// use std::time::Duration;
/// let nap = Duration::from_millis(1);
/// let slept = sched::spawn(move || !sched::park_timeout_for(nap, WaitReason::Sleep, None));
/// assert!(slept.join().unwrap());
/// ```
pub fn park_timeout_for(
    timeout: std::time::Duration,
    reason: WaitReason,
    detail: Option<u64>,
) -> bool {
    // Saturating: a timeout too long for `Instant` (`Duration::MAX`) means "never".
    let deadline = crate::timer::deadline_after(std::time::Instant::now(), timeout);
    park_until_for(deadline, reason, detail)
}

/// [`park_for`], giving up at `deadline`: [`park_timeout_for`] for a caller that has the
/// deadline already (it reads no clock). Returns true if woken (or a token was pending), false
/// once the deadline has passed: a `false` means it is no earlier than `deadline` now.
///
/// ```
/// use sched::debug::WaitReason;
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(1);
/// let slept = sched::spawn(move || !sched::park_until_for(deadline, WaitReason::Sleep, None));
/// assert!(slept.join().unwrap());
/// assert!(Instant::now() >= deadline);
/// ```
pub fn park_until_for(
    deadline: std::time::Instant,
    reason: WaitReason,
    detail: Option<u64>,
) -> bool {
    let Some(g) = crate::machine::current_goroutine() else {
        let timeout = deadline.saturating_duration_since(std::time::Instant::now());
        return ThreadParker::current().park(Some(timeout));
    };
    if g.header().park.try_consume_token() {
        return true;
    }
    let me = Unparker(Target::Goroutine(g));
    // The timer readies the goroutine as a hand-off (`unpark`), as Go's timers do (`goready`
    // puts it in `runnext`): fired on its home M it runs next, and of many fired together the
    // last runs first and the rest follow in firing order (each displaced one goes to the local
    // queue's tail); fired on another M it goes through the home's remote queue. Behind the
    // work already waiting (`unpark_later`), a timed-out goroutine waited for the whole run
    // queue to go round (docs/BENCHMARKS.md, "Timeouts on one shared channel").
    let timer = crate::timer::at(deadline, move || me.unpark());
    park_for(reason, detail);
    // If the timer fired, report a timeout even if someone else also woke us: callers
    // re-check their condition either way. A timer fires only once its deadline has passed.
    timer.stop() || !timer.fired()
}

/// The parker of a plain OS thread: the shared state machine plus the OS thread handle.
pub(crate) struct ThreadParker {
    state: ParkState,
    thread: std::thread::Thread,
}

impl ThreadParker {
    fn current() -> Arc<ThreadParker> {
        std::thread_local! {
            static PARKER: Arc<ThreadParker> = Arc::new(ThreadParker {
                state: ParkState::new(),
                thread: std::thread::current(),
            });
        }
        PARKER.with(Arc::clone)
    }

    /// Blocks until unparked (true) or until the timeout passes (false).
    fn park(&self, timeout: Option<std::time::Duration>) -> bool {
        if self.state.try_consume_token() || !self.state.commit_park() {
            return true;
        }
        let Some(timeout) = timeout else {
            crate::deadlock::thread_parked();
            // If every M already went to sleep before this thread counted itself as parked,
            // none of them will look again: check from here.
            crate::scheduler::check_deadlock_now();
            while self.state.is_parked() {
                std::thread::park();
            }
            return true;
        };
        let deadline = crate::timer::deadline_after(std::time::Instant::now(), timeout);
        while self.state.is_parked() {
            let now = std::time::Instant::now();
            if now >= deadline {
                return !self.state.cancel_park();
            }
            std::thread::park_timeout(deadline - now);
        }
        true
    }

    fn unpark(&self) {
        if self.state.unpark() {
            crate::deadlock::thread_unparked();
            self.thread.unpark();
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;
    use loom::thread;

    /// The goroutine side of the handshake as the scheduler runs it: consume a token, else
    /// switch out and commit; if the commit fails, run again. `scheduled` counts how often the
    /// goroutine is made runnable by an unparker. The invariant: after a wake-up that follows
    /// the waiter's registration, the waiter runs again exactly once; never zero (lost
    /// wake-up), never twice (double schedule). The waiter and the waker are both spawned
    /// threads (tokio-rs/loom#392: see HACKING.md).
    #[test]
    fn park_unpark_handshake() {
        loom::model(|| {
            let state = Arc::new(ParkState::new());
            let flag = Arc::new(AtomicUsize::new(0));
            let scheduled = Arc::new(AtomicUsize::new(0));

            let waker = {
                let (state, flag, scheduled) = (state.clone(), flag.clone(), scheduled.clone());
                thread::spawn(move || {
                    flag.store(1, Ordering::Release);
                    if state.unpark() {
                        scheduled.fetch_add(1, Ordering::Relaxed);
                    }
                })
            };

            // The waiter: loop on its condition, as every caller of park() must.
            let waiter = {
                let (state, flag) = (state.clone(), flag.clone());
                thread::spawn(move || {
                    while flag.load(Ordering::Acquire) == 0 {
                        if state.try_consume_token() {
                            continue;
                        }
                        if state.commit_park() {
                            return true;
                        }
                    }
                    false
                })
            };
            let parked_for_good = waiter.join().unwrap();
            waker.join().unwrap();
            let runs = scheduled.load(Ordering::Relaxed);
            if parked_for_good {
                assert_eq!(runs, 1, "a parked waiter must be scheduled exactly once");
                assert_eq!(flag.load(Ordering::Acquire), 1);
            } else {
                assert_eq!(runs, 0, "a waiter that never parked must not be scheduled");
            }
        });
    }

    /// Two unparkers racing one parked waiter: exactly one of them schedules it.
    #[test]
    fn two_unparkers_schedule_once() {
        loom::model(|| {
            let state = Arc::new(ParkState::new());
            assert!(state.commit_park());
            let scheduled = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let (state, scheduled) = (state.clone(), scheduled.clone());
                    thread::spawn(move || {
                        if state.unpark() {
                            scheduled.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(scheduled.load(Ordering::Relaxed), 1);
            // The loser left a token: the next park returns at once.
            assert!(state.try_consume_token());
        });
    }

    /// A timed waiter giving up races an unparker (each on a spawned thread): either the
    /// timeout wins (no schedule) or the unparker does (scheduled once); never both, never
    /// neither.
    #[test]
    fn cancel_races_unpark() {
        loom::model(|| {
            let state = Arc::new(ParkState::new());
            assert!(state.commit_park());
            let s2 = state.clone();
            let waker = thread::spawn(move || s2.unpark());
            let s3 = state.clone();
            let canceller = thread::spawn(move || s3.cancel_park());
            let cancelled = canceller.join().unwrap();
            let woke = waker.join().unwrap();
            assert!(cancelled != woke, "exactly one side owns the wake-up");
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::loom::std_only::AtomicUsize;
    use std::time::Duration;

    #[test]
    fn token_before_park_is_kept() {
        let s = ParkState::new();
        assert!(!s.unpark());
        assert!(s.try_consume_token());
        assert!(!s.try_consume_token());
    }

    #[test]
    fn commit_fails_when_token_arrives() {
        let s = ParkState::new();
        assert!(!s.unpark());
        assert!(!s.commit_park());
        assert!(s.commit_park());
        assert!(s.unpark());
    }

    #[test]
    fn thread_park_timeout_returns_false() {
        assert!(!park_timeout(Duration::from_millis(5)));
    }

    /// Stress: many rounds of a thread parking while another unparks it, counted exactly.
    #[test]
    fn thread_park_unpark_stress() {
        const ROUNDS: usize = 20_000;
        let count = Arc::new(AtomicUsize::new(0));
        let me = unparker();
        let (tx, rx) = std::sync::mpsc::channel::<Unparker>();
        let c2 = count.clone();
        let t = std::thread::spawn(move || {
            let u = rx.recv().unwrap();
            for _ in 0..ROUNDS {
                c2.fetch_add(1, Ordering::Release);
                u.unpark();
            }
        });
        tx.send(me).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while count.load(Ordering::Acquire) < ROUNDS {
            assert!(std::time::Instant::now() < deadline, "lost wake-up");
            park_timeout(Duration::from_millis(100));
        }
        t.join().unwrap();
        assert_eq!(count.load(Ordering::Acquire), ROUNDS);
    }
}
