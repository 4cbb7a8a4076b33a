//! A collected trace as Chrome's trace-event JSON (the format Perfetto and `chrome://tracing`
//! read; timestamps in microseconds, with nanosecond decimals).
//!
//! What each recorded event becomes:
//! - `Start` .. `Park`/`Yield`/`Exit` of one goroutine on one track: a complete (`X`) slice
//!   `G<id>`; `args.end` says how it ended. A run already going when the trace started begins
//!   at the trace's start; one still going at its stop ends there.
//! - `Unpark`: a short `X` slice `unpark G<id>` on the waker's track (nested in the waker's
//!   goroutine slice if it ran one, else in the scheduler's time between slices), at most 1 µs
//!   and never past its parent's end or the track's next slice, so slices nest properly; and a
//!   flow (`s` in the middle of that slice, `f` 1 ns into the run, bound to its enclosing slice
//!   by `bp: e`) to the first run of that goroutine starting at or after the unpark. Both ends
//!   sit inside their slices rather than on an edge: a viewer that meets a flow end and a slice
//!   start at the same timestamp need not process the slice first.
//! - the rest: thread-scoped instants (`i`).
//!
//! Invariants of the output: every `X` has `dur >= 0`; slices of one track are disjoint or
//! nested; each flow's `s` lies inside an "unpark" slice of its track and its `f` 1 ns after
//! the start of a `G<id>` slice of the woken goroutine (at its start if it is shorter).

use std::collections::HashMap;
use std::io::{self, Write};

use super::buffer::{Collected, Event};
use super::Kind;

/// An unpark slice lasts this long at most (ns).
const UNPARK_MARK_NS: u64 = 1000;

struct Slice {
    track: usize,
    goid: u64,
    start: u64,
    end: u64,
    /// True if the run began inside the trace (a flow may end here).
    began: bool,
    ending: String,
}

pub(super) fn write(c: &Collected, w: impl Write) -> io::Result<()> {
    let mut w = io::BufWriter::new(w);
    let rel = |ts: u64| ts.saturating_sub(c.start_ns);
    let end = rel(c.end_ns);
    writeln!(w, "{{\"traceEvents\":[")?;
    let mut first = true;
    let mut item = |w: &mut io::BufWriter<_>, s: String| -> io::Result<()> {
        if !first {
            w.write_all(b",\n")?;
        }
        first = false;
        w.write_all(s.as_bytes())
    };
    item(
        &mut w,
        "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":\"gort\"}}".into(),
    )?;
    for t in &c.tracks {
        item(
            &mut w,
            format!(
                "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{},\"args\":{{\"name\":{}}}}}",
                t.tid,
                quote(&t.name)
            ),
        )?;
        item(
            &mut w,
            format!(
                "{{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":1,\"tid\":{},\"args\":{{\"sort_index\":{}}}}}",
                t.tid, t.tid
            ),
        )?;
    }
    let slices = goroutine_slices(c, end);
    for s in &slices {
        item(
            &mut w,
            format!(
                "{{\"name\":\"G{g}\",\"cat\":\"goroutine\",\"ph\":\"X\",\"pid\":1,\"tid\":{tid},\"ts\":{ts},\"dur\":{dur},\"args\":{{\"goid\":{g},\"end\":{e}}}}}",
                g = s.goid,
                tid = c.tracks[s.track].tid,
                ts = us(s.start),
                dur = us(s.end - s.start),
                e = quote(&s.ending)
            ),
        )?;
    }
    // Runs that began in the trace, per goroutine, in time order: where flows end.
    let mut runs: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, s) in slices.iter().enumerate() {
        if s.began {
            runs.entry(s.goid).or_default().push(i);
        }
    }
    for v in runs.values_mut() {
        v.sort_by_key(|&i| slices[i].start);
    }
    let mut by_track: Vec<Vec<usize>> = vec![Vec::new(); c.tracks.len()];
    for (i, s) in slices.iter().enumerate() {
        by_track[s.track].push(i);
    }
    let mut flow_id = 0u64;
    for (t, events) in c.events.iter().enumerate() {
        let tid = c.tracks[t].tid;
        let unparks: Vec<u64> = events
            .iter()
            .filter(|e| e.kind == Kind::Unpark)
            .map(|e| rel(e.ts))
            .collect();
        for e in events {
            let ts = rel(e.ts);
            if e.kind != Kind::Unpark {
                if let Some(s) = instant(e, ts, tid) {
                    item(&mut w, s)?;
                }
                continue;
            }
            let limit = mark_limit(&slices, &by_track[t], &unparks, ts, end);
            let dur = limit.saturating_sub(ts);
            item(
                &mut w,
                format!(
                    "{{\"name\":\"unpark G{g}\",\"cat\":\"unpark\",\"ph\":\"X\",\"pid\":1,\"tid\":{tid},\"ts\":{ts},\"dur\":{dur},\"args\":{{\"goid\":{g}}}}}",
                    g = e.a,
                    ts = us(ts),
                    dur = us(dur)
                ),
            )?;
            let Some(run) = runs.get(&e.a).and_then(|v| {
                let k = v.partition_point(|&i| slices[i].start < ts);
                v.get(k).map(|&i| &slices[i])
            }) else {
                continue;
            };
            flow_id += 1;
            item(
                &mut w,
                format!(
                    "{{\"name\":\"unpark\",\"cat\":\"flow\",\"ph\":\"s\",\"id\":{flow_id},\"pid\":1,\"tid\":{tid},\"ts\":{ts},\"args\":{{\"goid\":{g}}}}}",
                    g = e.a,
                    ts = us(ts + dur / 2)
                ),
            )?;
            item(
                &mut w,
                format!(
                    "{{\"name\":\"unpark\",\"cat\":\"flow\",\"ph\":\"f\",\"bp\":\"e\",\"id\":{flow_id},\"pid\":1,\"tid\":{rtid},\"ts\":{ts},\"args\":{{\"goid\":{g}}}}}",
                    g = e.a,
                    rtid = c.tracks[run.track].tid,
                    ts = us(run.start + (run.end - run.start).min(1))
                ),
            )?;
        }
    }
    w.write_all(b"\n],\"displayTimeUnit\":\"ns\"}\n")?;
    w.flush()
}

