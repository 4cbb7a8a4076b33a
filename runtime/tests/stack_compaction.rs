//! Parked-stack compaction, the `unsafe` opt-in (`gort::enable_stack_compaction`;
//! `sched/src/compact.rs`): goroutines parked in waits whose state is off their stacks (a bare
//! park, a sleep, a join, a socket read, a channel send or receive, a `select!`, a lock, a wait
//! group) are compacted and come back byte for byte; goroutines whose stacks other threads use
//! while they wait (in a `gort::scope`, in the blocking pool) are never compacted; and compaction racing wake-ups loses nothing, at
//! maxprocs 1, 2 and 4. CI also runs this file in a release build, whose switch frames differ
//! (`compact.rs`, `MARGIN`): a margin too small would lose the registers the switch saved, and
//! the goroutine would crash on its first resume.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use gort::Unparker;

/// Turns compaction on before this binary's runtime starts.
fn compaction() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: these tests lend a goroutine's stack to other goroutines only inside
        // `gort::scope`, which holds a `StackLent`; no test hands a local to another thread
        // across a park otherwise.
        unsafe { gort::enable_stack_compaction() }.expect("before the runtime starts");
    });
}

/// Words of recognisable data a goroutine keeps in its frame across its park.
const WORDS: usize = 64;

fn frame(seed: u64) -> [u64; WORDS] {
    std::array::from_fn(|i| seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64 + 1))
}

/// Checks a frame made by `frame(seed)` and returns its sum.
fn check(f: &[u64; WORDS], seed: u64) -> u64 {
    assert_eq!(
        f,
        &frame(seed),
        "goroutine {seed}: its stack came back changed"
    );
    f.iter().fold(0u64, |a, w| a.wrapping_add(*w))
}

fn sum_of(seeds: impl Iterator<Item = u64>) -> u64 {
    seeds.fold(0u64, |a, s| a.wrapping_add(check(&frame(s), s)))
}

