//! may's side of each workload: coroutines (`may::coroutine::spawn`), `may::sync::mpsc` /
//! `mpmc`, `may::select!`, `may::sync::{Mutex, WaitGroup}`, `may::coroutine::sleep`.
//!
//! may's channels are unbounded: it has neither a bounded nor a rendezvous channel. Every
//! channel workload therefore runs on its unbounded channel, where a sender never waits: in
//! `ctxswitch` and `chan_unbuf_*` that is *not* a hand-off per message, and in `chan_buf_*`
//! there is no back-pressure. The report marks these cells.
//!
//! may's `select!` runs each case in a coroutine of its own and cancels the losers: that is
//! its design, and what `select_*` measures.
//!
//! Spawning is `unsafe` in may (its `go!` macro hides the `unsafe`; here it is spelled out at
//! each call through [`go`]). The conditions, from may's documentation: the coroutine must not
//! use thread-local storage (it may migrate between worker threads), and must not overflow its
//! stack (may's default: 0x1000 words, 32 KiB on x86-64).

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use may::coroutine::JoinHandle;
use may::net::{TcpListener, TcpStream};
use may::sync::{mpmc, mpsc, Mutex, WaitGroup};

use crate::{
    CHAN_MSGS, CTX_TOKENS, ECHO_MSG, ECHO_ROUNDS, MPMC_SIDES, MUTEX_OPS, MUTEX_PER_WORKER,
    MUTEX_WORKERS, SELECT_MSGS, SPAWNS, TIMERS, TIMER_SLEEP, WG_TASKS, YIELDS,
};

/// Starts a may coroutine.
///
/// # Safety
///
/// As `may::coroutine::spawn`: `f` must not access thread-local storage (a coroutine moves
/// between may's worker threads, so a reference into one thread's storage could be used from
/// another: the soundness hole gort's docs/SOUNDNESS.md describes), and must fit in may's
/// default coroutine stack (a few KiB of frames here; overflowing it is a crash).
unsafe fn go<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    // SAFETY: the caller upholds `may::coroutine::spawn`'s conditions (this fn's contract).
    unsafe { may::coroutine::spawn(f) }
}

/// Runs `iteration` `iters` times in one coroutine and returns how long the loop took.
fn timed(iters: u64, iteration: fn()) -> Duration {
    // SAFETY: the loop and every `iteration` in this file use no thread-local storage (only
    // may's own primitives, which are built for coroutines, atomics and Instant) and need a
    // few hundred bytes of stack.
    let h = unsafe {
        go(move || {
            let start = Instant::now();
            for _ in 0..iters {
                iteration();
            }
            start.elapsed()
        })
    };
    h.join().unwrap()
}

pub fn ctxswitch(iters: u64) -> Duration {
    timed(iters, || {
        let (tx, rx) = mpsc::channel::<()>();
        // SAFETY: no thread-locals; a few hundred bytes of stack.
        let sender = unsafe {
            go(move || {
                for _ in 0..CTX_TOKENS {
                    tx.send(()).expect("receiver alive");
                }
            })
        };
        let got = rx.iter().count() as u64;
        sender.join().unwrap();
        assert_eq!(got, CTX_TOKENS);
    })
}

pub fn yield_now(iters: u64) -> Duration {
    timed(iters, || {
        for _ in 0..YIELDS {
            may::coroutine::yield_now();
        }
    })
}

pub fn spawn_join(iters: u64) -> Duration {
    timed(iters, || {
        // SAFETY: no thread-locals; a few bytes of stack.
        let handles: Vec<_> = (0..SPAWNS).map(|i| unsafe { go(move || i + 1) }).collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, SPAWNS * (SPAWNS + 1) / 2);
    })
}

/// One producer coroutine, the timing coroutine consumes; may's unbounded channel.
fn one_to_one() {
    let (tx, rx) = mpsc::channel::<u64>();
    // SAFETY: no thread-locals; a few hundred bytes of stack.
    let producer = unsafe {
        go(move || {
            for i in 0..CHAN_MSGS {
                tx.send(i).expect("consumer alive");
            }
        })
    };
    let sum: u64 = rx.iter().sum();
    producer.join().unwrap();
    assert_eq!(sum, CHAN_MSGS * (CHAN_MSGS - 1) / 2);
}

