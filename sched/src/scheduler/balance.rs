//! Where a new goroutine lives when its spawner's M already has more than its share (the
//! thread-affine mode only).
//!
//! A goroutine is homed to the M that first runs it, for the rest of its life
//! (`docs/SOUNDNESS.md`). Unstarted goroutines sit in the Ps' queues, and any P may take them;
//! but a spawner that spawns one at a time and then parks (an acceptor: `accept`, `go`, `accept`)
//! puts each new goroutine in its P's `runnext`, and its own M runs it as soon as the spawner
//! parks, before any other M could steal it. Every connection of a server then lives on the
//! acceptor's M: 42 of 50, and 626 of 1,000, in runs of `examples/echo_server` under Go's load
//! generator (`docs/BENCHMARKS.md`, session 10). That M's goroutines queue behind each other
//! while the other M idles, and nothing can move them later.
//!
//! So a spawn on an M that is heavier than the lightest M by more than `slack` (below) homes the
//! new goroutine to that lightest M at once: it goes to that M's remote queue, as a goroutine
//! readied from another thread does (`home.rs`), and the M is woken with a P if it idles. "Heavy"
//! counts the M's long-lived goroutines (`Handoff::live`): those that have parked or yielded and
//! not ended (the M's goroutine registry, `debug/registry.rs`, which lists them anyway), plus
//! those homed to it at spawn and not started yet. A goroutine that runs to its end without
//! switching out is never counted: spawning and ending one costs nothing here.
//! The candidates are the Ms that hold a P, and idle Ms while a P is idle for them or handed to
//! them; an M blocked in a call without its P (`preempt.rs`), or idle while every P is busy,
//! would leave the goroutine waiting.
//!
//! Not for bursts: a spawner that spreads a burst (`Processor::spawn_spreads`) already sends it
//! to the global queue for every M to take, and a burst of short goroutines is never "live" for
//! long. Invariant: only an unstarted goroutine is given a home here, before any thread but the
//! spawner can see it; from then on it is like any goroutine homed to that M.

use crate::loom::std_only::{AtomicPtr, AtomicUsize};
use crate::loom::Ordering;

use super::home::Home;

/// Ms whose load is tracked here: the first this many started (more than any machine has
/// CPUs for a P each; Ms beyond them still run goroutines, they are just never chosen).
const TRACKED: usize = 64;

/// The tracked Ms' homes, in start order; null past `NTRACKED`.
static HOMES: [AtomicPtr<Home>; TRACKED] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; TRACKED];
static NTRACKED: AtomicUsize = AtomicUsize::new(0);

/// Below this many live goroutines an M is never too heavy: a few goroutines on one M cost
/// nothing, and spreading them would only add wake-ups.
const MIN_LIVE: usize = 8;

/// Adds an M, as it is created (before its thread runs: `machine.rs`, `spawn_machine`).
pub(crate) fn register(home: &'static Home) {
    // Claim a slot, then fill it: a reader that counts the slot before it is filled sees null
    // and skips it.
    let i = NTRACKED.fetch_add(1, Ordering::AcqRel);
    if i < TRACKED {
        HOMES[i].store(home as *const Home as *mut Home, Ordering::Release);
    }
}

/// The M a goroutine spawned on `mine` should be homed to, if `mine` has more than its share:
/// the candidate with the fewest live goroutines, when `mine` has more than `slack` more.
pub(super) fn lighter_home(mine: &'static Home) -> Option<&'static Home> {
    let my_live = mine.live();
    if my_live < MIN_LIVE {
        return None;
    }
    let idle_ps = super::sched().idle.npidle() > 0;
    let mut best: Option<(&'static Home, usize)> = None;
    for slot in HOMES
        .iter()
        .take(NTRACKED.load(Ordering::Acquire).min(TRACKED))
    {
        let ptr = slot.load(Ordering::Acquire);
        // SAFETY: a non-null entry is an M's `Home`, leaked when the M started (Ms never exit).
        let Some(home) = (unsafe { ptr.as_ref() }) else {
            continue;
        };
        if std::ptr::eq(home, mine) || !is_candidate(home, idle_ps) {
            continue;
        }
        let live = home.live();
        if best.is_none_or(|(_, b)| live < b) {
            best = Some((home, live));
        }
    }
    let (home, live) = best?;
    (my_live > live + slack(my_live)).then_some(home)
}

/// True if goroutines homed to `home` run soon: it holds a P, or it is idle and a P is idle
/// for it or already handed to it. (An idle M while every P is busy would wait for one to go
/// idle, and the goroutine with it.)
fn is_candidate(home: &Home, idle_ps: bool) -> bool {
    home.monitor.holds_p() || home.is_idle() && (idle_ps || home.is_handed())
}

/// How much heavier than the lightest M an M may be before its spawns go there: an eighth of
/// its load and two, so homes settle within about 12 % of each other and a pair of Ms that
/// differ by one goroutine does not trade every spawn.
fn slack(live: usize) -> usize {
    2 + live / 8
}
