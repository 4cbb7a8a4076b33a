//! The test harness shared by gort's test binaries (`runtime/tests`, `chan/tests`): it runs
//! each scenario at several maxprocs, one test at a time, each run bounded in time, and holds
//! the helpers those tests share.
//!
//! Every scenario runs at maxprocs 1, 2 and 4 ([`PROCS`]), or only at `GORT_MAXPROCS` when that
//! is set (so a stress loop can pin one count: `GORT_MAXPROCS=4 cargo test ...`; see
//! [`procs`]). All tests of one test binary share one runtime and `sched::set_maxprocs` changes
//! it for all of them, while cargo runs the tests of a binary on parallel threads; so
//! [`each_procs`] holds a lock for the whole test. That lock is a `static` of this crate, one
//! per process, and each test binary is its own process: one lock per test binary. Each run is
//! also bounded in time: the scenario runs on a helper thread, and a hang (a lost wake-up, a
//! deadlock, starvation) fails the test with a message naming the scenario instead of stalling
//! CI.
//!
//! `GORT_TEST_MIGRATE=1` runs the scenarios in migrate mode (Go's behaviour: started goroutines
//! move between threads; `sched::enable_migration`), so CI checks the suite in both modes.
//!
//! Dependencies: `sched` and std only. `gort` (runtime/) and `gort-chan` (chan/) both take this
//! crate as a dev-dependency, and `chan` must not depend on `gort`; helpers that need `gort`'s
//! types (sockets) stay in `runtime/tests/common`. Each test binary's `common` module
//! re-exports this crate, so tests call `common::each_procs` and the like.

mod child;

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// The processor counts every scenario runs at, unless `GORT_MAXPROCS` names one.
pub const PROCS: [usize; 3] = [1, 2, 4];

/// The processor counts to run at: `GORT_MAXPROCS` alone if it is set, else [`PROCS`].
///
/// # Panics
/// If `GORT_MAXPROCS` is set to something other than a number.
pub fn procs() -> Vec<usize> {
    match std::env::var("GORT_MAXPROCS") {
        Ok(v) => vec![v.trim().parse().expect("GORT_MAXPROCS: a positive number")],
        Err(_) => PROCS.to_vec(),
    }
}

/// How long one scenario may take at one processor count before it counts as hung.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Serialises the tests of one binary: held while a test sets maxprocs and runs.
static LOCK: Mutex<()> = Mutex::new(());

/// Runs `scenario(procs)` at each of [`procs`], holding the binary's lock throughout, each run
/// on a helper thread bounded by [`DEADLINE`]. A panic in the scenario fails the test with the
/// scenario's own message.
pub fn each_procs(name: &str, scenario: fn(usize)) {
    each_procs_at(name, &procs(), scenario);
}

/// Like [`each_procs`], at the processor counts `procs` instead of [`procs`] (`GORT_MAXPROCS`
/// does not change them).
pub fn each_procs_at(name: &str, procs: &[usize], scenario: fn(usize)) {
    runs(name, procs, scenario);
}

/// Like [`each_procs`], but runs the scenario inside a goroutine (blocking operations then park
/// the goroutine rather than the helper thread).
pub fn each_procs_in_goroutine(name: &str, scenario: fn(usize)) {
    runs(name, &procs(), move |n| {
        if let Err(payload) = sched::spawn(move || scenario(n)).join() {
            std::panic::resume_unwind(payload);
        }
    });
}

/// The loop of the `each_procs` family: under the binary's lock, sets each processor count and
/// runs `run` at it, [`bounded`].
fn runs(name: &str, procs: &[usize], run: impl Fn(usize) + Copy + Send + 'static) {
    let _serial = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for &n in procs {
        sched::set_maxprocs(n);
        assert_eq!(sched::maxprocs(), n, "{name}: set_maxprocs({n})");
        bounded(&format!("{name} at maxprocs {n}"), move || run(n));
    }
}

/// Runs `f` on a new plain thread and waits at most [`DEADLINE`] for it; a panic in `f` is
/// resumed here. A hang fails the test after printing the runtime's counters and goroutine
/// dump.
pub fn bounded(what: &str, f: impl FnOnce() + Send + 'static) {
    migrate_if_asked();
    compact_if_asked();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let worker = std::thread::Builder::new()
        .name(what.to_string())
        .spawn(move || {
            f();
            let _ = done_tx.send(());
        })
        .expect("spawn helper thread");
    let start = Instant::now();
    match done_rx.recv_timeout(DEADLINE) {
        // Disconnected: `f` panicked before sending; `join` hands us its payload.
        Ok(()) | Err(RecvTimeoutError::Disconnected) => {
            if let Err(payload) = worker.join() {
                std::panic::resume_unwind(payload);
            }
        }
        Err(RecvTimeoutError::Timeout) => {
            eprintln!("{what}: hung; {}", runtime_state());
            panic!(
                "{what}: still running after {:?}: hung (lost wake-up, deadlock or starvation)",
                start.elapsed()
            )
        }
    }
}

