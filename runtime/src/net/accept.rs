//! The accept loop shared by every listener: retries through transient failures, and reports
//! each episode of descriptor (or memory) exhaustion once, when it begins and when it ends.
//!
//! Go's `http.Server` sleeps 5 ms doubling to 1 s after a temporary accept error and logs every
//! retry (`http: Accept error: ...; retrying in 5ms`). gort's `accept` does the same back-off
//! itself, and reports an *episode* instead of every retry: the first failure of an episode, with
//! the listener, the error, the process's `RLIMIT_NOFILE` and how to raise it; then its end, the
//! first attempt that finds a descriptor free (or the listener's close), with how long the episode
//! lasted and how many accepts failed in it. Logging every retry would print a line a second
//! (once the pause reaches 1 s) for as long as the episode lasts.
//!
//! Invariants, per listener (a [`Stalls`] shared by all its handles):
//! - An episode is open from the first failure after none was open until the next attempt
//!   that does not fail for lack of resources (a connection, or none pending) or the
//!   listener's close; `open` is true exactly while one is, and both change only under
//!   `state`'s lock.
//! - The hook sees `Began` and `Ended` alternately, starting with `Began`: both are reported
//!   while `state` is locked, so an attempt racing with the failure that opens an episode
//!   reports its end only after the beginning. The lock is gort's `Mutex`, which parks a
//!   goroutine instead of blocking its thread, because the hook is user code and may block.
//! - An attempt that does not fail reads `open` (one Relaxed load) and takes the lock only if
//!   an episode is open: an accept that never failed costs nothing more. One that misses an
//!   episode opened at that moment by another accepter leaves it to the next attempt to end.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Source;
use netpoller::PollFd;

use crate::sync::Mutex;

/// The first pause after a failed accept; it doubles after each failure up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause between two accepts.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// What a listener's stall hook is told (see [`TcpListener::on_accept_stall`]): an episode in
/// which `accept` could not take connections because the process or the system was out of
/// descriptors or memory, and retried with back-off. Its `Display` is the line a server would
/// log.
///
/// [`TcpListener::on_accept_stall`]: super::TcpListener::on_accept_stall
#[derive(Debug)]
#[non_exhaustive]
pub enum AcceptStall {
    /// An accept failed and no episode was open: one begins. `accept` retries after 5 ms,
    /// doubling to 1 s, until it succeeds or the listener is closed.
    Began {
        /// The listener: `tcp 127.0.0.1:8080`, `unix /run/app.sock`.
        listener: String,
        /// The failure: `EMFILE` (the process is at its descriptor limit), `ENFILE` (the
        /// system is), `ENOBUFS` or `ENOMEM` (no memory for the socket).
        error: io::Error,
        /// The process's `RLIMIT_NOFILE` as (soft, hard); `u64::MAX` is unlimited, `None`
        /// means `getrlimit` failed.
        nofile: Option<(u64, u64)>,
    },
    /// The episode is over: an accept found a descriptor free (`recovered`: it took a
    /// connection, or found none pending), or the listener was closed.
    Ended {
        /// The listener, as in `Began`.
        listener: String,
        /// How many accepts failed in the episode (each was retried after a pause).
        retries: u32,
        /// From the first failure to the end.
        lasted: Duration,
        /// False if the listener was closed.
        recovered: bool,
    },
}

