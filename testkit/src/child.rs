//! Running a child process bounded in time: `Command::output` with a deadline. Std only, so
//! that `sched`'s own unit tests, which cannot depend on this crate (it depends on `sched`),
//! include this file by path.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `cmd.output()` bounded in time: runs the child to its end with stdout and stderr captured
/// (stdin empty), or, if it runs past `deadline`, kills it and panics with what it printed.
pub fn output_within(cmd: &mut Command, deadline: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child");
    let collect = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = collect(Box::new(child.stdout.take().expect("piped")));
    let stderr = collect(Box::new(child.stderr.take().expect("piped")));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let text = |h: std::thread::JoinHandle<Vec<u8>>| {
                String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned()
            };
            panic!(
                "child {cmd:?} still running after {deadline:?}: killed\n\
                 stdout:\n{}\nstderr:\n{}",
                text(stdout),
                text(stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_past_its_deadline_is_killed_and_fails() {
        let start = Instant::now();
        let outcome = std::panic::catch_unwind(|| {
            output_within(
                Command::new("sh").args(["-c", "echo started; exec sleep 30"]),
                Duration::from_millis(300),
            )
        });
        let message = *outcome.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("killed"), "{message}");
        assert!(message.contains("started"), "what it printed: {message}");
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "it did not wait for the child"
        );
    }

    #[test]
    fn a_child_that_ends_gives_its_output() {
        let out = output_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }
}
