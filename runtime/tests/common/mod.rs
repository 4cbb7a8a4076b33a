//! Harness shared by gort's integration tests: the workspace's test harness (`testkit`:
//! scenarios at maxprocs 1, 2 and 4 under one lock per test binary, each run bounded in time,
//! and the helpers chan's tests share), re-exported, plus the helpers that need `gort`'s own
//! types, which `testkit` cannot name (it sits below `gort`).
//!
//! Not every test binary uses every helper here.
#![allow(dead_code)]

#[allow(unused_imports)] // a binary may use only the helpers below
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

/// An event's message (its `message` field, as `tracing::warn!("...")` and the like give it).
pub fn event_message(e: &tracing::Event<'_>) -> String {
    struct Message(String);
    impl tracing::field::Visit for Message {
        fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
            if f.name() == "message" {
                self.0 = format!("{v:?}");
            }
        }
    }
    let mut m = Message(String::new());
    e.record(&mut m);
    m.0
}

/// Resident set size of this process, from `/proc/self/statm`.
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm's second field");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    pages * page
}

/// A burst, from inside a goroutine: `n` goroutines parked at once on one channel's receive;
/// `at_peak` runs once all of them have parked; then the channel's only sender is dropped,
/// which wakes and ends them all, and this waits for them. Returns what `at_peak` returned.
pub fn parked_burst<R>(n: usize, at_peak: impl FnOnce() -> R) -> R {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (tx, rx) = gort::chan::<()>(0);
    let parked = std::sync::Arc::new(AtomicUsize::new(0));
    let ended = gort::sync::WaitGroup::new();
    ended.add(n as i64);
    for _ in 0..n {
        let (rx, parked, ended) = (rx.clone(), parked.clone(), ended.clone());
        drop(gort::go!(move || {
            parked.fetch_add(1, Ordering::Relaxed);
            let _ = rx.recv();
            ended.done();
        }));
    }
    drop(rx);
    while parked.load(Ordering::Relaxed) < n {
        gort::yield_now();
    }
    for _ in 0..100 {
        gort::yield_now();
    }
    let peak = at_peak();
    drop(tx);
    ended.wait();
    peak
}
