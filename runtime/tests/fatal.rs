//! Fatal conditions end the process with a clear message, never a hang or a bare signal:
//! a deadlock (Go's `all goroutines are asleep - deadlock!`), a goroutine's stack overflow
//! (the goroutine named, not a bare SIGSEGV), and a goroutine result whose destructor panics
//! (std's rule: abort, naming what panicked; issue 9 item 3).
//!
//! Each scenario must kill its process, so this is a `harness = false` test: the binary runs
//! itself as a child per scenario (selected by `GORT_FATAL_CHILD`), at GORT_MAXPROCS 1, 2 and 4,
//! and checks the child's exit status and stderr. A child that does not end within
//! `CHILD_DEADLINE` is killed and the scenario fails.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_DEADLINE: Duration = Duration::from_secs(60);

fn main() {
    match std::env::var("GORT_FATAL_CHILD").as_deref() {
        Ok("deadlock") => deadlock_child(),
        Ok("overflow") => overflow_child(),
        Ok("no_deadlock_with_other_thread") => no_deadlock_child(),
        Ok("empty_select") => empty_select_child(),
        Ok("waits_for_io") => waits_for_io_child(),
        Ok("channel_cycle") => channel_cycle_child(),
        Ok("result_drop_detached") => result_drop_detached_child(),
        Ok("result_drop_late_handle") => result_drop_late_handle_child(),
        _ => parent(),
    }
}

/// The main goroutine joins a goroutine that waits for a wake-up nobody can send.
fn deadlock_child() {
    gort::run(|| {
        let h = gort::Builder::new().name("stuck").spawn(|| loop {
            gort::park();
        });
        h.join().unwrap();
    });
    println!("child: run returned");
}

/// Not a deadlock: the main goroutine waits in `accept` for a connection that comes from
/// outside the process (the parent test connects after a pause). A goroutine waiting for I/O
/// can always be woken by the world, so the detector must stay silent.
fn waits_for_io_child() {
    use std::io::Write;
    gort::run(|| {
        let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
        println!("port {}", l.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        let (_conn, _) = l.accept().unwrap();
    });
    println!("child: accepted");
}

/// `select! {}` blocks forever: with nothing else running, that is a deadlock.
fn empty_select_child() {
    gort::run(|| gort::select! {});
}

/// Two goroutines each receive from the other before sending (the seeds' deadlock demo).
fn channel_cycle_child() {
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
    println!("child: run returned");
}

/// A value whose destructor panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("Bomb dropped");
    }
}

/// A detached goroutine panics with a `Bomb` payload: the runtime drops it after reporting the
/// unjoined panic, inside the scheduler.
fn result_drop_detached_child() {
    std::panic::set_hook(Box::new(|_| {}));
    gort::run(|| {
        drop(gort::go!(|| std::panic::panic_any(Bomb)));
        // Never returns: the drop aborts the process first.
        loop {
            gort::time::sleep(std::time::Duration::from_millis(10));
        }
    });
}

/// A goroutine returns a `Bomb`; its handle is dropped after the goroutine ended.
fn result_drop_late_handle_child() {
    std::panic::set_hook(Box::new(|_| {}));
    gort::run(|| {
        let h = gort::go!(|| Bomb);
        while !h.is_finished() {
            gort::yield_now();
        }
        drop(h);
    });
    println!("child: run returned");
}

/// A goroutine recursing without bound on a small stack.
fn overflow_child() {
    fn depth(n: u64) -> u64 {
        let frame = std::hint::black_box([n; 32]);
        if n == u64::MAX {
            return 0;
        }
        frame[(n % 32) as usize] + depth(n + 1)
    }
    gort::run(|| {
        let h = gort::Builder::new()
            .name("deep-recursion")
            .stack_size(32 * 1024)
            .spawn(|| depth(0));
        h.join().unwrap();
    });
    println!("child: run returned");
}

