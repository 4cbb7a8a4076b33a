//! loom models of the mutex's mode switch (`mutex.rs`, module docs, "Loom"), a child module
//! of `mutex.rs` kept in its own file. A lost wake-up or a stranded waiter leaves a thread
//! parked for good, which loom reports as a deadlock.
//!
//! Every actor, H too, is a spawned thread; the model's own thread only sets up, joins and
//! checks (tokio-rs/loom#392: see HACKING.md). H's first hold begins in the setup, before
//! the waiters are spawned: the model's thread locks the mutex and forgets the guard, and H's
//! thread ends that hold with `raw.unlock()` (what dropping the guard does). A thread that
//! must start only once H has got somewhere waits for a flag H sets ([`wait_for`]).

use super::super::loom_cancel::Cancel;
use super::*;
use crate::loom::AtomicBool;
use loom::thread;
use std::sync::{Arc, OnceLock};

/// `loom::model` with at most `preemptions` preemptions per execution (unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise). A lock or unlock that waits is a few dozen loom
/// operations, and the unbounded space of these models takes longer than CI can wait (the
/// first one ran for over 15 minutes). The bounds below keep each model to seconds and
/// reach every failure listed in the commit that added them; the second model needed 3 for
/// starvation mode to engage at all while H ran on the model's thread. With H on a spawned
/// thread, the second and fourth engage it within 2, and at 3 they ran for 96 s and 23 s
/// (instead of 6.6 s and 1.2 s): they are bounded to 2.
fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    crate::loom::model_bounded(preemptions, f);
}

/// The mutex of the models: its data is who held it, in order.
type Log = Mutex<Vec<char>>;

/// `who` has just taken `m` (`g`): the state word is that of a held mutex, and a starving
/// mutex has waiters (`unlock` relies on it). Logs `who`; returns the state.
fn took(m: &Log, g: &mut MutexGuard<'_, Vec<char>>, who: char) -> u32 {
    let s = m.raw.state.load(Ordering::Relaxed);
    assert!(
        s & LOCKED != 0,
        "{who} holds a mutex not marked LOCKED: {s:#b}"
    );
    assert!(
        s & STARVING == 0 || s >> WAITER_SHIFT != 0,
        "starving with no waiter: {s:#b}, {g:?}"
    );
    g.push(who);
    s
}

fn starving(m: &Log) -> bool {
    m.raw.state.load(Ordering::Relaxed) & STARVING != 0
}

/// H takes `m` in the model's setup, logged: H's thread ends that hold with `m.raw.unlock()`.
fn h_holds_from_the_start(m: &Log) {
    let mut g = m.lock();
    took(m, &mut g, 'H');
    std::mem::forget(g);
}

/// Waits (parked, not spinning: a spin multiplies the interleavings) until `flag` is set by
/// [`set_and_wake`]. A loom unpark left over is harmless to the waiter's later waits in the
/// mutex: the shim's `park` loops until its own token comes.
fn wait_for(flag: &AtomicBool) {
    while !flag.load(Ordering::SeqCst) {
        thread::park();
    }
}

/// Sets `flag` and wakes `waiter`, which waits for it in [`wait_for`].
fn set_and_wake(flag: &AtomicBool, waiter: &thread::Thread) {
    flag.store(true, Ordering::SeqCst);
    waiter.unpark();
}

/// H holds the mutex while W queues for it, keeps it past the threshold, then unlocks and
/// takes it twice more at once, barging in as a running goroutine does; W waits long, so
/// the first time it is woken and loses, it turns the mutex starving. Checks:
/// - when H unlocks a starving mutex with W queued, W gets it next (the hand-off): H's
///   next lock comes after W's (before W has queued, H may get it first: module docs);
/// - the mutex ends free, in normal mode, with nobody queued (W, the last waiter, took it
///   out of starvation mode), and a starving mutex always had a waiter;
/// - nobody parks for good (loom: no deadlock);
/// - starvation mode engages in some interleaving (so the first check is not vacuous).
fn starving_waiter_gets_it_next(spin: bool) {
    static ENGAGED: OnceLock<()> = OnceLock::new();
    model(4, move || {
        env::set_spin(spin);
        let m = Arc::new(Mutex::new(Vec::new()));
        h_holds_from_the_start(&m);
        let w = {
            let m = m.clone();
            thread::spawn(move || {
                let mut g = m.lock();
                took(&m, &mut g, 'W');
            })
        };
        let h = {
            let m = m.clone();
            thread::spawn(move || {
                // H keeps the mutex past the threshold each time it holds it.
                let hold = |unlock: &mut dyn FnMut()| {
                    env::advance(2 * STARVATION_THRESHOLD);
                    let handoff = starving(&m) && m.queue_len() == 1;
                    unlock();
                    handoff
                };
                let mut handoff = hold(&mut || m.raw.unlock());
                for _ in 0..2 {
                    let mut g = m.lock();
                    let s = took(&m, &mut g, 'H');
                    if handoff {
                        assert!(g.contains(&'W'), "H took a starving mutex before W: {g:?}");
                    }
                    if handoff || s & STARVING != 0 {
                        let _ = ENGAGED.set(());
                    }
                    let mut g = Some(g);
                    handoff = hold(&mut || drop(g.take()));
                }
            })
        };
        h.join().unwrap();
        w.join().unwrap();
        assert_eq!(
            m.raw.state.load(Ordering::Relaxed),
            0,
            "left held, starving or waited on"
        );
        assert_eq!(m.queue_len(), 0, "a waiter stranded in the queue");
    });
    assert!(ENGAGED.get().is_some(), "starvation mode never engaged");
}

