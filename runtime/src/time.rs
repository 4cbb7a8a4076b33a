//! Go's `time` package on the scheduler's timers: sleep, one-shot and periodic channels,
//! functions run after a delay.
//!
//! Everything here parks the goroutine (not the thread) and is woken by a scheduler timer
//! (`sched::at`): a heap of deadlines per M, fired by that M as it schedules (by another M if
//! that one is idle or the timer is late), or by the idle M that sleeps until the earliest
//! deadline (see `sched/src/timer/mod.rs`). Channel
//! sends from timer actions are non-blocking (`try_send` on a 1-slot channel), as in Go, so a
//! slow reader misses ticks instead of blocking the scheduler.
//!
//! Rules every function here follows:
//! - A sleep of a positive duration gives the processor to the other runnable goroutines at
//!   least once (it parks, or yields if its deadline passed before it could park), as Go's
//!   `Sleep(d > 0)` always goes through the timer; a zero duration returns at once.
//! - A duration too long for `Instant` (`Duration::MAX`) means "never" (`later`): the wait
//!   parks for good, with a pending timer, as in Go; nothing panics on overflow.
//! - A timer nobody can observe any more is stopped, so its heap entry is released: an
//!   [`After`] when it is dropped, a ticker when it is stopped or dropped, or, for `tick`,
//!   at its next tick once every receiver is gone. A dropped [`Timer`] or [`AfterFunc`] still
//!   fires (a receiver cloned from the timer may be waiting; a function is meant to run).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chan::{chan, Receiver};

/// `base + d`, saturating: a deadline `Instant` cannot represent is "never" in practice, so the
/// latest representable instant up to it serves (sched's timer heap saturates it anyway).
pub(crate) fn later(base: Instant, d: Duration) -> Instant {
    let mut d = d;
    loop {
        match base.checked_add(d) {
            Some(t) => return t,
            None => d /= 2,
        }
    }
}

/// Pauses the calling goroutine for at least `d` (Go's `time.Sleep`), giving its processor to
/// the other goroutines meanwhile. Any positive `d`, however short, parks the goroutine (or,
/// if the deadline has already passed, yields), so other runnable goroutines run before it
/// returns; `sleep(Duration::ZERO)` returns at once. `Duration::MAX` sleeps forever. On a plain
/// thread, sleeps the thread.
///
/// ```
/// let start = std::time::Instant::now();
/// gort::time::sleep(std::time::Duration::from_millis(2));
/// assert!(start.elapsed() >= std::time::Duration::from_millis(2));
/// ```
pub fn sleep(d: Duration) {
    if d.is_zero() {
        return;
    }
    if sched::current_id().is_none() {
        std::thread::sleep(d);
        return;
    }
    let now = Instant::now();
    park_until(later(now, d), now);
}

/// Pauses the calling goroutine until `deadline`, like [`sleep`]`(deadline - now)`: returns at
/// once if the deadline is not in the future when called (as Go's `Sleep` of a negative
/// duration), and otherwise gives the processor away at least once.
pub fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    if sched::current_id().is_none() {
        std::thread::sleep(deadline - now);
        return;
    }
    park_until(deadline, now);
}

/// The goroutine's side of a sleep that was asked for a positive time, at `now`: park until
/// `deadline`, and yield if it passed before the goroutine ever gave up its processor. One
/// clock read per sleep (the caller's) when the timer wakes it: a timed park that times out
/// has reached its deadline (`sched::park_until_for`).
fn park_until(deadline: Instant, mut now: Instant) {
    loop {
        if now >= deadline {
            // The deadline passed before the goroutine parked (or a stale wake-up token ended
            // each park early, which need not have switched out): give the processor away.
            sched::yield_now();
            return;
        }
        if !sched::park_until_for(deadline, sched::debug::WaitReason::Sleep, None) {
            // The timer readied it: it parked, and its deadline has passed. One case slips
            // through: a timer due within the few hundred nanoseconds between arming and
            // parking, fired by another processor first, leaves a token that the park consumes
            // without switching out. That P was usually out of work (Ps fire timers when their
            // queues are empty), so it can steal what waits here.
            return;
        }
        now = Instant::now();
    }
}

/// A channel that receives the current time once, after `d` (Go's `time.After`): the timeout
/// case of a `select!`.
///
/// The timer is stopped when the returned [`After`] is dropped, so a loop of `select!`s with a
/// long `after` that never fires releases each timer as it goes (Go 1.23 collects such
/// timers the same way). It derefs to its [`Receiver`]; a receiver cloned from it does not keep
/// the timer armed: [`After::into_receiver`] does.
///
/// ```
/// let (_tx, rx) = gort::chan::<u32>(0);
/// let timed_out = gort::select! {
///     recv(rx) -> _v => false,
///     recv(gort::time::after(std::time::Duration::from_millis(1))) -> _t => true,
/// };
/// assert!(timed_out);
/// ```
pub fn after(d: Duration) -> After {
    let (tx, rx) = chan(1);
    let timer = sched::at(later(Instant::now(), d), move || {
        let _ = tx.try_send(Instant::now());
    });
    After {
        rx,
        timer: Some(timer),
    }
}

