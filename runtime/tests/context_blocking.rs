//! gort's blocking calls with a context (issue 13): `context::recv`, `context::send`,
//! `context::acquire[_many]`, `context::lock` and `TcpStream::connect_context`. For each: a
//! cancel wakes a waiter (a goroutine or a plain thread) at once, a deadline fires, and a wait
//! that gives up leaves nothing behind (no queued waiter, no registration on the context, no
//! permit lost). Every scenario runs at GORT_MAXPROCS 1, 2 and 4, bounded in time by the
//! harness; the only timing assertions are "not before the deadline".
//!
//! Where a test lets a waiter park before it cancels, the pause is not needed for the result
//! (a cancel that comes first fails the call just the same); it only makes the wake-up path
//! the one usually taken.

mod common;

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::context::{self, Context, ContextError, RecvError, SendError};
use gort::net::TcpStream;
use gort::sync::{Mutex, Semaphore};

/// The deadline of the "deadline fires" checks.
const SHORT: Duration = Duration::from_millis(20);
/// Long enough for a waiter to park before it is cancelled (see the top comment).
const SETTLE: Duration = Duration::from_millis(5);

/// Runs `wait(ctx)` in a goroutine, cancels `ctx` from this thread once the waiter has had
/// time to park, and returns the waiter's result.
fn cancel_while_waiting<R: Send + 'static>(wait: impl FnOnce(Context) -> R + Send + 'static) -> R {
    let (ctx, cancel) = context::with_cancel(&context::background());
    let waiter = gort::go!({
        let ctx = ctx.clone();
        move || wait(ctx)
    });
    common::sleep(SETTLE);
    cancel.cancel();
    let r = waiter.join().unwrap();
    assert_eq!(ctx.child_count(), 0, "the wait left a registration");
    r
}

/// Runs `wait` under a context that times out after [`SHORT`], in a goroutine; checks it did
/// not return before the deadline and left no registration; returns its result.
fn deadline_while_waiting<R: Send + 'static>(
    wait: impl FnOnce(&Context) -> R + Send + 'static,
) -> R {
    gort::go!(move || {
        let (parent, _pc) = context::with_cancel(&context::background());
        let (ctx, _cancel) = context::with_timeout(&parent, SHORT);
        let r = wait(&ctx);
        assert!(Instant::now() >= ctx.deadline().unwrap(), "gave up early");
        drop(_cancel);
        assert_eq!(parent.child_count(), 0, "the wait left a registration");
        r
    })
    .join()
    .unwrap()
}

#[test]
fn recv_is_cancelled_and_times_out() {
    common::each_procs("recv_is_cancelled_and_times_out", |procs| {
        let (tx, rx) = gort::chan::<u32>(0);
        let rx2 = rx.clone();
        let r = cancel_while_waiting(move |ctx| context::recv(&ctx, &rx2));
        assert_eq!(
            r,
            Err(RecvError::Done(ContextError::Canceled)),
            "at maxprocs {procs}"
        );
        let rx2 = rx.clone();
        let r = deadline_while_waiting(move |ctx| context::recv(ctx, &rx2));
        assert_eq!(r, Err(RecvError::Done(ContextError::DeadlineExceeded)));
        assert_eq!(rx.queue_lens(), (0, 0));
        drop(tx);
    });
}

#[test]
fn send_is_cancelled_and_times_out() {
    common::each_procs("send_is_cancelled_and_times_out", |procs| {
        let (tx, rx) = gort::chan::<String>(0);
        let tx2 = tx.clone();
        let r = cancel_while_waiting(move |ctx| context::send(&ctx, &tx2, "a".to_string()));
        assert_eq!(
            r,
            Err(SendError::Done(ContextError::Canceled, "a".to_string())),
            "at maxprocs {procs}"
        );
        let tx2 = tx.clone();
        let r = deadline_while_waiting(move |ctx| context::send(ctx, &tx2, "b".to_string()));
        assert_eq!(
            r,
            Err(SendError::Done(
                ContextError::DeadlineExceeded,
                "b".to_string()
            ))
        );
        assert_eq!(tx.queue_lens(), (0, 0));
        // A receiver that comes takes the value; a closed channel hands it back.
        let taker = gort::go!(move || rx.recv().unwrap());
        assert_eq!(
            context::send(&context::background(), &tx, "c".into()),
            Ok(())
        );
        assert_eq!(taker.join().unwrap(), "c");
        assert_eq!(
            context::send(&context::background(), &tx, "d".into()),
            Err(SendError::Closed("d".to_string()))
        );
    });
}