/// W1 queues behind H, which keeps the mutex past the threshold (W1's wait is long); then
/// W2 comes, and H unlocks and locks once more. H or W2 may barge in ahead of the woken
/// W1, which then turns the mutex starving and is handed it, keeping starvation mode while
/// W2 waits; W1 locks a second time. Every wait but W1's first is short, so once W1 has
/// had the mutex nobody starves: whoever takes it next by hand-off, the last waiter or not
/// (W2, with W1 queued again behind it), returns it to normal mode. Checks: nobody holds a
/// starving mutex once W1 has had it; the mutex ends free, in normal mode, with nobody
/// queued; nobody parks for good; starvation mode engages in some interleaving.
#[test]
fn loom_short_wait_returns_it_to_normal() {
    static ENGAGED: OnceLock<()> = OnceLock::new();
    model(2, || {
        let m = Arc::new(Mutex::new(Vec::new()));
        let w1_had_it = Arc::new(AtomicBool::new(false));
        // Set by H once its wait is past the threshold: W2 comes only then.
        let advanced = Arc::new(AtomicBool::new(false));
        h_holds_from_the_start(&m);
        let spawn = |who: char, times: usize| {
            let (m, had, advanced) = (m.clone(), w1_had_it.clone(), advanced.clone());
            thread::spawn(move || {
                if who == '2' {
                    wait_for(&advanced);
                }
                for _ in 0..times {
                    let mut g = m.lock();
                    let s = took(&m, &mut g, who);
                    // W1 has had the mutex (its only long wait is over).
                    let w1_done = had.load(Ordering::SeqCst);
                    if s & STARVING != 0 {
                        let _ = ENGAGED.set(());
                        assert!(!w1_done, "{who} holds a starving mutex after W1: {g:?}");
                    }
                    if who == '1' {
                        had.store(true, Ordering::SeqCst);
                    }
                }
            })
        };
        let w1 = spawn('1', 2);
        let w2 = spawn('2', 1);
        let h = {
            let (m, w1_had_it) = (m.clone(), w1_had_it.clone());
            let w2_thread = w2.thread().clone();
            thread::spawn(move || {
                env::advance(2 * STARVATION_THRESHOLD);
                set_and_wake(&advanced, &w2_thread);
                m.raw.unlock();
                // H barges in once more (W1, woken, may lose to it and turn the mutex
                // starving).
                let mut g = m.lock();
                let s = took(&m, &mut g, 'H');
                if s & STARVING != 0 {
                    let _ = ENGAGED.set(());
                    assert!(
                        !w1_had_it.load(Ordering::SeqCst),
                        "H holds a starving mutex after W1"
                    );
                }
            })
        };
        h.join().unwrap();
        w1.join().unwrap();
        w2.join().unwrap();
        assert_eq!(
            m.raw.state.load(Ordering::Relaxed),
            0,
            "left held or starving"
        );
        assert_eq!(m.queue_len(), 0, "a waiter stranded in the queue");
    });
    assert!(ENGAGED.get().is_some(), "starvation mode never engaged");
}

/// Locks `m` as W, a waiter that `cancel` can stop (`loom_cancel.rs`, the shape of a
/// context's cancellation); logs `who` if it got it.
fn lock(cancel: &Cancel, m: &Log, who: char) {
    if let Some(mut g) = m.lock_until(None, &cancel.arm()) {
        took(m, &mut g, who);
    }
}

