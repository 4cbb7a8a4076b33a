//! `select!` and `Select`, after Go's select tests, written fresh: exactly one case fires,
//! ready cases are chosen fairly, a select never receives its own send, selects racing each
//! other and close neither lose nor duplicate values, `default`, nil channels and timeouts.
//! Each scenario runs at GORT_MAXPROCS 1, 2 and 4, bounded in time.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chan::{chan, select, Receiver, RecvError, Select, Sender};
use common::each_procs_in_goroutine as at_each_maxprocs;

#[test]
fn default_when_nothing_ready() {
    at_each_maxprocs("default_when_nothing_ready", |_| {
        let (tx, rx) = chan::<u32>(0);
        let r = select! {
            recv(rx) -> _v => "recv",
            send(tx, 1) -> _r => "send",
            default => "default",
        };
        assert_eq!(r, "default");
        // A nil channel is never ready either.
        let none: Option<Receiver<u32>> = None;
        let r = select! { recv(none) -> _v => 1, default => 2 };
        assert_eq!(r, 2);
        let never = Receiver::<u32>::never();
        let r = select! { recv(never) -> _v => 1, default => 2 };
        assert_eq!(r, 2);
    });
}

#[test]
fn exactly_one_case_fires() {
    at_each_maxprocs("exactly_one_case_fires", |_| {
        let (t1, r1) = chan::<u32>(1);
        let (t2, r2) = chan::<u32>(1);
        t1.send(1).unwrap();
        t2.send(2).unwrap();
        let got = select! {
            recv(r1) -> v => v.unwrap(),
            recv(r2) -> v => v.unwrap(),
        };
        // The other value is still there.
        let other = if got == 1 {
            r2.try_recv()
        } else {
            r1.try_recv()
        };
        assert_eq!(got + other.unwrap(), 3);
    });
}

#[test]
fn ready_cases_are_chosen_fairly() {
    at_each_maxprocs("ready_cases_are_chosen_fairly", |_| {
        const ROUNDS: usize = 30_000;
        let chans: Vec<(Sender<u8>, Receiver<u8>)> = (0..3).map(|_| chan(1)).collect();
        let mut counts = [0usize; 3];
        for _ in 0..ROUNDS {
            for (tx, _) in &chans {
                let _ = tx.try_send(0);
            }
            let i = select! {
                recv(chans[0].1) -> _v => 0,
                recv(chans[1].1) -> _v => 1,
                recv(chans[2].1) -> _v => 2,
            };
            counts[i] += 1;
        }
        // Each case should fire a third of the time; with 30,000 rounds the standard deviation
        // of a count is about 82, so ±1,000 (12 sigma) only fails if the choice is biased.
        for c in counts {
            assert!((c as i64 - 10_000).abs() < 1_000, "counts {counts:?}");
        }
    });
}

