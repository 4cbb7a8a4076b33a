//! Channel behaviour, after Go's channel tests (runtime/chan_test.go), written fresh: rendezvous
//! semantics, buffered FIFO order, close with values buffered, exact delivery with many
//! senders and receivers, timeouts, and channels between goroutines and plain threads. Each
//! scenario runs at GORT_MAXPROCS 1, 2 and 4, bounded in time.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chan::{
    chan, CloseError, RecvError, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError,
};
use common::each_procs_in_goroutine as at_each_maxprocs;

#[test]
fn unbuffered_send_needs_a_receiver() {
    at_each_maxprocs("unbuffered_send_needs_a_receiver", |_| {
        let (tx, rx) = chan::<u32>(0);
        // No receiver waiting: a rendezvous send cannot complete.
        assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));
        assert!(matches!(
            tx.send_timeout(2, Duration::from_millis(5)),
            Err(SendTimeoutError::Timeout(2))
        ));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(tx.len(), 0);
        // With a receiver, values arrive in order, each one handed over directly.
        let h = sched::spawn(move || (0..1000).map(|_| rx.recv().unwrap()).collect::<Vec<_>>());
        for i in 0..1000 {
            tx.send(i).unwrap();
        }
        assert_eq!(h.join().unwrap(), (0..1000).collect::<Vec<_>>());
    });
}

#[test]
fn buffered_is_fifo_and_bounded() {
    at_each_maxprocs("buffered_is_fifo_and_bounded", |_| {
        let (tx, rx) = chan::<u32>(10);
        for i in 0..10 {
            tx.try_send(i).unwrap();
        }
        assert!(matches!(tx.try_send(10), Err(TrySendError::Full(10))));
        assert_eq!((tx.len(), tx.capacity()), (10, 10));
        // A blocked sender moves into the buffer as a receiver frees a place.
        let t2 = tx.clone();
        let blocked = sched::spawn(move || t2.send(10).unwrap());
        for i in 0..11 {
            assert_eq!(rx.recv(), Ok(i));
        }
        blocked.join().unwrap();
        assert!(rx.is_empty());
    });
}