/// Checks a model's end: the mutex free and normal, nobody counted or queued, and no
/// wake-up left stored in `sema` for a later waiter to take by mistake.
fn assert_clean(m: &Log) {
    assert_eq!(
        m.raw.state.load(Ordering::Relaxed),
        0,
        "left held, starving or counted"
    );
    assert_eq!(m.queue_len(), 0, "a waiter stranded in the queue");
    assert_eq!(m.raw.sema.stored(), 0, "a wake-up left stored");
}

/// W gives up while H unlocks, which may wake W or leave a wake-up on its way to it.
/// Whichever wins, nobody parks for good and the mutex ends clean.
#[test]
fn loom_give_up_vs_unlock() {
    model(3, || {
        let m = Arc::new(Mutex::new(Vec::new()));
        let cancel = Cancel::new();
        h_holds_from_the_start(&m);
        let w = {
            let (m, cancel) = (m.clone(), cancel.clone());
            thread::spawn(move || lock(&cancel, &m, 'W'))
        };
        let c = {
            let cancel = cancel.clone();
            thread::spawn(move || cancel.cancel())
        };
        let h = {
            let m = m.clone();
            thread::spawn(move || m.raw.unlock())
        };
        h.join().unwrap();
        w.join().unwrap();
        c.join().unwrap();
        assert_clean(&m);
    });
}

/// W waits long, is woken, loses to H barging in and turns the mutex starving; then it is
/// cancelled while H holds the mutex, and H's unlock hands the mutex to W, the only
/// waiter, as W gives up. W must take that hand-off and pass it on (module docs, "Giving
/// up"), or the mutex is left starving with a hand-off stored for nobody.
#[test]
fn loom_give_up_as_the_mutex_is_handed_over() {
    static ENGAGED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    model(2, || {
        let m = Arc::new(Mutex::new(Vec::new()));
        let cancel = Cancel::new();
        // Set by H once it holds the mutex again: W is cancelled only then.
        let h_again = Arc::new(AtomicBool::new(false));
        h_holds_from_the_start(&m);
        let w = {
            let (m, cancel) = (m.clone(), cancel.clone());
            thread::spawn(move || lock(&cancel, &m, 'W'))
        };
        let c = {
            let (m, cancel, h_again) = (m.clone(), cancel.clone(), h_again.clone());
            thread::spawn(move || {
                wait_for(&h_again);
                if starving(&m) {
                    let _ = ENGAGED.set(());
                }
                cancel.cancel()
            })
        };
        let h = {
            let m = m.clone();
            let c_thread = c.thread().clone();
            thread::spawn(move || {
                env::advance(2 * STARVATION_THRESHOLD);
                m.raw.unlock();
                let mut g = m.lock();
                took(&m, &mut g, 'H');
                set_and_wake(&h_again, &c_thread);
            })
        };
        h.join().unwrap();
        w.join().unwrap();
        c.join().unwrap();
        assert_clean(&m);
    });
    assert!(ENGAGED.get().is_some(), "starvation mode never engaged");
}

/// As `loom_give_up_vs_unlock`, with a second waiter W2 and H keeping the mutex past the
/// starvation threshold, then barging in once more before it cancels W: W may give up as
/// a normal wake-up or a starvation hand-off comes its way, or after W2 has turned the
/// mutex starving. W2 always gets the mutex (else it parks for good: a loom deadlock), and
/// the mutex ends clean.
#[test]
fn loom_give_up_beside_a_waiter() {
    model(2, || {
        let m = Arc::new(Mutex::new(Vec::new()));
        let cancel = Cancel::new();
        h_holds_from_the_start(&m);
        let spawn = |f: fn(&Log, &Cancel)| {
            let (m, cancel) = (m.clone(), cancel.clone());
            thread::spawn(move || f(&m, &cancel))
        };
        let w = spawn(|m, cancel| lock(cancel, m, 'W'));
        let w2 = spawn(|m, _| {
            let mut g = m.lock();
            took(m, &mut g, '2');
        });
        let h = spawn(|m, cancel| {
            env::advance(2 * STARVATION_THRESHOLD);
            m.raw.unlock();
            let mut g = m.lock();
            took(m, &mut g, 'H');
            drop(g);
            cancel.cancel();
        });
        h.join().unwrap();
        w.join().unwrap();
        w2.join().unwrap();
        assert_clean(&m);
    });
}

#[test]
fn loom_starving_waiter_gets_it_next() {
    starving_waiter_gets_it_next(false);
}

#[test]
fn loom_starving_waiter_gets_it_next_spinning() {
    starving_waiter_gets_it_next(true);
}
