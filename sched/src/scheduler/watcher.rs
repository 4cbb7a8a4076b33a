//! The watcher: the one idle M that waits for the earliest timer and for I/O (Go's M blocked
//! in `netpoll(delay)` from `findRunnable`, with the delay of the earliest timer).
//!
//! An M becomes the watcher in `IdleSet::stop_m` when it goes idle while a timer is pending or
//! someone waits for I/O and no other M watches. It then sleeps on its hand-off slot until the
//! earliest deadline, or, if anyone waits for I/O, blocks in the poller with that timeout. It
//! stops watching when:
//! - it is handed a P (`start_m` clears the watch under the idle lock), which is also how the
//!   goroutines its own poll readied for it reach it (`home.rs`: `wake_home` on itself);
//! - a timer is due: it takes an idle P and returns to `find_runnable`, which fires the timer
//!   (`IdleSet::watcher_woke`); if no P is idle, it leaves the timers to the busy Ps;
//! - in migrate mode, its poll readied goroutines onto the global queue (it has no P): it takes
//!   an idle P and runs them itself (`IdleSet::take_p_for_io`);
//! - its poll readied goroutines for other Ms only while some M holds a P: it leaves the watch
//!   to the next M to go idle (`IdleSet::resign_watch`), and takes it back after
//!   `IO_LEFT_TO_PS` if nobody took it (`wait_resigned`).
//!
//! A timer that becomes the earliest pokes the watcher (`timers_changed`), which re-reads the
//! deadline; the handshake that keeps a poke from falling between reading the deadline and
//! blocking is in `handoff.rs`.
//!
//! Like `idle.rs`, the wait is generic over the P it gets and over what it watches
//! ([`Watched`]: the runtime's timers and poller, or a model's fakes), so the loom models at
//! the bottom run this very code: a watcher entering a blocking poll while a timer becomes due
//! and is poked, while `start_m` hands it a P, while its own poll readies a goroutine homed
//! to it (with no P idle, and with one: no wake is left for the next poll), and while it
//! resigns the watch (to an M going idle, and to one computing for good: it takes the watch
//! back). A lost wake-up there is a watcher blocked for good in the fake poller: loom reports
//! it as a deadlock. The resignation models are bounded to 4 preemptions (unbounded, they run
//! for many minutes).

use std::time::{Duration, Instant};

use super::idle::{IdleM, IdleSet, Woken, World};
use super::{sched, submit, Runtime, Scheduler};
use crate::machine::Machine;
use crate::poller::Poller;
use crate::processor::Processor;

/// What the watcher waits for, beyond what the idle protocol sees (`World`: the global queue,
/// whether timers are pending, whether anyone waits for I/O).
pub(super) trait Watched: World {
    /// True if the earliest timer is due.
    fn timer_due(&self) -> bool;
    /// The earliest deadline, if any timer is in the heap.
    fn next_deadline(&self) -> Option<Instant>;
    /// The installed poller, if any. It must be the one `Handoff::wake_poller` interrupts.
    fn poller(&self) -> Option<&'static dyn Poller>;
    /// Claims the right to poll (the gate in `poller.rs`); false if another thread holds it.
    fn try_begin_poll(&self) -> bool;
    /// Gives the right to poll back.
    fn end_poll(&self);
    /// True if an M holds a P: it polls without blocking whenever it runs out of work
    /// (`find_runnable`). The models' default: false (the watcher always blocks in the poller).
    fn ps_busy(&self) -> bool {
        false
    }
    /// Tries to poll so far, by anyone, granted or not (`poller::tries`).
    fn poll_tries(&self) -> u64 {
        0
    }
    /// How long the watcher leaves I/O to the Ps before it looks whether they polled.
    fn io_left_to_ps(&self) -> Duration {
        IO_LEFT_TO_PS
    }
    /// Called each time the watcher wakes without a P: what only this thread can do while it
    /// idles (the runtime's: `cellcache::return_freed_pages`, which the scavenger pokes every
    /// M for). The models' default: nothing.
    fn on_wake(&self) {}
}

impl Watched for Runtime {
    fn on_wake(&self) {
        crate::cellcache::return_freed_pages();
    }

    fn timer_due(&self) -> bool {
        crate::timer::due()
    }

    fn next_deadline(&self) -> Option<Instant> {
        crate::timer::next_deadline()
    }

