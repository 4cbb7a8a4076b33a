//! Where trace events are recorded: a buffer per thread, owned by it, and the session that
//! collects them.
//!
//! A thread records into its current [`Segment`] (a fixed array and an atomic length) without
//! a lock: it writes slot `len`, then publishes `len + 1` with a release store. The session
//! lists every segment handed out since `start`, under a lock taken only when a thread needs a
//! new segment (its first event of the session, or a full one: every `SEGMENT_EVENTS`) and by
//! `start`/`stop`. The lock is one of the scheduler's (`loom::lock_std`), so the preemption
//! handler does not stop a thread that holds it. `stop` reads each segment's length (acquire) and copies the slots below it.
//!
//! Invariants:
//! - a slot is written once, by the segment's owner thread, before the length that covers it
//!   is published; readers read only slots below a length they loaded with acquire, so no slot
//!   is read while written;
//! - a thread's segments are listed in the order it filled them, so a track's events come out
//!   in time order;
//! - an event recorded by a thread that saw the trace on just before `stop` may miss the
//!   collection: it is dropped with its segment (never read half-written).
//!
//! Recording never runs user code and never switches stacks, so it may be called inside the
//! scheduler's critical sections; it is not async-signal-safe (the signal handler of
//! `preempt.rs` records nothing: sysmon records the preemption it asked for).

use std::cell::{RefCell, UnsafeCell};
use std::mem::MaybeUninit;
use std::sync::Arc;

use super::clock::{self, Calibration};
use crate::loom::std_only::{AtomicBool, AtomicU64, AtomicUsize, Mutex};
use crate::loom::Ordering;

/// Events per segment (32 bytes each: 64 KiB). A thread keeps its last segment after a
/// session stops, until it records in the next one, so this is also what each thread that
/// recorded holds on to between traces.
const SEGMENT_EVENTS: usize = 2048;

/// Track ids of threads that are not Ms start here (Ms use their id).
const OTHER_TRACKS: u32 = 1000;

/// What happened (the meaning of `a` and `b` per kind is in `trace.rs`'s `Kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    /// Nanoseconds since the process's trace epoch (a clock stamp while in a buffer:
    /// `clock.rs`).
    pub(crate) ts: u64,
    pub(crate) kind: super::Kind,
    pub(crate) a: u64,
    pub(crate) b: u64,
}

/// A thread's track: the timeline row its events go to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Track {
    pub(crate) tid: u32,
    pub(crate) name: String,
}

/// A fixed run of one thread's events.
struct Segment {
    tid: u32,
    slots: Box<[UnsafeCell<MaybeUninit<Event>>]>,
    len: AtomicUsize,
}

// SAFETY: slots are written only by the owner thread below the published length's next
// index and read by others only below a length loaded with acquire (module invariants), so no
// slot is accessed by two threads at once unsynchronised. `Event` is plain data.
unsafe impl Sync for Segment {}
// SAFETY: as above; a segment holds plain data.
unsafe impl Send for Segment {}

impl Segment {
    fn new(tid: u32) -> Segment {
        Segment {
            tid,
            slots: (0..SEGMENT_EVENTS)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
            len: AtomicUsize::new(0),
        }
    }

    /// Owner side: appends `e`; false if the segment is full.
    fn push(&self, e: Event) -> bool {
        let i = self.len.load(Ordering::Relaxed);
        if i == SEGMENT_EVENTS {
            return false;
        }
        // SAFETY: only the owner thread writes, and slot `i` is above every published length,
        // so no reader looks at it (module invariants).
        unsafe { (*self.slots[i].get()).write(e) };
        self.len.store(i + 1, Ordering::Release);
        true
    }

    /// Reader side: the events published so far.
    fn published(&self) -> impl Iterator<Item = Event> + '_ {
        let n = self.len.load(Ordering::Acquire);
        self.slots[..n]
            .iter()
            // SAFETY: slots below a length loaded with acquire were written before its release
            // store and are never written again.
            .map(|s| unsafe { (*s.get()).assume_init() })
    }
}

/// True while a trace is recorded: the one load of every event site.
pub(crate) static TRACING: AtomicBool = AtomicBool::new(false);

/// The current session's number; a thread whose buffer belongs to another starts a new one.
static SESSION_ID: AtomicU64 = AtomicU64::new(0);

struct Session {
    segments: Vec<Arc<Segment>>,
    tracks: Vec<Track>,
    next_other: u32,
    clock: Calibration,
}

static SESSION: Mutex<Session> = Mutex::new(Session {
    segments: Vec::new(),
    tracks: Vec::new(),
    next_other: OTHER_TRACKS,
    clock: Calibration {
        tsc: false,
        start_stamp: 0,
        start_ns: 0,
        end_stamp: 0,
        end_ns: 0,
    },
});

