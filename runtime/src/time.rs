//! Go's `time` package on the scheduler's timers: sleep, one-shot and periodic channels.
//!
//! Everything here parks the goroutine (not the thread) and is woken by a scheduler timer
//! (`sched::at`): one heap of deadlines shared by all Ps, fired by whichever P schedules next,
//! or by the idle M that sleeps until the earliest deadline (see `sched/src/timer.rs`). Channel
//! sends from timer actions are non-blocking (`try_send` on a 1-slot channel), as in Go, so a
//! slow reader misses ticks instead of blocking the scheduler.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chan::{chan, Receiver};

/// Pauses the calling goroutine for at least `d` (Go's `time.Sleep`). On a plain thread,
/// sleeps the thread.
///
/// ```
/// let start = std::time::Instant::now();
/// gort::time::sleep(std::time::Duration::from_millis(2));
/// assert!(start.elapsed() >= std::time::Duration::from_millis(2));
/// ```
pub fn sleep(d: Duration) {
    sleep_until(Instant::now() + d);
}

/// Pauses the calling goroutine until `deadline`.
pub fn sleep_until(deadline: Instant) {
    if sched::current_id().is_none() {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        return;
    }
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        // An early return (a stale wake-up token) just loops.
        sched::park_timeout(deadline - now);
    }
}

/// A channel that receives the current time once, after `d` (Go's `time.After`): the timeout
/// case of a `select!`.
///
/// ```
/// let (_tx, rx) = gort::chan::<u32>(0);
/// let timed_out = gort::select! {
///     recv(rx) -> _v => false,
///     recv(gort::time::after(std::time::Duration::from_millis(1))) -> _t => true,
/// };
/// assert!(timed_out);
/// ```
pub fn after(d: Duration) -> Receiver<Instant> {
    Timer::new(d).into_receiver()
}

/// A channel that receives the time every `d` (Go's `time.Tick`). Ticks a slow reader misses
/// are dropped. The ticks stop once every receiver is dropped.
///
/// # Panics
/// If `d` is zero.
///
/// ```
/// let ticks = gort::time::tick(std::time::Duration::from_millis(1));
/// let first = ticks.recv().unwrap();
/// assert!(ticks.recv().unwrap() > first);
/// ```
pub fn tick(d: Duration) -> Receiver<Instant> {
    let (tx, rx) = chan(1);
    arm_tick(TickState::new(d), tx, Instant::now() + d);
    rx
}

/// A one-shot timer with a channel (Go's `time.Timer`): `stop` cancels it, `reset` re-arms it.
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
    /// A timer that fires once, after `d`.
    pub fn new(d: Duration) -> Timer {
        let (tx, rx) = chan(1);
        let armed = Mutex::new(arm_once(&tx, Instant::now() + d));
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
        let was_pending = armed.stop();
        *armed = arm_once(&self.tx, Instant::now() + d);
        was_pending
    }

    fn into_receiver(self) -> Receiver<Instant> {
        self.rx.clone()
    }
}

fn arm_once(tx: &chan::Sender<Instant>, deadline: Instant) -> sched::Timer {
    let tx = tx.clone();
    sched::at(deadline, move || {
        let _ = tx.try_send(Instant::now());
    })
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
    /// If `period` is zero (as Go's `NewTicker` does).
    pub fn new(period: Duration) -> Ticker {
        let (tx, rx) = chan(1);
        let state = TickState::new(period);
        arm_tick(state.clone(), tx, Instant::now() + period);
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
        assert!(!period.is_zero(), "gort::time: non-positive tick period");
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

/// Arms the next tick at `at`; each tick re-arms the next, phase-locked to the period.
fn arm_tick(state: Arc<TickState>, tx: chan::Sender<Instant>, at: Instant) {
    let s2 = state.clone();
    let timer = sched::at(at, move || {
        if s2.stopped.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        if let Err(chan::TrySendError::Closed(_)) = tx.try_send(Instant::now()) {
            return; // every receiver is gone: stop ticking
        }
        let mut next = at + s2.period;
        let now = Instant::now();
        if next <= now {
            // Fell behind (a long pause): skip missed ticks rather than firing a burst.
            next = now + s2.period;
        }
        arm_tick(s2, tx, next);
    });
    let mut armed = state.armed.lock().unwrap_or_else(|e| e.into_inner());
    if state.stopped.load(std::sync::atomic::Ordering::Acquire) {
        timer.stop();
    } else {
        *armed = Some(timer);
    }
}
