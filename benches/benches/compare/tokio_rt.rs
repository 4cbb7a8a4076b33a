//! tokio's side of each workload, run on either runtime flavour: tasks, `tokio::sync::mpsc`
//! (one consumer) and async-channel (several consumers: tokio has no MPMC channel),
//! `tokio::select!`, `tokio::sync::Mutex`, a counter plus `Notify` as the wait group, and
//! `tokio::time::sleep`, `tokio::net`.
//!
//! tokio's channels have no rendezvous: capacity 0 panics. The "unbuffered" workloads use
//! capacity 1, the closest it has (the sender may run one message ahead).

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, Mutex, Notify};

use crate::{
    CHAN_CAP, CHAN_MSGS, CTX_TOKENS, ECHO_MSG, ECHO_ROUNDS, MPMC_SIDES, MUTEX_OPS,
    MUTEX_PER_WORKER, MUTEX_WORKERS, SELECT_MSGS, SPAWNS, TIMERS, TIMER_SLEEP, WG_TASKS, YIELDS,
};

/// tokio's stand-in for capacity 0 (see the module doc).
const RENDEZVOUS_CAP: usize = 1;

/// Runs `iteration` `iters` times in one spawned task (on a worker thread of the
/// multi-thread runtime, on the `block_on` thread of the current-thread one) and returns how
/// long the loop took.
fn timed<F, Fut>(rt: &Runtime, iters: u64, iteration: F) -> Duration
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            for _ in 0..iters {
                iteration().await;
            }
            start.elapsed()
        })
        .await
        .unwrap()
    })
}

pub fn ctxswitch(rt: &Runtime, iters: u64) -> Duration {
    timed(rt, iters, || async {
        let (tx, mut rx) = mpsc::channel::<()>(RENDEZVOUS_CAP);
        let sender = tokio::spawn(async move {
            for _ in 0..CTX_TOKENS {
                tx.send(()).await.expect("receiver alive");
            }
        });
        let mut got = 0u64;
        while rx.recv().await.is_some() {
            got += 1;
        }
        sender.await.unwrap();
        assert_eq!(got, CTX_TOKENS);
    })
}

pub fn yield_now(rt: &Runtime, iters: u64) -> Duration {
    timed(rt, iters, || async {
        for _ in 0..YIELDS {
            tokio::task::yield_now().await;
        }
    })
}

pub fn spawn_join(rt: &Runtime, iters: u64) -> Duration {
    timed(rt, iters, || async {
        let handles: Vec<_> = (0..SPAWNS)
            .map(|i| tokio::spawn(async move { i + 1 }))
            .collect();
        let mut sum = 0u64;
        for h in handles {
            sum += h.await.unwrap();
        }
        assert_eq!(sum, SPAWNS * (SPAWNS + 1) / 2);
    })
}

async fn one_to_one(cap: usize) {
    let (tx, mut rx) = mpsc::channel::<u64>(cap);
    let producer = tokio::spawn(async move {
        for i in 0..CHAN_MSGS {
            tx.send(i).await.expect("consumer alive");
        }
    });
    let mut sum = 0u64;
    while let Some(v) = rx.recv().await {
        sum += v;
    }
    producer.await.unwrap();
    assert_eq!(sum, CHAN_MSGS * (CHAN_MSGS - 1) / 2);
}

