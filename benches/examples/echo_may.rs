//! may's echo server, the twin of gort's examples/echo_server.rs for
//! benches/echo_side_by_side.sh: one coroutine per connection.
//!
//! `cargo run --release -p gort-benches --example echo_may -- 127.0.0.1:7881`
//! Worker threads: `WORKERS` (default: available CPUs).

use std::io::{Read, Write};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7881".into());
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    may::config().set_workers(workers);
    let listener = may::net::TcpListener::bind(&addr)?;
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let _ = conn.set_nodelay(true);
        // may's `go!` hides an `unsafe` spawn (may#109): a coroutine must not hold thread-local
        // state across a blocking call or overflow its fixed stack; this one only reads and
        // writes a socket with a 4 KiB heap buffer.
        may::go!(move || {
            let mut buf = vec![0u8; 4096];
            loop {
                let n = match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        });
    }
    Ok(())
}
