//! `chan::sync::Cond` at maxprocs 1, 2 and 4: `signal` wakes waiters in the order they began
//! waiting (exact order of 10), `broadcast` wakes every waiter (goroutines and a plain
//! thread), and a producer/consumer hand-off over `wait_while` loses nothing.

mod common;

use std::sync::Arc;

use chan::sync::{Cond, Mutex};
use common::{each_procs, start, wait_until, Side};

#[derive(Default)]
struct Log {
    /// Waiters that have entered `wait` (incremented under the mutex just before it).
    entered: usize,
    /// Ids of woken waiters, in the order they got the mutex back.
    woken: Vec<usize>,
}

type Shared = Arc<(Mutex<Log>, Cond)>;

/// Starts waiter `id`: records its entry and waits once, then logs its id.
fn spawn_waiter(shared: &Shared, id: usize, side: Side) -> Box<dyn FnOnce() + Send> {
    let shared = shared.clone();
    start(side, move || {
        let (m, cond) = &*shared;
        let mut g = m.lock();
        g.entered += 1;
        let mut g = cond.wait(g);
        g.woken.push(id);
    })
}

fn entered(shared: &Shared) -> usize {
    shared.0.lock().entered
}

fn woken(shared: &Shared) -> usize {
    shared.0.lock().woken.len()
}

/// Ten waiters start waiting one after another (each is queued before the next starts: the
/// entry is logged under the mutex that `wait` releases only after queueing). Ten signals,
/// each after the previous waiter has logged, wake them in exactly that order.
#[test]
fn signal_wakes_longest_waiter_first() {
    each_procs("signal_wakes_longest_waiter_first", |_| {
        const WAITERS: usize = 10;
        let shared: Shared = Arc::new((Mutex::new(Log::default()), Cond::new()));
        let mut joins = Vec::new();
        for id in 0..WAITERS {
            let side = if id == 4 {
                Side::Thread
            } else {
                Side::Goroutine
            };
            joins.push(spawn_waiter(&shared, id, side));
            wait_until("waiter queued", || entered(&shared) == id + 1);
        }
        for n in 1..=WAITERS {
            shared.1.signal();
            wait_until("signalled waiter logged", || woken(&shared) == n);
        }
        for j in joins {
            j();
        }
        assert_eq!(shared.0.lock().woken, (0..WAITERS).collect::<Vec<_>>());
    });
}

/// 100 waiters (one a plain thread); one `broadcast` wakes all of them.
#[test]
fn broadcast_wakes_all() {
    each_procs("broadcast_wakes_all", |_| {
        const WAITERS: usize = 100;
        let shared: Shared = Arc::new((Mutex::new(Log::default()), Cond::new()));
        let joins: Vec<_> = (0..WAITERS)
            .map(|id| {
                let side = if id == 0 {
                    Side::Thread
                } else {
                    Side::Goroutine
                };
                spawn_waiter(&shared, id, side)
            })
            .collect();
        wait_until("all waiting", || entered(&shared) == WAITERS);
        shared.1.broadcast();
        for j in joins {
            j();
        }
        let mut ids = shared.0.lock().woken.clone();
        ids.sort_unstable();
        assert_eq!(ids, (0..WAITERS).collect::<Vec<_>>());
    });
}

/// A bounded queue between two producers and two consumers built on one mutex and two
/// conds: every item is consumed exactly once.
#[test]
fn producer_consumer_handoff() {
    each_procs("producer_consumer_handoff", |_| {
        const ITEMS: u64 = 5_000;
        const CAP: usize = 4;
        type Queue = Arc<(Mutex<Vec<u64>>, Cond, Cond)>;
        let q: Queue = Arc::new((Mutex::new(Vec::new()), Cond::new(), Cond::new()));
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let q = q.clone();
                start(Side::Goroutine, move || {
                    for i in 0..ITEMS {
                        let (m, not_full, not_empty) = &*q;
                        let mut g = not_full.wait_while(m.lock(), |v| v.len() >= CAP);
                        g.push(p * ITEMS + i + 1);
                        drop(g);
                        not_empty.signal();
                    }
                    0
                })
            })
            .collect();
        let consumers: Vec<_> = (0..2)
            .map(|c| {
                let q = q.clone();
                let side = if c == 0 {
                    Side::Thread
                } else {
                    Side::Goroutine
                };
                start(side, move || {
                    let mut sum = 0;
                    for _ in 0..ITEMS {
                        let (m, not_full, not_empty) = &*q;
                        let mut g = not_empty.wait_while(m.lock(), |v| v.is_empty());
                        sum += g.pop().expect("non-empty");
                        drop(g);
                        not_full.signal();
                    }
                    sum
                })
            })
            .collect();
        let total: u64 = producers.into_iter().chain(consumers).map(|j| j()).sum();
        let n = 2 * ITEMS;
        assert_eq!(total, n * (n + 1) / 2);
    });
}
