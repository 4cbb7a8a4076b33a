//! Scheduler events: for `tracing` (spawn, run, park with its reason, yield, unpark, steal,
//! preempt, blocking enter and exit, netpoll, exit, M start, sleep and wake) and for the
//! execution trace (`debug/trace.rs`), which records the same scheduling events per thread.
//!
//! A subscriber is user code, so the scheduler follows two rules when it emits a `tracing`
//! event:
//! - only where its state is consistent (what that means, for all user code the scheduler
//!   calls: `docs/ARCHITECTURE.md`, section 8). A subscriber may then call anything:
//!   `current_id`, `spawn`, `unpark`, `yield_now` (which on an M's own stack yields the
//!   thread), or drop an `Unparker`;
//! - a panic in the subscriber is contained and reported (`config::contain`), never unwound
//!   into the scheduler.
//!
//! Recording an execution-trace event runs no user code, so `trace_record!` may sit inside a
//! critical section, and does where the order of events matters (an unpark is recorded before
//! the goroutine is queued, so that it precedes the run it causes). Its cost while no trace is
//! on is one relaxed load and a branch; with the crate's `trace` feature off it is nothing.
//! `tracing` events compile out through `tracing`'s own `max_level_*` features.

/// Emits a trace-level `tracing` event from the scheduler (module docs). The level check comes
/// first: with no subscriber at `TRACE` (the usual case) an event costs a load and a branch,
/// not the `catch_unwind` frame of `contain`.
macro_rules! trace_event {
    ($($arg:tt)*) => {
        if tracing::enabled!(tracing::Level::TRACE) {
            $crate::config::contain("a tracing subscriber", || tracing::trace!($($arg)*))
        }
    };
}

/// Records an execution-trace event (`debug/trace.rs`'s `Kind::$kind`, with its `a` and `b`)
/// if a trace is on.
#[cfg(feature = "trace")]
macro_rules! trace_record {
    ($kind:ident, $a:expr, $b:expr) => {
        if $crate::debug::trace::on() {
            $crate::debug::trace::record($crate::debug::trace::Kind::$kind, $a, $b)
        }
    };
}

/// Without the `trace` feature: nothing (the arguments are not evaluated).
#[cfg(not(feature = "trace"))]
macro_rules! trace_record {
    ($kind:ident, $a:expr, $b:expr) => {
        if false {
            let _ = ($a, $b);
        }
    };
}

/// Whether a trace is on, read once by a function that records several events
/// (`machine::execute`: a goroutine's start and stop), which then records each with
/// `trace_record_if!`; so a run costs one load and the stop pairs with the start.
#[cfg(feature = "trace")]
macro_rules! trace_on {
    () => {
        $crate::debug::trace::on()
    };
}

/// Without the `trace` feature: never.
#[cfg(not(feature = "trace"))]
macro_rules! trace_on {
    () => {
        false
    };
}

/// `trace_record!` under a `trace_on!()` read earlier.
macro_rules! trace_record_if {
    ($on:expr, $kind:ident, $a:expr, $b:expr) => {
        if $on {
            $crate::debug::trace::record($crate::debug::trace::Kind::$kind, $a, $b)
        }
    };
}
