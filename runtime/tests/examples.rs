//! Runs the concurrency-pattern examples (`examples/*.rs`, issue 13; `docs/PATTERNS.md` walks
//! through them) as users run them: each example binary is started as a child process at
//! GORT_MAXPROCS 1, 2 and 4 (or only at `GORT_MAXPROCS` when it is set), killed if it has not
//! ended within the harness's deadline (the test then fails naming the example), and must exit 0 and print
//! its expected lines. `deadlock` must instead exit 2 with Go's message on stderr.
//!
//! The binaries: `cargo test` builds a package's examples before it runs its tests, but
//! `cargo test --test examples` does not, and a binary left from an earlier build may be stale.
//! So the first test to need them runs `cargo build --example ...` for all of them once (a
//! no-op when they are fresh), with the cargo that built this test, into the target directory
//! and profile this test binary sits in (`target/<profile>/deps/examples-<hash>`); the binaries
//! are then in `target/<profile>/examples/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Every example this test runs.
const EXAMPLES: &[&str] = &[
    "pipeline",
    "pipeline_stages",
    "generators",
    "fan_out_fan_in",
    "or_channel",
    "or_done",
    "tee",
    "bridge",
    "queuing",
    "context_tree",
    "heartbeat",
    "replicated_requests",
    "healing",
    "deadlock",
    "livelock",
    "starvation",
    "data_race",
    "rate_limit",
    "errgroup",
];

/// How a run must end.
enum Expect<'a> {
    /// Exit status 0, and stdout has a line containing each of these.
    Prints(&'a [&'a str]),
    /// Exit status 2 and Go's deadlock message on stderr.
    Deadlock,
}

/// The directory of the example binaries, built (or found fresh) on first use.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("this test's path");
        let deps = exe.parent().expect("target/<profile>/deps");
        let profile_dir = deps.parent().expect("target/<profile>");
        let target_dir = profile_dir.parent().expect("target");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "--package", "gort", "--manifest-path"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(other) => {
                build.args(["--profile", other]);
            }
            None => panic!("no profile directory above {}", exe.display()),
        }
        for name in EXAMPLES {
            build.args(["--example", name]);
        }
        let out = build.output().expect("run cargo build for the examples");
        assert!(
            out.status.success(),
            "cargo build of the examples failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        profile_dir.join("examples")
    })
}

