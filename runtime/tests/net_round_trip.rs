//! Request/response on loopback TCP beside the placement and polling rules of
//! `docs/ARCHITECTURE.md` §6.5 and §5.2: a client and the echo server it spawned just before
//! connecting exchange many small messages (the `tcp_echo` benchmark's shape, several pairs at
//! once), every byte and every round trip counted; round trips go on while another goroutine
//! computes without scheduling (the idle M that watches for I/O leaves polling to busy Ps only
//! while they poll); and a child whose spawner goes on computing still starts on another thread
//! (the longer `runnext` grace of the thread-affine mode delays a fork, never serialises it).
//! Each scenario is bounded in time (`common`); nothing here times performance.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::net::{TcpListener, TcpStream};

/// Client/server pairs at once, round trips per pair, and bytes per message.
const PAIRS: usize = 4;
const ROUNDS: u64 = 2_000;
const MSG: usize = 64;

/// The message of round `k` of pair `pair`.
fn message(pair: usize, k: u64) -> [u8; MSG] {
    std::array::from_fn(|i| (i as u64 * 31 + k * 7 + pair as u64 * 13) as u8)
}

/// One pair: spawns an echo server on a fresh listener, connects to it, and makes `rounds`
/// round trips, checking each echo; returns the round trips the server counted.
fn round_trips(pair: usize, rounds: u64) -> u64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let server = gort::go!(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = [0u8; MSG];
        let mut echoed = 0u64;
        while conn.read_exact(&mut buf).is_ok() {
            conn.write_all(&buf).expect("echo");
            echoed += 1;
        }
        echoed
    });
    let mut conn = TcpStream::connect(addr).expect("connect");
    let mut buf = [0u8; MSG];
    for k in 0..rounds {
        let msg = message(pair, k);
        conn.write_all(&msg).expect("write");
        conn.read_exact(&mut buf).expect("read");
        assert_eq!(buf, msg, "pair {pair}, round {k}: echo differs");
    }
    drop(conn);
    server.join().expect("server")
}

#[test]
fn spawned_server_and_its_client_make_every_round_trip() {
    common::each_procs("round trips", |procs| {
        let echoed = gort::run(|| {
            let pairs: Vec<_> = (0..PAIRS)
                .map(|pair| gort::go!(move || round_trips(pair, ROUNDS)))
                .collect();
            pairs
                .into_iter()
                .map(|h| h.join().expect("pair"))
                .collect::<Vec<_>>()
        });
        assert_eq!(echoed, vec![ROUNDS; PAIRS], "at maxprocs {procs}");
    });
}

/// Round trips per pair beside the computing goroutine.
const ROUNDS_BESIDE: u64 = 100;

/// Computes until `stop` is set, with a preemption point only every 2^16 spins: it schedules
/// once a time slice (when sysmon asks), so its P polls for I/O about as seldom. (Without any,
/// a goroutine homed to its thread could never run again, and neither could the one that
/// would set `stop`: the thread-affine mode's known limit, `docs/SOUNDNESS.md`.)
fn compute_until(stop: &AtomicBool) -> u64 {
    let mut spins = 0u64;
    while !stop.load(Ordering::Relaxed) {
        std::hint::spin_loop();
        spins += 1;
        if spins % (1 << 16) == 0 {
            gort::preempt_point();
        }
    }
    spins
}

/// At maxprocs 2 and 4 only: at 1, the pairs get the one P only when the computation yields.
#[test]
fn round_trips_go_on_beside_a_computing_goroutine() {
    common::each_procs_at("round trips beside a computation", &[2, 4], |procs| {
        let stop = Arc::new(AtomicBool::new(false));
        let echoed = {
            let stop = stop.clone();
            gort::run(move || {
                let computing = {
                    let stop = stop.clone();
                    gort::go!(move || compute_until(&stop))
                };
                let pairs: Vec<_> = (0..PAIRS)
                    .map(|pair| gort::go!(move || round_trips(pair, ROUNDS_BESIDE)))
                    .collect();
                let echoed: Vec<u64> = pairs.into_iter().map(|h| h.join().expect("pair")).collect();
                stop.store(true, Ordering::Relaxed);
                computing.join().expect("computing goroutine");
                echoed
            })
        };
        assert_eq!(echoed, vec![ROUNDS_BESIDE; PAIRS], "at maxprocs {procs}");
    });
}

#[test]
fn a_child_starts_elsewhere_while_its_spawner_computes() {
    common::each_procs_at("fork", &[2, 4], |procs| {
        let (parent_m, child_m) = gort::run(|| {
            let started = Arc::new(AtomicU64::new(u64::MAX));
            let child = {
                let started = started.clone();
                gort::go!(move || {
                    let m = gort::current_machine_id().expect("on an M") as u64;
                    started.store(m, Ordering::SeqCst);
                })
            };
            // Computes until the child has started: it can only start on another thread, since
            // this goroutine neither parks nor yields meanwhile.
            let since = Instant::now();
            while started.load(Ordering::SeqCst) == u64::MAX {
                assert!(
                    since.elapsed() < Duration::from_secs(30),
                    "the child never started beside its computing spawner"
                );
                std::hint::spin_loop();
            }
            let parent_m = gort::current_machine_id().expect("on an M") as u64;
            child.join().expect("child");
            (parent_m, started.load(Ordering::SeqCst))
        });
        assert_ne!(parent_m, child_m, "at maxprocs {procs}");
    });
}
