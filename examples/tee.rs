//! Pattern: the tee channel (Cox-Buday, "Concurrency in Go", ch. 4, "The tee-channel").
//!
//! Go's idea: like the Unix `tee`, split one stream into two that both see every value. For
//! each value, a `select` offers it on both outputs; a case that fired is disabled by setting
//! its channel variable to `nil` (a nil channel's case never fires), so the loop of two selects
//! delivers the value once to each output, in whichever order the readers come. The next value
//! is not read until both have this one, so the two readers stay in step.
//!
//! In gort a `None` in a `select!` case is Go's nil channel: the outputs are
//! `Option<&Sender<T>>`, set to `None` once served. A send that fails (that reader dropped its
//! receiver) also disables its case, so the other reader keeps getting values.
//!
//! Prints the book's output: the values 1 2 1 2 taken from `repeat(1, 2)`, each read from both
//! outputs.
//!
//! `cargo run --example tee`

use gort::context::{self, Context};
use gort::Receiver;

/// Two streams that each carry every value of `input`.
fn tee<T: Clone + Send + 'static>(ctx: &Context, input: Receiver<T>) -> (Receiver<T>, Receiver<T>) {
    let (tx1, rx1) = gort::chan(0);
    let (tx2, rx2) = gort::chan(0);
    let ctx = ctx.clone();
    gort::go!(move || {
        for v in &input {
            let (mut out1, mut out2) = (Some(&tx1), Some(&tx2));
            while out1.is_some() || out2.is_some() {
                gort::select! {
                    recv(ctx.done()) -> _ => return,
                    send(out1, v.clone()) -> _sent => out1 = None,
                    send(out2, v.clone()) -> _sent => out2 = None,
                }
            }
        }
    });
    (rx1, rx2)
}

/// `repeat(1, 2)` and `take(4)` of the generators example, folded into one bounded producer.
fn take_of_repeat(values: Vec<u32>, n: usize) -> Receiver<u32> {
    let (tx, rx) = gort::chan(0);
    gort::go!(move || {
        for v in values.into_iter().cycle().take(n) {
            if tx.send(v).is_err() {
                return;
            }
        }
    });
    rx
}

fn main() {
    gort::run(|| {
        let (ctx, _cancel) = context::with_cancel(&context::background());
        let (out1, out2) = tee(&ctx, take_of_repeat(vec![1, 2], 4));
        let mut pairs = Vec::new();
        for v1 in &out1 {
            let v2 = out2.recv().expect("out2 carries every value out1 does");
            println!("tee: out1: {v1}, out2: {v2}");
            pairs.push((v1, v2));
        }
        assert_eq!(pairs, [(1, 1), (2, 2), (1, 1), (2, 2)]);
        assert!(
            out2.recv().is_err(),
            "both outputs close when the input does"
        );
        println!("tee: both outputs carried 1 2 1 2 and closed with the input");
    });
}