/// The goroutine runs of every track, by pairing each `Start` with the stop that follows it.
fn goroutine_slices(c: &Collected, end: u64) -> Vec<Slice> {
    let mut out = Vec::new();
    for (t, events) in c.events.iter().enumerate() {
        let mut open: Option<(u64, u64, bool)> = None;
        let mut started_any = false;
        for e in events {
            let ts = e.ts.saturating_sub(c.start_ns);
            let ending = match e.kind {
                Kind::Start => {
                    if let Some((goid, start, began)) = open.take() {
                        out.push(slice(t, goid, start, ts, began, "cut".into()));
                    }
                    open = Some((e.a, ts, true));
                    started_any = true;
                    continue;
                }
                Kind::Park => park_ending(e),
                Kind::Yield => "yield".to_string(),
                Kind::Exit => "exit".to_string(),
                _ => continue,
            };
            match open.take() {
                Some((goid, start, began)) if goid == e.a => {
                    out.push(slice(t, goid, start, ts, began, ending))
                }
                Some((goid, start, began)) => {
                    out.push(slice(t, goid, start, ts, began, "cut".into()))
                }
                // Running when the trace started.
                None if !started_any => {
                    started_any = true;
                    out.push(slice(t, e.a, 0, ts, false, ending))
                }
                None => {}
            }
        }
        if let Some((goid, start, began)) = open {
            out.push(slice(
                t,
                goid,
                start,
                end.max(start),
                began,
                "running at stop".into(),
            ));
        }
    }
    out
}

fn slice(track: usize, goid: u64, start: u64, end: u64, began: bool, ending: String) -> Slice {
    Slice {
        track,
        goid,
        start,
        end,
        began,
        ending,
    }
}

fn park_ending(e: &Event) -> String {
    format!("park: {}", super::reason_name(e.b))
}

/// Where the unpark slice at `ts` must end: 1 µs on, but not past its enclosing goroutine
/// slice, the track's next slice or next unpark, or the trace's end.
fn mark_limit(slices: &[Slice], track: &[usize], unparks: &[u64], ts: u64, end: u64) -> u64 {
    let mut limit = (ts + UNPARK_MARK_NS).min(end.max(ts));
    let k = track.partition_point(|&i| slices[i].start <= ts);
    if k > 0 && slices[track[k - 1]].end >= ts {
        limit = limit.min(slices[track[k - 1]].end);
    } else if let Some(&next) = track.get(k) {
        limit = limit.min(slices[next].start);
    }
    let u = unparks.partition_point(|&x| x <= ts);
    if let Some(&next) = unparks.get(u) {
        limit = limit.min(next);
    }
    limit
}

