//! Seeing inside the runtime (issue 14): the goroutine dump names what each parked goroutine
//! waits for, the leak check catches a leaked goroutine and passes a clean test, `schedtrace`
//! lines parse, and SIGQUIT dumps every goroutine. (The deadlock report's dump is checked in
//! `fatal.rs`.) Scenarios run at GORT_MAXPROCS 1, 2 and 4, bounded in time by the harness;
//! the child-process ones run this binary again with `CHILD` set.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gort::debug::{self, GoroutineInfo, LeakCheck, State, WaitReason};

const CHILD: &str = "GORT_DEBUG_TEST_CHILD";

/// The goroutine named `name` in a fresh snapshot, once it waits for `reason`.
fn wait_for_state(name: &str, reason: WaitReason) -> GoroutineInfo {
    let mut last = None;
    let start = Instant::now();
    loop {
        let g = debug::goroutines()
            .into_iter()
            .find(|g| g.name.as_deref() == Some(name));
        if let Some(g) = &g {
            if matches!(g.state, State::Waiting { reason: r, .. } if r == reason) {
                return g.clone();
            }
        }
        last = g.or(last);
        assert!(
            start.elapsed() < common::DEADLINE,
            "{name} never showed waiting for {reason}: last seen {last:?}"
        );
        gort::yield_now();
    }
}

#[test]
fn dump_names_what_each_goroutine_waits_for() {
    common::each_procs("dump_names_what_each_goroutine_waits_for", |_| {
        use gort::sync::Mutex;
        use std::sync::Arc;

        let (recv_tx, recv_rx) = gort::chan::<u8>(0);
        let (send_tx, send_rx) = gort::chan::<u8>(0);
        let (sel_tx, sel_rx) = gort::chan::<u8>(0);
        let lock = Arc::new(Mutex::new(0u32));
        let held = lock.lock();
        let listener = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&server) as u64;
        let (pool_tx, pool_rx) = std::sync::mpsc::channel::<()>();
        let spawn =
            |name: &str, f: Box<dyn FnOnce() + Send>| gort::Builder::new().name(name).spawn(f);

        let check = LeakCheck::new();
        let hs = vec![
            spawn(
                "recv",
                Box::new(move || {
                    let _ = recv_rx.recv();
                }),
            ),
            spawn(
                "send",
                Box::new(move || {
                    let _ = send_tx.send(1);
                }),
            ),
            spawn(
                "select",
                Box::new(move || {
                    let never = gort::Receiver::<u8>::never();
                    gort::select! {
                        recv(sel_rx) -> _ => {},
                        recv(never) -> _ => {},
                    }
                }),
            ),
            spawn("mutex", {
                let lock = lock.clone();
                Box::new(move || *lock.lock() += 1)
            }),
            spawn(
                "socket",
                Box::new(move || {
                    let mut byte = [0u8; 1];
                    let _ = (&server).read(&mut byte);
                }),
            ),
            spawn(
                "blocking",
                Box::new(move || {
                    gort::blocking(move || pool_rx.recv()).unwrap().unwrap();
                }),
            ),
        ];
        let (stop_tx, stop_rx) = gort::chan::<()>(0);
        let joiner = spawn(
            "joiner",
            Box::new(move || {
                let inner = gort::spawn(move || {
                    let _ = stop_rx.recv();
                });
                inner.join().unwrap();
            }),
        );

        let expect = [
            ("recv", WaitReason::ChanReceive),
            ("send", WaitReason::ChanSend),
            ("select", WaitReason::Select),
            ("mutex", WaitReason::Mutex),
            ("socket", WaitReason::IoRead),
            ("blocking", WaitReason::Blocking),
            ("joiner", WaitReason::Join),
        ];
        for (name, reason) in expect {
            let g = wait_for_state(name, reason);
            assert!(
                g.spawned_at.file().ends_with("tests/debug.rs"),
                "{name}: spawn site {}",
                g.spawned_at
            );
            if name == "socket" {
                assert!(matches!(g.state, State::Waiting { detail: Some(d), .. } if d == fd));
            }
        }
        let mut text = Vec::new();
        debug::dump(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        for line in [
            " (recv) [chan receive, ",
            " (send) [chan send, ",
            " (select) [select, ",
            " (mutex) [sync.Mutex.Lock, ",
            &format!(" (socket) [IO wait (read) on fd {fd}, "),
            " (blocking) [blocking call, ",
            " (joiner) [join, ",
        ] {
            assert!(
                text.contains(line),
                "{line:?} missing from the dump:\n{text}"
            );
        }
        assert!(
            text.contains("\tspawned at runtime/tests/debug.rs:"),
            "{text}"
        );

        // Release every one; the check then finds nothing left.
        recv_tx.send(1).unwrap();
        assert_eq!(send_rx.recv(), Ok(1));
        sel_tx.send(1).unwrap();
        drop(held);
        (&client).write_all(b"x").unwrap();
        pool_tx.send(()).unwrap();
        stop_tx.send(()).unwrap();
        for h in hs {
            h.join().unwrap();
        }
        joiner.join().unwrap();
        assert_eq!(*lock.lock(), 1);
        check
            .finish()
            .expect("every goroutine of the scenario ended");
    });
}

