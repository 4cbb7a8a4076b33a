//! `gort::errgroup` (issue 13): the first error wins, cancels the members still running (they
//! see `ctx.done()`) and is the context's cause; a limit holds the count of running members to
//! exactly its value; 10,000 members; a member's panic comes out of `wait`; members start
//! members; and every call works from goroutines and plain threads alike. Every scenario runs
//! at GORT_MAXPROCS 1, 2 and 4, bounded in time by the harness; nothing here sleeps or times
//! anything.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{Expected, Side};
use gort::context::{self, ContextError};
use gort::errgroup::Group;

#[derive(Debug, PartialEq)]
enum Failure {
    /// The member that fails on purpose.
    First,
    /// A member that stopped because the context was cancelled.
    Stopped(ContextError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::First => f.write_str("the first failure"),
            Failure::Stopped(e) => write!(f, "stopped: {e}"),
        }
    }
}

#[test]
fn the_first_error_wins_and_cancels_the_others() {
    common::each_procs("the_first_error_wins_and_cancels_the_others", |procs| {
        for side in [Side::Thread, Side::Goroutine] {
            let join = common::start(side, move || {
                const OTHERS: usize = 50;
                let (group, ctx) = Group::with_context(&context::background());
                let started = Arc::new(AtomicUsize::new(0));
                let stopped = Arc::new(AtomicUsize::new(0));
                for _ in 0..OTHERS {
                    let (ctx, started, stopped) = (ctx.clone(), started.clone(), stopped.clone());
                    group.go(move || {
                        started.fetch_add(1, Ordering::SeqCst);
                        // Go's `<-ctx.Done(); return ctx.Err()`.
                        let _ = ctx.done().recv();
                        stopped.fetch_add(1, Ordering::SeqCst);
                        Err(Failure::Stopped(ctx.err().unwrap()))
                    });
                }
                let all_started = started.clone();
                group.go(move || {
                    // Fails once every other member is running (and so can only stop by the
                    // cancel this error makes).
                    common::wait_until("the others started", || {
                        all_started.load(Ordering::SeqCst) == OTHERS
                    });
                    Err(Failure::First)
                });
                assert_eq!(group.wait(), Err(Failure::First), "at maxprocs {procs}");
                assert_eq!(stopped.load(Ordering::SeqCst), OTHERS);
                assert_eq!(ctx.err(), Some(ContextError::Canceled));
                // Go's `context.Cause(ctx)`: the first error, not what the others returned.
                assert_eq!(ctx.cause().unwrap().to_string(), "the first failure");
            });
            join();
        }
    });
}

#[test]
fn a_limit_holds_the_running_members_to_exactly_its_value() {
    common::each_procs(
        "a_limit_holds_the_running_members_to_exactly_its_value",
        |_| {
            // 40 members under a limit of 3, started by a goroutine; each runs until the test
            // lets it go, so the test steps through the group one member at a time: at each step
            // exactly min(3, members left) run, and the starter waits in `go` for a slot.
            const LIMIT: usize = 3;
            const MEMBERS: usize = 40;
            let group = Group::<()>::new();
            group.set_limit(LIMIT);
            let running = Arc::new(AtomicUsize::new(0));
            let most = Arc::new(AtomicUsize::new(0));
            let started = Arc::new(AtomicUsize::new(0));
            let (release, gate) = gort::chan::<()>(0);
            let starter = {
                let (group, running, most, started) = (
                    group.clone(),
                    running.clone(),
                    most.clone(),
                    started.clone(),
                );
                gort::go!(move || {
                    for _ in 0..MEMBERS {
                        let (running, most, started, gate) =
                            (running.clone(), most.clone(), started.clone(), gate.clone());
                        group.go(move || {
                            started.fetch_add(1, Ordering::SeqCst);
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            gate.recv().unwrap();
                            running.fetch_sub(1, Ordering::SeqCst);
                            Ok(())
                        });
                    }
                })
            };
            for released in 0..MEMBERS {
                let expected = LIMIT.min(MEMBERS - released);
                common::wait_until("the next member started", || {
                    running.load(Ordering::SeqCst) == expected
                        && started.load(Ordering::SeqCst) == released + expected
                });
                if expected == LIMIT {
                    let free = group.try_go(|| Ok(()));
                    assert!(!free, "a slot was free at step {released}");
                }
                release.send(()).unwrap();
            }
            starter.join().unwrap();
            group.wait().unwrap();
            assert_eq!(most.load(Ordering::SeqCst), LIMIT);
            assert_eq!(started.load(Ordering::SeqCst), MEMBERS);
            // All slots are free again: try_go starts one more.
            assert!(group.try_go(|| Ok(())));
            group.wait().unwrap();
        },
    );
}

