//! Work stealing and fairness of the run queues, at maxprocs 1, 2 and 4.
//!
//! Pins down how the scheduler spreads and shares work: goroutines queued on one processor
//! are taken by idle processors (so a fan-out from one goroutine uses every processor); no
//! more than maxprocs goroutines run at once (unless sysmon let a thread run without a P:
//! `docs/PREEMPTION.md`); the global queue, where goroutines spawned
//! from plain threads land, is served even while every processor is kept busy by goroutines
//! that only yield (Go's "every 61st schedule looks at the global queue"); and a processor's
//! local queue is served even while two goroutines keep handing the processor to each other
//! through `runnext`.
//!
//! Busy-spinning here is deliberate: it stands for goroutines that compute without blocking.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Goroutines fanned out from one goroutine, and how long each computes.
const SPINNERS: usize = 64;
const SPIN: Duration = Duration::from_millis(2);

/// Computes (spins) for `d` without blocking or yielding.
fn spin_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Signal preemptions so far, process-wide (`gort::stats`): threads stopped in the handler,
/// Ps detached by signal and stopped threads resumed without one. Each makes "running at once"
/// exceed maxprocs by design: a stopped thread keeps its goroutine, frozen mid-spin and still
/// counted as running here, while its P runs another (docs/PREEMPTION.md); a detached one runs
/// on without a P.
fn ran_without_a_p() -> u64 {
    let s = gort::stats();
    s.signal_stops + s.signal_detaches + s.stop_timeouts
}

#[test]
fn fan_out_from_one_goroutine_is_stolen() {
    common::each_procs("stealing", |procs| {
        // All spinners are spawned by one goroutine, so they all start in its processor's
        // queue; any other processor that runs one has stolen it.
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let without_p_before = ran_without_a_p();
        let machines: Vec<usize> = {
            let (running, peak) = (running.clone(), peak.clone());
            gort::run(move || {
                let spinners: Vec<_> = (0..SPINNERS)
                    .map(|_| {
                        let (running, peak) = (running.clone(), peak.clone());
                        gort::spawn(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            let machine = gort::current_machine_id().expect("on an M");
                            spin_for(SPIN);
                            running.fetch_sub(1, Ordering::SeqCst);
                            machine
                        })
                    })
                    .collect();
                spinners.into_iter().map(|h| h.join().unwrap()).collect()
            })
        };
        assert_eq!(machines.len(), SPINNERS);
        let distinct: HashSet<usize> = machines.into_iter().collect();
        if ran_without_a_p() != without_p_before {
            // Under load the kernel can keep a spinner's thread off the CPU past its time
            // slice, and sysmon then stops it by signal (its P runs another spinner while it
            // stays counted as running), detaches it, or resumes it without a P, so it runs on
            // beyond maxprocs (docs/PREEMPTION.md, "Running without a P"). Neither bound below
            // holds for such a run. What was stolen is checked at the other counts.
            eprintln!("stealing: a spinner was preempted by signal at maxprocs {procs}; bounds not checked");
            return;
        }
        if procs == 1 {
            assert_eq!(
                distinct.len(),
                1,
                "one processor, yet spinners ran on {distinct:?}"
            );
        } else {
            assert!(distinct.len() > 1, "nothing was stolen at maxprocs {procs}");
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!(
            peak <= procs,
            "{peak} goroutines ran at once at maxprocs {procs}"
        );
    });
}

#[test]
fn global_queue_is_not_starved_by_yielders() {
    common::each_procs("global queue starvation", |procs| {
        // One yielder per processor. Each first holds its processor (spinning, not yielding)
        // until all have started, so no processor is idle; then all yield in a loop. Every
        // processor's local queue is then never empty, and a goroutine spawned from this plain
        // thread (into the global queue) runs only if the schedulers look there on their own.
        let arrived = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let yielders: Vec<_> = (0..procs)
            .map(|_| {
                let (arrived, stop) = (arrived.clone(), stop.clone());
                gort::spawn(move || {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    let start = Instant::now();
                    while arrived.load(Ordering::SeqCst) < procs {
                        assert!(start.elapsed() < common::DEADLINE, "yielders never all ran");
                        std::hint::spin_loop();
                    }
                    let mut yields = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        gort::yield_now();
                        yields += 1;
                    }
                    yields
                })
            })
            .collect();
        common::wait_until("every yielder on a processor", || {
            arrived.load(Ordering::SeqCst) == procs
        });

        let from_global = gort::spawn(|| gort::current_machine_id().is_some());
        assert!(from_global.join().unwrap());

        stop.store(true, Ordering::SeqCst);
        // Every processor was held by a yielder, so the newcomer ran only once some yielder
        // gave its processor back by yielding. (Any one yielder may have yielded zero times:
        // with more Ms than cores, the OS may not have run its thread meanwhile.)
        let yields: u64 = yielders.into_iter().map(|y| y.join().unwrap()).sum();
        assert!(yields > 0, "the newcomer ran without any yielder yielding");
    });
}

/// Moves the ping-pong pair makes before the goroutine queued behind it checks back in.
const PING_PONG_MOVES: usize = 1000;
/// How long the queued goroutine may wait: it normally runs again within milliseconds.
const STARVATION_LIMIT: Duration = Duration::from_secs(5);

