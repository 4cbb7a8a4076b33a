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
//!   (runtime Ms + such parked threads) threads (`/proc/self/stat` on Linux). Any other thread
//!   might still wake a goroutine, so its existence alone keeps the verdict silent.
//!
//! A thread parked with a timeout wakes by itself, so it is not counted as asleep (and, being a
//! thread, it makes the count differ). A pending timer keeps the verdict silent (the caller
//! checks); I/O waits will too once the netpoller exists. The counter of parked threads is raised by the parker after its
//! RUNNING→PARKED commit and lowered by the unparker that wins PARKED→RUNNING. It can briefly
//! count a thread that was just unparked; that is harmless, because the unparker is itself a
//! running thread (an M that is not idle, or a thread the count does not account for), so the
//! verdict cannot be reached in that window.
//!
//! Off Linux (no cheap thread count), and when `GORT_DEADLOCK=off`, detection is disabled.

use std::sync::atomic::{AtomicIsize, Ordering};

static THREADS_PARKED: AtomicIsize = AtomicIsize::new(0);

/// A plain thread committed to an untimed park.
pub(crate) fn thread_parked() {
    THREADS_PARKED.fetch_add(1, Ordering::SeqCst);
}

/// The unparker of a plain thread won PARKED→RUNNING.
pub(crate) fn thread_unparked() {
    THREADS_PARKED.fetch_sub(1, Ordering::SeqCst);
}

/// Called with the idle lock held when all `nm` Ms are asleep and the global queue is empty.
/// Exits the process with Go's message if every thread is provably asleep.
pub(crate) fn check_all_asleep(nm: usize, ngoroutines: usize) {
    if !crate::config::deadlock_detection() {
        return;
    }
    let parked = THREADS_PARKED.load(Ordering::SeqCst);
    if parked <= 0 {
        return;
    }
    let Some(threads) = process_threads() else {
        return;
    };
    if threads != nm + parked as usize {
        return;
    }
    eprintln!(
        "fatal error: all goroutines are asleep - deadlock!\n\n\
         {ngoroutines} goroutine(s) blocked forever; {parked} thread(s) waiting on them"
    );
    std::process::exit(2);
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
