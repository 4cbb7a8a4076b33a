//! C10K: 10,000 TCP connections open at once, each served by its own goroutine and each
//! echoing a message, every byte checked.
//!
//! Two processes, so that each needs only ~10,000 descriptors (one process holding both ends
//! would need over 20,000, more than many machines' hard limit): this test binary is the
//! server (one goroutine per accepted connection), and it re-runs itself as the client (the
//! `c10k_client` test, which does nothing unless `GORT_C10K_SERVER` names a server). The
//! client opens every connection before any echoes and keeps them all open until every echo
//! is back; the server checks it held all 10,000 at once. Each side raises its
//! `RLIMIT_NOFILE` soft limit to the hard limit, and the test skips with a message if the
//! hard limit is too low.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::net::{TcpListener, TcpStream};

/// Connections held at once.
const CONNS: usize = 10_000;
/// Descriptors each process needs beyond its connections (runtime, listener, stdio, test
/// harness).
const SPARE_FDS: u64 = 100;
/// The whole run, client included, must end within this.
const LIMIT: Duration = Duration::from_secs(120);
const ENV: &str = "GORT_C10K_SERVER";

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new limit.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the live local we pass.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: setrlimit reads one rlimit from the live local we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    lim.rlim_cur
}

fn message(id: usize) -> [u8; 32] {
    let mut m = [0u8; 32];
    for (i, b) in m.iter_mut().enumerate() {
        *b = (id * 131 + i * 7) as u8;
    }
    m[..8].copy_from_slice(&(id as u64).to_le_bytes());
    m
}

/// Server-side counters: live connections, the most seen at once, connections that echoed.
#[derive(Default)]
struct Counts {
    live: AtomicUsize,
    peak: AtomicUsize,
    echoed: AtomicUsize,
}

fn serve(listener: TcpListener, counts: Arc<Counts>) -> gort::JoinHandle<()> {
    gort::go!(move || {
        while let Ok((conn, _)) = listener.accept() {
            let counts = counts.clone();
            let live = counts.live.fetch_add(1, Ordering::SeqCst) + 1;
            counts.peak.fetch_max(live, Ordering::SeqCst);
            gort::go!(move || {
                if echo_all(conn) > 0 {
                    counts.echoed.fetch_add(1, Ordering::SeqCst);
                }
                counts.live.fetch_sub(1, Ordering::SeqCst);
            });
        }
    })
}

/// Echoes until end-of-file; returns the bytes echoed.
fn echo_all(mut conn: TcpStream) -> usize {
    let mut buf = [0u8; 512];
    let mut total = 0;
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return total,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return total;
                }
                total += n;
            }
        }
    }
}

#[test]
fn c10k() {
    let limit = raise_nofile();
    if limit < CONNS as u64 + SPARE_FDS {
        eprintln!(
            "SKIPPED c10k: RLIMIT_NOFILE hard limit {limit} < {} (raise it with `ulimit -Hn`)",
            CONNS as u64 + SPARE_FDS
        );
        return;
    }
    common::bounded("c10k", || {
        for procs in [1, 4] {
            gort::set_maxprocs(procs);
            run_server(procs);
        }
    });
}

fn run_server(procs: usize) {
    let start = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stopper = listener.try_clone().unwrap();
    let counts = Arc::new(Counts::default());
    let server = serve(listener, counts.clone());
    let client = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "c10k_client", "--nocapture", "--test-threads=1"])
        .env(ENV, addr.to_string())
        .env("GORT_MAXPROCS", procs.to_string())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the client process");
    let status = wait_or_kill(client);
    assert!(status.success(), "the client process failed: {status}");
    common::wait_until("server goroutines see every connection end", || {
        counts.live.load(Ordering::SeqCst) == 0
    });
    stopper.close();
    server.join().unwrap();
    let (peak, echoed) = (
        counts.peak.load(Ordering::SeqCst),
        counts.echoed.load(Ordering::SeqCst),
    );
    assert_eq!(peak, CONNS, "connections held open at once");
    assert_eq!(echoed, CONNS, "connections that echoed");
    eprintln!(
        "c10k at maxprocs {procs}: {CONNS} connections held at once and echoed in {:?}",
        start.elapsed()
    );
}

fn wait_or_kill(mut child: std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the client process hung for {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The client side, run in a child process by `c10k`.
#[test]
fn c10k_client() {
    let Ok(addr) = std::env::var(ENV) else {
        return; // only meaningful as c10k's child
    };
    let limit = raise_nofile();
    assert!(
        limit >= CONNS as u64 + SPARE_FDS,
        "client: RLIMIT_NOFILE {limit}"
    );
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let (connect_time, echo_time) = gort::run(move || clients(addr));
    eprintln!("c10k client: {CONNS} connected in {connect_time:?}, all echoed in {echo_time:?}");
}

/// Opens every connection, then echoes on all of them, keeping all open until all are done.
fn clients(addr: std::net::SocketAddr) -> (Duration, Duration) {
    let start = Instant::now();
    let (connected_tx, connected_rx) = gort::chan::<()>(CONNS);
    let (echo_tx, echo_rx) = gort::chan::<()>(0);
    let (done_tx, done_rx) = gort::chan::<()>(CONNS);
    let (close_tx, close_rx) = gort::chan::<()>(0);
    let hs: Vec<_> = (0..CONNS)
        .map(|id| {
            let (connected, echo, done, close) = (
                connected_tx.clone(),
                echo_rx.clone(),
                done_tx.clone(),
                close_rx.clone(),
            );
            gort::go!(move || {
                let mut c = TcpStream::connect(addr).expect("connect");
                connected.send(()).unwrap();
                let _ = echo.recv(); // closed: all connected
                let msg = message(id);
                c.write_all(&msg).expect("write");
                let mut back = [0u8; 32];
                c.read_exact(&mut back).expect("read echo");
                assert_eq!(back, msg, "connection {id}");
                done.send(()).unwrap();
                let _ = close.recv(); // closed: all echoed
            })
        })
        .collect();
    for _ in 0..CONNS {
        connected_rx.recv().unwrap();
    }
    let connected = start.elapsed();
    drop(echo_tx);
    for _ in 0..CONNS {
        done_rx.recv().unwrap();
    }
    let echoed = start.elapsed() - connected;
    drop(close_tx);
    hs.into_iter().for_each(|h| h.join().unwrap());
    (connected, echoed)
}
