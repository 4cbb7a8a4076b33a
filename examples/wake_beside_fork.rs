//! Wake-up latency of a goroutine while another M forks: a plain thread pings an echo goroutine
//! over unbuffered channels N times (300 µs apart), while a second goroutine spawns a child and
//! computes for 2 ms without parking, over and over. At maxprocs 2 the child waits in the
//! forker's `runnext`, and an idle M may wait there to take it (the thread-affine grace,
//! `sched/src/scheduler/steal.rs`); the echo goroutine's pings must not wait out that grace when
//! it is homed to the waiting M. Prints where each goroutine ran and the round trip's
//! percentiles.
//!
//! `GORT_MAXPROCS=2 cargo run --release --example wake_beside_fork -- 2000`

#[path = "bench_mode.rs"]
mod bench_mode;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let mode = bench_mode::init();
    let n: usize = std::env::args()
        .nth(1)
        .map_or(2_000, |a| a.parse().expect("N"));
    let (mut rtt, echo_m, fork_m) = gort::run(move || {
        let (ping_tx, ping_rx) = gort::chan::<()>(0);
        let (pong_tx, pong_rx) = gort::chan::<usize>(0);
        let echo = gort::go!(move || {
            while ping_rx.recv().is_ok() {
                let m = gort::current_machine_id().expect("on an M");
                if pong_tx.send(m).is_err() {
                    break;
                }
            }
        });
        let stop = Arc::new(AtomicBool::new(false));
        let forker = {
            let stop = stop.clone();
            gort::go!(move || fork_and_compute(&stop))
        };
        let pinger = std::thread::spawn(move || {
            let mut rtt = Vec::with_capacity(n);
            let mut echo_m = 0;
            for _ in 0..n {
                let t = Instant::now();
                ping_tx.send(()).expect("echo goroutine alive");
                echo_m = pong_rx.recv().expect("echo goroutine alive");
                rtt.push(t.elapsed());
                std::thread::sleep(Duration::from_micros(300));
            }
            (rtt, echo_m)
        });
        let (rtt, echo_m) = pinger.join().expect("pinger");
        stop.store(true, Ordering::Relaxed);
        let fork_m = forker.join().expect("forker");
        echo.join().expect("echo");
        (rtt, echo_m, fork_m)
    });
    rtt.sort();
    let at = |q: usize| rtt[(rtt.len() * q / 100).min(rtt.len() - 1)].as_micros();
    println!(
        "wake_beside_fork: mode={mode} maxprocs={} n={n} echo_on=M{echo_m} forker_on=M{fork_m} p50_us={} p90_us={} p99_us={} max_us={}",
        gort::maxprocs(),
        at(50),
        at(90),
        at(99),
        rtt[rtt.len() - 1].as_micros()
    );
}

/// Spawns a child (it waits in this P's `runnext`), computes 2 ms without parking, joins it;
/// until `stop`. Returns the M it ran on.
fn fork_and_compute(stop: &AtomicBool) -> usize {
    while !stop.load(Ordering::Relaxed) {
        let child = gort::go!(|| ());
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(2) {
            std::hint::spin_loop();
        }
        child.join().expect("child");
    }
    gort::current_machine_id().expect("on an M")
}