    fn poller(&self) -> Option<&'static dyn Poller> {
        crate::poller::poller()
    }

    fn try_begin_poll(&self) -> bool {
        crate::poller::try_begin_blocking_poll()
    }

    fn end_poll(&self) {
        crate::poller::end_poll()
    }

    fn ps_busy(&self) -> bool {
        self.0.idle.npidle() < self.0.nprocs()
    }

    fn poll_tries(&self) -> u64 {
        crate::poller::tries()
    }
}

/// The watcher's wait. Returns the P `m` runs with next and whether it counts as spinning.
pub(super) fn watch(s: &'static Scheduler, m: &Machine) -> (Box<Processor>, bool) {
    watch_on(&s.idle, m.handoff, &Runtime(s))
}

/// [`watch`] on any idle set: `me` is the watcher, listed in `idle`.
fn watch_on<P, G>(idle: &IdleSet<P, G>, me: &IdleM<P, G>, world: &impl Watched) -> (P, bool) {
    // The count of tries to poll when this M last looked (`leave_io_to_ps`): it polls first.
    let mut polls_seen = world.poll_tries();
    loop {
        let handed = if !world.io_waiters() {
            me.wait_until(world.next_deadline())
        } else if leave_io_to_ps(world, me, &mut polls_seen) {
            wait_while_ps_poll(me, world)
        } else {
            // Its own try is not a P's; a P's try while this M polls is (a P that found the
            // gate taken and went without).
            polls_seen = world.poll_tries().wrapping_add(1);
            poll_once(idle, me, world)
        };
        if let Some(handed) = handed {
            return handed;
        }
        world.on_wake();
        let timers = world.timers_pending();
        if timers && !world.timer_due() {
            continue; // poked: a new earliest deadline, or I/O readiness (already queued)
        }
        if !timers && world.io_waiters() {
            continue; // only I/O to wait for: keep polling
        }
        return match idle.watcher_woke(me, world) {
            Woken::TookP(p) => (p, false),
            Woken::Handed | Woken::Listed => me.wait(),
        };
    }
}

/// How long the watcher leaves I/O to the Ps before it looks whether they polled.
const IO_LEFT_TO_PS: Duration = Duration::from_millis(1);

/// True if the watcher should leave I/O to the Ps and sleep (until poked, the earliest timer,
/// or `IO_LEFT_TO_PS`) instead of blocking in the poller: an M holds a P, and someone tried to
/// poll since the watcher last looked, so the busy Ps poll by themselves (each time one runs out
/// of work, and every 61st schedule; a try counts even when the watcher's own blocking poll
/// holds the gate, or the watcher, once in the poller, would never see the Ps poll again), and
/// no M going idle since asked it to poll
/// (`Handoff::poke_to_poll`). A watcher blocked in the poller beside a busy P takes the
/// readiness that P would find in its own poll, and a goroutine homed to that P's M then comes
/// back through its remote queue, often after the M went to sleep for want of it: a futex
/// wake-up per message where the P alone needs none (`docs/BENCHMARKS.md`, session 6). An M
/// that goes idle while goroutines wait for I/O asks the watcher to poll (`IdleSet::stop_m`):
/// the Ps still busy may be computing and not poll for a long time. If the busy Ps stop polling
/// otherwise (a goroutine computing without scheduling), the watcher polls again after
/// `IO_LEFT_TO_PS`.
fn leave_io_to_ps<P, G>(world: &impl Watched, me: &IdleM<P, G>, polls_seen: &mut u64) -> bool {
    if me.take_poll_request() || !world.ps_busy() {
        return false;
    }
    let polls = world.poll_tries();
    let moved = polls != *polls_seen;
    *polls_seen = polls;
    moved
}

