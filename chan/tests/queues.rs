//! Every wait queue is left clean: a waiter that times out, whose select fired on another
//! channel, or that is woken leaves its queue (O(1): an intrusive list, `chan/src/list.rs`)
//! and nothing stays behind, for channels and for each `sync` primitive. Checked through the
//! hidden `queue_lens` / `queue_len` accessors, with many waiters on one shared object (the
//! shape that cost O(N²) when a waiter left by a scan). Each scenario runs at GORT_MAXPROCS 1,
//! 2 and 4, bounded in time.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chan::sync::{Cond, Mutex, RwMutex, Semaphore, WaitGroup};
use chan::{chan, select, RecvTimeoutError, Select, SendTimeoutError};
use common::each_procs_in_goroutine as at_each_maxprocs;
use common::wait_until;

/// Waiters per scenario.
const WAITERS: usize = 1000;

/// Spawns `n` goroutines running `f(i)` and joins them.
fn run_all<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let f = f.clone();
            sched::spawn(move || f(i))
        })
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn timed_out_waiters_leave_the_channel() {
    at_each_maxprocs("timed_out_waiters_leave_the_channel", |_| {
        let (tx, rx) = chan::<usize>(0);
        let r = rx.clone();
        let got = run_all(WAITERS, move |_| r.recv_timeout(Duration::from_millis(20)));
        assert!(got.iter().all(|r| *r == Err(RecvTimeoutError::Timeout)));
        assert_eq!(rx.queue_lens(), (0, 0), "timed-out receivers left entries");

        let t = tx.clone();
        let got = run_all(WAITERS, move |i| {
            t.send_timeout(i, Duration::from_millis(20))
        });
        assert!(got
            .iter()
            .all(|r| matches!(r, Err(SendTimeoutError::Timeout(_)))));
        assert_eq!(tx.queue_lens(), (0, 0), "timed-out senders left entries");

        // A select timing out on two channels leaves neither.
        let (tx2, rx2) = chan::<usize>(0);
        let (r, t) = (rx.clone(), tx2.clone());
        let got = run_all(WAITERS, move |i| {
            let mut sel = Select::new();
            sel.recv(&r);
            sel.send(&t, i);
            sel.select_timeout(Duration::from_millis(20)).index()
        });
        assert!(got.iter().all(Option::is_none));
        assert_eq!(
            rx.queue_lens(),
            (0, 0),
            "timed-out select left a receive entry"
        );
        assert_eq!(
            rx2.queue_lens(),
            (0, 0),
            "timed-out select left a send entry"
        );
    });
}

#[test]
fn select_that_fired_elsewhere_leaves_the_other_channels() {
    at_each_maxprocs(
        "select_that_fired_elsewhere_leaves_the_other_channels",
        |_| {
            // Every selector waits on one shared channel and on its own; each fires on its
            // own, so each must withdraw its entry from the shared one.
            let (shared_tx, shared_rx) = chan::<usize>(0);
            let own: Vec<_> = (0..WAITERS).map(|_| chan::<usize>(0)).collect();
            let receivers: Vec<_> = own.iter().map(|(_, rx)| rx.clone()).collect();
            let queued = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = receivers
                .into_iter()
                .map(|own_rx| {
                    let (shared_rx, queued) = (shared_rx.clone(), queued.clone());
                    sched::spawn(move || {
                        queued.fetch_add(1, Ordering::Relaxed);
                        select! {
                            recv(shared_rx) -> _v => unreachable!("nobody sends on it"),
                            recv(own_rx) -> v => v.unwrap(),
                        }
                    })
                })
                .collect();
            wait_until("every selector queued on the shared channel", || {
                shared_rx.queue_lens() == (WAITERS, 0)
            });
            for (i, (tx, _)) in own.iter().enumerate() {
                tx.send(i).unwrap();
            }
            let got: Vec<usize> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(got, (0..WAITERS).collect::<Vec<_>>());
            assert_eq!(
                shared_rx.queue_lens(),
                (0, 0),
                "selects left entries behind"
            );
            drop(shared_tx);
        },
    );
}

