//! The execution trace (issue 14): a program using a channel ping-pong, a mutex, a sleep, a
//! socket, a blocking call and a preempted loop is traced at maxprocs 1, 2 and 4; its JSON parses, every
//! goroutine run is one well-formed slice, slices of a thread nest, every flow starts inside an
//! unpark slice and ends at the start (1 ns in) of a run of the goroutine it woke, and each
//! kind of wait shows as a run's end. A traced spawn of many goroutines has one create and one
//! exit per goroutine. `GORT_TRACE` writes the file at exit (a child process: this binary run
//! again with `CHILD` set). The same events reach a `tracing` subscriber. Each run is bounded
//! in time by the harness; waits are on observed states, never on sleeps.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use gort::debug::{self, trace, State, WaitReason};
use serde_json::Value;

const CHILD: &str = "GORT_TRACE_TEST_CHILD";

/// Waits (yielding) until the goroutine named `name` parks for `reason`.
fn wait_for(name: &str, reason: WaitReason) {
    let start = Instant::now();
    loop {
        let parked = debug::goroutines().into_iter().any(|g| {
            g.name.as_deref() == Some(name)
                && matches!(g.state, State::Waiting { reason: r, .. } if r == reason)
        });
        if parked {
            return;
        }
        assert!(
            start.elapsed() < common::DEADLINE,
            "{name} never parked for {reason}"
        );
        gort::yield_now();
    }
}

fn named(name: &str, f: impl FnOnce() + Send + 'static) -> gort::JoinHandle<()> {
    gort::Builder::new().name(name).spawn(f)
}

/// The program traced: each kind of wait at least once, made certain by waiting for it.
fn program() {
    // Channel ping-pong.
    let (ping_tx, ping_rx) = gort::chan::<u32>(0);
    let (pong_tx, pong_rx) = gort::chan::<u32>(0);
    let ponger = named("ponger", move || {
        while let Ok(v) = ping_rx.recv() {
            pong_tx.send(v + 1).unwrap();
        }
    });
    for i in 0..100 {
        ping_tx.send(i).unwrap();
        assert_eq!(pong_rx.recv().unwrap(), i + 1);
    }
    drop(ping_tx);
    ponger.join().unwrap();
    gort::yield_now();

    // A mutex held while another goroutine waits for it.
    let lock = Arc::new(gort::sync::Mutex::new(0u32));
    let held = lock.lock();
    let l2 = Arc::clone(&lock);
    let locker = named("locker", move || *l2.lock() += 1);
    wait_for("locker", WaitReason::Mutex);
    drop(held);
    locker.join().unwrap();

    // A sleep.
    named("sleeper", || gort::time::sleep(Duration::from_millis(2)))
        .join()
        .unwrap();

    // A socket read that waits for data.
    let listener = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = named("reader", move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
    });
    let mut client = gort::net::TcpStream::connect(addr).unwrap();
    wait_for("reader", WaitReason::IoRead);
    client.write_all(b"ping").unwrap();
    reader.join().unwrap();

    // A blocking call, released once the caller is seen waiting for it.
    let release = Arc::new(AtomicBool::new(false));
    let r2 = Arc::clone(&release);
    let blocker = named("blocker", move || {
        gort::blocking(move || {
            while !r2.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_micros(100));
            }
        })
        .unwrap();
    });
    wait_for("blocker", WaitReason::Blocking);
    release.store(true, Ordering::Release);
    blocker.join().unwrap();

    // A goroutine that runs past its time slice: sysmon asks it to yield at a preemption
    // point (a cooperative preemption).
    named("spinner", || {
        let before = gort::stats().cooperative_yields;
        while gort::stats().cooperative_yields == before {
            gort::preempt_point();
        }
    })
    .join()
    .unwrap();
}

/// Microseconds with three decimals, as integer nanoseconds.
fn ns(v: &Value) -> i64 {
    (v.as_f64().expect("a number") * 1000.0).round() as i64
}

struct Slice {
    tid: i64,
    ts: i64,
    end: i64,
    name: String,
    goid: u64,
    ending: String,
}

