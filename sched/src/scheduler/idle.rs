//! The idle set: idle Ps, idle Ms, the timer/I-O watcher, and the counters `npidle` and
//! `nmspinning` (Go's `sched.pidle`, `sched.midle`, `startm`, `stopm`, and the give-up half of
//! `findRunnable`). This is where the scheduler decides who sleeps and who is woken, so it is
//! where a wake-up can be lost; it is generic over the P it moves (`Box<Processor>` in the
//! runtime, a number in the loom models at the bottom) so the models check this very code.
//!
//! Length: about 500 lines of protocol, most of them the argument for it, and 185 of loom
//! models, which sit beside the code they check (those of sysmon's hand-offs, in
//! `retake_loom_models.rs`, are a child module of this one).
//!
//! The states of an M, as seen under the idle lock:
//! - running: it holds a P (if spinning, it is counted in `nmspinning`); not listed.
//! - handed: not listed, and a P waits in its [`Handoff`] slot, put there by [`start_m`] in the
//!   same critical section that unlisted it; the M takes it when it wakes.
//! - idle: listed in `machines`, its slot empty; asleep on the slot (or about to be).
//! - watcher: idle, and named by `watcher`: it sleeps only until the earliest timer, or blocks
//!   in the poller. At most one.
//! - hungry: idle, and in `hungry`: goroutines homed to it wait (`home.rs`) and no P was idle.
//!   The next P to come free goes to it (`put_p`), and a busy M hands it its P every 61
//!   schedules (`hand_to_hungry`). A hungry M may also be the watcher.
//!
//! Transitions: running → idle by [`stop_m`] (after [`release_p`]); idle → handed by
//! [`start_m`] (another thread); watcher → running by [`watcher_woke`] or [`take_p_for_io`]
//! (the watcher itself, when a timer is due or the poller readied goroutines); watcher → idle
//! by [`resign_watch`] (its poll readied goroutines for other Ms only, and some M holds a P);
//! handed → running when the M takes its slot.
//!
//! Invariants, true whenever the idle lock is free (`check` asserts them in debug builds):
//! 1. `npidle == procs.len()`; both change only under the lock.
//! 2. An M is listed at most once, and a listed M's slot is empty. So an M that wakes for any
//!    reason (a deadline, a poke) can tell under the lock whether it was handed a P: if it is
//!    not listed, its P is in its slot. (Issue 16: `startm` once unlisted an M and dropped the
//!    lock before depositing; a watcher whose deadline passed in between listed itself again,
//!    ran twice-listed, and its stale `watcher` entry left due timers with nobody to fire them.)
//! 3. `watcher`, if set, is listed.
//! 4. `machines.len() <= nm`. When all `nm` Ms are listed, no M holds or is being handed a P.
//! 5. If every M is listed and a timer is pending, there is a watcher: a due timer always has
//!    an M to fire it. An M decides to watch in `stop_m` from the snapshot this check uses.
//! 6. `hungry` is a subset of the listed Ms, and is empty whenever a P is idle: a hungry M is
//!    never left waiting beside an idle P.
//!
//! `nmspinning` counts Ms marked spinning: looking for work with a P, or handed a P by
//! [`wakep`] and not yet looking. `wakep` starts a spinner only when none spins (so at most one
//! is started per piece of new work) and only if a P is idle.
//!
//! No lost wake-up between a submitter and the last M to give up (Go's "delicate dance",
//! proc.go): the submitter makes its work visible, then a SeqCst fence, then reads `npidle` and
//! `nmspinning` ([`wake_for`]). The M giving up does the mirror image in [`release_p`]: it
//! raises `npidle` and lowers `nmspinning`, then a SeqCst fence, then re-checks the global
//! queue (and, if it was spinning, every P's queue). By the fences, one of the two sees the
//! other: the submitter sees an idle P and no spinner and starts an M, or the M sees the work
//! and takes a P back. The loom model `submitter_vs_last_spinner` checks this.
//!
//! No stranded homed goroutine: a waker pushes to the home M's remote queue, fences, and reads
//! its idle flag; `stop_m` sets the flag, fences, and looks at the remote queue (`handoff.rs`).
//! If the waker sees the M idle, `wake_home` hands it a P or makes it hungry; otherwise `stop_m`
//! sees the goroutine and does the same for the M itself. The loom models
//! `ready_vs_home_going_idle` and `hungry_m_gets_the_next_free_p` check this.
//!
//! No lost timer: a timer made earliest calls `timers_changed`, which pokes the watcher or, if
//! there is none, calls `wakep`; an M that goes idle while a timer is pending becomes the
//! watcher if there is none (`stop_m`, under the lock, so with `timers_changed` reading
//! `watcher` under the same lock one of the two sees the other); the watcher that wakes for a
//! due timer takes a P to fire it, or, if every P is busy, leaves the timers to the busy Ps,
//! which fire due timers as they schedule and become the watcher when they go idle. An M stops
//! watching (or declines to watch) only after `timer::pending()` answered false, and that
//! answer is recorded, so the next timer to become pending calls `timers_changed` even when
//! stopped entries keep it from being the earliest (`timer/set.rs`, `none_seen`). The loom model
//! `watcher_deadline_vs_start_m` checks the hand-over of issue 16.
//!
//! [`start_m`]: IdleSet::start_m
//! [`stop_m`]: IdleSet::stop_m
//! [`release_p`]: IdleSet::release_p
//! [`watcher_woke`]: IdleSet::watcher_woke
//! [`take_p_for_io`]: IdleSet::take_p_for_io
//! [`resign_watch`]: IdleSet::resign_watch
//! [`wakep`]: IdleSet::wakep
//! [`wake_for`]: IdleSet::wake_for

