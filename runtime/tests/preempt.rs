//! Preemption and sysmon (`sched/src/preempt.rs`, `sched/src/sysmon.rs`,
//! `docs/PREEMPTION.md`): call-free loops do not starve each other; values in floating-point
//! and SIMD registers survive a signal stop; thread-locals and stdout stay consistent while
//! threads are stopped; a thread blocked in a call gort does not know about gives up its P; the
//! books' for-select busy loop and generator end at maxprocs 1; a program's own SIGURG handler
//! still runs.
//!
//! Scenarios run at maxprocs 1, 2 and 4 under the binary's lock, each bounded in time
//! (`common::each_procs_at`); the caller is a plain thread, homed nowhere. Each asserts on
//! counts and order, never on how fast something ran. The stdout and SIGURG checks run this
//! binary again as a child (`child_println`, `child_sigurg`: nothing unless `CHILD` is set).

mod common;

use std::cell::RefCell;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set in a child's environment to the scenario it runs.
const CHILD: &str = "GORT_PREEMPT_TEST_CHILD";

/// Maxprocs the scenarios run at (the protocol's stress: stops, hand-offs, hungry Ms).
const PROCS: [usize; 3] = [1, 2, 4];

/// How long each spinner spins when nothing stops it.
const SPIN: Duration = Duration::from_millis(400);

/// True if this runtime stops threads by signal (sysmon on, Linux x86_64/aarch64).
fn signals() -> bool {
    cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )) && !matches!(
        std::env::var("GORT_SYSMON").as_deref(),
        Ok("off" | "0" | "false")
    ) && !matches!(
        std::env::var("GORT_PREEMPT_SIGNAL").as_deref(),
        Ok("off" | "0" | "false")
    )
}

/// Spins call-free for `SPIN` (or until `stop`), running `work` each round. Returns when it
/// first ran, measured from `t0`.
fn spin(t0: Instant, stop: &AtomicBool, mut work: impl FnMut()) -> Duration {
    let first = t0.elapsed();
    let start = Instant::now();
    while start.elapsed() < SPIN && !stop.load(Ordering::Relaxed) {
        for _ in 0..64 {
            work();
        }
    }
    first
}

/// `procs + 2` call-free spinners, more than there are Ps: each one starts while the first
/// ones are still spinning (sysmon stops a thread that ran two time slices while others wait
/// and gives its P to another M). Without preemption the last would start only after the
/// first ended, `SPIN` later.
fn all_start_while_others_spin(procs: usize, work: fn()) {
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let hs: Vec<_> = (0..procs + 2)
        .map(|_| {
            let stop = stop.clone();
            gort::spawn(move || spin(t0, &stop, work))
        })
        .collect();
    let firsts: Vec<Duration> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    let late: Vec<_> = firsts.iter().filter(|&&f| f >= SPIN).collect();
    assert!(
        late.is_empty(),
        "spinners started only after others ended (preemption failed): first runs {firsts:?}"
    );
}

#[test]
fn tight_loops_all_make_progress() {
    if !signals() && !common::migrating() {
        return; // call-free loops can only be stopped by signal
    }
    common::each_procs_at("tight_loops", &PROCS, |procs| {
        all_start_while_others_spin(procs, || {
            std::hint::black_box(0u64);
        })
    });
}

/// A spinner that makes a system call in its loop (`getpid`) is stopped like any other.
#[test]
fn getpid_spinner_is_handled() {
    if !signals() {
        return;
    }
    common::each_procs_at("getpid_spinner", &PROCS, |procs| {
        all_start_while_others_spin(procs, || {
            // SAFETY: getpid has no preconditions.
            std::hint::black_box(unsafe { libc::getpid() });
        })
    });
}

/// Sums a series in f64 registers (and, on x86_64, SSE2 vector registers) for a while: the
/// same numbers whether or not the thread was stopped by a signal in between.
fn float_work(rounds: u64) -> (f64, [f64; 2]) {
    let mut acc = 0.0f64;
    let mut x = 1.0f64;
    #[cfg(target_arch = "x86_64")]
    let mut v = {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_set_pd(0.5, 0.25) }
    };
    for i in 0..rounds {
        x = std::hint::black_box(x * 1.000_000_1 + 1e-9);
        acc += x / (i as f64 + 1.0);
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::*;
            // SAFETY: SSE2 is part of the x86_64 baseline; the operands are plain values.
            v = unsafe { _mm_add_pd(_mm_mul_pd(v, _mm_set1_pd(0.999_999)), _mm_set1_pd(1e-7)) };
        }
    }
    #[cfg(target_arch = "x86_64")]
    let lanes = {
        let mut out = [0f64; 2];
        // SAFETY: `out` has room for two f64; unaligned store.
        unsafe { std::arch::x86_64::_mm_storeu_pd(out.as_mut_ptr(), v) };
        out
    };
    #[cfg(not(target_arch = "x86_64"))]
    let lanes = [0.0, 0.0];
    (acc, lanes)
}