/// Parses `json` and checks the trace's invariants; returns its slices and events.
fn check(json: &str) -> (Vec<Slice>, Vec<Value>) {
    let root: Value = serde_json::from_str(json).expect("the trace is valid JSON");
    let events = root["traceEvents"].as_array().expect("traceEvents").clone();
    let mut named_tids = HashSet::new();
    let mut slices = Vec::new();
    for e in &events {
        let ph = e["ph"].as_str().expect("ph");
        assert_eq!(e["pid"], 1, "{e}");
        match ph {
            "M" => {
                if e["name"] == "thread_name" {
                    assert!(e["args"]["name"].is_string(), "{e}");
                    named_tids.insert(e["tid"].as_i64().unwrap());
                }
            }
            "X" => {
                let dur = ns(&e["dur"]);
                assert!(dur >= 0, "{e}");
                let ts = ns(&e["ts"]);
                assert!(ts >= 0, "{e}");
                slices.push(Slice {
                    tid: e["tid"].as_i64().unwrap(),
                    ts,
                    end: ts + dur,
                    name: e["name"].as_str().unwrap().to_string(),
                    goid: e["args"]["goid"].as_u64().expect("goid"),
                    ending: e["args"]["end"].as_str().unwrap_or("").to_string(),
                });
            }
            "s" | "f" | "i" => {
                assert!(e["ts"].is_number(), "{e}");
            }
            other => panic!("unexpected phase {other}: {e}"),
        }
        if ph != "M" {
            assert!(
                named_tids.contains(&e["tid"].as_i64().unwrap()),
                "unnamed thread: {e}"
            );
        }
    }
    // Every run is paired: a start without its stop would show as a cut.
    for s in &slices {
        assert_ne!(s.ending, "cut", "a run of G{} was not paired", s.goid);
        if s.name.starts_with('G') {
            assert_eq!(s.name, format!("G{}", s.goid));
        }
    }
    // A thread's slices nest or are disjoint.
    let mut by_tid: HashMap<i64, Vec<&Slice>> = HashMap::new();
    for s in &slices {
        by_tid.entry(s.tid).or_default().push(s);
    }
    for v in by_tid.values_mut() {
        v.sort_by_key(|s| (s.ts, -s.end));
        let mut stack: Vec<&Slice> = Vec::new();
        for s in v.iter() {
            while stack
                .last()
                .is_some_and(|top| top.end <= s.ts && top.end < s.end)
            {
                stack.pop();
            }
            if let Some(top) = stack.last() {
                assert!(
                    s.end <= top.end,
                    "{} [{}, {}] overlaps {} [{}, {}] on thread {}",
                    s.name,
                    s.ts,
                    s.end,
                    top.name,
                    top.ts,
                    top.end,
                    s.tid
                );
            }
            stack.push(s);
        }
    }
    // Flows: one start and one finish per id, each bound to a real slice.
    let mut flows: HashMap<u64, (Option<&Value>, Option<&Value>)> = HashMap::new();
    for e in &events {
        match e["ph"].as_str() {
            Some("s") => flows.entry(e["id"].as_u64().unwrap()).or_default().0 = Some(e),
            Some("f") => flows.entry(e["id"].as_u64().unwrap()).or_default().1 = Some(e),
            _ => {}
        }
    }
    for (id, (s, f)) in &flows {
        let (s, f) = (s.expect("flow start"), f.expect("flow finish"));
        let goid = s["args"]["goid"].as_u64().unwrap();
        assert_eq!(f["args"]["goid"].as_u64(), Some(goid));
        let (ts, tid) = (ns(&s["ts"]), s["tid"].as_i64().unwrap());
        assert!(
            slices.iter().any(|x| x.tid == tid
                && x.name == format!("unpark G{goid}")
                && x.ts <= ts
                && ts <= x.end),
            "flow {id} starts outside an unpark slice: {s}"
        );
        let (ts, tid) = (ns(&f["ts"]), f["tid"].as_i64().unwrap());
        assert_eq!(f["bp"], "e");
        assert!(
            slices.iter().any(|x| x.tid == tid
                && x.name == format!("G{goid}")
                && x.ts <= ts
                && ts <= x.end
                && ts - x.ts <= 1),
            "flow {id} ends off a run of G{goid}: {f}"
        );
    }
    (slices, events)
}

