//! Go's `golang.org/x/time/rate`: a token-bucket rate limiter whose [`wait`](Limiter::wait)
//! parks the goroutine (not the thread) on a scheduler timer, and gives up when its
//! [`Context`] is cancelled.
//!
//! A [`Limiter`] holds a bucket of at most `burst` tokens, refilled at `limit` tokens a second;
//! each event takes one token (or `n`). The bucket starts full, so a burst of events passes at
//! once and the steady rate applies after it. Three ways to take tokens, as in Go:
//!
//! | when no token is there | call | Go |
//! |---|---|---|
//! | drop the event | [`allow`](Limiter::allow), [`allow_n`](Limiter::allow_n) | `Allow`, `AllowN` |
//! | learn how long to wait, and decide | [`reserve`](Limiter::reserve), [`reserve_n`](Limiter::reserve_n) | `Reserve`, `ReserveN` |
//! | wait (parks), unless the context ends first | [`wait`](Limiter::wait), [`wait_n`](Limiter::wait_n) | `Wait`, `WaitN` |
//!
//! ```
//! use std::time::{Duration, Instant};
//! use gort::context;
//! use gort::rate::{every, Limiter};
//!
//! let limiter = Limiter::new(every(Duration::from_millis(2)), 3); // 500/s, bursts of 3
//! let ctx = context::background();
//! let start = Instant::now();
//! for _ in 0..5 {
//!     limiter.wait(&ctx).unwrap(); // the first 3 at once, then one every 2 ms
//! }
//! assert!(start.elapsed() >= Duration::from_millis(4));
//! ```
//!
//! # Time
//!
//! The bucket is reckoned in `Instant`s. Each call that reads the clock has a `*_at` twin
//! taking the time as an argument (Go's `AllowN(t, n)`, `ReserveN(t, n)`, `TokensAt(t)`,
//! `SetLimitAt(t, l)`): the clock seam for tests that drive time by hand. A time earlier than
//! the bucket's last update counts as that update's time (no refill, never a negative one).
//!
//! # Invariants
//!
//! - `tokens` is the bucket as of `last`, in nanotokens (integers: taking tokens and giving
//!   them back cancel exactly); a read adds the refill since `last` and caps the sum at
//!   `burst`. It goes negative when reservations run ahead of the refill (`-tokens` is the
//!   debt the next reservations queue behind).
//! - `reserved` is the running total of the nanotokens reservations have taken, in the order
//!   they were made, less those of each latest reservation cancelled; each reservation
//!   remembers the total just after its own (`mark`), so `reserved - mark` is what later
//!   reservations hold, which its cancel leaves taken (Go reckons this by time, from its
//!   `lastEvent`; a count is exact where times carry rounding).
//! - With [`Limit::INF`] every request is granted at once and the bucket is not touched.
//! - The bucket's lock is held only for arithmetic: never across a park or a call out.
//!
//! Go's x/time/rate is the reference design, no Go code is copied. No rate-limiting crate is
//! used: `governor`, the well-kept one, implements GCRA without reservations that give tokens
//! back, and its waiting is `async` (a future for an executor) where gort parks goroutines.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chan::Receiver;

use crate::context::{Context, ContextError};
use crate::time::later;

/// Nanotokens in a token: the bucket counts in integers, so that taking tokens and giving them
/// back cancel exactly, and a request granted at its time to act finds its tokens there.
const NANOTOKENS: i128 = 1_000_000_000;

/// `n` tokens in nanotokens.
fn nanotokens(n: usize) -> i128 {
    n as i128 * NANOTOKENS
}

/// A rate: events (tokens) per second (Go's `rate.Limit`). [`Limit::INF`] allows everything;
/// [`Limit::ZERO`] refills nothing, so only the tokens already in the bucket are ever granted.
///
/// ```
/// use std::time::Duration;
/// use gort::rate::{every, Limit};
///
/// assert_eq!(Limit::per_second(4.0), every(Duration::from_millis(250)));
/// assert_eq!(every(Duration::ZERO), Limit::INF);
/// assert_eq!(Limit::from(10.0).events_per_second(), 10.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Limit(f64);

impl Limit {
    /// No limit at all (Go's `rate.Inf`): every request is granted at once, whatever the burst.
    pub const INF: Limit = Limit(f64::INFINITY);

    /// No refill: only the tokens in the bucket are granted.
    pub const ZERO: Limit = Limit(0.0);

    /// `events` a second; `f64::INFINITY` is [`Limit::INF`].
    ///
    /// # Panics
    /// If `events` is negative or NaN.
    ///
    /// ```
    /// assert_eq!(gort::rate::Limit::per_second(f64::INFINITY), gort::rate::Limit::INF);
    /// ```
    pub fn per_second(events: f64) -> Limit {
        assert!(
            events >= 0.0,
            "gort::rate::Limit: the rate must be zero or more events a second (got {events})"
        );
        Limit(events)
    }

    /// The rate in events a second (`f64::INFINITY` for [`Limit::INF`]).
    ///
    /// ```
    /// assert!(gort::rate::Limit::INF.events_per_second().is_infinite());
    /// ```
    pub fn events_per_second(self) -> f64 {
        self.0
    }