#[test]
fn semaphore_acquire_is_cancelled_and_times_out() {
    common::each_procs("semaphore_acquire_is_cancelled_and_times_out", |procs| {
        let sem = Arc::new(Semaphore::new(1));
        let s = sem.clone();
        let r = cancel_while_waiting(move |ctx| context::acquire_many(&ctx, &s, 2));
        assert_eq!(r, Err(ContextError::Canceled), "at maxprocs {procs}");
        let s = sem.clone();
        let r = deadline_while_waiting(move |ctx| context::acquire_many(ctx, &s, 2));
        assert_eq!(r, Err(ContextError::DeadlineExceeded));
        assert_eq!((sem.available(), sem.queue_len()), (1, 0));
        // A plain thread waiting is woken by the cancel too.
        let (ctx, cancel) = context::with_cancel(&context::background());
        let t = std::thread::spawn({
            let (ctx, s) = (ctx.clone(), sem.clone());
            move || context::acquire_many(&ctx, &s, 2)
        });
        common::sleep(SETTLE);
        cancel.cancel();
        assert_eq!(t.join().unwrap(), Err(ContextError::Canceled));
        assert_eq!((sem.available(), sem.queue_len()), (1, 0));
        assert_eq!(context::acquire(&context::background(), &sem), Ok(()));
    });
}

#[test]
fn mutex_lock_is_cancelled_and_times_out() {
    common::each_procs("mutex_lock_is_cancelled_and_times_out", |procs| {
        let m = Arc::new(Mutex::new(0u32));
        let held = m.lock();
        let m2 = m.clone();
        let r = cancel_while_waiting(move |ctx| context::lock(&ctx, &m2).map(|_| ()));
        assert_eq!(r, Err(ContextError::Canceled), "at maxprocs {procs}");
        let m2 = m.clone();
        let r = deadline_while_waiting(move |ctx| context::lock(ctx, &m2).map(|_| ()));
        assert_eq!(r, Err(ContextError::DeadlineExceeded));
        assert_eq!(m.queue_len(), 0);
        let (ctx, cancel) = context::with_cancel(&context::background());
        let t = std::thread::spawn({
            let (ctx, m) = (ctx.clone(), m.clone());
            move || context::lock(&ctx, &m).map(|_| ())
        });
        common::sleep(SETTLE);
        cancel.cancel();
        assert_eq!(t.join().unwrap(), Err(ContextError::Canceled));
        drop(held);
        *context::lock(&context::background(), &m).unwrap() += 1;
        assert_eq!((*m.lock(), m.queue_len()), (1, 0));
    });
}

/// A listener whose accept queue is full: a connect to it waits (its SYNs are dropped) until
/// it gives up. The returned streams keep the queue full.
fn full_listener() -> (std::net::TcpListener, SocketAddr, Vec<std::net::TcpStream>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen(2) on a descriptor `l` owns and keeps open for the call; no pointers.
    // On a listening socket it only changes the backlog.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
    let addr = l.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(s) => queued.push(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return (l, addr, queued),
            Err(e) => panic!("filling the accept queue: {e}"),
        }
    }
    panic!("the accept queue never filled");
}

/// The context error inside an `io::Error` from `connect_context`.
fn context_error(e: &io::Error) -> Option<ContextError> {
    e.get_ref()?.downcast_ref::<ContextError>().copied()
}

#[test]
fn connect_is_cancelled_and_times_out() {
    common::each_procs("connect_is_cancelled_and_times_out", |procs| {
        let (_l, addr, _queued) = full_listener();
        let r = cancel_while_waiting(move |ctx| TcpStream::connect_context(&ctx, addr));
        let e = r.expect_err("connected to a full listener");
        assert_eq!(
            context_error(&e),
            Some(ContextError::Canceled),
            "at maxprocs {procs}: {e}"
        );
        assert_eq!(e.kind(), io::ErrorKind::Other);
        let r = deadline_while_waiting(move |ctx| TcpStream::connect_context(ctx, addr));
        let e = r.expect_err("connected to a full listener");
        assert_eq!(
            context_error(&e),
            Some(ContextError::DeadlineExceeded),
            "{e}"
        );
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        // A plain thread, blocked in poll(2), is woken by the cancel too.
        let (ctx, cancel) = context::with_cancel(&context::background());
        let t = std::thread::spawn({
            let ctx = ctx.clone();
            move || TcpStream::connect_context(&ctx, addr).map(|_| ())
        });
        common::sleep(SETTLE);
        cancel.cancel();
        let e = t.join().unwrap().unwrap_err();
        assert_eq!(context_error(&e), Some(ContextError::Canceled), "{e}");
        assert_eq!(ctx.child_count(), 0);
        // A context already done: no connect at all.
        let e = TcpStream::connect_context(&ctx, addr).unwrap_err();
        assert_eq!(context_error(&e), Some(ContextError::Canceled));
    });
}

