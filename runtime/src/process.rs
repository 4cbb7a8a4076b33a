//! `gort::process`: running a child process and waiting for it without blocking the calling
//! goroutine's thread. std's `Child::wait`, `Command::output` and `Command::status` block in
//! `waitpid` (and in reading the child's pipes) for as long as the child runs; these functions
//! take the same arguments and run the same std calls through [`crate::blocking`], so only the
//! goroutine waits (Go's `os/exec` waits in a thread its runtime hands off the same way). On a
//! plain thread they run inline, exactly as std's.
//!
//! Free functions rather than an extension trait on `Command`: a trait method named `output`
//! or `status` would be shadowed by std's inherent method of that name, so the blocking one
//! would need a second name to be called at all; `gort::process::output(&mut cmd)` reads as
//! what it is. Spawning (`Command::spawn`) is left to std: it returns once the child has
//! started, without waiting for it.
//!
//! A full blocking pool is an `io::Error` of kind `ResourceBusy` naming the cap
//! ([`crate::BlockingError`]).
//!
//! ```
//! use std::process::Command;
//! let out = gort::run(|| gort::process::output(Command::new("echo").arg("hi"))).unwrap();
//! assert_eq!(out.stdout, b"hi\n");
//! ```

use std::io;
use std::process::{Child, Command, ExitStatus, Output};

/// Runs `f` through the blocking pool; a full pool becomes an `io::Error`.
fn pool<T: Send>(f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    crate::blocking(f).map_err(io::Error::from)?
}

/// Waits for `child` to exit (`Child::wait`), parking only the goroutine.
///
/// ```
/// let status = gort::run(|| {
///     let mut child = std::process::Command::new("true").spawn()?;
///     gort::process::wait(&mut child)
/// });
/// assert!(status.unwrap().success());
/// ```
pub fn wait(child: &mut Child) -> io::Result<ExitStatus> {
    pool(|| child.wait())
}

/// Waits for `child` to exit and collects what it wrote to its piped stdout and stderr
/// (`Child::wait_with_output`).
///
/// ```
/// use std::process::{Command, Stdio};
/// let out = gort::run(|| {
///     let child = Command::new("echo").arg("piped").stdout(Stdio::piped()).spawn()?;
///     gort::process::wait_with_output(child)
/// });
/// assert_eq!(out.unwrap().stdout, b"piped\n");
/// ```
pub fn wait_with_output(child: Child) -> io::Result<Output> {
    pool(|| child.wait_with_output())
}

/// Runs `command` to completion, collecting its stdout and stderr (`Command::output`: both
/// piped, stdin closed).
///
/// ```
/// use std::process::Command;
/// let out = gort::run(|| gort::process::output(Command::new("sh").args(["-c", "echo err >&2"])));
/// assert_eq!(out.unwrap().stderr, b"err\n");
/// ```
pub fn output(command: &mut Command) -> io::Result<Output> {
    pool(|| command.output())
}

/// Runs `command` to completion and returns its exit status (`Command::status`: the child
/// inherits stdin, stdout and stderr).
///
/// ```
/// use std::process::Command;
/// let status = gort::run(|| gort::process::status(Command::new("sh").args(["-c", "exit 3"])));
/// assert_eq!(status.unwrap().code(), Some(3));
/// ```
pub fn status(command: &mut Command) -> io::Result<ExitStatus> {
    pool(|| command.status())
}
