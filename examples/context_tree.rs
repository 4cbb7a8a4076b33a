//! Pattern: a tree of workers under one context (Cox-Buday, "Concurrency in Go", ch. 4, "The
//! context Package").
//!
//! Go's idea: a request's handler makes a context with a timeout, derives a context for each
//! branch of the work (`WithCancel`), and passes them down; every worker selects on
//! `ctx.Done()` beside its work and returns `ctx.Err()` when it fires. Cancelling a context
//! cancels everything below it and nothing above it, so a failed branch can stop its own
//! workers while the rest carry on until the request's deadline stops them all.
//! `WithValue` carries request-scoped data (a request id) down the same tree.
//!
//! gort's `context` is the same tree: `with_timeout`, `with_cancel`, `with_value`, and
//! `select!` on `ctx.done()`.
//!
//! The tree: a root with a 150 ms timeout and a request id, branches `a` and `b` under it, three
//! workers in each. Worker `b/2` fails at once and cancels branch `b`: `b/0` and `b/1` stop
//! with "context canceled", and the root and branch `a` are untouched; the `a` workers work on
//! until the root's timeout stops them with "context deadline exceeded". Prints one line per
//! worker, in name order.
//!
//! `cargo run --example context_tree`

use std::time::{Duration, Instant};

use gort::context::{self, CancelFn, Context, ContextError, Key};

/// The request id, stored in the root and read by every worker.
#[derive(PartialEq)]
struct RequestId;
impl Key for RequestId {
    type Value = &'static str;
}

const TIMEOUT: Duration = Duration::from_millis(150);
const WORK_UNIT: Duration = Duration::from_millis(5);

/// What a worker reports when it stops.
struct Report {
    name: String,
    request: &'static str,
    units: u32,
    err: ContextError,
}

/// Works in units of `WORK_UNIT` until `ctx` is cancelled.
fn worker(ctx: Context, name: String) -> Report {
    let request = *ctx.value(&RequestId).expect("set at the root");
    let mut units = 0;
    loop {
        gort::select! {
            recv(ctx.done()) -> _ => {
                let err = ctx.err().expect("done fired");
                return Report { name, request, units, err };
            },
            recv(gort::time::after(WORK_UNIT)) -> _ => units += 1,
        }
    }
}

/// The worker that fails: it cancels its whole branch, then stops.
fn failing_worker(ctx: Context, name: String, branch: CancelFn, root: Context) -> Report {
    let request = *ctx.value(&RequestId).expect("set at the root");
    println!("context_tree: {name} failed: cancelling branch b");
    branch.cancel();
    assert!(root.err().is_none(), "a child never cancels its parent");
    Report {
        name,
        request,
        units: 0,
        err: ctx.err().expect("cancelled with its branch"),
    }
}

fn main() {
    gort::run(|| {
        let start = Instant::now();
        let (root, _cancel_root) = context::with_timeout(&context::background(), TIMEOUT);
        let root = context::with_value(&root, RequestId, "req-42");
        let (branch_a, _cancel_a) = context::with_cancel(&root);
        let (branch_b, cancel_b) = context::with_cancel(&root);

        let mut workers = Vec::new();
        for i in 0..3 {
            let ctx = branch_a.clone();
            workers.push(gort::go!(move || worker(ctx, format!("a/{i}"))));
        }
        for i in 0..2 {
            let ctx = branch_b.clone();
            workers.push(gort::go!(move || worker(ctx, format!("b/{i}"))));
        }
        let (ctx, root2) = (branch_b.clone(), root.clone());
        workers.push(gort::go!(move || failing_worker(
            ctx,
            "b/2".into(),
            cancel_b,
            root2
        )));

        let mut reports: Vec<Report> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        reports.sort_by(|x, y| x.name.cmp(&y.name));
        for r in &reports {
            let why = match r.err {
                ContextError::Canceled => "its branch was cancelled",
                ContextError::DeadlineExceeded => "the request's timeout passed",
            };
            println!(
                "context_tree: {} ({}) stopped: {} ({why})",
                r.name, r.request, r.err
            );
            let branch_b = r.name.starts_with('b');
            assert_eq!(r.err == ContextError::Canceled, branch_b, "{}", r.name);
            if !branch_b {
                assert!(r.units > 0, "{} worked until the timeout", r.name);
            }
        }
        assert!(start.elapsed() >= TIMEOUT);
        assert_eq!(root.err(), Some(ContextError::DeadlineExceeded));
        println!("context_tree: every worker stopped; the root ended by its 150 ms timeout");
    });
}
