//! Criterion benchmarks of the scheduler core: spawn+join, yield, a park/unpark hand-off
//! between two goroutines, and the cost of `preempt_point` in a tight loop. Side-by-side figures against Go come from
//! `benches/sched_side_by_side.sh`; this file tracks gort against itself over time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Times `iters` calls of `f` inside one goroutine (so the cost of entering the runtime from
/// the benchmark's thread is paid once per sample, not per iteration).
fn in_goroutine<R: 'static>(iters: u64, f: fn() -> R) -> Duration {
    gort::run(move || {
        let start = Instant::now();
        for _ in 0..iters {
            std::hint::black_box(f());
        }
        start.elapsed()
    })
}

/// Spawns and joins 1,000 goroutines from a goroutine.
fn spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("gort_1000", |b| {
        b.iter_custom(|iters| {
            in_goroutine(iters, || {
                let hs: Vec<_> = (0..1000u64).map(|i| gort::go!(move || i)).collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            })
        })
    });
    g.bench_function("std_thread_10", |b| {
        b.iter(|| {
            let hs: Vec<_> = (0..10u64).map(|i| std::thread::spawn(move || i)).collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        })
    });
    g.finish();
}

/// 1,000 `yield_now` calls in one goroutine.
fn yield_now(c: &mut Criterion) {
    let mut g = c.benchmark_group("yield");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("gort_1000", |b| {
        b.iter_custom(|iters| {
            in_goroutine(iters, || {
                for _ in 0..1000 {
                    gort::yield_now();
                }
            })
        })
    });
    g.finish();
}

/// What `preempt_point` adds to a tight loop: 1,000 rounds of a little arithmetic, with and
/// without a `preempt_point()` per round (nothing requested: the fast path).
fn preempt_point(c: &mut Criterion) {
    let mut g = c.benchmark_group("preempt_point");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("loop_1000_plain", |b| {
        b.iter_custom(|iters| {
            in_goroutine(iters, || {
                let mut x = 0u64;
                for i in 0..1000u64 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                }
                x
            })
        })
    });
    g.bench_function("loop_1000_with_points", |b| {
        b.iter_custom(|iters| {
            in_goroutine(iters, || {
                let mut x = 0u64;
                for i in 0..1000u64 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                    gort::preempt_point();
                }
                x
            })
        })
    });
    g.finish();
}

/// Two goroutines handing a turn back and forth with park/unpark, 1,000 round trips.
fn park_handoff(c: &mut Criterion) {
    const ROUNDS: usize = 1000;
    let mut g = c.benchmark_group("park_handoff");
    g.throughput(Throughput::Elements(2 * ROUNDS as u64));
    g.bench_function("gort_1000_round_trips", |b| {
        b.iter_custom(|iters| in_goroutine(iters, || ping_pong(ROUNDS)))
    });
    g.finish();
}

/// Waits (parking) until `turn` reaches `value`.
fn wait_for(turn: &AtomicUsize, value: usize) {
    while turn.load(Ordering::Acquire) != value {
        gort::park();
    }
}

fn ping_pong(rounds: usize) {
    let turn = Arc::new(AtomicUsize::new(0));
    let slot = Arc::new(Mutex::new(None::<gort::Unparker>));
    let main = gort::unparker();
    let (t2, s2) = (turn.clone(), slot.clone());
    let peer = gort::go!(move || {
        *s2.lock().unwrap() = Some(gort::unparker());
        t2.store(1, Ordering::Release);
        main.unpark();
        for i in 0..rounds {
            wait_for(&t2, 2 * i + 2);
            t2.store(2 * i + 3, Ordering::Release);
            main.unpark();
        }
    });
    wait_for(&turn, 1);
    let peer_unparker = slot.lock().unwrap().take().expect("peer registered");
    for i in 0..rounds {
        turn.store(2 * i + 2, Ordering::Release);
        peer_unparker.unpark();
        wait_for(&turn, 2 * i + 3);
    }
    peer.join().unwrap();
}

criterion_group!(benches, spawn_join, yield_now, park_handoff, preempt_point);
criterion_main!(benches);