use super::handoff::Handoff;
use crate::loom::{fence, lock, Arc, AtomicUsize, Locked, Mutex, Ordering};

/// The rest of the runtime, as the idle protocol needs to see it.
pub(crate) trait World {
    /// True if the global run queue is empty.
    fn global_empty(&self) -> bool;
    /// True if some P's queue (or `runnext`) holds a goroutine a thief could take.
    fn any_local_work(&self) -> bool;
    /// True if a timer is pending: it will need an M to fire it.
    fn timers_pending(&self) -> bool;
    /// True if a goroutine or thread waits for I/O: it will need an M to poll.
    fn io_waiters(&self) -> bool;
    /// Every one of the `nm` Ms is idle and nothing is queued, timed or waiting for I/O: the
    /// deadlock check (it may end the process). Called with the idle lock held.
    fn all_asleep(&self, nm: usize);
}

/// Whether the invariant checks run: in debug builds, and in the loom models (which CI builds
/// in release mode).
const CHECKS: bool = cfg!(any(debug_assertions, loom));

/// An M, as the idle set holds it: its shared part.
pub(crate) type IdleM<P, G> = Arc<Handoff<P, G>>;

/// The idle Ps and Ms and the counters read without the lock.
pub(crate) struct IdleSet<P, G> {
    lists: Mutex<Lists<P, G>>,
    /// `lists.procs.len()`, readable without the lock (invariant 1).
    npidle: AtomicUsize,
    nmspinning: AtomicUsize,
    /// `lists.hungry.len()`, readable without the lock.
    nhungry: AtomicUsize,
    /// Ps taken from or put on the idle list, or handed from M to M (sysmon: `moves`).
    moves: AtomicUsize,
}

/// What the idle lock guards.
pub(crate) struct Lists<P, G> {
    procs: Vec<P>,
    /// Ps above `maxprocs`, kept for when it grows again (`maxprocs.rs`).
    pub(super) retired: Vec<P>,
    /// P ids `0..created` exist (`maxprocs.rs`: each id is created once, never twice).
    pub(super) created: usize,
    machines: Vec<IdleM<P, G>>,
    /// Listed Ms that have goroutines homed to them waiting to run: the next free P is theirs.
    hungry: Vec<IdleM<P, G>>,
    /// Ms ever started (they never exit).
    nm: usize,
    watcher: Option<IdleM<P, G>>,
}

/// What [`IdleSet::start_m`] did.
pub(crate) enum Started<P> {
    /// No idle P: nothing to do.
    NoIdleP,
    /// An idle M was handed the P and woken.
    Woke,
    /// No idle M: the caller must start M `id` with `p` (counted as spinning if `spinning`).
    NewM { id: usize, p: P, spinning: bool },
}

/// What a waking watcher got.
pub(crate) enum Woken<P> {
    /// Someone handed it a P meanwhile: take it from the slot.
    Handed,
    /// It took this idle P itself and is off the list.
    TookP(P),
    /// No P for it: it is still listed (no longer the watcher if `watcher_woke` said so).
    Listed,
}

impl<P, G> IdleSet<P, G> {
    /// An idle set holding `procs`, with no M yet.
    pub(crate) fn new(procs: Vec<P>) -> IdleSet<P, G> {
        IdleSet {
            npidle: AtomicUsize::new(procs.len()),
            nmspinning: AtomicUsize::new(0),
            nhungry: AtomicUsize::new(0),
            moves: AtomicUsize::new(0),
            lists: Mutex::new(Lists {
                created: procs.len(),
                procs,
                retired: Vec::new(),
                machines: Vec::new(),
                hungry: Vec::new(),
                nm: 0,
                watcher: None,
            }),
        }
    }