/// Not a deadlock: a plain thread (unknown to gort) wakes the main goroutine after a while.
/// The detector must stay silent while such a thread exists.
fn no_deadlock_child() {
    let waiter = std::sync::Arc::new(std::sync::Mutex::new(None::<gort::Unparker>));
    let w2 = waiter.clone();
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f2 = flag.clone();
    let t = std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(u) = w2.lock().unwrap().take() {
            f2.store(true, std::sync::atomic::Ordering::Release);
            u.unpark();
            return;
        }
    });
    gort::run(move || {
        *waiter.lock().unwrap() = Some(gort::unparker());
        while !flag.load(std::sync::atomic::Ordering::Acquire) {
            gort::park();
        }
    });
    t.join().unwrap();
    println!("child: woken by the plain thread");
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_child(scenario: &str, procs: usize) -> Outcome {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env("GORT_FATAL_CHILD", scenario)
        .env("GORT_MAXPROCS", procs.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait child").is_some() {
            break;
        }
        if start.elapsed() > CHILD_DEADLINE {
            let _ = child.kill();
            panic!("{scenario} at GORT_MAXPROCS={procs}: child hung for {CHILD_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("child output");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn check_deadlock(procs: usize) -> Result<(), String> {
    for scenario in ["deadlock", "empty_select", "channel_cycle"] {
        check_deadlock_of(scenario, procs)?;
    }
    Ok(())
}

fn check_deadlock_of(scenario: &str, procs: usize) -> Result<(), String> {
    let o = run_child(scenario, procs);
    // The goroutine dump comes first (issue 14): each blocked goroutine, what it waits for and
    // where it was spawned, then Go's line.
    let dumped = match scenario {
        "deadlock" => {
            o.stderr.contains("(stuck) [park, ")
                && o.stderr.contains("(main) [join, ")
                && o.stderr.contains("spawned at runtime/tests/fatal.rs:33:")
        }
        "empty_select" => o.stderr.contains("(main) [select (no cases), "),
        _ => {
            // Two spawn sites: two groups of one.
            o.stderr.matches(" [chan receive, ").count() == 2
                && o.stderr.contains("spawned at runtime/tests/fatal.rs:")
        }
    };
    if o.code != Some(2)
        || !dumped
        || !o
            .stderr
            .contains("fatal error: all goroutines are asleep - deadlock!")
    {
        return Err(format!(
            "{scenario}: exit {:?}, stderr: {}",
            o.code, o.stderr
        ));
    }
    Ok(())
}

fn check_overflow(procs: usize) -> Result<(), String> {
    let o = run_child("overflow", procs);
    let named = o.stderr.contains("(deep-recursion) stack overflow")
        && o.stderr.contains("its stack is 32 KiB")
        && o.stderr.contains("GORT_STACK_SIZE");
    if o.code == Some(0) || !named {
        return Err(format!("exit {:?}, stderr: {}", o.code, o.stderr));
    }
    Ok(())
}

fn check_result_drop_aborts(procs: usize) -> Result<(), String> {
    for scenario in ["result_drop_detached", "result_drop_late_handle"] {
        let o = run_child(scenario, procs);
        let named = o
            .stderr
            .contains("fatal error: gort: the result of goroutine")
            && o.stderr.contains("panicked when dropped");
        if o.code.is_some() || !named {
            return Err(format!(
                "{scenario}: exit {:?}, stderr: {}",
                o.code, o.stderr
            ));
        }
    }
    Ok(())
}

fn check_no_false_deadlock(procs: usize) -> Result<(), String> {
    let o = run_child("no_deadlock_with_other_thread", procs);
    if o.code != Some(0) || !o.stdout.contains("woken by the plain thread") {
        return Err(format!("exit {:?}, stderr: {}", o.code, o.stderr));
    }
    Ok(())
}

/// The child waits in `accept`; we connect after it has been idle for a while.
fn check_io_wait_is_not_deadlock(procs: usize) -> Result<(), String> {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env("GORT_FATAL_CHILD", "waits_for_io")
        .env("GORT_MAXPROCS", procs.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let result = connect_to_child(&mut child);
    if result.is_err() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    result?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.contains("accepted") {
        return Ok(());
    }
    Err(format!(
        "exit {:?}, stdout {stdout:?}, stderr {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Reads the child's port, waits until its Ms are idle, connects, and waits (bounded) for it
/// to exit.
fn connect_to_child(child: &mut std::process::Child) -> Result<(), String> {
    use std::io::Read;
    let mut stdout = child.stdout.take().expect("stdout");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while byte[0] != b'\n' {
        if stdout.read(&mut byte).map_err(|e| e.to_string())? == 0 {
            return Err("child closed stdout before printing its port".into());
        }
        line.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&line);
    let port: u16 = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("bad first line {line:?}"))?;
    // Long enough for every M to go idle with only the I/O wait left.
    std::thread::sleep(Duration::from_millis(300));
    let _conn = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    child.stdout = Some(stdout);
    let start = Instant::now();
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if start.elapsed() > CHILD_DEADLINE {
            return Err("child hung after the connection".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn parent() {
    type Check = fn(usize) -> Result<(), String>;
    let checks: [(&str, Check); 5] = [
        ("deadlock_is_reported", check_deadlock),
        ("stack_overflow_names_the_goroutine", check_overflow),
        ("result_drop_panic_aborts", check_result_drop_aborts),
        (
            "plain_thread_prevents_false_deadlock",
            check_no_false_deadlock,
        ),
        ("io_wait_is_not_a_deadlock", check_io_wait_is_not_deadlock),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in checks {
        for procs in [1, 2, 4] {
            match check(procs) {
                Ok(()) => {
                    passed += 1;
                    println!("test {name} (GORT_MAXPROCS={procs}) ... ok");
                }
                Err(e) => {
                    failed += 1;
                    println!("test {name} (GORT_MAXPROCS={procs}) ... FAILED\n{e}");
                }
            }
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!("\ntest result: {verdict}. {passed} passed; {failed} failed; 0 ignored");
    if failed > 0 {
        std::process::exit(1);
    }
}
