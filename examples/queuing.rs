//! Pattern: queuing (Cox-Buday, "Concurrency in Go", ch. 4, "Queuing").
//!
//! Go's idea: a buffer between two pipeline stages lets the faster one finish its batch and
//! move on while the slower one is still busy. The book's demo: three values through a "short"
//! stage (1 s each) and then a "long" one (4 s each). With unbuffered channels the short stage
//! is done only after 9 s (each send waits for the long stage to take it); with a buffer of 2
//! between them it is done after 3 s. The whole pipeline still takes 13 s: a queue does not
//! make a pipeline faster, it decouples its stages (the time a stage is blocked). Little's law
//! (L = λW: items in the system = arrival rate × time in the system) is how to size one.
//!
//! In gort the buffer is the channel's capacity: `gort::chan(2)`.
//!
//! Prints, for capacity 0 and 2, when the short stage (10 ms per value) was done and when the
//! last value left the long stage (40 ms per value). The times are measured, so they vary a
//! little from run to run (roughly 90 and 130 ms without the buffer, 30 and 130 ms with it).
//!
//! `cargo run --example queuing`

use std::time::{Duration, Instant};

use gort::{JoinHandle, Receiver};

const VALUES: u32 = 3;
const SHORT: Duration = Duration::from_millis(10);
const LONG: Duration = Duration::from_millis(40);

/// A stage that spends `work` on each value of `input` and sends it on a channel of capacity
/// `buffer`. Its handle gives the time (since `start`) at which it had sent its last value.
fn sleep_stage(
    start: Instant,
    work: Duration,
    buffer: usize,
    input: Receiver<u32>,
) -> (Receiver<u32>, JoinHandle<Duration>) {
    let (tx, rx) = gort::chan(buffer);
    let stage = gort::go!(move || {
        for v in &input {
            gort::time::sleep(work);
            if tx.send(v).is_err() {
                break;
            }
        }
        start.elapsed()
    });
    (rx, stage)
}

/// Runs the three values through the short then the long stage, with `buffer` slots between.
fn run_pipeline(buffer: usize) -> (Duration, Duration) {
    let start = Instant::now();
    let (tx, zeros) = gort::chan(VALUES as usize);
    for v in 0..VALUES {
        tx.send(v).expect("room for every value");
    }
    drop(tx);
    let (short, short_stage) = sleep_stage(start, SHORT, buffer, zeros);
    let (long, _long_stage) = sleep_stage(start, LONG, 0, short);
    assert_eq!(long.iter().count(), VALUES as usize);
    let pipeline_done = start.elapsed();
    (short_stage.join().unwrap(), pipeline_done)
}

fn main() {
    gort::run(|| {
        let mut runs = Vec::new();
        for buffer in [0, 2] {
            let (short_done, pipeline_done) = run_pipeline(buffer);
            assert!(short_done >= SHORT * VALUES && pipeline_done >= LONG * VALUES);
            println!(
                "queuing: buffer {buffer}: short stage done after {} ms, pipeline done after {} ms",
                short_done.as_millis(),
                pipeline_done.as_millis()
            );
            runs.push((
                short_done.as_millis() as i64,
                pipeline_done.as_millis() as i64,
            ));
        }
        let [(short0, all0), (short2, all2)] = runs[..] else {
            unreachable!()
        };
        println!(
            "queuing: with the buffer the short stage was free {} ms sooner; the pipeline's \
             time changed by {} ms",
            short0 - short2,
            all2 - all0
        );
    });
}