/// One blocking poll, until the earliest timer. Goroutines the poll readies go home
/// (`home.rs`), which hands their Ms a P (this M's own included, through its slot); in migrate
/// mode they go to the global queue (this M has no P, and `push_global` does not wake an M for
/// them) and this M takes an idle P and runs them itself. Returns the P this M runs with next,
/// if it has one.
fn poll_once<P, G>(
    idle: &IdleSet<P, G>,
    me: &IdleM<P, G>,
    world: &impl Watched,
) -> Option<(P, bool)> {
    let Some(poller) = world.poller() else {
        return me.wait_until(world.next_deadline());
    };
    if !world.try_begin_poll() {
        // Another M is in a non-blocking poll (only the watcher ever blocks in the poller):
        // it is over in microseconds; let it finish, then try again.
        std::thread::yield_now();
        return me.take();
    }
    me.set_in_poll(true);
    let readied = if me.is_handed() {
        0
    } else {
        // Read after `in_poll` is set (handoff.rs): a timer made earliest since the caller
        // looked either shows here or finds `in_poll` set and wakes the poller.
        let timeout = world
            .next_deadline()
            .map(|d: Instant| d.saturating_duration_since(Instant::now()));
        crate::stats::count(&crate::stats::POLLS);
        poller.poll(timeout)
    };
    me.set_in_poll(false);
    world.end_poll();
    if readied > 0 {
        trace_record!(Netpoll, readied as u64, 1);
        trace_event!(readied, blocking = true, "netpoll");
    }
    if let Some(handed) = me.take() {
        return Some(handed);
    }
    // Goroutines homed to an M went home (`home.rs`: this M's own came back as a P in its
    // slot, taken above). Only in migrate mode do readied goroutines wait on the global queue
    // for this M to take a P and run them.
    if readied == 0 {
        return None;
    }
    if world.global_empty() {
        // They went to other Ms, now running: the next of them to go idle takes the watch
        // and polls for its own goroutines (`IdleSet::resign_watch`). This M watching on
        // would block in the poller again at once, and the M it just woke, out of work a
        // moment later, would end that poll to take the gate (`find.rs`,
        // `take_gate_from_watcher`) or, gone idle, be woken by it for its next readiness: an
        // eventfd write and up to 200 µs of yields, or two futex wake-ups, for every request
        // of a lone echo connection (`docs/BENCHMARKS.md`, session 7).
        if idle.resign_watch(me) {
            trace_event!(m = me.id, "watcher resigns");
            return wait_resigned(idle, me, world);
        }
        return None;
    }
    match idle.take_p_for_io(me) {
        Woken::TookP(p) => Some((p, false)),
        Woken::Handed => Some(me.wait()),
        Woken::Listed => None,
    }
}

/// After `IdleSet::resign_watch`: sleeps until handed a P, looking again at `IO_LEFT_TO_PS`
/// (or the earliest timer, if sooner) and on a poke: if no M took the watch meanwhile (the Ms
/// it was left to compute without going idle, and a busy P polls only as it runs out of work
/// and every 61st schedule) and timers or I/O need it, this M takes it back (`None`: watch
/// on); else it sleeps on as a plain idle M (doing what only its thread can when poked, as
/// `sleep.rs` does).
fn wait_resigned<P, G>(
    idle: &IdleSet<P, G>,
    me: &IdleM<P, G>,
    world: &impl Watched,
) -> Option<(P, bool)> {
    if let Some(handed) = wait_while_ps_poll(me, world) {
        return Some(handed);
    }
    world.on_wake();
    if idle.rewatch(me, world) {
        return None;
    }
    loop {
        if let Some(handed) = me.wait_until(None) {
            return Some(handed);
        }
        world.on_wake();
    }
}

/// Sleeps while the busy Ps poll by themselves: until poked or handed a P, the earliest timer,
/// or `IO_LEFT_TO_PS`.
fn wait_while_ps_poll<P, G>(me: &IdleM<P, G>, world: &impl Watched) -> Option<(P, bool)> {
    let recheck = Instant::now() + world.io_left_to_ps();
    let until = world.next_deadline().map_or(recheck, |d| d.min(recheck));
    me.wait_until(Some(until))
}

/// A timer became the earliest: poke the watcher so it re-reads the deadline; if no M
/// watches, wake an idle P's M, which becomes the watcher when it finds nothing to do.
pub(crate) fn timers_changed() {
    if !poke_watcher(&sched().idle) {
        submit::wakep();
    }
}

/// Pokes the watcher of `idle`, if an M watches; false if none does.
fn poke_watcher<P, G>(idle: &IdleSet<P, G>) -> bool {
    match idle.watcher() {
        Some(w) => {
            w.poke();
            true
        }
        None => false,
    }
}

/// loom models of the watcher's hand-over between the poller and timers, on this file's code
/// and `handoff.rs`'s and `idle.rs`'s. The watcher blocks in a fake poller; a lost wake-up
/// leaves it blocked there for good, which loom reports as a deadlock. The watcher, M0, and
/// every other actor are spawned threads; the model's own thread only sets up, joins and
/// checks (tokio-rs/loom#392: see HACKING.md).
///
/// What carries the handshake here is the slot lock: `is_handed` takes it after the watcher
/// sets `in_poll` and before it reads the deadline, and `poke` and `deposit` take it before
/// `wake_poller` reads `in_poll`; whichever comes second sees the other's writes. (loom treats
/// SeqCst loads and stores as AcqRel, so it could not check the SeqCst on `in_poll` alone.)
#[cfg(all(test, loom))]
mod loom_models {
    use super::super::handoff::Handoff;
    use super::super::idle::Started;
    use super::*;
    use crate::loom::{lock, Arc, AtomicBool, AtomicUsize, Model, Mutex, Ordering};
    use loom::sync::atomic::AtomicU8;
    use loom::thread;
    use std::time::Duration;

