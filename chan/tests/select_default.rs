//! A `select` with `default` takes `default` only if no case was ready at one instant (Go
//! locks every channel of the select before it looks at any case).
//!
//! Provenance: `nonblock_select_race` and `nonblock_select_race2` port Go's
//! `TestNonblockSelectRace` and `TestNonblockSelectRace2` (src/runtime/chan_test.go), written
//! fresh; crossbeam-channel's `linearizable_default` test checks the same property. The other
//! scenarios are the outside review's reproducer: a long-lived selector, eight cases (six never
//! ready), a spin of `i % 64` to slide the race window, and the same through the dynamic
//! `Select`.
//!
//! In every round one of `c1`/`c2` holds a value (or `c2` is closed) at every moment from
//! before the selector starts until the main side takes `c1`'s value, so `default` is never
//! right. A select that looks at its cases one at a time can see `c2` empty (before the send)
//! and then `c1` empty (after the take) and wrongly fall through.
//!
//! Each scenario runs at GORT_MAXPROCS 1, 2 and 4 (or only at `GORT_MAXPROCS` if set; the race
//! needs at least 2), bounded in time. `ROUNDS` is Go's count.

mod common;

use chan::{chan, select, Receiver, Select, Sender, TryRecvError};
use common::each_procs_in_goroutine as at_each_maxprocs;

/// Rounds per scenario and processor count (Go's `n` for these tests).
const ROUNDS: usize = 100_000;

/// Go's TestNonblockSelectRace: `c1` is full when the selector goroutine starts; the main side
/// fills `c2`, then takes `c1`'s value if it is still there.
#[test]
fn nonblock_select_race() {
    at_each_maxprocs("nonblock_select_race", |_| {
        let (done_tx, done_rx) = chan::<bool>(1);
        for _ in 0..ROUNDS {
            let (t1, r1) = chan::<i32>(1);
            let (t2, r2) = chan::<i32>(1);
            t1.send(1).unwrap();
            let r1_main = r1.clone();
            let done = done_tx.clone();
            drop(sched::spawn(move || {
                let took_a_case = select! {
                    recv(r1) -> _v => true,
                    recv(r2) -> _v => true,
                    default => false,
                };
                done.send(took_a_case).unwrap();
            }));
            // Fails (harmlessly) if the selector already finished and dropped its receiver.
            let _ = t2.send(1);
            select! {
                recv(r1_main) -> _v => (),
                default => (),
            }
            assert!(
                done_rx.recv().unwrap(),
                "select took default: no channel ready"
            );
        }
    });
}

/// Go's TestNonblockSelectRace2: as above, but `c2` is unbuffered and gets closed instead of
/// filled (a closed channel is always ready to receive).
#[test]
fn nonblock_select_race2() {
    at_each_maxprocs("nonblock_select_race2", |_| {
        let (done_tx, done_rx) = chan::<bool>(1);
        for _ in 0..ROUNDS {
            let (t1, r1) = chan::<i32>(1);
            let (t2, r2) = chan::<i32>(0);
            t1.send(1).unwrap();
            let r1_main = r1.clone();
            let done = done_tx.clone();
            drop(sched::spawn(move || {
                let took_a_case = select! {
                    recv(r1) -> _v => true,
                    recv(r2) -> _v => true,
                    default => false,
                };
                done.send(took_a_case).unwrap();
            }));
            t2.close().unwrap();
            select! {
                recv(r1_main) -> _v => (),
                default => (),
            }
            assert!(
                done_rx.recv().unwrap(),
                "select took default: no channel ready"
            );
            drop(t1);
        }
    });
}

/// What a round hands the long-lived selector: the two channels that take turns being ready.
type Pair = (Receiver<u32>, Receiver<u32>);