#[test]
fn float_and_simd_registers_survive_signal_preemption() {
    if !signals() {
        return;
    }
    common::each_procs_at("float_registers", &PROCS, |procs| {
        const ROUNDS: u64 = 30_000_000;
        let expected = float_work(ROUNDS);
        let stops = gort::stats().signal_stops;
        let hs: Vec<_> = (0..procs + 2)
            .map(|_| gort::spawn(|| float_work(ROUNDS)))
            .collect();
        for h in hs {
            let got = h.join().unwrap();
            assert_eq!(got.0.to_bits(), expected.0.to_bits(), "f64 result changed");
            assert_eq!(
                got.1.map(f64::to_bits),
                expected.1.map(f64::to_bits),
                "SIMD changed"
            );
        }
        assert!(
            gort::stats().signal_stops > stops,
            "no thread was stopped by signal: the check proved nothing"
        );
    });
}

std::thread_local! {
    static CELL: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Goroutines hammering a thread-local `RefCell` (holding the borrow across a long call-free
/// stretch) while their threads are stopped by signal: a stop never runs another goroutine
/// on the stopped thread, so no borrow is ever seen twice.
#[test]
fn thread_local_refcell_under_preemption() {
    if !signals() {
        return;
    }
    common::each_procs_at("thread_local_refcell", &PROCS, |procs| {
        let t0 = Instant::now();
        let stop = AtomicBool::new(false);
        let stop = Arc::new(stop);
        let hs: Vec<_> = (0..procs + 2)
            .map(|i| {
                let stop = stop.clone();
                gort::spawn(move || {
                    let mut rounds = 0u64;
                    spin(t0, &stop, || {
                        CELL.with(|c| {
                            let mut v = c.borrow_mut();
                            v.push(i as u64);
                            for _ in 0..200 {
                                std::hint::black_box(&mut *v);
                            }
                            v.clear();
                        });
                        rounds += 1;
                    });
                    rounds
                })
            })
            .collect();
        for h in hs {
            assert!(h.join().unwrap() > 0);
        }
    });
}

/// The child of `println_lines_never_interleave`: call-free goroutines print numbered lines
/// while sysmon stops their threads.
#[test]
fn child_println() {
    if std::env::var(CHILD).as_deref() != Ok("println") {
        return;
    }
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let hs: Vec<_> = (0..4u64)
        .map(|g| {
            let stop = stop.clone();
            gort::spawn(move || {
                let mut n = 0u64;
                spin(t0, &stop, || {
                    println!("line g={g} n={n} end");
                    n += 1;
                });
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    eprintln!("child stats: {:?}", gort::stats());
}

#[test]
fn println_lines_never_interleave() {
    if !signals() {
        return;
    }
    for procs in PROCS {
        let out = common::output_within(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_println",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(CHILD, "println")
                .env("GORT_MAXPROCS", procs.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        assert!(out.status.success(), "child failed: {out:?}");
        let stdout = String::from_utf8(out.stdout).expect("utf-8");
        let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("line ")).collect();
        assert!(lines.len() > 100, "too few lines: {}", lines.len());
        for l in &lines {
            let ok = l.ends_with(" end") && l.matches("line ").count() == 1;
            assert!(ok, "interleaved line at maxprocs {procs}: {l:?}");
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "child panicked: {stderr}");
    }
}

/// `std::thread::sleep(1 s)` in one goroutine holds its thread, but not its P: sysmon hands
/// the P to another M, where two goroutines finish 100 channel round trips before the sleeper
/// wakes.
#[test]
fn thread_sleep_gives_up_its_p() {
    if !signals() {
        return;
    }
    common::each_procs_at("thread_sleep", &[1], |_| {
        const SLEEP: Duration = Duration::from_secs(1);
        let woke = Arc::new(AtomicBool::new(false));
        let sleeper = {
            let woke = woke.clone();
            gort::spawn(move || {
                std::thread::sleep(SLEEP);
                woke.store(true, Ordering::SeqCst);
            })
        };
        // Queued behind the sleeper on the only P: they start wherever the P goes.
        let (ping_tx, ping_rx) = gort::chan::<u64>(0);
        let (pong_tx, pong_rx) = gort::chan::<u64>(0);
        let echo = gort::spawn(move || {
            for v in ping_rx.iter() {
                pong_tx.send(v + 1).unwrap();
            }
        });
        let before_wake = Arc::new(AtomicUsize::new(0));
        let pinger = {
            let (woke, before_wake) = (woke.clone(), before_wake.clone());
            gort::spawn(move || {
                for i in 0..100 {
                    ping_tx.send(i).unwrap();
                    assert_eq!(pong_rx.recv().unwrap(), i + 1);
                    if !woke.load(Ordering::SeqCst) {
                        before_wake.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        pinger.join().unwrap();
        echo.join().unwrap();
        sleeper.join().unwrap();
        assert_eq!(
            before_wake.load(Ordering::SeqCst),
            100,
            "round trips waited for the sleeping thread"
        );
    });
}

/// The books' for-select busy loop: `select` with `default` and some work, until `done` closes.
/// At maxprocs 1 the closer needs the loop to yield: `select!` is a preemption point.
#[test]
fn for_select_busy_loop_ends() {
    common::each_procs_at("for_select", &PROCS, |_| {
        let (done_tx, done_rx) = gort::chan::<()>(0);
        let work = Arc::new(AtomicU64::new(0));
        let looper = {
            let work = work.clone();
            gort::spawn(move || loop {
                gort::select! {
                    recv(done_rx) -> _ => return,
                    default => {}
                }
                work.fetch_add(1, Ordering::Relaxed);
            })
        };
        let closer = gort::spawn(move || {
            gort::time::sleep(Duration::from_millis(30));
            drop(done_tx);
        });
        closer.join().unwrap();
        looper.join().unwrap();
        assert!(work.load(Ordering::Relaxed) > 0);
    });
}

/// The books' generators: `repeat_fn` (a busy producer) piped into `take`, then `done` closes
/// and the producer ends.
#[test]
fn generator_pipeline_ends() {
    common::each_procs_at("generators", &PROCS, |_| {
        let (done_tx, done_rx) = gort::chan::<()>(0);
        let (out_tx, out_rx) = gort::chan::<u64>(0);
        let producer = gort::spawn(move || {
            let mut x = 1u64;
            loop {
                // A little work per value, as `repeat_fn(rand)` does.
                for _ in 0..1000 {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
                gort::select! {
                    recv(done_rx) -> _ => return,
                    send(out_tx, x) -> _ => {}
                }
            }
        });
        let taken: Vec<u64> = (0..10).map(|_| out_rx.recv().unwrap()).collect();
        drop(done_tx);
        producer.join().unwrap();
        assert_eq!(taken.len(), 10);
    });
}

/// A loop calling `preempt_point` yields when sysmon asks: a goroutine queued on the same
/// thread (and, at maxprocs 1, on the only P) runs, sleeps and finishes while the loop goes on.
#[test]
fn preempt_point_lets_a_goroutine_on_its_thread_run() {
    if matches!(
        std::env::var("GORT_SYSMON").as_deref(),
        Ok("off" | "0" | "false")
    ) {
        return;
    }
    common::each_procs_at("preempt_point", &[1], |_| {
        let finished = gort::spawn(|| {
            let t0 = Instant::now();
            let done = Arc::new(AtomicBool::new(false));
            let sleeper = {
                let done = done.clone();
                gort::spawn(move || {
                    gort::time::sleep(Duration::from_millis(20));
                    done.store(true, Ordering::SeqCst);
                })
            };
            spin(t0, &done, gort::preempt_point);
            let finished = done.load(Ordering::SeqCst);
            sleeper.join().unwrap();
            finished
        });
        assert!(
            finished.join().unwrap(),
            "the goroutine beside the loop never ran while it spun"
        );
    });
}

/// Calls of the SIGURG handler the child of `user_sigurg_handler_is_chained` installs.
static USER_SIGURG: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_sigurg(_: libc::c_int) {
    USER_SIGURG.fetch_add(1, Ordering::Relaxed);
}

/// The child of `user_sigurg_handler_is_chained`: installs a SIGURG handler before the runtime
/// starts, makes sysmon signal threads, then sends SIGURG to itself.
#[test]
fn child_sigurg() {
    if std::env::var(CHILD).as_deref() != Ok("sigurg") {
        return;
    }
    // SAFETY: all-zero is a valid `sigaction`; the handler only bumps an atomic.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = count_sigurg as extern "C" fn(libc::c_int) as libc::sighandler_t;
        assert_eq!(
            libc::sigaction(libc::SIGURG, &action, std::ptr::null_mut()),
            0
        );
    }
    let stops = gort::stats().signal_stops;
    all_start_while_others_spin(1, || {
        std::hint::black_box(0u64);
    });
    assert!(
        gort::stats().signal_stops > stops,
        "no signal preemption happened"
    );
    let seen = USER_SIGURG.load(Ordering::Relaxed);
    assert!(seen > 0, "the user's handler never ran");
    // SAFETY: raise has no preconditions; our handler is installed.
    unsafe { libc::raise(libc::SIGURG) };
    assert!(USER_SIGURG.load(Ordering::Relaxed) > seen);
    println!(
        "child: user handler ran {} times",
        USER_SIGURG.load(Ordering::Relaxed)
    );
}

/// A SIGURG handler the program installed before the runtime started keeps running: gort's
/// handler chains to it (and a SIGURG the program sends itself still reaches it).
#[test]
fn user_sigurg_handler_is_chained() {
    if !signals() {
        return;
    }
    let out = common::output_within(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_sigurg",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, "sigurg")
            .env("GORT_MAXPROCS", "1"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {out:?}");
    assert!(stdout.contains("child: user handler ran"), "{stdout}");
}
