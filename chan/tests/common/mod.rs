//! Shared test scaffolding: run a scenario at GORT_MAXPROCS 1, 2 and 4, one test at a time
//! (maxprocs is process-wide), bounded in time so a hang fails instead of stalling CI.
#![allow(dead_code)]

use std::sync::{mpsc, Mutex};
use std::time::Duration;

static MAXPROCS: Mutex<()> = Mutex::new(());

/// How long one scenario may take before the test fails as hung.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `scenario(procs)` inside a goroutine at maxprocs 1, 2 and 4, each bounded by
/// `DEADLINE`.
pub fn at_each_maxprocs(name: &str, scenario: fn(usize)) {
    let _turn = MAXPROCS.lock().unwrap_or_else(|e| e.into_inner());
    for procs in [1, 2, 4] {
        sched::set_maxprocs(procs);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let r = sched::spawn(move || scenario(procs)).join();
            tx.send(r.is_ok()).ok();
        });
        match rx.recv_timeout(DEADLINE) {
            Ok(true) => {}
            Ok(false) => panic!("{name}: failed at GORT_MAXPROCS={procs} (see the panic above)"),
            Err(_) => panic!("{name}: hung at GORT_MAXPROCS={procs} for {DEADLINE:?}"),
        }
    }
}