#[test]
fn ten_thousand_members() {
    common::each_procs("ten_thousand_members", |_| {
        const MEMBERS: usize = 10_000;
        const LIMIT: usize = 16;
        for limit in [None, Some(LIMIT)] {
            let (group, ctx) = Group::<ContextError>::with_context(&context::background());
            if let Some(n) = limit {
                group.set_limit(n);
            }
            let done = Arc::new(AtomicUsize::new(0));
            let running = Arc::new(AtomicUsize::new(0));
            let most = Arc::new(AtomicUsize::new(0));
            for _ in 0..MEMBERS {
                let (ctx, done, running, most) =
                    (ctx.clone(), done.clone(), running.clone(), most.clone());
                group.go(move || {
                    most.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    gort::yield_now();
                    running.fetch_sub(1, Ordering::SeqCst);
                    done.fetch_add(1, Ordering::SeqCst);
                    ctx.err().map_or(Ok(()), Err)
                });
            }
            assert_eq!(group.wait(), Ok(()));
            assert_eq!(done.load(Ordering::SeqCst), MEMBERS);
            if let Some(n) = limit {
                assert!(most.load(Ordering::SeqCst) <= n, "{limit:?}");
            }
            assert_eq!(ctx.err(), Some(ContextError::Canceled), "wait cancels it");
            assert_eq!(
                ctx.cause().unwrap().to_string(),
                "context canceled",
                "no error"
            );
        }
    });
}

#[test]
fn a_members_panic_comes_out_of_wait() {
    common::quiet_expected_panics();
    common::each_procs("a_members_panic_comes_out_of_wait", |_| {
        for side in [Side::Thread, Side::Goroutine] {
            let join = common::start(side, || {
                let (group, ctx) = Group::<Failure>::with_context(&context::background());
                let finished = Arc::new(AtomicUsize::new(0));
                for i in 0..20 {
                    let (ctx, finished) = (ctx.clone(), finished.clone());
                    group.go(move || {
                        if i == 10 {
                            panic::panic_any(Expected(10));
                        }
                        // The others run until the panic cancels the context.
                        let _ = ctx.done().recv();
                        finished.fetch_add(1, Ordering::SeqCst);
                        Err(Failure::Stopped(ctx.err().unwrap()))
                    });
                }
                let caught = panic::catch_unwind(AssertUnwindSafe(|| group.wait()));
                let payload = caught.expect_err("wait resumes the member's panic");
                assert_eq!(payload.downcast_ref::<Expected>(), Some(&Expected(10)));
                assert_eq!(
                    finished.load(Ordering::SeqCst),
                    19,
                    "wait came after them all"
                );
                assert_eq!(ctx.err(), Some(ContextError::Canceled));
                let cause = ctx.cause().unwrap().to_string();
                assert!(
                    cause.starts_with("errgroup: a member panicked: "),
                    "{cause}"
                );
                // The panic was handed out: the group goes on.
                group.go(|| Ok(()));
                assert_eq!(group.wait(), Ok(()));
            });
            join();
        }
    });
}

#[test]
fn members_start_members() {
    common::each_procs("members_start_members", |_| {
        // A tree: each member below depth 4 starts 4 more through a clone of the group;
        // wait sees all 341 (1 + 4 + 16 + 64 + 256), as the count never drops to zero early.
        fn member(group: Group<()>, depth: u32, count: Arc<AtomicUsize>) -> Result<(), ()> {
            count.fetch_add(1, Ordering::SeqCst);
            if depth < 4 {
                for _ in 0..4 {
                    let (g, c) = (group.clone(), count.clone());
                    group.go(move || member(g, depth + 1, c));
                }
            }
            Ok(())
        }
        let group = Group::new();
        let count = Arc::new(AtomicUsize::new(0));
        let (g, c) = (group.clone(), count.clone());
        group.go(move || member(g, 0, c));
        assert_eq!(group.wait(), Ok(()));
        assert_eq!(count.load(Ordering::SeqCst), 341);
    });
}

#[test]
fn go_parks_a_goroutine_at_the_limit_and_blocks_a_thread() {
    common::each_procs(
        "go_parks_a_goroutine_at_the_limit_and_blocks_a_thread",
        |_| {
            // The one slot is held by a member that waits for a value sent by a goroutine; a
            // second `go` (from a goroutine or a plain thread) waits for the slot meanwhile. At
            // maxprocs 1 the sender runs only if the waiting `go` gave the processor away.
            for side in [Side::Goroutine, Side::Thread] {
                let group = Group::<()>::new();
                group.set_limit(1);
                let (tx, rx) = gort::chan::<()>(0);
                group.go(move || rx.recv().map_err(drop));
                let second_ran = Arc::new(AtomicUsize::new(0));
                let starter = {
                    let (group, second_ran) = (group.clone(), second_ran.clone());
                    common::start(side, move || {
                        group.go(move || {
                            second_ran.fetch_add(1, Ordering::SeqCst);
                            Ok(())
                        })
                    })
                };
                let sender = gort::go!(move || tx.send(()).unwrap());
                starter();
                sender.join().unwrap();
                group.wait().unwrap();
                assert_eq!(second_ran.load(Ordering::SeqCst), 1, "{side:?}");
            }
        },
    );
}
