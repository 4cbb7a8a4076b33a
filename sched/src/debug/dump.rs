//! The goroutine dump: a snapshot of every goroutine the runtime can see ([`goroutines`]) and
//! Go's traceback text for it ([`dump`]), identical goroutines grouped as Go's `traceback`
//! does ("1000 goroutines [chan receive, 2.1s]").
//!
//! What it sees (`registry.rs`): every goroutine that has parked or yielded at least once,
//! with its name, state, wait reason and how long, spawn site and spawner; the goroutine each
//! M is running now (by id, from its monitor: `preempt.rs`), and, as a count, the rest
//! (spawned, not yet started, or running without ever having switched out).
//!
//! A snapshot is taken one M's list at a time under that list's lock, so it is not atomic: a
//! goroutine may change state while the dump is written. No backtraces of the goroutines'
//! own stacks: the dump names the spawn site and the wait instead (docs/DEBUGGING.md says why).

use std::backtrace::Backtrace;
use std::collections::HashMap;
use std::io::{self, Write};
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::goroutine::Header;
use crate::loom::Ordering;

use super::registry;
use super::wait::{self, WaitReason};

/// What a goroutine was doing when the snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Running on M `machine` (an OS thread of the runtime).
    Running {
        /// The M's number (as `current_machine_id` gives it).
        machine: usize,
    },
    /// Ready to run, waiting for its M or a P.
    Runnable,
    /// Parked, waiting for `reason` (and `detail`, such as a descriptor) for `waited`.
    Waiting {
        /// What it waits for.
        reason: WaitReason,
        /// A detail of the reason: the file descriptor of an I/O wait.
        detail: Option<u64>,
        /// How long it has waited (to within one sysmon round, 10 ms: `wait.rs`).
        waited: Duration,
    },
}

/// One goroutine in a snapshot ([`goroutines`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GoroutineInfo {
    /// Its id (`current_id`).
    pub id: u64,
    /// Its name, if it was given one (`Builder::name`).
    pub name: Option<String>,
    /// What it was doing.
    pub state: State,
    /// The source location of the `spawn` (or `go!`) that started it.
    pub spawned_at: &'static Location<'static>,
    /// The goroutine that spawned it; 0 if a plain thread did.
    pub parent: u64,
    /// The M it stays on for life (none in migrate mode).
    pub home: Option<usize>,
    /// Its own backtrace at its latest park, with `GORT_DEBUG=parkstacks` (`stacks.rs`).
    pub backtrace: Option<Arc<Backtrace>>,
}

/// Every goroutine that has parked or yielded at least once, as it is now.
///
/// ```
/// use sched::debug::{goroutines, State, WaitReason};
/// let u = std::sync::Arc::new(std::sync::Mutex::new(None));
/// let (tx, rx) = std::sync::mpsc::channel();
/// let u2 = u.clone();
/// let h = sched::spawn(move || {
///     *u2.lock().unwrap() = Some(sched::unparker());
///     tx.send(sched::current_id().unwrap()).unwrap();
///     sched::park();
/// });
/// let id = rx.recv().unwrap();
/// let found = loop {
///     // It is listed once it has switched out.
///     if let Some(g) = goroutines().into_iter().find(|g| g.id == id) {
///         if let State::Waiting { reason, .. } = g.state {
///             break reason;
///         }
///     }
///     std::thread::yield_now();
/// };
/// assert_eq!(found, WaitReason::Park);
/// u.lock().unwrap().take().unwrap().unpark();
/// h.join().unwrap();
/// ```
pub fn goroutines() -> Vec<GoroutineInfo> {
    snapshot(|_| true)
}

/// The goroutines for which `keep` holds.
pub(crate) fn snapshot(mut keep: impl FnMut(&Header) -> bool) -> Vec<GoroutineInfo> {
    let running = running_now();
    let mut out = Vec::new();
    registry::for_each_listed(|h| {
        if keep(h) {
            out.push(info(h, &running));
        }
    });
    out.sort_by_key(|g| g.id);
    // Outside the registry's lock (the side table has its own).
    for g in &mut out {
        if matches!(g.state, State::Waiting { .. }) {
            g.backtrace = super::stacks::of(g.id);
        }
    }
    out
}

