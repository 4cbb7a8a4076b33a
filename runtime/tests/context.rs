//! `gort::context` (issue 13): cancellation through a tree, deadlines, values, `select!` on
//! `done()`, and no leak from a million cancelled children of one long-lived parent; Go 1.21's
//! `after_func` (runs once, in its own goroutine; `stop` races the cancel exactly once;
//! 100,000 stopped ones leave no registration), `without_cancel` and the deadline causes.
//! The blocking calls that take a context are in `context_blocking.rs`. Every
//! scenario runs at GORT_MAXPROCS 1, 2 and 4, bounded in time by the harness; the only timing
//! assertions are "not before the deadline". The tests of this binary take turns, so the timer
//! heap holds only the current scenario's timers.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::context::{self, CancelFn, Context, ContextError, Key};
use gort::TryRecvError;

/// A deadline no scenario reaches.
const FAR: Duration = Duration::from_secs(3600);

/// True once `ctx`'s done channel is closed.
fn closed(ctx: &Context) -> bool {
    ctx.done().try_recv() == Err(TryRecvError::Closed)
}

/// Asserts `ctx` is live: done open, no error.
fn assert_live(ctx: &Context, what: &str) {
    assert_eq!(ctx.err(), None, "{what}: err");
    assert_eq!(
        ctx.done().try_recv(),
        Err(TryRecvError::Empty),
        "{what}: done"
    );
}

#[derive(PartialEq)]
struct Name;
impl Key for Name {
    type Value = &'static str;
}

/// A key with data: `Slot(1)` and `Slot(2)` are different keys, as Go's `type key int` constants.
#[derive(PartialEq)]
struct Slot(u8);
impl Key for Slot {
    type Value = u32;
}

