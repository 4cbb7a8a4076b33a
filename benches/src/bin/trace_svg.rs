//! Renders an execution trace (`GORT_TRACE`'s trace-event JSON, `gort::debug::trace`) as an
//! SVG timeline, for docs and CI artefacts: one row per thread, a rectangle per goroutine run
//! coloured by goroutine, unparks as dark ticks with optional flow lines to the run they
//! caused, and instants (steals, preemptions, netpolls, blocking calls) as marks above the row.
//! Each rectangle's tooltip names the goroutine, its duration and how the run ended.
//!
//! ```text
//! cargo run -p gort-benches --bin trace_svg -- trace.json trace.svg [--from US] [--span US]
//!     [--width PX] [--no-flows]
//! ```
//! `--from` and `--span` pick a window in microseconds from the trace's start (default: all
//! of it); a window of a few milliseconds keeps a busy server's trace readable.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::Value;

const LABEL_W: f64 = 90.0;
const ROW_H: f64 = 26.0;
const BAR_H: f64 = 16.0;
const TOP: f64 = 34.0;
const LEGEND: &str = "#555";

struct Options {
    input: String,
    output: String,
    from: f64,
    span: Option<f64>,
    width: f64,
    flows: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut o = Options {
        input: String::new(),
        output: String::new(),
        from: 0.0,
        span: None,
        width: 1400.0,
        flows: true,
    };
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<f64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--from" => o.from = num("--from")?,
            "--span" => o.span = Some(num("--span")?),
            "--width" => o.width = num("--width")?,
            "--no-flows" => o.flows = false,
            _ => positional.push(a),
        }
    }
    let [input, output] = <[String; 2]>::try_from(positional).map_err(|_| {
        "usage: trace_svg IN.json OUT.svg [--from US] [--span US] [--width PX] [--no-flows]"
            .to_string()
    })?;
    o.input = input;
    o.output = output;
    Ok(o)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trace_svg: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let o = parse_args()?;
    let text = std::fs::read_to_string(&o.input).map_err(|e| format!("{}: {e}", o.input))?;
    let root: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", o.input))?;
    let events = root["traceEvents"]
        .as_array()
        .ok_or("no traceEvents array")?;
    let svg = render(events, &o);
    std::fs::write(&o.output, svg).map_err(|e| format!("{}: {e}", o.output))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// The SVG of `events` in the window `o` asks for.
