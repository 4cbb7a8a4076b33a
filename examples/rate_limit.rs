//! Pattern: rate limiting (Cox-Buday, "Concurrency in Go", ch. 5, "Rate Limiting").
//!
//! Go's idea: a token bucket (`golang.org/x/time/rate`) guards a resource: `rate.NewLimiter(r,
//! b)` holds up to `b` tokens, refilled at `r` a second; each request takes one, with `Wait(ctx)`
//! (block until a token comes, or the context ends) or `Allow()` (take one if there, else drop
//! the request). The book's API connection waits on a limiter in each call, then combines
//! limiters of different granularity (per second and per minute) into a `multiLimiter` whose
//! `Wait` waits on each, most restrictive first: bursts stay short and the long-run rate low.
//!
//! gort's `rate::Limiter` is that bucket: `Limiter::new(limit, burst)`, `allow()`,
//! `wait(&ctx)` (parks the goroutine on a timer), `rate::every(d)` for "one per `d`".
//!
//! Prints, scaled down to milliseconds: how many of ten instant requests `allow` lets through
//! (the burst), how long twenty requests from ten goroutines took through one limiter, the
//! same through a multi-limiter, and the error of a wait whose context ends before its token.
//!
//! `cargo run --example rate_limit`

use std::time::{Duration, Instant};

use gort::context::{self, Context};
use gort::rate::{every, Limiter, WaitError};

/// Several limiters as one: waits on each, the most restrictive first (the book's
/// `multiLimiter`).
#[derive(Clone)]
struct MultiLimiter(Vec<Limiter>);

impl MultiLimiter {
    fn new(mut limiters: Vec<Limiter>) -> MultiLimiter {
        limiters.sort_by(|a, b| {
            let rate = |l: &Limiter| l.limit().events_per_second();
            rate(a).total_cmp(&rate(b))
        });
        MultiLimiter(limiters)
    }

    fn wait(&self, ctx: &Context) -> Result<(), WaitError> {
        self.0.iter().try_for_each(|l| l.wait(ctx))
    }
}

/// `requests` requests, spread over `goroutines` goroutines, each waiting on `wait` first;
/// returns how long they took in all.
fn run_requests(
    goroutines: usize,
    requests: usize,
    wait: impl Fn(&Context) -> Result<(), WaitError> + Clone + Send + 'static,
) -> Duration {
    let start = Instant::now();
    let ctx = context::background();
    let workers: Vec<_> = (0..goroutines)
        .map(|_| {
            let (wait, ctx) = (wait.clone(), ctx.clone());
            gort::go!(move || {
                for _ in 0..requests / goroutines {
                    wait(&ctx).expect("background is never cancelled");
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    start.elapsed()
}

fn main() {
    gort::run(|| {
        // Allow: drop what exceeds the burst.
        let limiter = Limiter::new(every(Duration::from_secs(3600)), 3);
        let allowed = (0..10).filter(|_| limiter.allow()).count();
        assert_eq!(allowed, 3);
        println!("rate_limit: allow: {allowed} of 10 requests passed at once (burst 3), the rest dropped");

        // Wait: one limiter, one token every 10 ms, burst 1 (the book's 1 a second).
        let interval = Duration::from_millis(10);
        let limiter = Limiter::new(every(interval), 1);
        let took = run_requests(10, 20, move |ctx| limiter.wait(ctx));
        assert!(
            took >= interval * 19,
            "the first at once, then one per interval"
        );
        println!(
            "rate_limit: wait: 20 requests from 10 goroutines at one per 10 ms (burst 1) took {} ms",
            took.as_millis()
        );

        // A multi-limiter: at most 2 per 10 ms in a burst, and 4 per 80 ms over time.
        let fine = Limiter::new(every(Duration::from_millis(5)), 2);
        let coarse = Limiter::new(every(Duration::from_millis(20)), 4);
        let multi = MultiLimiter::new(vec![fine, coarse]);
        let took = run_requests(5, 10, move |ctx| multi.wait(ctx));
        assert!(
            took >= Duration::from_millis(20) * 6,
            "4 at once, then the coarse rate"
        );
        println!(
            "rate_limit: multi-limiter (one per 5 ms burst 2, one per 20 ms burst 4): 10 requests took {} ms",
            took.as_millis()
        );

        // A wait that cannot succeed before the context's deadline fails at once.
        let limiter = Limiter::new(every(Duration::from_secs(1)), 1);
        assert!(limiter.allow());
        let (ctx, _cancel) =
            context::with_timeout(&context::background(), Duration::from_millis(5));
        let err = limiter.wait(&ctx).unwrap_err();
        assert_eq!(err, WaitError::ExceedsDeadline { n: 1 });
        println!("rate_limit: a wait for a token 1 s away under a 5 ms deadline: {err}");
    });
}