    /// True for [`Limit::INF`].
    ///
    /// ```
    /// assert!(gort::rate::Limit::INF.is_inf() && !gort::rate::Limit::ZERO.is_inf());
    /// ```
    pub fn is_inf(self) -> bool {
        self.0.is_infinite()
    }

    /// The nanotokens this rate refills in `d`, to the nearest (0 for a zero rate or a zero
    /// `d`; saturating, so [`Limit::INF`] refills any bucket at once).
    fn refill(self, d: Duration) -> i128 {
        if d.is_zero() || self.0 <= 0.0 {
            return 0;
        }
        // `as` saturates: an infinite or huge refill is i128::MAX.
        (d.as_nanos() as f64 * self.0).round() as i128
    }

    /// How long this rate takes to refill `nanotokens` (> 0), rounded up to the nanosecond so
    /// that `refill` of it covers them; `None` if never (a zero rate, or longer than a
    /// `Duration` holds).
    fn time_to_refill(self, nanotokens: i128) -> Option<Duration> {
        if self.is_inf() {
            return Some(Duration::ZERO);
        }
        if self.0 <= 0.0 {
            return None;
        }
        let nanos = (nanotokens as f64 / self.0).ceil();
        (nanos < u64::MAX as f64).then(|| Duration::from_nanos(nanos as u64))
    }
}

impl From<f64> for Limit {
    /// [`Limit::per_second`].
    fn from(events: f64) -> Limit {
        Limit::per_second(events)
    }
}

/// The rate of one event every `interval` (Go's `rate.Every`); a zero interval is
/// [`Limit::INF`].
///
/// ```
/// use std::time::Duration;
/// assert_eq!(gort::rate::every(Duration::from_millis(100)).events_per_second(), 10.0);
/// ```
pub fn every(interval: Duration) -> Limit {
    if interval.is_zero() {
        return Limit::INF;
    }
    Limit(1.0 / interval.as_secs_f64())
}

/// A token-bucket rate limiter (Go's `rate.Limiter`): at most `burst` events at once, `limit`
/// events a second over time. The module's top comment has the model.
///
/// A `Limiter` is a handle (an `Arc` inside): clones share one bucket, so clone it into each
/// goroutine it throttles. `Send` and `Sync`.
///
/// ```
/// use gort::rate::{Limit, Limiter};
///
/// let limiter = Limiter::new(Limit::per_second(1.0), 2);
/// let shared = limiter.clone(); // the same bucket
/// assert!(limiter.allow() && shared.allow());
/// assert!(!limiter.allow()); // two taken: empty for the next second
/// ```
#[derive(Clone)]
pub struct Limiter(Arc<Mutex<Bucket>>);

/// The bucket's state, as of `last`. The module's top comment has the invariants.
struct Bucket {
    limit: Limit,
    burst: usize,
    /// In nanotokens.
    tokens: i128,
    /// When `tokens` was last brought up to date; `None` while the bucket is untouched (full).
    last: Option<Instant>,
    /// The nanotokens taken by reservations so far (a running total; see the invariants).
    reserved: i128,
}

impl Bucket {
    /// The nanotokens in the bucket at `now`: `tokens` plus the refill since `last`, at most
    /// `burst`. Reads only.
    fn tokens_at(&self, now: Instant) -> i128 {
        let burst = nanotokens(self.burst);
        let Some(last) = self.last else {
            return burst;
        };
        let refill = self.limit.refill(now.saturating_duration_since(last));
        self.tokens.saturating_add(refill).min(burst)
    }

    /// Brings the bucket up to date at `now` (`tokens` as of `now`).
    fn advance(&mut self, now: Instant) {
        self.tokens = self.tokens_at(now);
        self.last = Some(now);
    }
}

/// Why a reservation was refused (the internal form: [`Reservation::ok`] is false).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    ExceedsBurst(usize),
    NeverGranted,
    TooLate,
}

impl Limiter {
    /// A limiter that allows `limit` events a second with bursts of up to `burst`; its bucket
    /// starts full. A `burst` of 0 allows nothing (no request of one token or more), unless
    /// `limit` is [`Limit::INF`].
    ///
    /// ```
    /// use gort::rate::{Limit, Limiter};
    /// let limiter = Limiter::new(Limit::per_second(10.0), 5);
    /// assert_eq!((limiter.limit(), limiter.burst()), (Limit::per_second(10.0), 5));
    /// assert_eq!(limiter.tokens(), 5.0);
    /// ```
    pub fn new(limit: Limit, burst: usize) -> Limiter {
        Limiter(Arc::new(Mutex::new(Bucket {
            limit,
            burst,
            tokens: nanotokens(burst),
            last: None,
            reserved: 0,
        })))
    }

    fn bucket(&self) -> MutexGuard<'_, Bucket> {
        // Nothing panics under the lock but arithmetic on values already checked; a poisoned
        // bucket is as consistent as the last assignment left it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The rate (Go's `Limit()`).
    ///
    /// ```
    /// let l = gort::rate::Limiter::new(gort::rate::Limit::INF, 0);
    /// assert!(l.limit().is_inf());
    /// ```
    pub fn limit(&self) -> Limit {
        self.bucket().limit
    }

