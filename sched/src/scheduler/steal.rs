//! Taking work from other Ps (Go's `stealWork`, `runqsteal`, `runqgrab`).
//!
//! An M with a P and nothing to run steals: four passes over the other Ps in a random order
//! (random start, random stride coprime with the count, so each P is visited once per pass),
//! taking half of a victim's queue; the last pass may also take a victim's `runnext` if the
//! victim made no progress for a while (it was about to run it itself otherwise): a few
//! microseconds in migrate mode, as in Go; longer in the thread-affine mode, where the thread a
//! goroutine starts on is its thread for good (`steal_runnext`).
//!
//! A running P also checks, every `GLOBAL_QUEUE_TICK` schedules, for a P that has goroutines
//! queued but has stopped scheduling (`take_from_stalled`): its M is off the CPU or stuck in
//! one goroutine, and what it queued would wait for it.

use std::ptr::NonNull;
use std::time::{Duration, Instant};

use super::find::global_get_batch;
use super::Scheduler;
use crate::goroutine::GRef;
use crate::machine::Machine;
use crate::processor::{ProcShared, Processor};

/// How long a thief gives a victim to run its own `runnext` before taking it, in migrate mode
/// (Go's `runqgrab` sleeps 3 µs): a goroutine taken too early only runs once on the wrong
/// thread, and its next wake-up puts it wherever its waker runs.
const RUNNEXT_GRACE: Duration = Duration::from_micros(3);

/// The same, in the thread-affine mode, counted from the thief's first sight of the goroutine
/// there: `runnext` holds a goroutine not yet started, and the thread that starts it is its
/// thread for good. A spawner that blocks soon after the spawn (the `runnext` hand-off: a
/// server goroutine and the client that connects to it, a worker and the channel its spawner
/// waits on) must start it itself, or every later wake-up between the two crosses threads;
/// a spawner that goes on computing is a fork, and its child starts elsewhere this much later.
/// On the TCP round trip (`docs/BENCHMARKS.md`, session 6) the spawner's loopback connect, first
/// write and read took 50-350 µs before it parked, so Go's 3 µs placed the server on the other
/// thread in most iterations. The same bound as for a stalled P's queue: a `runnext` goroutine
/// is taken only from a P that looks stalled.
const AFFINE_RUNNEXT_GRACE: Duration = STALL_TAKEOVER;

/// How long a P with goroutines queued may go without scheduling before a busy P takes them
/// (`take_from_stalled`).
const STALL_TAKEOVER: Duration = Duration::from_micros(500);

/// Ps looked at per `take_from_stalled` check.
const STALL_VICTIMS: usize = 4;