/// Runs compaction passes (as the compactor thread would, without its wait) until at least
/// `n` goroutines are compacted.
fn compact_until(n: usize) {
    let start = Instant::now();
    while gort::stats().stacks_compacted < n {
        assert!(
            start.elapsed() < common::DEADLINE / 2,
            "only {} of {n} stacks compacted",
            gort::stats().stacks_compacted
        );
        gort::compact_parked_stacks(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A latch goroutines park at (a bare park, on an `Unparker` kept on the heap).
#[derive(Default)]
struct Latch {
    open: AtomicBool,
    waiters: Mutex<Vec<Unparker>>,
}

impl Latch {
    fn wait(&self) {
        self.waiters.lock().unwrap().push(gort::unparker());
        while !self.open.load(Ordering::Acquire) {
            gort::park();
        }
    }

    fn open(&self) {
        self.open.store(true, Ordering::Release);
        for u in self.waiters.lock().unwrap().drain(..) {
            u.unpark();
        }
    }
}

#[test]
fn parked_stacks_come_back_intact() {
    compaction();
    common::each_procs("parked_stacks_come_back_intact", |_| {
        const EACH: u64 = 200;
        const CONNS: u64 = 20;
        let before = gort::stats();
        let latch = Arc::new(Latch::default());
        let mut handles = Vec::new();
        // A bare park.
        for seed in 0..EACH {
            let latch = latch.clone();
            handles.push(gort::spawn(move || {
                let f = frame(seed);
                latch.wait();
                check(std::hint::black_box(&f), seed)
            }));
        }
        // A sleep, long enough to be compacted before it ends.
        for seed in EACH..2 * EACH {
            handles.push(gort::spawn(move || {
                let f = frame(seed);
                gort::time::sleep(Duration::from_secs(2));
                check(std::hint::black_box(&f), seed)
            }));
        }
        // A join (of a goroutine parked at the latch: both are compacted).
        for seed in 2 * EACH..3 * EACH {
            let latch = latch.clone();
            handles.push(gort::spawn(move || {
                let f = frame(seed);
                let inner = gort::spawn(move || latch.wait());
                inner.join().unwrap();
                check(std::hint::black_box(&f), seed)
            }));
        }
        // A channel receive and a channel send (their waiters are boxed in this mode).
        let (to_receivers, receivers_rx) = gort::chan::<u64>(0);
        for seed in 4 * EACH..5 * EACH {
            let rx = receivers_rx.clone();
            handles.push(gort::spawn(move || {
                let f = frame(seed);
                let v = rx.recv().unwrap();
                check(std::hint::black_box(&f), seed).wrapping_add(v)
            }));
        }
        let (senders_tx, from_senders) = gort::chan::<u64>(0);
        for seed in 5 * EACH..6 * EACH {
            let tx = senders_tx.clone();
            handles.push(gort::spawn(move || {
                let f = frame(seed);
                tx.send(seed).unwrap();
                check(std::hint::black_box(&f), seed)
            }));
        }
        // A lock and a wait group (their waiters are boxed in this mode too).
        let lock = Arc::new(gort::sync::Mutex::new(0u64));
        let held = lock.lock();
        let wg = gort::sync::WaitGroup::new();
        wg.add(1);
        for seed in 6 * EACH..7 * EACH {
            let (lock, wg) = (lock.clone(), wg.clone());
            handles.push(gort::spawn(move || {
                let f = frame(seed);
                if seed % 2 == 0 {
                    *lock.lock() += 1;
                } else {
                    wg.wait();
                }
                check(std::hint::black_box(&f), seed)
            }));
        }
        // A `select!` with cases (its waiter and its cases' slots are boxed in this mode).
        let (stop_tx, stop_rx) = gort::chan::<u64>(0);
        let (_never_tx, never_rx) = gort::chan::<()>(0);
        for seed in 7 * EACH..8 * EACH {
            let (stop_rx, never_rx) = (stop_rx.clone(), never_rx.clone());
            handles.push(gort::spawn(move || {
                let f = frame(seed);
                let got = gort::select! {
                    recv(stop_rx) -> v => v.unwrap(),
                    recv(never_rx) -> _ => panic!("nothing is sent on this channel"),
                };
                check(std::hint::black_box(&f), seed).wrapping_add(got)
            }));
        }
        // A socket read: each connection's goroutine parks in the netpoller.
        let listener = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        for seed in 3 * EACH..3 * EACH + CONNS {
            clients.push(std::net::TcpStream::connect(addr).unwrap());
            let (conn, _) = listener.accept().unwrap();
            handles.push(gort::spawn(move || {
                let f = frame(seed);
                let mut conn = conn;
                let mut word = [0u8; 8];
                conn.read_exact(&mut word).unwrap();
                assert_eq!(u64::from_le_bytes(word), seed);
                conn.write_all(&word).unwrap();
                check(std::hint::black_box(&f), seed)
            }));
        }
        let parked = (8 * EACH + CONNS) as usize; // the join's inner goroutines too
        compact_until(parked);
        let compacted = gort::stats();
        assert!(compacted.stack_compactions >= before.stack_compactions + parked as u64);
        assert!(compacted.compacted_stack_bytes > 0);
        latch.open();
        drop(held);
        wg.done();
        for v in 0..EACH {
            stop_tx.send(v).unwrap();
        }
        for v in 0..EACH {
            to_receivers.send(v).unwrap();
        }
        let sent: u64 = (0..EACH).map(|_| from_senders.recv().unwrap()).sum();
        assert_eq!(sent, (5 * EACH..6 * EACH).sum::<u64>());
        for (seed, client) in clients.iter_mut().enumerate() {
            let seed = 3 * EACH + seed as u64;
            client.write_all(&seed.to_le_bytes()).unwrap();
            let mut back = [0u8; 8];
            client.read_exact(&mut back).unwrap();
            assert_eq!(u64::from_le_bytes(back), seed);
        }
        let got = handles
            .into_iter()
            .fold(0u64, |a, h| a.wrapping_add(h.join().unwrap()));
        let received = 2 * (0..EACH).sum::<u64>(); // by the receivers, then the selects
        let seeds = (0..3 * EACH)
            .chain(4 * EACH..8 * EACH)
            .chain(3 * EACH..3 * EACH + CONNS);
        assert_eq!(got, sum_of(seeds).wrapping_add(received));
        assert_eq!(*lock.lock(), EACH / 2);
        let after = gort::stats();
        assert!(after.stack_restores >= before.stack_restores + parked as u64);
        assert_eq!(
            after.stacks_compacted, 0,
            "a compacted goroutine never ran again"
        );
    });
}

#[test]
fn stacks_other_threads_use_stay_resident() {
    compaction();
    common::each_procs("stacks_other_threads_use_stay_resident", |_| {
        const EACH: u64 = 50;
        let mut handles = Vec::new();
        // A call in the blocking pool that reads the caller's local on the pool's thread.
        const POOLED: u64 = 8;
        let release = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        for seed in 0..POOLED {
            let release = release.clone();
            handles.push(gort::spawn(move || {
                let f = frame(seed);
                gort::blocking(|| {
                    let (open, cv) = &*release;
                    let _open = cv.wait_while(open.lock().unwrap(), |o| !*o).unwrap();
                    check(std::hint::black_box(&f), seed)
                })
                .unwrap()
            }));
        }
        // A scope whose body parks while its goroutine reads the body's local.
        let latch = Arc::new(Latch::default());
        let children = EACH as usize;
        for seed in 2 * EACH..3 * EACH {
            let latch = latch.clone();
            handles.push(gort::spawn(move || {
                let f = frame(seed);
                let child_latch = Latch::default();
                let sum = AtomicUsize::new(0);
                gort::scope(|s| {
                    s.spawn(|| {
                        child_latch.wait(); // a bare park: this child may be compacted
                        let got = check(std::hint::black_box(&f), seed);
                        sum.store(got as usize, Ordering::Relaxed);
                    });
                    latch.wait(); // a bare park, but inside the scope: not compacted
                    child_latch.open();
                });
                sum.load(Ordering::Relaxed) as u64
            }));
        }
        // Everyone parked: the blocking-pool callers, scope bodies and their children. Only the
        // children may be compacted.
        let start = Instant::now();
        while waiting_in_frames() < POOLED as usize + 2 * children
            || gort::stats().stacks_compacted < children
        {
            assert!(start.elapsed() < common::DEADLINE / 2, "not all parked");
            gort::compact_parked_stacks(Duration::ZERO);
            std::thread::sleep(Duration::from_millis(1));
        }
        for _ in 0..10 {
            gort::compact_parked_stacks(Duration::ZERO);
        }
        assert_eq!(gort::stats().stacks_compacted, children);
        *release.0.lock().unwrap() = true;
        release.1.notify_all();
        latch.open();
        let got = handles
            .into_iter()
            .fold(0u64, |a, h| a.wrapping_add(h.join().unwrap()));
        assert_eq!(got, sum_of((0..POOLED).chain(2 * EACH..3 * EACH)));
    });
}

/// Goroutines parked in a blocking-pool call or a bare park (the scope bodies and their
/// goroutines here).
fn waiting_in_frames() -> usize {
    use gort::debug::{State, WaitReason};
    gort::debug::goroutines()
        .iter()
        .filter(|g| {
            matches!(
                g.state,
                State::Waiting {
                    reason: WaitReason::Blocking | WaitReason::Park,
                    ..
                }
            )
        })
        .count()
}

#[test]
fn compaction_racing_wake_ups_loses_nothing() {
    compaction();
    common::each_procs("compaction_racing_wake_ups_loses_nothing", |_| {
        const PAIRS: u64 = 16;
        const ROUNDS: u64 = 2_000;
        const SLEEPERS: u64 = 16;
        const NAPS: u64 = 200;
        let stop = Arc::new(AtomicBool::new(false));
        let hammer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut passes = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    gort::compact_parked_stacks(Duration::ZERO);
                    passes += 1;
                }
                passes
            })
        };
        let before = gort::stats();
        let mut handles = Vec::new();
        // Ping-pong pairs on bare park/unpark: each wake-up races the hammer's claim.
        for pair in 0..PAIRS {
            let slots: Arc<[std::sync::OnceLock<Unparker>; 2]> = Arc::default();
            let turn = Arc::new(AtomicUsize::new(0));
            for me in 0..2usize {
                let (slots, turn) = (slots.clone(), turn.clone());
                handles.push(gort::spawn(move || {
                    let seed = pair * 2 + me as u64;
                    let f = frame(seed);
                    slots[me].set(gort::unparker()).ok().unwrap();
                    let other = loop {
                        if let Some(u) = slots[1 - me].get() {
                            break u.clone();
                        }
                        gort::yield_now();
                    };
                    let mut total = 0u64;
                    for round in 0..ROUNDS as usize {
                        while turn.load(Ordering::Acquire) != 2 * round + me {
                            gort::park();
                        }
                        total = total.wrapping_add(check(std::hint::black_box(&f), seed));
                        turn.store(2 * round + me + 1, Ordering::Release);
                        other.unpark();
                    }
                    total
                }));
            }
        }
        // Channel ping-pong, one side in a `select!`: a sender's value and a receiver's slot
        // are boxed; their wake-ups race it too.
        for pair in 0..PAIRS {
            let (ping_tx, ping_rx) = gort::chan::<u64>(0);
            let (pong_tx, pong_rx) = gort::chan::<u64>(0);
            let seed = 3 * PAIRS + SLEEPERS + pair;
            handles.push(gort::spawn(move || {
                let f = frame(seed);
                let mut total = 0u64;
                for round in 0..ROUNDS {
                    ping_tx.send(round).unwrap();
                    assert_eq!(pong_rx.recv().unwrap(), round);
                    total = total.wrapping_add(check(std::hint::black_box(&f), seed));
                }
                total
            }));
            handles.push(gort::spawn(move || {
                let f = frame(seed);
                let (_never_tx, never_rx) = gort::chan::<u64>(0);
                let mut total = 0u64;
                for round in 0..ROUNDS {
                    // A `select!`: its boxed waiter and slots race it too.
                    let got = gort::select! {
                        recv(ping_rx) -> v => v.unwrap(),
                        recv(never_rx) -> _ => unreachable!("nothing is sent on it"),
                    };
                    assert_eq!(got, round);
                    pong_tx.send(round).unwrap();
                    total = total.wrapping_add(check(std::hint::black_box(&f), seed));
                }
                total
            }));
        }
        // A contended lock (held across a yield, so the others park on it): its waiters are
        // boxed, and their hand-offs race it too.
        const LOCKERS: u64 = 8;
        const LOCKS: u64 = 500;
        let counter = Arc::new(gort::sync::Mutex::new(0u64));
        for l in 0..LOCKERS {
            let counter = counter.clone();
            handles.push(gort::spawn(move || {
                let seed = 4 * PAIRS + SLEEPERS + l;
                let f = frame(seed);
                let mut total = 0u64;
                for _ in 0..LOCKS {
                    let mut n = counter.lock();
                    gort::yield_now();
                    *n += 1;
                    drop(n);
                    total = total.wrapping_add(check(std::hint::black_box(&f), seed));
                }
                total
            }));
        }
        // Short sleeps: timer wake-ups race it too.
        for s in 0..SLEEPERS {
            handles.push(gort::spawn(move || {
                let seed = 2 * PAIRS + s;
                let f = frame(seed);
                let mut total = 0u64;
                for _ in 0..NAPS {
                    gort::time::sleep(Duration::from_micros(50));
                    total = total.wrapping_add(check(std::hint::black_box(&f), seed));
                }
                total
            }));
        }
        let got = handles
            .into_iter()
            .fold(0u64, |a, h| a.wrapping_add(h.join().unwrap()));
        stop.store(true, Ordering::Relaxed);
        let passes = hammer.join().unwrap();
        let pairs = sum_of(0..2 * PAIRS).wrapping_mul(ROUNDS);
        let sleepers = sum_of(2 * PAIRS..2 * PAIRS + SLEEPERS).wrapping_mul(NAPS);
        let chans = sum_of(3 * PAIRS + SLEEPERS..4 * PAIRS + SLEEPERS)
            .wrapping_mul(ROUNDS)
            .wrapping_mul(2);
        let lockers =
            sum_of(4 * PAIRS + SLEEPERS..4 * PAIRS + SLEEPERS + LOCKERS).wrapping_mul(LOCKS);
        assert_eq!(
            got,
            pairs
                .wrapping_add(sleepers)
                .wrapping_add(chans)
                .wrapping_add(lockers)
        );
        assert_eq!(*counter.lock(), LOCKERS * LOCKS);
        let after = gort::stats();
        assert!(passes > 0);
        assert_eq!(after.stacks_compacted, 0);
        assert_eq!(
            after.stack_compactions - before.stack_compactions,
            after.stack_restores - before.stack_restores,
            "every compacted goroutine ran again"
        );
        println!(
            "{} passes, {} compactions",
            passes,
            after.stack_compactions - before.stack_compactions
        );
    });
}

#[test]
fn the_mode_is_fixed_once_the_runtime_runs() {
    compaction();
    common::each_procs_at("the_mode_is_fixed_once_the_runtime_runs", &[1], |_| {
        gort::spawn(|| ()).join().unwrap();
        // SAFETY: refused, so it changes nothing.
        let again = unsafe { gort::enable_stack_compaction() };
        assert_eq!(again, Err(gort::RuntimeStarted));
        // A guard off a goroutine does nothing.
        drop(gort::lend_stack());
    });
}