    /// The largest number of tokens the bucket holds (Go's `Burst()`).
    ///
    /// ```
    /// assert_eq!(gort::rate::Limiter::new(gort::rate::Limit::ZERO, 7).burst(), 7);
    /// ```
    pub fn burst(&self) -> usize {
        self.bucket().burst
    }

    /// The tokens in the bucket now (Go's `Tokens()`); negative while reservations are
    /// queued ahead of the refill.
    ///
    /// ```
    /// let l = gort::rate::Limiter::new(gort::rate::Limit::ZERO, 3);
    /// assert!(l.allow());
    /// assert_eq!(l.tokens(), 2.0);
    /// ```
    pub fn tokens(&self) -> f64 {
        self.tokens_at(Instant::now())
    }

    /// The tokens in the bucket at `now` (Go's `TokensAt(t)`).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use gort::rate::{Limit, Limiter};
    /// let t0 = Instant::now();
    /// let l = Limiter::new(Limit::per_second(2.0), 4);
    /// assert!(l.allow_n(t0, 4));
    /// assert_eq!(l.tokens_at(t0 + Duration::from_millis(500)), 1.0);
    /// ```
    pub fn tokens_at(&self, now: Instant) -> f64 {
        self.bucket().tokens_at(now) as f64 / NANOTOKENS as f64
    }

    /// True if one event may happen now, and then takes its token; false (taking nothing) if
    /// not (Go's `Allow()`). For dropping or skipping events over the rate.
    ///
    /// ```
    /// let l = gort::rate::Limiter::new(gort::rate::Limit::ZERO, 1);
    /// assert!(l.allow());
    /// assert!(!l.allow());
    /// ```
    pub fn allow(&self) -> bool {
        self.allow_n(Instant::now(), 1)
    }

    /// True if `n` events may happen at `now`, and then takes their tokens (Go's
    /// `AllowN(t, n)`).
    ///
    /// ```
    /// use std::time::Instant;
    /// let l = gort::rate::Limiter::new(gort::rate::Limit::ZERO, 5);
    /// let now = Instant::now();
    /// assert!(!l.allow_n(now, 6)); // more than a burst: never
    /// assert!(l.allow_n(now, 5));
    /// ```
    pub fn allow_n(&self, now: Instant, n: usize) -> bool {
        self.reserve_within(now, n, Some(Duration::ZERO)).is_ok()
    }

    /// Reserves one token for an event that will wait for it (Go's `Reserve()`); see
    /// [`reserve_n`](Limiter::reserve_n).
    ///
    /// ```
    /// use std::time::Duration;
    /// use gort::rate::{every, Limiter};
    /// let l = Limiter::new(every(Duration::from_secs(60)), 1);
    /// assert_eq!(l.reserve().delay(), Duration::ZERO);
    /// let r = l.reserve(); // the next token is a minute away
    /// assert!(r.ok() && r.delay() > Duration::from_secs(59));
    /// r.cancel(); // not going to wait that long: the token goes back
    /// ```
    pub fn reserve(&self) -> Reservation {
        self.reserve_n(Instant::now(), 1)
    }

    /// Reserves `n` tokens at `now` (Go's `ReserveN(t, n)`): the returned [`Reservation`]
    /// says how long to wait before acting ([`delay`](Reservation::delay)); the tokens are
    /// taken, and later reservations queue behind this one, unless it is
    /// [`cancel`](Reservation::cancel)led. Not [`ok`](Reservation::ok) (nothing taken) if `n`
    /// exceeds the burst, or if the tokens would never come (a zero limit).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use gort::rate::{Limit, Limiter};
    /// let t0 = Instant::now();
    /// let l = Limiter::new(Limit::per_second(10.0), 2);
    /// assert!(!l.reserve_n(t0, 3).ok());
    /// let r = l.reserve_n(t0, 2);
    /// assert_eq!(r.delay_from(t0), Duration::ZERO);
    /// let next = l.reserve_n(t0, 1);
    /// assert_eq!(next.delay_from(t0), Duration::from_millis(100));
    /// ```
    pub fn reserve_n(&self, now: Instant, n: usize) -> Reservation {
        match self.reserve_within(now, n, None) {
            Ok(r) => r,
            Err(_) => Reservation {
                ok: false,
                limiter: self.clone(),
                taken: 0,
                mark: 0,
                time_to_act: now,
            },
        }
    }

    /// Reserves `n` tokens at `now` if they come within `max_wait` (`None`: any time);
    /// otherwise takes nothing and says why.
    fn reserve_within(
        &self,
        now: Instant,
        n: usize,
        max_wait: Option<Duration>,
    ) -> Result<Reservation, Refusal> {
        let mut b = self.bucket();
        let limit = b.limit;
        if limit.is_inf() {
            return Ok(self.granted(0, b.reserved, now));
        }
        if n > b.burst {
            return Err(Refusal::ExceedsBurst(b.burst));
        }
        let left = b.tokens_at(now) - nanotokens(n);
        let wait = if left >= 0 {
            Duration::ZERO
        } else {
            limit.time_to_refill(-left).ok_or(Refusal::NeverGranted)?
        };
        if max_wait.is_some_and(|max| wait > max) {
            return Err(Refusal::TooLate);
        }
        b.tokens = left;
        b.last = Some(now);
        b.reserved += nanotokens(n);
        Ok(self.granted(nanotokens(n), b.reserved, later(now, wait)))
    }

