//! gort's side of each workload: goroutines, `gort::chan`, `gort::select!`, `gort::sync`,
//! `gort::time`. The reference every other system's figure is divided by.

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::net::{TcpListener, TcpStream};
use gort::sync::{Mutex, WaitGroup};

use crate::{
    CHAN_CAP, CHAN_MSGS, CTX_TOKENS, ECHO_MSG, ECHO_ROUNDS, MPMC_SIDES, MUTEX_OPS,
    MUTEX_PER_WORKER, MUTEX_WORKERS, SELECT_MSGS, SPAWNS, TIMERS, TIMER_SLEEP, WG_TASKS, YIELDS,
};

/// Runs `iteration` `iters` times in one main goroutine and returns how long the loop took.
fn timed(iters: u64, iteration: fn()) -> Duration {
    gort::run(move || {
        let start = Instant::now();
        for _ in 0..iters {
            iteration();
        }
        start.elapsed()
    })
}

pub fn ctxswitch(iters: u64) -> Duration {
    timed(iters, || {
        let (tx, rx) = gort::chan::<()>(0);
        let sender = gort::go!(move || {
            for _ in 0..CTX_TOKENS {
                tx.send(()).expect("receiver alive");
            }
        });
        let mut got = 0u64;
        for () in &rx {
            got += 1;
        }
        sender.join().unwrap();
        assert_eq!(got, CTX_TOKENS);
    })
}

pub fn yield_now(iters: u64) -> Duration {
    timed(iters, || {
        for _ in 0..YIELDS {
            gort::yield_now();
        }
    })
}

pub fn spawn_join(iters: u64) -> Duration {
    timed(iters, || {
        let handles: Vec<_> = (0..SPAWNS).map(|i| gort::go!(move || i + 1)).collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, SPAWNS * (SPAWNS + 1) / 2);
    })
}

/// One producer, one consumer (the timing goroutine), `CHAN_MSGS` values over a channel of
/// capacity `cap`.
fn one_to_one(cap: usize) {
    let (tx, rx) = gort::chan::<u64>(cap);
    let producer = gort::go!(move || {
        for i in 0..CHAN_MSGS {
            tx.send(i).expect("consumer alive");
        }
    });
    let sum: u64 = rx.iter().sum();
    producer.join().unwrap();
    assert_eq!(sum, CHAN_MSGS * (CHAN_MSGS - 1) / 2);
}