/// The channel [`after`] returns, with its timer: dropping it stops the timer.
///
/// ```
/// use std::time::Duration;
/// let t = gort::time::after(Duration::from_millis(1));
/// let fired_at = t.recv().unwrap(); // `After` derefs to its `Receiver`
/// assert!(fired_at <= std::time::Instant::now());
/// ```
#[derive(Debug)]
pub struct After {
    rx: Receiver<Instant>,
    /// `None` once detached by `into_receiver`.
    timer: Option<sched::Timer>,
}

impl After {
    /// The channel the time is sent on.
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// The bare receiver, detached from the timer, which then fires at its deadline whatever
    /// becomes of the receiver (its heap entry is held until then).
    ///
    /// ```
    /// let rx: gort::Receiver<std::time::Instant> =
    ///     gort::time::after(std::time::Duration::from_millis(1)).into_receiver();
    /// assert!(rx.recv().is_ok());
    /// ```
    pub fn into_receiver(mut self) -> Receiver<Instant> {
        self.timer = None;
        self.rx.clone()
    }
}

impl std::ops::Deref for After {
    type Target = Receiver<Instant>;
    fn deref(&self) -> &Receiver<Instant> {
        &self.rx
    }
}

impl Drop for After {
    fn drop(&mut self) {
        if let Some(timer) = &self.timer {
            timer.stop();
        }
    }
}

impl From<After> for Receiver<Instant> {
    fn from(a: After) -> Receiver<Instant> {
        a.into_receiver()
    }
}

// `recv(after(d))` in a `select!` case. `AsReceiver` is the trait `select!` takes its receive
// cases through (in chan's `internal` module, which the macro expands to).
impl chan::internal::AsReceiver<Instant> for After {
    fn as_receiver(&self) -> Option<&Receiver<Instant>> {
        Some(&self.rx)
    }
}

impl chan::internal::AsReceiver<Instant> for &After {
    fn as_receiver(&self) -> Option<&Receiver<Instant>> {
        Some(&self.rx)
    }
}

/// A channel that receives the time every `d` (Go's `time.Tick`). Ticks a slow reader misses
/// are dropped. The ticks stop once every receiver is dropped.
///
/// `tick(Duration::ZERO)` returns a channel that never receives (Go's `Tick` returns a nil
/// channel for a non-positive interval), where [`Ticker::new`] panics as Go's `NewTicker` does.
///
/// ```
/// let ticks = gort::time::tick(std::time::Duration::from_millis(1));
/// let first = ticks.recv().unwrap();
/// assert!(ticks.recv().unwrap() > first);
///
/// let never = gort::time::tick(std::time::Duration::ZERO);
/// assert!(never.try_recv().is_err());
/// ```
pub fn tick(d: Duration) -> Receiver<Instant> {
    if d.is_zero() {
        return Receiver::never();
    }
    let (tx, rx) = chan(1);
    start_ticking(&TickState::new(d), tx, later(Instant::now(), d));
    rx
}

/// A one-shot timer with a channel (Go's `time.Timer`): `stop` cancels it, `reset` re-arms it.
///
/// Dropping a `Timer` does not stop it (a receiver cloned from it may be waiting): call
/// [`stop`](Timer::stop) to release a timer that will not be needed.
///
/// ```
/// use std::time::Duration;
/// let t = gort::time::Timer::new(Duration::from_secs(60));
/// assert!(t.stop()); // stopped before it fired
/// t.reset(Duration::from_millis(1));
/// t.receiver().recv().unwrap();
/// ```
pub struct Timer {
    rx: Receiver<Instant>,
    tx: chan::Sender<Instant>,
    armed: Mutex<sched::Timer>,
}

impl Timer {
    /// A timer that fires once, after `d` (`Duration::MAX`: never).
    pub fn new(d: Duration) -> Timer {
        let (tx, rx) = chan(1);
        let armed = Mutex::new(arm_once(&tx, later(Instant::now(), d)));
        Timer { rx, tx, armed }
    }

    /// The channel the time is sent on when the timer fires.
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the timer. True if it had not fired yet.
    pub fn stop(&self) -> bool {
        self.armed.lock().unwrap_or_else(|e| e.into_inner()).stop()
    }

    /// Re-arms the timer to fire after `d`. True if it had been pending (then it will not
    /// fire for the old deadline). As in Go, a value already sent stays in the channel.
    pub fn reset(&self, d: Duration) -> bool {
        let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
        // The new deadline first, then stop the old, so the count of pending timers never
        // drops to zero in between (an idle M that saw it at zero would cost a wake-up of the
        // timer watcher when it rose again: sched's `at`). If the old one fires in between,
        // that is a reset after firing: `false`, and the value is sent.
        let old = std::mem::replace(&mut *armed, arm_once(&self.tx, later(Instant::now(), d)));
        old.stop()
    }
}