#[test]
fn local_queue_is_not_starved_by_a_runnext_ping_pong() {
    // Two goroutines that wake each other in turn hand the processor back and forth through
    // `runnext`, so the one they wake always runs next. A goroutine waiting in the same
    // processor's local queue must still get to run (Go guarantees this by letting a
    // goroutine taken from `runnext` inherit the time slice of the one that readied it, and
    // preempting after 10 ms; see Go's `TestPingPongHog`).
    common::each_procs("runnext ping-pong starvation", |procs| {
        let stop = Arc::new(AtomicBool::new(false));
        let moves = Arc::new(AtomicUsize::new(0));
        let (back_tx, back_rx) = std::sync::mpsc::channel();
        let queued = {
            let (stop, moves) = (stop.clone(), moves.clone());
            gort::spawn(move || {
                // The players start on this goroutine's processor.
                let players = start_ping_pong(&stop, &moves);
                // Each yield puts this goroutine at the tail of the local queue, behind the
                // pair's hand-offs; it must keep getting turns while the pair plays on.
                while moves.load(Ordering::SeqCst) < PING_PONG_MOVES && !stop.load(Ordering::SeqCst)
                {
                    gort::yield_now();
                }
                let _ = back_tx.send(());
                stop.store(true, Ordering::SeqCst);
                players
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .sum::<usize>()
            })
        };
        let came_back = back_rx.recv_timeout(STARVATION_LIMIT).is_ok();
        // If it starved, stopping the pair from here frees the processor for the rest.
        stop.store(true, Ordering::SeqCst);
        let made = queued.join().unwrap();
        assert!(
            came_back,
            "a goroutine in the local queue did not run for {STARVATION_LIMIT:?} at maxprocs \
             {procs} while two goroutines ping-ponged through runnext ({made} moves)"
        );
        assert_eq!(made, moves.load(Ordering::SeqCst));
    });
}

/// Starts two goroutines that take turns (park until it is their turn, hand the turn over,
/// unpark the other) until `stop`; each returns the moves it made, also counted in `moves`.
fn start_ping_pong(
    stop: &Arc<AtomicBool>,
    moves: &Arc<AtomicUsize>,
) -> Vec<gort::JoinHandle<usize>> {
    let turn = Arc::new(AtomicUsize::new(0));
    let slots: Arc<[OnceLock<gort::Unparker>; 2]> = Arc::new([OnceLock::new(), OnceLock::new()]);
    (0..2)
        .map(|me| {
            let (stop, moves, turn, slots) =
                (stop.clone(), moves.clone(), turn.clone(), slots.clone());
            gort::spawn(move || {
                slots[me].set(gort::unparker()).expect("set once");
                common::wait_until("partner's unparker", || slots[1 - me].get().is_some());
                let other = slots[1 - me].get().unwrap().clone();
                let mut made = 0;
                loop {
                    while turn.load(Ordering::SeqCst) != me && !stop.load(Ordering::SeqCst) {
                        gort::park();
                    }
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    made += 1;
                    moves.fetch_add(1, Ordering::SeqCst);
                    turn.store(1 - me, Ordering::SeqCst);
                    other.unpark();
                }
                // The partner may be parked waiting for its turn: let it see `stop`.
                other.unpark();
                made
            })
        })
        .collect()
}

/// Goroutines queued behind the staller in `work_queued_behind_a_stalled_processor_is_taken`.
const STRANDED: usize = 16;

#[test]
fn work_queued_behind_a_stalled_processor_is_taken() {
    common::each_procs("stalled processor", |procs| {
        if procs < 2 {
            return; // nobody to take over
        }
        // One goroutine per processor, each holding its processor until all have started.
        // The first then queues goroutines on its own processor and computes without yielding
        // (as a goroutine stuck in a long computation or a blocking system call would, or
        // an M the kernel has descheduled); the others keep their processors busy, yielding,
        // so no processor is ever idle and ordinary stealing never runs. The queued goroutines
        // still run, on other processors, while the first one is still computing: a busy
        // processor takes over the queue of one that has not scheduled for a while
        // (`scheduler::take_from_stalled`), or sysmon stops the computing thread and gives its
        // processor to another (`sysmon.rs`).
        let arrived = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let ran = Arc::new(AtomicUsize::new(0));
        let goroutines: Vec<_> = (0..procs)
            .map(|_| {
                let (arrived, stop, ran) = (arrived.clone(), stop.clone(), ran.clone());
                gort::spawn(move || {
                    let me = arrived.fetch_add(1, Ordering::SeqCst);
                    let start = Instant::now();
                    while arrived.load(Ordering::SeqCst) < procs {
                        assert!(start.elapsed() < common::DEADLINE, "never all ran");
                        std::hint::spin_loop();
                    }
                    if me > 0 {
                        while !stop.load(Ordering::SeqCst) {
                            gort::yield_now();
                        }
                        return true;
                    }
                    // Not on this thread. (Sysmon may stop this thread and give its very P to
                    // another M, so the P's id proves nothing.) The spin above ran long enough
                    // for sysmon to ask this goroutine to yield, which `spawn` would honour:
                    // start a fresh run first, so the spawns below are not preemption points
                    // that let this thread run what it spawns.
                    gort::yield_now();
                    let mine = gort::current_machine_id();
                    for _ in 0..STRANDED {
                        let ran = ran.clone();
                        gort::go!(move || {
                            assert_ne!(gort::current_machine_id(), mine, "ran on the stalled M");
                            ran.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                    let start = Instant::now();
                    while ran.load(Ordering::SeqCst) < STRANDED
                        && start.elapsed() < common::DEADLINE / 2
                    {
                        std::hint::spin_loop();
                    }
                    stop.store(true, Ordering::SeqCst);
                    ran.load(Ordering::SeqCst) == STRANDED
                })
            })
            .collect();
        let outcomes: Vec<bool> = goroutines.into_iter().map(|g| g.join().unwrap()).collect();
        assert!(
            outcomes.iter().all(|&ok| ok),
            "goroutines queued on a stalled processor waited for it: {outcomes:?}"
        );
    });
}
