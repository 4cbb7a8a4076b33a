//! The goroutine dump on `SIGQUIT` (Ctrl-\), as Go's runtime prints every goroutine on it.
//!
//! `GORT_SIGQUIT` chooses: `exit` (the default, Go's behaviour: dump to stderr, then exit with
//! status 2), `continue` (dump and carry on: a live program's snapshot), `off` (the handler is
//! not installed; SIGQUIT keeps whatever disposition the program gave it). A handler the
//! program installed before the runtime started is kept as it is: gort installs none then.
//!
//! A signal handler may not take locks or allocate, and the dump does both, so the handler only
//! writes one byte to a pipe (`write` is async-signal-safe); a thread of the runtime
//! (`gort-sigquit`, started with the handler, asleep in `read` otherwise) writes the dump. The
//! deadlock check counts that thread as the runtime's own (`threads`).

use crate::loom::std_only::{AtomicI32, AtomicUsize, Once};
use crate::loom::Ordering;
use std::io::Write;

/// The pipe's write end, for the handler (-1 until installed).
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
/// 1 once the dump thread runs.
static THREAD: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Off,
    Exit,
    Continue,
}

fn mode() -> Mode {
    match std::env::var("GORT_SIGQUIT").as_deref().map(str::trim) {
        Ok("off") | Ok("0") => Mode::Off,
        Ok("continue") => Mode::Continue,
        _ => Mode::Exit,
    }
}

/// Runtime threads this file adds (the deadlock check's count).
pub(crate) fn threads() -> usize {
    THREAD.load(Ordering::Acquire)
}

/// Installs the handler and starts the dump thread, once, unless turned off or SIGQUIT
/// already has a handler. Called when the runtime starts.
pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let mode = mode();
        if mode != Mode::Off {
            install_with(mode);
        }
    });
}

#[cfg(unix)]
fn install_with(mode: Mode) {
    // SAFETY: all-zero is a valid `sigaction`; `sigaction` with a null new action only reads.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    if unsafe { libc::sigaction(libc::SIGQUIT, std::ptr::null(), &mut old) } != 0
        || old.sa_sigaction != libc::SIG_DFL
    {
        return; // the program handles (or ignores) SIGQUIT itself
    }
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    let (read_end, write_end) = (fds[0], fds[1]);
    let started = std::thread::Builder::new()
        .name("gort-sigquit".into())
        .spawn(move || dump_on_signal(read_end, mode));
    if started.is_err() {
        // SAFETY: our own descriptors, not shared with anyone yet.
        unsafe {
            libc::close(read_end);
            libc::close(write_end);
        }
        return;
    }
    THREAD.store(1, Ordering::Release);
    PIPE_WRITE.store(write_end, Ordering::Release);
    // SAFETY: all-zero is a valid `sigaction` (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigquit as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: valid pointers; `on_sigquit` is async-signal-safe (it only calls `write`).
    unsafe { libc::sigaction(libc::SIGQUIT, &action, std::ptr::null_mut()) };
}

#[cfg(not(unix))]
fn install_with(_: Mode) {}

#[cfg(unix)]
extern "C" fn on_sigquit(_: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::Acquire);
    let byte = 1u8;
    // SAFETY: errno is this thread's and is restored; `write` is async-signal-safe and `byte`
    // outlives the call. A full pipe (signals faster than dumps) loses only a repeat.
    unsafe {
        let errno = *libc::__errno_location();
        libc::write(fd, (&byte as *const u8).cast(), 1);
        *libc::__errno_location() = errno;
    }
}

/// The dump thread: one dump per signal.
#[cfg(unix)]
fn dump_on_signal(read_end: libc::c_int, mode: Mode) {
    let mut byte = 0u8;
    loop {
        // SAFETY: our descriptor and a one-byte buffer.
        let n = unsafe { libc::read(read_end, (&mut byte as *mut u8).cast(), 1) };
        if n != 1 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        let mut text = b"SIGQUIT: quit\n\n".to_vec();
        let _ = super::dump::dump(&mut text);
        // Straight to the descriptor, as the deadlock report (a test harness captures
        // `eprintln!`).
        let _ = std::io::stderr().lock().write_all(&text);
        if mode == Mode::Exit {
            std::process::exit(2);
        }
    }
}