/// Goroutine id → M, for the goroutines the Ms run now.
fn running_now() -> HashMap<u64, usize> {
    crate::sysmon::machines()
        .iter()
        .filter_map(|home| {
            let (tick, goid) = home.monitor.sample();
            (tick % 2 == 1).then_some((goid, home.id))
        })
        .collect()
}

/// Reads `h` (alive: the caller holds its registry list's lock).
fn info(h: &Header, running: &HashMap<u64, usize>) -> GoroutineInfo {
    let state = if h.park.is_parked() {
        let (reason, detail, waited) = wait::unpack(h.wait.load(Ordering::Relaxed));
        State::Waiting {
            reason: reason.unwrap_or(WaitReason::Park),
            detail,
            waited,
        }
    } else if let Some(&machine) = running.get(&h.id) {
        State::Running { machine }
    } else {
        State::Runnable
    };
    GoroutineInfo {
        id: h.id,
        name: h.name.as_deref().cloned(),
        state,
        spawned_at: h.origin.site,
        parent: h.origin.parent,
        home: h.home().map(|home| home.id),
        backtrace: None,
    }
}

/// Writes every goroutine to `w` in Go's traceback style, identical ones grouped.
///
/// ```
/// let mut out = Vec::new();
/// sched::debug::dump(&mut out).unwrap();
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.starts_with("goroutine dump:"));
/// ```
pub fn dump(w: &mut impl Write) -> io::Result<()> {
    write_dump(w, usize::MAX)
}

/// The dump, with at most `max_groups` groups (the deadlock report's bound).
pub(crate) fn write_dump(w: &mut impl Write, max_groups: usize) -> io::Result<()> {
    let running = running_now();
    let listed = goroutines();
    let alive = crate::scheduler::num_goroutine();
    let unlisted_running: Vec<(u64, usize)> = {
        let mut v: Vec<_> = running
            .iter()
            .filter(|(id, _)| !listed.iter().any(|g| g.id == **id))
            .map(|(&id, &m)| (id, m))
            .collect();
        v.sort_unstable();
        v
    };
    let unstarted = alive.saturating_sub(listed.len() + unlisted_running.len());
    writeln!(
        w,
        "goroutine dump: {alive} goroutine(s): {} listed, {} running without having switched \
         out, {unstarted} not yet started or not yet switched out\n",
        listed.len(),
        unlisted_running.len()
    )?;
    for (id, m) in &unlisted_running {
        writeln!(w, "goroutine {id} [running on M{m}]\n")?;
    }
    write_groups(w, &listed, max_groups)
}

/// Writes `gs` grouped by (state, wait reason, spawn site), largest groups first, at most
/// `max_groups` of them.
pub(crate) fn write_groups(
    w: &mut impl Write,
    gs: &[GoroutineInfo],
    max_groups: usize,
) -> io::Result<()> {
    let groups = group(gs);
    for g in groups.iter().take(max_groups) {
        write_group(w, g)?;
    }
    if groups.len() > max_groups {
        let rest: usize = groups[max_groups..].iter().map(Vec::len).sum();
        writeln!(
            w,
            "... {} more group(s), {rest} goroutine(s), not shown",
            groups.len() - max_groups
        )?;
    }
    Ok(())
}

/// What makes two goroutines "identical" in a dump.
fn key(g: &GoroutineInfo) -> (String, &'static str, u32, u32) {
    let state = match g.state {
        State::Running { .. } => "running".to_string(),
        State::Runnable => "runnable".to_string(),
        State::Waiting { reason, .. } => reason.to_string(),
    };
    let site = g.spawned_at;
    (state, site.file(), site.line(), site.column())
}

fn group(gs: &[GoroutineInfo]) -> Vec<Vec<&GoroutineInfo>> {
    let mut by_key: HashMap<_, Vec<&GoroutineInfo>> = HashMap::new();
    for g in gs {
        by_key.entry(key(g)).or_default().push(g);
    }
    let mut groups: Vec<_> = by_key.into_values().collect();
    groups.sort_by_key(|g| (std::cmp::Reverse(g.len()), g[0].id));
    groups
}

