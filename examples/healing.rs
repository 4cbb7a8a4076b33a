//! Pattern: healing unhealthy goroutines (Cox-Buday, "Concurrency in Go", ch. 5, "Healing
//! Unhealthy Goroutines"): a steward restarts its ward.
//!
//! Go's idea: a long-lived goroutine (the ward) is started through a function
//! `startGoroutineFn(done, pulseInterval) (heartbeat <-chan interface{})`. A steward wraps that
//! function: it starts the ward with a `done` of its own (`or(wardDone, done)`), watches the
//! ward's heartbeat, and when no pulse comes within its timeout it closes `wardDone` and starts
//! a new ward. The steward has the same signature, so stewards can watch stewards. The book's
//! ward sends the values of a list on a channel it hands to a `bridge` (so the consumer sees
//! one stream across restarts) and fails on a negative value: 1 2 -1 ... gives 1 2, a failure,
//! a restart, 1 2, and so on.
//!
//! In gort `or(wardDone, done)` is a child context of the steward's (`with_cancel`), cancelled
//! to stop the ward. One difference matters: the book's ward returns after logging the failure,
//! and in gort that drops its heartbeat `Sender`, which closes the heartbeat channel; a closed
//! channel's receive is always ready, so a steward looping on it would spin instead of timing
//! out. The steward sets the ward's heartbeat to `None` (Go's nil channel, never ready) once it
//! is closed, and the timeout decides, as in Go.
//!
//! Prints the values received and each failure and restart, then a summary.
//!
//! `cargo run --example healing`

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gort::context::{self, Context};
use gort::{Receiver, Sender};

/// Starts a monitored goroutine under `ctx`; it pulses every `pulse_interval` on the returned
/// heartbeat channel (Go's `startGoroutineFn`).
type StartGoroutine = Arc<dyn Fn(&Context, Duration) -> Receiver<()> + Send + Sync>;

const STEWARD_TIMEOUT: Duration = Duration::from_millis(20);

/// How many times the steward restarted its ward.
static RESTARTS: AtomicU32 = AtomicU32::new(0);

fn send_pulse(heartbeat: &Sender<()>) {
    gort::select! {
        send(heartbeat, ()) -> _ => {},
        default => {},
    }
}

/// Wraps `start_ward` in a steward that restarts the ward when it misses its heartbeat for
/// `timeout`. The result starts the steward; it pulses like any ward.
fn new_steward(timeout: Duration, start_ward: StartGoroutine) -> StartGoroutine {
    Arc::new(move |ctx: &Context, pulse_interval: Duration| {
        let (heartbeat_tx, heartbeat) = gort::chan(0);
        let (ctx, start_ward) = (ctx.clone(), start_ward.clone());
        gort::go!(move || {
            let start = |ctx: &Context| {
                let (ward_ctx, stop_ward) = context::with_cancel(ctx); // or(wardDone, done)
                let ward_heartbeat = start_ward(&ward_ctx, timeout / 2);
                (stop_ward, Some(ward_heartbeat))
            };
            let (mut stop_ward, mut ward_heartbeat) = start(&ctx);
            let pulse = gort::time::tick(pulse_interval);
            'monitor: loop {
                let timeout_signal = gort::time::after(timeout);
                loop {
                    gort::select! {
                        recv(pulse) -> _ => send_pulse(&heartbeat_tx),
                        recv(ward_heartbeat) -> beat => match beat {
                            Ok(()) => continue 'monitor,
                            // The ward returned and its heartbeat closed: never ready from now
                            // on (a closed channel would be ready at once, every time).
                            Err(_) => ward_heartbeat = None,
                        },
                        recv(timeout_signal) -> _ => {
                            println!("healing: steward: ward unhealthy; restarting");
                            RESTARTS.fetch_add(1, Ordering::Relaxed);
                            stop_ward.cancel();
                            (stop_ward, ward_heartbeat) = start(&ctx);
                            continue 'monitor;
                        },
                        recv(ctx.done()) -> _ => return,
                    }
                }
            }
        });
        heartbeat
    })
}

/// The values of each channel of `streams` in turn, as one stream (the bridge example).
fn bridge<T: Send + 'static>(ctx: &Context, streams: Receiver<Receiver<T>>) -> Receiver<T> {
    let (tx, rx) = gort::chan(0);
    let ctx = ctx.clone();
    gort::go!(move || loop {
        let stream = gort::select! {
            recv(streams) -> s => match s {
                Ok(s) => s,
                Err(_) => return,
            },
            recv(ctx.done()) -> _ => return,
        };
        for v in &stream {
            gort::select! {
                send(tx, v) -> sent => if sent.is_err() { return },
                recv(ctx.done()) -> _ => return,
            }
        }
    });
    rx
}

/// The ward: sends `values` over and over on a fresh channel it hands to the bridge, pulsing
/// meanwhile, and fails (returns) at a negative value. Returns the ward's start function and
/// the bridged stream of everything every incarnation sends.
fn do_work_fn(ctx: &Context, values: Vec<i64>) -> (StartGoroutine, Receiver<i64>) {
    let (streams_tx, streams) = gort::chan::<Receiver<i64>>(0);
    let values_stream = bridge(ctx, streams);
    let start: StartGoroutine = Arc::new(move |ctx: &Context, pulse_interval: Duration| {
        let (values_tx, values_rx) = gort::chan(0);
        let (heartbeat_tx, heartbeat) = gort::chan(0);
        let (ctx, streams_tx, values) = (ctx.clone(), streams_tx.clone(), values.clone());
        gort::go!(move || {
            gort::select! {
                send(streams_tx, values_rx) -> _ => {},
                recv(ctx.done()) -> _ => return,
            }
            let pulse = gort::time::tick(pulse_interval);
            loop {
                for &v in &values {
                    if v < 0 {
                        println!("healing: ward: negative value: {v}");
                        return;
                    }
                    loop {
                        gort::select! {
                            recv(pulse) -> _ => send_pulse(&heartbeat_tx),
                            send(values_tx, v) -> sent => match sent {
                                Ok(()) => break, // `break` leaves this `loop`: next value
                                Err(_) => return,
                            },
                            recv(ctx.done()) -> _ => return,
                        }
                    }
                }
            }
        });
        heartbeat
    });
    (start, values_stream)
}

fn main() {
    gort::run(|| {
        let (ctx, cancel) = context::with_cancel(&context::background());
        let (ward, values) = do_work_fn(&ctx, vec![1, 2, -1, 3, 4, 5]);
        let steward = new_steward(STEWARD_TIMEOUT, ward);
        let _steward_heartbeat = steward(&ctx, Duration::from_secs(3600));
        let mut received = Vec::new();
        for v in values.iter().take(6) {
            println!("healing: received {v}");
            received.push(v.to_string());
        }
        let restarts = RESTARTS.load(Ordering::Relaxed);
        cancel.cancel();
        assert_eq!(received, ["1", "2", "1", "2", "1", "2"]);
        assert!(restarts >= 2);
        println!(
            "healing: received {} across {restarts} restarts of the ward",
            received.join(" ")
        );
    });
}