#[test]
fn close_drains_buffer_then_reports_closed() {
    at_each_maxprocs("close_drains_buffer_then_reports_closed", |_| {
        let (tx, rx) = chan::<String>(5);
        for s in ["a", "b", "c"] {
            tx.send(s.to_string()).unwrap();
        }
        tx.close().unwrap();
        assert!(rx.is_closed());
        assert_eq!(tx.close(), Err(CloseError));
        assert_eq!(tx.send("d".into()).unwrap_err().into_inner(), "d");
        let got: Vec<String> = rx.iter().collect();
        assert_eq!(got, ["a", "b", "c"]);
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

#[test]
fn close_wakes_blocked_receivers_and_senders() {
    at_each_maxprocs("close_wakes_blocked_receivers_and_senders", |_| {
        let (tx, rx) = chan::<u32>(0);
        let receivers: Vec<_> = (0..8)
            .map(|_| {
                let rx = rx.clone();
                sched::spawn(move || rx.recv())
            })
            .collect();
        // Let them block (yielding until all are parked is not observable; closing works
        // whether they are parked yet or not).
        sched::yield_now();
        tx.close().unwrap();
        for r in receivers {
            assert_eq!(r.join().unwrap(), Err(RecvError));
        }
        let (tx, rx) = chan::<u32>(0);
        let senders: Vec<_> = (0..8)
            .map(|i| {
                let tx = tx.clone();
                sched::spawn(move || tx.send(i))
            })
            .collect();
        sched::yield_now();
        tx.close().unwrap();
        let mut back: Vec<u32> = senders
            .into_iter()
            .map(|s| s.join().unwrap().unwrap_err().into_inner())
            .collect();
        back.sort();
        assert_eq!(back, (0..8).collect::<Vec<_>>());
        drop(rx);
    });
}

#[test]
fn last_sender_drop_closes_and_last_receiver_drop_fails_sends() {
    at_each_maxprocs("drop_ends", |_| {
        let (tx, rx) = chan::<u32>(1);
        let tx2 = tx.clone();
        drop(tx);
        assert!(!rx.is_closed(), "a sender remains");
        drop(tx2);
        assert_eq!(rx.recv(), Err(RecvError));

        let (tx, rx) = chan::<u32>(0);
        let t2 = tx.clone();
        let blocked = sched::spawn(move || t2.send(7));
        sched::yield_now();
        drop(rx);
        assert_eq!(blocked.join().unwrap().unwrap_err().into_inner(), 7);
        assert!(tx.send(8).is_err());
    });
}

/// 4 senders and 4 receivers over one channel: every value is received exactly once.
fn mpmc(cap: usize) {
    const PER_SENDER: u64 = 5_000;
    let (tx, rx) = chan::<u64>(cap);
    let senders: Vec<_> = (0..4u64)
        .map(|s| {
            let tx = tx.clone();
            sched::spawn(move || {
                for i in 0..PER_SENDER {
                    tx.send(s * PER_SENDER + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let rx = rx.clone();
            sched::spawn(move || rx.iter().collect::<Vec<u64>>())
        })
        .collect();
    drop(rx);
    for s in senders {
        s.join().unwrap();
    }
    let mut all: Vec<u64> = receivers
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..4 * PER_SENDER).collect::<Vec<_>>(), "cap {cap}");
}

#[test]
fn many_senders_many_receivers_exact() {
    at_each_maxprocs("many_senders_many_receivers_exact", |_| {
        for cap in [0, 1, 16, 1024] {
            mpmc(cap);
        }
    });
}

#[test]
fn per_sender_order_is_kept() {
    at_each_maxprocs("per_sender_order_is_kept", |_| {
        let (tx, rx) = chan::<(u32, u32)>(8);
        let senders: Vec<_> = (0..4u32)
            .map(|s| {
                let tx = tx.clone();
                sched::spawn(move || (0..2000).for_each(|i| tx.send((s, i)).unwrap()))
            })
            .collect();
        drop(tx);
        let mut last: HashMap<u32, u32> = HashMap::new();
        let mut n = 0;
        for (s, i) in &rx {
            if let Some(prev) = last.insert(s, i) {
                assert!(i > prev, "sender {s}: {i} after {prev}");
            }
            n += 1;
        }
        assert_eq!(n, 8000);
        senders.into_iter().for_each(|s| s.join().unwrap());
    });
}

#[test]
fn recv_timeout_and_deadline() {
    at_each_maxprocs("recv_timeout_and_deadline", |_| {
        let (tx, rx) = chan::<u32>(0);
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(2)),
            Err(RecvTimeoutError::Timeout)
        );
        let h = sched::spawn(move || tx.send(5));
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(5));
        h.join().unwrap().unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(30)),
            Err(RecvTimeoutError::Closed)
        );
    });
}

#[test]
fn timeouts_race_senders_without_loss() {
    // Receivers with tiny timeouts race a sender: a value is either received or still in the
    // channel, never lost, even when a timeout and a hand-off coincide.
    at_each_maxprocs("timeouts_race_senders_without_loss", |_| {
        const N: usize = 2000;
        let (tx, rx) = chan::<usize>(0);
        let got = Arc::new(AtomicUsize::new(0));
        let g2 = got.clone();
        let receiver = sched::spawn(move || {
            let mut seen = Vec::new();
            while seen.len() < N {
                match rx.recv_timeout(Duration::from_micros(50)) {
                    Ok(v) => {
                        seen.push(v);
                        g2.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Closed) => break,
                }
            }
            seen
        });
        let mut timed_out = 0;
        for i in 0..N {
            let mut v = i;
            loop {
                match tx.send_timeout(v, Duration::from_micros(50)) {
                    Ok(()) => break,
                    Err(SendTimeoutError::Timeout(back)) => {
                        timed_out += 1;
                        v = back;
                    }
                    Err(SendTimeoutError::Closed(_)) => panic!("receiver alive"),
                }
            }
        }
        let seen = receiver.join().unwrap();
        assert_eq!(
            seen,
            (0..N).collect::<Vec<_>>(),
            "({timed_out} send timeouts)"
        );
        assert_eq!(got.load(Ordering::Relaxed), N);
    });
}

