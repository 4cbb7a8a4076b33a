//! `gort::blocking` (`sched/src/blocking.rs`, `docs/BLOCKING.md`): the hand-off to the pool and
//! back, the caller's thread staying free meanwhile, panics reaching the caller, the cap's
//! error, idle threads exiting, and the deadlock detector leaving a goroutine in `blocking`
//! alone.
//!
//! The scenarios run at maxprocs 1, 2 and 4 under the binary's lock (`common::each_procs`),
//! each bounded in time. The cap and the deadlock checks change process-wide settings or must
//! end their process, so they run this binary again as a child (the `child_*` tests, which do
//! nothing unless `CHILD` is set), bounded by `CHILD_DEADLINE` and always reaped. Every test
//! sets a short keep-alive first, so `idle_threads_exit` need not wait 10 s.

mod common;

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set in a child's environment to the scenario it runs.
const CHILD: &str = "GORT_BLOCKING_TEST_CHILD";

/// Longest a child may take before it counts as hung.
const CHILD_DEADLINE: Duration = Duration::from_secs(60);

/// The keep-alive this binary's pool threads get.
const KEEPALIVE: Duration = Duration::from_millis(200);

fn setup() {
    sched::set_blocking_keepalive(KEEPALIVE);
    common::quiet_expected_panics();
}

/// The closure runs on a pool thread, borrows the caller's data, and its result comes back;
/// on a plain thread it runs inline.
#[test]
fn hand_off_and_return() {
    setup();
    common::each_procs("hand_off_and_return", |_| {
        let (caller, pool, sum) = gort::spawn(|| {
            let data: Vec<u64> = (1..=100).collect();
            let caller = std::thread::current().id();
            let (pool, sum) = gort::blocking(|| {
                let me = std::thread::current();
                (
                    (me.id(), me.name().map(str::to_owned)),
                    data.iter().sum::<u64>(),
                )
            })
            .unwrap();
            (caller, pool, sum)
        })
        .join()
        .unwrap();
        assert_eq!(sum, 5050);
        assert_ne!(pool.0, caller, "ran on the caller's thread");
        assert_eq!(pool.1.as_deref(), Some("gort-blocking"));
        let here = std::thread::current().id();
        assert_eq!(
            gort::blocking(|| std::thread::current().id()).unwrap(),
            here
        );
    });
}

/// Many goroutines in `blocking` at once all come back with their own results.
#[test]
fn many_at_once() {
    setup();
    common::each_procs("many_at_once", |_| {
        let hs: Vec<_> = (0..64u64)
            .map(|i| {
                gort::spawn(move || {
                    gort::blocking(|| {
                        std::thread::sleep(Duration::from_millis(5));
                        i * 2
                    })
                    .unwrap()
                })
            })
            .collect();
        let got: Vec<u64> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(got, (0..64).map(|i| i * 2).collect::<Vec<_>>());
    });
}

/// At maxprocs 1, while one goroutine sleeps a second in `blocking`, two goroutines homed to
/// the same M do 100 channel round trips, all before the sleeper is back.
#[test]
fn thread_stays_free() {
    setup();
    common::each_procs_at("thread_stays_free", &[1], |_| {
        let (done, trips) = gort::spawn(|| {
            let done = Arc::new(AtomicBool::new(false));
            let trips = Arc::new(AtomicUsize::new(0));
            let (ping_tx, ping_rx) = gort::chan::<u32>(0);
            let (pong_tx, pong_rx) = gort::chan::<u32>(0);
            let home = gort::current_machine_id();
            let echo = gort::spawn(move || {
                for v in ping_rx.iter() {
                    pong_tx.send(v).unwrap();
                }
                gort::current_machine_id()
            });
            let (d, t) = (done.clone(), trips.clone());
            let pinger = gort::spawn(move || {
                for i in 0..100 {
                    ping_tx.send(i).unwrap();
                    assert_eq!(pong_rx.recv().unwrap(), i);
                    t.fetch_add(1, Ordering::SeqCst);
                }
                (d.load(Ordering::SeqCst), gort::current_machine_id())
            });
            gort::blocking(|| std::thread::sleep(Duration::from_secs(1))).unwrap();
            done.store(true, Ordering::SeqCst);
            let (sleeper_back, pinger_m) = pinger.join().unwrap();
            let echo_m = echo.join().unwrap();
            if !common::migrating() {
                // Homes are what this test is about; in migrate mode there are none.
                assert_eq!(echo_m, home, "echo homed elsewhere");
                assert_eq!(pinger_m, home, "pinger homed elsewhere");
            }
            (sleeper_back, trips.load(Ordering::SeqCst))
        })
        .join()
        .unwrap();
        assert_eq!(trips, 100);
        assert!(!done, "the round trips waited for the sleeper's thread");
    });
}

/// A panic in the closure is resumed in the caller, and the pool goes on working.
#[test]
fn panic_reaches_caller() {
    setup();
    common::each_procs("panic_reaches_caller", |_| {
        let msg = gort::spawn(|| {
            let r = std::panic::catch_unwind(|| {
                gort::blocking(|| -> u32 { panic!("expected: in the pool") })
            });
            let payload = r.expect_err("the panic reached the caller");
            let msg = common::panic_message(payload.as_ref()).map(str::to_owned);
            assert_eq!(gort::blocking(|| 7).unwrap(), 7);
            msg
        })
        .join()
        .unwrap();
        assert_eq!(msg.as_deref(), Some("expected: in the pool"));
    });
}

