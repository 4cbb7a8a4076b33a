//! Writing to a connection the peer has closed is an error, not a `SIGPIPE` death, even in a
//! process that has not ignored the signal (Rust's `main` ignores it; a C host or a program
//! built with `-Zon-broken-pipe=kill` does not). Alone in its binary: it restores the default
//! `SIGPIPE` action for the whole process first.

mod common;

use std::io::{ErrorKind, Write};

use gort::net::{TcpListener, TcpStream, UnixStream};

fn restore_default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL installs no handler code; it only
    // undoes the SIG_IGN the Rust runtime installed before main.
    let prev = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(prev, libc::SIG_ERR);
}

/// Writes until the closed peer makes a write fail; returns that error.
fn write_until_error(mut w: impl Write) -> std::io::Error {
    let chunk = [7u8; 4096];
    loop {
        if let Err(e) = w.write(&chunk) {
            return e;
        }
    }
}

#[test]
fn broken_pipe_is_an_error_with_default_sigpipe() {
    restore_default_sigpipe();
    common::bounded("broken_pipe_is_an_error", || {
        gort::go!(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            drop(l.accept().unwrap());
            let err = write_until_error(&c);
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                ),
                "tcp: {err}"
            );

            let (a, b) = UnixStream::pair().unwrap();
            drop(b);
            let err = write_until_error(&a);
            assert_eq!(err.kind(), ErrorKind::BrokenPipe, "unix: {err}");
        })
        .join()
        .unwrap();
    });
}
