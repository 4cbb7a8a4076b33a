//! Pattern: the or-done channel (Cox-Buday, "Concurrency in Go", ch. 4, "The or-done-channel").
//!
//! Go's idea: reading a channel you do not own, you cannot tell whether its producer will
//! ever close it, so a plain `for v := range c` may wait forever after your work is cancelled.
//! `orDone(done, c)` wraps the select on `done` and on `c` in a goroutine and returns a channel
//! that closes when either `c` closes or `done` does, so the consumer keeps its simple loop:
//! `for v := range orDone(done, c)`.
//!
//! In gort the wrapper is the same goroutine over `ctx.done()`; both the receive from `c` and the
//! send on are guarded by the context.
//!
//! Prints the five values a producer sends before it stalls (it keeps its channel open) and
//! shows the consumer's loop ending when the context's deadline passes.
//!
//! `cargo run --example or_done`

use std::time::{Duration, Instant};

use gort::context::{self, Context};
use gort::Receiver;

/// The values of `input` until it closes or `ctx` is cancelled, whichever comes first.
fn or_done<T: Send + 'static>(ctx: &Context, input: Receiver<T>) -> Receiver<T> {
    let (tx, rx) = gort::chan(0);
    let ctx = ctx.clone();
    gort::go!(move || loop {
        let v = gort::select! {
            recv(ctx.done()) -> _ => return,
            recv(input) -> v => match v {
                Ok(v) => v,
                Err(_) => return, // closed: close ours by returning
            },
        };
        gort::select! {
            recv(ctx.done()) -> _ => return,
            send(tx, v) -> sent => if sent.is_err() { return },
        }
    });
    rx
}

/// A producer we do not control: it sends 0..5, then waits without closing its channel until
/// `stop` is cancelled.
fn stalling_producer(stop: &Context) -> Receiver<u32> {
    let (tx, rx) = gort::chan(0);
    let stop = stop.clone();
    gort::go!(move || {
        for v in 0..5 {
            if tx.send(v).is_err() {
                return;
            }
        }
        let _ = stop.done().recv(); // holds `tx`, so the channel stays open
    });
    rx
}

fn main() {
    gort::run(|| {
        let (producer_ctx, _stop_producer) = context::with_cancel(&context::background());
        let values = stalling_producer(&producer_ctx);

        let timeout = Duration::from_millis(100);
        let start = Instant::now();
        let (ctx, _cancel) = context::with_timeout(&context::background(), timeout);
        let mut got = Vec::new();
        for v in or_done(&ctx, values) {
            got.push(v.to_string());
        }
        assert!(start.elapsed() >= timeout);
        assert_eq!(got, ["0", "1", "2", "3", "4"]);
        println!("or_done: received {}", got.join(" "));
        println!(
            "or_done: the loop ended when the context's 100 ms deadline passed ({}), \
             though the producer's channel is still open",
            ctx.err().unwrap()
        );
    });
}
