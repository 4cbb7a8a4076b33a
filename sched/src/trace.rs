//! Scheduler events for `tracing` (spawn, park, unpark, steal, exit, M sleep and wake).
//!
//! A subscriber is user code, so the scheduler follows two rules when it emits an event:
//! - only where its state is consistent (what that means, for all user code the scheduler
//!   calls: `docs/ARCHITECTURE.md`, section 8). A subscriber may then call anything:
//!   `current_id`, `spawn`, `unpark`, `yield_now` (which on an M's own stack yields the
//!   thread), or drop an `Unparker`;
//! - a panic in the subscriber is contained and reported (`config::contain`), never unwound
//!   into the scheduler.

/// Emits a trace-level `tracing` event from the scheduler (module docs).
macro_rules! trace_event {
    ($($arg:tt)*) => {
        $crate::config::contain("a tracing subscriber", || tracing::trace!($($arg)*))
    };
}