    /// A stand-in for epoll and its eventfd. Like the netpoller: readiness and a `wake` are
    /// kept until a poll sees them, so one that comes before the poll makes it return at once;
    /// a zero-timeout poll delivers what is ready and leaves a pending wake alone; a blocking
    /// poll consumes it. The models' only timeouts are zero (a due timer) and an hour, which is
    /// longer than any model: a blocking poll returns only when woken or something is ready.
    /// It sleeps in loom's `park` with no lock held: loom fails a deadlocked model by
    /// unwinding the blocked thread, and a loom guard dropped then would abort the test binary
    /// (the same reason as for [`Model`]).
    struct FakePoller {
        state: Mutex<FakeState>,
        /// Goroutines waiting for I/O (`Poller::has_waiters`).
        waiters: AtomicUsize,
    }

    #[derive(Default)]
    struct FakeState {
        woken: bool,
        /// Descriptors that became ready: each readies its goroutine when a poll delivers it.
        ready: Vec<Box<dyn FnOnce() + Send>>,
        /// The thread asleep in `poll`, to unpark.
        sleeper: Option<thread::Thread>,
    }

    impl FakePoller {
        fn new() -> FakePoller {
            FakePoller {
                state: Mutex::new(FakeState::default()),
                waiters: AtomicUsize::new(0),
            }
        }

        fn poll(&self, timeout: Option<Duration>) -> usize {
            let blocking = timeout != Some(Duration::ZERO);
            let ready = loop {
                let mut s = lock(&self.state);
                if !blocking || s.woken || !s.ready.is_empty() {
                    if blocking {
                        s.woken = false;
                    }
                    break std::mem::take(&mut s.ready);
                }
                s.sleeper = Some(thread::current());
                drop(s);
                thread::park();
            };
            let n = ready.len();
            for unpark in ready {
                self.waiters.fetch_sub(1, Ordering::SeqCst);
                unpark();
            }
            n
        }

        fn kick(&self, s: &mut FakeState) -> Option<thread::Thread> {
            s.sleeper.take()
        }

        fn wake(&self) {
            let sleeper = {
                let mut s = lock(&self.state);
                s.woken = true;
                self.kick(&mut s)
            };
            if let Some(t) = sleeper {
                t.unpark();
            }
        }

        /// True if a wake waits for the next blocking poll (it would return at once).
        fn wake_pending(&self) -> bool {
            lock(&self.state).woken
        }

        /// The kernel side: a descriptor became ready; `unpark` readies its goroutine.
        fn make_ready(&self, unpark: impl FnOnce() + Send + 'static) {
            let sleeper = {
                let mut s = lock(&self.state);
                s.ready.push(Box::new(unpark));
                self.kick(&mut s)
            };
            if let Some(t) = sleeper {
                t.unpark();
            }
        }
    }

    loom::lazy_static! {
        /// This execution's poller (loom drops it when the execution ends).
        static ref FAKE: FakePoller = FakePoller::new();
    }

    /// The process-wide poller the models install: it forwards to the execution's `FAKE`.
    /// `Handoff::wake_poller` reaches the poller through `install_poller`, as in the runtime,
    /// so the models install one too; `Fakes::poller` returns the same.
    struct Forward;

    static FORWARD: Forward = Forward;

    impl Poller for Forward {
        fn poll(&self, timeout: Option<Duration>) -> usize {
            FAKE.poll(timeout)
        }
        fn wake(&self) {
            FAKE.wake()
        }
        fn has_waiters(&self) -> bool {
            FAKE.waiters.load(Ordering::SeqCst) != 0
        }
    }

    /// The fake timer heap's earliest entry: none, one an hour away, or one due.
    const NONE: u8 = 0;
    const FAR: u8 = 1;
    const DUE: u8 = 2;

    /// The rest of the runtime as the watcher sees it: one timer, the fake poller and its gate,
    /// an empty global queue.
    struct Fakes {
        timer: AtomicU8,
        gate: AtomicBool,
        /// An M holds a P (`ps_busy`), and the tries to poll (`poll_tries`): model (d) sets
        /// them; false and unmoving otherwise, so the others always take the poller's path.
        busy: AtomicBool,
        tries: AtomicUsize,
        /// A time the models' due timer is at (so it is due whenever it is read).
        base: Instant,
    }

