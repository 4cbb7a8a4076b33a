//! Unwind safety of every blocking path: a goroutine that panics while it is queued on a
//! channel, in a select or on a sync primitive leaves no entry behind pointing into its dead
//! stack frame, and the channel or primitive goes on working for everyone else.
//!
//! The panic comes from the test-only fault hook in `shim.rs` (the next park of the calling
//! thread panics), the one place where code runs while a waiter is queued. Each scenario runs
//! at GORT_MAXPROCS 1, 2 and 4 through the integration tests' harness, bounded in time.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use crate::shim::fault;
use crate::sync::{Cond, Mutex, RwMutex, Semaphore, WaitGroup};
use crate::test_harness::{each_procs_in_goroutine, quiet_expected_panics};
use crate::{chan, select, RecvTimeoutError, Select, SendTimeoutError};

/// Long enough for an operation with no partner to time out; short, since every check waits
/// it out.
const SHORT: Duration = Duration::from_millis(10);

/// Runs `op` in a new goroutine whose next park panics, and waits until that goroutine has
/// caught the panic and ended (so its stack frame is gone, and may be reused).
fn panics_in_park<R>(op: impl FnOnce() -> R + Send + 'static) {
    let h = sched::spawn(move || {
        fault::panic_at_next_park();
        let r = std::panic::catch_unwind(AssertUnwindSafe(op));
        assert!(r.is_err(), "the operation returned without parking");
    });
    h.join().unwrap();
}

#[test]
fn recv_panicking_in_park_leaves_no_entry() {
    quiet_expected_panics();
    each_procs_in_goroutine("recv_panicking_in_park_leaves_no_entry", |_| {
        let (tx, rx) = chan::<u64>(0);
        let rx2 = rx.clone();
        panics_in_park(move || rx2.recv());
        assert_eq!(rx.queue_lens(), (0, 0), "entry left in recvq");
        // Before: the dead entry took this value into the gone frame and reported success.
        assert!(matches!(
            tx.send_timeout(7, SHORT),
            Err(SendTimeoutError::Timeout(7))
        ));
        let rx3 = rx.clone();
        panics_in_park(move || rx3.recv_timeout(Duration::from_secs(60)));
        assert_eq!(rx.queue_lens(), (0, 0), "timed entry left in recvq");
        assert!(matches!(
            tx.send_timeout(8, SHORT),
            Err(SendTimeoutError::Timeout(8))
        ));
    });
}

