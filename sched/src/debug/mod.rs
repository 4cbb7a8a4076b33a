//! Seeing inside the runtime: goroutine dumps, leak checks and the scheduler trace (issue 14).
//!
//! | file            | job                                                                 |
//! |-----------------|---------------------------------------------------------------------|
//! | `wait.rs`       | [`WaitReason`]: what a parked goroutine waits for, and since when    |
//! | `registry.rs`   | every goroutine that has switched out, listed per M (Go's `allgs`)   |
//! | `dump.rs`       | [`goroutines`] (a snapshot) and [`dump`] (Go's traceback text, grouped) |
//! | `leak.rs`       | [`LeakCheck`]: goroutines started in a scope and still alive after it (goleak) |
//! | `sigquit.rs`    | the dump on `SIGQUIT`                                               |
//! | `stacks.rs`     | `GORT_DEBUG=parkstacks`: each parked goroutine's backtrace, captured as it parks |
//! | `schedtrace.rs` | `GORT_DEBUG=schedtrace=<ms>`: Go's `SCHED` line every period          |
//! | `trace.rs`      | [`trace`]: the execution trace (`GORT_TRACE`), Perfetto's JSON       |
//!
//! What it costs a goroutine: 32 bytes of header (`Origin` and the wait word; the registry
//! slot fits in padding); a park stores its wait word (a relaxed load of sysmon's clock and a
//! relaxed store); the first switch-out of a goroutine lists it and its end unlists it (an
//! uncontended lock each); a spawn reads the spawner's scope (one branch when no leak check
//! is running). Nothing else runs unless a dump, a check or the trace asks.
//! `docs/DEBUGGING.md` says how to use each.

mod dump;
mod leak;
pub(crate) mod registry;
pub(crate) mod schedtrace;
pub(crate) mod sigquit;
pub(crate) mod stacks;
pub mod trace;
pub(crate) mod wait;

pub(crate) use dump::write_dump;
pub use dump::{dump, goroutines, GoroutineInfo, State};

/// The scheduler's idle set and each M's state in one line, for hang reports (the test
/// harness prints it when a scenario hangs): idle and retired Ps, the idle, hungry and watcher
/// Ms, and per M whether it holds a P, is idle, how many goroutines others readied for it wait
/// in its remote queue, and how many live goroutines it has. Takes the idle lock.
///
/// ```
/// let state = sched::debug::scheduler_state();
/// assert!(state.contains("idle Ps"));
/// ```
#[doc(hidden)]
pub fn scheduler_state() -> String {
    let s = crate::scheduler::describe_idle();
    let ms: Vec<String> = crate::sysmon::machines()
        .iter()
        .map(|h| {
            format!(
                "M{}: p={} idle={} remote={} live={}",
                h.id,
                h.monitor.holds_p(),
                h.is_idle(),
                h.remote_len(),
                h.live()
            )
        })
        .collect();
    format!("{s}; {}", ms.join(", "))
}
pub(crate) use leak::note_end as leak_note_end;
pub use leak::{verify_none, LeakCheck, Leaked};
pub use wait::WaitReason;

use std::panic::Location;
use std::sync::Arc;

/// Where a goroutine came from: the spawn call's source location (`#[track_caller]`), the
/// spawning goroutine, and the leak-check scope it belongs to. Immutable after spawn.
pub(crate) struct Origin {
    pub(crate) site: &'static Location<'static>,
    /// The spawning goroutine's id, 0 if a plain thread spawned it.
    pub(crate) parent: u64,
    /// The leak check it counts in (`leak.rs`), inherited from its spawner.
    pub(crate) scope: Option<Arc<leak::Scope>>,
}

impl Origin {
    /// The origin of a goroutine spawned here, now, by the calling goroutine or thread.
    #[inline]
    pub(crate) fn here(site: &'static Location<'static>) -> Origin {
        let h = crate::machine::current_header();
        // SAFETY: the running goroutine's header is alive while it runs.
        let spawner = (!h.is_null()).then(|| unsafe { &*h });
        Origin {
            site,
            parent: spawner.map_or(0, |h| h.id),
            scope: leak::scope_for_spawn(spawner),
        }
    }

    /// An origin for unit tests that build goroutines by hand.
    #[cfg(test)]
    #[track_caller]
    pub(crate) fn test() -> Origin {
        Origin {
            site: Location::caller(),
            parent: 0,
            scope: None,
        }
    }
}