    fn granted(&self, taken: i128, mark: i128, time_to_act: Instant) -> Reservation {
        Reservation {
            ok: true,
            limiter: self.clone(),
            taken,
            mark,
            time_to_act,
        }
    }

    /// Waits for one token (Go's `Wait(ctx)`); see [`wait_n`](Limiter::wait_n).
    ///
    /// ```
    /// let l = gort::rate::Limiter::new(gort::rate::Limit::per_second(1000.0), 1);
    /// let ctx = gort::context::background();
    /// l.wait(&ctx).unwrap();
    /// l.wait(&ctx).unwrap(); // about a millisecond later
    /// ```
    pub fn wait(&self, ctx: &Context) -> Result<(), WaitError> {
        self.wait_n(ctx, 1)
    }

    /// Waits until `n` events may happen, parking the goroutine (a plain thread blocks), and
    /// takes their tokens (Go's `WaitN(ctx, n)`). Fails at once, taking nothing, if `n`
    /// exceeds the burst (unless the limit is [`Limit::INF`]), if `ctx` is already cancelled,
    /// if `ctx`'s deadline comes before the tokens would, or if they never would (a zero
    /// limit). If `ctx` is cancelled during the wait, the reservation is cancelled (its tokens
    /// go back, as [`Reservation::cancel`]) and the context's error is returned.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gort::context;
    /// use gort::rate::{every, Limiter, WaitError};
    ///
    /// let l = Limiter::new(every(Duration::from_secs(60)), 2);
    /// let ctx = context::background();
    /// assert_eq!(l.wait_n(&ctx, 3), Err(WaitError::ExceedsBurst { n: 3, burst: 2 }));
    /// l.wait_n(&ctx, 2).unwrap(); // the burst, at once
    /// let (ctx, _cancel) = context::with_timeout(&ctx, Duration::from_secs(1));
    /// assert_eq!(l.wait(&ctx), Err(WaitError::ExceedsDeadline { n: 1 })); // at once
    /// ```
    pub fn wait_n(&self, ctx: &Context, n: usize) -> Result<(), WaitError> {
        self.wait_with(ctx, n, Instant::now, crate::time::after)
    }

    /// [`wait_n`](Limiter::wait_n) on the clock `now` and the timer `timer` (a channel that
    /// receives once the given delay has passed): the seam its tests drive by hand.
    fn wait_with<T: Deref<Target = Receiver<Instant>>>(
        &self,
        ctx: &Context,
        n: usize,
        now: impl Fn() -> Instant,
        timer: impl FnOnce(Duration) -> T,
    ) -> Result<(), WaitError> {
        let (limit, burst) = {
            let b = self.bucket();
            (b.limit, b.burst)
        };
        if n > burst && !limit.is_inf() {
            return Err(WaitError::ExceedsBurst { n, burst });
        }
        if let Some(e) = ctx.err() {
            return Err(WaitError::Context(e));
        }
        let start = now();
        let max_wait = ctx.deadline().map(|d| d.saturating_duration_since(start));
        let reservation =
            self.reserve_within(start, n, max_wait)
                .map_err(|refusal| match refusal {
                    Refusal::ExceedsBurst(burst) => WaitError::ExceedsBurst { n, burst },
                    Refusal::NeverGranted => WaitError::NeverGranted { n },
                    Refusal::TooLate => WaitError::ExceedsDeadline { n },
                })?;
        let delay = reservation.delay_from(start);
        if delay.is_zero() {
            return Ok(());
        }
        let fired = timer(delay);
        chan::select! {
            recv(&*fired) -> _ => Ok(()),
            recv(ctx.done()) -> _ => {
                reservation.cancel_at(now());
                Err(WaitError::Context(ctx.err().unwrap_or(ContextError::Canceled)))
            },
        }
    }

    /// Sets the rate from now on (Go's `SetLimit`): the tokens refilled so far count at the
    /// old rate. Reservations already made keep their times.
    ///
    /// ```
    /// let l = gort::rate::Limiter::new(gort::rate::Limit::ZERO, 1);
    /// l.set_limit(gort::rate::Limit::INF);
    /// assert!((0..100).all(|_| l.allow()));
    /// ```
    pub fn set_limit(&self, limit: Limit) {
        self.set_limit_at(Instant::now(), limit);
    }

    /// Sets the rate from `now` on (Go's `SetLimitAt(t, l)`).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use gort::rate::{Limit, Limiter};
    /// let t0 = Instant::now();
    /// let l = Limiter::new(Limit::per_second(1.0), 10);
    /// assert!(l.allow_n(t0, 10));
    /// l.set_limit_at(t0 + Duration::from_secs(2), Limit::per_second(4.0)); // 2 tokens so far
    /// assert_eq!(l.tokens_at(t0 + Duration::from_secs(3)), 6.0); // then 4 in a second
    /// ```
    pub fn set_limit_at(&self, now: Instant, limit: Limit) {
        let mut b = self.bucket();
        b.advance(now);
        b.limit = limit;
    }

