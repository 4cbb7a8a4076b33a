//! OS threads' side of each workload: `std::thread` (one thread per task), crossbeam-channel
//! (bounded, with a real rendezvous at capacity 0, and `select!`), `std::sync::Mutex`,
//! crossbeam-utils' `WaitGroup`, `std::thread::sleep`, blocking `std::net` sockets.
//!
//! "Processors" for threads: when `GORT_BENCH_PROCS` is below the CPUs this process may use,
//! the timing thread pins itself to the first `procs` of them with `sched_setaffinity`, and
//! every thread it starts inherits that mask (Linux copies it on `clone`), so the workload
//! runs on `procs` CPUs as the runtimes' workers do.

use std::hint::black_box;
use std::io::{Read, Write};
use std::mem::{size_of, MaybeUninit};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver, Sender};
use crossbeam_utils::sync::WaitGroup;

use crate::{
    CHAN_CAP, CHAN_MSGS, CTX_TOKENS, ECHO_MSG, ECHO_ROUNDS, MPMC_SIDES, MUTEX_OPS,
    MUTEX_PER_WORKER, MUTEX_WORKERS, SELECT_MSGS, SPAWNS, TIMERS, TIMER_SLEEP, WG_TASKS, YIELDS,
};

/// Stack of the threads started by the workloads: they run tiny closures, and 10,000 of them
/// sleep at once in `timers_10k`.
const STACK: usize = 64 * 1024;

/// Starts a worker thread (inheriting the timing thread's CPU mask).
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .expect("thread spawn")
}

/// The CPU mask of the first `procs` CPUs this process may use, or `None` if `procs` covers
/// them all (no pinning).
fn cpu_mask() -> Option<&'static libc::cpu_set_t> {
    static MASK: OnceLock<Option<libc::cpu_set_t>> = OnceLock::new();
    MASK.get_or_init(|| {
        let mut allowed = MaybeUninit::<libc::cpu_set_t>::zeroed();
        // SAFETY: `allowed` is a zeroed (valid) cpu_set_t of the size passed; pid 0 is the
        // calling thread.
        let rc = unsafe {
            libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), allowed.as_mut_ptr())
        };
        assert_eq!(
            rc,
            0,
            "sched_getaffinity: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: zeroed and then filled by the kernel: initialised.
        let allowed = unsafe { allowed.assume_init() };
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `c` is below CPU_SETSIZE, the number of bits in a cpu_set_t.
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &allowed) })
            .collect();
        let procs = crate::procs();
        if procs >= cpus.len() {
            return None;
        }
        // SAFETY: an all-zero cpu_set_t is the empty set.
        let mut mask: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &c in &cpus[..procs] {
            // SAFETY: `c` came from the bits of a cpu_set_t, so it is below CPU_SETSIZE.
            unsafe { libc::CPU_SET(c, &mut mask) };
        }
        Some(mask)
    })
    .as_ref()
}

/// Runs `iteration` `iters` times on a fresh thread, pinned to `procs` CPUs, and returns how
/// long the loop took.
fn timed(iters: u64, iteration: fn()) -> Duration {
    spawn(move || {
        if let Some(mask) = cpu_mask() {
            // SAFETY: `mask` is a valid cpu_set_t of the size passed; pid 0 is this thread.
            let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), mask) };
            assert_eq!(
                rc,
                0,
                "sched_setaffinity: {}",
                std::io::Error::last_os_error()
            );
        }
        let start = Instant::now();
        for _ in 0..iters {
            iteration();
        }
        start.elapsed()
    })
    .join()
    .unwrap()
}

pub fn ctxswitch(iters: u64) -> Duration {
    timed(iters, || {
        let (tx, rx) = bounded::<()>(0);
        let sender = spawn(move || {
            for _ in 0..CTX_TOKENS {
                tx.send(()).expect("receiver alive");
            }
        });
        let got = rx.iter().count() as u64;
        sender.join().unwrap();
        assert_eq!(got, CTX_TOKENS);
    })
}

pub fn yield_now(iters: u64) -> Duration {
    timed(iters, || {
        for _ in 0..YIELDS {
            std::thread::yield_now();
        }
    })
}

pub fn spawn_join(iters: u64) -> Duration {
    timed(iters, || {
        let handles: Vec<_> = (0..SPAWNS).map(|i| spawn(move || i + 1)).collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, SPAWNS * (SPAWNS + 1) / 2);
    })
}

fn one_to_one(cap: usize) {
    let (tx, rx) = bounded::<u64>(cap);
    let producer = spawn(move || {
        for i in 0..CHAN_MSGS {
            tx.send(i).expect("consumer alive");
        }
    });
    let sum: u64 = rx.iter().sum();
    producer.join().unwrap();
    assert_eq!(sum, CHAN_MSGS * (CHAN_MSGS - 1) / 2);
}

fn many_to_many(cap: usize) {
    let (tx, rx) = bounded::<u64>(cap);
    let per = CHAN_MSGS / MPMC_SIDES;
    let producers: Vec<_> = (0..MPMC_SIDES)
        .map(|p| {
            let tx = tx.clone();
            spawn(move || {
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
            spawn(move || rx.iter().sum::<u64>())
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

/// As gort's: `k` producer threads on their own channels; the timing thread selects.
fn select_setup(k: u64) -> (Vec<Sender<u64>>, Vec<Receiver<u64>>) {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..k).map(|_| bounded::<u64>(CHAN_CAP)).unzip();
    for tx in &txs {
        let tx = tx.clone();
        drop(spawn(move || {
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
            sum += select! {
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
            sum += select! {
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
            *black_box(&m).lock().unwrap() += 1;
        }
        assert_eq!(m.into_inner().unwrap(), MUTEX_OPS);
    })
}

pub fn mutex_contended_8(iters: u64) -> Duration {
    timed(iters, || {
        let m = Arc::new(Mutex::new(0u64));
        let workers: Vec<_> = (0..MUTEX_WORKERS)
            .map(|_| {
                let m = m.clone();
                spawn(move || {
                    for _ in 0..MUTEX_PER_WORKER {
                        *m.lock().unwrap() += 1;
                    }
                })
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
            drop(spawn(move || drop(wg))); // detached; dropping its clone is `done`
        }
        wg.wait();
    })
}

pub fn timers_10k(iters: u64) -> Duration {
    timed(iters, || {
        let sleepers: Vec<_> = (0..TIMERS)
            .map(|_| spawn(|| std::thread::sleep(TIMER_SLEEP)))
            .collect();
        for s in sleepers {
            s.join().unwrap();
        }
    })
}

/// As gort's: a client (the timing thread) and an echo-server thread, std's blocking sockets
/// with TCP_NODELAY.
pub fn tcp_echo(iters: u64) -> Duration {
    timed(iters, || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        let server = spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            conn.set_nodelay(true).unwrap();
            let mut buf = [0u8; ECHO_MSG];
            while conn.read_exact(&mut buf).is_ok() {
                conn.write_all(&buf).expect("echo");
            }
        });
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
