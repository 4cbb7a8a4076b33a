//! Harness shared by gort's integration tests: the workspace's test harness (`testkit`:
//! scenarios at maxprocs 1, 2 and 4 under one lock per test binary, each run bounded in time,
//! and the helpers chan's tests share), re-exported, plus the helpers that need `gort`'s own
//! types, which `testkit` cannot name (it sits below `gort`).
//!
//! Not every test binary uses every helper here.
#![allow(dead_code)]

pub use testkit::*;

/// Makes the next close of `s` send a reset (SO_LINGER with a zero timeout).
pub fn linger_zero(s: &gort::net::TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a live local struct; the
    // descriptor is owned by `s` for the duration of the call.
    let r = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(s),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt(SO_LINGER)");
}

/// A `tracing` subscriber that calls `on_event` for every event, enables everything and keeps
/// no spans: what the tests of the scheduler's events need.
pub struct OnEvent(pub fn(&tracing::Event<'_>));

impl tracing::Subscriber for OnEvent {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        (self.0)(event)
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
