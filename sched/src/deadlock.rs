//! Deadlock detection, as Go's `checkdead`: when nothing in the process can ever run again,
//! say so and exit instead of hanging.
//!
//! gort lives inside arbitrary Rust programs, where threads it does not know about may wake a
//! goroutine at any time (a plain thread holding a channel sender, say). So gort declares a
//! deadlock only when it can prove one, from three facts checked together when the last M goes
//! to sleep with every run queue empty:
//! - every M of the runtime is asleep (the caller holds the idle lock and saw all of them);
//! - at least one plain thread is blocked in `park` with no timeout (a `gort::run` caller, a
//!   `join` from outside, a channel receive from a plain thread): someone is waiting;
//! - every thread of the process is accounted for: the process has exactly
//!   (runtime Ms + such parked threads + the strict watchdog, if any) threads
//!   (`/proc/self/stat` on Linux). Any other thread might still wake a goroutine, so its
//!   existence alone keeps the verdict silent.
//!
//! A thread parked with a timeout wakes by itself, so it is not counted as asleep (and, being a
//! thread, it makes the count differ). A pending timer or a goroutine waiting for I/O keeps the
//! verdict silent (the caller checks), and so does a job in the blocking pool (`blocking.rs`:
//! its goroutine will be woken by a pool thread); idle pool threads, sysmon, the SIGQUIT
//! dumper and the schedtrace writer (`debug/`) count as known threads.
//! The counter of parked threads is raised by the parker after its RUNNING→PARKED commit and
//! lowered by the unparker that wins PARKED→RUNNING. It can
//! briefly count a thread that was just unparked; that is harmless, because the unparker is
//! itself a running thread (an M that is not idle, or a thread the count does not account
//! for), so the verdict cannot be reached in that window.
//!
//! # Under a test harness, and `GORT_DEADLOCK=strict`
//!
//! The proof needs every thread accounted for, and a `#[test]` never has that: libtest runs each
//! test on a thread of its own (even at `--test-threads 1`) while its main thread waits for the
//! results, and other tests run beside it. So a deadlock inside `gort::run` in a `#[test]` stays
//! silent and the test hangs, at any `--test-threads`. Nothing can tell, from outside, that those
//! threads will never wake a goroutine: a thread's state and wait channel in
//! `/proc/self/task/*/stat` say where it sleeps now, not what it will do when it wakes (a thread in
//! `recv_timeout` or `sleep` can hold a channel sender). Go gives up in the same place (`checkdead`
//! returns at once in a c-archive or c-shared build, where foreign threads may call in), and under
//! `go test` the `-timeout` alarm is a pending timer, which keeps `checkdead` silent: a deadlocked
//! Go test ends when the alarm fires, with a panic and a dump of every goroutine.
//!
//! So the report under a harness is opt-in, and the person opting in supplies the missing fact:
//! `GORT_DEADLOCK=strict` means "threads gort does not know never wake a goroutine". Then the
//! third condition is replaced by a grace period: when every M is asleep with nothing pending
//! and a thread waits, a watchdog thread (started on first need, known to the count) waits
//! `STRICT_GRACE`; if in that time no check saw the runtime go idle again (every M that runs
//! goroutines passes through the check when it goes back to sleep, so an unchanged `EPISODE`
//! means no goroutine ran and went back to sleep) and everything is still asleep, it reports
//! and exits. The grace is a margin for tests that break the promise briefly (a plain thread
//! that sends on a channel after a short sleep), not part of the proof. The exact verdict above
//! still reports at once in strict mode. Rejected: a report after a timeout in the default mode
//! (a program whose goroutines wait for a plain thread that reads stdin would be killed while
//! its user types); guessing which threads belong to libtest (by name or count: unsound, and a
//! test's own helper threads look the same); a panic in the `gort::run` caller instead of an
//! exit (better for tests, since only the deadlocked test would fail, but it needs `run` and
//! `join` to learn of the verdict: future work).
//!
//! The report is written straight to file descriptor 2, not through `eprintln!`, which libtest
//! captures on test threads (and on the threads they spawn, such as Ms) and would lose at
//! `exit`. The exit status is 2, as Go's.
//!
//! Off Linux (no cheap thread count) only strict mode reports; `GORT_DEADLOCK=off` disables
//! detection. The mode is read once, at the first check.

use crate::loom::std_only::{AtomicIsize, AtomicU64, OnceLock};
use crate::loom::Ordering;
use std::cell::Cell;
use std::io::Write;
use std::time::Duration;

/// How long, in strict mode, everything must stay asleep before the watchdog reports.
const STRICT_GRACE: Duration = Duration::from_secs(1);

static THREADS_PARKED: AtomicIsize = AtomicIsize::new(0);

/// Strict mode: bumped (under the idle lock) by each check that finds every M asleep with a
/// thread waiting and cannot prove a deadlock; the watchdog reports only if it is unchanged
/// after the grace period.
static EPISODE: AtomicU64 = AtomicU64::new(0);

/// Strict mode: the watchdog thread, once started (`None` if it could not be).
static WATCHDOG: OnceLock<Option<std::thread::Thread>> = OnceLock::new();

std::thread_local! {
    /// On the watchdog, during its re-check: the episode it waited out.
    static CONFIRMING: Cell<Option<u64>> = const { Cell::new(None) };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    /// Report only what is proven (the default).
    Proven,
    /// Also assume threads gort does not know never wake a goroutine (after a grace period).
    Strict,
}