fn render(events: &[Value], o: &Options) -> String {
    let mut names: BTreeMap<i64, String> = BTreeMap::new();
    let mut end = 0f64;
    for e in events {
        if e["ph"] == "M" && e["name"] == "thread_name" {
            let name = e["args"]["name"].as_str().unwrap_or("?").to_string();
            names.insert(e["tid"].as_i64().unwrap_or(0), name);
        }
        end = end.max(num(&e["ts"]) + num(&e["dur"]));
    }
    let from = o.from;
    let to = o.span.map_or(end, |s| from + s);
    let rows: BTreeMap<i64, usize> = names.keys().enumerate().map(|(i, &t)| (t, i)).collect();
    let plot_w = o.width - LABEL_W - 10.0;
    let scale = plot_w / (to - from).max(1e-3);
    let x = |ts: f64| LABEL_W + (ts - from) * scale;
    let row_y = |tid: i64| TOP + rows.get(&tid).copied().unwrap_or(0) as f64 * ROW_H;
    let height = TOP + rows.len() as f64 * ROW_H + 24.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" viewBox="0 0 {w} {height}" font-family="monospace" font-size="11">"#,
        w = o.width
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    axis(&mut s, from, to, &x, height);
    for (tid, name) in &names {
        let y = row_y(*tid);
        let _ = writeln!(
            s,
            r##"<rect x="{LABEL_W}" y="{y:.1}" width="{plot_w:.1}" height="{ROW_H}" fill="{}"/><text x="4" y="{:.1}">{}</text>"##,
            if rows[tid] % 2 == 0 {
                "#f6f6f6"
            } else {
                "#ffffff"
            },
            y + ROW_H / 2.0 + 4.0,
            escape(name)
        );
    }
    let visible = |ts: f64, dur: f64| ts + dur >= from && ts <= to;
    let mut starts: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for e in events {
        let (ts, dur) = (num(&e["ts"]), num(&e["dur"]));
        let tid = e["tid"].as_i64().unwrap_or(0);
        let y = row_y(tid) + (ROW_H - BAR_H) / 2.0;
        match (e["ph"].as_str(), e["cat"].as_str()) {
            (Some("X"), Some("goroutine")) if visible(ts, dur) => {
                let goid = e["args"]["goid"].as_u64().unwrap_or(0);
                let x0 = x(ts.max(from));
                let w = (x(ts + dur).min(x(to)) - x0).max(0.5);
                let _ = writeln!(
                    s,
                    r#"<rect x="{x0:.2}" y="{y:.1}" width="{w:.2}" height="{BAR_H}" fill="{}"><title>G{goid} {dur:.3} µs, {}</title></rect>"#,
                    colour(goid),
                    escape(e["args"]["end"].as_str().unwrap_or(""))
                );
            }
            (Some("X"), Some("unpark")) if visible(ts, dur) => {
                let _ = writeln!(
                    s,
                    r##"<rect x="{:.2}" y="{y:.1}" width="1.2" height="{BAR_H}" fill="#222"><title>{}</title></rect>"##,
                    x(ts),
                    escape(e["name"].as_str().unwrap_or(""))
                );
            }
            (Some("i"), _) if visible(ts, 0.0) => {
                let name = e["name"].as_str().unwrap_or("");
                let fill = match name.split(' ').next() {
                    Some("steal") | Some("take") => "#d62728",
                    Some("preempt") => "#ff7f0e",
                    Some("netpoll") => "#1f77b4",
                    Some("blocking") => "#9467bd",
                    _ => "#7f7f7f",
                };
                let (cx, top) = (x(ts), row_y(tid) + 1.0);
                let _ = writeln!(
                    s,
                    r#"<path d="M{:.2} {top:.1} l8 0 l-4 5 z" fill="{fill}"><title>{}</title></path>"#,
                    cx - 4.0,
                    escape(name)
                );
            }
            (Some("s"), _) if o.flows => {
                starts.insert(e["id"].as_u64().unwrap_or(0), (ts, row_y(tid)));
            }
            (Some("f"), _) if o.flows => {
                let Some((sts, sy)) = starts.remove(&e["id"].as_u64().unwrap_or(0)) else {
                    continue;
                };
                if sts < from || ts > to {
                    continue;
                }
                let _ = writeln!(
                    s,
                    r##"<line x1="{:.2}" y1="{:.1}" x2="{:.2}" y2="{:.1}" stroke="#444" stroke-opacity="0.45" stroke-width="0.8"/>"##,
                    x(sts),
                    sy + ROW_H / 2.0,
                    x(ts),
                    row_y(e["tid"].as_i64().unwrap_or(0)) + ROW_H / 2.0
                );
            }
            _ => {}
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="4" y="{:.1}" fill="{LEGEND}">colour: goroutine (hover: id, duration, how the run ended); black tick: unpark; line: unpark to the run it caused; marks: netpoll (blue), steal (red), preempt (orange), blocking (purple)</text>"#,
        height - 8.0
    );
    let _ = writeln!(s, "</svg>");
    s
}

/// A time axis across the top, with about ten round ticks.
fn axis(s: &mut String, from: f64, to: f64, x: &impl Fn(f64) -> f64, height: f64) {
    let span = (to - from).max(1e-3);
    let raw = span / 10.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|st| *st >= raw)
        .unwrap_or(mag * 10.0);
    let mut t = (from / step).ceil() * step;
    while t <= to {
        let label = if step >= 1000.0 {
            format!("{:.0} ms", t / 1000.0)
        } else if step >= 1.0 {
            format!("{t:.0} µs")
        } else {
            format!("{t:.2} µs")
        };
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{height:.1}" stroke="#ddd"/><text x="{0:.1}" y="{2}" text-anchor="middle">{label}</text>"##,
            x(t),
            TOP - 6.0,
            TOP - 10.0
        );
        t += step;
    }
}

/// A stable colour per goroutine.
fn colour(goid: u64) -> String {
    let h = goid.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    format!("hsl({},{}%,{}%)", h % 360, 55 + h % 25, 55 + (h >> 9) % 15)
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