impl fmt::Display for AcceptStall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcceptStall::Began {
                listener,
                error,
                nofile,
            } => {
                write!(
                    f,
                    "accept {listener}: {error}; retrying after {} ms, doubling up to {} s, \
                     until it succeeds",
                    FIRST_PAUSE.as_millis(),
                    MAX_PAUSE.as_secs()
                )?;
                if let Some((soft, hard)) = nofile {
                    write!(
                        f,
                        "; RLIMIT_NOFILE is {} (soft), {} (hard)",
                        Limit(*soft),
                        Limit(*hard)
                    )?;
                }
                match error.raw_os_error() {
                    Some(libc::EMFILE) => f.write_str(
                        "; raise it with `ulimit -n N` before starting the program, or with \
                         setrlimit(RLIMIT_NOFILE) in it (the soft limit up to the hard one \
                         needs no privilege)",
                    ),
                    Some(libc::ENFILE) => f.write_str(
                        "; the system-wide file table is full: raise fs.file-max (sysctl) or \
                         close files elsewhere",
                    ),
                    _ => f.write_str("; the system is short of memory for sockets"),
                }
            }
            AcceptStall::Ended {
                listener,
                retries,
                lasted,
                recovered,
            } => {
                let how = if *recovered {
                    "recovered"
                } else {
                    "listener closed while stalled"
                };
                let retry = if *retries == 1 { "retry" } else { "retries" };
                write!(
                    f,
                    "accept {listener}: {how} after {} ms, {retries} {retry}",
                    lasted.as_millis()
                )
            }
        }
    }
}

/// An `rlim_t` for display.
struct Limit(u64);

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == u64::MAX {
            f.write_str("unlimited")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// The process's `RLIMIT_NOFILE`, (soft, hard), with `RLIM_INFINITY` as `u64::MAX`.
pub(crate) fn nofile_limit() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the live local we pass; no other pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    // `rlim_t` is u64 on Linux and macOS, i64 on some BSDs.
    #[allow(clippy::unnecessary_cast)]
    let widen = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            u64::MAX
        } else {
            v as u64
        }
    };
    Some((widen(lim.rlim_cur), widen(lim.rlim_max)))
}

type Hook = Arc<dyn Fn(&AcceptStall) + Send + Sync>;

/// One listener's exhaustion episodes and stall hook, shared by all its handles.
#[derive(Default)]
pub(crate) struct Stalls {
    /// True while an episode is open (written under `state`'s lock).
    open: AtomicBool,
    state: Mutex<StallState>,
}

#[derive(Default)]
struct StallState {
    episode: Option<Episode>,
    hook: Option<Hook>,
}

struct Episode {
    began: Instant,
    retries: u32,
}

impl Stalls {
    /// Installs the hook told of each episode (replacing any earlier one).
    pub(crate) fn set_hook(&self, hook: Hook) {
        self.state.lock().hook = Some(hook);
    }

    /// An accept failed with `error` (a resource exhaustion): opens an episode if none is
    /// open (and reports it), else counts the retry.
    fn failed(&self, error: io::Error, listener: &dyn Fn() -> String) {
        let mut st = self.state.lock();
        if let Some(ep) = &mut st.episode {
            ep.retries = ep.retries.saturating_add(1);
            return;
        }
        st.episode = Some(Episode {
            began: Instant::now(),
            retries: 1,
        });
        self.open.store(true, Ordering::Relaxed);
        let stall = AcceptStall::Began {
            listener: listener(),
            error,
            nofile: nofile_limit(),
        };
        report(&stall, st.hook.as_deref());
    }

    /// An accept found a descriptor free (`recovered`) or the listener closed: ends the open
    /// episode, if any, and reports it.
    fn ended(&self, recovered: bool, listener: &dyn Fn() -> String) {
        if !self.open.load(Ordering::Relaxed) {
            return;
        }
        let mut st = self.state.lock();
        let Some(ep) = st.episode.take() else {
            return;
        };
        self.open.store(false, Ordering::Relaxed);
        let stall = AcceptStall::Ended {
            listener: listener(),
            retries: ep.retries,
            lasted: ep.began.elapsed(),
            recovered,
        };
        report(&stall, st.hook.as_deref());
    }
}

/// The one place an episode is reported: a `tracing` warning (target `gort::net::accept`), and
/// the listener's hook, if it has one.
fn report(stall: &AcceptStall, hook: Option<&(dyn Fn(&AcceptStall) + Send + Sync)>) {
    match stall {
        AcceptStall::Began {
            listener, nofile, ..
        } => tracing::warn!(
            listener = %listener,
            nofile_soft = nofile.map(|n| n.0),
            nofile_hard = nofile.map(|n| n.1),
            "{stall}"
        ),
        AcceptStall::Ended {
            listener,
            retries,
            lasted,
            recovered,
        } => tracing::warn!(
            listener = %listener,
            retries,
            lasted_ms = lasted.as_millis() as u64,
            recovered,
            "{stall}"
        ),
    }
    if let Some(hook) = hook {
        hook(stall);
    }
}