/// Runs the reviewer's reproducer: a long-lived selector goroutine takes `(c1, c2)` each round
/// and runs `select_once` on them at once; the main side spins `i % 64` (sliding its steps
/// across the selector's pass over the cases), fills `c2`, takes `c1`. Both sides wait for each
/// other by polling and yielding, never by parking, so that with two or more processors they
/// stay on different threads and really race. Returns the number of rounds in which the
/// selector took `default` (must be 0).
fn reproducer(select_once: fn(&Pair, &NeverReady) -> bool) -> usize {
    let (pairs_tx, pairs_rx) = chan::<Pair>(1);
    let (res_tx, res_rx) = chan::<bool>(1);
    let selector = sched::spawn(move || {
        let never = NeverReady::new();
        while let Some(pair) = poll(|| pairs_rx.try_recv()) {
            res_tx.send(select_once(&pair, &never)).unwrap();
        }
    });
    let mut defaults = 0;
    for i in 0..ROUNDS {
        let (t1, r1) = chan::<u32>(1);
        let (t2, r2) = chan::<u32>(1);
        t1.send(1).unwrap();
        pairs_tx.try_send((r1.clone(), r2)).unwrap();
        for _ in 0..i % 64 {
            std::hint::spin_loop();
        }
        // Fails (harmlessly) if the selector already finished and dropped its receiver.
        let _ = t2.send(1);
        let _ = r1.try_recv();
        if !poll(|| res_rx.try_recv()).expect("selector alive") {
            defaults += 1;
        }
    }
    drop(pairs_tx);
    selector.join().unwrap();
    defaults
}

/// Polls `try_recv` until it gives a value (`Some`) or reports the channel closed (`None`),
/// yielding in between.
fn poll<T>(mut try_recv: impl FnMut() -> Result<T, TryRecvError>) -> Option<T> {
    loop {
        match try_recv() {
            Ok(v) => return Some(v),
            Err(TryRecvError::Closed) => return None,
            Err(TryRecvError::Empty) => sched::yield_now(),
        }
    }
}

/// Cases that can never fire, for the eight-case selects: a nil channel, `never()`, an empty
/// channel whose sender lives, and a send on a full channel nobody receives from.
struct NeverReady {
    never: Receiver<u32>,
    _empty_tx: Sender<u32>,
    empty_rx: Receiver<u32>,
    full_tx: Sender<u32>,
    _full_rx: Receiver<u32>,
}

impl NeverReady {
    fn new() -> NeverReady {
        let (_empty_tx, empty_rx) = chan(0);
        let (full_tx, _full_rx) = chan(1);
        full_tx.send(0).unwrap();
        NeverReady {
            never: Receiver::never(),
            _empty_tx,
            empty_rx,
            full_tx,
            _full_rx,
        }
    }
}

#[test]
fn nonblock_select_race_8_cases() {
    at_each_maxprocs("nonblock_select_race_8_cases", |_| {
        let defaults = reproducer(|(r1, r2), n| {
            let none: Option<&Receiver<u32>> = None;
            select! {
                recv(r1) -> _v => true,
                recv(n.never) -> _v => unreachable!("nil channel fired"),
                recv(n.empty_rx) -> _v => unreachable!("empty channel fired"),
                send(n.full_tx, 9) -> _r => unreachable!("full channel took a send"),
                recv(r2) -> _v => true,
                recv(none) -> _v => unreachable!("nil channel fired"),
                recv(n.empty_rx) -> _v => unreachable!("empty channel fired"),
                send(n.full_tx, 8) -> _r => unreachable!("full channel took a send"),
                default => false,
            }
        });
        assert_eq!(defaults, 0, "select took default while a case was ready");
    });
}

#[test]
fn nonblock_dynamic_select_race() {
    at_each_maxprocs("nonblock_dynamic_select_race", |_| {
        let defaults = reproducer(|(r1, r2), n| {
            let mut sel = Select::new();
            sel.recv(r1);
            sel.recv(&n.never);
            sel.recv(&n.empty_rx);
            sel.send(&n.full_tx, 7);
            sel.recv(r2);
            sel.default();
            let op = sel.select();
            assert!(
                matches!(op.index(), None | Some(0) | Some(4)),
                "a never-ready case fired"
            );
            op.index().is_some()
        });
        assert_eq!(defaults, 0, "Select took default while a case was ready");
    });
}
