//! The TCP echo server demo: one goroutine per connection, blocking-style code, no `async`.
//! Each connection's goroutine parks in `read` until the netpoller reports data, so ten
//! thousand idle connections cost ten thousand parked goroutines and no threads.
//!
//! `cargo run --release --example echo_server -- 127.0.0.1:7878`
//! (then load it with `cargo run --release --example echo_load -- 127.0.0.1:7878 50 10`)

use std::io::{self, Read, Write};

use gort::net::{TcpListener, TcpStream};

#[path = "bench_mode.rs"]
mod bench_mode;

fn main() {
    let mode = bench_mode::init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    if let Err(e) = gort::run(move || serve(&addr, mode)) {
        eprintln!("echo_server: {e}");
        std::process::exit(1);
    }
}

fn serve(addr: &str, mode: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    // Out of descriptors (`ulimit -n`), `accept` waits and retries; say so when that begins
    // and when it ends.
    listener.on_accept_stall(|stall| eprintln!("echo_server: {stall}"));
    eprintln!(
        "echo_server: listening on {} (GORT_MAXPROCS={}, mode {mode})",
        listener.local_addr()?,
        gort::maxprocs()
    );
    for conn in listener.incoming() {
        match conn {
            Ok(conn) => {
                gort::go!(move || echo(conn));
            }
            // Descriptor exhaustion is retried inside `accept` (and reported by the hook);
            // anything else is worth a line.
            Err(e) => eprintln!("echo_server: accept: {e}"),
        }
    }
    Ok(())
}

/// Echoes until the peer closes or the connection fails.
fn echo(mut conn: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}