    /// Sets the burst from now on (Go's `SetBurst`); tokens above a smaller burst are dropped.
    ///
    /// ```
    /// let l = gort::rate::Limiter::new(gort::rate::Limit::ZERO, 1);
    /// l.set_burst(3);
    /// assert!(!l.allow_n(std::time::Instant::now(), 2)); // one token in the bucket
    /// assert_eq!(l.burst(), 3);
    /// ```
    pub fn set_burst(&self, burst: usize) {
        self.set_burst_at(Instant::now(), burst);
    }

    /// Sets the burst from `now` on (Go's `SetBurstAt(t, b)`).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use gort::rate::{Limit, Limiter};
    /// let t0 = Instant::now();
    /// let l = Limiter::new(Limit::per_second(1.0), 1);
    /// l.set_burst_at(t0, 5);
    /// assert_eq!(l.tokens_at(t0 + Duration::from_secs(10)), 5.0);
    /// ```
    pub fn set_burst_at(&self, now: Instant, burst: usize) {
        let mut b = self.bucket();
        b.advance(now);
        b.burst = burst;
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bucket();
        f.debug_struct("Limiter")
            .field("limit", &b.limit)
            .field("burst", &b.burst)
            .field(
                "tokens",
                &(b.tokens_at(Instant::now()) as f64 / NANOTOKENS as f64),
            )
            .finish()
    }
}

/// Tokens taken from a [`Limiter`] for events that act after [`delay`](Reservation::delay)
/// (Go's `rate.Reservation`). Dropping it keeps the tokens taken; [`cancel`](Reservation::cancel)
/// gives them back.
///
/// ```
/// use std::time::Duration;
/// use gort::rate::{Limit, Limiter};
/// let l = Limiter::new(Limit::per_second(100.0), 1);
/// let r = l.reserve();
/// if r.ok() {
///     gort::time::sleep(r.delay()); // then act
/// }
/// ```
#[derive(Debug)]
#[must_use = "a reservation holds tokens: act after its delay, or cancel it"]
pub struct Reservation {
    ok: bool,
    limiter: Limiter,
    /// The nanotokens it took (none at [`Limit::INF`]).
    taken: i128,
    /// The bucket's `reserved` just after it was made.
    mark: i128,
    time_to_act: Instant,
}

impl Reservation {
    /// True if the tokens were reserved; false if the limiter refused (more than its burst,
    /// or never at a zero limit), and then nothing was taken.
    ///
    /// ```
    /// let l = gort::rate::Limiter::new(gort::rate::Limit::ZERO, 1);
    /// assert!(l.reserve().ok());
    /// assert!(!l.reserve().ok()); // a zero limit never refills
    /// ```
    pub fn ok(&self) -> bool {
        self.ok
    }

    /// How long to wait from now before acting (Go's `Delay()`): zero if the time has come,
    /// `Duration::MAX` if not [`ok`](Reservation::ok).
    ///
    /// ```
    /// let l = gort::rate::Limiter::new(gort::rate::Limit::ZERO, 1);
    /// assert_eq!(l.reserve_n(std::time::Instant::now(), 2).delay(), std::time::Duration::MAX);
    /// ```
    pub fn delay(&self) -> std::time::Duration {
        self.delay_from(Instant::now())
    }

    /// How long to wait from `now` before acting (Go's `DelayFrom(t)`).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use gort::rate::{Limit, Limiter};
    /// let t0 = Instant::now();
    /// let l = Limiter::new(Limit::per_second(4.0), 1);
    /// let _first = l.reserve_n(t0, 1);
    /// let second = l.reserve_n(t0, 1);
    /// assert_eq!(second.delay_from(t0), Duration::from_millis(250));
    /// assert_eq!(second.delay_from(t0 + Duration::from_secs(1)), Duration::ZERO);
    /// ```
    pub fn delay_from(&self, now: Instant) -> Duration {
        if !self.ok {
            return Duration::MAX;
        }
        self.time_to_act.saturating_duration_since(now)
    }

    /// Gives the tokens back as far as that is still possible (Go's `Cancel()`): the event
    /// will not happen. See [`cancel_at`](Reservation::cancel_at).
    ///
    /// ```
    /// use std::time::Duration;
    /// let l = gort::rate::Limiter::new(gort::rate::every(Duration::from_secs(60)), 1);
    /// assert!(l.allow());
    /// l.reserve().cancel();
    /// assert!(l.tokens() > -0.5); // the reserved token is back: the bucket is as before
    /// ```
    pub fn cancel(self) {
        self.cancel_at(Instant::now());
    }

    /// Gives the tokens back at `now` (Go's `CancelAt(t)`). Nothing comes back if its time to
    /// act has passed (the tokens were used), if it was not `ok`, or at [`Limit::INF`]. The
    /// tokens reserved after this one stay taken (their holders were promised their times),
    /// so only the part of this reservation not already counted by later ones is restored.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use gort::rate::{Limit, Limiter};
    /// let t0 = Instant::now();
    /// let l = Limiter::new(Limit::per_second(1.0), 2);
    /// let r = l.reserve_n(t0, 2);
    /// assert_eq!(l.tokens_at(t0), 0.0);
    /// r.cancel_at(t0);
    /// assert_eq!(l.tokens_at(t0), 2.0);
    /// ```
    pub fn cancel_at(self, now: Instant) {
        if !self.ok || self.taken == 0 || self.time_to_act < now {
            return;
        }
        let mut b = self.limiter.bucket();
        if b.limit.is_inf() {
            return;
        }
        let reserved_after = b.reserved - self.mark;
        let restore = self.taken - reserved_after;
        if restore <= 0 {
            return;
        }
        b.advance(now);
        b.tokens = (b.tokens + restore).min(nanotokens(b.burst));
        if reserved_after == 0 {
            // The latest reservation: the queue ends where it began.
            b.reserved -= self.taken;
        }
    }
}