/// Runs a listener's accept, `op`, until it succeeds or fails for good. Retries at once after
/// `ECONNABORTED` (the peer gave up first), and after a growing pause while the process or
/// system is out of descriptors or memory (5 ms doubling to 1 s, as Go's `http.Server`),
/// reporting the episode through `stalls` (`listener` names the listener in the report).
/// Closing the listener or its deadline ends the loop with their errors (within one pause).
pub(crate) fn accept_with<S: Source + AsRawFd, T>(
    sock: &PollFd<S>,
    stalls: &Stalls,
    listener: &dyn Fn() -> String,
    mut op: impl FnMut(&S) -> io::Result<T>,
) -> io::Result<T> {
    // Every attempt that does not fail for lack of resources ends an open episode, including
    // one that finds no connection pending (`WouldBlock`, which `read_with` waits out): the
    // kernel allocates the new descriptor before it looks at the queue, so `EMFILE` comes
    // whether or not a connection waits, and anything else means a descriptor was free.
    let mut attempt = |s: &S| {
        let r = op(s);
        if !matches!(&r, Err(e) if is_resource_exhaustion(e)) {
            stalls.ended(true, listener);
        }
        r
    };
    let mut pause = Duration::ZERO;
    loop {
        match sock.read_with(&mut attempt) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) if is_resource_exhaustion(&e) => {
                pause = (pause * 2).clamp(FIRST_PAUSE, MAX_PAUSE);
                stalls.failed(e, listener);
                crate::time::sleep(pause);
            }
            Err(e) => {
                if sock.is_closed() {
                    stalls.ended(false, listener);
                }
                return Err(e);
            }
            accepted => return accepted,
        }
    }
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    /// Runs `accept_with` on a real registered socket with `op` results taken from `script`
    /// (the last one, a success, returns the round number); returns what the hook heard.
    /// Held by each test that reports stalls, so that none of them runs beside
    /// `reports_are_tracing_warnings`: another thread reaching `report`'s callsites with no
    /// subscriber while that test installs its own can leave tracing-core caching "never" for
    /// one of them, and the test then misses its events (2 runs in 60 did).
    fn serial() -> std::sync::MutexGuard<'static, ()> {
        static SERIAL: StdMutex<()> = StdMutex::new(());
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn scripted(rounds: &[&[Option<i32>]]) -> Vec<String> {
        let (a, b) = mio::net::UnixStream::pair().unwrap();
        // A byte waiting, so a scripted `WouldBlock` is retried at once (a plain thread waits
        // for readiness in level-triggered poll(2)).
        std::io::Write::write_all(&mut &b, b"x").unwrap();
        let sock = PollFd::new(a).unwrap();
        let stalls = Stalls::default();
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let s2 = seen.clone();
        stalls.set_hook(Arc::new(move |s: &AcceptStall| {
            s2.lock().unwrap().push(s.to_string());
        }));
        let name = || "unix test".to_string();
        for (round, script) in rounds.iter().enumerate() {
            let mut next = script.iter();
            let got = accept_with(&sock, &stalls, &name, |_| match next.next().unwrap() {
                None => Ok(round),
                Some(errno) => Err(io::Error::from_raw_os_error(*errno)),
            });
            assert_eq!(got.unwrap(), round);
            assert!(next.next().is_none());
        }
        let seen = seen.lock().unwrap().clone();
        seen
    }

    const EMFILE: Option<i32> = Some(libc::EMFILE);
    const EAGAIN: Option<i32> = Some(libc::EAGAIN);
    const OK: Option<i32> = None;

    /// `k` failures in a row make one episode, reported once when it begins and once when it
    /// ends, with `k` retries; a clean accept reports nothing.
    #[test]
    fn one_report_per_episode_with_exact_retries() {
        let _serial = serial();
        let seen = scripted(&[&[EMFILE, EMFILE, EMFILE, EMFILE, OK], &[OK], &[EMFILE, OK]]);
        assert_eq!(seen.len(), 4, "{seen:#?}");
        assert!(seen[0].starts_with("accept unix test: "), "{}", seen[0]);
        assert!(seen[0].contains("RLIMIT_NOFILE"), "{}", seen[0]);
        assert!(seen[0].contains("ulimit -n"), "{}", seen[0]);
        assert!(seen[1].contains(": recovered after "), "{}", seen[1]);
        assert!(seen[1].ends_with(", 4 retries"), "{}", seen[1]);
        assert!(seen[2].starts_with("accept unix test: "), "{}", seen[2]);
        assert!(seen[3].ends_with(", 1 retry"), "{}", seen[3]);
    }

    /// A retry that finds descriptors free but no connection pending ends the episode then,
    /// not at the next connection (which may come much later).
    #[test]
    fn would_block_ends_an_episode() {
        let _serial = serial();
        let seen = scripted(&[&[EMFILE, EMFILE, EAGAIN, OK]]);
        assert_eq!(seen.len(), 2, "{seen:#?}");
        assert!(seen[1].ends_with(", 2 retries"), "{}", seen[1]);
    }

    /// The same reports reach `tracing` as warnings, one per begin and one per end, whether or
    /// not a hook is installed.
    #[test]
    fn reports_are_tracing_warnings() {
        let _serial = serial();
        use std::sync::atomic::AtomicU64;
        /// Collects the messages of the events it is given, with their level.
        #[derive(Default)]
        struct Collect(StdMutex<Vec<(tracing::Level, String)>>, AtomicU64);
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn fmt::Debug) {
                if f.name() == "message" {
                    self.0 = format!("{v:?}");
                }
            }
        }
        impl tracing::Subscriber for Collect {
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(self.1.fetch_add(1, Ordering::Relaxed) + 1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, e: &tracing::Event<'_>) {
                if e.metadata().target().starts_with("gort::net") {
                    let mut m = Message(String::new());
                    e.record(&mut m);
                    self.0.lock().unwrap().push((*e.metadata().level(), m.0));
                }
            }
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }
        let collect = Arc::new(Collect::default());
        // The thread's default subscriber: `scripted` accepts on this plain thread.
        let hooked = tracing::subscriber::with_default(collect.clone(), || {
            scripted(&[&[EMFILE, EMFILE, OK], &[OK], &[ENFILE_, OK]])
        });
        let events = collect.0.lock().unwrap();
        assert_eq!(events.len(), 4, "{events:#?}");
        for (i, (level, msg)) in events.iter().enumerate() {
            assert_eq!(*level, tracing::Level::WARN);
            assert_eq!(msg, &hooked[i]);
        }
    }

    const ENFILE_: Option<i32> = Some(libc::ENFILE);

    /// Closing the listener while an episode is open ends it, reported as not recovered.
    #[test]
    fn close_ends_an_episode() {
        let _serial = serial();
        let (a, _b) = mio::net::UnixStream::pair().unwrap();
        let sock = PollFd::new(a).unwrap();
        let stalls = Stalls::default();
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let s2 = seen.clone();
        stalls.set_hook(Arc::new(move |s: &AcceptStall| {
            if let AcceptStall::Ended {
                retries, recovered, ..
            } = s
            {
                s2.lock().unwrap().push((*retries, *recovered));
            }
        }));
        let mut calls = 0;
        let r: io::Result<()> = accept_with(&sock, &stalls, &|| "x".into(), |_| {
            calls += 1;
            if calls == 3 {
                sock.close();
            }
            Err(io::Error::from_raw_os_error(libc::ENFILE))
        });
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::NotConnected);
        assert_eq!(*seen.lock().unwrap(), [(3, false)]);
    }
}