/// `MPMC_SIDES` producers and consumers on may's unbounded MPMC channel.
fn many_to_many() {
    let (tx, rx) = mpmc::channel::<u64>();
    let per = CHAN_MSGS / MPMC_SIDES;
    let producers: Vec<_> = (0..MPMC_SIDES)
        .map(|p| {
            let tx = tx.clone();
            // SAFETY: no thread-locals; a few hundred bytes of stack.
            unsafe {
                go(move || {
                    for i in p * per..(p + 1) * per {
                        tx.send(i).expect("consumers alive");
                    }
                })
            }
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..MPMC_SIDES)
        .map(|_| {
            let rx = rx.clone();
            // SAFETY: no thread-locals; a few hundred bytes of stack.
            unsafe { go(move || rx.iter().sum::<u64>()) }
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
    timed(iters, one_to_one)
}

pub fn chan_buf_4x4(iters: u64) -> Duration {
    timed(iters, many_to_many)
}

pub fn chan_unbuf_1x1(iters: u64) -> Duration {
    timed(iters, one_to_one)
}

pub fn chan_unbuf_4x4(iters: u64) -> Duration {
    timed(iters, many_to_many)
}

/// As gort's: `k` producer coroutines on their own channels; the timing coroutine selects.
fn select_setup(k: u64) -> (Vec<mpsc::Sender<u64>>, Vec<mpsc::Receiver<u64>>) {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..k).map(|_| mpsc::channel::<u64>()).unzip();
    for tx in &txs {
        let tx = tx.clone();
        // SAFETY: no thread-locals; a few hundred bytes of stack.
        drop(unsafe {
            go(move || {
                for i in 0..SELECT_MSGS / k {
                    tx.send(i).expect("selector alive");
                }
            })
        });
    }
    (txs, rxs)
}

/// may's `select!` may let a losing case take a value before it is cancelled (that case's
/// body still runs), so the selects count values, not rounds.
pub fn select_2(iters: u64) -> Duration {
    timed(iters, || {
        let (_txs, r) = select_setup(2);
        let (got, sum) = (AtomicU64::new(0), AtomicU64::new(0));
        let take = |v: u64| {
            got.fetch_add(1, Ordering::Relaxed);
            sum.fetch_add(v, Ordering::Relaxed);
        };
        while got.load(Ordering::Relaxed) < SELECT_MSGS {
            may::select!(
                v = r[0].recv() => take(v.unwrap()),
                v = r[1].recv() => take(v.unwrap())
            );
        }
        assert_eq!(
            sum.into_inner(),
            2 * (SELECT_MSGS / 2) * (SELECT_MSGS / 2 - 1) / 2
        );
    })
}

pub fn select_8(iters: u64) -> Duration {
    timed(iters, || {
        let (_txs, r) = select_setup(8);
        let (got, sum) = (AtomicU64::new(0), AtomicU64::new(0));
        let take = |v: u64| {
            got.fetch_add(1, Ordering::Relaxed);
            sum.fetch_add(v, Ordering::Relaxed);
        };
        while got.load(Ordering::Relaxed) < SELECT_MSGS {
            may::select!(
                v = r[0].recv() => take(v.unwrap()),
                v = r[1].recv() => take(v.unwrap()),
                v = r[2].recv() => take(v.unwrap()),
                v = r[3].recv() => take(v.unwrap()),
                v = r[4].recv() => take(v.unwrap()),
                v = r[5].recv() => take(v.unwrap()),
                v = r[6].recv() => take(v.unwrap()),
                v = r[7].recv() => take(v.unwrap())
            );
        }
        assert_eq!(
            sum.into_inner(),
            8 * (SELECT_MSGS / 8) * (SELECT_MSGS / 8 - 1) / 2
        );
    })
}

pub fn mutex_uncontended(iters: u64) -> Duration {
    timed(iters, || {
        let m = Mutex::new(0u64);
        for _ in 0..MUTEX_OPS {
            *black_box(&m).lock().unwrap() += 1;
        }
        assert_eq!(*m.lock().unwrap(), MUTEX_OPS);
    })
}

pub fn mutex_contended_8(iters: u64) -> Duration {
    timed(iters, || {
        let m = Arc::new(Mutex::new(0u64));
        let workers: Vec<_> = (0..MUTEX_WORKERS)
            .map(|_| {
                let m = m.clone();
                // SAFETY: no thread-locals; a few hundred bytes of stack.
                unsafe {
                    go(move || {
                        for _ in 0..MUTEX_PER_WORKER {
                            *m.lock().unwrap() += 1;
                        }
                    })
                }
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), MUTEX_WORKERS * MUTEX_PER_WORKER);
    })
}

pub fn waitgroup(iters: u64) -> Duration {
    timed(iters, || {
        let wg = WaitGroup::new();
        for _ in 0..WG_TASKS {
            let wg = wg.clone();
            // Detached; dropping its clone is `done`. SAFETY: no thread-locals; tiny stack.
            drop(unsafe { go(move || drop(wg)) });
        }
        wg.wait();
    })
}

pub fn timers_10k(iters: u64) -> Duration {
    timed(iters, || {
        // SAFETY: no thread-locals; may's sleep needs little stack.
        let sleepers: Vec<_> = (0..TIMERS)
            .map(|_| unsafe { go(|| may::coroutine::sleep(TIMER_SLEEP)) })
            .collect();
        for s in sleepers {
            s.join().unwrap();
        }
    })
}

/// As gort's: a client (the timing coroutine) and an echo-server coroutine, with TCP_NODELAY.
pub fn tcp_echo(iters: u64) -> Duration {
    timed(iters, || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        // SAFETY: no thread-locals; a 64-byte buffer and may's socket calls on the stack.
        let server = unsafe {
            go(move || {
                let (mut conn, _) = listener.accept().expect("accept");
                conn.set_nodelay(true).unwrap();
                let mut buf = [0u8; ECHO_MSG];
                while conn.read_exact(&mut buf).is_ok() {
                    conn.write_all(&buf).expect("echo");
                }
            })
        };
        let mut conn = TcpStream::connect(addr).expect("connect");
        conn.set_nodelay(true).unwrap();
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
