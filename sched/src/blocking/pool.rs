//! The blocking pool's hand-off between callers and pool threads (`blocking.rs` has the API
//! and what it is for), generic over the job so that the loom models below run this very code.
//!
//! The hand-off is tokio's, under one lock (`Pool::state`, a leaf: held only to count and to
//! push or pop one job, never around a job, a wake-up or a thread start). Invariants, under
//! the lock (checked in debug builds and the loom models):
//! 1. `queue.len() == notified`: every queued job has claimed one sleeper;
//! 2. `idle + notified == sleepers`, the threads between jobs ([`Pool::idle`]);
//! 3. `sleepers <= threads`; `threads` counts pool threads alive or being started, and grows
//!    only below the cap.
//!
//! A submitter takes an unclaimed sleeper (`idle -= 1; notified += 1`, push, notify) or starts a
//! thread with the job in hand, or fails. A thread that has run a job becomes a sleeper first
//! and only then wakes the job's caller, so a goroutine that calls `blocking` again at once
//! finds it claimable rather than starting a second thread. A sleeper looks at the counts
//! before each wait and after each wake-up (a notify, its timeout, or a spurious one): any
//! claim, even one whose notify went to another sleeper, is taken by whichever looks first (the
//! other finds nothing and waits again), and a claim wins over the sleeper's own timeout, so a
//! job queued as its only sleeper's keep-alive ends is still taken (loom model
//! `claim_vs_keepalive_end`, and `two_sleepers_one_claim`); with no claim and the keep-alive
//! over, the sleeper leaves (`idle`, `sleepers`, `threads` down) and its thread exits.
//!

use std::collections::VecDeque;

use crate::loom::{AtomicUsize, Condvar, Mutex, MutexGuard, Ordering};

/// How an idle thread waits: the real keep-alive, or a model's stand-in.
pub(super) trait Wait {
    /// Called when the thread goes idle.
    fn begin(&mut self);
    /// Waits on `pool`'s condvar (releasing `g`); true if the keep-alive is over.
    fn wait<'a, J>(
        &mut self,
        pool: &'a Pool<J>,
        g: MutexGuard<'a, State<J>>,
    ) -> (MutexGuard<'a, State<J>>, bool);
}

/// The pool's shared state (module docs: the invariants).
pub(super) struct State<J> {
    queue: VecDeque<J>,
    threads: usize,
    idle: usize,
    notified: usize,
    /// Threads inside `Pool::idle`, for the invariant checks.
    sleepers: usize,
}

/// The pool, generic over the job so the loom models run this very code.
pub(super) struct Pool<J> {
    state: Mutex<State<J>>,
    /// Where sleepers wait (through a [`Wait`]).
    pub(super) cv: Condvar,
    /// `state.threads`, readable without the lock.
    pub(super) threads_mirror: AtomicUsize,
    /// Jobs in flight: kept by `blocking.rs` (its docs say what it is for), not by this file.
    pub(super) busy: AtomicUsize,
}

/// Whether the invariant checks run: in debug builds and in the loom models.
const CHECKS: bool = cfg!(any(debug_assertions, loom));