#[test]
fn plain_threads_and_goroutines_interoperate() {
    at_each_maxprocs("plain_threads_and_goroutines_interoperate", |_| {
        // thread -> goroutine -> thread, over rendezvous channels.
        let (to_g, from_t) = chan::<u32>(0);
        let (to_t, from_g) = chan::<u32>(0);
        let relay = sched::spawn(move || {
            for v in &from_t {
                to_t.send(v * 2).unwrap();
            }
        });
        let (done_tx, done_rx) = chan::<u32>(0);
        let thread = std::thread::spawn(move || {
            let mut sum = 0;
            for i in 0..1000 {
                to_g.send(i).unwrap();
                sum += from_g.recv().unwrap();
            }
            done_tx.send(sum).unwrap();
        });
        // Wait by receiving (parks this goroutine); a `thread.join()` here would block the
        // runtime thread itself, and at maxprocs 1 the relay could then never run.
        assert_eq!(done_rx.recv(), Ok(2 * (0..1000).sum::<u32>()));
        relay.join().unwrap();
        thread.join().unwrap();
    });
}

#[test]
fn threads_only() {
    // No goroutine at all: two plain threads over a rendezvous channel.
    let (tx, rx) = chan::<u32>(0);
    let t = std::thread::spawn(move || (0..10_000).map(|_| rx.recv().unwrap()).sum::<u32>());
    for i in 0..10_000 {
        tx.send(i).unwrap();
    }
    assert_eq!(t.join().unwrap(), (0..10_000).sum::<u32>());
}

/// Timeouts too long to be an `Instant` wait without a deadline (std's `recv_timeout` accepts
/// `Duration::MAX` too), and a deadline at the very end of `Instant`'s range is waited for
/// without any overflow (before: `Instant + Duration` panicked, in `recv_timeout` itself or,
/// for `recv_deadline`, inside the scheduler's park while the entry was queued).
#[test]
fn far_deadlines_saturate() {
    at_each_maxprocs("far_deadlines_saturate", |_| {
        let last = last_instant();
        let (tx, rx) = chan::<u32>(0);
        let t = tx.clone();
        let h = sched::spawn(move || {
            t.send(1).unwrap();
            t.send(2).unwrap();
        });
        assert_eq!(rx.recv_timeout(Duration::MAX), Ok(1));
        assert_eq!(rx.recv_deadline(last), Ok(2));
        h.join().unwrap();

        let r = rx.clone();
        let h = sched::spawn(move || (r.recv().unwrap(), r.recv().unwrap()));
        tx.send_timeout(3, Duration::MAX).unwrap();
        tx.send_deadline(4, last).unwrap();
        assert_eq!(h.join().unwrap(), (3, 4));
    });
}

/// The last `Instant` from now on that the platform can represent, to the nanosecond (so
/// adding the time left until it to any later `now` overflows).
fn last_instant() -> Instant {
    let now = Instant::now();
    if let Some(last) = now.checked_add(Duration::MAX) {
        return last;
    }
    let fits = |d: Duration| now.checked_add(d).is_some();
    let (mut lo, mut hi) = (0u64, u64::MAX); // whole seconds: `lo` fits, `hi` does not
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(Duration::from_secs(mid)) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let (mut nlo, mut nhi) = (0u32, 1_000_000_000u32); // then nanoseconds
    while nhi - nlo > 1 {
        let mid = nlo + (nhi - nlo) / 2;
        if fits(Duration::new(lo, mid)) {
            nlo = mid;
        } else {
            nhi = mid;
        }
    }
    now + Duration::new(lo, nlo)
}
