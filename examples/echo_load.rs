//! Load generator for TCP echo servers (gort's, Go's, tokio's...): opens C connections, each
//! driven by its own goroutine that sends 64-byte messages one at a time for D seconds and
//! checks every echoed byte; then prints one line:
//!
//! `echo_load: conns=<C> reqs_per_s=<number> p99_us=<number> errors=<number>`
//!
//! `cargo run --release --example echo_load -- 127.0.0.1:7878 50 10` (address, connections,
//! seconds; defaults 127.0.0.1:7878, 50, 5). Exits with status 1 if any error occurred.
//!
//! A request is one message written and its echo read back in full; its latency is the time
//! between the two. Echoes are read into a 4 KiB buffer (as a client reading a protocol does),
//! not with `read_exact` of exactly 64 bytes: the read that completes an echo then comes back
//! short, which lets gort's `TcpStream` park on the next read without the system call that
//! would only say "nothing yet" (`netpoller::PollFd::read_stream_with`). That keeps the load
//! generator's own cost per request down, the same for every server measured. Each message carries the connection number and a sequence number, so a
//! mixed-up or stale echo is caught, not only a corrupted one. All connections are opened
//! before the clock starts.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gort::net::TcpStream;

const MSG_LEN: usize = 64;

struct Args {
    addr: SocketAddr,
    conns: usize,
    secs: f64,
}

/// What one connection's goroutine measured.
#[derive(Default)]
struct ConnResult {
    latencies_us: Vec<u32>,
    errors: u64,
}

fn main() {
    let args = parse_args();
    let (conns, results, elapsed) = gort::run(move || run_load(&args));
    let requests: usize = results.iter().map(|r| r.latencies_us.len()).sum();
    let errors: u64 = results.iter().map(|r| r.errors).sum();
    let mut all: Vec<u32> = results.into_iter().flat_map(|r| r.latencies_us).collect();
    let p99 = percentile(&mut all, 0.99);
    println!(
        "echo_load: conns={conns} reqs_per_s={:.0} p99_us={p99} errors={errors}",
        requests as f64 / elapsed.as_secs_f64()
    );
    if errors > 0 {
        std::process::exit(1);
    }
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let addr = it.next().unwrap_or_else(|| "127.0.0.1:7878".into());
    let addr = gort::net::lookup_host(&addr)
        .ok()
        .and_then(|a| a.into_iter().next())
        .unwrap_or_else(|| usage(&format!("cannot resolve {addr}")));
    let conns = it
        .next()
        .map_or(50, |s| s.parse().unwrap_or_else(|_| usage(&s)));
    let secs = it
        .next()
        .map_or(5.0, |s| s.parse().unwrap_or_else(|_| usage(&s)));
    Args { addr, conns, secs }
}

fn usage(bad: &str) -> ! {
    eprintln!("echo_load: bad argument {bad:?}\nusage: echo_load [addr] [connections] [seconds]");
    std::process::exit(2);
}

/// Opens every connection, then runs them all until the deadline. Returns the connection
/// count, per-connection results and the measured duration.
fn run_load(args: &Args) -> (usize, Vec<ConnResult>, Duration) {
    let addr = args.addr;
    let connecting: Vec<_> = (0..args.conns)
        .map(|_| gort::go!(move || TcpStream::connect(addr)))
        .collect();
    let mut streams = Vec::with_capacity(args.conns);
    let mut connect_errors = 0;
    for h in connecting {
        match h.join().expect("connect goroutine panicked") {
            Ok(s) => streams.push(s),
            Err(e) => {
                eprintln!("echo_load: connect {addr}: {e}");
                connect_errors += 1;
            }
        }
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.secs);
    let workers: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(id, s)| gort::go!(move || drive(id as u32, s, deadline)))
        .collect();
    let mut results: Vec<ConnResult> = workers
        .into_iter()
        .map(|h| h.join().expect("connection goroutine panicked"))
        .collect();
    let elapsed = start.elapsed();
    results.push(ConnResult {
        latencies_us: Vec::new(),
        errors: connect_errors,
    });
    (args.conns, results, elapsed)
}

/// One connection's loop: send, read the echo back, check it, until the deadline.
fn drive(id: u32, mut conn: TcpStream, deadline: Instant) -> ConnResult {
    let mut r = ConnResult {
        latencies_us: Vec::with_capacity(1 << 12),
        errors: 0,
    };
    let mut echo = [0u8; 4096];
    for seq in 0u64.. {
        let sent = Instant::now();
        if sent >= deadline {
            break;
        }
        let msg = message(id, seq);
        if let Err(e) = round_trip(&mut conn, &msg, &mut echo) {
            eprintln!("echo_load: connection {id}: {e}");
            r.errors += 1;
            break;
        }
        if echo[..MSG_LEN] != msg {
            eprintln!("echo_load: connection {id}: message {seq} came back altered");
            r.errors += 1;
            break;
        }
        let us = sent.elapsed().as_micros();
        r.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
    }
    r
}

/// Writes `msg` and reads its echo into the front of `buf`. An echo longer than the message
/// (bytes nobody sent yet) is an error.
fn round_trip(conn: &mut TcpStream, msg: &[u8], buf: &mut [u8]) -> io::Result<()> {
    conn.write_all(msg)?;
    let mut got = 0;
    while got < msg.len() {
        match conn.read(&mut buf[got..])? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    if got > msg.len() {
        return Err(io::Error::other(format!(
            "echo of {} bytes to a {}-byte message",
            got,
            msg.len()
        )));
    }
    Ok(())
}

/// A message naming its connection and sequence number, the rest a pattern derived from both.
fn message(id: u32, seq: u64) -> [u8; MSG_LEN] {
    let mut m = [0u8; MSG_LEN];
    m[..4].copy_from_slice(&id.to_le_bytes());
    m[4..12].copy_from_slice(&seq.to_le_bytes());
    let mut x = (u64::from(id) << 32) ^ seq ^ 0x9e37_79b9_7f4a_7c15;
    for b in &mut m[12..] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    m
}

/// The `q` quantile of `v` in microseconds (0 if empty).
fn percentile(v: &mut [u32], q: f64) -> u32 {
    if v.is_empty() {
        return 0;
    }
    let k = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    *v.select_nth_unstable(k).1
}