/// Why [`Limiter::wait_n`] returned without the tokens. The messages are Go's.
///
/// ```
/// use gort::rate::WaitError;
/// let e = WaitError::ExceedsBurst { n: 5, burst: 3 };
/// assert_eq!(e.to_string(), "rate: Wait(n=5) exceeds limiter's burst 3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitError {
    /// More tokens were asked for than the bucket holds.
    ExceedsBurst {
        /// Tokens asked for.
        n: usize,
        /// The limiter's burst.
        burst: usize,
    },
    /// The context's deadline comes before the tokens would.
    ExceedsDeadline {
        /// Tokens asked for.
        n: usize,
    },
    /// The tokens would never come: the limit is zero (or so small that the wait does not fit
    /// in a `Duration`) and the bucket holds too few.
    NeverGranted {
        /// Tokens asked for.
        n: usize,
    },
    /// The context was cancelled before the tokens came (or before the wait began).
    Context(ContextError),
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::ExceedsBurst { n, burst } => {
                write!(f, "rate: Wait(n={n}) exceeds limiter's burst {burst}")
            }
            WaitError::ExceedsDeadline { n } => {
                write!(f, "rate: Wait(n={n}) would exceed context deadline")
            }
            WaitError::NeverGranted { n } => {
                write!(f, "rate: Wait(n={n}) would never be granted at this limit")
            }
            WaitError::Context(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for WaitError {}

#[cfg(test)]
mod tests {
    //! The bucket's arithmetic on a hand-driven clock (the `*_at` seam), and `wait` on a
    //! hand-driven clock and timer (`wait_with`): no sleeps, no real timers.

    use super::*;
    use crate::context;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A clock the test moves by hand, in milliseconds after `base`, an hour ahead of the real
    /// clock: a context deadline on it stays in the future for the real timers.
    struct Clock {
        base: Instant,
        ms: AtomicU64,
    }

    impl Clock {
        fn new() -> Clock {
            Clock {
                base: Instant::now() + Duration::from_secs(3600),
                ms: AtomicU64::new(0),
            }
        }
        fn at(&self, n: u64) -> Instant {
            self.base + ms(n)
        }
        fn now(&self) -> Instant {
            self.at(self.ms.load(Ordering::Relaxed))
        }
        fn set(&self, n: u64) {
            self.ms.store(n, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_burst_then_the_steady_rate() {
        let c = Clock::new();
        let l = Limiter::new(Limit::per_second(4.0), 3); // one every 250 ms
        assert!((0..3).all(|_| l.allow_n(c.at(0), 1)));
        assert!(!l.allow_n(c.at(0), 1));
        assert!(!l.allow_n(c.at(249), 1));
        assert!(l.allow_n(c.at(250), 1));
        assert!(!l.allow_n(c.at(250), 1));
        assert!(!l.allow_n(c.at(499), 1));
        assert!(l.allow_n(c.at(500), 1));
        // A long pause refills no more than a burst.
        assert_eq!(l.tokens_at(c.at(100_000)), 3.0);
        assert!(l.allow_n(c.at(100_000), 3));
        assert!(!l.allow_n(c.at(100_000), 1));
    }

    #[test]
    fn a_refused_allow_takes_nothing() {
        let c = Clock::new();
        let l = Limiter::new(Limit::per_second(4.0), 2);
        assert!(l.allow_n(c.at(0), 1));
        assert!(!l.allow_n(c.at(0), 2));
        assert_eq!(l.tokens_at(c.at(0)), 1.0);
        assert!(!l.allow_n(c.at(0), 3)); // over the burst
        assert_eq!(l.tokens_at(c.at(0)), 1.0);
    }

    #[test]
    fn reservations_queue_one_behind_another() {
        let c = Clock::new();
        let l = Limiter::new(Limit::per_second(4.0), 2);
        let delays: Vec<_> = (0..5)
            .map(|_| l.reserve_n(c.at(0), 1).delay_from(c.at(0)))
            .collect();
        assert_eq!(delays, [ms(0), ms(0), ms(250), ms(500), ms(750)]);
        assert_eq!(l.tokens_at(c.at(0)), -3.0);
        assert_eq!(l.tokens_at(c.at(750)), 0.0);
        assert!(!l.allow_n(c.at(749), 1));
        assert!(l.allow_n(c.at(1000), 1));
    }

    #[test]
    fn allow_reserve_and_wait_agree() {
        // The same requests at the same times, three ways: each grants (at once) exactly when
        // the others do.
        let c = Clock::new();
        let by_allow = Limiter::new(Limit::per_second(4.0), 2);
        let by_reserve = Limiter::new(Limit::per_second(4.0), 2);
        let by_wait = Limiter::new(Limit::per_second(4.0), 2);
        let (ctx, _cancel) = context::with_deadline(&context::background(), c.at(0));
        let mut granted = Vec::new();
        for (t, n) in [
            (0, 1),
            (0, 1),
            (0, 1),
            (100, 1),
            (250, 1),
            (260, 1),
            (900, 2),
            (900, 3),
        ] {
            let now = c.at(t);
            let a = by_allow.allow_n(now, n);
            let r = by_reserve.reserve_n(now, n);
            let r = if r.ok() && r.delay_from(now).is_zero() {
                true
            } else {
                r.cancel_at(now);
                false
            };
            c.set(t);
            // The context's deadline is at 0: from then on, any wait at all is too late.
            let w = by_wait.wait_with(
                &ctx,
                n,
                || c.now(),
                |_| -> Box<Receiver<Instant>> { unreachable!("a wait that had to park") },
            );
            assert_eq!(a, w.is_ok(), "allow vs wait at {t} ms, n={n}");
            assert_eq!(a, r, "allow vs reserve at {t} ms, n={n}");
            granted.push(a);
            let tokens = by_allow.tokens_at(now);
            assert_eq!(tokens, by_reserve.tokens_at(now), "tokens at {t} ms");
            assert_eq!(tokens, by_wait.tokens_at(now), "tokens at {t} ms");
        }
        assert_eq!(
            granted,
            [true, true, false, false, true, false, true, false]
        );
    }

    #[test]
    fn cancel_gives_the_tokens_back() {
        let c = Clock::new();
        let l = Limiter::new(Limit::per_second(4.0), 2);
        assert!(l.allow_n(c.at(0), 2));
        let r = l.reserve_n(c.at(0), 2);
        assert_eq!(r.delay_from(c.at(0)), ms(500));
        r.cancel_at(c.at(100));
        // Back to empty at 0, refilled since: as if the reservation had never been made.
        assert_eq!(l.tokens_at(c.at(100)), 0.4);
        assert!(l.allow_n(c.at(250), 1));
    }

    #[test]
    fn cancel_keeps_the_tokens_of_later_reservations() {
        let c = Clock::new();
        let l = Limiter::new(Limit::per_second(4.0), 1);
        assert!(l.allow_n(c.at(0), 1));
        let first = l.reserve_n(c.at(0), 1); // at 250
        let second = l.reserve_n(c.at(0), 1); // at 500
        assert_eq!(second.delay_from(c.at(0)), ms(500));
        first.cancel_at(c.at(0));
        // `second` was promised 500 ms and already counts `first`'s token: nothing restored.
        assert_eq!(l.tokens_at(c.at(0)), -2.0);
        second.cancel_at(c.at(0));
        assert_eq!(l.tokens_at(c.at(0)), -1.0);
        // The queue ends at `first`'s 250 ms again: a new reservation is due 250 ms later.
        assert_eq!(l.reserve_n(c.at(0), 1).delay_from(c.at(0)), ms(500));
    }

    #[test]
    fn a_queue_cancelled_from_its_end_comes_back_whole() {
        // 3/s: a token every 333,333,333.3 ns, which no `Duration` holds exactly.
        let c = Clock::new();
        let l = Limiter::new(Limit::per_second(3.0), 1);
        assert!(l.allow_n(c.at(0), 1));
        let queue: Vec<_> = (1..=6).map(|t| l.reserve_n(c.at(t), 1)).collect();
        // The sixth: 6 tokens owed at 6 ms, 0.018 refilled, 5.982 to come at 3/s.
        assert_eq!(queue[5].delay_from(c.at(6)), ms(1994));
        for r in queue.into_iter().rev() {
            r.cancel_at(c.at(10));
        }
        let left = l.tokens_at(c.at(10)) - 0.03;
        assert!(left.abs() < 1e-9, "{left}");
    }

    #[test]
    fn cancel_after_the_time_to_act_restores_nothing() {
        let c = Clock::new();
        let l = Limiter::new(Limit::per_second(4.0), 1);
        let r = l.reserve_n(c.at(0), 1);
        r.cancel_at(c.at(1)); // it acted at 0
        assert_eq!(l.tokens_at(c.at(1)), 0.004);
    }

    #[test]
    fn inf_grants_everything_and_zero_only_the_bucket() {
        let c = Clock::new();
        let inf = Limiter::new(Limit::INF, 0);
        assert!(inf.allow_n(c.at(0), 1_000_000));
        assert_eq!(inf.reserve_n(c.at(0), 5).delay_from(c.at(0)), ms(0));
        let zero = Limiter::new(Limit::ZERO, 2);
        assert!(zero.allow_n(c.at(0), 1));
        assert!(zero.reserve_n(c.at(1), 1).ok());
        assert!(!zero.reserve_n(c.at(1_000_000), 1).ok());
        assert_eq!(
            zero.reserve_n(c.at(2), 1).delay_from(c.at(2)),
            Duration::MAX
        );
        let ctx = context::background();
        let never = |_: Duration| -> Box<Receiver<Instant>> { unreachable!() };
        assert_eq!(
            zero.wait_with(&ctx, 1, || c.at(3), never),
            Err(WaitError::NeverGranted { n: 1 })
        );
        assert!(Limiter::new(Limit::INF, 0)
            .wait_with(&ctx, 10, || c.at(0), never)
            .is_ok());
    }

    #[test]
    fn set_limit_and_burst_keep_the_refill_so_far() {
        let c = Clock::new();
        let l = Limiter::new(Limit::per_second(4.0), 4);
        assert!(l.allow_n(c.at(0), 4));
        l.set_limit_at(c.at(500), Limit::per_second(1.0)); // 2 tokens at 4/s
        assert_eq!(l.tokens_at(c.at(1500)), 3.0); // then 1 at 1/s
        l.set_burst_at(c.at(1500), 1); // 3 in the bucket, above the new burst
        assert_eq!(l.tokens_at(c.at(1500)), 1.0);
        assert!(l.allow_n(c.at(1500), 1));
        assert!(!l.allow_n(c.at(1500), 1));
    }

    #[test]
    fn a_clock_that_goes_back_refills_nothing() {
        let c = Clock::new();
        let l = Limiter::new(Limit::per_second(4.0), 1);
        assert!(l.allow_n(c.at(1000), 1));
        assert_eq!(l.tokens_at(c.at(0)), 0.0);
        assert!(!l.allow_n(c.at(0), 1));
    }

    #[test]
    fn wait_parks_for_the_delay_of_its_reservation() {
        let c = Clock::new();
        let l = Limiter::new(Limit::per_second(4.0), 1);
        let ctx = context::background();
        let mut asked = Vec::new();
        let fired = |d: Duration| {
            asked.push(d);
            let (tx, rx) = chan::chan(1);
            tx.send(c.now() + d).unwrap();
            Box::new(rx)
        };
        assert_eq!(l.wait_with(&ctx, 1, || c.now(), fired), Ok(()));
        assert!(asked.is_empty(), "the burst needs no timer");
        let fired = |d: Duration| {
            asked.push(d);
            let (tx, rx) = chan::chan(1);
            tx.send(c.now() + d).unwrap();
            Box::new(rx)
        };
        assert_eq!(l.wait_with(&ctx, 1, || c.now(), fired), Ok(()));
        assert_eq!(asked, [ms(250)]);
        assert_eq!(l.tokens_at(c.at(250)), 0.0, "the token was taken");
    }

    #[test]
    fn wait_cancelled_by_its_context_gives_the_tokens_back() {
        let c = Clock::new();
        let l = Limiter::new(Limit::per_second(4.0), 2);
        assert!(l.allow_n(c.at(0), 2));
        let (ctx, cancel) = context::with_cancel(&context::background());
        let (_tx, never) = chan::chan::<Instant>(0);
        let result = l.wait_with(
            &ctx,
            2,
            || c.now(),
            |d| {
                assert_eq!(d, ms(500));
                assert_eq!(l.tokens_at(c.at(0)), -2.0, "reserved while it waits");
                c.set(100);
                cancel.cancel(); // the context ends while the wait is on
                Box::new(never)
            },
        );
        assert_eq!(result, Err(WaitError::Context(ContextError::Canceled)));
        assert_eq!(
            l.tokens_at(c.at(100)),
            0.4,
            "the reservation was cancelled at 100 ms"
        );
    }

    #[test]
    fn wait_refuses_at_once() {
        let c = Clock::new();
        let l = Limiter::new(Limit::per_second(4.0), 2);
        let never = |_: Duration| -> Box<Receiver<Instant>> { unreachable!() };
        let background = context::background();
        assert_eq!(
            l.wait_with(&background, 3, || c.at(0), never),
            Err(WaitError::ExceedsBurst { n: 3, burst: 2 })
        );
        let (done, cancel) = context::with_cancel(&background);
        cancel.cancel();
        assert_eq!(
            l.wait_with(&done, 1, || c.at(0), never),
            Err(WaitError::Context(ContextError::Canceled))
        );
        assert!(l.allow_n(c.at(0), 2));
        let (soon, _cancel) = context::with_deadline(&background, c.at(249));
        assert_eq!(
            l.wait_with(&soon, 1, || c.at(0), never),
            Err(WaitError::ExceedsDeadline { n: 1 })
        );
        assert_eq!(l.tokens_at(c.at(0)), 0.0, "the refusals took nothing");
    }

    #[test]
    fn every_and_limits() {
        assert_eq!(every(ms(250)), Limit::per_second(4.0));
        assert!(every(Duration::ZERO).is_inf());
        let one = NANOTOKENS;
        assert_eq!(Limit::per_second(4.0).time_to_refill(one), Some(ms(250)));
        assert_eq!(
            Limit::per_second(3.0).time_to_refill(one),
            Some(Duration::from_nanos(333_333_334))
        );
        // The rounding up covers the tokens (and overshoots by under a nanosecond's refill).
        assert_eq!(
            Limit::per_second(3.0).refill(Duration::from_nanos(333_333_334)),
            one + 2
        );
        assert_eq!(Limit::ZERO.time_to_refill(one), None);
        assert_eq!(Limit::per_second(1e-30).time_to_refill(one), None);
        assert_eq!(
            Limit::per_second(3.0).refill(Duration::from_secs(2)),
            6 * one
        );
        assert_eq!(Limit::INF.refill(ms(1)), i128::MAX);
    }

    #[test]
    #[should_panic(expected = "zero or more events a second")]
    fn a_negative_limit_panics() {
        let _ = Limit::per_second(-1.0);
    }
}
