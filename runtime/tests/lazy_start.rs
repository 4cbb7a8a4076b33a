//! The runtime starts lazily, on first use, from a plain thread.
//!
//! Its own test binary, so that nothing has touched the runtime before:
//! this pins down that a program needs no set-up call (the first `spawn` from any plain thread
//! starts the runtime), and that a `set_maxprocs` made before that start is honoured by it.

mod common;

#[test]
fn first_spawn_from_a_plain_thread_starts_the_runtime() {
    common::bounded("lazy start", || {
        assert_eq!(gort::num_goroutine(), 0, "nothing has started yet");
        gort::set_maxprocs(3);
        assert_eq!(gort::maxprocs(), 3);

        let first = gort::spawn(|| (gort::current_machine_id().is_some(), gort::maxprocs()));
        assert_eq!(first.join().unwrap(), (true, 3));
        assert_eq!(gort::maxprocs(), 3);

        // Plain threads other than the first one can spawn and join too, concurrently.
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                std::thread::spawn(move || {
                    let handles: Vec<_> = (0..100u64)
                        .map(|i| gort::spawn(move || t * 100 + i))
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
                })
            })
            .collect();
        let sum: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(sum, (0..400).sum::<u64>());
    });
}

/// Set in a child process: run the race below once and exit.
const RACE_CHILD: &str = "GORT_TEST_LAZY_START_RACE";

/// A `set_maxprocs` made while another thread's first spawn starts the runtime is never lost:
/// it lands before the start reads the count, or it changes the running scheduler. (Before the
/// fix the check "started?" and the store were two steps, and the CI saw the start read the
/// count between them.) Each attempt needs a fresh process, so this runs itself as children.
#[test]
fn set_maxprocs_racing_the_start_is_not_lost() {
    use std::process::Command;
    if std::env::var_os(RACE_CHILD).is_some() {
        return;
    }
    for attempt in 0..40 {
        let out = common::output_within(
            Command::new(std::env::current_exe().expect("own path"))
                .args(["race_child", "--exact", "--nocapture", "--test-threads=1"])
                .env(RACE_CHILD, "1")
                .env("GORT_MAXPROCS", "1"),
        );
        assert!(
            out.status.success(),
            "attempt {attempt}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The child's side of [`set_maxprocs_racing_the_start_is_not_lost`]: one thread sets maxprocs
/// to 3 while another starts the runtime (with `GORT_MAXPROCS=1`).
#[test]
fn race_child() {
    if std::env::var_os(RACE_CHILD).is_none() {
        return;
    }
    common::bounded("set_maxprocs racing the start", || {
        let go = std::sync::Arc::new(std::sync::Barrier::new(2));
        let starter = {
            let go = go.clone();
            std::thread::spawn(move || {
                go.wait();
                gort::spawn(|| ()).join().unwrap();
            })
        };
        go.wait();
        gort::set_maxprocs(3);
        starter.join().unwrap();
        assert_eq!(gort::maxprocs(), 3, "the set_maxprocs was lost");
    });
}