#[test]
fn a_sleeping_goroutine_shows_its_sleep() {
    common::each_procs("a_sleeping_goroutine_shows_its_sleep", |_| {
        let sleeper = gort::Builder::new()
            .name("sleeper")
            .spawn(|| gort::time::sleep(Duration::from_millis(400)));
        let g = wait_for_state("sleeper", WaitReason::Sleep);
        assert_eq!(g.parent, 0, "spawned by the test's thread");
        sleeper.join().unwrap();
    });
}

#[test]
fn leak_check_catches_a_leak_and_passes_a_clean_test() {
    common::each_procs("leak_check_catches_a_leak_and_passes_a_clean_test", |_| {
        // Clean: everything joined.
        debug::verify_none(|| {
            let hs: Vec<_> = (0..100).map(|i| gort::spawn(move || i * 2)).collect();
            assert_eq!(hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>(), 9900);
        });

        // Leaked: a grandchild blocked on a channel nobody sends to (its parent ended).
        let check = LeakCheck::new().patience(Duration::from_millis(50));
        let (tx, rx) = gort::chan::<()>(0);
        gort::spawn(move || {
            gort::Builder::new().name("leaky").spawn(move || {
                let _ = rx.recv();
            });
        })
        .join()
        .unwrap();
        // Spawned by another thread (outside the check, as a test running beside this one):
        // not counted.
        let (tx2, rx2) = gort::chan::<()>(0);
        let outside = std::thread::spawn(move || {
            gort::spawn(move || {
                let _ = rx2.recv();
            })
        })
        .join()
        .unwrap();
        let leaked = check.finish().expect_err("the grandchild leaked");
        assert_eq!(leaked.count(), 1, "{leaked}");
        let text = leaked.to_string();
        assert!(text.contains("found 1 leaked goroutine(s)"), "{text}");
        assert!(text.contains(" (leaky) [chan receive, "), "{text}");
        assert!(
            text.contains("spawned at runtime/tests/debug.rs:"),
            "{text}"
        );

        // Released, a new check of the same shape passes.
        drop(tx);
        drop(tx2);
        outside.join().unwrap();
        let check = LeakCheck::new();
        let (tx, rx) = gort::chan::<()>(0);
        let h = gort::spawn(move || {
            let _ = rx.recv();
        });
        drop(tx);
        h.join().unwrap();
        check.finish().expect("joined: nothing leaked");
    });
}