/// What one run produced.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs example `name` with `args` at `procs`, bounded by the harness's deadline
/// (`common::output_within`).
fn run(name: &str, args: &[&str], procs: usize) -> Run {
    let out = common::output_within(
        Command::new(examples_dir().join(name))
            .args(args)
            .env("GORT_MAXPROCS", procs.to_string()),
    );
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs example `name` with `args` at each processor count and checks each run against
/// `expect`.
fn check(name: &str, args: &[&str], expect: Expect) {
    assert!(EXAMPLES.contains(&name), "{name} is missing from EXAMPLES");
    for procs in common::procs() {
        let r = run(name, args, procs);
        let what = format!("{name} {args:?} at GORT_MAXPROCS={procs}");
        let shown = format!("stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
        match expect {
            Expect::Prints(lines) => {
                assert_eq!(r.code, Some(0), "{what}: exit status; {shown}");
                for want in lines {
                    assert!(
                        r.stdout.lines().any(|l| l.contains(want)),
                        "{what}: no line containing {want:?}; {shown}"
                    );
                }
            }
            Expect::Deadlock => {
                assert_eq!(r.code, Some(2), "{what}: exit status; {shown}");
                assert!(
                    r.stderr
                        .contains("fatal error: all goroutines are asleep - deadlock!"),
                    "{what}: Go's deadlock message; {shown}"
                );
                // The goroutine dump before it (issue 14) names each blocked goroutine's
                // spawn site.
                assert!(
                    r.stderr.contains("spawned at examples/deadlock.rs:"),
                    "{what}: spawn sites in the dump; {shown}"
                );
            }
        }
    }
}

#[test]
fn pipeline() {
    // The benchmark of examples/pipeline.rs, at a size that takes milliseconds.
    check("pipeline", &["20000"], Expect::Prints(&["msgs=20000"]));
}

#[test]
fn pipeline_stages() {
    check(
        "pipeline_stages",
        &[],
        Expect::Prints(&[
            "(v*2+1)*2 of 1 2 3 4 = 6 10 14 18",
            "cancelled: the output closed",
        ]),
    );
}

#[test]
fn generators() {
    check(
        "generators",
        &[],
        Expect::Prints(&[
            "take 10 of repeat(1): 1 1 1 1 1 1 1 1 1 1",
            "take 7 of repeat(a, b, c): a b c a b c a",
            "take 5 of repeat_fn(rand): 674 471 954 736 162",
            "the infinite generators returned",
        ]),
    );
}

#[test]
fn fan_out_fan_in() {
    check(
        "fan_out_fan_in",
        &[],
        Expect::Prints(&[
            "1 finder(s): 10 primes in",
            "every generator, finder and copier goroutine has returned",
        ]),
    );
}

#[test]
fn or_channel() {
    check(
        "or_channel",
        &[],
        Expect::Prints(&["closed by the 50 ms signal"]),
    );
}

#[test]
fn or_done() {
    check(
        "or_done",
        &[],
        Expect::Prints(&["received 0 1 2 3 4", "the loop ended when the context's"]),
    );
}

#[test]
fn tee() {
    check(
        "tee",
        &[],
        Expect::Prints(&[
            "tee: out1: 1, out2: 1",
            "tee: out1: 2, out2: 2",
            "both outputs carried 1 2 1 2",
        ]),
    );
}

#[test]
fn bridge() {
    check(
        "bridge",
        &[],
        Expect::Prints(&["bridge: 0 1 2 3 4 5 6 7 8 9"]),
    );
}

#[test]
fn queuing() {
    check(
        "queuing",
        &[],
        Expect::Prints(&[
            "buffer 0: short stage done after",
            "buffer 2: short stage done after",
        ]),
    );
}

#[test]
fn context_tree() {
    check(
        "context_tree",
        &[],
        Expect::Prints(&[
            "a/0 (req-42) stopped: context deadline exceeded",
            "b/0 (req-42) stopped: context canceled",
            "every worker stopped",
        ]),
    );
}

#[test]
fn heartbeat() {
    check(
        "heartbeat",
        &[],
        Expect::Prints(&[
            "heartbeat: healthy worker:",
            "stalled worker: no pulse for 40 ms: the worker is not healthy",
        ]),
    );
}

#[test]
fn replicated_requests() {
    check(
        "replicated_requests",
        &[],
        Expect::Prints(&["answered first", "the other 9 handlers were cancelled"]),
    );
}

#[test]
fn healing() {
    check(
        "healing",
        &[],
        Expect::Prints(&[
            "steward: ward unhealthy; restarting",
            "received 1 2 1 2 1 2 across",
        ]),
    );
}

#[test]
fn deadlock() {
    check("deadlock", &[], Expect::Deadlock);
    check("deadlock", &["mutex"], Expect::Deadlock);
}

#[test]
fn livelock() {
    check(
        "livelock",
        &[],
        Expect::Prints(&[
            "Alice is trying to scoot: left right left right left right left right left right",
            "Barbara tosses her hands up in exasperation!",
        ]),
    );
}

#[test]
fn starvation() {
    check(
        "starvation",
        &[],
        Expect::Prints(&[
            "Greedy worker was able to execute",
            "Polite worker was able to execute",
        ]),
    );
}

#[test]
fn data_race() {
    check(
        "data_race",
        &[],
        Expect::Prints(&[
            "fixed by gort::sync::Mutex: 8000 of 8000",
            "fixed by channel ownership: 8000 of 8000",
        ]),
    );
}

#[test]
fn rate_limit() {
    check(
        "rate_limit",
        &[],
        Expect::Prints(&[
            "allow: 3 of 10 requests passed at once",
            "wait: 20 requests from 10 goroutines",
            "multi-limiter",
            "rate: Wait(n=1) would exceed context deadline",
        ]),
    );
}

#[test]
fn errgroup() {
    check(
        "errgroup",
        &[],
        Expect::Prints(&[
            "wait returned the first error: fetch #3 failed: connection refused",
            "the other 4 fetches saw the group's context cancelled",
            "20 parts under set_limit(2)",
        ]),
    );
}