#[test]
fn send_panicking_in_park_leaves_no_entry() {
    quiet_expected_panics();
    each_procs_in_goroutine("send_panicking_in_park_leaves_no_entry", |_| {
        let (tx, rx) = chan::<String>(0);
        let tx2 = tx.clone();
        panics_in_park(move || tx2.send("lost".to_string()));
        assert_eq!(tx.queue_lens(), (0, 0), "entry left in sendq");
        assert_eq!(rx.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
        let tx3 = tx.clone();
        panics_in_park(move || tx3.send_timeout("lost".to_string(), Duration::from_secs(60)));
        assert_eq!(tx.queue_lens(), (0, 0), "timed entry left in sendq");
        assert_eq!(rx.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
    });
}

#[test]
fn select_panicking_in_park_leaves_no_entry() {
    quiet_expected_panics();
    each_procs_in_goroutine("select_panicking_in_park_leaves_no_entry", |_| {
        let (tx1, rx1) = chan::<u64>(0);
        let (tx2, rx2) = chan::<u64>(0);
        let (r, t) = (rx1.clone(), tx2.clone());
        panics_in_park(move || {
            select! {
                recv(r) -> v => v.is_ok(),
                send(t, 9) -> res => res.is_ok(),
            }
        });
        assert_eq!(
            rx1.queue_lens(),
            (0, 0),
            "entry left on the receive case's channel"
        );
        assert_eq!(
            tx2.queue_lens(),
            (0, 0),
            "entry left on the send case's channel"
        );
        assert!(matches!(
            tx1.send_timeout(1, SHORT),
            Err(SendTimeoutError::Timeout(1))
        ));
        assert_eq!(rx2.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));

        let (r, t) = (rx1.clone(), tx2.clone());
        panics_in_park(move || {
            let mut sel = Select::new();
            sel.recv(&r);
            sel.send(&t, 10);
            sel.select_timeout(Duration::from_secs(60)).index()
        });
        assert_eq!(rx1.queue_lens(), (0, 0), "timed entry left (receive case)");
        assert_eq!(tx2.queue_lens(), (0, 0), "timed entry left (send case)");
        assert!(matches!(
            tx1.send_timeout(2, SHORT),
            Err(SendTimeoutError::Timeout(2))
        ));
    });
}

#[test]
fn semaphore_acquire_panicking_in_park_leaves_no_waiter() {
    quiet_expected_panics();
    each_procs_in_goroutine(
        "semaphore_acquire_panicking_in_park_leaves_no_waiter",
        |_| {
            let sem = Arc::new(Semaphore::new(0));
            let s = sem.clone();
            panics_in_park(move || s.acquire());
            assert_eq!(sem.queue_len(), 0, "waiter left in the semaphore's queue");
            // Before: the permit went to the gone waiter.
            sem.release();
            assert!(sem.try_acquire(), "the released permit was lost");
        },
    );
}

#[test]
fn mutex_lock_panicking_in_park_leaves_no_waiter() {
    quiet_expected_panics();
    each_procs_in_goroutine("mutex_lock_panicking_in_park_leaves_no_waiter", |_| {
        let m = Arc::new(Mutex::new(0u32));
        let held = m.lock();
        let m2 = m.clone();
        panics_in_park(move || *m2.lock() += 1);
        assert_eq!(m.queue_len(), 0, "waiter left in the mutex's queue");
        drop(held);
        // Still a mutex: two goroutines take turns.
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                sched::spawn(move || {
                    for _ in 0..100 {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock(), 200);
    });
}

#[test]
fn rwmutex_read_panicking_in_park_leaves_no_waiter() {
    quiet_expected_panics();
    each_procs_in_goroutine("rwmutex_read_panicking_in_park_leaves_no_waiter", |_| {
        let m = Arc::new(RwMutex::new(0u32));
        let w = m.write();
        let m2 = m.clone();
        panics_in_park(move || *m2.read());
        assert_eq!(m.queue_len(), 0, "reader left in the queue");
        drop(w);
    });
}

#[test]
fn cond_wait_panicking_in_park_leaves_no_waiter() {
    quiet_expected_panics();
    each_procs_in_goroutine("cond_wait_panicking_in_park_leaves_no_waiter", |_| {
        let pair = Arc::new((Mutex::new(false), Cond::new()));
        let p = pair.clone();
        panics_in_park(move || {
            let g = p.0.lock();
            drop(p.1.wait(g));
        });
        assert_eq!(pair.1.queue_len(), 0, "waiter left in the cond's queue");
        // A signal now reaches a live waiter, not the gone one.
        let p = pair.clone();
        let waiter = sched::spawn(move || {
            let g = p.0.lock();
            drop(p.1.wait_while(g, |ready| !*ready));
        });
        crate::test_harness::wait_until("waiter queued", || pair.1.queue_len() == 1);
        *pair.0.lock() = true;
        pair.1.signal();
        waiter.join().unwrap();
    });
}

#[test]
fn waitgroup_wait_panicking_in_park_leaves_no_waiter() {
    quiet_expected_panics();
    each_procs_in_goroutine("waitgroup_wait_panicking_in_park_leaves_no_waiter", |_| {
        let wg = WaitGroup::new();
        wg.add(1);
        let w = wg.clone();
        panics_in_park(move || w.wait());
        assert_eq!(wg.queue_len(), 0, "waiter left in the group's queue");
        wg.done();
    });
}