/// A child process: runs a few goroutines that park and wake for a while, printing nothing
/// (the parent reads the schedtrace lines on stderr).
#[test]
fn child_workload() {
    match std::env::var(CHILD).as_deref() {
        Ok("work") => gort::run(|| {
            let end = Instant::now() + Duration::from_millis(400);
            let (tx, rx) = gort::chan::<u32>(0);
            let pinger = gort::spawn(move || {
                while Instant::now() < end {
                    if tx.send(1).is_err() {
                        break;
                    }
                    gort::time::sleep(Duration::from_millis(1));
                }
            });
            while rx.recv().is_ok() {}
            pinger.join().unwrap();
        }),
        Ok("sigquit") => gort::run(|| {
            let (tx, rx) = gort::chan::<()>(0);
            let h = gort::Builder::new().name("parked-one").spawn(move || {
                let _ = rx.recv();
            });
            wait_for_state("parked-one", WaitReason::ChanReceive);
            println!("ready");
            std::io::stdout().flush().unwrap();
            // Until the parent's SIGQUIT ends the process (or, with `continue`, the parent
            // closes stdin).
            let mut line = String::new();
            let _ = gort::blocking(|| std::io::stdin().read_line(&mut line));
            drop(tx);
            h.join().unwrap();
            println!("child: carried on");
        }),
        Ok("parkstacks") => gort::run(|| {
            let (tx, rx) = gort::chan::<()>(0);
            let h = gort::Builder::new()
                .name("deep")
                .spawn(move || parked_in_a_named_function(rx));
            wait_for_state("deep", WaitReason::ChanReceive);
            let mut out = Vec::new();
            debug::dump(&mut out).unwrap();
            std::io::stdout().write_all(&out).unwrap();
            drop(tx);
            h.join().unwrap();
        }),
        _ => {}
    }
}

/// Where the `parkstacks` child's goroutine parks: its name must show in the dump.
#[inline(never)]
fn parked_in_a_named_function(rx: gort::Receiver<()>) {
    let _ = rx.recv();
}

#[test]
fn parkstacks_show_where_a_goroutine_parked() {
    for procs in [1, 2] {
        let c = child("parkstacks", procs, &[("GORT_DEBUG", "parkstacks")]);
        let (code, out, err) = finish(c, "parkstacks");
        assert_eq!(code, Some(0), "{err}");
        let at = out
            .find(" (deep) [chan receive, ")
            .expect("the goroutine in the dump");
        let entry = &out[at..out[at..].find("\n\n").map_or(out.len(), |e| at + e)];
        assert!(entry.contains("parked_in_a_named_function"), "{entry}");
        assert!(entry.contains("Receiver<T>::recv"), "{entry}");
        assert!(
            !entry.contains("force_capture"),
            "capture frames cut: {entry}"
        );
    }
    // Off by default: no frames.
    let c = child("parkstacks", 1, &[]);
    let (code, out, err) = finish(c, "parkstacks off");
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("parked_in_a_named_function"), "{out}");
}

fn child(kind: &str, procs: usize, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_workload",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(CHILD, kind)
    .env("GORT_MAXPROCS", procs.to_string())
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SIGQUIT at its default in the child, whatever this process inherited: gort keeps an
    // ignored SIGQUIT ignored (`sched/src/debug/sigquit.rs`), and a test run from a
    // non-interactive shell's background job starts with it ignored.
    // SAFETY: `signal` is async-signal-safe, and the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd.spawn().expect("start child")
}

/// Kills the child `pid` if it is still running after the harness's deadline, so that a read
/// from its pipes ends (with EOF) instead of hanging the test; cancelled when dropped (the
/// sender's drop wakes the watchdog thread).
struct KillAfterDeadline {
    _cancel: mpsc::Sender<()>,
}

