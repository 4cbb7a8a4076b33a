//! The execution trace (issue 14): scheduling events recorded per thread with timestamps and
//! written as Chrome/Perfetto trace-event JSON, a track per OS thread.
//!
//! | file               | job                                                             |
//! |--------------------|-----------------------------------------------------------------|
//! | `trace/buffer.rs`  | per-thread buffers (no lock on the hot path) and the session     |
//! | `trace/clock.rs`   | the timestamps: the TSC where the kernel trusts it, else `Instant` |
//! | `trace/json.rs`    | events to trace-event JSON: goroutine slices, unpark→run flows   |
//!
//! Event sites call `trace_record!` (`sched/src/trace.rs`): while no trace is on, that is one
//! relaxed load of `buffer::TRACING` and a branch; without the crate's `trace`
//! feature it compiles to nothing. The sites and what they record (`Kind`):
//! goroutine create (`spawn.rs`), start and stop with its cause (`machine.rs`'s `execute`:
//! park with its wait reason, yield, exit), unpark (`park.rs`, recorded before the goroutine
//! is queued, so it precedes the run it causes), steal and take-over (`scheduler/find.rs`),
//! preemption (`preempt.rs`: the cooperative yield on the goroutine's thread; `sysmon.rs`: a
//! P taken by the signal handler, on sysmon's track, since the handler may not record),
//! blocking-pool enter and exit (`blocking.rs`), and each netpoll that readied goroutines
//! (`scheduler/find.rs`, `scheduler/watcher.rs`).
//!
//! `GORT_TRACE=<path>` starts a trace when the runtime starts and writes it at process exit
//! (an `atexit` hook: `main` returning or `std::process::exit`; not on a signal or abort), or
//! after `GORT_TRACE_SECONDS` seconds if that is set.

#![cfg_attr(not(feature = "trace"), allow(dead_code))]

mod buffer;
mod clock;
mod json;

use std::io::{self, Write};
use std::path::Path;

#[cfg_attr(not(feature = "trace"), allow(unused_imports))]
pub(crate) use buffer::record;
use buffer::Collected;

/// What an event says. `a` and `b` per kind are in each variant's doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A goroutine was created: `a` its id, `b` its spawner's (0: a plain thread).
    Create,
    /// A goroutine starts or resumes running on this thread: `a` its id.
    Start,
    /// It parked: `a` its id, `b` its wait word (`debug/wait.rs`).
    Park,
    /// It yielded (still runnable): `a` its id.
    Yield,
    /// It ended: `a` its id.
    Exit,
    /// This thread made a parked goroutine runnable: `a` its id.
    Unpark,
    /// This M stole a goroutine: `a` its id, `b` the victim P's id.
    Steal,
    /// This M took a goroutine from a stalled P: `a` its id, `b` that P's id.
    TakeOver,
    /// A goroutine yielded to a preemption request: `a` its id.
    CoopPreempt,
    /// Sysmon took an M's P through its signal handler: `a` the M's id, `b` 1 if the thread
    /// was stopped (computing), 0 if detached (blocked).
    SignalPreempt,
    /// A goroutine handed a call to the blocking pool: `a` its id.
    BlockingEnter,
    /// The call came back: `a` its id.
    BlockingExit,
    /// A netpoll readied goroutines: `a` how many, `b` 1 if it was a blocking poll.
    Netpoll,
}

/// The wait reason in a wait word (`debug/wait.rs`), in Go's words; "park" if none.
pub(crate) fn reason_name(wait: u64) -> &'static str {
    crate::debug::wait::unpack(wait)
        .0
        .map_or("park", crate::debug::WaitReason::as_str)
}

/// True while a trace is being recorded.
#[inline(always)]
pub(crate) fn on() -> bool {
    buffer::TRACING.load(crate::loom::Ordering::Relaxed)
}

/// Starts recording an execution trace of the whole process. False if a trace is being
/// recorded already, or if the scheduler was built without its `trace` feature (nothing
/// would be recorded).
///
/// ```
/// use sched::debug::trace;
/// if trace::start() {
///     sched::spawn(|| ()).join().unwrap();
///     let t = trace::stop();
///     assert!(t.to_json().starts_with("{\"traceEvents\":["));
/// }
/// ```
pub fn start() -> bool {
    cfg!(feature = "trace") && buffer::start()
}

/// True while a trace is being recorded ([`start`], or `GORT_TRACE`).
///
/// ```
/// assert!(!sched::debug::trace::is_on());
/// ```
pub fn is_on() -> bool {
    on()
}

/// Stops the trace and returns what it recorded (an empty trace if none was on). Events that
/// threads record while it stops may be left out; a goroutine running at that moment is cut
/// at the stop.
///
/// ```
/// let t = sched::debug::trace::stop();
/// assert!(t.event_count() == 0 || !sched::debug::trace::is_on());
/// ```
pub fn stop() -> Trace {
    Trace(buffer::stop())
}

