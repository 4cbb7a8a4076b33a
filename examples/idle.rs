//! An idle runtime's cost: the runtime starts (every P's M, sysmon), then one goroutine sleeps
//! for a while and nothing else happens. Prints the CPU time the whole process used meanwhile.
//!
//! `cargo run --release --example idle -- [seconds]` (default 5) prints
//! `idle: <s> s asleep, <ms> ms of CPU (<pct>%)`. With `GORT_SYSMON=off` for the comparison.

use std::time::{Duration, Instant};

fn cpu_time() -> Duration {
    // SAFETY: all-zero is a valid `rusage`, filled by getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid out pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .map_or(5, |a| a.parse().expect("seconds"));
    // Start every P's M first, then let them all go idle.
    gort::run(|| {
        let hs: Vec<_> = (0..gort::maxprocs())
            .map(|_| gort::go!(|| std::hint::black_box(1)))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    let (t, cpu) = (Instant::now(), cpu_time());
    gort::run(move || gort::time::sleep(Duration::from_secs(secs)));
    let (wall, used) = (t.elapsed(), cpu_time() - cpu);
    println!(
        "idle: {} s asleep, {} ms of CPU ({:.3}%)",
        wall.as_secs(),
        used.as_millis(),
        100.0 * used.as_secs_f64() / wall.as_secs_f64()
    );
    println!("sysmon rounds: {}", gort::stats().sysmon_rounds);
}
