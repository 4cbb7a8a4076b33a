//! Spawns and ends goroutines in bursts, then idles, and prints the process's resident memory
//! before, at the peak and at intervals afterwards: whether memory comes back (issue 15).
//!
//! `cargo run --release --example mem_churn -- [--total N] [--burst B] [--after-ms T]
//! [--every-ms E] [--busy] [--smaps] [--smaps-peak]`
//!
//! Defaults: 1,000,000 goroutines in bursts of 100,000, RSS read every 250 ms for 2,000 ms after
//! the last burst. In a burst every goroutine parks on one channel's receive until the burst is
//! full (so B stacks and B goroutine cells are really taken at once), then the channel's only
//! sender is dropped, which wakes and ends them all, and the next burst starts. RSS is
//! `/proc/self/statm`'s resident pages; the peak is the largest reading taken with a burst
//! parked. Each line after the bursts gives the RSS and its ratio to the reading before the first
//! burst. With `--busy` one goroutine keeps a P busy (computing, with preemption points) from
//! the end of the bursts on, so the program never idles: memory then comes back at the paced
//! rate of a busy program. With `--smaps` (Linux) the program also prints, before the bursts and
//! at the end (with `--smaps-peak` also at the peak), where the resident memory is (`/proc/self/smaps`, summed by kind of
//! mapping: `smaps.rs` beside this file says how each kind is recognised) and, with glibc, how
//! many bytes its `malloc` has in use. The Go twin is `benches/go/cmd/mem_churn` (same flags but
//! `--smaps`, same lines).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    total: usize,
    burst: usize,
    after: Duration,
    every: Duration,
    busy: bool,
    smaps: bool,
    /// Also read smaps with the first burst parked. That read is a block of megabytes (a
    /// mapping per stack guard), and freeing it raises glibc's trim threshold, so the memory
    /// returned afterwards is not what the program alone gives back.
    smaps_peak: bool,
}

#[path = "mem_churn/smaps.rs"]
mod smaps;

fn main() {
    let args = parse_args();
    gort::run(move || churn(&args));
}

fn churn(args: &Args) {
    let before = rss_bytes();
    println!(
        "mem_churn: maxprocs={} total={} burst={} rss_before_mib={:.1}",
        gort::maxprocs(),
        args.total,
        args.burst,
        mib(before)
    );
    if args.smaps {
        smaps::print("before");
    }
    let start = Instant::now();
    let mut peak = 0;
    let mut done = 0;
    while done < args.total {
        let n = args.burst.min(args.total - done);
        // The breakdown is taken in the first burst, with it parked.
        let breakdown = args.smaps_peak && done == 0;
        peak = peak.max(burst(n, breakdown));
        done += n;
    }
    println!(
        "mem_churn: bursts_ms={:.0} rss_peak_mib={:.1} peak/before={:.2}",
        start.elapsed().as_secs_f64() * 1e3,
        mib(peak),
        peak as f64 / before as f64
    );
    let stop = Arc::new(AtomicBool::new(false));
    if args.busy {
        let stop = stop.clone();
        drop(gort::go!(move || spin_until(&stop)));
    }
    let idle_start = Instant::now();
    let mut waited = Duration::ZERO;
    loop {
        let rss = rss_bytes();
        println!(
            "mem_churn: after_ms={} rss_mib={:.1} rss/before={:.2}",
            waited.as_millis(),
            mib(rss),
            rss as f64 / before as f64
        );
        if waited >= args.after {
            break;
        }
        waited = (waited + args.every).min(args.after);
        gort::time::sleep_until(idle_start + waited);
    }
    stop.store(true, Ordering::Relaxed);
    if args.smaps {
        smaps::print("end");
    }
}

/// Computes until `stop`, passing preemption points so the other goroutines still run.
fn spin_until(stop: &AtomicBool) {
    let mut x = 1u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..1000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        gort::preempt_point();
    }
}

/// Runs `n` goroutines parked at once on one channel, reads RSS while they are all parked,
/// then ends them all. Returns that reading. With `breakdown`, also prints where the memory is
/// at that moment.
fn burst(n: usize, breakdown: bool) -> usize {
    let (tx, rx) = gort::chan::<()>(0);
    let parked = Arc::new(AtomicUsize::new(0));
    let ended = gort::sync::WaitGroup::new();
    ended.add(n as i64);
    for _ in 0..n {
        let (rx, parked, ended) = (rx.clone(), parked.clone(), ended.clone());
        drop(gort::go!(move || {
            parked.fetch_add(1, Ordering::Relaxed);
            // Err once the sender is dropped: the burst is over.
            let _ = rx.recv();
            ended.done();
        }));
    }
    drop(rx);
    while parked.load(Ordering::Relaxed) < n {
        gort::yield_now();
    }
    // Let the last goroutines reach their receive.
    for _ in 0..100 {
        gort::yield_now();
    }
    let rss = rss_bytes();
    if breakdown {
        smaps::print("peak");
    }
    drop(tx);
    ended.wait();
    rss
}

fn parse_args() -> Args {
    let mut args = Args {
        total: 1_000_000,
        burst: 100_000,
        after: Duration::from_millis(2000),
        every: Duration::from_millis(250),
        busy: false,
        smaps: false,
        smaps_peak: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{flag} needs a number")))
        };
        match flag.as_str() {
            "--total" => args.total = value() as usize,
            "--burst" => args.burst = value() as usize,
            "--after-ms" => args.after = Duration::from_millis(value()),
            "--every-ms" => args.every = Duration::from_millis(value()),
            "--busy" => args.busy = true,
            "--smaps" => args.smaps = true,
            "--smaps-peak" => {
                args.smaps = true;
                args.smaps_peak = true;
            }
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    if args.burst == 0 || args.every.is_zero() {
        usage("--burst and --every-ms must be positive");
    }
    args
}

fn usage(why: &str) -> ! {
    eprintln!("mem_churn: {why}");
    eprintln!(
        "usage: mem_churn [--total N] [--burst B] [--after-ms T] [--every-ms E] [--busy] [--smaps] [--smaps-peak]"
    );
    std::process::exit(2);
}

/// Resident set size of this process, from `/proc/self/statm` (pages × page size).
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm's second field");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    pages * page
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}
