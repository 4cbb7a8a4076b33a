//! `GORT_DEBUG=parkstacks`: each parked goroutine's own backtrace, for the goroutine dump.
//!
//! Unwinding a switched-out goroutine's stack from the dumping thread would need an unwinder
//! that starts from a foreign register set, which std's backtrace does not offer. So, when
//! asked, a goroutine captures its backtrace itself as it parks, on its own stack (a few
//! microseconds: it is a debugging mode), and the dump prints it, resolved only then. Off, a
//! park pays one relaxed load and a branch.
//!
//! The captures live in a side table keyed by goroutine id, not in the header (the header
//! stays small for everyone): written by the goroutine as it parks, removed by the M that runs
//! it to its end, read by the dump. Its lock is a leaf (`docs/HACKING.md`).

use std::backtrace::Backtrace;
use std::collections::HashMap;
use std::sync::Arc;

use crate::loom::std_only::{AtomicU8, Mutex};
use crate::loom::{lock_std, Ordering};

/// 0: not read yet; 1: off; 2: on.
static STATE: AtomicU8 = AtomicU8::new(0);
static STACKS: Mutex<Option<HashMap<u64, Arc<Backtrace>>>> = Mutex::new(None);

/// True if `GORT_DEBUG` contains `parkstacks`.
#[inline]
pub(crate) fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        0 => read_setting(),
        s => s == 2,
    }
}

#[cold]
fn read_setting() -> bool {
    let on =
        std::env::var("GORT_DEBUG").is_ok_and(|v| v.split(',').any(|w| w.trim() == "parkstacks"));
    STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
    on
}

/// The goroutine `goid`, about to park, records where (on its own stack).
#[cold]
pub(crate) fn note_park(goid: u64) {
    let bt = Arc::new(Backtrace::force_capture());
    let old = lock_std(&STACKS)
        .get_or_insert_with(HashMap::new)
        .insert(goid, bt);
    drop(old); // outside the lock
}

/// The goroutine `goid` ended.
#[inline]
pub(crate) fn note_end(goid: u64) {
    if enabled() {
        forget(goid);
    }
}

#[cold]
fn forget(goid: u64) {
    let old = lock_std(&STACKS).as_mut().and_then(|m| m.remove(&goid));
    drop(old);
}

/// The backtrace `goid` recorded at its latest park, if any.
pub(crate) fn of(goid: u64) -> Option<Arc<Backtrace>> {
    if !enabled() {
        return None;
    }
    lock_std(&STACKS).as_ref()?.get(&goid).cloned()
}

/// The frames of `bt` from the caller of the park on (the capture's own frames and the
/// runtime's park path cut off), at most `max` of them, each line prefixed with a tab.
pub(crate) fn render(bt: &Backtrace, max: usize) -> String {
    let text = bt.to_string();
    let lines: Vec<&str> = text.lines().collect();
    // A frame starts with "<n>: <symbol>"; keep from the first frame after the last park
    // frame of the runtime.
    let is_frame = |l: &str| {
        let t = l.trim_start();
        t.split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    let park_frame = lines.iter().rposition(|l| {
        is_frame(l)
            && (l.contains("sched::park::")
                || l.contains("::park_for")
                || l.contains("park_timeout_for"))
    });
    let start = park_frame
        .and_then(|i| {
            lines[i + 1..]
                .iter()
                .position(|l| is_frame(l))
                .map(|j| i + 1 + j)
        })
        .unwrap_or(0);
    // The goroutine's entry (its closure's `catch_unwind` wrapper and `sched::goroutine`) ends
    // what is worth showing.
    let is_entry = |l: &str| {
        l.contains("sched::goroutine::") || l.contains("core::panic::unwind_safe::AssertUnwindSafe")
    };
    let mut out = String::new();
    let mut frames = 0;
    for l in &lines[start..] {
        if is_frame(l) {
            if is_entry(l) {
                break;
            }
            frames += 1;
            if frames > max {
                out.push_str("\t...\n");
                break;
            }
            out.push('\t');
        } else {
            out.push_str("\t    ");
        }
        out.push_str(l.trim_start());
        out.push('\n');
    }
    out
}