fn arm_once(tx: &chan::Sender<Instant>, deadline: Instant) -> sched::Timer {
    let tx = tx.clone();
    sched::at(deadline, move || {
        let _ = tx.try_send(Instant::now());
    })
}

/// Runs `f` in its own goroutine after `d` (Go's `time.AfterFunc`). [`AfterFunc::stop`]
/// cancels it if it has not started yet. Dropping the returned handle does not cancel it.
///
/// ```
/// use std::time::Duration;
/// let (tx, rx) = gort::chan(1);
/// let _f = gort::time::after_func(Duration::from_millis(1), move || tx.send("ran").unwrap());
/// assert_eq!(rx.recv(), Ok("ran"));
///
/// let cancelled = gort::time::after_func(Duration::from_secs(60), || unreachable!());
/// assert!(cancelled.stop()); // stopped before it ran
/// ```
pub fn after_func(d: Duration, f: impl FnOnce() + Send + 'static) -> AfterFunc {
    AfterFunc(sched::at(later(Instant::now(), d), move || {
        // The timer action runs on the scheduler's stack and must not block: `f` gets a
        // goroutine of its own, detached (as Go's AfterFunc runs `f` in its own goroutine).
        drop(sched::spawn(f));
    }))
}

/// The handle [`after_func`] returns.
#[derive(Debug)]
pub struct AfterFunc(sched::Timer);

impl AfterFunc {
    /// Cancels the call. True if this stopped it before its goroutine was started; false if
    /// it already started (it then runs to its end) or was already stopped.
    pub fn stop(&self) -> bool {
        self.0.stop()
    }

    /// True once the goroutine running `f` has been started.
    pub fn fired(&self) -> bool {
        self.0.fired()
    }
}

/// A periodic timer with a channel (Go's `time.Ticker`). Stops when stopped or dropped.
///
/// ```
/// let t = gort::time::Ticker::new(std::time::Duration::from_millis(1));
/// t.receiver().recv().unwrap();
/// t.stop();
/// ```
pub struct Ticker {
    rx: Receiver<Instant>,
    state: Arc<TickState>,
}

struct TickState {
    period: Duration,
    stopped: std::sync::atomic::AtomicBool,
    armed: Mutex<Option<sched::Timer>>,
}

impl Ticker {
    /// A ticker that sends the time every `period`.
    ///
    /// # Panics
    /// If `period` is zero, as Go's `NewTicker` does (a ticker that never ticks is
    /// [`tick`]`(Duration::ZERO)`).
    pub fn new(period: Duration) -> Ticker {
        assert!(
            !period.is_zero(),
            "gort::time::Ticker::new: the period must be positive (got zero)"
        );
        let (tx, rx) = chan(1);
        let state = TickState::new(period);
        start_ticking(&state, tx, later(Instant::now(), period));
        Ticker { rx, state }
    }

    /// The channel the ticks are sent on.
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the ticker; no tick is sent afterwards (one already sent may still be read).
    pub fn stop(&self) {
        self.state
            .stopped
            .store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self
            .state
            .armed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            t.stop();
        }
    }
}

impl TickState {
    fn new(period: Duration) -> Arc<TickState> {
        Arc::new(TickState {
            period,
            stopped: std::sync::atomic::AtomicBool::new(false),
            armed: Mutex::new(None),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Arms the first tick, at `at`.
fn start_ticking(state: &Arc<TickState>, tx: chan::Sender<Instant>, at: Instant) {
    // Held while arming, so that a tick due at once, fired on another thread, stores its
    // successor after this, not before.
    let mut armed = state.armed.lock().unwrap_or_else(|e| e.into_inner());
    *armed = Some(arm_tick(state.clone(), tx, at));
}

/// The timer of the tick at `at`; each tick arms the next, phase-locked to the period. The
/// caller holds `state.armed` and stores the result there.
fn arm_tick(state: Arc<TickState>, tx: chan::Sender<Instant>, at: Instant) -> sched::Timer {
    sched::at(at, move || {
        // Under `armed`, which `Ticker::stop` takes too: a stop either comes first (and this
        // tick sends nothing) or waits until this tick is in the channel and its successor is
        // stored where the stop will find it. So no tick is sent after `stop` returns.
        let mut armed = state.armed.lock().unwrap_or_else(|e| e.into_inner());
        if state.stopped.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        if let Err(chan::TrySendError::Closed(_)) = tx.try_send(Instant::now()) {
            return; // every receiver is gone: stop ticking
        }
        let mut next = later(at, state.period);
        let now = Instant::now();
        if next <= now {
            // Fell behind (a long pause): skip missed ticks rather than firing a burst.
            next = later(now, state.period);
        }
        *armed = Some(arm_tick(state.clone(), tx, next));
    })
}
