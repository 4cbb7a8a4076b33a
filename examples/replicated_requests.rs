//! Pattern: replicated requests (Cox-Buday, "Concurrency in Go", ch. 5, "Replicated Requests").
//!
//! Go's idea: when a fast answer matters more than the work spent, send the same request to
//! several handlers (goroutines, processes, servers) and take the first answer; then close
//! `done` so the others stop. Each handler selects on `done` both while it works and while it
//! delivers its answer, so the losers return instead of blocking on a send nobody takes. A
//! `WaitGroup` waits for all of them.
//!
//! In gort: a `context` for `done`, `gort::sync::WaitGroup` for the wait, and the handlers'
//! simulated load times drawn from a seeded generator (the book uses random 1-6 s; here
//! 10-100 ms, all different).
//!
//! Prints which handler answered first (the one with the shortest load time, normally) and
//! that the other nine stopped.
//!
//! `cargo run --example replicated_requests`

use std::time::{Duration, Instant};

use gort::context::{self, Context};
use gort::sync::WaitGroup;
use gort::Sender;

const HANDLERS: u64 = 10;

/// A handler: takes `load` to answer, unless `ctx` is cancelled first. Returns whether it was
/// stopped by the cancellation.
fn handle(ctx: &Context, id: u64, load: Duration, answers: &Sender<u64>) -> bool {
    gort::select! {
        recv(ctx.done()) -> _ => return true,
        recv(gort::time::after(load)) -> _ => {},
    }
    gort::select! {
        recv(ctx.done()) -> _ => true,
        send(answers, id) -> _ => false,
    }
}

/// Ten different load times, 10 to 100 ms, in a seeded shuffled order.
fn load_times() -> Vec<Duration> {
    let mut loads: Vec<u64> = (1..=HANDLERS).map(|i| i * 10).collect();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for i in (1..loads.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        loads.swap(i, (state % (i as u64 + 1)) as usize);
    }
    loads.into_iter().map(Duration::from_millis).collect()
}

fn main() {
    gort::run(|| {
        let start = Instant::now();
        let (ctx, cancel) = context::with_cancel(&context::background());
        let (answers_tx, answers) = gort::chan(0);
        let wg = WaitGroup::new();
        let (stopped_tx, stopped) = gort::chan(HANDLERS as usize);
        let loads = load_times();
        for (id, &load) in loads.iter().enumerate() {
            let (ctx, answers_tx, stopped_tx, wg) = (
                ctx.clone(),
                answers_tx.clone(),
                stopped_tx.clone(),
                wg.clone(),
            );
            wg.add(1);
            gort::go!(move || {
                let was_stopped = handle(&ctx, id as u64, load, &answers_tx);
                stopped_tx
                    .send(was_stopped)
                    .expect("room for every handler");
                wg.done();
            });
        }
        drop(stopped_tx);
        let first = answers.recv().expect("a handler answers");
        let took = start.elapsed();
        cancel.cancel(); // the others stop
        wg.wait();
        let stopped = stopped.iter().filter(|&s| s).count();
        let fastest = loads.iter().enumerate().min_by_key(|(_, l)| **l).unwrap().0;
        println!(
            "replicated_requests: handler #{first} (load {} ms) answered first, after {} ms{}",
            loads[first as usize].as_millis(),
            took.as_millis(),
            if first as usize == fastest {
                " (the fastest)"
            } else {
                ""
            }
        );
        assert_eq!(stopped, HANDLERS as usize - 1);
        println!(
            "replicated_requests: the other {stopped} handlers were cancelled and stopped \
             (WaitGroup done)"
        );
    });
}
