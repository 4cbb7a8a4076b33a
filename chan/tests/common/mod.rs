//! Harness shared by chan's test binaries (channels, select, sync).
//!
//! Every scenario runs at maxprocs 1, 2 and 4. `sched::set_maxprocs` is process-wide while
//! cargo runs the tests of one binary on parallel threads, so [`each_procs`] holds a lock for
//! the whole test. Each run is bounded in time: the scenario runs on a helper thread, and a
//! hang (lost wake-up, deadlock, starvation) fails the test with the scenario's name instead
//! of stalling CI.
#![allow(dead_code)] // not every binary uses every helper

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The processor counts every scenario runs at.
pub const PROCS: [usize; 3] = [1, 2, 4];

/// How long one scenario may take at one processor count before it counts as hung.
pub const DEADLINE: Duration = Duration::from_secs(60);

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `scenario(procs)` at each of [`PROCS`], holding the binary's lock, each run on a
/// helper thread bounded by [`DEADLINE`].
pub fn each_procs(name: &str, scenario: fn(usize)) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for procs in PROCS {
        sched::set_maxprocs(procs);
        assert_eq!(sched::maxprocs(), procs, "{name}: set_maxprocs({procs})");
        bounded(&format!("{name} at maxprocs {procs}"), move || {
            scenario(procs)
        });
    }
}

/// Like [`each_procs`], but runs the scenario inside a goroutine (blocking operations then park
/// the goroutine rather than the helper thread).
pub fn each_procs_in_goroutine(name: &str, scenario: fn(usize)) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for procs in PROCS {
        sched::set_maxprocs(procs);
        bounded(&format!("{name} at maxprocs {procs}"), move || {
            if let Err(payload) = sched::spawn(move || scenario(procs)).join() {
                std::panic::resume_unwind(payload);
            }
        });
    }
}

/// Runs `f` on a new plain thread and waits at most [`DEADLINE`] for it; a panic in `f` is
/// resumed here.
pub fn bounded(what: &str, f: impl FnOnce() + Send + 'static) {
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
        Ok(()) | Err(RecvTimeoutError::Disconnected) => {
            if let Err(payload) = worker.join() {
                std::panic::resume_unwind(payload);
            }
        }
        Err(RecvTimeoutError::Timeout) => panic!(
            "{what}: still running after {:?}: hung (lost wake-up, deadlock or starvation)",
            start.elapsed()
        ),
    }
}

/// Yields until `cond` holds; panics naming `what` after [`DEADLINE`]. For waits on work that
/// is known to be runnable.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "gave up waiting: {what}");
        sched::yield_now();
    }
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
    Goroutine,
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

/// Silences the default panic message of panics a test provokes on purpose (those whose
/// message starts with `sync:`), keeping the others.
pub fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !msg.starts_with("sync:") && !msg.starts_with("expected:") {
                default(info);
            }
        }));
    });
}