/// The runtime's counters and goroutine dump, so that a hang in CI can be read from its log.
/// Taken on a thread of its own and waited for at most 5 s: the dump takes the registry's
/// locks, which a hung runtime may hold.
fn runtime_state() -> String {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("testkit-dump".into())
        .spawn(move || {
            let mut dump = Vec::new();
            let _ = sched::debug::dump(&mut dump);
            // Which M each goroutine is homed to (the dump does not say).
            let homes: Vec<String> = sched::debug::goroutines()
                .iter()
                .map(|g| format!("{}: {:?}, home M{:?}", g.id, g.state, g.home))
                .collect();
            let _ = tx.send(format!(
                "{:?}\n{}\n{}\nhomes: {homes:?}",
                sched::stats(),
                sched::debug::scheduler_state(),
                String::from_utf8_lossy(&dump)
            ));
        });
    match spawned {
        Ok(_) => rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| "no goroutine dump: it did not finish in 5 s".into()),
        Err(e) => format!("no goroutine dump: {e}"),
    }
}

/// True if this process runs its scenarios in migrate mode (`GORT_TEST_MIGRATE=1`).
pub fn migrating() -> bool {
    std::env::var("GORT_TEST_MIGRATE").is_ok_and(|v| v == "1")
}

/// True if this process compacts parked stacks as fast as it can (`GORT_TEST_COMPACT=1`).
pub fn compacting() -> bool {
    std::env::var("GORT_TEST_COMPACT").is_ok_and(|v| v == "1")
}

/// If `GORT_TEST_COMPACT=1`: enables stack compaction before the runtime starts, and starts a
/// thread that compacts every parked goroutine it can every 2 ms, so that every wait in the
/// suite longer than that races a compaction (`runtime/tests/stack_compaction.rs` races them
/// back to back). Not more often: the suite's idle tests count the process's CPU time.
fn compact_if_asked() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if !compacting() {
            return;
        }
        // SAFETY: the suite's scenarios lend a goroutine's stack to another thread only
        // through `gort::scope`, which holds a `StackLent` guard.
        if unsafe { sched::enable_stack_compaction() }.is_ok() {
            let _ = std::thread::Builder::new()
                .name("test-compactor".into())
                .spawn(|| loop {
                    sched::compact_parked_stacks(Duration::ZERO);
                    std::thread::sleep(Duration::from_millis(2));
                });
        }
    });
}

/// Enables migration before the runtime starts if `GORT_TEST_MIGRATE=1`.
fn migrate_if_asked() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if migrating() {
            // SAFETY: the suite's scenarios keep nothing thread-bound across a park, except
            // `runtime/tests/thread_affinity.rs`, whose tests exist to show what migration
            // breaks and which CI runs without this variable.
            let _ = unsafe { sched::enable_migration() };
        }
    });
}

/// Waits (yielding) until `cond` holds; panics naming `what` after [`DEADLINE`]. For waits on
/// work that is known to be runnable, or whose other side is known to be running, such as a
/// barrier of goroutines that are all on a processor; works on goroutines and plain threads
/// alike.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "gave up waiting: {what}");
        sched::yield_now();
    }
}

/// `cmd.output()` bounded by [`DEADLINE`]: a child that hangs is killed and fails its test
/// (with what it printed) instead of stalling CI. For tests that run themselves as children.
pub fn output_within(cmd: &mut std::process::Command) -> std::process::Output {
    child::output_within(cmd, DEADLINE)
}

/// Sleeps `d` by parking with a timeout (a goroutine gives its thread away meanwhile).
pub fn sleep(d: Duration) {
    let end = Instant::now() + d;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if left.is_zero() {
            break;
        }
        sched::park_timeout(left);
    }
}

/// Where one participant of a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A goroutine (`sched::spawn`).
    Goroutine,
    /// A plain OS thread (`std::thread::spawn`).
    Thread,
}

/// Starts `f` on `side`; the returned closure joins it, resuming a panic.
pub fn start<T: Send + 'static>(
    side: Side,
    f: impl FnOnce() -> T + Send + 'static,
) -> Box<dyn FnOnce() -> T + Send> {
    match side {
        Side::Goroutine => {
            let h = sched::spawn(f);
            Box::new(move || h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        }
        Side::Thread => {
            let h = std::thread::spawn(f);
            Box::new(move || h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        }
    }
}

/// Prefix of the messages of panics a test provokes on purpose.
pub const EXPECTED: &str = "expected:";

/// A panic payload a test provokes on purpose (for payloads that are not strings).
#[derive(Debug, PartialEq, Eq)]
pub struct Expected(pub u32);

/// Installs (once) a panic hook that stays silent for the panics a test provokes on purpose
/// (a message starting with [`EXPECTED`], or an [`Expected`] payload) and reports every other
/// panic as usual, so real failures keep their message.
pub fn quiet_expected_panics() {
    quiet_expected_panics_and(&[]);
}

/// Like [`quiet_expected_panics`], and also silent for messages starting with one of
/// `prefixes` (chan's tests provoke `sync:` panics by misusing a primitive on purpose). The
/// hook is installed once per process: only the first call of either function counts.
pub fn quiet_expected_panics_and(prefixes: &'static [&'static str]) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let expected = panic_message(payload).is_some_and(|m| {
                m.starts_with(EXPECTED) || prefixes.iter().any(|p| m.starts_with(p))
            }) || payload.downcast_ref::<Expected>().is_some();
            if !expected {
                report(info);
            }
        }));
    });
}

/// The message of a panic payload, if it is a string.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}
