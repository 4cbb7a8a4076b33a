//! tokio's load generator for TCP echo servers: the protocol of gort's examples/echo_load.rs
//! (and of Go's `benches/go/cmd/echoload`), run by tokio's scheduler, so that a gort server is
//! judged by a client that is not gort. Used by benches/echo_side_by_side.sh (`LOADGEN=tokio`).
//!
//! - C connections (`TCP_NODELAY`, as Go's and gort's), all opened before the clock starts,
//!   each driven by its own task on the multi-threaded runtime;
//! - one 64-byte message in flight per connection: write it, read its echo back in full into a
//!   4 KiB buffer, check every byte, repeat until D seconds have passed;
//! - each message carries its connection number (4 bytes, little endian) and sequence number
//!   (8 bytes), the other 52 bytes a xorshift pattern seeded by both, so a stale, mixed-up or
//!   corrupted echo is caught; an echo longer than the message is an error too;
//! - a request is one message written and its echo read back; its latency is the time between
//!   the two, in whole microseconds; the q quantile is the ceil(n*q)-th smallest latency.
//!
//! `cargo run --release -p gort-benches --example echo_load_tokio -- 127.0.0.1:7878 50 10`
//! (address, connections, seconds; defaults 127.0.0.1:7878, 50, 5). Worker threads: `WORKERS`
//! (default: available CPUs). Last line:
//!
//! `echo_load_tokio: conns=<C> secs=<D> reqs=<N> reqs_per_s=<N/D> p50_us=<..> p99_us=<..> p999_us=<..> errors=<E>`
//!
//! where D is the measured duration. Errors (failed connects, I/O errors, altered echoes) go to
//! stderr; a connection stops at its first error. Exits with status 1 if any error occurred.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MSG_LEN: usize = 64;

/// What one connection's task measured.
#[derive(Default)]
struct ConnResult {
    latencies_us: Vec<u32>,
    errors: u64,
}

struct Args {
    addr: String,
    conns: usize,
    secs: f64,
}

fn main() -> io::Result<()> {
    let args = parse_args();
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    let (results, elapsed) = rt.block_on(run_load(&args));
    let errors: u64 = results.iter().map(|r| r.errors).sum();
    let mut all: Vec<u32> = results.into_iter().flat_map(|r| r.latencies_us).collect();
    all.sort_unstable();
    let secs = elapsed.as_secs_f64();
    println!(
        "echo_load_tokio: conns={} secs={secs:.2} reqs={} reqs_per_s={:.0} p50_us={} p99_us={} p999_us={} errors={errors}",
        args.conns,
        all.len(),
        all.len() as f64 / secs,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
    );
    if errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let addr = it.next().unwrap_or_else(|| "127.0.0.1:7878".into());
    let conns = it
        .next()
        .map_or(50, |s| s.parse().unwrap_or_else(|_| usage(&s)));
    let secs = it.next().map_or(5.0, |s| {
        s.parse()
            .ok()
            .filter(|v: &f64| *v >= 0.0)
            .unwrap_or_else(|| usage(&s))
    });
    if let Some(extra) = it.next() {
        usage(&extra);
    }
    Args { addr, conns, secs }
}

fn usage(bad: &str) -> ! {
    eprintln!(
        "echo_load_tokio: bad argument {bad:?}\nusage: echo_load_tokio [addr] [connections] [seconds]"
    );
    std::process::exit(2);
}

/// Opens every connection, then runs them all until the deadline. Returns the per-connection
/// results (the last one holds the failed connects) and the measured duration.
async fn run_load(args: &Args) -> (Vec<ConnResult>, Duration) {
    let mut streams = Vec::with_capacity(args.conns);
    let mut connect_errors = 0;
    for _ in 0..args.conns {
        match connect(&args.addr).await {
            Ok(s) => streams.push(s),
            Err(e) => {
                eprintln!("echo_load_tokio: connect {}: {e}", args.addr);
                connect_errors += 1;
            }
        }
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.secs);
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(id, s)| tokio::spawn(drive(id as u32, s, deadline)))
        .collect();
    let mut results = Vec::with_capacity(tasks.len() + 1);
    for t in tasks {
        results.push(t.await.expect("connection task panicked"));
    }
    let elapsed = start.elapsed();
    results.push(ConnResult {
        latencies_us: Vec::new(),
        errors: connect_errors,
    });
    (results, elapsed)
}

async fn connect(addr: &str) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// One connection's loop: send, read the echo back, check it, until the deadline or the first
/// error.
async fn drive(id: u32, mut conn: TcpStream, deadline: Instant) -> ConnResult {
    let mut r = ConnResult {
        latencies_us: Vec::with_capacity(1 << 12),
        errors: 0,
    };
    let mut echo = vec![0u8; 4096];
    for seq in 0u64.. {
        let sent = Instant::now();
        if sent >= deadline {
            break;
        }
        let msg = message(id, seq);
        if let Err(e) = round_trip(&mut conn, &msg, &mut echo).await {
            eprintln!("echo_load_tokio: connection {id}: {e}");
            r.errors += 1;
            break;
        }
        if echo[..MSG_LEN] != msg {
            eprintln!("echo_load_tokio: connection {id}: message {seq} came back altered");
            r.errors += 1;
            break;
        }
        let us = sent.elapsed().as_micros();
        r.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
    }
    r
}

/// Writes `msg` and reads its echo into the front of `buf`.
async fn round_trip(conn: &mut TcpStream, msg: &[u8], buf: &mut [u8]) -> io::Result<()> {
    conn.write_all(msg).await?;
    let mut got = 0;
    while got < msg.len() {
        match conn.read(&mut buf[got..]).await? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    if got > msg.len() {
        return Err(io::Error::other(format!(
            "echo of {got} bytes to a {}-byte message",
            msg.len()
        )));
    }
    Ok(())
}

/// Message `seq` of connection `id`.
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

/// The `q` quantile of the sorted `v` (0 if empty).
fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let k = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[k]
}
