//! Pattern: a pipeline of stages (Cox-Buday, "Concurrency in Go", ch. 4, "Pipelines").
//!
//! Go's idea: each stage is a function that takes a `done` channel and an input channel, starts
//! a goroutine that turns every value it receives into a value it sends on, and returns its
//! output channel; the goroutine closes its output when its input ends or `done` closes, so
//! stages compose like functions: `multiply(done, add(done, multiply(done, gen, 2), 1), 2)`.
//!
//! Here `done` is a `gort::context::Context`. Each send is a `select!` on `ctx.done()` and the
//! send, as in Go; the send's `Err` (every receiver of the output is gone) also ends the stage,
//! so dropping the end of a pipeline stops every stage upstream of it. A stage's output
//! closes when its goroutine returns and drops the last `Sender`.
//!
//! Prints the book's output (6 10 14 18), then takes one value from a second pipeline, cancels
//! it, and shows that its output closes: every stage returned.
//!
//! `cargo run --example pipeline_stages`

use gort::context::{self, Context};
use gort::Receiver;

/// The first stage: sends `values` in order, then closes its output.
fn generator(ctx: &Context, values: Vec<i64>) -> Receiver<i64> {
    let (tx, rx) = gort::chan(0);
    let ctx = ctx.clone();
    gort::go!(move || {
        for v in values {
            gort::select! {
                recv(ctx.done()) -> _ => return,
                send(tx, v) -> sent => if sent.is_err() { return }, // nobody reads any more
            }
        }
    });
    rx
}

/// A stage: applies `f` to every value of `input` and sends the result on.
fn stage(
    ctx: &Context,
    input: Receiver<i64>,
    f: impl Fn(i64) -> i64 + Send + 'static,
) -> Receiver<i64> {
    let (tx, rx) = gort::chan(0);
    let ctx = ctx.clone();
    gort::go!(move || {
        for v in &input {
            gort::select! {
                recv(ctx.done()) -> _ => return,
                send(tx, f(v)) -> sent => if sent.is_err() { return },
            }
        }
    });
    rx
}

fn multiply(ctx: &Context, input: Receiver<i64>, by: i64) -> Receiver<i64> {
    stage(ctx, input, move |v| v * by)
}

fn add(ctx: &Context, input: Receiver<i64>, n: i64) -> Receiver<i64> {
    stage(ctx, input, move |v| v + n)
}

fn main() {
    gort::run(|| {
        let (ctx, _cancel) = context::with_cancel(&context::background());
        let ints = generator(&ctx, vec![1, 2, 3, 4]);
        let pipeline = multiply(&ctx, add(&ctx, multiply(&ctx, ints, 2), 1), 2);
        let out: Vec<String> = pipeline.iter().map(|v| v.to_string()).collect();
        println!("pipeline_stages: (v*2+1)*2 of 1 2 3 4 = {}", out.join(" "));
        assert_eq!(out, ["6", "10", "14", "18"]);

        // A long pipeline stopped early: cancel, then the output closes once every stage has
        // returned (each drops its sender on the way out).
        let (ctx, cancel) = context::with_cancel(&context::background());
        let ints = generator(&ctx, (1..=1_000_000).collect());
        let pipeline = multiply(&ctx, add(&ctx, multiply(&ctx, ints, 2), 1), 2);
        let first = pipeline.recv().expect("a first value");
        cancel.cancel();
        // A value or a few may still come (a stage whose send and `done` are both ready picks
        // either, as Go's select does); the loop ends when the last stage's sender is gone.
        for _late in &pipeline {}
        println!(
            "pipeline_stages: took {first} from 1,000,000 inputs, cancelled: the output closed \
             (every stage returned)"
        );
    });
}