fn write_group(w: &mut impl Write, g: &[&GoroutineInfo]) -> io::Result<()> {
    let first = g[0];
    if g.len() == 1 {
        let name = first
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        writeln!(w, "goroutine {}{name} [{}]:", first.id, describe(&[first]))?;
        let by = match first.parent {
            0 => "a thread".to_string(),
            p => format!("goroutine {p}"),
        };
        writeln!(w, "\tspawned at {} by {by}", site(first.spawned_at))?;
        write_backtrace(w, first)?;
        return writeln!(w);
    }
    const IDS: usize = 10;
    let ids: Vec<String> = g.iter().take(IDS).map(|x| x.id.to_string()).collect();
    let more = if g.len() > IDS { ", ..." } else { "" };
    writeln!(w, "{} goroutines [{}]:", g.len(), describe(g))?;
    writeln!(w, "\tids {}{more}", ids.join(", "))?;
    writeln!(w, "\tspawned at {}", site(first.spawned_at))?;
    write_backtrace(w, first)?;
    writeln!(w)
}

/// The frames a goroutine recorded at its park (`GORT_DEBUG=parkstacks`), if any.
fn write_backtrace(w: &mut impl Write, g: &GoroutineInfo) -> io::Result<()> {
    match &g.backtrace {
        Some(bt) => w.write_all(super::stacks::render(bt, MAX_FRAMES).as_bytes()),
        None => Ok(()),
    }
}

/// Frames shown of a parked goroutine's backtrace.
const MAX_FRAMES: usize = 24;

/// `file:line:column`, with `dir/../` steps folded (an example built by another package shows
/// as `runtime/../examples/x.rs`).
fn site(at: &Location<'_>) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in at.file().split('/') {
        match part {
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    format!("{}:{}:{}", parts.join("/"), at.line(), at.column())
}

/// "chan receive, 1.2s" (a range for a group), "running on M3", "runnable", "IO wait (read)
/// on fd 7, 20ms".
fn describe(g: &[&GoroutineInfo]) -> String {
    match g[0].state {
        State::Running { machine } if g.len() == 1 => format!("running on M{machine}"),
        State::Running { .. } => "running".into(),
        State::Runnable => "runnable".into(),
        State::Waiting { reason, detail, .. } => {
            let waited = g.iter().filter_map(|x| match x.state {
                State::Waiting { waited, .. } => Some(waited),
                _ => None,
            });
            let (lo, hi) = waited.fold((Duration::MAX, Duration::ZERO), |(lo, hi), d| {
                (lo.min(d), hi.max(d))
            });
            let fd = match detail {
                Some(fd) if g.len() == 1 => format!(" on fd {fd}"),
                _ => String::new(),
            };
            if lo == hi {
                format!("{reason}{fd}, {}", since(lo))
            } else {
                format!("{reason}{fd}, {}..{}", since(lo), since(hi))
            }
        }
    }
}

/// A wait's length as the dump prints it: milliseconds below 10 s, then seconds, then minutes
/// (Go prints only minutes, from one up).
fn since(d: Duration) -> String {
    match d.as_millis() {
        ms if ms < 10_000 => format!("{ms}ms"),
        ms if ms < 120_000 => format!("{}s", ms / 1000),
        ms => format!("{} minutes", ms / 60_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(id: u64, state: State) -> GoroutineInfo {
        GoroutineInfo {
            id,
            name: None,
            state,
            spawned_at: Location::caller(),
            parent: 1,
            home: None,
            backtrace: None,
        }
    }

    #[test]
    fn identical_goroutines_group() {
        let wait = |ms| State::Waiting {
            reason: WaitReason::ChanReceive,
            detail: None,
            waited: Duration::from_millis(ms),
        };
        let gs: Vec<_> = (10..20)
            .map(|i| g(i, wait(i * 100)))
            .chain([g(3, State::Runnable)])
            .collect();
        let mut out = Vec::new();
        write_groups(&mut out, &gs, 10).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("10 goroutines [chan receive, 1000ms..1900ms]:\n\tids 10, 11,"),
            "{text}"
        );
        assert!(
            text.contains("goroutine 3 [runnable]:\n\tspawned at "),
            "{text}"
        );
        let mut out = Vec::new();
        write_groups(&mut out, &gs, 1).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("... 1 more group(s), 1 goroutine(s), not shown\n"),
            "{text}"
        );
    }

    #[test]
    fn waits_print_in_go_units() {
        assert_eq!(since(Duration::from_millis(1500)), "1500ms");
        assert_eq!(since(Duration::from_secs(30)), "30s");
        assert_eq!(since(Duration::from_secs(300)), "5 minutes");
    }
}