    impl World for Fakes {
        fn global_empty(&self) -> bool {
            true
        }
        fn any_local_work(&self) -> bool {
            false
        }
        fn timers_pending(&self) -> bool {
            self.timer.load(Ordering::SeqCst) != NONE
        }
        fn io_waiters(&self) -> bool {
            FORWARD.has_waiters()
        }
        fn all_asleep(&self, _nm: usize) {}
    }

    impl Watched for Fakes {
        fn timer_due(&self) -> bool {
            self.timer.load(Ordering::SeqCst) == DUE
        }
        fn next_deadline(&self) -> Option<Instant> {
            match self.timer.load(Ordering::SeqCst) {
                NONE => None,
                FAR => Some(self.base + Duration::from_secs(3600)),
                _ => Some(self.base),
            }
        }
        fn poller(&self) -> Option<&'static dyn Poller> {
            crate::poller::poller()
        }
        fn try_begin_poll(&self) -> bool {
            self.tries.fetch_add(1, Ordering::SeqCst);
            !self.gate.swap(true, Ordering::Acquire)
        }
        fn end_poll(&self) {
            self.gate.store(false, Ordering::Release)
        }
        fn ps_busy(&self) -> bool {
            self.busy.load(Ordering::SeqCst)
        }
        fn poll_tries(&self) -> u64 {
            self.tries.load(Ordering::SeqCst) as u64
        }
        fn io_left_to_ps(&self) -> Duration {
            Duration::from_secs(3600) // longer than any model: only a poke ends the wait
        }
    }

    type Idle = Arc<IdleSet<u32, u32>>;

    loom::thread_local! {
        /// The M this model thread plays (`plays`), for [`ready_home`].
        static PLAYING: std::cell::Cell<Option<usize>> = std::cell::Cell::new(None);
    }

    /// This model thread plays M `id`.
    fn plays(id: usize) {
        PLAYING.with(|m| m.set(Some(id)));
    }

    /// M0, the watcher, on a spawned thread: it watches (`watch_on`) until it holds a P,
    /// which it returns with whether it counts as spinning.
    fn m0_watches(model: &Watching) -> thread::JoinHandle<(u32, bool)> {
        let model = Model::new((**model).clone());
        thread::spawn(move || {
            plays(0);
            let (idle, fakes, w, _) = &*model;
            watch_on(idle, w, &**fakes)
        })
    }

    /// `home::ready` from inside a poll (its caller has no P): goroutine `g`, homed to `home`,
    /// goes to `home`'s remote queue, and if `home` may be idle it is handed a P or made
    /// hungry, and woken unless this thread is `home`'s.
    fn ready_home(idle: &IdleSet<u32, u32>, home: &IdleM<u32, u32>, g: u32) {
        if home.push_remote(g, false) {
            if PLAYING.with(|m| m.get()) == Some(home.id) {
                idle.serve_itself(home);
            } else {
                idle.wake_home(home);
            }
        }
    }

    /// A descriptor becomes ready for goroutine `g`, homed to `home` ([`ready_home`]).
    fn make_ready_for(idle: Idle, home: IdleM<u32, u32>, g: u32) {
        FAKE.make_ready(move || ready_home(&idle, &home, g));
    }

    /// A model's objects: the idle set, the fakes, M0 (the watcher) and the Ps other Ms hold.
    type Watching = Model<(Idle, Arc<Fakes>, IdleM<u32, u32>, Vec<u32>)>;

    /// Ps `procs` (the last one first), and M0 (returned), which started with a P, found
    /// nothing, gave it back and went idle while `timer` was pending and `io` goroutines waited
    /// for I/O: it is the watcher. `others` more Ms started, each with a P (returned).
    fn watching(procs: Vec<u32>, others: usize, timer: u8, io: usize) -> Watching {
        crate::poller::install_poller(&FORWARD);
        let ours = crate::poller::poller().map(|p| p as *const dyn Poller as *const ());
        assert_eq!(ours, Some(&FORWARD as *const Forward as *const ()));
        FAKE.waiters.store(io, Ordering::SeqCst);
        let fakes = Arc::new(Fakes {
            timer: AtomicU8::new(timer),
            gate: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            tries: AtomicUsize::new(0),
            base: Instant::now(),
        });
        let idle = Arc::new(IdleSet::new(procs));
        let start = || match idle.start_m(false) {
            Started::NewM { p, .. } => p,
            Started::Woke | Started::NoIdleP => unreachable!("a P is idle, no M is"),
        };
        let p = start();
        let held = (0..others).map(|_| start()).collect();
        let w: IdleM<u32, u32> = Arc::new(Handoff::new(0));
        assert!(idle.release_p(p, false, &*fakes).is_none());
        assert!(idle.stop_m(&w, false, &*fakes), "M0 watches");
        Model(Some((idle, fakes, w, held)))
    }

    /// (a) The watcher enters its wait (a blocking poll if anyone waits for I/O, its condvar
    /// otherwise) with a timer an hour away, while another thread arms a timer that is due
    /// now: `sched::at` makes it the earliest and calls `timers_changed`. The watcher never
    /// sleeps through it: it takes the idle P to fire it. With the deadline read before
    /// `in_poll` is set (instead of after), the poke finds `in_poll` clear, the poll blocks
    /// with the old hour-long timeout, and loom reports the deadlock.
    #[test]
    fn watcher_poll_vs_earlier_timer() {
        for io in [1, 0] {
            loom::model(move || {
                let model = watching(vec![0], 0, FAR, io);
                let (idle, fakes, _, _) = &*model;
                let arm = {
                    let (idle, fakes) = (idle.clone(), fakes.clone());
                    thread::spawn(move || {
                        fakes.timer.store(DUE, Ordering::SeqCst);
                        // `timers_changed`, whose `wakep` finds no idle P if nobody watches
                        // any more: the watcher left the watch taking the P.
                        if !poke_watcher(&idle) {
                            assert!(matches!(idle.wakep(), Started::NoIdleP));
                        }
                    })
                };
                let (p, spinning) = m0_watches(&model).join().unwrap();
                arm.join().unwrap();
                assert_eq!(
                    (p, spinning),
                    (0, false),
                    "the watcher took P0 to fire the timer"
                );
                assert_eq!(idle.npidle(), 0);
            });
        }
    }

    /// (b) The watcher enters its wait (a blocking poll with no timer, or its condvar with a
    /// timer an hour away) while a submitter's `wakep` hands it the idle P. It takes the P,
    /// counted as spinning. Without the `is_handed` re-check after `in_poll` is set, a P
    /// deposited (and a wake that found `in_poll` clear) just before makes the watcher block in
    /// the poll with the P in its slot, and loom reports the deadlock.
    #[test]
    fn watcher_poll_vs_start_m() {
        for (timer, io) in [(NONE, 1), (FAR, 0)] {
            loom::model(move || {
                let model = watching(vec![0], 0, timer, io);
                let (idle, _, _, _) = &*model;
                let submitter = {
                    let idle = idle.clone();
                    thread::spawn(move || {
                        assert!(matches!(idle.wakep(), Started::Woke), "M0 is idle");
                    })
                };
                let handed = m0_watches(&model).join().unwrap();
                submitter.join().unwrap();
                assert_eq!(handed, (0, true), "M0 runs with the P wakep handed it");
                assert_eq!(idle.nmspinning(), 1);
                assert!(idle.watcher().is_none() && idle.nhungry() == 0);
            });
        }
    }

    /// (c) The watcher's own poll readies a goroutine homed to it (it parked on M0 for I/O)
    /// while no P is idle: M1 holds the only one (P1 was retired) and gives it up at the same
    /// time. Another goroutine still waits for I/O, so the watcher, hungry or not, polls again.
    /// Whatever the interleaving, M0 ends up with P0 and the goroutine in its remote queue:
    /// handed P0 by its own poll (`wake_home`), or by M1's `release_p` (`put_p` to the hungry
    /// M), which must interrupt the watcher's next poll. Without the `is_handed` re-check, the
    /// hand-over from M1 can fall just before that poll and loom reports the deadlock.
    ///
    /// Bounded to 4 preemptions: with the watcher on a spawned thread, unbounded it runs for
    /// well over a minute (in release: 0.1 s at 2, 0.4 s at 3, 2.1 s at 4, 8.6 s at 5).
    #[test]
    fn watcher_poll_readies_its_own_goroutine() {
        crate::loom::model_bounded(4, || {
            let model = watching(vec![0, 1], 1, NONE, 2);
            let (idle, fakes, w, held) = &*model;
            idle.retire_idle(&mut idle.lock(), |_| true);
            assert_eq!(*held, [0]);
            let io = {
                let (idle, w) = (idle.clone(), w.clone());
                // `home::ready` from inside the poll: M0 has no P, so its remote queue.
                thread::spawn(move || make_ready_for(idle, w, 7))
            };
            let m1 = {
                let (idle, fakes) = (idle.clone(), fakes.clone());
                thread::spawn(move || assert!(idle.release_p(0, false, &*fakes).is_none()))
            };
            let handed = m0_watches(&model).join().unwrap();
            io.join().unwrap();
            m1.join().unwrap();
            assert_eq!(handed, (0, false), "M0 runs with P0");
            assert!(w.has_remote(), "its goroutine waits for it there");
            assert!(idle.nhungry() == 0 && idle.npidle() == 0);
        });
    }

    /// (d) The watcher leaves I/O to busy Ps (`leave_io_to_ps`) while one M computes with P0
    /// for good and never polls, and M1, which polled (a try) and found nothing, gives up P1 and
    /// goes idle while its goroutines wait for I/O; a wake ends the watcher's poll, if it is in
    /// one, with nothing ready; then a descriptor becomes ready for a goroutine homed to the
    /// watcher. Whatever the interleaving, the watcher ends up polling,
    /// delivers the readiness, and runs with an idle P. If `stop_m` only poked the watcher (no request
    /// to poll), a watcher that last looked before M1's try would see the tries moved and go
    /// back to sleep on its slot, which only a poke ends (loom's timed waits never time out,
    /// and the model's recheck is an hour): loom reports the deadlock.
    ///
    /// Bounded to 5 preemptions: with the watcher on a spawned thread, unbounded it ran for
    /// over a minute (in release: 0.2 s at 3, 0.8 s at 4, 3.3 s at 5).
    #[test]
    fn watcher_leaves_io_to_ps_vs_an_m_going_idle() {
        crate::loom::model_bounded(5, || {
            // M0 gave up P2; M1 holds P1, the computing M P0.
            let model = watching(vec![0, 1, 2], 2, NONE, 2);
            let (idle, fakes, w, held) = &*model;
            assert_eq!(*held, [1, 0]);
            fakes.busy.store(true, Ordering::SeqCst);
            let m1 = {
                let (idle, fakes, w) = (idle.clone(), fakes.clone(), w.clone());
                thread::spawn(move || {
                    // M1's `poll_now` found nothing; it gives up its P and goes idle.
                    fakes.tries.fetch_add(1, Ordering::SeqCst);
                    let m1: IdleM<u32, u32> = Arc::new(Handoff::new(1));
                    assert!(idle.release_p(1, false, &*fakes).is_none());
                    assert!(!idle.stop_m(&m1, false, &*fakes), "M0 watches");
                    // Something else ends a blocking poll with nothing ready (a new earliest
                    // timer, say): the watcher decides again.
                    FAKE.wake();
                    // Then the kernel: a descriptor is ready for a goroutine homed to M0.
                    make_ready_for(idle, w, 7);
                })
            };
            let handed = m0_watches(&model).join().unwrap();
            m1.join().unwrap();
            assert!(
                handed.0 != 0 && !handed.1,
                "M0 runs with an idle P, not spinning"
            );
            assert!(w.has_remote(), "its goroutine waits for it there");
        });
    }

    /// (e) The watcher's poll readies a goroutine homed to M1, which is running with P1, so the
    /// watcher leaves the watch (`resign_watch`) and sleeps; M1 runs the goroutine, which
    /// waits for I/O again, and goes idle; then a descriptor becomes ready for it. Whatever the
    /// interleaving (M1 idle before or after the resignation), somebody polls: M1, as the new
    /// watcher, or M0, which kept the watch because every M was idle. M1 ends up with a P and
    /// its goroutine; M0, a plain idle M or still the watcher, takes the other P when it is
    /// handed one. A resignation that left the watch with every M idle (nobody to take it;
    /// `IO_LEFT_TO_PS` is an hour here) would leave the readiness unpolled: loom reports the
    /// deadlock (with `resign_watch`'s "every M listed" test removed, it does so within one
    /// preemption).
    ///
    /// Bounded to 4 preemptions: unbounded, this model runs for over ten minutes (in release:
    /// 0.04 s at 2, 0.4 s at 3, 4.4 s at 4, 36 s at 5).
    #[test]
    fn watcher_resigns_to_the_m_its_poll_readied() {
        crate::loom::model_bounded(4, || {
            // M0 gave up one P; M1 holds the other.
            let model = watching(vec![0, 1], 1, NONE, 2);
            let (idle, fakes, _, held) = &*model;
            let p1 = held[0];
            let m1_side = {
                let (idle, fakes) = (idle.clone(), fakes.clone());
                thread::spawn(move || {
                    plays(1);
                    let m1: IdleM<u32, u32> = Arc::new(Handoff::new(1));
                    // A descriptor is ready for M1's goroutine.
                    make_ready_for(idle.clone(), m1.clone(), 7);
                    // M1 runs out of work and goes idle, as `stopm` does, until it holds a P
                    // with goroutine 8. Handed a P for goroutine 7, it runs it (it waits for
                    // I/O again, and the kernel makes its descriptor ready once more: 8) and
                    // goes idle again.
                    let mut p = p1;
                    loop {
                        if m1.has_remote() {
                            let mut got = crate::chunked::ChunkedDeque::new();
                            m1.take_remote(&mut got, |_| unreachable!("hand-offs only"));
                            if got.iter().any(|&g| g == 8) {
                                break;
                            }
                            make_ready_for(idle.clone(), m1.clone(), 8);
                        }
                        if let Some(kept) = idle.release_p(p, false, &*fakes) {
                            p = kept;
                            continue;
                        }
                        let handed = if idle.stop_m(&m1, m1.has_remote(), &*fakes) {
                            watch_on(&idle, &m1, &*fakes)
                        } else {
                            m1.wait()
                        };
                        p = handed.0;
                    }
                    // The other P goes to M0, idle or watching.
                    assert!(matches!(idle.start_m(false), Started::Woke));
                    p
                })
            };
            let mine = m0_watches(&model).join().unwrap();
            let theirs = m1_side.join().unwrap();
            assert_ne!(mine.0, theirs, "each M holds its own P");
            assert_eq!(idle.npidle(), 0);
        });
    }

    /// (f) The watcher's poll readies a goroutine homed to M1, which computes with P1 for good
    /// (it never polls or goes idle), so the watcher resigns to it; then a descriptor becomes
    /// ready for a goroutine homed to the watcher, M0, and `IO_LEFT_TO_PS` passes (a poke
    /// here: loom's timed waits never time out). M0 takes the watch back (`rewatch`), polls,
    /// and runs its goroutine with the idle P. Without `rewatch`, nobody would ever poll for
    /// it: loom reports the deadlock.
    ///
    /// Bounded to 4 preemptions, as (e) (0.03 s at 2, 0.13 s at 3, 0.65 s at 4, 2.3 s at 5,
    /// 6.5 s at 6).
    #[test]
    fn resigned_watcher_takes_the_watch_back() {
        crate::loom::model_bounded(4, || {
            let model = watching(vec![0, 1], 1, NONE, 2);
            let (idle, _, w, held) = &*model;
            let m1: IdleM<u32, u32> = Arc::new(Handoff::new(1));
            let kernel = {
                let (idle, w, m1) = (idle.clone(), w.clone(), m1.clone());
                thread::spawn(move || {
                    make_ready_for(idle.clone(), m1, 7);
                    make_ready_for(idle, w, 9);
                })
            };
            let timeout = {
                let w = w.clone();
                thread::spawn(move || w.poke())
            };
            let handed = m0_watches(&model).join().unwrap();
            kernel.join().unwrap();
            timeout.join().unwrap();
            assert_eq!(handed, (1 - held[0], false), "M0 runs with the idle P");
            assert!(w.has_remote(), "its goroutine waits for it there");
        });
    }

    /// (g) The watcher's own poll readies a goroutine homed to it while a P is idle: it takes
    /// that P as the poll returns, and no wake is left pending in the poller (one would turn
    /// the next blocking poll, this M's or the next watcher's, into one that returns at once
    /// with nothing: with one echo connection, the M the watch was left to readies its own
    /// goroutine on every request).
    #[test]
    fn watcher_readies_its_own_goroutine_with_a_p_idle() {
        loom::model(|| {
            let model = watching(vec![0], 0, NONE, 1);
            let (idle, _, w, _) = &*model;
            let kernel = {
                let (idle, w) = (idle.clone(), w.clone());
                thread::spawn(move || make_ready_for(idle, w, 7))
            };
            let handed = m0_watches(&model).join().unwrap();
            kernel.join().unwrap();
            assert_eq!(handed, (0, false), "M0 runs with P0");
            assert!(w.has_remote(), "its goroutine waits for it there");
            assert!(!FAKE.wake_pending(), "no wake left for the next poll");
        });
    }
}