/// The instant an event other than start, stop and unpark becomes, if any.
fn instant(e: &Event, ts: u64, tid: u32) -> Option<String> {
    let (name, args) = match e.kind {
        Kind::Create => (
            format!("create G{}", e.a),
            format!("{{\"goid\":{},\"parent\":{}}}", e.a, e.b),
        ),
        Kind::Steal => (
            format!("steal G{}", e.a),
            format!("{{\"goid\":{},\"from_p\":{}}}", e.a, e.b),
        ),
        Kind::TakeOver => (
            format!("take over G{}", e.a),
            format!("{{\"goid\":{},\"from_p\":{}}}", e.a, e.b),
        ),
        Kind::CoopPreempt => (
            format!("preempt G{} (yield)", e.a),
            format!("{{\"goid\":{}}}", e.a),
        ),
        Kind::SignalPreempt => (
            format!(
                "preempt M{} ({})",
                e.a,
                if e.b == 1 { "signal stop" } else { "detach" }
            ),
            format!("{{\"m\":{},\"stopped\":{}}}", e.a, e.b == 1),
        ),
        Kind::BlockingEnter => (
            format!("blocking enter G{}", e.a),
            format!("{{\"goid\":{}}}", e.a),
        ),
        Kind::BlockingExit => (
            format!("blocking exit G{}", e.a),
            format!("{{\"goid\":{}}}", e.a),
        ),
        Kind::Netpoll => (
            format!("netpoll ({} ready)", e.a),
            format!("{{\"ready\":{},\"blocking\":{}}}", e.a, e.b == 1),
        ),
        Kind::Start | Kind::Park | Kind::Yield | Kind::Exit | Kind::Unpark => return None,
    };
    Some(format!(
        "{{\"name\":{},\"cat\":\"sched\",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":{tid},\"ts\":{},\"args\":{args}}}",
        quote(&name),
        us(ts)
    ))
}

/// Nanoseconds as microseconds with three decimals.
fn us(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

/// `s` as a JSON string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::super::buffer::Track;
    use super::*;

    fn ev(ts: u64, kind: Kind, a: u64) -> Event {
        Event { ts, kind, a, b: 0 }
    }

    #[test]
    fn pairs_runs_and_binds_flows_to_them() {
        let c = Collected {
            tracks: vec![
                Track {
                    tid: 0,
                    name: "M0".into(),
                },
                Track {
                    tid: 1,
                    name: "M\"1".into(),
                },
            ],
            events: vec![
                vec![
                    ev(100, Kind::Start, 1),
                    ev(150, Kind::Unpark, 2),
                    ev(200, Kind::Exit, 1),
                ],
                vec![ev(90, Kind::Park, 2), ev(300, Kind::Start, 2)],
            ],
            start_ns: 50,
            end_ns: 1000,
        };
        let mut out = Vec::new();
        write(&c, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("\"name\":\"G1\",\"cat\":\"goroutine\",\"ph\":\"X\",\"pid\":1,\"tid\":0,\"ts\":0.050,\"dur\":0.100"), "{s}");
        // Park without a start: a run going on when the trace began.
        assert!(s.contains("\"tid\":1,\"ts\":0.000,\"dur\":0.040"), "{s}");
        // Still running at the stop.
        assert!(
            s.contains(
                "\"ts\":0.250,\"dur\":0.700,\"args\":{\"goid\":2,\"end\":\"running at stop\"}"
            ),
            "{s}"
        );
        // The unpark slice stays inside G1's run: 100..150 ns (relative) is its room.
        assert!(s.contains("\"name\":\"unpark G2\",\"cat\":\"unpark\",\"ph\":\"X\",\"pid\":1,\"tid\":0,\"ts\":0.100,\"dur\":0.050"), "{s}");
        assert!(
            s.contains("\"ph\":\"f\",\"bp\":\"e\",\"id\":1,\"pid\":1,\"tid\":1,\"ts\":0.251"),
            "{s}"
        );
        assert!(s.contains("M\\\"1"), "{s}");
    }
}