/// Four passes over the other Ps in random order; the last may take `runnext`. Returns the
/// goroutine and the P it came from (`None`: the global queue).
pub(super) fn steal_work(
    s: &Scheduler,
    m: &Machine,
    p: &mut Processor,
) -> Option<(GRef, Option<usize>)> {
    let n = s.nprocs();
    // One sleep per call at most (`steal_runnext_affine`), whatever the number of victims.
    let mut may_sleep = true;
    for pass in 0..4 {
        let last = pass == 3;
        let start = p.random() as usize % n;
        let stride = coprime_stride(n, p.random() as usize);
        for k in 0..n {
            let victim = (start + k * stride) % n;
            if victim == p.id {
                continue;
            }
            let runnext = last.then_some((m, &mut may_sleep));
            if let Some(g) = steal_from(s, p, victim, runnext) {
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

/// Takes half of `victim`'s queue; with `runnext` (the thief's M, and whether it may still nap
/// for it), its `runnext` if the queue is empty.
fn steal_from(
    s: &Scheduler,
    p: &mut Processor,
    victim: usize,
    runnext: Option<(&Machine, &mut bool)>,
) -> Option<GRef> {
    let shared = &s.procs[victim];
    let queue = shared.steal.queue.get()?;
    // Half of the victim's queue, as far as this P's queue has room (a periodic take from a
    // stalled P lands on a queue that may be long already).
    if let Some(g) = queue.steal_into(p.runq(), p.runq_batch_limit()) {
        return Some(g);
    }
    let (m, may_sleep) = runnext?;
    if shared.runnext.is_empty() {
        return None;
    }
    if crate::config::migrate() {
        return steal_runnext(shared);
    }
    steal_runnext_affine(s, m, p, victim, shared, may_sleep)
}

/// Migrate mode: takes a victim's `runnext` if the victim schedules nothing for
/// `RUNNEXT_GRACE`: the goroutine there was readied by the one running and usually runs as
/// soon as that one parks; taking it earlier would only bounce it between threads (Go's
/// `runqgrab` does the same).
fn steal_runnext(shared: &ProcShared) -> Option<GRef> {
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

/// Thread-affine mode: takes the goroutine in a victim's `runnext` once it has been there, with
/// the victim not scheduling, for `AFFINE_RUNNEXT_GRACE` as far as this thief has seen (its
/// `VictimWatch`). A thief that sees it younger naps for the rest of the grace (Go's thief
/// sleeps its 3 µs too) rather than spin: on a machine with fewer free CPUs than Ms, a spinning
/// thief takes the CPU the victim needs to reach its park. It then takes the goroutine only if
/// it is still the same one and the victim has still not scheduled. Only one nap per
/// `steal_work` (`may_sleep`, cleared here): with many Ps, the others wait for the next round.
fn steal_runnext_affine(
    s: &Scheduler,
    m: &Machine,
    p: &mut Processor,
    victim: usize,
    shared: &ProcShared,
    may_sleep: &mut bool,
) -> Option<GRef> {
    let now = Instant::now();
    let tick = shared.schedtick();
    let watch = watch_entry(p, victim, now);
    let age = runnext_age(watch, shared, tick, now)?;
    let seen = watch.runnext as *mut _;
    if age < AFFINE_RUNNEXT_GRACE {
        if !std::mem::take(may_sleep) {
            return None;
        }
        if !nap(s, m, AFFINE_RUNNEXT_GRACE - age) || shared.schedtick() != tick {
            return None;
        }
    }
    let g = NonNull::new(shared.runnext.take_if(seen))?;
    // SAFETY: pointers in `runnext` are owned references put there by `runq_put`, and the
    // compare-and-swap that emptied the slot made this one ours.
    Some(unsafe { GRef::from_raw(g) })
}

/// Longest sleep of a napping thief between looks at what it would otherwise leave waiting.
const NAP_SLICE: Duration = Duration::from_micros(20);

/// Sleeps `d` in slices of at most `NAP_SLICE`; false, early, as soon as `m` has goroutines of
/// its own to run (readied for it by other threads: they do not wake an M that holds a P), a
/// timer is due, or the global queue has work. The napping thief holds a P, so without these
/// looks its own goroutines would wait out the whole grace. The thread's timer slack (Linux
/// adds 50 µs to each sleep by default) is cut to a microsecond meanwhile, or each slice would
/// last 70 µs.
fn nap(s: &Scheduler, m: &Machine, d: Duration) -> bool {
    let _slack = TimerSlack::set(1_000);
    let until = Instant::now() + d;
    loop {
        if m.has_own_work() || crate::timer::due() || !s.global.is_empty() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(NAP_SLICE));
    }
}

/// The calling thread's timer slack set to `ns` nanoseconds until this is dropped (Linux's
/// `PR_SET_TIMERSLACK`; elsewhere nothing).
struct TimerSlack(#[cfg_attr(not(target_os = "linux"), allow(dead_code))] libc::c_int);

impl TimerSlack {
    fn set(ns: libc::c_ulong) -> TimerSlack {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: PR_GET_TIMERSLACK and PR_SET_TIMERSLACK read and set a number of the
            // calling thread; no pointer is passed.
            let old = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK) };
            // SAFETY: as above.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns) };
            TimerSlack(old)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = ns;
            TimerSlack(0)
        }
    }
}

impl Drop for TimerSlack {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if self.0 > 0 {
            // SAFETY: as in `set`.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, self.0 as libc::c_ulong) };
        }
    }
}

/// What a P last saw of another P, and since when (`take_from_stalled`,
/// `steal_runnext_affine`). A thief's own clock: it starts when the thief first looks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VictimWatch {
    /// The victim's schedule tick, unchanged since `since`.
    tick: u32,
    /// The victim's queue length when last seen; it has not grown since `since`.
    len: usize,
    since: Instant,
    /// The address of the goroutine in the victim's `runnext` (0: empty), there with the
    /// victim's tick at `runnext_tick` since `runnext_since`. Only compared, never followed.
    runnext: usize,
    runnext_tick: u32,
    runnext_since: Instant,
}

/// `p`'s record of `victim`, the vector grown to cover it first.
fn watch_entry(p: &mut Processor, victim: usize, now: Instant) -> &mut VictimWatch {
    if p.stall_watch.len() <= victim {
        let blank = VictimWatch {
            tick: 0,
            len: 0,
            since: now,
            runnext: 0,
            runnext_tick: 0,
            runnext_since: now,
        };
        p.stall_watch.resize(victim + 1, blank);
    }
    &mut p.stall_watch[victim]
}

/// How long the goroutine now in the victim's `runnext` has been there with the victim's
/// schedule tick at `tick`, as far as this thief has seen; `None` if the slot is empty. (A
/// goroutine's address alone could name a new one in a reused cell.)
fn runnext_age(
    watch: &mut VictimWatch,
    shared: &ProcShared,
    tick: u32,
    now: Instant,
) -> Option<Duration> {
    let occupant = shared.runnext.peek() as usize;
    if occupant == 0 {
        return None;
    }
    if (occupant, tick) != (watch.runnext, watch.runnext_tick) {
        (watch.runnext, watch.runnext_tick, watch.runnext_since) = (occupant, tick, now);
    }
    Some(now.duration_since(watch.runnext_since))
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
    // A few Ps per check, from a random start: with many Ps, reading every P's tick line
    // (written by its owner on each schedule) would cost a cache miss per P per check.
    let start = p.random() as usize;
    for k in 0..(n - 1).min(STALL_VICTIMS) {
        let victim = (p.id + 1 + (start + k) % (n - 1)) % n;
        let shared = &s.procs[victim];
        let tick = shared.schedtick();
        let len = shared.queue_len();
        let watch = watch_entry(p, victim, now);
        // A queue that grew has an owner at work (a goroutine spawning a burst, say), even if
        // it has not scheduled: only the owner pushes.
        if watch.tick != tick || len > watch.len {
            (watch.tick, watch.len, watch.since) = (tick, len, now);
            continue;
        }
        watch.len = len;
        if now.duration_since(watch.since) < STALL_TAKEOVER || !shared.has_work() {
            continue;
        }
        // The `runnext` goroutine too, if it has waited as long (`steal_runnext_affine`).
        let runnext_due =
            runnext_age(watch, shared, tick, now).is_some_and(|a| a >= STALL_TAKEOVER);
        let runnext = || runnext_due.then(|| shared.take_runnext()).flatten();
        if let Some(g) = steal_from(s, p, victim, None).or_else(runnext) {
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