/// Idle pool threads are reused, and exit once the keep-alive has passed with no job.
#[test]
fn idle_threads_exit() {
    setup();
    common::each_procs("idle_threads_exit", |_| {
        let before = sched::blocking_pool_threads();
        gort::spawn(|| {
            for _ in 0..10 {
                gort::blocking(|| ()).unwrap();
            }
        })
        .join()
        .unwrap();
        let after = sched::blocking_pool_threads();
        assert!(after >= 1, "no pool thread after a job");
        assert!(
            after <= before + 1,
            "{before} threads, then {after}: not reused"
        );
        let start = Instant::now();
        common::wait_until("idle pool threads exit", || {
            std::thread::sleep(Duration::from_millis(10));
            sched::blocking_pool_threads() == 0
        });
        assert!(
            start.elapsed() >= KEEPALIVE / 2,
            "exited before the keep-alive"
        );
    });
}

/// Runs this binary's test `child_<scenario>` as a child at `procs`, with `env`.
fn run_child(scenario: &str, procs: usize, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.args([&format!("child_{scenario}"), "--exact", "--nocapture"])
        .env(CHILD, scenario)
        .env("GORT_MAXPROCS", procs.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn child");
    let start = Instant::now();
    while child.try_wait().expect("wait child").is_none() {
        if start.elapsed() > CHILD_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{scenario} at maxprocs {procs}: child hung for {CHILD_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("child output")
}

fn in_child(scenario: &str) -> bool {
    std::env::var(CHILD).is_ok_and(|v| v == scenario)
}

/// Asserts the child printed `marker` and exited with `code`.
fn expect(out: &Output, code: i32, marker: &str, what: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(code) && (stdout.contains(marker) || stderr.contains(marker)),
        "{what}: exit {:?} (want {code}), no {marker:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
}

/// With `GORT_MAX_BLOCKING_THREADS=2` and two jobs running, a third fails with `PoolFull`
/// (and, through `gort::fs`, an `io::Error` saying how to raise the cap); raising the cap at
/// run time lets it through.
#[test]
fn cap_gives_its_error() {
    for procs in common::PROCS {
        let out = run_child("cap", procs, &[("GORT_MAX_BLOCKING_THREADS", "2")]);
        expect(&out, 0, "cap: ok", &format!("cap at maxprocs {procs}"));
    }
}

#[test]
fn child_cap() {
    if !in_child("cap") {
        return;
    }
    assert_eq!(gort::max_blocking_threads(), 2);
    gort::run(|| {
        let (release, holders) = hold_pool_threads(2);
        let err = gort::blocking(|| ()).expect_err("a third job past a cap of 2");
        assert!(
            matches!(err, gort::BlockingError::PoolFull { cap: 2 }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("GORT_MAX_BLOCKING_THREADS"), "{msg}");
        assert!(msg.contains("set_max_blocking_threads"), "{msg}");
        let io = gort::fs::metadata("/").expect_err("gort::fs past the cap");
        assert_eq!(io.kind(), std::io::ErrorKind::ResourceBusy);
        assert!(io.to_string().contains("GORT_MAX_BLOCKING_THREADS"), "{io}");
        assert_eq!(gort::set_max_blocking_threads(3), 2);
        assert_eq!(gort::blocking(|| 3).unwrap(), 3);
        release.store(true, Ordering::SeqCst);
        holders.into_iter().for_each(|h| h.join().unwrap());
    });
    println!("cap: ok");
}

/// Starts `n` goroutines whose jobs hold a pool thread each until the flag is set; returns
/// once all `n` run.
fn hold_pool_threads(n: usize) -> (Arc<AtomicBool>, Vec<gort::JoinHandle<()>>) {
    let release = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicUsize::new(0));
    let holders = (0..n)
        .map(|_| {
            let (release, running) = (release.clone(), running.clone());
            gort::spawn(move || {
                gort::blocking(|| {
                    running.fetch_add(1, Ordering::SeqCst);
                    while !release.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
                .unwrap()
            })
        })
        .collect();
    common::wait_until("pool threads held", || running.load(Ordering::SeqCst) == n);
    (release, holders)
}

/// With `GORT_DEADLOCK=strict` (which reports after 1 s of everything asleep, whatever other
/// threads exist), a goroutine in a 2.5 s `blocking` sleep while every M is idle is not a
/// deadlock; a real deadlock after it still is.
#[test]
fn blocking_is_not_a_deadlock() {
    for procs in common::PROCS {
        let strict = [("GORT_DEADLOCK", "strict")];
        let out = run_child("sleeps", procs, &strict);
        expect(
            &out,
            0,
            "sleeps: ok",
            &format!("sleeps at maxprocs {procs}"),
        );
        let out = run_child("deadlocks_after", procs, &strict);
        let fatal = "fatal error: all goroutines are asleep - deadlock!";
        expect(
            &out,
            2,
            fatal,
            &format!("deadlocks_after at maxprocs {procs}"),
        );
    }
}

#[test]
fn child_sleeps() {
    if !in_child("sleeps") {
        return;
    }
    gort::run(|| gort::blocking(|| std::thread::sleep(Duration::from_millis(2500))).unwrap());
    println!("sleeps: ok");
}

#[test]
fn child_deadlocks_after() {
    if !in_child("deadlocks_after") {
        return;
    }
    gort::run(|| {
        gort::blocking(|| ()).unwrap();
        let (_tx, rx) = gort::chan::<()>(0);
        let _ = rx.recv();
    });
    println!("deadlocks_after: run returned");
}
