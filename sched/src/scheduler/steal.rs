//! Taking work from other Ps (Go's `stealWork`, `runqsteal`, `runqgrab`).
//!
//! An M with a P and nothing to run steals: four passes over the other Ps in a random order
//! (random start, random stride coprime with the count, so each P is visited once per pass),
//! taking half of a victim's queue; the last pass may also take a victim's `runnext` if the
//! victim made no progress for a few microseconds (it was about to run it itself otherwise).
//!
//! A running P also checks, every `GLOBAL_QUEUE_TICK` schedules, for a P that has goroutines
//! queued but has stopped scheduling (`take_from_stalled`): its M is off the CPU or stuck in
//! one goroutine, and what it queued would wait for it.

use std::time::{Duration, Instant};

use crossbeam_deque::Steal;

use super::find::global_get_batch;
use super::Scheduler;
use crate::goroutine::GRef;
use crate::processor::{ProcShared, Processor};

/// How long a thief gives a victim to run its own `runnext` before taking it.
const RUNNEXT_GRACE: Duration = Duration::from_micros(3);

/// How long a P with goroutines queued may go without scheduling before a busy P takes them
/// (`take_from_stalled`).
const STALL_TAKEOVER: Duration = Duration::from_micros(500);

/// Ps looked at per `take_from_stalled` check.
const STALL_VICTIMS: usize = 4;

/// Four passes over the other Ps in random order; the last may take `runnext`. Returns the
/// goroutine and the P it came from (`None`: the global queue).
pub(super) fn steal_work(s: &Scheduler, p: &mut Processor) -> Option<(GRef, Option<usize>)> {
    let n = s.nprocs();
    for pass in 0..4 {
        let last = pass == 3;
        let start = p.random() as usize % n;
        let stride = coprime_stride(n, p.random() as usize);
        for k in 0..n {
            let victim = (start + k * stride) % n;
            if victim == p.id {
                continue;
            }
            if let Some(g) = steal_from(s, p, victim, last) {
                p.count_steal();
                return Some((g, Some(victim)));
            }
        }
        if let Some(g) = global_get_batch(s, p) {
            return Some((g, None));
        }
    }
    None
}

/// A stride in `1..n` coprime with `n` (so `start + k * stride` visits every P once).
fn coprime_stride(n: usize, seed: usize) -> usize {
    if n <= 2 {
        return 1;
    }
    let mut stride = 1 + seed % (n - 1);
    while gcd(stride, n) != 1 {
        stride = 1 + stride % (n - 1);
    }
    stride
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn steal_from(s: &Scheduler, p: &mut Processor, victim: usize, take_runnext: bool) -> Option<GRef> {
    let shared = &s.procs[victim];
    let stealer = shared.stealer.get()?;
    loop {
        match stealer.steal_batch_with_limit_and_pop(p.runq(), usize::MAX) {
            Steal::Success(g) => return Some(g),
            Steal::Empty => break,
            Steal::Retry => {}
        }
    }
    if take_runnext {
        return steal_runnext(shared);
    }
    None
}

/// Takes a victim's `runnext` if the victim schedules nothing for `RUNNEXT_GRACE`: the
/// goroutine there was readied by the one running and usually runs as soon as that one parks;
/// taking it earlier would only bounce it between threads (Go's `runqgrab` does the same).
fn steal_runnext(shared: &ProcShared) -> Option<GRef> {
    if shared.runnext.is_empty() {
        return None;
    }
    let tick = shared.schedtick();
    let until = Instant::now() + RUNNEXT_GRACE;
    while Instant::now() < until {
        for _ in 0..32 {
            std::hint::spin_loop();
        }
    }
    if shared.schedtick() != tick {
        return None;
    }
    shared.take_runnext()
}

/// Takes half the queue (or the `runnext`) of a P that has goroutines queued but has neither
/// scheduled nor added to its queue for `STALL_TAKEOVER`. Its M is off the CPU (the kernel
/// preempted it, or it is blocked in a system call) or is running one goroutine for a long
/// time, and what it queued would wait for it. (A P whose goroutine is spawning a burst does
/// not schedule either, but its queue grows: it is at work and left alone.) Only idle Ms steal
/// otherwise, and a P busy with its own goroutines is never idle, so without this the queued
/// work waits for the stalled M (what that cost an echo load generator, and what this saved:
/// `docs/BENCHMARKS.md`, "Echo servers under load"). Go's sysmon retakes a P blocked in a
/// system call after 20 µs-10 ms and preempts long-running goroutines; this covers the queued
/// work of all three cases, checked every `GLOBAL_QUEUE_TICK` schedules by each P that is
/// running.
pub(super) fn take_from_stalled(s: &Scheduler, p: &mut Processor) -> Option<(GRef, usize)> {
    let n = s.nprocs();
    if n < 2 {
        return None;
    }
    let now = Instant::now();
    if p.stall_watch.len() < n {
        p.stall_watch.resize(n, (0, 0, now));
    }
    // A few Ps per check, from a random start: with many Ps, reading every P's tick line
    // (written by its owner on each schedule) would cost a cache miss per P per check.
    let start = p.random() as usize;
    for k in 0..(n - 1).min(STALL_VICTIMS) {
        let victim = (p.id + 1 + (start + k) % (n - 1)) % n;
        let shared = &s.procs[victim];
        let tick = shared.schedtick();
        let len = shared.queue_len();
        let (seen_tick, seen_len, since) = p.stall_watch[victim];
        // A queue that grew has an owner at work (a goroutine spawning a burst, say), even if
        // it has not scheduled: only the owner pushes.
        if seen_tick != tick || len > seen_len {
            p.stall_watch[victim] = (tick, len, now);
            continue;
        }
        p.stall_watch[victim].1 = len;
        if now.duration_since(since) < STALL_TAKEOVER || !shared.has_work() {
            continue;
        }
        if let Some(g) = steal_from(s, p, victim, false).or_else(|| shared.take_runnext()) {
            p.count_steal();
            return Some((g, victim));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coprime_stride_visits_every_proc_once() {
        for n in 1..40 {
            for seed in 0..50 {
                let stride = coprime_stride(n, seed);
                let mut seen = vec![false; n];
                for k in 0..n {
                    seen[(seed + k * stride) % n] = true;
                }
                assert!(seen.iter().all(|&v| v), "n={n} stride={stride}");
            }
        }
    }
}
