//! A deadlock inside `gort::run` in a `#[test]`, run the way a user runs it: under libtest's
//! harness, whose threads gort does not know (see `sched/src/deadlock.rs`). What a test author
//! gets:
//! - by default, a hang: the harness's threads might wake a goroutine for all gort can prove;
//! - with `GORT_DEADLOCK=strict`, Go's report and exit status 2, about a second after
//!   everything went to sleep, at `--test-threads` 1 and 2, with another test in the binary;
//! - in strict mode, a goroutine that a plain thread wakes within that second is not taken
//!   for a deadlock.
//!
//! The parent tests run this binary again as a child, selecting the `child_*` tests by name
//! (they do nothing unless `CHILD` is set), and watch its exit status and output. Every child
//! is bounded by `CHILD_DEADLINE` and always killed and reaped.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Set in the child's environment: the `child_*` tests run their bodies only then.
const CHILD: &str = "GORT_DEADLOCK_TEST_CHILD";

/// Longest a child may take before it counts as hung.
const CHILD_DEADLINE: Duration = Duration::from_secs(60);

/// How long a default-mode child must stay silent after it blocked. The detector, when it
/// reports, does so as soon as the last M goes to sleep (milliseconds); the strict report comes
/// after one second.
const SILENCE: Duration = Duration::from_secs(2);

const FATAL: &str = "fatal error: all goroutines are asleep - deadlock!";

fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// The user's test: the deadlock of `examples/deadlock.rs` (two goroutines each receive from
/// the other before sending; the main goroutine joins both: three goroutines blocked).
#[test]
fn child_deadlocks() {
    if !in_child() {
        return;
    }
    println!("blocking");
    gort::run(|| {
        let (to_a, from_b) = gort::chan::<u32>(0);
        let (to_b, from_a) = gort::chan::<u32>(0);
        let a = gort::spawn(move || {
            let v = from_b.recv();
            to_b.send(1).ok();
            v
        });
        let b = gort::spawn(move || {
            let v = from_a.recv();
            to_a.send(2).ok();
            v
        });
        let _ = (a.join(), b.join());
    });
    println!("run returned");
}

/// Another test in the same binary that uses goroutines and finishes.
#[test]
fn child_bystander() {
    if !in_child() {
        return;
    }
    let sum: u64 = gort::run(|| {
        let hs: Vec<_> = (1..=100u64).map(|i| gort::go!(move || i)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(sum, 5050);
}

/// Not a deadlock: the main goroutine waits on a channel that a plain thread sends on after
/// 100 ms, well inside strict mode's one-second grace.
#[test]
fn child_woken_by_plain_thread() {
    if !in_child() {
        return;
    }
    let (tx, rx) = gort::chan::<u32>(0);
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        tx.send(7).unwrap();
    });
    assert_eq!(gort::run(move || rx.recv().unwrap()), 7);
    sender.join().unwrap();
    println!("woken");
}

/// A running child with its output collected by helper threads.
struct Run {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

fn spawn_child(tests: &[&str], test_threads: usize, strict: bool) -> Run {
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.arg("--exact")
        .args(tests)
        .args(["--nocapture", "--test-threads", &test_threads.to_string()])
        .env(CHILD, "1")
        .env_remove("GORT_DEADLOCK")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if strict {
        cmd.env("GORT_DEADLOCK", "strict");
    }
    let mut child = cmd.spawn().expect("spawn child");
    let (out_tx, stdout) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if out_tx.send(line).is_err() {
                return;
            }
        }
    });
    let (err_tx, stderr) = mpsc::channel();
    let mut err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        let _ = err_tx.send(s);
    });
    Run {
        child,
        stdout,
        stderr,
    }
}

impl Run {
    /// Waits for the child to exit, at most `CHILD_DEADLINE` from now; kills it if it does not.
    /// Returns its status, stdout lines and stderr.
    fn finish(mut self, what: &str) -> (ExitStatus, Vec<String>, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait child") {
                break status;
            }
            if start.elapsed() > CHILD_DEADLINE {
                self.kill();
                panic!("{what}: child still running after {CHILD_DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = self.stdout.try_iter().collect();
        let stderr = self
            .stderr
            .recv_timeout(CHILD_DEADLINE)
            .expect("child's stderr");
        (status, stdout, stderr)
    }

    /// Waits (bounded) for a stdout line that ends with `line`.
    fn expect_line(&mut self, line: &str, what: &str) {
        let start = Instant::now();
        loop {
            let left = CHILD_DEADLINE.saturating_sub(start.elapsed());
            match self.stdout.recv_timeout(left) {
                // libtest prints "test name ... " before the test's own output, on one line.
                Ok(l) if l.ends_with(line) => return,
                Ok(_) => {}
                Err(_) => {
                    self.kill();
                    panic!("{what}: no line {line:?} from the child");
                }
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child is never left running or unreaped, whatever failed.
impl Drop for Run {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            self.kill();
        }
    }
}

#[test]
fn strict_mode_reports_a_deadlock_under_libtest() {
    for threads in [1, 2] {
        let what = format!("strict, --test-threads {threads}");
        let run = spawn_child(&["child_bystander", "child_deadlocks"], threads, true);
        let (status, stdout, stderr) = run.finish(&what);
        assert_eq!(
            status.code(),
            Some(2),
            "{what}: {status}; stderr:\n{stderr}"
        );
        assert!(stderr.contains(FATAL), "{what}: stderr:\n{stderr}");
        assert!(
            stderr.contains("GORT_DEADLOCK=strict: ")
                && stderr.contains("3 goroutine(s) blocked forever; 1 thread(s) waiting on them"),
            "{what}: stderr:\n{stderr}"
        );
        assert!(
            stdout.iter().any(|l| l.ends_with("blocking")),
            "{what}: {stdout:?}"
        );
        assert!(!stdout.iter().any(|l| l.contains("run returned")), "{what}");
    }
}

/// What a test author gets without opting in: the deadlocked test hangs (the harness's
/// threads are unknown to gort, so nothing is proven). Watched for `SILENCE`, then killed.
#[test]
fn default_mode_stays_silent_under_libtest() {
    for threads in [1, 2] {
        let what = format!("default, --test-threads {threads}");
        let mut run = spawn_child(&["child_bystander", "child_deadlocks"], threads, false);
        run.expect_line("blocking", &what);
        let start = Instant::now();
        while start.elapsed() < SILENCE {
            if let Some(status) = run.child.try_wait().expect("wait child") {
                let stderr = run.stderr.recv_timeout(CHILD_DEADLINE).unwrap_or_default();
                panic!("{what}: the child ended ({status}) instead of hanging:\n{stderr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        run.kill();
    }
}

#[test]
fn strict_mode_waits_out_a_plain_thread() {
    let what = "strict, woken by a plain thread";
    let run = spawn_child(&["child_woken_by_plain_thread"], 1, true);
    let (status, stdout, stderr) = run.finish(what);
    assert!(status.success(), "{what}: {status}; stderr:\n{stderr}");
    assert!(
        stdout.iter().any(|l| l.ends_with("woken")),
        "{what}: {stdout:?}"
    );
}