async fn many_to_many(cap: usize) {
    let (tx, rx) = async_channel::bounded::<u64>(cap);
    let per = CHAN_MSGS / MPMC_SIDES;
    let producers: Vec<_> = (0..MPMC_SIDES)
        .map(|p| {
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in p * per..(p + 1) * per {
                    tx.send(i).await.expect("consumers alive");
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..MPMC_SIDES)
        .map(|_| {
            let rx = rx.clone();
            tokio::spawn(async move {
                let mut sum = 0u64;
                while let Ok(v) = rx.recv().await {
                    sum += v;
                }
                sum
            })
        })
        .collect();
    drop(rx);
    for p in producers {
        p.await.unwrap();
    }
    let mut sum = 0u64;
    for c in consumers {
        sum += c.await.unwrap();
    }
    assert_eq!(sum, CHAN_MSGS * (CHAN_MSGS - 1) / 2);
}

pub fn chan_buf_1x1(rt: &Runtime, iters: u64) -> Duration {
    timed(rt, iters, || one_to_one(CHAN_CAP))
}

pub fn chan_buf_4x4(rt: &Runtime, iters: u64) -> Duration {
    timed(rt, iters, || many_to_many(CHAN_CAP))
}

pub fn chan_unbuf_1x1(rt: &Runtime, iters: u64) -> Duration {
    timed(rt, iters, || one_to_one(RENDEZVOUS_CAP))
}

pub fn chan_unbuf_4x4(rt: &Runtime, iters: u64) -> Duration {
    timed(rt, iters, || many_to_many(RENDEZVOUS_CAP))
}

/// As gort's: `k` producer tasks on their own channels; the timing task selects.
fn select_setup(k: u64) -> (Vec<mpsc::Sender<u64>>, Vec<mpsc::Receiver<u64>>) {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..k).map(|_| mpsc::channel::<u64>(CHAN_CAP)).unzip();
    for tx in &txs {
        let tx = tx.clone();
        drop(tokio::spawn(async move {
            for i in 0..SELECT_MSGS / k {
                tx.send(i).await.expect("selector alive");
            }
        }));
    }
    (txs, rxs)
}

pub fn select_2(rt: &Runtime, iters: u64) -> Duration {
    timed(rt, iters, || async {
        let (_txs, mut r) = select_setup(2);
        let [r0, r1] = &mut r[..] else { unreachable!() };
        let mut sum = 0u64;
        for _ in 0..SELECT_MSGS {
            sum += tokio::select! {
                Some(v) = r0.recv() => v,
                Some(v) = r1.recv() => v,
            };
        }
        assert_eq!(sum, 2 * (SELECT_MSGS / 2) * (SELECT_MSGS / 2 - 1) / 2);
    })
}

pub fn select_8(rt: &Runtime, iters: u64) -> Duration {
    timed(rt, iters, || async {
        let (_txs, mut r) = select_setup(8);
        let [r0, r1, r2, r3, r4, r5, r6, r7] = &mut r[..] else {
            unreachable!()
        };
        let mut sum = 0u64;
        for _ in 0..SELECT_MSGS {
            sum += tokio::select! {
                Some(v) = r0.recv() => v,
                Some(v) = r1.recv() => v,
                Some(v) = r2.recv() => v,
                Some(v) = r3.recv() => v,
                Some(v) = r4.recv() => v,
                Some(v) = r5.recv() => v,
                Some(v) = r6.recv() => v,
                Some(v) = r7.recv() => v,
            };
        }
        assert_eq!(sum, 8 * (SELECT_MSGS / 8) * (SELECT_MSGS / 8 - 1) / 2);
    })
}

pub fn mutex_uncontended(rt: &Runtime, iters: u64) -> Duration {
    timed(rt, iters, || async {
        let m = Mutex::new(0u64);
        for _ in 0..MUTEX_OPS {
            *black_box(&m).lock().await += 1;
        }
        assert_eq!(m.into_inner(), MUTEX_OPS);
    })
}

pub fn mutex_contended_8(rt: &Runtime, iters: u64) -> Duration {
    timed(rt, iters, || async {
        let m = Arc::new(Mutex::new(0u64));
        let workers: Vec<_> = (0..MUTEX_WORKERS)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move {
                    for _ in 0..MUTEX_PER_WORKER {
                        *m.lock().await += 1;
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        assert_eq!(*m.lock().await, MUTEX_WORKERS * MUTEX_PER_WORKER);
    })
}

/// tokio has no wait group: a counter of tasks still running, and a `Notify` the last one
/// signals (`notify_one` keeps a permit if the waiter is not waiting yet, so none is lost).
pub fn waitgroup(rt: &Runtime, iters: u64) -> Duration {
    timed(rt, iters, || async {
        let wg = Arc::new((AtomicU64::new(WG_TASKS), Notify::new()));
        for _ in 0..WG_TASKS {
            let wg = wg.clone();
            drop(tokio::spawn(async move {
                if wg.0.fetch_sub(1, Ordering::AcqRel) == 1 {
                    wg.1.notify_one();
                }
            }));
        }
        wg.1.notified().await;
        assert_eq!(wg.0.load(Ordering::Acquire), 0);
    })
}

pub fn timers_10k(rt: &Runtime, iters: u64) -> Duration {
    timed(rt, iters, || async {
        let sleepers: Vec<_> = (0..TIMERS)
            .map(|_| tokio::spawn(tokio::time::sleep(TIMER_SLEEP)))
            .collect();
        for s in sleepers {
            s.await.unwrap();
        }
    })
}

/// As gort's: a client (the timing task) and an echo-server task, with TCP_NODELAY.
pub fn tcp_echo(rt: &Runtime, iters: u64) -> Duration {
    timed(rt, iters, || async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            conn.set_nodelay(true).unwrap();
            let mut buf = [0u8; ECHO_MSG];
            while conn.read_exact(&mut buf).await.is_ok() {
                conn.write_all(&buf).await.expect("echo");
            }
        });
        let mut conn = TcpStream::connect(addr).await.expect("connect");
        conn.set_nodelay(true).unwrap();
        let (msg, mut buf) = ([7u8; ECHO_MSG], [0u8; ECHO_MSG]);
        for _ in 0..ECHO_ROUNDS {
            conn.write_all(&msg).await.expect("write");
            conn.read_exact(&mut buf).await.expect("read");
        }
        assert_eq!(buf, msg);
        drop(conn);
        server.await.unwrap();
    })
}