/// [`stop`], then writes the trace's JSON to the file at `path`.
///
/// ```no_run
/// sched::debug::trace::start();
/// // ... the program ...
/// sched::debug::trace::stop_to("trace.json").unwrap();
/// ```
pub fn stop_to(path: impl AsRef<Path>) -> io::Result<()> {
    stop().write_to(path)
}

/// A recorded execution trace: [`to_json`](Trace::to_json) gives Chrome's trace-event JSON,
/// which Perfetto (ui.perfetto.dev) and `chrome://tracing` open as one track per thread
/// ("M0".., then other threads by name): a slice per goroutine run (`G<id>`, its `args` say
/// how it ended), a short `unpark G<id>` slice where a goroutine was made runnable with a flow
/// arrow to its next run, and instants for creates, steals, preemptions, blocking calls and
/// netpolls. `docs/DEBUGGING.md` shows one.
///
/// ```
/// use sched::debug::trace;
/// let started = trace::start();
/// let (tx, rx) = std::sync::mpsc::channel();
/// sched::spawn(move || tx.send(sched::current_id()).unwrap()).join().unwrap();
/// let t: trace::Trace = trace::stop();
/// if started {
///     let id = rx.recv().unwrap().unwrap();
///     assert!(t.to_json().contains(&format!("\"name\":\"create G{id}\"")));
/// }
/// ```
pub struct Trace(Collected);

impl Trace {
    /// The number of events recorded.
    ///
    /// ```
    /// assert_eq!(sched::debug::trace::stop().event_count(), 0);
    /// ```
    pub fn event_count(&self) -> usize {
        self.0.events.iter().map(Vec::len).sum()
    }

    /// The trace as trace-event JSON (the object form, `{"traceEvents":[...]}`).
    ///
    /// ```
    /// let json = sched::debug::trace::stop().to_json();
    /// assert!(json.starts_with("{\"traceEvents\":[") && json.ends_with("}\n"));
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out).expect("writing to a Vec");
        String::from_utf8(out).expect("the JSON is UTF-8")
    }

    /// Writes [`to_json`](Trace::to_json)'s text to `w`.
    ///
    /// ```
    /// let mut out = Vec::new();
    /// sched::debug::trace::stop().write_json(&mut out).unwrap();
    /// assert!(!out.is_empty());
    /// ```
    pub fn write_json(&self, w: impl Write) -> io::Result<()> {
        json::write(&self.0, w)
    }

    /// Writes the JSON to the file at `path` (created or truncated).
    ///
    /// ```no_run
    /// sched::debug::trace::stop().write_to("trace.json").unwrap();
    /// ```
    pub fn write_to(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let f = std::fs::File::create(path)?;
        let mut w = io::BufWriter::new(f);
        self.write_json(&mut w)?;
        w.flush()
    }
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("threads", &self.0.tracks.len())
            .field("events", &self.event_count())
            .finish()
    }
}

/// Where `GORT_TRACE` asked the trace to go; taken by whichever writes it (the timer of
/// `GORT_TRACE_SECONDS` or the exit hook).
static TRACE_PATH: crate::loom::std_only::Mutex<Option<std::path::PathBuf>> =
    crate::loom::std_only::Mutex::new(None);

/// At runtime start: `GORT_TRACE=<path>` starts a trace, written at process exit, or after
/// `GORT_TRACE_SECONDS` seconds if that is set (for servers, which seldom exit normally).
pub(crate) fn start_from_env() {
    let Some(path) = std::env::var_os("GORT_TRACE").filter(|p| !p.is_empty()) else {
        return;
    };
    if !start() {
        return;
    }
    *TRACE_PATH.lock().unwrap_or_else(|e| e.into_inner()) = Some(path.into());
    // SAFETY: `write_env_trace` is an `extern "C" fn()` that does not unwind (it catches).
    if unsafe { libc::atexit(write_env_trace) } != 0 {
        eprintln!("gort: GORT_TRACE: could not register the exit hook");
    }
    let seconds = std::env::var("GORT_TRACE_SECONDS").ok();
    if let Some(secs) = seconds.and_then(|s| s.trim().parse::<f64>().ok()) {
        let spawned = std::thread::Builder::new()
            .name("gort-trace-timer".into())
            .spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs_f64(secs.max(0.0)));
                write_env_trace();
            });
        if let Err(e) = spawned {
            eprintln!("gort: GORT_TRACE_SECONDS: {e}");
        }
    }
}

/// Stops the `GORT_TRACE` trace and writes it, once.
extern "C" fn write_env_trace() {
    let _ = std::panic::catch_unwind(|| {
        let path = TRACE_PATH.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(path) = path else {
            return;
        };
        match stop_to(&path) {
            Ok(()) => eprintln!("gort: GORT_TRACE: wrote {}", path.display()),
            Err(e) => eprintln!("gort: GORT_TRACE: writing {}: {e}", path.display()),
        }
    });
}
