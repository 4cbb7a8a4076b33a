//! Pattern: generators (Cox-Buday, "Concurrency in Go", ch. 4, "Some Handy Generators").
//!
//! Go's idea: `repeat(done, values...)` sends its values over and over, `repeatFn(done, fn)`
//! sends `fn()` over and over, and `take(done, stream, n)` passes on the first `n` values of a
//! stream and closes. An infinite generator is safe because a `done` channel stops it:
//! `for v := range take(done, repeat(done, 1), 10)`.
//!
//! In gort the infinite generators also stop without `done`: when `take` has its `n` values it
//! returns and drops its `Receiver`, the last one of the generator's channel, so the generator's
//! next send fails at once and it returns. (In Go that send would block for good, and the
//! goroutine would leak unless `done` closed.) Each generator checks its send's result for that;
//! one that ignored it would spin, each send failing at once.
//!
//! Prints the values taken (deterministic: `repeat_fn` draws from a seeded generator), then
//! shows that the generators' goroutines are gone without cancelling the context.
//!
//! `cargo run --example generators`

use std::time::{Duration, Instant};

use gort::context::{self, Context};
use gort::Receiver;

/// Sends `values` in a cycle until `ctx` is cancelled or nobody receives.
fn repeat<T: Clone + Send + 'static>(ctx: &Context, values: Vec<T>) -> Receiver<T> {
    let (tx, rx) = gort::chan(0);
    let ctx = ctx.clone();
    gort::go!(move || loop {
        for v in &values {
            gort::select! {
                recv(ctx.done()) -> _ => return,
                send(tx, v.clone()) -> sent => if sent.is_err() { return },
            }
        }
    });
    rx
}

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

/// Passes on the first `n` values of `input`, then closes its output (and drops `input`).
fn take<T: Send + 'static>(ctx: &Context, input: Receiver<T>, n: usize) -> Receiver<T> {
    let (tx, rx) = gort::chan(0);
    let ctx = ctx.clone();
    gort::go!(move || {
        for _ in 0..n {
            // Go's `case takeStream <- <-valueStream`: the receive happens before the select.
            let Ok(v) = input.recv() else { return };
            gort::select! {
                recv(ctx.done()) -> _ => return,
                send(tx, v) -> sent => if sent.is_err() { return },
            }
        }
    });
    rx
}

/// A small seeded pseudo-random generator (xorshift64), so the output is the same every run.
fn rand_from(mut state: u64) -> impl FnMut() -> u64 + Send {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % 1000
    }
}

fn joined<T: ToString>(values: impl IntoIterator<Item = T>) -> String {
    values
        .into_iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    gort::run(|| {
        let before = gort::num_goroutine();
        let (ctx, _cancel) = context::with_cancel(&context::background());

        let ones = take(&ctx, repeat(&ctx, vec![1]), 10);
        println!("generators: take 10 of repeat(1): {}", joined(&ones));

        let cycle = take(&ctx, repeat(&ctx, vec!["a", "b", "c"]), 7);
        println!("generators: take 7 of repeat(a, b, c): {}", joined(&cycle));

        let random = take(&ctx, repeat_fn(&ctx, rand_from(42)), 5);
        println!("generators: take 5 of repeat_fn(rand): {}", joined(&random));

        // Every `take` has returned and dropped its receiver, so the three infinite generators'
        // sends fail and they return too: the goroutine count comes back without a cancel.
        let deadline = Instant::now() + Duration::from_secs(5);
        while gort::num_goroutine() > before {
            assert!(Instant::now() < deadline, "a generator is still running");
            gort::time::sleep(Duration::from_millis(1));
        }
        assert!(ctx.err().is_none());
        println!(
            "generators: the infinite generators returned once take dropped their receivers \
             (context still live)"
        );
    });
}