#[test]
fn trace_of_a_program_is_well_formed() {
    common::each_procs("trace_of_a_program_is_well_formed", |_| {
        assert!(trace::start(), "a trace was on already");
        assert!(trace::is_on());
        let h = gort::spawn(program);
        h.join().unwrap();
        let t = trace::stop();
        assert!(!trace::is_on());
        assert!(t.event_count() > 0);
        let (slices, events) = check(&t.to_json());
        let endings: HashSet<&str> = slices.iter().map(|s| s.ending.as_str()).collect();
        // The ping-pong parks its goroutines in send, receive or both, by timing.
        assert!(
            endings.contains("park: chan receive") || endings.contains("park: chan send"),
            "no channel wait: {endings:?}"
        );
        for want in [
            "park: sync.Mutex.Lock",
            "park: sleep",
            "park: IO wait (read)",
            "park: blocking call",
            "park: join",
            "exit",
        ] {
            assert!(
                endings.contains(want),
                "no run ended with {want}: {endings:?}"
            );
        }
        let flows = events.iter().filter(|e| e["ph"] == "s").count();
        assert!(flows >= 100, "{flows} flows for 100 ping-pong rounds");
        let instants: HashSet<String> = events
            .iter()
            .filter(|e| e["ph"] == "i")
            .map(|e| {
                e["name"]
                    .as_str()
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        for want in ["create", "blocking", "netpoll", "preempt"] {
            assert!(instants.contains(want), "no {want} instant: {instants:?}");
        }
        // Threads are named: the Ms "M<n>".
        let names: Vec<&str> = events
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert!(names.iter().any(|n| n.starts_with('M')), "{names:?}");
    });
}

#[test]
fn traced_spawn_many_has_one_create_and_one_exit_per_goroutine() {
    common::each_procs("traced_spawn_many", |_| {
        const N: usize = 10_000;
        assert!(trace::start());
        let ids = gort::spawn(|| {
            let hs: Vec<_> = (0..N).map(|_| gort::spawn(gort::current_id)).collect();
            hs.into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect::<Vec<u64>>()
        })
        .join()
        .unwrap();
        let (slices, events) = check(&trace::stop().to_json());
        let mut creates: HashMap<u64, usize> = HashMap::new();
        for e in events.iter().filter(|e| e["ph"] == "i") {
            if e["name"].as_str().unwrap().starts_with("create ") {
                *creates
                    .entry(e["args"]["goid"].as_u64().unwrap())
                    .or_default() += 1;
            }
        }
        let mut exits: HashMap<u64, usize> = HashMap::new();
        for s in slices.iter().filter(|s| s.ending == "exit") {
            *exits.entry(s.goid).or_default() += 1;
        }
        for id in &ids {
            assert_eq!(creates.get(id), Some(&1), "creates of G{id}");
            assert_eq!(exits.get(id), Some(&1), "exits of G{id}");
        }
        // The spawner's own create is in too: N + 1 in all.
        assert_eq!(creates.len(), N + 1);
    });
}

#[test]
fn stop_without_start_is_empty_and_start_twice_is_refused() {
    common::each_procs_at("start_stop", &[2], |_| {
        let t = trace::stop();
        assert_eq!(t.event_count(), 0);
        check(&t.to_json());
        assert!(trace::start());
        assert!(!trace::start(), "second start while on");
        gort::spawn(|| ()).join().unwrap();
        let t = trace::stop();
        assert!(t.event_count() > 0);
        check(&t.to_json());
    });
}

#[test]
fn gort_trace_writes_the_file_at_exit() {
    if std::env::var_os(CHILD).is_some() {
        // The child: a short program; the exit hook writes the trace when the process ends.
        let n = gort::run(|| {
            let (tx, rx) = gort::chan::<u32>(0);
            let h = gort::spawn(move || (0..10).map(|_| rx.recv().unwrap()).sum::<u32>());
            for i in 0..10 {
                tx.send(i).unwrap();
            }
            h.join().unwrap()
        });
        assert_eq!(n, 45);
        return;
    }
    common::bounded("GORT_TRACE child", || {
        let path =
            std::env::temp_dir().join(format!("gort-trace-test-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let out = common::output_within(
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "gort_trace_writes_the_file_at_exit",
                    "--nocapture",
                ])
                .env(CHILD, "1")
                .env("GORT_TRACE", &path),
        );
        assert!(out.status.success(), "child failed: {out:?}");
        let json = std::fs::read_to_string(&path).expect("GORT_TRACE wrote the file");
        let _ = std::fs::remove_file(&path);
        let (slices, _) = check(&json);
        assert!(slices.iter().any(|s| s.ending.starts_with("park: chan")));
    });
}

/// Messages of the scheduler's `tracing` events seen so far (the subscriber is global).
static SEEN: StdMutex<Vec<String>> = StdMutex::new(Vec::new());

fn note(e: &tracing::Event<'_>) {
    if let Ok(mut seen) = SEEN.lock() {
        if seen.len() < 1_000_000 {
            seen.push(common::event_message(e));
        }
    }
}

#[test]
fn the_events_reach_a_tracing_subscriber() {
    common::each_procs_at("tracing_events", &[2], |_| {
        let _ = tracing::subscriber::set_global_default(common::OnEvent(note));
        gort::spawn(program).join().unwrap();
        let seen: HashSet<String> = SEEN.lock().unwrap().iter().cloned().collect();
        for want in [
            "spawn",
            "run",
            "park",
            "yield",
            "unpark",
            "exit",
            "blocking enter",
            "blocking exit",
            "netpoll",
            "preempt",
        ] {
            assert!(seen.contains(want), "no {want:?} event: {seen:?}");
        }
    });
}
