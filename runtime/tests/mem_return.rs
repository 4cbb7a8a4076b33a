//! Memory comes back (issue 15): after a burst of 100,000 goroutines that parked and then ended,
//! the process's resident memory falls back towards where it was before the burst, without the
//! program doing anything but idle. Before the background scavenger the stacks' pages (one per
//! stack at least) and the goroutine cells stayed resident forever.
//!
//! Each run is a child process (this binary rerun with `GORT_TEST_MEM_CHILD` set), so its RSS is
//! the burst's alone and its runtime quiet: at maxprocs 1, 2 and 4, and once with
//! `GORT_SYSMON=off` (no background scavenger: an M going idle releases the stacks itself). The
//! assertion is not a timing one: memory must fall to within a quarter of the burst's growth
//! within `RETURN_BOUND` (the scavenger needs one to two of its 500 ms periods; the bound leaves
//! room for a loaded machine), and the child prints what it saw for the log. With the
//! scavenger, the page tables of the burst's stacks (`VmPTE`, not part of RSS) must fall the
//! same way: idle slabs are unmapped.
//!
//! One more run (`memory_returns_while_nothing_wakes`) checks the program that idles with no
//! timer due: the child sleeps `QUIET_SLEEP` in one go, so no M wakes but for the runtime's
//! own reasons, and RSS must then be within a sixteenth of the growth. Cells freed by the
//! scavenger sit on the pages of the M that allocated them until that M collects; when the
//! scavenger woke one M only, the others' pages (60-80 MiB here) stayed until they woke.

mod common;

use common::rss_bytes;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Env var: this process is a child run of `child_burst`.
const CHILD: &str = "GORT_TEST_MEM_CHILD";
/// Goroutines in the burst.
const BURST: usize = 100_000;
/// How long the child waits for memory to come back.
const RETURN_BOUND: Duration = Duration::from_secs(10);
/// How long a child may run at all before it counts as hung.
const CHILD_DEADLINE: Duration = Duration::from_secs(90);
/// Env var: the child sleeps `QUIET_SLEEP` in one go after its burst, then checks once.
const QUIET: &str = "GORT_TEST_MEM_QUIET";
/// How long the quiet child sleeps: the scavenger needs one to two 500 ms periods; the rest is
/// room for a loaded machine.
const QUIET_SLEEP: Duration = Duration::from_secs(5);

#[test]
fn memory_returns_after_a_burst() {
    for procs in [1, 2, 4] {
        check_child(&[("GORT_MAXPROCS", &procs.to_string())]);
    }
}

#[test]
fn memory_returns_while_nothing_wakes() {
    check_child(&[("GORT_MAXPROCS", "2"), (QUIET, "1")]);
}

#[test]
fn memory_returns_without_sysmon() {
    check_child(&[("GORT_MAXPROCS", "2"), ("GORT_SYSMON", "off")]);
}

/// Runs `child_burst` in a child process with `env` and checks it passed.
fn check_child(env: &[(&str, &str)]) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_burst",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(CHILD, "1")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = wait_bounded(cmd.spawn().expect("run child"), env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("child {env:?}: {}", stdout.trim());
    assert!(
        out.status.success(),
        "child {env:?} failed: {stdout}\n{stderr}"
    );
    assert!(stdout.contains("memory returned"), "{stdout}\n{stderr}");
}

/// Waits for `child` for at most `CHILD_DEADLINE`, killing it (and failing) past that.
fn wait_bounded(mut child: Child, env: &[(&str, &str)]) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("wait for child").is_none() {
        if start.elapsed() > CHILD_DEADLINE {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect child");
            panic!(
                "child {env:?} still running after {CHILD_DEADLINE:?}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect child")
}

/// The child: a burst, then idle until RSS is back within a quarter of the burst's growth.
#[test]
fn child_burst() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let scavenger = std::env::var("GORT_SYSMON").map_or(true, |v| v != "off");
    gort::run(move || {
        let (before, pte_before) = (rss_bytes(), page_table_bytes());
        let (peak, pte_peak) = burst(BURST);
        let grown = peak.saturating_sub(before);
        let pte_grown = pte_peak.saturating_sub(pte_before);
        assert!(
            grown > BURST * 4096,
            "the burst grew RSS by {grown} bytes only: no stack was touched?"
        );
        let back = |rss: usize, pte: usize| {
            rss.saturating_sub(before) <= grown / 4
                && (!scavenger || pte.saturating_sub(pte_before) <= pte_grown / 4)
        };
        let start = Instant::now();
        if std::env::var_os(QUIET).is_some() {
            gort::time::sleep(QUIET_SLEEP);
            let rss = rss_bytes();
            let line = format!(
                "RSS before {} KiB, peak {} KiB, {} ms of quiet later {} KiB",
                before >> 10,
                peak >> 10,
                start.elapsed().as_millis(),
                rss >> 10
            );
            assert!(
                rss.saturating_sub(before) <= grown / 16,
                "memory did not come back while nothing woke: {line}"
            );
            println!("memory returned: {line}");
            return;
        }
        let (mut rss, mut pte) = (rss_bytes(), page_table_bytes());
        while !back(rss, pte) && start.elapsed() < RETURN_BOUND {
            gort::time::sleep(Duration::from_millis(50));
            (rss, pte) = (rss_bytes(), page_table_bytes());
        }
        let line = format!(
            "RSS before {} KiB, peak {} KiB, after {} ms {} KiB; page tables {} / {} / {} KiB",
            before >> 10,
            peak >> 10,
            start.elapsed().as_millis(),
            rss >> 10,
            pte_before >> 10,
            pte_peak >> 10,
            pte >> 10
        );
        assert!(
            back(rss, pte),
            "memory did not come back within {RETURN_BOUND:?}: {line}"
        );
        println!("memory returned: {line}");
    });
}

/// A burst of `n` parked goroutines (`common::parked_burst`); returns RSS and page tables
/// read while all of them are parked.
fn burst(n: usize) -> (usize, usize) {
    common::parked_burst(n, || (rss_bytes(), page_table_bytes()))
}

/// The process's page tables (`VmPTE` in `/proc/self/status`), in bytes.
fn page_table_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmPTE:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmPTE in /proc/self/status");
    kib << 10
}