#[test]
fn never_receives_own_send() {
    // Go's TestSelfSelect: goroutines select on sending and receiving the same channel; a
    // select must never complete both halves itself.
    at_each_maxprocs("never_receives_own_send", |_| {
        for cap in [0, 1] {
            let (tx, rx) = chan::<usize>(cap);
            let handles: Vec<_> = (0..2usize)
                .map(|p| {
                    let (tx, rx) = (tx.clone(), rx.clone());
                    sched::spawn(move || {
                        for _ in 0..1000 {
                            select! {
                                send(tx, p) -> r => r.unwrap(),
                                recv(rx) -> v => {
                                    let v = v.unwrap();
                                    assert!(cap > 0 || v != p, "received its own value {v}");
                                }
                            }
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        }
    });
}

#[test]
fn concurrent_selects_neither_lose_nor_duplicate() {
    // Selectors receive over three shared channels while senders send distinct values on
    // them: the multiset received equals the multiset sent (the classic bug: two selects both
    // "win" the same sender).
    at_each_maxprocs("concurrent_selects_neither_lose_nor_duplicate", |_| {
        const PER_CHAN: usize = 3000;
        for cap in [0, 4] {
            let chans: Vec<(Sender<usize>, Receiver<usize>)> = (0..3).map(|_| chan(cap)).collect();
            let senders: Vec<_> = chans
                .iter()
                .enumerate()
                .map(|(c, (tx, _))| {
                    let tx = tx.clone();
                    sched::spawn(move || {
                        for i in 0..PER_CHAN {
                            tx.send(c * PER_CHAN + i).unwrap();
                        }
                    })
                })
                .collect();
            let receivers: Vec<Receiver<usize>> = chans.iter().map(|(_, rx)| rx.clone()).collect();
            drop(chans);
            let selectors: Vec<_> = (0..4)
                .map(|_| {
                    let rs = receivers.clone();
                    sched::spawn(move || {
                        let mut got = Vec::new();
                        // A closed channel is always ready: like Go code sets a closed
                        // channel to nil, the selector drops it (else it would spin).
                        let mut rs: Vec<Option<Receiver<usize>>> =
                            rs.into_iter().map(Some).collect();
                        while rs.iter().any(Option::is_some) {
                            let (i, v) = select! {
                                recv(rs[0].as_ref()) -> v => (0, v),
                                recv(rs[1].as_ref()) -> v => (1, v),
                                recv(rs[2].as_ref()) -> v => (2, v),
                            };
                            match v {
                                Ok(v) => got.push(v),
                                Err(RecvError) => rs[i] = None,
                            }
                        }
                        got
                    })
                })
                .collect();
            drop(receivers);
            for s in senders {
                s.join().unwrap();
            }
            let mut all: Vec<usize> = selectors
                .into_iter()
                .flat_map(|s| s.join().unwrap())
                .collect();
            all.sort_unstable();
            assert_eq!(all, (0..3 * PER_CHAN).collect::<Vec<_>>(), "cap {cap}");
        }
    });
}

#[test]
fn selects_racing_close() {
    at_each_maxprocs("selects_racing_close", |_| {
        // Receivers blocked in select on a channel that gets closed all return Err.
        let (tx, rx) = chan::<u32>(0);
        let never = Receiver::<u32>::never();
        let waiting: Vec<_> = (0..16)
            .map(|_| {
                let (rx, never) = (rx.clone(), never.clone());
                sched::spawn(move || {
                    select! {
                        recv(rx) -> v => v,
                        recv(never) -> _v => unreachable!("nil channel fired"),
                    }
                })
            })
            .collect();
        sched::yield_now();
        tx.close().unwrap();
        for w in waiting {
            assert_eq!(w.join().unwrap(), Err(RecvError));
        }

        // Senders selecting while a closer races a receiver: each value is either received
        // or returned, exactly once.
        let (tx, rx) = chan::<u32>(0);
        let sent_ok = Arc::new(AtomicUsize::new(0));
        let senders: Vec<_> = (0..16u32)
            .map(|i| {
                let (tx, ok) = (tx.clone(), sent_ok.clone());
                sched::spawn(move || {
                    select! {
                        send(tx, i) -> r => match r {
                            Ok(()) => { ok.fetch_add(1, Ordering::Relaxed); None }
                            Err(e) => Some(e.into_inner()),
                        },
                    }
                })
            })
            .collect();
        let mut received = Vec::new();
        for _ in 0..8 {
            received.push(rx.recv().unwrap());
        }
        tx.close().unwrap();
        let mut returned: Vec<u32> = senders
            .into_iter()
            .filter_map(|s| s.join().unwrap())
            .collect();
        assert_eq!(sent_ok.load(Ordering::Relaxed), received.len());
        returned.extend(received);
        returned.sort_unstable();
        assert_eq!(returned, (0..16).collect::<Vec<_>>());
    });
}

#[test]
fn dynamic_select_and_timeout() {
    at_each_maxprocs("dynamic_select_and_timeout", |_| {
        let chans: Vec<(Sender<usize>, Receiver<usize>)> = (0..10).map(|_| chan(0)).collect();
        let mut sel = Select::new();
        for (_, rx) in &chans {
            sel.recv(rx);
        }
        assert_eq!(sel.select_timeout(Duration::from_millis(5)).index(), None);

        let tx7 = chans[7].0.clone();
        let h = sched::spawn(move || tx7.send(77).unwrap());
        let mut sel = Select::new();
        let idx: Vec<usize> = chans.iter().map(|(_, rx)| sel.recv(rx)).collect();
        let mut op = sel.select();
        assert_eq!(op.index(), Some(idx[7]));
        assert_eq!(op.recv::<usize>(), Ok(77));
        h.join().unwrap();
    });
}

#[test]
fn select_send_and_recv_mixed_types() {
    at_each_maxprocs("select_send_and_recv_mixed_types", |_| {
        let (stx, srx) = chan::<String>(0);
        let (itx, irx) = chan::<i64>(0);
        let h = sched::spawn(move || {
            let s = srx.recv().unwrap();
            itx.send(s.len() as i64).unwrap();
        });
        let mut steps = Vec::new();
        let mut sent = false;
        while steps.len() < 2 {
            // Once sent, the send case uses a nil channel: it can no longer fire.
            let send_on = if sent { None } else { Some(&stx) };
            select! {
                send(send_on, "hello".to_string()) -> r => {
                    r.unwrap();
                    sent = true;
                    steps.push("sent");
                }
                recv(irx) -> v => {
                    assert_eq!(v, Ok(5));
                    steps.push("received");
                }
            }
        }
        assert_eq!(steps, ["sent", "received"]);
        h.join().unwrap();
    });
}

/// A select timeout too long to be an `Instant` waits without a deadline (before: it panicked
/// computing one).
#[test]
fn select_timeout_too_far_waits_without_deadline() {
    at_each_maxprocs("select_timeout_too_far_waits_without_deadline", |_| {
        let (tx, rx) = chan::<u32>(0);
        let h = sched::spawn(move || tx.send(5).unwrap());
        let mut sel = Select::new();
        let i = sel.recv(&rx);
        let mut op = sel.select_timeout(Duration::MAX);
        assert_eq!(op.index(), Some(i));
        assert_eq!(op.recv::<u32>(), Ok(5));
        h.join().unwrap();
    });
}