impl<J> Pool<J> {
    pub(super) fn new() -> Pool<J> {
        Pool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                notified: 0,
                sleepers: 0,
            }),
            cv: Condvar::new(),
            threads_mirror: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
        }
    }

    /// Takes the pool's lock, ignoring poison (no user code runs under it). A plain guard, not
    /// `loom::lock`'s: this lock is the pool's leaf, not one the scheduler's Ms wait for.
    pub(super) fn lock(&self) -> MutexGuard<'_, State<J>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `job` to a sleeping thread (`Ok(None)`), or counts a new thread that the caller
    /// must start with it (`Ok(Some(job))`), or gives it back: `cap` threads, all busy.
    pub(super) fn submit(&self, job: J, cap: usize) -> Result<Option<J>, J> {
        let mut s = self.lock();
        if s.idle > 0 {
            s.idle -= 1;
            s.notified += 1;
            s.queue.push_back(job);
            self.check(&s);
            drop(s);
            self.cv.notify_one();
            Ok(None)
        } else if s.threads < cap {
            self.set_threads(&mut s, 1);
            Ok(Some(job))
        } else {
            Err(job)
        }
    }

    /// A thread counted by `submit` could not be started.
    pub(super) fn spawn_failed(&self) {
        let mut s = self.lock();
        self.set_threads(&mut s, -1);
    }

    /// A pool thread's life: runs `job`, then, after each job, goes idle *before* `finish`
    /// wakes the job's caller (so a caller that blocks again at once finds this thread
    /// claimable instead of starting another), and takes the next job that claims it, until a
    /// keep-alive ends with nothing claimed.
    pub(super) fn work<D>(
        &self,
        mut job: J,
        run: impl Fn(J) -> D,
        finish: impl Fn(D),
        wait: &mut impl Wait,
    ) {
        loop {
            let done = run(job);
            let mut s = self.lock();
            s.idle += 1;
            s.sleepers += 1;
            self.check(&s);
            wait.begin();
            drop(s);
            finish(done);
            match self.idle(self.lock(), wait) {
                Some(next) => job = next,
                None => return,
            }
        }
    }

    /// Idle (counted in `idle` and `sleepers`): takes the next job that claims this thread, or,
    /// when the keep-alive ends unclaimed, uncounts the thread, which must exit (`None`).
    fn idle<'a>(&'a self, mut s: MutexGuard<'a, State<J>>, wait: &mut impl Wait) -> Option<J> {
        let mut over = false;
        loop {
            if s.notified > 0 {
                // Whichever sleeper looks first takes a claim; a claim wins over the keep-alive.
                s.notified -= 1;
                s.sleepers -= 1;
                let job = s.queue.pop_front().expect("a claim has its job queued");
                self.check(&s);
                return Some(job);
            }
            if over {
                s.idle -= 1;
                s.sleepers -= 1;
                self.set_threads(&mut s, -1);
                return None;
            }
            (s, over) = wait.wait(self, s);
        }
    }

    fn set_threads(&self, s: &mut State<J>, delta: isize) {
        s.threads = s.threads.wrapping_add_signed(delta);
        self.threads_mirror.store(s.threads, Ordering::SeqCst);
        self.check(s);
    }

    /// The invariants of the module docs (1 and 2, and counts in range).
    fn check(&self, s: &State<J>) {
        if CHECKS {
            assert_eq!(s.queue.len(), s.notified, "queued jobs vs claimed sleepers");
            assert_eq!(s.idle + s.notified, s.sleepers, "sleepers miscounted");
            assert!(s.sleepers <= s.threads, "more sleepers than threads");
        }
    }
}