/// This thread's buffer: its session, track and current segment.
struct Local {
    session: u64,
    tid: u32,
    segment: Option<Arc<Segment>>,
}

std::thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local { session: 0, tid: 0, segment: None })
    };
}

/// Starts a session; false if one is on.
pub(crate) fn start() -> bool {
    let mut s = crate::loom::lock_std(&SESSION);
    if TRACING.load(Ordering::Relaxed) {
        return false;
    }
    s.segments.clear();
    s.tracks.clear();
    s.next_other = OTHER_TRACKS;
    s.clock = Calibration::start();
    SESSION_ID.fetch_add(1, Ordering::Relaxed);
    TRACING.store(true, Ordering::Release);
    true
}

/// What a stopped session recorded.
pub(crate) struct Collected {
    pub(crate) tracks: Vec<Track>,
    /// Per track (same order), its events in time order.
    pub(crate) events: Vec<Vec<Event>>,
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
}

/// Stops the session and collects its events (an empty collection if none was on).
pub(crate) fn stop() -> Collected {
    let mut s = crate::loom::lock_std(&SESSION);
    let was_on = TRACING.swap(false, Ordering::AcqRel);
    s.clock.stop();
    let end_ns = s.clock.end_ns;
    SESSION_ID.fetch_add(1, Ordering::Relaxed);
    let tracks = std::mem::take(&mut s.tracks);
    let segments = std::mem::take(&mut s.segments);
    if !was_on {
        return Collected {
            tracks: Vec::new(),
            events: Vec::new(),
            start_ns: end_ns,
            end_ns,
        };
    }
    let mut events: Vec<Vec<Event>> = vec![Vec::new(); tracks.len()];
    for seg in &segments {
        if let Some(i) = tracks.iter().position(|t| t.tid == seg.tid) {
            let clock = s.clock;
            events[i].extend(seg.published().map(|e| Event {
                ts: clock.to_ns(e.ts),
                ..e
            }));
        }
    }
    Collected {
        tracks,
        events,
        start_ns: s.clock.start_ns,
        end_ns,
    }
}

/// Records an event on this thread's track. Events recorded while the thread exits (its
/// buffer gone) or while a session stops are dropped.
#[cold]
#[inline(never)]
pub(crate) fn record(kind: super::Kind, a: u64, b: u64) {
    let e = Event {
        ts: clock::stamp(clock::uses_tsc()),
        kind,
        a,
        b,
    };
    let _ = LOCAL.try_with(|local| {
        let Ok(mut local) = local.try_borrow_mut() else {
            return;
        };
        let session = SESSION_ID.load(Ordering::Acquire);
        if local.session == session {
            if let Some(seg) = &local.segment {
                if seg.push(e) {
                    return;
                }
            }
        }
        if let Some(seg) = new_segment(&mut local, session) {
            seg.push(e);
        }
    });
}

/// A fresh segment for this thread in session `session`, listed; `None` if that session is
/// over.
#[cold]
fn new_segment(local: &mut Local, session: u64) -> Option<Arc<Segment>> {
    let mut s = crate::loom::lock_std(&SESSION);
    if !TRACING.load(Ordering::Relaxed) || SESSION_ID.load(Ordering::Relaxed) != session {
        return None;
    }
    if local.session != session {
        local.tid = match crate::machine::current_machine_id() {
            Some(m) => m as u32,
            None => {
                s.next_other += 1;
                s.next_other - 1
            }
        };
        let name = match crate::machine::current_machine_id() {
            Some(m) => format!("M{m}"),
            None => std::thread::current()
                .name()
                .map_or_else(|| format!("thread {}", local.tid), str::to_owned),
        };
        s.tracks.push(Track {
            tid: local.tid,
            name,
        });
        local.session = session;
    }
    let seg = Arc::new(Segment::new(local.tid));
    s.segments.push(Arc::clone(&seg));
    local.segment = Some(Arc::clone(&seg));
    Some(seg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_publishes_what_its_owner_pushed() {
        let seg = Segment::new(3);
        for i in 0..SEGMENT_EVENTS as u64 {
            let e = Event {
                ts: i,
                kind: super::super::Kind::Start,
                a: i,
                b: 0,
            };
            assert!(seg.push(e));
        }
        let full = Event {
            ts: 0,
            kind: super::super::Kind::Start,
            a: 0,
            b: 0,
        };
        assert!(!seg.push(full));
        assert!(seg.published().map(|e| e.a).eq(0..SEGMENT_EVENTS as u64));
    }
}
