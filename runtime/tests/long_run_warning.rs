//! sysmon's warning about a goroutine that holds its thread (`sched/src/sysmon.rs`: one that ran
//! past `WARN_AFTER` without a preemption point, or blocked its thread in a call gort does not
//! manage) names the goroutine: the preemption signal's handler copies the name from the
//! goroutine's header, which the thread's `signal::Current` points at while it runs.
//!
//! Alone in its binary: it installs a global `tracing` subscriber, and the warning is given at
//! most 64 times per process. Skipped where the preemption signal is off (as `preempt.rs`).

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The warnings seen (the messages of events that start with `gort: goroutine`).
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// How long each goroutine holds its thread: well past sysmon's `WARN_AFTER` (100 ms).
const HOLD: Duration = Duration::from_millis(400);

fn note(e: &tracing::Event<'_>) {
    let message = common::event_message(e);
    if message.starts_with("gort: goroutine") {
        WARNINGS.lock().unwrap().push(message);
    }
}

fn signals() -> bool {
    let off = |var| matches!(std::env::var(var).as_deref(), Ok("off" | "0" | "false"));
    cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )) && !off("GORT_SYSMON")
        && !off("GORT_PREEMPT_SIGNAL")
}

/// Runs `hold` in a goroutine named `name` and returns its id and the warning about it.
fn warning_about(name: &'static str, hold: fn()) -> (u64, String) {
    let h = gort::Builder::new().name(name).spawn(move || {
        hold();
        gort::current_id().unwrap()
    });
    let id = h.join().unwrap();
    let prefix = format!("gort: goroutine {id} ");
    let start = Instant::now();
    loop {
        let found = WARNINGS
            .lock()
            .unwrap()
            .iter()
            .find(|w| w.starts_with(&prefix))
            .cloned();
        if let Some(w) = found {
            return (id, w);
        }
        assert!(
            start.elapsed() < common::DEADLINE,
            "no warning about goroutine {id}: {:?}",
            WARNINGS.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_warning_names_the_goroutine() {
    if !signals() {
        eprintln!("the preemption signal is off: skipped");
        return;
    }
    tracing::subscriber::set_global_default(common::OnEvent(note)).expect("first subscriber");
    common::bounded("the_warning_names_the_goroutine", || {
        // Nothing else runs meanwhile, so sysmon asks only for the name (no hand-off signal
        // whose answer would be pending).
        let (id, w) = warning_about("spinner", || {
            let end = Instant::now() + HOLD;
            let mut n = 0u64;
            while Instant::now() < end {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        });
        assert!(
            w.starts_with(&format!("gort: goroutine {id} (spinner) has run for ")),
            "{w}"
        );
        let (id, w) = warning_about("sleeper", || std::thread::sleep(HOLD));
        assert!(
            w.starts_with(&format!(
                "gort: goroutine {id} (sleeper) has blocked thread "
            )),
            "{w}"
        );
    });
}
