//! Pattern: the or-channel (Cox-Buday, "Concurrency in Go", ch. 4, "The or-channel").
//!
//! Go's idea: combine any number of `done` channels into one that closes as soon as any of
//! them closes. `or(chans...)` starts a goroutine that selects on the first three channels and
//! on `or(rest..., orDone)` of the others (a recursion, so any number fits in a fixed
//! `select`), and closes its own channel when any case fires. Passing its own `orDone` down
//! ends the recursion's goroutines with it.
//!
//! In gort, "closes" is "its last `Sender` is dropped": the goroutine holds the only sender of
//! the combined channel and simply returns. A receive on a closed channel gives `Err`, so every
//! case fires whether the signal was a value or a close, as in Go.
//!
//! Prints how long the combination of five signals (2 h, 5 min, 50 ms, 1 h, 1 min) took to
//! close: the 50 ms one closes it. The four longer signals are still asleep when `main`
//! returns; the process ends with them, as in Go.
//!
//! `cargo run --example or_channel`

use std::time::{Duration, Instant};

use gort::Receiver;

/// A channel that closes when any of `channels` fires or closes.
fn or(mut channels: Vec<Receiver<()>>) -> Receiver<()> {
    match channels.len() {
        0 => return Receiver::never(), // Go returns a nil channel: never fires
        1 => return channels.pop().unwrap(),
        _ => {}
    }
    let (or_done_tx, or_done) = gort::chan::<()>(0);
    let ours = or_done.clone();
    gort::go!(move || {
        let _close_on_return = or_done_tx; // dropped when this goroutine returns
        if let [a, b] = &channels[..] {
            gort::select! {
                recv(a) -> _ => {},
                recv(b) -> _ => {},
            }
        } else {
            let rest = channels.split_off(3);
            let (a, b, c) = (&channels[0], &channels[1], &channels[2]);
            // The rest, plus our own channel so that the recursion's goroutine ends with ours.
            let others = or(rest.into_iter().chain([ours]).collect());
            gort::select! {
                recv(a) -> _ => {},
                recv(b) -> _ => {},
                recv(c) -> _ => {},
                recv(others) -> _ => {},
            }
        }
    });
    or_done
}

/// A channel that closes after `after` (the book's `sig`).
fn sig(after: Duration) -> Receiver<()> {
    let (tx, rx) = gort::chan::<()>(0);
    gort::go!(move || {
        gort::time::sleep(after);
        drop(tx);
    });
    rx
}

fn main() {
    gort::run(|| {
        let start = Instant::now();
        let hour = Duration::from_secs(3600);
        let minute = Duration::from_secs(60);
        let shortest = Duration::from_millis(50);
        let done = or(vec![
            sig(2 * hour),
            sig(5 * minute),
            sig(shortest),
            sig(hour),
            sig(minute),
        ]);
        assert!(done.recv().is_err(), "or closes, it sends nothing");
        let took = start.elapsed();
        assert!(took >= shortest && took < minute);
        println!(
            "or_channel: done after {} ms: closed by the 50 ms signal, the first of five \
             (2 h, 5 min, 50 ms, 1 h, 1 min)",
            took.as_millis()
        );
    });
}
