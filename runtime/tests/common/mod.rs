//! Harness shared by gort's integration tests.
//!
//! Every scenario runs at maxprocs 1, 2 and 4. All tests of one test binary share one runtime
//! and `set_maxprocs` changes it for all of them, while cargo runs tests on parallel threads;
//! so [`each_procs`] holds a process-wide lock for the whole test. Each run is also bounded in
//! time: the scenario runs on a helper thread and a hang (a lost wake-up, a deadlock) fails the
//! test with a message naming the scenario instead of stalling CI.
//!
//! Not every test binary uses every helper here.
#![allow(dead_code)]

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// The processor counts every scenario runs at.
pub const PROCS: [usize; 3] = [1, 2, 4];

/// How long one scenario may take at one processor count before it counts as hung.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Serialises the tests of one binary: held while a test sets maxprocs and runs.
static LOCK: Mutex<()> = Mutex::new(());

/// Runs `scenario(procs)` at each of [`PROCS`], holding the binary's lock throughout, each run
/// on a helper thread bounded by [`DEADLINE`]. A panic in the scenario fails the test with the
/// scenario's own message.
pub fn each_procs(name: &str, scenario: fn(usize)) {
    each_procs_at(name, &PROCS, scenario);
}

/// Like [`each_procs`], at the processor counts `procs` instead of [`PROCS`].
pub fn each_procs_at(name: &str, procs: &[usize], scenario: fn(usize)) {
    let _serial = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for &n in procs {
        gort::set_maxprocs(n);
        assert_eq!(gort::maxprocs(), n, "{name}: set_maxprocs({n})");
        bounded(&format!("{name} at maxprocs {n}"), move || scenario(n));
    }
}

/// Runs `f` on a new plain thread and waits for it for at most [`DEADLINE`].
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
        // Disconnected: `f` panicked before sending; `join` hands us its payload.
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

/// Waits (yielding) until `cond` holds; panics with `what` after [`DEADLINE`]. For waits
/// whose other side is known to be running, such as a barrier of goroutines that are all on
/// a processor; works on goroutines and plain threads alike.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "gave up waiting: {what}");
        gort::yield_now();
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
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let expected = panic_message(payload).is_some_and(|m| m.starts_with(EXPECTED))
                || payload.downcast_ref::<Expected>().is_some();
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

/// Makes the next close of `s` send a reset (SO_LINGER with a zero timeout).
pub fn linger_zero(s: &gort::net::TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a live local struct; the
    // descriptor is owned by `s` for the duration of the call.
    let r = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(s),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt(SO_LINGER)");
}
