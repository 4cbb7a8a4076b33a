//! Pattern: fan-out, fan-in (Cox-Buday, "Concurrency in Go", ch. 4, "Fan-Out, Fan-In"): the
//! book's prime finder.
//!
//! Go's idea: a stage that is slow and does not care about order (here a deliberately naive
//! primality test) can be run as several goroutines reading the same input channel (fan-out);
//! their outputs are merged back into one channel (fan-in) by a goroutine per input that copies
//! values into one stream, and a goroutine that closes the stream after a `WaitGroup` says every
//! copier is done.
//!
//! In gort the fan-in needs no `WaitGroup`: each copier holds a clone of the merged stream's
//! `Sender`, and the stream closes when the last clone is dropped, i.e. when the last copier
//! returns. Shutdown needs no `done` either: once `take` has its primes it drops its receiver,
//! the copiers' sends fail, they return and drop the finders' receivers, and so on up to the
//! random-number generator (the context is cancelled as well, as Go's `defer close(done)`).
//!
//! Prints the first ten primes found by one finder and by `maxprocs` finders (each checked),
//! the time each took, and that every goroutine of the pipeline has returned.
//!
//! `cargo run --example fan_out_fan_in`

use std::time::{Duration, Instant};

use gort::context::{self, Context};
use gort::Receiver;

/// Random numbers below this are tested; the book uses 50,000,000 with an optimised build.
const BELOW: u64 = 100_000;
const PRIMES_WANTED: usize = 10;

/// Sends `f()` over and over until `ctx` is cancelled or nobody receives.
fn repeat_fn<T: Send + 'static>(
    ctx: &Context,
    mut f: impl FnMut() -> T + Send + 'static,
) -> Receiver<T> {
    let (tx, rx) = gort::chan(0);
    let ctx = ctx.clone();
    gort::go!(move || loop {
        gort::select! {
            recv(ctx.done()) -> _ => return,
            send(tx, f()) -> sent => if sent.is_err() { return },
        }
    });
    rx
}

/// Passes on the first `n` values of `input`, then closes its output.
fn take<T: Send + 'static>(ctx: &Context, input: Receiver<T>, n: usize) -> Receiver<T> {
    let (tx, rx) = gort::chan(0);
    let ctx = ctx.clone();
    gort::go!(move || {
        for _ in 0..n {
            let Ok(v) = input.recv() else { return };
            gort::select! {
                recv(ctx.done()) -> _ => return,
                send(tx, v) -> sent => if sent.is_err() { return },
            }
        }
    });
    rx
}

/// The book's slow stage: passes on the primes of `input`, tested by trying every divisor.
fn prime_finder(ctx: &Context, input: Receiver<u64>) -> Receiver<u64> {
    let (tx, rx) = gort::chan(0);
    let ctx = ctx.clone();
    gort::go!(move || {
        for n in &input {
            if !is_prime_slowly(n) {
                continue;
            }
            gort::select! {
                recv(ctx.done()) -> _ => return,
                send(tx, n) -> sent => if sent.is_err() { return },
            }
        }
    });
    rx
}

fn is_prime_slowly(n: u64) -> bool {
    n >= 2 && (2..n).rev().all(|d| n % d != 0)
}

/// Merges `inputs` into one stream, in whatever order values arrive. The stream closes when the
/// last copier returns and drops its `Sender`.
fn fan_in<T: Send + 'static>(ctx: &Context, inputs: Vec<Receiver<T>>) -> Receiver<T> {
    let (tx, rx) = gort::chan(0);
    for input in inputs {
        let (ctx, tx) = (ctx.clone(), tx.clone());
        gort::go!(move || {
            for v in &input {
                gort::select! {
                    recv(ctx.done()) -> _ => return,
                    send(tx, v) -> sent => if sent.is_err() { return },
                }
            }
        });
    }
    rx
}

/// A seeded pseudo-random generator (xorshift64), numbers below [`BELOW`].
fn rand_from(mut state: u64) -> impl FnMut() -> u64 + Send {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % BELOW
    }
}

/// Finds [`PRIMES_WANTED`] primes in a random stream with `finders` prime finders.
fn find_primes(finders: usize) -> (Vec<u64>, Duration) {
    let start = Instant::now();
    let (ctx, _cancel) = context::with_cancel(&context::background()); // cancels when dropped
    let numbers = repeat_fn(&ctx, rand_from(7));
    let found = (0..finders)
        .map(|_| prime_finder(&ctx, numbers.clone()))
        .collect();
    drop(numbers); // only the finders hold it now
    let primes: Vec<u64> = take(&ctx, fan_in(&ctx, found), PRIMES_WANTED)
        .iter()
        .collect();
    (primes, start.elapsed())
}

fn main() {
    gort::run(|| {
        let before = gort::num_goroutine();
        for finders in [1, gort::maxprocs().max(2)] {
            let (primes, took) = find_primes(finders);
            assert_eq!(primes.len(), PRIMES_WANTED);
            assert!(primes.iter().all(|&p| is_prime_slowly(p)));
            let list: Vec<String> = primes.iter().map(u64::to_string).collect();
            println!(
                "fan_out_fan_in: {finders} finder(s): {PRIMES_WANTED} primes in {} ms: {} (each checked)",
                took.as_millis(),
                list.join(" ")
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while gort::num_goroutine() > before {
            assert!(
                Instant::now() < deadline,
                "a pipeline goroutine is still running"
            );
            gort::time::sleep(Duration::from_millis(1));
        }
        println!("fan_out_fan_in: every generator, finder and copier goroutine has returned");
    });
}