impl KillAfterDeadline {
    fn new(pid: u32) -> KillAfterDeadline {
        let (cancel, cancelled) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(common::DEADLINE) {
                eprintln!(
                    "child {pid} still running after {:?}: killed",
                    common::DEADLINE
                );
                // SAFETY: kill has no memory preconditions; the pid is our unreaped child's.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        });
        KillAfterDeadline { _cancel: cancel }
    }
}

/// Waits for `c` to exit, killing it after the harness's deadline.
fn finish(mut c: std::process::Child, what: &str) -> (Option<i32>, String, String) {
    let start = Instant::now();
    while c.try_wait().unwrap().is_none() {
        if start.elapsed() > common::DEADLINE {
            c.kill().ok();
            panic!("{what}: child hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = c.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Parses `key=value` fields and the bracketed queue list of a `SCHED` line.
fn parse_sched_line(line: &str) -> (u64, Vec<(String, u64)>, Vec<u64>) {
    let rest = line.strip_prefix("SCHED ").expect("SCHED prefix");
    let (ms, rest) = rest.split_once("ms: ").expect("elapsed");
    let (before, after) = rest.split_once(" [").expect("queues");
    let (queues, after) = after.split_once("] ").expect("queues end");
    let fields = before
        .split(' ')
        .chain(after.split(' '))
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("field {kv:?}"));
            (
                k.to_string(),
                v.parse().unwrap_or_else(|_| panic!("value {kv:?}")),
            )
        })
        .collect();
    let queues = queues.split(' ').map(|q| q.parse().unwrap()).collect();
    (ms.parse().unwrap(), fields, queues)
}

#[test]
fn schedtrace_lines_parse() {
    for procs in common::procs() {
        let c = child("work", procs, &[("GORT_DEBUG", "schedtrace=50")]);
        let (code, _, stderr) = finish(c, "schedtrace");
        assert_eq!(code, Some(0), "{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("SCHED ")).collect();
        assert!(lines.len() >= 3, "too few lines:\n{stderr}");
        let mut last_ms = 0;
        for l in &lines {
            let (ms, fields, queues) = parse_sched_line(l);
            assert!(ms >= last_ms, "time went back: {l}");
            last_ms = ms;
            let get = |k: &str| {
                fields
                    .iter()
                    .find(|(f, _)| f == k)
                    .unwrap_or_else(|| panic!("{k} missing: {l}"))
                    .1
            };
            assert_eq!(get("gomaxprocs"), procs as u64, "{l}");
            assert_eq!(queues.len(), procs, "{l}");
            assert!(get("idleprocs") <= procs as u64, "{l}");
            assert!(get("idlethreads") <= get("threads"), "{l}");
            for k in [
                "spinningthreads",
                "runqueue",
                "goroutines",
                "schedules",
                "steals",
            ] {
                get(k);
            }
        }
        let (_, first, _) = parse_sched_line(lines[0]);
        let (_, last, _) = parse_sched_line(lines[lines.len() - 1]);
        let schedules = |f: &[(String, u64)]| f.iter().find(|(k, _)| k == "schedules").unwrap().1;
        assert!(schedules(&last) > schedules(&first), "schedules never grew");
    }
}

#[test]
fn sigquit_dumps_every_goroutine() {
    for (mode, procs) in [("exit", 1), ("exit", 4), ("continue", 2)] {
        let mut c = child("sigquit", procs, &[("GORT_SIGQUIT", mode)]);
        let _watchdog = KillAfterDeadline::new(c.id());
        let mut out = BufReader::new(c.stdout.take().unwrap());
        // (libtest writes "test child_workload ... " before the test's own output.)
        let mut line = String::new();
        while !line.ends_with("ready\n") {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "child ended before ready"
            );
        }
        // SAFETY: kill has no memory preconditions; the pid is our live child's.
        assert_eq!(unsafe { libc::kill(c.id() as i32, libc::SIGQUIT) }, 0);
        if mode == "continue" {
            // Let the dump be written, then let the child finish.
            let mut err = c.stderr.take().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&seen).contains("(parked-one)") {
                let n = err.read(&mut buf).unwrap();
                assert!(n > 0, "stderr closed: {}", String::from_utf8_lossy(&seen));
                seen.extend_from_slice(&buf[..n]);
            }
            drop(c.stdin.take());
            c.stderr = Some(err);
        }
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        let (code, _, stderr) = finish(c, "sigquit");
        match mode {
            "exit" => {
                assert_eq!(code, Some(2), "{stderr}");
                assert!(stderr.contains("SIGQUIT: quit"), "{stderr}");
                assert!(stderr.contains(" (parked-one) [chan receive, "), "{stderr}");
                assert!(stderr.contains(" (main) ["), "{stderr}");
            }
            _ => {
                assert_eq!(code, Some(0), "{stderr}");
                assert!(rest.contains("child: carried on"), "{rest}");
            }
        }
    }
}