    /// Takes the idle lock (lock order: `docs/HACKING.md`).
    pub(crate) fn lock(&self) -> Locked<'_, Lists<P, G>> {
        lock(&self.lists)
    }

    /// Calls `f` on every idle P under the idle lock: a listed P belongs to no M, so `f` may
    /// change it. For the scavenger, which empties their cell caches (`cellcache::trim_idle`);
    /// `f` must not allocate, block or take a lock.
    pub(crate) fn for_each_idle_p(&self, f: impl FnMut(&mut P)) {
        self.lock().procs.iter_mut().for_each(f);
    }

    /// Idle Ps, read without the lock.
    pub(crate) fn npidle(&self) -> usize {
        self.npidle.load(Ordering::SeqCst)
    }

    /// Spinning Ms, read without the lock.
    pub(crate) fn nmspinning(&self) -> usize {
        self.nmspinning.load(Ordering::SeqCst)
    }

    /// The lists, for a hang report: idle Ps, listed Ms, hungry Ms, the watcher.
    pub(crate) fn describe(&self) -> String {
        let l = self.lock();
        let ids = |v: &[IdleM<P, G>]| v.iter().map(|m| m.id).collect::<Vec<_>>();
        format!(
            "idle Ps {}, retired Ps {}, Ms {} (listed idle {:?}, hungry {:?}, watcher {:?}), \
             spinning {}",
            l.procs.len(),
            l.retired.len(),
            l.nm,
            ids(&l.machines),
            ids(&l.hungry),
            l.watcher.as_ref().map(|m| m.id),
            self.nmspinning()
        )
    }

    /// Hungry Ms (idle with homed goroutines waiting), read without the lock.
    pub(crate) fn nhungry(&self) -> usize {
        self.nhungry.load(Ordering::Relaxed)
    }

    /// An M holding a P starts spinning (looking for work to steal).
    pub(crate) fn start_spinning(&self) {
        self.nmspinning.fetch_add(1, Ordering::SeqCst);
    }

    /// A spinning M stops spinning. True if it was the last: it must `wakep` if it found work,
    /// so one M keeps looking while there may be more (Go's `resetspinning`).
    pub(crate) fn stop_spinning(&self) -> bool {
        self.nmspinning.fetch_sub(1, Ordering::SeqCst) == 1
    }

    /// Takes an idle P.
    pub(crate) fn pop_p(&self, l: &mut Lists<P, G>) -> Option<P> {
        let p = l.procs.pop()?;
        self.npidle.fetch_sub(1, Ordering::SeqCst);
        self.moves.fetch_add(1, Ordering::Relaxed);
        crate::sysmon::p_taken();
        Some(p)
    }

    /// A P becomes free: a hungry M gets it (returned: wake it once the lock is dropped), or it
    /// goes on the idle list.
    #[must_use = "a hungry M handed the P must be woken"]
    pub(crate) fn put_p(&self, l: &mut Lists<P, G>, p: P) -> Option<IdleM<P, G>> {
        self.moves.fetch_add(1, Ordering::Relaxed);
        // The M hungry longest first (stopped Ms take turns: `preempt.rs`).
        if let Some(m) = l.hungry.first().cloned() {
            self.unlist(l, &m);
            m.deposit(p, false);
            return Some(m);
        }
        l.procs.push(p);
        self.npidle.fetch_add(1, Ordering::SeqCst);
        None
    }

    /// Moves the idle Ps for which `retire` holds to the retired list (`set_maxprocs`).
    pub(crate) fn retire_idle(&self, l: &mut Lists<P, G>, retire: impl Fn(&P) -> bool) {
        let (gone, keep): (Vec<P>, Vec<P>) = std::mem::take(&mut l.procs)
            .into_iter()
            .partition(|p| retire(p));
        self.npidle.fetch_sub(gone.len(), Ordering::SeqCst);
        l.procs = keep;
        l.retired.extend(gone);
    }

    /// After making work visible to every M (the global queue): the SeqCst fence that pairs
    /// with `release_p`'s, then `wakep` (module docs).
    pub(crate) fn wake_for(&self) -> Started<P> {
        fence(Ordering::SeqCst);
        self.wakep()
    }

    /// Starts a spinning M if a P is idle and no M spins (Go's `wakep`).
    pub(crate) fn wakep(&self) -> Started<P> {
        if self.npidle() == 0 || self.nmspinning() != 0 {
            return Started::NoIdleP;
        }
        if self
            .nmspinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return Started::NoIdleP;
        }
        self.start_m(true)
    }

    /// Hands an idle P to an idle M (a hungry one first: it has work of its own) and wakes it,
    /// or says which new M to start. With `spinning`, the caller counted the M in
    /// `nmspinning`; that count is undone if no P is idle.
    pub(crate) fn start_m(&self, spinning: bool) -> Started<P> {
        let mut l = self.lock();
        let Some(p) = self.pop_p(&mut l) else {
            drop(l);
            if spinning {
                self.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
            return Started::NoIdleP;
        };
        let Some(m) = l.hungry.first().or(l.machines.last()).cloned() else {
            let id = l.nm;
            l.nm += 1;
            return Started::NewM { id, p, spinning };
        };
        self.unlist(&mut l, &m);
        // Inside the critical section that unlisted `m` (invariant 2).
        m.deposit(p, spinning);
        drop(l);
        m.wake();
        Started::Woke
    }

    /// Another thread readied a goroutine homed to `m` and saw `m` idle
    /// (`Handoff::push_remote`): hand `m` an idle P and wake it, or, if none is idle, mark it
    /// hungry so the next free P is its. Nothing to do if `m` is not listed: it runs, or was
    /// handed a P, and looks at its remote queue before it sleeps.
    pub(crate) fn wake_home(&self, m: &IdleM<P, G>) {
        let mut l = self.lock();
        if self.serve(&mut l, m) {
            drop(l);
            m.wake();
        }
    }

    /// [`wake_home`](Self::wake_home) on `m`'s own thread: the watcher's poll readied a
    /// goroutine homed to it (`home.rs`). `m` is handed an idle P or made hungry, and not woken:
    /// it is awake, and takes its slot as the poll returns (`watcher.rs`, `poll_once`). A wake
    /// would cost a futex call and, `m` being still marked in the poller, leave the poller a
    /// pending wake that turns the next blocking poll (this M's or the next watcher's) into one
    /// that returns at once with nothing (loom model (g) in `watcher.rs`).
    pub(crate) fn serve_itself(&self, m: &IdleM<P, G>) {
        let mut l = self.lock();
        self.serve(&mut l, m);
    }

    /// Under the lock: gives the listed, not yet hungry `m` an idle P (true: wake it), or marks
    /// it hungry.
    fn serve(&self, l: &mut Lists<P, G>, m: &IdleM<P, G>) -> bool {
        if !l.listed(m) || l.hungry.iter().any(|h| Arc::ptr_eq(h, m)) {
            return false;
        }
        match self.pop_p(l) {
            Some(p) => {
                self.unlist(l, m);
                m.deposit(p, false);
                true
            }
            None => {
                l.hungry.push(Arc::clone(m));
                self.nhungry.store(l.hungry.len(), Ordering::Relaxed);
                false
            }
        }
    }

    /// A busy M holding `p` yields it to a hungry M (returned: wake it), so Ms whose homed
    /// goroutines wait for a P take turns even when every P is always busy. `Err(p)` if no M
    /// is hungry.
    pub(crate) fn hand_to_hungry(&self, p: P) -> Result<IdleM<P, G>, P> {
        let mut l = self.lock();
        if l.hungry.is_empty() {
            return Err(p);
        }
        Ok(self.put_p(&mut l, p).expect("a hungry M takes the P"))
    }

    /// An M with nothing to run gives up `p` (the first half of Go's `stopm` path in
    /// `findRunnable`). Returns `Some(p)` if work appeared and the M should keep its P (its
    /// spinning state unchanged); `None` if the P is now idle (or a hungry M's) and the M, no
    /// longer spinning, must `stop_m`. The fence pairs with `wake_for` (module docs).
    pub(crate) fn release_p(&self, p: P, was_spinning: bool, world: &impl World) -> Option<P> {
        let fed = {
            let mut l = self.lock();
            if !world.global_empty() {
                return Some(p);
            }
            self.put_p(&mut l, p)
        };
        if let Some(m) = fed {
            m.wake();
        }
        if was_spinning {
            self.nmspinning.fetch_sub(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if world.global_empty() && !(was_spinning && world.any_local_work()) {
            return None;
        }
        let mut l = self.lock();
        let p = self.pop_p(&mut l)?;
        drop(l);
        if was_spinning {
            self.nmspinning.fetch_add(1, Ordering::SeqCst);
        }
        Some(p)
    }

    /// Lists `m` as idle (it holds no P, its slot is empty). True if it must watch timers and
    /// I/O (it is the watcher now); false if it sleeps until handed a P. Runs the deadlock
    /// check when it is the last M to go idle with nothing pending. If `m` has goroutines of
    /// its own waiting (`own_work`, or ones others readied for it meanwhile), it is served at
    /// once: handed an idle P in its own slot, or marked hungry.
    pub(crate) fn stop_m(&self, m: &IdleM<P, G>, own_work: bool, world: &impl World) -> bool {
        let mut l = self.lock();
        if CHECKS {
            assert!(!l.listed(m), "M{} listed twice", m.id);
        }
        l.machines.push(Arc::clone(m));
        // Pairs with `push_remote`'s fence (handoff.rs): a goroutine readied for `m` from now
        // on finds it idle, and one readied before shows in `has_remote` below.
        m.set_idle(true);
        fence(Ordering::SeqCst);
        if own_work || m.has_remote() {
            self.serve(&mut l, m);
        }
        let timers = world.timers_pending();
        let io = world.io_waiters();
        Self::deadlock_check(&l, timers, io, world);
        let watch = (timers || io) && l.watcher.is_none() && l.listed(m);
        if watch {
            l.watcher = Some(Arc::clone(m));
        } else if let Some(w) = &l.watcher {
            // The watcher may sleep on its condvar (nothing waited for I/O when it went to
            // sleep, or it left I/O to the busy Ps: `watcher.rs`); a goroutine that just parked
            // here may wait for I/O now, and nobody would poll for it. Make it block in the
            // poller (if it is there now, at its next look too: loom model (d) in watcher.rs).
            if io {
                w.poke_to_poll();
            }
        }
        self.check(&l, timers);
        watch
    }

    /// The watcher `m` woke because the earliest timer is due (or a poke said to look again
    /// and a timer is due). If a P was handed to it meanwhile it takes that; else it leaves
    /// the watch and takes an idle P to fire the timers, or, if none is idle (or no timer is
    /// pending any more), stays listed and sleeps until handed a P: busy Ps fire due timers as
    /// they schedule, and the first to go idle becomes the watcher.
    pub(crate) fn watcher_woke(&self, m: &IdleM<P, G>, world: &impl World) -> Woken<P> {
        let mut l = self.lock();
        if m.is_handed() {
            return Woken::Handed;
        }
        if CHECKS {
            assert!(l.listed(m), "watcher M{} neither listed nor handed", m.id);
        }
        if l.watcher.as_ref().is_some_and(|w| Arc::ptr_eq(w, m)) {
            l.watcher = None;
        }
        let timers = world.timers_pending();
        if timers {
            if let Some(p) = self.pop_p(&mut l) {
                self.unlist(&mut l, m);
                return Woken::TookP(p);
            }
        }
        self.check(&l, timers);
        Woken::Listed
    }

    /// The watcher `m`'s blocking poll readied goroutines onto the global queue: it takes an
    /// idle P to run them itself (Go's M returning from netpoll), leaving the watch. If no P is
    /// idle it stays the watcher (the busy Ps find the goroutines in the global queue).
    pub(crate) fn take_p_for_io(&self, m: &IdleM<P, G>) -> Woken<P> {
        let mut l = self.lock();
        if m.is_handed() {
            return Woken::Handed;
        }
        let Some(p) = self.pop_p(&mut l) else {
            return Woken::Listed;
        };
        self.unlist(&mut l, m);
        Woken::TookP(p)
    }

    /// The watcher `m`'s poll readied goroutines for other Ms only: `m` leaves the watch to the
    /// next M to go idle (`stop_m` makes it the watcher), which is likely one whose goroutines
    /// wait for I/O, so that its poll readies them on their own thread; `m` stays listed, a
    /// plain idle M. Only while some M is not listed: that M goes idle through `stop_m` later
    /// and takes the watch, and until then it polls as it runs out of work, so invariant 5
    /// holds; and `m` takes the watch back (`rewatch`) if nobody took it within
    /// `IO_LEFT_TO_PS` (`watcher.rs`), as the watcher looks again when it leaves I/O to busy
    /// Ps. True if `m` left the watch; false (it watches on) if every M is listed, or `m` was
    /// handed a P or has goroutines of its own waiting (a hungry watcher).
    pub(crate) fn resign_watch(&self, m: &IdleM<P, G>) -> bool {
        let mut l = self.lock();
        if m.is_handed() || m.has_remote() || l.machines.len() == l.nm {
            return false;
        }
        if !l.watcher.as_ref().is_some_and(|w| Arc::ptr_eq(w, m)) {
            return false;
        }
        l.watcher = None;
        true
    }

    /// `m` left the watch (`resign_watch`) and looks again a while later: if no M took the
    /// watch since (the Ms it left it to may compute for long without going idle) and timers
    /// or I/O need one, `m` watches again. True if it does.
    pub(crate) fn rewatch(&self, m: &IdleM<P, G>, world: &impl World) -> bool {
        let mut l = self.lock();
        if m.is_handed() || l.watcher.is_some() || !l.listed(m) {
            return false;
        }
        if !world.timers_pending() && !world.io_waiters() {
            return false;
        }
        l.watcher = Some(Arc::clone(m));
        true
    }

    /// Sysmon stopped `m` (a signal preemption, `preempt.rs`) and took its P `p`: `m` is
    /// listed as hungry, to get the next free P (an idle one at once), and `p` goes to another
    /// M (woken here), or a new one (returned). With `queued` (goroutines wait in a run queue,
    /// to be started), an idle M that is not hungry takes it, so that they run before the
    /// stopped goroutines resume (Go puts a preempted goroutine at the global queue's tail);
    /// else the M hungry longest.
    pub(crate) fn stop_preempted(&self, m: &IdleM<P, G>, p: P, queued: bool) -> Started<P> {
        let mut l = self.lock();
        if CHECKS {
            assert!(!l.listed(m), "stopped M{} already listed", m.id);
        }
        l.machines.push(Arc::clone(m));
        m.set_idle(true);
        // An idle P goes to `m` at once (it waits in its handler already: wake it below).
        let served = self.serve(&mut l, m);
        let not_hungry = |x: &&IdleM<P, G>| !l.hungry.iter().any(|h| Arc::ptr_eq(h, x));
        let fresh = l.machines.iter().rev().find(not_hungry);
        let hungry = l.hungry.iter().find(|x| !Arc::ptr_eq(x, m));
        let to = if queued {
            fresh.or(hungry)
        } else {
            hungry.or(fresh)
        };
        let Some(to) = to.filter(|x| !Arc::ptr_eq(x, m)).cloned() else {
            let id = l.nm;
            l.nm += 1;
            drop(l);
            if served {
                m.wake();
            }
            return Started::NewM {
                id,
                p,
                spinning: false,
            };
        };
        self.unlist(&mut l, &to);
        to.deposit(p, false);
        self.moves.fetch_add(1, Ordering::Relaxed);
        drop(l);
        to.wake();
        if served {
            m.wake();
        }
        Started::Woke
    }

    /// A count of P hand-offs (module docs of `scheduler/retake.rs`).
    pub(crate) fn moves(&self) -> u64 {
        self.moves.load(Ordering::Relaxed) as u64
    }

    /// `m`, running without a P, wants one: listed as hungry (the next free P is its), or
    /// handed an idle P at once (true: wake it, or let it find the P when it waits).
    pub(crate) fn list_hungry(&self, m: &IdleM<P, G>) -> bool {
        let mut l = self.lock();
        if CHECKS {
            assert!(!l.listed(m), "M{} without a P already listed", m.id);
        }
        l.machines.push(Arc::clone(m));
        m.set_idle(true);
        self.serve(&mut l, m)
    }

    /// Sysmon resumes the stopped `m` without a P (none came back in time: `preempt.rs`). False
    /// if `m` was handed one meanwhile (it runs with that), or is no longer in its stop wait:
    /// handed a P, it may have run and gone idle since, listed again as an ordinary idle M,
    /// which a resume would strand (unlisted, asleep in `Handoff::wait`, deaf to the flag). An
    /// M clears its stop-wait flag before it can list itself so (`stop_m`, under this lock),
    /// and sets it before it waits stopped. The loom model `stop_vs_resume` checks this.
    pub(crate) fn resume_without_p(&self, m: &IdleM<P, G>) -> bool {
        let mut l = self.lock();
        if !l.listed(m) || !m.monitor.in_stop_wait() {
            return false;
        }
        self.unlist(&mut l, m);
        m.resume();
        true
    }

    /// A P sysmon took from an M blocked in a call gort does not know about (`preempt.rs`):
    /// to a hungry M (returned: wake it), or onto the idle list.
    pub(crate) fn put_released(&self, p: P) -> Option<IdleM<P, G>> {
        let mut l = self.lock();
        self.put_p(&mut l, p)
    }

    /// Ms ever started, and those idle now.
    pub(crate) fn thread_counts(&self) -> (usize, usize) {
        let l = self.lock();
        (l.nm, l.machines.len())
    }

    /// Counts a new M that starts without a P (it lists itself idle as it starts).
    pub(crate) fn new_m_id(&self) -> usize {
        let mut l = self.lock();
        l.nm += 1;
        l.nm - 1
    }

    /// True if an M is listed idle and not hungry (one could take a P at once).
    pub(crate) fn has_spare_m(&self) -> bool {
        let l = self.lock();
        l.machines.len() > l.hungry.len()
    }

    /// The watcher, if an M watches timers and I/O.
    pub(crate) fn watcher(&self) -> Option<IdleM<P, G>> {
        self.lock().watcher.clone()
    }

    /// The deadlock check, run by a plain thread that has just parked untimed: the last M may
    /// have gone idle just before, when that thread did not count yet. Both checks run under
    /// the idle lock, so one of them sees the final state.
    pub(crate) fn check_deadlock(&self, world: &impl World) {
        let l = self.lock();
        Self::deadlock_check(&l, world.timers_pending(), world.io_waiters(), world);
    }

    /// The deadlock precondition, in one place: every M idle, nothing queued globally, no timer
    /// pending, nobody waiting for I/O. Then `World::all_asleep` decides with the threads it
    /// can see (`deadlock.rs`). Called with the idle lock held.
    fn deadlock_check(l: &Lists<P, G>, timers: bool, io: bool, world: &impl World) {
        if l.nm > 0 && l.machines.len() == l.nm && !timers && !io && world.global_empty() {
            world.all_asleep(l.nm);
        }
    }

    /// Takes `m` off the idle lists (idle, hungry, the watch).
    fn unlist(&self, l: &mut Lists<P, G>, m: &IdleM<P, G>) {
        let i = l.machines.iter().position(|x| Arc::ptr_eq(x, m));
        let i = i.expect("only a listed M is unlisted");
        l.machines.swap_remove(i);
        if let Some(i) = l.hungry.iter().position(|x| Arc::ptr_eq(x, m)) {
            l.hungry.remove(i);
            self.nhungry.store(l.hungry.len(), Ordering::Relaxed);
        }
        if l.watcher.as_ref().is_some_and(|w| Arc::ptr_eq(w, m)) {
            l.watcher = None;
        }
    }

    /// Asserts the module's invariants (`CHECKS`). `timers` is the snapshot the caller decided
    /// on.
    fn check(&self, l: &Lists<P, G>, timers: bool) {
        if !CHECKS {
            return;
        }
        assert_eq!(self.npidle.load(Ordering::SeqCst), l.procs.len(), "npidle");
        assert!(l.machines.len() <= l.nm, "more idle Ms than Ms");
        for (i, m) in l.machines.iter().enumerate() {
            assert!(
                !l.machines[..i].iter().any(|x| Arc::ptr_eq(x, m)),
                "M{} listed twice",
                m.id
            );
            assert!(!m.is_handed(), "listed M{} has a P waiting", m.id);
        }
        for h in &l.hungry {
            assert!(l.listed(h), "hungry M{} not listed", h.id);
        }
        assert!(
            l.hungry.is_empty() || l.procs.is_empty(),
            "an M is hungry while a P is idle"
        );
        if let Some(w) = &l.watcher {
            assert!(l.listed(w), "watcher M{} not listed", w.id);
        }
        assert!(
            !(timers && l.machines.len() == l.nm && l.watcher.is_none()),
            "timers pending, every M idle, and no M watches them"
        );
    }
}

impl<P, G> Lists<P, G> {
    fn listed(&self, m: &IdleM<P, G>) -> bool {
        self.machines.iter().any(|x| Arc::ptr_eq(x, m))
    }
}

/// loom models of sysmon's hand-offs (`retake.rs`): a stopped M, its resumption, a detached M.
#[cfg(all(test, loom))]
#[path = "retake_loom_models.rs"]
mod retake_loom_models;

/// loom models of the idle protocol, on this module's own code. Every M and every other
/// thread is a spawned thread; the model's own thread only sets up, joins and checks
/// (tokio-rs/loom#392: see HACKING.md).
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::thread;

    /// A stand-in for the rest of the runtime: a global queue that is a count.
    pub(super) struct Queues {
        global: AtomicUsize,
        local: AtomicUsize,
        timers: bool,
    }

    impl World for Queues {
        fn global_empty(&self) -> bool {
            self.global.load(Ordering::SeqCst) == 0
        }
        fn any_local_work(&self) -> bool {
            self.local.load(Ordering::SeqCst) != 0
        }
        fn timers_pending(&self) -> bool {
            self.timers
        }
        fn io_waiters(&self) -> bool {
            false
        }
        fn all_asleep(&self, _nm: usize) {}
    }

    pub(super) fn queues(timers: bool) -> Queues {
        Queues {
            global: AtomicUsize::new(0),
            local: AtomicUsize::new(0),
            timers,
        }
    }

    /// Issue 16: the watcher's deadline passes while another thread's `wakep` hands it the
    /// only P. Whatever the interleaving, the watcher ends up running with exactly one P, is
    /// listed exactly once when it goes idle again, and the P is idle again at the end. With
    /// the old `start_m` (deposit after dropping the idle lock), the watcher finds itself
    /// neither listed nor handed and the model fails.
    #[test]
    fn watcher_deadline_vs_start_m() {
        loom::model(|| {
            let idle = Arc::new(IdleSet::<u32, u32>::new(vec![0u32]));
            let world = Arc::new(queues(true));
            let w: IdleM<u32, u32> = Arc::new(Handoff::new(0));
            {
                // M0 registers as an M and goes idle: it becomes the watcher.
                idle.lock().nm = 1;
                assert!(idle.stop_m(&w, false, &*world));
            }
            let submitter = {
                let idle = idle.clone();
                // `Some(p)`: no M was idle, and a new M would start with P `p`.
                thread::spawn(move || match idle.wakep() {
                    Started::NewM { p, .. } => Some(p),
                    Started::Woke | Started::NoIdleP => None,
                })
            };
            let m0 = {
                let (idle, world, w) = (idle.clone(), world.clone(), w.clone());
                thread::spawn(move || {
                    let (p, spinning) = match idle.watcher_woke(&w, &*world) {
                        Woken::Handed | Woken::Listed => w.wait(),
                        Woken::TookP(p) => (p, false),
                    };
                    assert_eq!(p, 0);
                    // It runs, finds nothing, and goes idle again.
                    assert!(idle.release_p(p, spinning, &*world).is_none());
                    idle.stop_m(&w, false, &*world);
                })
            };
            m0.join().unwrap();
            let new_m = submitter.join().unwrap();
            // The P is in exactly one place (idle, in M0's slot, or with a new M), M0 is listed
            // unless handed it, and only a handed P counts as spinning.
            let l = idle.lock();
            let handed = w.take();
            let places = [l.procs.len() == 1, handed.is_some(), new_m.is_some()];
            assert_eq!(places.iter().filter(|&&b| b).count(), 1, "P in {places:?}");
            assert_eq!(l.machines.len(), usize::from(handed.is_none()));
            let spinning = handed.is_some() || new_m.is_some();
            assert_eq!(idle.nmspinning(), usize::from(spinning));
        });
    }

    /// A goroutine made ready from a plain thread (global queue) while the last spinning M
    /// gives up: the work is never left queued with every P idle and no M woken. Removing
    /// either fence (in `wake_for` or `release_p`) or the re-check in `release_p` makes this
    /// fail.
    #[test]
    fn submitter_vs_last_spinner() {
        loom::model(|| {
            let idle = Arc::new(IdleSet::<u32, u32>::new(Vec::new()));
            let world = Arc::new(queues(false));
            // M0 holds P0 and spins; M1 is idle.
            let m1: IdleM<u32, u32> = Arc::new(Handoff::new(1));
            idle.lock().nm = 2;
            idle.stop_m(&m1, false, &*world);
            idle.start_spinning();
            let submitter = {
                let (idle, world) = (idle.clone(), world.clone());
                thread::spawn(move || {
                    world.global.fetch_add(1, Ordering::SeqCst);
                    match idle.wake_for() {
                        Started::Woke | Started::NoIdleP => {}
                        Started::NewM { .. } => unreachable!("M1 is idle"),
                    }
                })
            };
            let m0 = {
                let (idle, world) = (idle.clone(), world.clone());
                thread::spawn(move || {
                    // M0 looked everywhere before the push, found nothing, gives up P0.
                    let kept = idle.release_p(0u32, true, &*world);
                    let m0_runs = kept.is_some();
                    if m0_runs {
                        // It takes the goroutine itself.
                        world.global.fetch_sub(1, Ordering::SeqCst);
                    }
                    m0_runs
                })
            };
            let m0_runs = m0.join().unwrap();
            submitter.join().unwrap();
            let queued = !world.global_empty();
            let someone_will_run = m0_runs || m1.is_handed();
            assert!(
                !queued || someone_will_run,
                "a goroutine is queued, every P idle, every M asleep"
            );
        });
    }

    /// A goroutine homed to M0 is readied from another thread while M0, finding nothing, gives
    /// up its P and goes idle: the goroutine is never left in M0's remote queue with M0 asleep
    /// and no P coming. Removing the fence in `push_remote` or in `stop_m` makes this fail.
    #[test]
    fn ready_vs_home_going_idle() {
        loom::model(|| {
            let idle = Arc::new(IdleSet::<u32, u32>::new(Vec::new()));
            let world = Arc::new(queues(false));
            let home: IdleM<u32, u32> = Arc::new(Handoff::new(0));
            idle.lock().nm = 1;
            let waker = {
                let (idle, home) = (idle.clone(), home.clone());
                thread::spawn(move || {
                    if home.push_remote(7, false) {
                        idle.wake_home(&home);
                    }
                })
            };
            let m0 = {
                let (idle, world, home) = (idle.clone(), world.clone(), home.clone());
                thread::spawn(move || {
                    // M0 looked at its queues before the push, found nothing, and gives up P0.
                    assert!(idle.release_p(0u32, false, &*world).is_none());
                    idle.stop_m(&home, false, &*world);
                })
            };
            m0.join().unwrap();
            waker.join().unwrap();
            // The goroutine is in M0's remote queue; M0 must be handed a P to run it.
            assert!(home.has_remote());
            assert!(
                home.is_handed(),
                "a goroutine waits for M0, which sleeps with no P coming"
            );
        });
    }

    /// With no idle P, a readied goroutine's home M becomes hungry, and the next P to come free
    /// goes to it, not to the idle list.
    #[test]
    fn hungry_m_gets_the_next_free_p() {
        loom::model(|| {
            let idle = Arc::new(IdleSet::<u32, u32>::new(Vec::new()));
            let world = Arc::new(queues(false));
            let home: IdleM<u32, u32> = Arc::new(Handoff::new(0));
            idle.lock().nm = 2;
            // M0 is idle with no P; M1 holds the only P.
            idle.stop_m(&home, false, &*world);
            let waker = {
                let (idle, home) = (idle.clone(), home.clone());
                thread::spawn(move || {
                    if home.push_remote(7, false) {
                        idle.wake_home(&home);
                    }
                })
            };
            let m1 = {
                let (idle, world) = (idle.clone(), world.clone());
                thread::spawn(move || {
                    // M1 runs out of work and gives P1 back.
                    assert!(idle.release_p(1u32, false, &*world).is_none());
                })
            };
            m1.join().unwrap();
            waker.join().unwrap();
            let l = idle.lock();
            assert!(
                home.is_handed(),
                "the P went to the idle list, M0 still waits"
            );
            assert!(l.procs.is_empty() && l.hungry.is_empty());
        });
    }
}