#[test]
fn cancel_reaches_every_descendant_of_a_tree() {
    // Below the root: 100 children, 10 under each (value contexts above half of them), 10 under
    // each of those (every other one with its own far timeout): 11,100 descendants, 100 of
    // the leaves watched by a parked goroutine.
    common::each_procs("cancel_reaches_every_descendant_of_a_tree", |procs| {
        let (root, cancel) = context::with_cancel(&context::background());
        let mut all: Vec<Context> = Vec::new();
        let mut fns: Vec<CancelFn> = Vec::new();
        for _ in 0..100 {
            let (a, fa) = context::with_cancel(&root);
            for j in 0..10 {
                let above = if j % 2 == 0 {
                    context::with_value(&a, Slot(1), j)
                } else {
                    a.clone()
                };
                let (b, fb) = context::with_cancel(&above);
                for k in 0..10 {
                    let (c, fc) = if k % 2 == 0 {
                        context::with_timeout(&b, FAR)
                    } else {
                        context::with_cancel(&b)
                    };
                    all.push(c);
                    fns.push(fc);
                }
                all.push(b);
                fns.push(fb);
            }
            all.push(a);
            fns.push(fa);
        }
        assert_eq!(all.len(), 11_100);
        assert_eq!(root.child_count(), 100);
        let woken = Arc::new(AtomicUsize::new(0));
        let watchers: Vec<_> = all
            .iter()
            .take(1000)
            .step_by(10)
            .map(|c| {
                let (c, woken) = (c.clone(), woken.clone());
                gort::go!(move || {
                    assert!(c.done().recv().is_err());
                    assert_eq!(c.err(), Some(ContextError::Canceled));
                    woken.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        assert_eq!(watchers.len(), 100);
        for c in &all {
            assert_live(c, "before the cancel");
        }
        cancel.cancel();
        for w in watchers {
            w.join().unwrap();
        }
        assert_eq!(woken.load(Ordering::Relaxed), 100, "at maxprocs {procs}");
        let canceled = all
            .iter()
            .filter(|c| closed(c) && c.err() == Some(ContextError::Canceled))
            .count();
        assert_eq!(canceled, 11_100, "at maxprocs {procs}");
        assert_eq!(root.child_count(), 0);
        assert!(all.iter().all(|c| c.child_count() == 0));
        // The 5,000 leaf timers were stopped by the cancel.
        let entries = sched::timer_entries();
        assert!(entries <= 64, "{entries} timer entries after the cancel");
        drop(fns); // cancelling again: nothing changes
        assert!(all.iter().all(|c| c.err() == Some(ContextError::Canceled)));
    });
}

#[test]
fn a_child_cancel_leaves_parent_and_siblings_alone() {
    common::each_procs("a_child_cancel_leaves_parent_and_siblings_alone", |_| {
        let (parent, _pc) = context::with_cancel(&context::background());
        let (a, ca) = context::with_cancel(&parent);
        let (b, _cb) = context::with_timeout(&parent, FAR);
        let (a1, _ca1) = context::with_cancel(&a);
        assert_eq!(parent.child_count(), 2);
        ca.cancel();
        assert!(closed(&a) && closed(&a1));
        assert_eq!(a1.err(), Some(ContextError::Canceled));
        assert_live(&parent, "parent");
        assert_live(&b, "sibling");
        assert_eq!(
            parent.child_count(),
            1,
            "the cancelled child left the parent"
        );
    });
}

#[test]
fn cancel_is_idempotent_and_the_first_error_wins() {
    common::each_procs("cancel_is_idempotent_and_the_first_error_wins", |_| {
        let (parent, pc) = context::with_cancel(&context::background());
        let (child, cc) = context::with_cancel(&parent);
        cc.cancel_with_cause("first");
        cc.cancel();
        cc.cancel_with_cause("second");
        pc.cancel_with_cause("parent");
        assert_eq!(child.err(), Some(ContextError::Canceled));
        assert_eq!(child.cause().unwrap().to_string(), "first");
        assert_eq!(parent.cause().unwrap().to_string(), "parent");

        // A deadline that passed wins over a later cancel, and the other way round.
        let (expired, c1) = context::with_timeout(&context::background(), Duration::ZERO);
        c1.cancel();
        assert_eq!(expired.err(), Some(ContextError::DeadlineExceeded));
        assert_eq!(
            expired.cause().unwrap().to_string(),
            "context deadline exceeded"
        );
        let (cancelled, c2) =
            context::with_timeout(&context::background(), Duration::from_millis(1));
        c2.cancel();
        gort::time::sleep(Duration::from_millis(5));
        assert_eq!(cancelled.err(), Some(ContextError::Canceled));
        assert_eq!(cancelled.cause().unwrap().to_string(), "context canceled");

        // A child of a cancelled parent is cancelled at once, with the parent's error and
        // cause, and is not registered.
        let (late, _c3) = context::with_timeout(&child, FAR);
        assert!(closed(&late));
        assert_eq!(late.err(), Some(ContextError::Canceled));
        assert_eq!(late.cause().unwrap().to_string(), "first");
        assert_eq!(child.child_count(), 0);
    });
}

#[test]
fn with_timeout_fires_deadline_exceeded() {
    common::each_procs_in_goroutine("with_timeout_fires_deadline_exceeded", |procs| {
        let timeout = Duration::from_millis(20);
        let start = Instant::now();
        let (parent, _pc) = context::with_cancel(&context::background());
        let (ctx, _cancel) = context::with_timeout(&parent, timeout);
        let (grandchild, _gc) = context::with_cancel(&ctx);
        let deadline = ctx.deadline().expect("a deadline");
        assert!(deadline >= start + timeout && deadline <= Instant::now() + timeout);
        assert_eq!(grandchild.deadline(), Some(deadline));
        assert_eq!(parent.deadline(), None);
        assert!(grandchild.done().recv().is_err(), "closed, not a value");
        assert!(
            Instant::now() >= deadline,
            "at maxprocs {procs}: woken before the deadline"
        );
        assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
        assert!(ctx.err().unwrap().is_timeout());
        assert_eq!(grandchild.err(), Some(ContextError::DeadlineExceeded));
        assert_live(&parent, "the parent of a timed-out child");
        assert_eq!(
            parent.child_count(),
            0,
            "the timed-out child left its parent"
        );
    });
}

#[test]
fn a_later_child_deadline_keeps_the_parents() {
    common::each_procs("a_later_child_deadline_keeps_the_parents", |_| {
        let (parent, _pc) =
            context::with_timeout(&context::background(), Duration::from_millis(10));
        let theirs = parent.deadline().unwrap();
        let entries = sched::timer_entries();
        let (later, _lc) = context::with_timeout(&parent, FAR);
        assert_eq!(
            later.deadline(),
            Some(theirs),
            "the earlier deadline is kept"
        );
        assert!(sched::timer_entries() <= entries, "no timer of its own");
        // An earlier child deadline is the child's own, and fires without the parent.
        let (sooner, _sc) = context::with_timeout(&parent, Duration::ZERO);
        assert!(sooner.deadline().unwrap() < theirs);
        assert_eq!(sooner.err(), Some(ContextError::DeadlineExceeded));
        assert_live(&parent, "parent of an expired child");
        assert!(later.done().recv().is_err());
        assert!(Instant::now() >= theirs);
        assert_eq!(later.err(), Some(ContextError::DeadlineExceeded));
        assert_eq!(parent.err(), Some(ContextError::DeadlineExceeded));
    });
}

/// Children created and cancelled under one parent in `million_cancelled_children_leave_no_trace`.
const CHILDREN: usize = 1_000_000;
/// Goroutines creating them, and how many each holds live at once.
const WORKERS: usize = 4;
const BATCH: usize = 1000;

#[test]
fn million_cancelled_children_leave_no_trace() {
    // A server's shape: a long-lived parent, one `with_timeout` child per request, cancelled
    // (its `CancelFn` dropped) when the request ends. Afterwards the parent has no children,
    // the heap no timers beyond the sweep's slack, and no goroutine is left.
    common::each_procs("million_cancelled_children_leave_no_trace", |procs| {
        let goroutines = gort::num_goroutine();
        let (parent, _pc) = context::with_cancel(&context::background());
        let peak_entries = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let (parent, peak) = (parent.clone(), peak_entries.clone());
                gort::go!(move || {
                    let mut live = Vec::with_capacity(BATCH);
                    for i in 0..CHILDREN / WORKERS {
                        live.push(context::with_timeout(&parent, FAR));
                        if live.len() == BATCH {
                            peak.fetch_max(sched::timer_entries(), Ordering::Relaxed);
                            live.clear(); // drops every CancelFn: each child cancels
                        }
                        if i % 64 == 0 {
                            gort::yield_now();
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let children = parent.child_count();
        let entries = sched::timer_entries();
        let peak = peak_entries.load(Ordering::Relaxed);
        println!(
            "maxprocs {procs}: {CHILDREN} children cancelled: parent's child set {children}, \
             timer heap {entries} entries (peak {peak} with up to {} live)",
            WORKERS * BATCH
        );
        assert_eq!(children, 0);
        assert!(entries <= 64, "{entries} timer entries left");
        assert!(
            peak <= 2 * WORKERS * BATCH + 64,
            "peak {peak} timer entries"
        );
        common::wait_until("the workers to exit", || {
            gort::num_goroutine() <= goroutines
        });
        assert_live(&parent, "the long-lived parent");
    });
}

#[test]
fn values_nearest_ancestor_wins_and_siblings_are_apart() {
    common::each_procs(
        "values_nearest_ancestor_wins_and_siblings_are_apart",
        |_| {
            let root = context::with_value(&context::background(), Name, "root");
            let root = context::with_value(&root, Slot(1), 1);
            let (mid, _c) = context::with_cancel(&root);
            let left = context::with_value(&mid, Name, "left");
            let right = context::with_value(&mid, Slot(2), 2);
            let (below_left, _c2) = context::with_timeout(&left, FAR);
            assert_eq!(below_left.value(&Name), Some(&"left"), "the nearest wins");
            assert_eq!(below_left.value(&Slot(1)), Some(&1), "found further up");
            assert_eq!(
                below_left.value(&Slot(2)),
                None,
                "a sibling's value is not seen"
            );
            assert_eq!(
                right.value(&Name),
                Some(&"root"),
                "a sibling's shadowing is not seen"
            );
            assert_eq!(right.value(&Slot(2)), Some(&2));
            assert_eq!(mid.value(&Slot(2)), None, "values never flow up");
            assert_eq!(context::background().value(&Name), None);
            // A value context shares its parent's cancellation.
            drop(_c);
            assert_eq!(right.err(), Some(ContextError::Canceled));
            assert_eq!(below_left.err(), Some(ContextError::Canceled));
        },
    );
}

#[test]
fn select_on_done_and_a_channel() {
    common::each_procs("select_on_done_and_a_channel", |procs| {
        // Receive side: every value sent before the cancel is received, then the cancel ends
        // the loop (the channel stays open).
        let (ctx, cancel) = context::with_cancel(&context::background());
        let (tx, rx) = gort::chan::<u32>(0);
        let (ack_tx, ack_rx) = gort::chan::<()>(0);
        let consumer = {
            let ctx = ctx.clone();
            gort::go!(move || {
                let mut got = 0u32;
                loop {
                    gort::select! {
                        recv(ctx.done()) -> _ => return (got, ctx.err()),
                        recv(rx) -> v => {
                            got += v.unwrap();
                            ack_tx.send(()).unwrap();
                        }
                    }
                }
            })
        };
        for i in 1..=100 {
            tx.send(i).unwrap();
            ack_rx.recv().unwrap();
        }
        cancel.cancel();
        assert_eq!(
            consumer.join().unwrap(),
            (5050, Some(ContextError::Canceled)),
            "at maxprocs {procs}"
        );

        // Send side: a producer stops when its context is cancelled, its channel still open.
        let (ctx, cancel) = context::with_cancel(&context::background());
        let (tx, rx) = gort::chan::<u32>(0);
        let producer = gort::go!(move || {
            let mut sent = 0;
            loop {
                gort::select! {
                    send(tx, sent) -> r => { r.unwrap(); sent += 1; }
                    recv(ctx.done()) -> _ => return sent,
                }
            }
        });
        let taken: Vec<u32> = (0..10).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(taken, (0..10).collect::<Vec<_>>());
        cancel.cancel();
        assert_eq!(producer.join().unwrap(), 10, "at maxprocs {procs}");

        // The helper.
        let (ctx, cancel) = context::with_cancel(&context::background());
        let (tx, rx) = gort::chan::<u32>(1);
        tx.send(7).unwrap();
        assert_eq!(context::recv(&ctx, &rx), Ok(7));
        drop(tx);
        assert_eq!(context::recv(&ctx, &rx), Err(context::RecvError::Closed));
        let (_tx, rx) = gort::chan::<u32>(0);
        cancel.cancel();
        assert_eq!(
            context::recv(&ctx, &rx),
            Err(context::RecvError::Done(ContextError::Canceled))
        );
    });
}

#[test]
fn a_plain_thread_cancel_wakes_a_goroutine_in_select() {
    common::each_procs(
        "a_plain_thread_cancel_wakes_a_goroutine_in_select",
        |procs| {
            let (ctx, cancel) = context::with_cancel(&context::background());
            let (parked_tx, parked_rx) = std::sync::mpsc::channel();
            let waiters: Vec<_> = (0..10)
                .map(|_| {
                    let ctx = ctx.clone();
                    let parked_tx = parked_tx.clone();
                    gort::go!(move || {
                        let (_tx, never) = gort::chan::<()>(0);
                        parked_tx.send(()).unwrap();
                        gort::select! {
                            recv(never) -> _ => unreachable!(),
                            recv(ctx.done()) -> _ => ctx.err(),
                        }
                    })
                })
                .collect();
            for _ in 0..10 {
                parked_rx.recv().unwrap();
            }
            // Let them park (not required for correctness: the cancel wakes them either way).
            std::thread::sleep(Duration::from_millis(5));
            std::thread::spawn(move || cancel.cancel()).join().unwrap();
            for w in waiters {
                assert_eq!(
                    w.join().unwrap(),
                    Some(ContextError::Canceled),
                    "at maxprocs {procs}"
                );
            }
        },
    );
}

#[test]
fn contexts_work_from_plain_threads() {
    common::each_procs("contexts_work_from_plain_threads", |_| {
        let (ctx, cancel) = context::with_timeout(&context::todo(), Duration::from_millis(5));
        let t = std::thread::spawn({
            let ctx = ctx.clone();
            move || {
                let (child, _c) = context::with_cancel(&ctx);
                let _ = child.done().recv(); // a plain thread blocks until the deadline
                child.err()
            }
        });
        assert_eq!(t.join().unwrap(), Some(ContextError::DeadlineExceeded));
        drop(cancel);
        assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
        assert_eq!(format!("{ctx:?}"), "context.TODO.WithDeadline");
    });
}

#[test]
fn a_long_chain_is_dropped_without_recursion() {
    // A chain of 1,000,000 contexts, each the parent of the next (every fourth one
    // cancellable), cancelled from the root and dropped from the end on a goroutine's stack:
    // the cancel and the drops walk the chain instead of recursing once per link.
    common::each_procs_in_goroutine("a_long_chain_is_dropped_without_recursion", |_| {
        let (root, cancel) = context::with_cancel(&context::background());
        let mut ctx = root.clone();
        let mut fns = Vec::new();
        for i in 0..1_000_000u32 {
            if i % 4 == 0 {
                let (c, f) = context::with_cancel(&ctx);
                ctx = c;
                fns.push(f);
            } else {
                ctx = context::with_value(&ctx, Slot(1), i);
            }
        }
        assert_eq!(ctx.value(&Slot(1)), Some(&999_999));
        cancel.cancel();
        assert_eq!(ctx.err(), Some(ContextError::Canceled));
        drop(ctx);
        drop(fns);
        assert_eq!(root.err(), Some(ContextError::Canceled));
    });
}

/// `after_func`s registered and stopped under one long-lived parent in
/// `stopped_after_funcs_leave_no_registration`, from each of `WORKERS` goroutines.
const AFTER_FUNCS: usize = 100_000;

/// A function for `after_func` that reports the goroutine it ran on, and where it reports.
fn reporter() -> (impl FnOnce() + Send + 'static, gort::Receiver<Option<u64>>) {
    let (tx, rx) = gort::chan(1);
    (move || tx.send(gort::current_id()).unwrap(), rx)
}

#[test]
fn after_func_runs_once_when_done_in_its_own_goroutine() {
    common::each_procs(
        "after_func_runs_once_when_done_in_its_own_goroutine",
        |procs| {
            // On its context's cancel, on a deadline, through an ancestor, and at once when
            // already done: each runs once, in a goroutine of its own (not the canceller's).
            let (root, cancel_root) = context::with_cancel(&context::background());
            let (own, cancel_own) = context::with_cancel(&root);
            let (f, own_rx) = reporter();
            let own_stop = context::after_func(&own, f);
            assert_eq!(own.child_count(), 1, "the after_func is registered");
            cancel_own.cancel();
            assert!(own_rx.recv().unwrap().is_some(), "ran in a goroutine");
            assert!(!own_stop.stop(), "already started");
            assert_eq!(own.child_count(), 0);

            let (timed, _tc) = context::with_timeout(&root, Duration::from_millis(2));
            let (f, timed_rx) = reporter();
            let timed_stop = context::after_func(&timed, f);
            assert!(timed_rx.recv().unwrap().is_some());
            assert!(Instant::now() >= timed.deadline().unwrap());
            assert!(!timed_stop.stop());

            let (below, _bc) = context::with_cancel(&context::with_value(&root, Name, "v"));
            let (f, below_rx) = reporter();
            let below_stop = context::after_func(&below, f);
            let canceller = gort::spawn(move || {
                cancel_root.cancel();
                gort::current_id()
            });
            let canceller = canceller.join().unwrap();
            let ran_on = below_rx.recv().unwrap();
            assert!(
                ran_on.is_some() && ran_on != canceller,
                "at maxprocs {procs}: not in a goroutine of its own"
            );
            assert!(!below_stop.stop());

            // Already done: starts at once; stop is then too late.
            let (f, late_rx) = reporter();
            let late_stop = context::after_func(&root, f);
            assert!(late_rx.recv().unwrap().is_some());
            assert!(!late_stop.stop());

            // A context that can never be done: never runs; stop succeeds once.
            let (f, never_rx) = reporter();
            let s1 = context::after_func(&context::background(), f);
            let (f, never_rx2) = reporter();
            let s2 = context::after_func(&context::without_cancel(&root), f);
            assert!(s1.stop() && s2.stop());
            assert!(!s1.stop());
            assert!(
                never_rx.recv().is_err() && never_rx2.recv().is_err(),
                "stopped: dropped"
            );
        },
    );
}

#[test]
fn stopped_after_funcs_leave_no_registration() {
    // A server's shape again: per request, an `after_func` on a long-lived context, stopped
    // when the request ends. Afterwards the parent's child set is empty and no function ran.
    common::each_procs("stopped_after_funcs_leave_no_registration", |procs| {
        let (parent, cancel) = context::with_cancel(&context::background());
        let ran = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let (parent, ran) = (parent.clone(), ran.clone());
                gort::go!(move || {
                    let mut live = Vec::with_capacity(BATCH);
                    for i in 0..AFTER_FUNCS / WORKERS {
                        let ran = ran.clone();
                        live.push(context::after_func(&parent, move || {
                            ran.fetch_add(1, Ordering::Relaxed);
                        }));
                        if live.len() == BATCH {
                            assert!(live.drain(..).all(|s| s.stop()));
                        }
                        if i % 64 == 0 {
                            gort::yield_now();
                        }
                    }
                    assert!(live.drain(..).all(|s| s.stop()));
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let children = parent.child_count();
        println!(
            "maxprocs {procs}: {AFTER_FUNCS} after_funcs stopped: parent's child set {children}"
        );
        assert_eq!(children, 0);
        drop(cancel); // nothing left to run
        gort::time::sleep(Duration::from_millis(5));
        assert_eq!(ran.load(Ordering::Relaxed), 0, "a stopped function ran");
    });
}

#[test]
fn after_func_stop_races_cancel_exactly_once() {
    // 1,000 after_funcs on one context; half of them stopped by goroutines racing the cancel.
    // Each function either ran (and its stop returned false) or was stopped (true), never
    // both, never neither.
    common::each_procs("after_func_stop_races_cancel_exactly_once", |procs| {
        const N: usize = 1000;
        let (ctx, cancel) = context::with_cancel(&context::background());
        let (ran_tx, ran_rx) = gort::chan::<usize>(N);
        let stops: Vec<_> = (0..N)
            .map(|i| {
                let tx = ran_tx.clone();
                context::after_func(&ctx, move || tx.send(i).unwrap())
            })
            .collect();
        drop(ran_tx);
        let stops = Arc::new(stops);
        let stoppers: Vec<_> = (0..4)
            .map(|k| {
                let stops = stops.clone();
                gort::go!(move || {
                    (k..N)
                        .step_by(4)
                        .filter(|i| i % 2 == 0 && stops[*i].stop())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        cancel.cancel();
        let mut stopped: Vec<usize> = stoppers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        for (i, s) in stops.iter().enumerate() {
            if i % 2 == 1 && s.stop() {
                stopped.push(i); // none: the cancel came first
            }
        }
        drop(stops); // the functions not yet run hold the last senders
        let mut ran: Vec<usize> = ran_rx.iter().collect();
        ran.extend(stopped.iter().copied());
        ran.sort_unstable();
        assert_eq!(ran, (0..N).collect::<Vec<_>>(), "at maxprocs {procs}");
        assert!(stopped.iter().all(|i| i % 2 == 0));
        assert_eq!(ctx.child_count(), 0);
    });
}

#[test]
fn without_cancel_keeps_values_and_drops_cancellation() {
    common::each_procs("without_cancel_keeps_values_and_drops_cancellation", |_| {
        let base = context::with_value(&context::background(), Name, "request");
        let (req, cancel) = context::with_timeout(&base, Duration::from_secs(60));
        let detached = context::without_cancel(&req);
        assert_eq!(detached.deadline(), None);
        assert_eq!(detached.value(&Name), Some(&"request"));
        let (below, cancel_below) = context::with_cancel(&detached);
        assert_eq!(req.child_count(), 0, "nothing registers with the request");
        cancel.cancel();
        assert!(closed(&req));
        assert_live(&detached, "without_cancel");
        assert_live(&below, "a child of without_cancel");
        assert_eq!(below.value(&Name), Some(&"request"));
        assert_eq!(
            format!("{below:?}"),
            "context.Background.WithValue.WithDeadline.WithoutCancel.WithCancel"
        );
        cancel_below.cancel();
        assert_eq!(
            below.err(),
            Some(ContextError::Canceled),
            "its own cancel still works"
        );
    });
}

#[test]
fn deadline_causes_reach_descendants() {
    common::each_procs_in_goroutine("deadline_causes_reach_descendants", |_| {
        let (parent, _pc) = context::with_cancel(&context::background());
        let (ctx, _c) =
            context::with_timeout_cause(&parent, Duration::from_millis(2), "backend too slow");
        let (grandchild, _gc) = context::with_cancel(&ctx);
        assert!(grandchild.done().recv().is_err());
        assert_eq!(grandchild.err(), Some(ContextError::DeadlineExceeded));
        assert_eq!(grandchild.cause().unwrap().to_string(), "backend too slow");
        assert_eq!(ctx.cause().unwrap().to_string(), "backend too slow");
        assert_live(&parent, "the parent");

        // Cancelled through its CancelFn first: no cause but the error.
        let (ctx, cancel) =
            context::with_deadline_cause(&parent, Instant::now() + FAR, "never given");
        cancel.cancel();
        assert_eq!(ctx.cause().unwrap().to_string(), "context canceled");
        // A deadline already past: cancelled at once, with the cause.
        let (ctx, _c) = context::with_deadline_cause(&parent, Instant::now(), "too late");
        assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
        assert_eq!(ctx.cause().unwrap().to_string(), "too late");
        // The parent's earlier deadline wins, with the parent's cause.
        let (early, _c1) =
            context::with_timeout_cause(&parent, Duration::from_millis(2), "parent's");
        let (late, _c2) = context::with_timeout_cause(&early, FAR, "child's");
        assert!(late.done().recv().is_err());
        assert_eq!(late.cause().unwrap().to_string(), "parent's");
    });
}
