//! Hazard: livelock (Cox-Buday, "Concurrency in Go", ch. 1, "Livelock"): two people in a
//! hallway.
//!
//! Go's idea: Alice and Barbara meet in a hallway; each steps aside to let the other pass, at
//! the same moment and to the same side, again and again. Both are busy, neither gets anywhere:
//! a livelock, two processes trying to avoid a deadlock without coordinating. In the book each
//! person announces a direction (`atomic.AddInt32(dir, 1)`), takes a step in a cadence shared
//! by both (a `sync.Cond` broadcast on every tick of a 1 ms ticker), and succeeds only if
//! nobody else chose that side; otherwise steps back and tries the other side. Bounded at 5
//! tries each, both give up.
//!
//! Here the cadence is exact: a `gort::sync::Cond` over a `gort::sync::Mutex` makes each step a
//! barrier of the two walkers, so they move in lockstep every run. (The ticker of the book
//! only approximates that: if one walker misses a tick, the other gets through.)
//!
//! Prints the book's output, one line per person, in a fixed order.
//!
//! `cargo run --example livelock`

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use gort::sync::{Cond, Mutex, WaitGroup};

const WALKERS: u32 = 2;
const TRIES: u32 = 5;

/// The shared cadence: `take_step` returns once every walker has taken this step.
struct Cadence {
    /// (walkers arrived at this step, step number)
    steps: Mutex<(u32, u64)>,
    all_arrived: Cond,
}

/// The hallway: how many people are trying each side, and the cadence.
struct Hallway {
    left: AtomicI32,
    right: AtomicI32,
    cadence: Cadence,
}

fn take_step(cadence: &Cadence) {
    let mut steps = cadence.steps.lock();
    let this_step = steps.1;
    steps.0 += 1;
    if steps.0 == WALKERS {
        *steps = (0, this_step + 1);
        cadence.all_arrived.broadcast();
    } else {
        while steps.1 == this_step {
            steps = cadence.all_arrived.wait(steps);
        }
    }
}

/// Tries to move to the side counted by `dir`: announce, step, check, and back off if someone
/// else chose it too.
fn try_dir(name: &str, dir: &AtomicI32, out: &mut String, cadence: &Cadence) -> bool {
    out.push_str(&format!(" {name}"));
    dir.fetch_add(1, Ordering::SeqCst);
    take_step(cadence);
    if dir.load(Ordering::SeqCst) == 1 {
        out.push_str(". Success!");
        return true;
    }
    take_step(cadence);
    dir.fetch_sub(1, Ordering::SeqCst);
    false
}

fn walk(hallway: &Hallway, name: &str) -> String {
    let mut out = format!("{name} is trying to scoot:");
    for _ in 0..TRIES {
        if try_dir("left", &hallway.left, &mut out, &hallway.cadence)
            || try_dir("right", &hallway.right, &mut out, &hallway.cadence)
        {
            return out;
        }
    }
    out.push_str(&format!("\n{name} tosses her hands up in exasperation!"));
    out
}

fn main() {
    gort::run(|| {
        let hallway = Arc::new(Hallway {
            left: AtomicI32::new(0),
            right: AtomicI32::new(0),
            cadence: Cadence {
                steps: Mutex::new((0, 0)),
                all_arrived: Cond::new(),
            },
        });
        let people_in_hallway = WaitGroup::new();
        let walkers: Vec<_> = ["Alice", "Barbara"]
            .into_iter()
            .map(|name| {
                let (hallway, wg) = (hallway.clone(), people_in_hallway.clone());
                wg.add(1);
                gort::go!(move || {
                    let out = walk(&hallway, name);
                    wg.done();
                    out
                })
            })
            .collect();
        people_in_hallway.wait();
        for w in walkers {
            let out = w.join().unwrap();
            assert!(out.ends_with("exasperation!"), "{out}");
            println!("{out}");
        }
        println!("livelock: both kept moving for {TRIES} tries each and neither got past");
    });
}