fn mode() -> Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    *MODE.get_or_init(|| {
        if !crate::config::deadlock_detection() {
            Mode::Off
        } else if std::env::var("GORT_DEADLOCK").is_ok_and(|v| v.trim() == "strict") {
            Mode::Strict
        } else {
            Mode::Proven
        }
    })
}

/// A plain thread committed to an untimed park.
pub(crate) fn thread_parked() {
    THREADS_PARKED.fetch_add(1, Ordering::SeqCst);
}

/// The unparker of a plain thread won PARKED→RUNNING.
pub(crate) fn thread_unparked() {
    THREADS_PARKED.fetch_sub(1, Ordering::SeqCst);
}

/// Called with the idle lock held when all `nm` Ms are asleep, the global queue is empty and no
/// timer or I/O wait is pending. Exits the process with Go's message if every thread is
/// provably asleep; in strict mode, arms the watchdog otherwise.
pub(crate) fn check_all_asleep(nm: usize, ngoroutines: usize) {
    let mode = mode();
    if mode == Mode::Off {
        return;
    }
    let parked = THREADS_PARKED.load(Ordering::SeqCst);
    if parked <= 0 || crate::blocking::jobs_in_flight() {
        return;
    }
    let (parked, pool) = (parked as usize, crate::blocking::known_threads());
    // The runtime's own threads besides the Ms: sysmon, the compactor, the SIGQUIT dumper and
    // the schedtrace writer (they never wake a goroutine).
    let pool = pool
        + crate::sysmon::threads()
        + crate::compact::threads()
        + crate::debug::sigquit::threads()
        + crate::debug::schedtrace::threads();
    if let Some(episode) = CONFIRMING.get() {
        // The watchdog's re-check: still asleep, and nothing went idle again meanwhile.
        if EPISODE.load(Ordering::SeqCst) == episode {
            let unknown = process_threads()
                .map(|t| t.saturating_sub(nm + parked + 1 + pool).to_string())
                .unwrap_or_else(|| "any".into());
            report(
                ngoroutines,
                parked,
                &format!(
                    "GORT_DEADLOCK=strict: {unknown} thread(s) unknown to gort were assumed \
                     never to wake a goroutine; nothing ran for {} ms\n",
                    STRICT_GRACE.as_millis()
                ),
            );
        }
        return;
    }
    let watchdog = usize::from(WATCHDOG.get().is_some_and(Option::is_some));
    if process_threads() == Some(nm + parked + watchdog + pool) {
        report(ngoroutines, parked, "");
    }
    if mode == Mode::Strict {
        EPISODE.fetch_add(1, Ordering::SeqCst);
        if let Some(w) = WATCHDOG.get_or_init(start_watchdog) {
            w.unpark();
        }
    }
}

/// The goroutine dump's groups in a deadlock report (the largest first).
const REPORT_GROUPS: usize = 20;

/// Writes the goroutine dump (bounded), then Go's message, and exits with status 2.
fn report(ngoroutines: usize, parked: usize, why: &str) -> ! {
    let mut text = Vec::new();
    let _ = crate::debug::write_dump(&mut text, REPORT_GROUPS);
    let _ = write!(
        text,
        "fatal error: all goroutines are asleep - deadlock!\n\n\
         {ngoroutines} goroutine(s) blocked forever; {parked} thread(s) waiting on them\n{why}"
    );
    // Straight to the descriptor: `eprintln!` may be captured by a test harness (see the top).
    let _ = std::io::stderr().lock().write_all(&text);
    std::process::exit(2);
}

/// Starts the strict-mode watchdog (called once, under the idle lock).
fn start_watchdog() -> Option<std::thread::Thread> {
    match std::thread::Builder::new()
        .name("gort-deadlock".into())
        .spawn(watchdog)
    {
        Ok(h) => Some(h.thread().clone()),
        Err(e) => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "gort: GORT_DEADLOCK=strict: cannot start the watchdog thread ({e}); \
                 deadlocks that involve threads unknown to gort will not be reported"
            );
            None
        }
    }
}

/// The watchdog: for each new episode, waits out the grace period; if no newer episode began
/// meanwhile, re-checks under the idle lock (`check_deadlock_now` calls `check_all_asleep`
/// only if everything is still asleep), which reports.
fn watchdog() {
    let mut seen = 0;
    loop {
        let episode = EPISODE.load(Ordering::SeqCst);
        if episode == seen {
            std::thread::park();
            continue;
        }
        std::thread::sleep(STRICT_GRACE);
        if EPISODE.load(Ordering::SeqCst) == episode {
            CONFIRMING.set(Some(episode));
            crate::scheduler::check_deadlock_now();
            CONFIRMING.set(None);
        }
        seen = episode;
    }
}

/// The number of threads in this process.
#[cfg(target_os = "linux")]
fn process_threads() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Field 20 (num_threads), counted after the parenthesised command name, which may itself
    // contain spaces and parentheses.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(17)?.parse().ok()
}

#[cfg(not(target_os = "linux"))]
fn process_threads() -> Option<usize> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn counts_own_threads() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv().ok());
        // This thread and the one just spawned exist (other tests may add more).
        assert!(super::process_threads().unwrap() >= 2);
        tx.send(()).unwrap();
        t.join().unwrap();
    }
}
