//! Pattern: the bridge channel (Cox-Buday, "Concurrency in Go", ch. 4, "The bridge-channel").
//!
//! Go's idea: a producer may hand out a sequence of channels (a channel of channels, `<-chan
//! <-chan T`), for instance one per restart of a worker. `bridge(done, chanStream)` flattens it
//! into one channel: it takes the next channel, forwards its values until it closes, then takes
//! the next, so the consumer sees one stream and a single `range` loop.
//!
//! In gort a channel of channels is a `Receiver<Receiver<T>>`; an inner channel "closes" when
//! the producer drops its `Sender` after the last send (a buffered value stays receivable until
//! it is taken, then the receive gives `Err`).
//!
//! Prints the book's output: 0 to 9, each sent on a channel of its own.
//!
//! `cargo run --example bridge`

use gort::context::{self, Context};
use gort::Receiver;

/// The values of each channel of `streams` in turn, as one stream.
fn bridge<T: Send + 'static>(ctx: &Context, streams: Receiver<Receiver<T>>) -> Receiver<T> {
    let (tx, rx) = gort::chan(0);
    let ctx = ctx.clone();
    gort::go!(move || loop {
        let stream = gort::select! {
            recv(streams) -> s => match s {
                Ok(s) => s,
                Err(_) => return, // no more channels: close ours
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

/// Ten channels, each carrying one value (its index) and closed after it.
fn gen_vals() -> Receiver<Receiver<u32>> {
    let (streams_tx, streams) = gort::chan(0);
    gort::go!(move || {
        for i in 0..10 {
            let (tx, rx) = gort::chan(1);
            tx.send(i).expect("buffered");
            drop(tx); // close(stream): the value stays receivable
            if streams_tx.send(rx).is_err() {
                return;
            }
        }
    });
    streams
}

fn main() {
    gort::run(|| {
        let (ctx, _cancel) = context::with_cancel(&context::background());
        let values: Vec<u32> = bridge(&ctx, gen_vals()).iter().collect();
        assert_eq!(values, (0..10).collect::<Vec<_>>());
        let shown: Vec<String> = values.iter().map(u32::to_string).collect();
        println!(
            "bridge: {} (from 10 channels, one value each)",
            shown.join(" ")
        );
    });
}
