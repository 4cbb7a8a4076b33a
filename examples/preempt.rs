//! Preemption (issue 12): one busy goroutine per P that never blocks, beside a main goroutine
//! that sleeps 50 ms. Without preemption main would wake only when a spinner ends.
//!
//! `cargo run --release --example preempt -- [mode]`, mode one of
//! - `migrate` (default when `GORT_MIGRATE=1`): Go's model, `gort::enable_migration`; the
//!   spinners are call-free, sysmon stops their threads by signal and the others run elsewhere;
//! - `point`: thread-affine (the default mode), spinners call `gort::preempt_point()`;
//! - `callfree`: thread-affine, call-free spinners: goroutines homed to a spinner's thread
//!   wait for it; the program still ends, sysmon names the spinner (`GORT_DEBUG=preempt`), and
//!   a counter goroutine not homed there keeps counting (printed).
//!
//! Prints `preempt: mode=<mode> maxprocs=<P> main woke after <ms> ms`, then how far the
//! counter got and the runtime's preemption counters. Go's twin: `benches/go/cmd/preempt`.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long each spinner spins if nobody stops it.
const SPIN_FOR: Duration = Duration::from_millis(2000);

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "migrate".into());
    if mode == "migrate" {
        // SAFETY: this program holds nothing thread-bound across a gort blocking call.
        unsafe { gort::enable_migration() }.expect("before the runtime starts");
    }
    let calls = mode != "callfree" && mode != "migrate";
    let ms = gort::run(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let counter_m = Arc::new(AtomicU64::new(u64::MAX));
        let spinners: Vec<_> = (0..gort::maxprocs())
            .map(|i| {
                let stop = stop.clone();
                gort::Builder::new()
                    .name(format!("spinner-{i}"))
                    .spawn(move || spin(&stop, calls))
            })
            .collect();
        // Spawned after the spinners, so it starts on whichever thread a spinner does not
        // hold: in `callfree` mode it shows what still runs beside them.
        let counter = {
            let (stop, count, counter_m) = (stop.clone(), count.clone(), counter_m.clone());
            gort::go!(move || {
                counter_m.store(
                    gort::current_machine_id().unwrap() as u64,
                    Ordering::Relaxed,
                );
                while !stop.load(Ordering::Relaxed) {
                    count.fetch_add(1, Ordering::Relaxed);
                    gort::time::sleep(Duration::from_millis(1));
                }
            })
        };
        let t = Instant::now();
        gort::time::sleep(Duration::from_millis(50));
        let woke = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        for s in spinners {
            s.join().unwrap();
        }
        counter.join().unwrap();
        println!(
            "counter: {} sleeps of 1 ms done meanwhile (goroutine homed to thread gort-m{})",
            count.load(Ordering::Relaxed),
            counter_m.load(Ordering::Relaxed)
        );
        woke.as_millis()
    });
    println!(
        "preempt: mode={mode} maxprocs={} main woke after {ms} ms",
        gort::maxprocs()
    );
    println!("stats: {:?}", gort::stats());
}

fn spin(stop: &AtomicBool, calls: bool) {
    let t = Instant::now();
    let mut x = 0u64;
    while !stop.load(Ordering::Relaxed) && t.elapsed() < SPIN_FOR {
        for i in 0..1000u64 {
            x = black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        if calls {
            gort::preempt_point();
        }
    }
    black_box(x);
}