#[test]
fn woken_waiters_leave_the_channel() {
    at_each_maxprocs("woken_waiters_leave_the_channel", |_| {
        // Receivers woken by sends.
        let (tx, rx) = chan::<usize>(0);
        let r = rx.clone();
        let hs: Vec<_> = (0..WAITERS)
            .map(|_| {
                let r = r.clone();
                sched::spawn(move || r.recv().unwrap())
            })
            .collect();
        wait_until("receivers queued", || rx.queue_lens() == (WAITERS, 0));
        for i in 0..WAITERS {
            tx.send(i).unwrap();
        }
        let mut got: Vec<usize> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..WAITERS).collect::<Vec<_>>());
        assert_eq!(rx.queue_lens(), (0, 0));

        // Senders woken by receives, then by a close.
        let hs: Vec<_> = (0..WAITERS)
            .map(|i| {
                let t = tx.clone();
                sched::spawn(move || t.send(i).is_ok())
            })
            .collect();
        wait_until("senders queued", || tx.queue_lens() == (0, WAITERS));
        for _ in 0..WAITERS / 2 {
            rx.recv().unwrap();
        }
        tx.close().unwrap();
        let sent = hs
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&ok| ok)
            .count();
        assert_eq!(sent, WAITERS / 2);
        assert_eq!(tx.queue_lens(), (0, 0));
    });
}

#[test]
fn sync_waiters_leave_their_queues() {
    at_each_maxprocs("sync_waiters_leave_their_queues", |_| {
        // Mutex: contenders queue while it is held, and all get through.
        let m = Arc::new(Mutex::new(0usize));
        let held = m.lock();
        let hs: Vec<_> = (0..WAITERS)
            .map(|_| {
                let m = m.clone();
                sched::spawn(move || *m.lock() += 1)
            })
            .collect();
        wait_until("mutex waiters queued", || m.queue_len() == WAITERS);
        drop(held);
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!((*m.lock(), m.queue_len()), (WAITERS, 0));

        // RwMutex: readers queue behind a writer.
        let rw = Arc::new(RwMutex::new(0usize));
        let w = rw.write();
        let hs: Vec<_> = (0..WAITERS)
            .map(|_| {
                let rw = rw.clone();
                sched::spawn(move || *rw.read())
            })
            .collect();
        wait_until("readers queued", || rw.queue_len() == WAITERS);
        drop(w);
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(rw.queue_len(), 0);

        // Cond: waiters woken by signal (half) and broadcast (the rest).
        let pair = Arc::new((Mutex::new(0usize), Cond::new()));
        let hs: Vec<_> = (0..WAITERS)
            .map(|_| {
                let pair = pair.clone();
                sched::spawn(move || {
                    let g = pair.0.lock();
                    drop(pair.1.wait(g));
                })
            })
            .collect();
        wait_until("cond waiters queued", || pair.1.queue_len() == WAITERS);
        for _ in 0..WAITERS / 2 {
            pair.1.signal();
        }
        pair.1.broadcast();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(pair.1.queue_len(), 0);

        // Semaphore: waiters served as permits come back.
        let sem = Arc::new(Semaphore::new(0));
        let hs: Vec<_> = (0..WAITERS)
            .map(|_| {
                let sem = sem.clone();
                sched::spawn(move || sem.acquire())
            })
            .collect();
        wait_until("semaphore waiters queued", || sem.queue_len() == WAITERS);
        sem.release_many(WAITERS);
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!((sem.queue_len(), sem.available()), (0, 0));

        // WaitGroup: waiters released by the last done.
        let wg = WaitGroup::new();
        wg.add(1);
        let hs: Vec<_> = (0..WAITERS)
            .map(|_| {
                let wg = wg.clone();
                sched::spawn(move || wg.wait())
            })
            .collect();
        wait_until("group waiters queued", || wg.queue_len() == WAITERS);
        wg.done();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(wg.queue_len(), 0);
    });
}