/// loom models of the hand-off, on this module's own `Pool`. loom's `Condvar::wait_timeout`
/// never times out, so an idle thread's wait is modelled as what it is to the others: the
/// lock released and taken again at any moment, after which the keep-alive may be over. That
/// covers every wake-up (a notify, the timeout, a spurious one); what is checked is that no job
/// is lost or run twice and that the counts come back to zero. Every thread, the submitter
/// too, is a spawned thread; the model's own thread only sets up, joins and checks
/// (tokio-rs/loom#392: see HACKING.md).
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// An idle thread's wait: `spurious` wake-ups with the keep-alive not over, then over.
    struct Wakes {
        spurious: usize,
    }

    impl Wait for Wakes {
        fn begin(&mut self) {}

        fn wait<'a, J>(
            &mut self,
            pool: &'a Pool<J>,
            g: MutexGuard<'a, State<J>>,
        ) -> (MutexGuard<'a, State<J>>, bool) {
            drop(g);
            let over = self.spurious == 0;
            self.spurious = self.spurious.saturating_sub(1);
            (pool.lock(), over)
        }
    }

    /// A pool of `u32` jobs whose runs are counted per job.
    struct Model {
        pool: Pool<u32>,
        runs: [AtomicUsize; 3],
    }

    impl Model {
        fn new(threads: usize) -> Arc<Model> {
            let pool = Pool::new();
            pool.lock().threads = threads;
            let runs = [
                AtomicUsize::new(0),
                AtomicUsize::new(0),
                AtomicUsize::new(0),
            ];
            Arc::new(Model { pool, runs })
        }

        /// Starts a pool thread (already counted) with `job` and `spurious` wake-ups.
        fn thread(m: &Arc<Model>, job: u32, spurious: usize) -> thread::JoinHandle<()> {
            let m = Arc::clone(m);
            thread::spawn(move || {
                let run = |job: u32| {
                    m.runs[job as usize].fetch_add(1, Ordering::SeqCst);
                };
                m.pool.work(job, run, |()| {}, &mut Wakes { spurious })
            })
        }

        /// Submits `job` as `Pool::start` does, starting a thread if asked to; true if
        /// accepted.
        fn submit(m: &Arc<Model>, job: u32, cap: usize) -> (bool, Option<thread::JoinHandle<()>>) {
            match m.pool.submit(job, cap) {
                Ok(None) => (true, None),
                Ok(Some(job)) => (true, Some(Model::thread(m, job, 0))),
                Err(_) => (false, None),
            }
        }

        /// Submits `job` on a spawned thread, which joins the pool thread it starts, if any;
        /// the handle's result is whether the job was accepted.
        fn submitter(m: &Arc<Model>, job: u32, cap: usize) -> thread::JoinHandle<bool> {
            let m = Arc::clone(m);
            thread::spawn(move || {
                let (accepted, spawned) = Model::submit(&m, job, cap);
                if let Some(t) = spawned {
                    t.join().unwrap();
                }
                accepted
            })
        }

        /// Every thread has exited: nothing is queued, claimed or counted.
        fn assert_drained(&self) {
            let s = self.pool.lock();
            assert!(s.queue.is_empty(), "a job was left queued");
            assert_eq!((s.threads, s.idle, s.notified, s.sleepers), (0, 0, 0, 0));
        }
    }

    /// A job submitted as the only thread finishes its job and its keep-alive ends: it is
    /// taken by that thread (the claim wins over the keep-alive) or, once the thread has left,
    /// by a new one; or, at the cap of 1 before the thread went idle, refused. Checking the
    /// keep-alive before the claim in `Pool::idle` loses the job and fails this model.
    #[test]
    fn claim_vs_keepalive_end() {
        loom::model(|| {
            let m = Model::new(1);
            let worker = Model::thread(&m, 0, 0);
            let submitter = Model::submitter(&m, 1, 1);
            worker.join().unwrap();
            let accepted = submitter.join().unwrap();
            assert_eq!(m.runs[0].load(Ordering::SeqCst), 1);
            assert_eq!(m.runs[1].load(Ordering::SeqCst), usize::from(accepted));
            m.assert_drained();
        });
    }

    /// Two threads finishing their jobs, one with a spurious wake-up, and one job submitted
    /// at a cap of 2: whichever sleeper looks first takes the claim and the other finds
    /// nothing and leaves (or, if one has left already, a new thread takes it); every job runs
    /// once and nothing is left queued or counted.
    ///
    /// Bounded to 4 preemptions: with the submitter on a spawned thread, unbounded it runs for
    /// over five minutes (in release: 0.2 s at 2, 2.3 s at 3, 12 s at 4).
    #[test]
    fn two_sleepers_one_claim() {
        crate::loom::model_bounded(4, || {
            let m = Model::new(2);
            let a = Model::thread(&m, 0, 1);
            let b = Model::thread(&m, 1, 0);
            let submitter = Model::submitter(&m, 2, 2);
            a.join().unwrap();
            b.join().unwrap();
            let accepted = submitter.join().unwrap();
            assert_eq!(m.runs[0].load(Ordering::SeqCst), 1);
            assert_eq!(m.runs[1].load(Ordering::SeqCst), 1);
            assert_eq!(m.runs[2].load(Ordering::SeqCst), usize::from(accepted));
            m.assert_drained();
        });
    }
}
