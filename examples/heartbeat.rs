//! Pattern: heartbeats (Cox-Buday, "Concurrency in Go", ch. 5, "Heartbeats").
//!
//! Go's idea: a long-lived worker returns, beside its results channel, a heartbeat channel on
//! which it sends a pulse every interval, whether or not it has a result. A pulse is sent with
//! `select { case heartbeat <- struct{}{}: default: }`, so nobody listening costs the worker
//! nothing. The consumer selects on results, heartbeats and `time.After(timeout)`: silence for
//! longer than the timeout means the worker is stuck, which a results channel alone cannot
//! tell from "no results yet".
//!
//! In gort a worker that returns drops its senders, which closes both channels: the consumer
//! sees `Err` at once. So the stalled worker below does not return after its two rounds (Go's
//! demo lets its goroutine exit without closing anything); it waits for cancellation, as a
//! worker stuck on a lock would, and only the missing pulses reveal it.
//!
//! Prints what a consumer saw of a healthy worker (pulses every 10 ms, a result every 20 ms,
//! stopped by its context after 100 ms; the counts vary a little) and that a worker that stalls
//! after two rounds is caught by the 40 ms timeout.
//!
//! `cargo run --example heartbeat`

use std::time::{Duration, Instant};

use gort::context::{self, Context};
use gort::Receiver;

const PULSE: Duration = Duration::from_millis(10);
const TIMEOUT: Duration = Duration::from_millis(40);

/// Sends a pulse if someone is listening, never blocks.
fn send_pulse(heartbeat: &gort::Sender<()>) {
    gort::select! {
        send(heartbeat, ()) -> _ => {},
        default => {},
    }
}

/// A worker producing a result every two pulses until `ctx` is cancelled. If `rounds` is
/// `Some(n)`, it stalls (stops pulsing, keeps its channels open) after `n` rounds.
fn do_work(ctx: &Context, rounds: Option<u32>) -> (Receiver<()>, Receiver<Instant>) {
    let (heartbeat_tx, heartbeat) = gort::chan(0);
    let (results_tx, results) = gort::chan(0);
    let ctx = ctx.clone();
    gort::go!(move || {
        let pulse = gort::time::tick(PULSE);
        let work = gort::time::tick(2 * PULSE);
        let mut round = 0;
        loop {
            if rounds == Some(round) {
                let _ = ctx.done().recv(); // stuck, holding both senders
                return;
            }
            round += 1;
            gort::select! {
                recv(ctx.done()) -> _ => return,
                recv(pulse) -> _ => send_pulse(&heartbeat_tx),
                recv(work) -> r => {
                    let result = r.expect("a tick");
                    loop {
                        gort::select! {
                            recv(ctx.done()) -> _ => return,
                            recv(pulse) -> _ => send_pulse(&heartbeat_tx),
                            send(results_tx, result) -> _ => break, // leaves the inner loop
                        }
                    }
                },
            }
        }
    });
    (heartbeat, results)
}

/// What the consumer saw.
enum Seen {
    Done { pulses: u32, results: u32 },
    Unhealthy { pulses: u32, results: u32 },
}

/// The consumer: counts pulses and results until the channels close or `TIMEOUT` passes
/// without either.
fn watch(heartbeat: Receiver<()>, results: Receiver<Instant>) -> Seen {
    let (mut pulses, mut got) = (0, 0);
    loop {
        gort::select! {
            recv(heartbeat) -> p => match p {
                Ok(()) => pulses += 1,
                Err(_) => return Seen::Done { pulses, results: got },
            },
            recv(results) -> r => match r {
                Ok(_) => got += 1,
                Err(_) => return Seen::Done { pulses, results: got },
            },
            recv(gort::time::after(TIMEOUT)) -> _ => {
                return Seen::Unhealthy { pulses, results: got };
            },
        }
    }
}

fn main() {
    gort::run(|| {
        let (ctx, _cancel) =
            context::with_timeout(&context::background(), Duration::from_millis(100));
        let (heartbeat, results) = do_work(&ctx, None);
        match watch(heartbeat, results) {
            Seen::Done { pulses, results } => println!(
                "heartbeat: healthy worker: {pulses} pulses and {results} results, then its \
                 context ended it (channels closed)"
            ),
            Seen::Unhealthy { pulses, results } => println!(
                "heartbeat: healthy worker: {pulses} pulses and {results} results, then no pulse \
                 for {} ms (this machine is very busy)",
                TIMEOUT.as_millis()
            ),
        }

        let (ctx, cancel) = context::with_cancel(&context::background());
        let (heartbeat, results) = do_work(&ctx, Some(2));
        let Seen::Unhealthy { .. } = watch(heartbeat, results) else {
            panic!("a stalled worker keeps its channels open: only the timeout can end watch");
        };
        println!(
            "heartbeat: stalled worker: no pulse for {} ms: the worker is not healthy",
            TIMEOUT.as_millis()
        );
        cancel.cancel(); // unsticks it: it returns
    });
}
