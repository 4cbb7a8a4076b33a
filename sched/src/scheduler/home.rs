//! Where a started goroutine goes: to its home M (the one that first ran it, or the one its
//! spawn chose: `balance.rs`), and nowhere else
//! (`docs/SOUNDNESS.md` gives the model and the argument; this file is the routing).
//!
//! - Readied or yielded on the home M itself while it holds a P: the M's own queues
//!   (`Machine::push_own`: `next` for a hand-off, `later` otherwise). No other thread is
//!   involved: this is the per-M `runnext` hand-off.
//! - Readied anywhere else (another M, a plain thread, the watcher in the poller):
//!   the home M's remote queue (`Handoff::push_remote`). If the home M may be idle, it is handed
//!   an idle P and woken, or marked hungry so that the next free P is its
//!   (`IdleSet::wake_home`; not woken if it is the caller, the watcher whose poll readied its
//!   own goroutine: `IdleSet::serve_itself`); the handshake that keeps this from losing a
//!   goroutine is in `handoff.rs` and is model-checked in `idle.rs`.
//!
//! Unstarted goroutines come here only when their spawn homed them to a lighter M
//! (`balance.rs`): they go to its remote queue as a goroutine readied from another thread does.
//! The rest are closures in the Ps' queues and the global queue, and any P may take them. In
//! migrate mode no goroutine has a home, and `submit.rs` readies everything onto the waker's P,
//! as Go does.

use super::handoff::Handoff;
use super::idle::IdleM;
use super::sched;
use crate::goroutine::GRef;
use crate::machine;
use crate::processor::Processor;

/// An M's shared part, as a goroutine's home.
pub(crate) type Home = IdleM<Box<Processor>, GRef>;

/// Makes `g`, a started goroutine homed to `home`, runnable there. With `next`, it runs next if
/// it is readied on its home M (a hand-off).
#[inline]
pub(super) fn ready(g: GRef, home: &'static Home, next: bool) {
    let Err(g) = machine::ready_on_own_m(g, home, next) else {
        return;
    };
    if Handoff::push_remote(home, g, !next) {
        if machine::is_current(home) {
            // The watcher's own poll readied it: no wake (`IdleSet::serve_itself`).
            sched().idle.serve_itself(home);
        } else {
            sched().idle.wake_home(home);
        }
    }
}