/// `MPMC_SIDES` producers and as many consumers share one channel of capacity `cap`.
fn many_to_many(cap: usize) {
    let (tx, rx) = gort::chan::<u64>(cap);
    let per = CHAN_MSGS / MPMC_SIDES;
    let producers: Vec<_> = (0..MPMC_SIDES)
        .map(|p| {
            let tx = tx.clone();
            gort::go!(move || {
                for i in p * per..(p + 1) * per {
                    tx.send(i).expect("consumers alive");
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..MPMC_SIDES)
        .map(|_| {
            let rx = rx.clone();
            gort::go!(move || rx.iter().sum::<u64>())
        })
        .collect();
    drop(rx);
    for p in producers {
        p.join().unwrap();
    }
    let sum: u64 = consumers.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(sum, CHAN_MSGS * (CHAN_MSGS - 1) / 2);
}

pub fn chan_buf_1x1(iters: u64) -> Duration {
    timed(iters, || one_to_one(CHAN_CAP))
}

pub fn chan_buf_4x4(iters: u64) -> Duration {
    timed(iters, || many_to_many(CHAN_CAP))
}

pub fn chan_unbuf_1x1(iters: u64) -> Duration {
    timed(iters, || one_to_one(0))
}

pub fn chan_unbuf_4x4(iters: u64) -> Duration {
    timed(iters, || many_to_many(0))
}

/// `k` producers, each sending `SELECT_MSGS / k` values on its own buffered channel; the
/// timing goroutine receives them all with `select` over the `k` channels. It keeps a sender
/// of each channel, so no channel closes while it selects.
fn select_setup(k: u64) -> (Vec<gort::Sender<u64>>, Vec<gort::Receiver<u64>>) {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..k).map(|_| gort::chan::<u64>(CHAN_CAP)).unzip();
    for tx in &txs {
        let tx = tx.clone();
        drop(gort::go!(move || {
            for i in 0..SELECT_MSGS / k {
                tx.send(i).expect("selector alive");
            }
        }));
    }
    (txs, rxs)
}

pub fn select_2(iters: u64) -> Duration {
    timed(iters, || {
        let (_txs, r) = select_setup(2);
        let mut sum = 0u64;
        for _ in 0..SELECT_MSGS {
            sum += gort::select! {
                recv(r[0]) -> v => v.unwrap(),
                recv(r[1]) -> v => v.unwrap(),
            };
        }
        assert_eq!(sum, 2 * (SELECT_MSGS / 2) * (SELECT_MSGS / 2 - 1) / 2);
    })
}

pub fn select_8(iters: u64) -> Duration {
    timed(iters, || {
        let (_txs, r) = select_setup(8);
        let mut sum = 0u64;
        for _ in 0..SELECT_MSGS {
            sum += gort::select! {
                recv(r[0]) -> v => v.unwrap(),
                recv(r[1]) -> v => v.unwrap(),
                recv(r[2]) -> v => v.unwrap(),
                recv(r[3]) -> v => v.unwrap(),
                recv(r[4]) -> v => v.unwrap(),
                recv(r[5]) -> v => v.unwrap(),
                recv(r[6]) -> v => v.unwrap(),
                recv(r[7]) -> v => v.unwrap(),
            };
        }
        assert_eq!(sum, 8 * (SELECT_MSGS / 8) * (SELECT_MSGS / 8 - 1) / 2);
    })
}

pub fn mutex_uncontended(iters: u64) -> Duration {
    timed(iters, || {
        let m = Mutex::new(0u64);
        for _ in 0..MUTEX_OPS {
            *black_box(&m).lock() += 1;
        }
        assert_eq!(m.into_inner(), MUTEX_OPS);
    })
}

pub fn mutex_contended_8(iters: u64) -> Duration {
    timed(iters, || {
        let m = Arc::new(Mutex::new(0u64));
        let workers: Vec<_> = (0..MUTEX_WORKERS)
            .map(|_| {
                let m = m.clone();
                gort::go!(move || {
                    for _ in 0..MUTEX_PER_WORKER {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(*m.lock(), MUTEX_WORKERS * MUTEX_PER_WORKER);
    })
}

pub fn waitgroup(iters: u64) -> Duration {
    timed(iters, || {
        let wg = WaitGroup::new();
        wg.add(WG_TASKS as i64);
        for _ in 0..WG_TASKS {
            let wg = wg.clone();
            drop(gort::go!(move || wg.done())); // detached, as Go's `go`
        }
        wg.wait();
    })
}

pub fn timers_10k(iters: u64) -> Duration {
    timed(iters, || {
        let sleepers: Vec<_> = (0..TIMERS)
            .map(|_| gort::go!(|| gort::time::sleep(TIMER_SLEEP)))
            .collect();
        for s in sleepers {
            s.join().unwrap();
        }
    })
}

/// A client goroutine (the timing one) and an echo-server goroutine on one loopback TCP
/// connection (TCP_NODELAY, gort's default as Go's): `ECHO_ROUNDS` round trips of `ECHO_MSG`
/// bytes. Connecting and accepting are part of the iteration (amortised over the rounds).
pub fn tcp_echo(iters: u64) -> Duration {
    timed(iters, || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        let server = gort::go!(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut buf = [0u8; ECHO_MSG];
            while conn.read_exact(&mut buf).is_ok() {
                conn.write_all(&buf).expect("echo");
            }
        });
        let mut conn = TcpStream::connect(addr).expect("connect");
        let (msg, mut buf) = ([7u8; ECHO_MSG], [0u8; ECHO_MSG]);
        for _ in 0..ECHO_ROUNDS {
            conn.write_all(&msg).expect("write");
            conn.read_exact(&mut buf).expect("read");
        }
        assert_eq!(buf, msg);
        drop(conn);
        server.join().unwrap();
    })
}
