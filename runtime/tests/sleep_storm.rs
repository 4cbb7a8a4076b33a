//! The idle/watcher protocol under the load that once lost a timer wake-up (issue 16): many
//! goroutines sleeping 20-209 µs over and over, so Ms go idle and are woken constantly and the
//! watcher (the idle M waiting for the earliest timer, or in the poller) changes hands; also
//! with channel hand-offs and socket waits mixed in, since they share the watcher. Each runs at
//! GORT_MAXPROCS 1, 2, 4 and 8, bounded in time: a lost wake-up fails the test instead of
//! hanging. In debug builds the idle set asserts its invariants every time an M goes to sleep
//! (`sched/src/scheduler/idle.rs`), so a protocol slip fails loudly here.
//!
//! The full-size program (400 rounds, about 20 s per maxprocs) is `storm_long`, run by hand:
//! `cargo test --release -p gort --test sleep_storm -- --ignored` (docs/HACKING.md).

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use gort::net::{TcpListener, TcpStream};

/// The processor counts: the program hung at 2, 4 and 8.
const PROCS: [usize; 4] = [1, 2, 4, 8];

/// One round: 64 goroutines, goroutine `i` sleeping `sleeps` times for `20 + 3i` µs.
fn storm_round(sleeps: usize) {
    let hs: Vec<_> = (0..64u64)
        .map(|i| {
            gort::go!(move || {
                for _ in 0..sleeps {
                    gort::time::sleep(Duration::from_micros(20 + i * 3));
                }
                sleeps
            })
        })
        .collect();
    let done: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(done, 64 * sleeps);
}

/// A tenth of the program (about 10 s in all). With the issue-16 bug put back, this
/// failed in about half the runs ("M0 listed twice"); the loom model in `idle.rs` catches it
/// every time.
#[test]
fn many_short_sleeps() {
    common::each_procs_at("many_short_sleeps", &PROCS, |_| {
        for _ in 0..40 {
            storm_round(200);
        }
    });
}

/// The program at full size.
#[test]
#[ignore = "about 80 s in release (20 s per maxprocs): run by hand, see docs/HACKING.md"]
fn storm_long() {
    common::each_procs_at("storm_long", &PROCS, |_| {
        for _ in 0..400 {
            storm_round(200);
        }
    });
}

/// Sleepers beside goroutines handing values over channels: timers and channel wake-ups share
/// the idle Ms.
#[test]
fn sleeps_mixed_with_channel_hand_offs() {
    common::each_procs_at("sleeps_mixed_with_channel_hand_offs", &PROCS, |_| {
        const PAIRS: u64 = 16;
        const MESSAGES: u64 = 2_000;
        for _ in 0..4 {
            let sleepers = gort::go!(|| storm_round(25));
            let pairs: Vec<_> = (0..PAIRS)
                .map(|k| {
                    let (tx, rx) = gort::chan::<u64>(0);
                    let consumer = gort::go!(move || rx.iter().sum::<u64>());
                    gort::go!(move || {
                        for v in 0..MESSAGES {
                            if v % 100 == k {
                                gort::time::sleep(Duration::from_micros(50));
                            }
                            tx.send(v).unwrap();
                        }
                        drop(tx);
                        consumer.join().unwrap()
                    })
                })
                .collect();
            for p in pairs {
                assert_eq!(p.join().unwrap(), MESSAGES * (MESSAGES - 1) / 2);
            }
            sleepers.join().unwrap();
        }
    });
}

/// Sleepers beside connections that wait for their peer's bytes: the watcher must poll for
/// I/O and wake for timers in turn.
#[test]
fn sleeps_mixed_with_socket_waits() {
    common::each_procs_at("sleeps_mixed_with_socket_waits", &PROCS, |_| {
        const CONNS: usize = 16;
        const ROUND_TRIPS: usize = 200;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = gort::go!(move || {
            let mut echoes = Vec::new();
            for _ in 0..CONNS {
                let (mut conn, _) = listener.accept().unwrap();
                echoes.push(gort::go!(move || {
                    let mut buf = [0u8; 8];
                    let mut n = 0;
                    while conn.read_exact(&mut buf).is_ok() {
                        // The reply waits for a timer: the client waits on the socket meanwhile.
                        gort::time::sleep(Duration::from_micros(30 + (n % 7) * 10));
                        conn.write_all(&buf).unwrap();
                        n += 1;
                    }
                    n
                }));
            }
            echoes.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        let sleepers = gort::go!(|| {
            for _ in 0..4 {
                storm_round(25);
            }
        });
        let clients: Vec<_> = (0..CONNS)
            .map(|c| {
                gort::go!(move || {
                    let mut conn = TcpStream::connect(addr).unwrap();
                    for i in 0..ROUND_TRIPS {
                        let msg = ((c * ROUND_TRIPS + i) as u64).to_le_bytes();
                        conn.write_all(&msg).unwrap();
                        let mut back = [0u8; 8];
                        conn.read_exact(&mut back).unwrap();
                        assert_eq!(back, msg);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        assert_eq!(server.join().unwrap(), (CONNS * ROUND_TRIPS) as u64);
        sleepers.join().unwrap();
    });
}