#[test]
fn connect_context_connects_and_unregisters() {
    common::each_procs("connect_context_connects_and_unregisters", |_| {
        let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_secs(60));
        for _ in 0..10 {
            let c = TcpStream::connect_context(&ctx, addr).unwrap();
            let (s, peer) = l.accept().unwrap();
            assert_eq!(peer, c.local_addr().unwrap());
            drop((c, s));
        }
        assert_eq!(ctx.child_count(), 0, "a connect left its hook registered");
        // A refused connect is the connect's own error, not the context's.
        let closed = gort::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = TcpStream::connect_context(&ctx, closed).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(context_error(&e), None);
    });
}

/// Goroutines in `no_permit_lost_under_random_deadlines`, and the permits they share.
const STRESS_GOROUTINES: usize = 1000;
const STRESS_PERMITS: usize = 8;

#[test]
fn no_permit_lost_under_random_deadlines() {
    // 1,000 goroutines take 1 to 3 of 8 permits under contexts that time out after 0 to 20 ms,
    // a quarter of them also cancelled by a goroutine at a random moment, hold them across a
    // yield and return them. Never more than 8 held; at the end exactly 8 available, nobody
    // queued, and no context registration left on the shared parent.
    common::each_procs("no_permit_lost_under_random_deadlines", |procs| {
        let sem = Arc::new(Semaphore::new(STRESS_PERMITS));
        let held = Arc::new(AtomicUsize::new(0));
        let outcomes = Arc::new([
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        ]);
        let (parent, _pc) = context::with_cancel(&context::background());
        let workers: Vec<_> = (0..STRESS_GOROUTINES as u64)
            .map(|i| {
                let (sem, held, outcomes, parent) =
                    (sem.clone(), held.clone(), outcomes.clone(), parent.clone());
                gort::go!(move || {
                    let mut seed = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    let mut next = || {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed
                    };
                    let n = 1 + (next() % 3) as usize;
                    let timeout = Duration::from_micros(next() % 20000);
                    let (ctx, cancel) = context::with_timeout(&parent, timeout);
                    // A quarter are also cancelled; the rest keep their CancelFn (dropping
                    // it would cancel) until they are done.
                    let (canceller, _cancel) = if next() % 4 == 0 {
                        let pause = Duration::from_micros(next() % 1000);
                        let c = gort::go!(move || {
                            common::sleep(pause);
                            cancel.cancel();
                        });
                        (Some(c), None)
                    } else {
                        (None, Some(cancel))
                    };
                    match context::acquire_many(&ctx, &sem, n) {
                        Ok(()) => {
                            let now = held.fetch_add(n, Ordering::SeqCst) + n;
                            assert!(now <= STRESS_PERMITS, "{now} permits held at once");
                            gort::yield_now();
                            held.fetch_sub(n, Ordering::SeqCst);
                            sem.release_many(n);
                            outcomes[0].fetch_add(1, Ordering::Relaxed);
                        }
                        Err(ContextError::DeadlineExceeded) => {
                            outcomes[1].fetch_add(1, Ordering::Relaxed);
                        }
                        Err(ContextError::Canceled) => {
                            outcomes[2].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if let Some(c) = canceller {
                        c.join().unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let [ok, late, cancelled] = [0, 1, 2].map(|k| outcomes[k].load(Ordering::Relaxed));
        println!(
            "maxprocs {procs}: {ok} acquired, {late} deadlines, {cancelled} cancels of {STRESS_GOROUTINES}"
        );
        assert_eq!(ok + late + cancelled, STRESS_GOROUTINES);
        assert_eq!(sem.available(), STRESS_PERMITS, "permits lost or made");
        assert_eq!(sem.queue_len(), 0);
        assert_eq!(parent.child_count(), 0);
    });
}

#[test]
fn mutex_stays_consistent_under_random_deadlines() {
    // 200 goroutines lock one mutex under contexts that time out after 0 to 3 ms; a fifth of
    // them hold it over 1 ms (so it turns starving). Mutual exclusion holds, the count of
    // successful locks is the data, and the mutex ends free with nobody queued.
    common::each_procs("mutex_stays_consistent_under_random_deadlines", |_| {
        let m = Arc::new(Mutex::new(0usize));
        let ok = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..200u64)
            .map(|i| {
                let (m, ok) = (m.clone(), ok.clone());
                gort::go!(move || {
                    let timeout = Duration::from_micros((i * 7919) % 3000);
                    let (ctx, _cancel) = context::with_timeout(&context::background(), timeout);
                    if let Ok(mut g) = context::lock(&ctx, &m) {
                        *g += 1;
                        if i % 5 == 0 {
                            common::sleep(Duration::from_micros(1200));
                        } else {
                            gort::yield_now();
                        }
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(*m.lock(), ok.load(Ordering::Relaxed));
        assert_eq!(m.queue_len(), 0);
        assert!(m.try_lock().is_some(), "left locked or starving");
    });
}
