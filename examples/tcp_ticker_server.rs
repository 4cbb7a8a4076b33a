//! The seeds' TCP server: every client gets "Response from server" once a second, each served
//! by its own goroutine that sleeps between writes, until the client goes away.
//!
//! `cargo run --release --example tcp_ticker_server -- 127.0.0.1:8080`
//! (then `cargo run --release --example tcp_client -- 127.0.0.1:8080`)

use std::io::{self, Write};
use std::time::Duration;

use gort::net::{TcpListener, TcpStream};

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    if let Err(e) = gort::run(move || serve(&addr)) {
        eprintln!("tcp_ticker_server: {e}");
        std::process::exit(1);
    }
}

fn serve(addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    // Out of descriptors (`ulimit -n`), `accept` waits and retries; say so when that begins
    // and when it ends.
    listener.on_accept_stall(|stall| eprintln!("tcp_ticker_server: {stall}"));
    eprintln!("tcp_ticker_server: listening on {}", listener.local_addr()?);
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                gort::go!(move || handle(conn));
            }
            Err(_) => continue, // as the Go original: skip a failed accept
        }
    }
}

/// Writes a line a second until a write fails (the client hung up); dropping `conn` closes it.
fn handle(mut conn: TcpStream) {
    while conn.write_all(b"Response from server\n").is_ok() {
        gort::time::sleep(Duration::from_secs(1));
    }
}
