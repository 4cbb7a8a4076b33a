//! `gort::rate` (issue 13) on the real clock and gort's timers: a burst then the steady rate,
//! allow / reserve / wait agreeing, a wait cancelled by its context giving its tokens back,
//! refusals that take nothing, and a wait that parks the goroutine, not the thread. Every
//! scenario runs at GORT_MAXPROCS 1, 2 and 4, bounded in time by the harness. Timing checks are
//! "not before" only, plus one generous "by"; the bucket's own arithmetic is tested on a
//! hand-driven clock beside the code (`runtime/src/rate.rs`).

mod common;

use std::time::{Duration, Instant};

use common::Side;
use gort::context::{self, ContextError};
use gort::rate::{Limit, Limiter, WaitError};

/// A rate slow enough that no token comes back within a test: a token an hour.
fn hourly() -> Limit {
    Limit::per_second(1.0 / 3600.0)
}

/// A deadline (or timeout) no scenario reaches.
const FAR: Duration = Duration::from_secs(600);

/// What "by" means for scenarios whose waits add up to well under a second.
const GENEROUS: Duration = Duration::from_secs(20);

#[test]
fn a_burst_then_the_steady_rate_across_goroutines() {
    common::each_procs("a_burst_then_the_steady_rate_across_goroutines", |procs| {
        // 8 goroutines take 5 tokens each from one bucket of 5 refilled every 2 ms (500/s,
        // exact in the bucket's arithmetic). Each wait's reservation acts no earlier than the
        // burst plus one refill per token after it, so the k-th grant in time order (from 0)
        // comes no earlier than `start + 2 ms * (k + 1 - 5)`.
        const BURST: usize = 5;
        const WAITERS: usize = 8;
        const EACH: usize = 5;
        let interval = Duration::from_millis(2);
        let start = Instant::now();
        let limiter = Limiter::new(Limit::per_second(500.0), BURST);
        let waiters: Vec<_> = (0..WAITERS)
            .map(|_| {
                let limiter = limiter.clone();
                gort::go!(move || {
                    let ctx = context::background();
                    (0..EACH)
                        .map(|_| {
                            limiter.wait(&ctx).unwrap();
                            Instant::now()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut granted: Vec<Instant> = waiters
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        granted.sort();
        assert_eq!(granted.len(), WAITERS * EACH);
        for (k, at) in granted.iter().enumerate() {
            let refills = (k + 1).saturating_sub(BURST) as u32;
            let earliest = start + interval * refills;
            assert!(
                *at >= earliest,
                "grant {k} came {:?} early at maxprocs {procs}",
                earliest - *at
            );
        }
        assert!(start.elapsed() < GENEROUS, "{:?}", start.elapsed());
    });
}

#[test]
fn a_burst_then_the_steady_rate_on_a_plain_thread_and_a_goroutine() {
    common::each_procs(
        "a_burst_then_the_steady_rate_on_a_plain_thread_and_a_goroutine",
        |_| {
            for side in [Side::Thread, Side::Goroutine] {
                let limiter = Limiter::new(Limit::per_second(500.0), 2);
                let start = Instant::now();
                let join = common::start(side, move || {
                    let ctx = context::background();
                    (0..6).for_each(|_| limiter.wait(&ctx).unwrap());
                });
                join();
                // Six tokens: two in the bucket, four refills of 2 ms.
                assert!(start.elapsed() >= Duration::from_millis(8), "{side:?}");
            }
        },
    );
}

#[test]
fn allow_reserve_and_wait_agree() {
    common::each_procs("allow_reserve_and_wait_agree", |_| {
        for side in [Side::Thread, Side::Goroutine] {
            let join = common::start(side, || {
                // Three limiters alike, drained three ways: each grants the burst at once and
                // refuses (or would delay) the next.
                let by_allow = Limiter::new(hourly(), 3);
                let by_reserve = Limiter::new(hourly(), 3);
                let by_wait = Limiter::new(hourly(), 3);
                let (ctx, _cancel) = context::with_timeout(&context::background(), FAR);
                let allowed: Vec<bool> = (0..4).map(|_| by_allow.allow()).collect();
                let immediate: Vec<bool> = (0..4)
                    .map(|_| {
                        let r = by_reserve.reserve();
                        assert!(r.ok());
                        let now = r.delay().is_zero();
                        if !now {
                            assert!(r.delay() > Duration::from_secs(3500), "{:?}", r.delay());
                            r.cancel();
                        }
                        now
                    })
                    .collect();
                let waited: Vec<Result<(), WaitError>> =
                    (0..4).map(|_| by_wait.wait(&ctx)).collect();
                assert_eq!(allowed, [true, true, true, false]);
                assert_eq!(immediate, allowed);
                assert_eq!(
                    waited,
                    [
                        Ok(()),
                        Ok(()),
                        Ok(()),
                        Err(WaitError::ExceedsDeadline { n: 1 })
                    ]
                );
                assert!(ctx.err().is_none(), "the refusal came at once");
                for l in [&by_allow, &by_reserve, &by_wait] {
                    let tokens = l.tokens();
                    assert!((0.0..0.01).contains(&tokens), "{tokens} left");
                }
            });
            join();
        }
    });
}

#[test]
fn a_wait_cancelled_by_its_context_gives_its_tokens_back() {
    common::each_procs(
        "a_wait_cancelled_by_its_context_gives_its_tokens_back",
        |_| {
            let limiter = Limiter::new(hourly(), 2);
            assert!(limiter.allow_n(Instant::now(), 2));
            let (ctx, cancel) = context::with_cancel(&context::background());
            let waiter = {
                let limiter = limiter.clone();
                gort::go!(move || limiter.wait_n(&ctx, 2))
            };
            common::wait_until("the waiter reserved its tokens", || limiter.tokens() < -1.5);
            cancel.cancel();
            assert_eq!(
                waiter.join().unwrap(),
                Err(WaitError::Context(ContextError::Canceled))
            );
            let tokens = limiter.tokens();
            assert!(
                (0.0..0.01).contains(&tokens),
                "{tokens}: the tokens are back"
            );
            // The queue is as before the wait: the next reservation is one refill away.
            let next = limiter.reserve();
            assert!(
                next.delay() <= Duration::from_secs(3601),
                "{:?}",
                next.delay()
            );
            next.cancel();
        },
    );
}

#[test]
fn waits_cancelled_latest_first_give_every_token_back() {
    common::each_procs("waits_cancelled_latest_first_give_every_token_back", |_| {
        // Go's rule: a cancelled reservation keeps what later reservations already count, so
        // the whole queue comes back when it is cancelled from its end.
        const WAITERS: usize = 4;
        let limiter = Limiter::new(hourly(), 1);
        assert!(limiter.allow());
        let mut queue = Vec::new();
        for i in 1..=WAITERS {
            let (ctx, cancel) = context::with_cancel(&context::background());
            let limiter2 = limiter.clone();
            let waiter = gort::go!(move || limiter2.wait(&ctx));
            let reserved = || limiter.tokens() < 0.5 - i as f64;
            common::wait_until("the waiter reserved its token", reserved);
            queue.push((cancel, waiter));
        }
        while let Some((cancel, waiter)) = queue.pop() {
            cancel.cancel();
            let result = waiter.join().unwrap();
            assert_eq!(result, Err(WaitError::Context(ContextError::Canceled)));
            let tokens = limiter.tokens();
            let expected = -(queue.len() as f64);
            assert!(
                (expected..expected + 0.01).contains(&tokens),
                "{tokens} expected {expected}"
            );
        }
    });
}

#[test]
fn refusals_come_at_once_and_take_nothing() {
    common::each_procs("refusals_come_at_once_and_take_nothing", |_| {
        let limiter = Limiter::new(Limit::per_second(0.01), 3);
        let ctx = context::background();
        assert_eq!(
            limiter.wait_n(&ctx, 4),
            Err(WaitError::ExceedsBurst { n: 4, burst: 3 })
        );
        assert_eq!(limiter.tokens(), 3.0);
        assert!(limiter.allow_n(Instant::now(), 3));
        // The next token is 100 s away; the context ends in 1 s.
        let (soon, _cancel) = context::with_timeout(&ctx, Duration::from_secs(1));
        let start = Instant::now();
        assert_eq!(
            limiter.wait(&soon),
            Err(WaitError::ExceedsDeadline { n: 1 })
        );
        assert!(start.elapsed() < GENEROUS);
        assert!(limiter.tokens() >= 0.0, "the refusal reserved nothing");
        let (done, cancel) = context::with_cancel(&ctx);
        cancel.cancel();
        assert_eq!(
            limiter.wait(&done),
            Err(WaitError::Context(ContextError::Canceled))
        );
        assert!(limiter.tokens() >= 0.0);
        // Without a limit, any n passes, whatever the burst.
        let unlimited = Limiter::new(Limit::INF, 0);
        assert_eq!(unlimited.wait_n(&ctx, 1_000), Ok(()));
        let zero = Limiter::new(Limit::ZERO, 1);
        assert_eq!(zero.wait(&ctx), Ok(()));
        assert_eq!(zero.wait(&ctx), Err(WaitError::NeverGranted { n: 1 }));
    });
}

#[test]
fn a_wait_parks_the_goroutine_not_the_thread() {
    common::each_procs("a_wait_parks_the_goroutine_not_the_thread", |_| {
        // At maxprocs 1 the goroutine that cancels the wait runs only if the waiting one gave
        // its processor away; were the thread blocked, the harness would report a hang.
        let limiter = Limiter::new(hourly(), 1);
        assert!(limiter.allow());
        let (ctx, cancel) = context::with_cancel(&context::background());
        let waiter = {
            let limiter = limiter.clone();
            gort::go!(move || limiter.wait(&ctx))
        };
        common::wait_until("the waiter reserved its token", || limiter.tokens() < -0.5);
        let canceller = gort::go!(move || cancel.cancel());
        assert_eq!(
            waiter.join().unwrap(),
            Err(WaitError::Context(ContextError::Canceled))
        );
        canceller.join().unwrap();
    });
}

#[test]
fn a_wait_ends_by_its_time_to_act() {
    common::each_procs("a_wait_ends_by_its_time_to_act", |_| {
        // A waiter whose tokens come in 30 ms returns not before, and well before its context's
        // far deadline; a later `set_limit` does not move a reservation already made.
        let limiter = Limiter::new(Limit::per_second(100.0), 3);
        let start = Instant::now();
        assert!(limiter.allow_n(Instant::now(), 3));
        let (ctx, _cancel) = context::with_timeout(&context::background(), FAR);
        let waiter = {
            let limiter = limiter.clone();
            gort::go!(move || limiter.wait_n(&ctx, 3))
        };
        common::wait_until("the waiter reserved its tokens", || limiter.tokens() < -2.0);
        limiter.set_limit(Limit::per_second(1.0));
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(start.elapsed() < GENEROUS, "{:?}", start.elapsed());
    });
}
