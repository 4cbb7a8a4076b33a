//! loom models of sysmon's hand-offs through the idle set (`retake.rs`, issue 12), on
//! `idle.rs`'s and `handoff.rs`'s own code, with a P that is a number as in `idle.rs`'s models:
//! a stopped M listed hungry while another M releases a P (`stop_preempted` vs `release_p`),
//! sysmon ending a stop while a P is handed to the stopped M (`resume_without_p` vs `put_p`),
//! and an M that lost its P to `DETACH` asking for one back while the only P is released
//! (`list_hungry` vs `release_p`).
//!
//! Every M and sysmon is a spawned thread; the model's own thread only sets up, joins and
//! checks (tokio-rs/loom#392: see HACKING.md). The stopped M waits in its signal handler in
//! `Handoff::wait_stopped`, as in `retake::wait_while_stopped`. A lost wake-up leaves it there for good, which loom reports as
//! a deadlock. Ms that legitimately sleep at the end (an idle M with nothing to do) do not
//! wait: the model looks in their slots after joining them, as `watcher_deadline_vs_start_m`
//! does.
//!
//! A child of `idle.rs` (declared there, not in `scheduler/mod.rs`) so that it can read the
//! idle lists and run `IdleSet::check` on the final state; kept out of `idle.rs`, which is
//! already mostly argument and models.

use super::loom_models::queues;
use super::*;
// Cross-run counters, outside the model: std's, through the shim.
use crate::loom::std_only::AtomicUsize;
use crate::loom::Model;
use loom::thread;

type Idle = Arc<IdleSet<u32, u32>>;

/// The stopped M's handler (`retake::wait_while_stopped`, less its bookkeeping of a P handed as
/// spinning): waits in its slot until handed a P or resumed, marked as in its stop wait
/// meanwhile (sysmon resumes only such an M).
fn wait_while_stopped(m: &IdleM<u32, u32>) -> Option<(u32, bool)> {
    m.monitor.set_stop_wait(true);
    let handed = m.wait_stopped();
    m.monitor.set_stop_wait(false);
    m.set_idle(false);
    handed
}

/// An idle set with no idle P, and its two Ms, M0 and M1 (neither listed yet).
fn setup() -> (Idle, IdleM<u32, u32>, IdleM<u32, u32>) {
    let idle = Arc::new(IdleSet::new(Vec::new()));
    idle.lock().nm = 2;
    (idle, Arc::new(Handoff::new(0)), Arc::new(Handoff::new(1)))
}

/// (a) Sysmon stops M0 and gives away its P0 (`stop_preempted`) while another M releases a P
/// (`release_p`, nothing queued). With `m1_idle`, there is one P: M1 is idle, is handed P0 by
/// the stop, wakes, finds nothing and gives P0 back, which must go to the hungry M0. Without,
/// M1 holds a second P, P1, and gives it up as the stop happens: if the release comes first,
/// P1 is idle when M0 is listed and goes to M0 at once (`serve`, and M0 must be woken: it
/// waits in its handler already); if the stop comes first, M0 is hungry and `put_p` gives it
/// P1. Either way M0 gets a P back, each P is in exactly one place at the end (with M0, in
/// M1's slot, with a new M), and no M is left hungry beside an idle P.
///
/// Without the `m.wake()` of the served case in `stop_preempted`, or without its `to.wake()`,
/// M0 or M1 sleeps for good and loom reports a deadlock; with `put_p` not serving hungry Ms
/// first, M0 sleeps beside an idle P (a deadlock too).
#[test]
fn stop_vs_release() {
    for m1_idle in [true, false] {
        // Every failure named above shows within 2 preemptions. With M0 on a spawned thread,
        // the two variants take 3 s at 3, 25 s at 4 and over four minutes at 5 (at 5 with M0
        // on the model's thread, which loom under-explored, about 5 s).
        crate::loom::model_bounded(4, move || {
            let (idle, m0, m1) = setup();
            let world = Arc::new(queues(false));
            if m1_idle {
                // M1 started with P0 earlier, found nothing, gave it up and went idle; M0
                // took P0 and runs a goroutine too long.
                assert!(!idle.stop_m(&m1, false, &*world));
            }
            let model = Model::new((idle, world, m0, m1));
            let sysmon = {
                let model = Model::new((*model).clone());
                thread::spawn(move || {
                    let (idle, _, m0, _) = &*model;
                    // The handler on M0 took P0 and stopped: sysmon gives it away. `Some(p)`:
                    // no M to take it, a new one starts with `p`.
                    match idle.stop_preempted(m0, 0, false) {
                        Started::NewM { p, spinning, .. } => {
                            assert!(!spinning);
                            Some(p)
                        }
                        Started::Woke => None,
                        Started::NoIdleP => unreachable!("stop_preempted never says NoIdleP"),
                    }
                })
            };
            let other = {
                let model = Model::new((*model).clone());
                thread::spawn(move || {
                    let (idle, world, _, m1) = &*model;
                    // M1 runs with P0 (handed by the stop) or its own P1, finds nothing, gives
                    // it up, and goes idle. It does not sleep: the model looks in its slot.
                    let p = if m1_idle {
                        let (p, spinning) = m1.wait();
                        assert!(!spinning);
                        p
                    } else {
                        1
                    };
                    assert!(idle.release_p(p, false, &**world).is_none());
                    assert!(!idle.stop_m(m1, false, &**world));
                })
            };
            let m0_side = {
                let model = Model::new((*model).clone());
                thread::spawn(move || {
                    let (_, _, m0, _) = &*model;
                    // M0, in its handler, sleeps until handed a P (nobody resumes it here).
                    let (p0, spinning) = wait_while_stopped(m0).expect("nobody resumes M0");
                    assert!(!spinning);
                    p0
                })
            };
            let (idle, _, m0, m1) = &*model;
            let p0 = m0_side.join().unwrap();
            let new_m = sysmon.join().unwrap();
            other.join().unwrap();
            let l = idle.lock();
            idle.check(&l, false);
            let in_m1 = m1.take().map(|(p, _)| p);
            let mut places: Vec<u32> = [Some(p0), in_m1, new_m].into_iter().flatten().collect();
            places.extend(&l.procs);
            places.sort_unstable();
            let all: &[u32] = if m1_idle { &[0] } else { &[0, 1] };
            assert_eq!(places, all, "each P in exactly one place");
            assert!(l.hungry.is_empty(), "M0 got a P: nobody is hungry");
            assert!(!l.listed(m0), "M0 runs again");
            // M1 is listed unless it was handed P0 after it went idle.
            assert_eq!(l.listed(m1), in_m1.is_none());
        });
    }
}

/// (b) Sysmon ends M0's stop (`sysmon::end_stops`: it sees M0 in its stop wait and calls
/// `resume_without_p`, nothing having moved for a while) just as another M frees a P, which
/// goes to M0 as the M hungry longest: M1, handed M0's P0 by the stop, gives it back, by
/// `release_p` (it found nothing to run) or, with `by_hand`, by `hand_to_hungry` (its turn is
/// over; it keeps the P if nobody is hungry). Handed P0, M0 runs, finds nothing, and goes idle
/// as an ordinary idle M. Whatever the order, M0's wait returns once, with P0 or resumed.
/// Handed P0, it was not resumed (`resume_without_p` said false), then or later, once idle:
/// a resume that reached the idle M would unlist it while it sleeps in `Handoff::wait`, which
/// ignores the resume flag, and nobody could hand it a P again. Resumed, P0 is not lost: it is
/// idle, or M1 still holds it. Both outcomes occur (the model counts them).
///
/// With `resume_without_p` not checking that M0 is still listed, the model panics in `unlist`;
/// if it resumes M0 without unlisting it, M0 both resumes and is handed P0, which is left in
/// the slot of an M that no longer waits; if it does not check that M0 is still in its stop
/// wait (as before the model found it), it resumes the idle M0.
///
/// Bounded to 4 preemptions: with M0 on a spawned thread, unbounded it runs for over five
/// minutes (in release: 0.6 s at 2, 3.8 s at 3, 22 s at 4).
#[test]
fn stop_vs_resume() {
    static OUTCOMES: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
    for by_hand in [false, true] {
        for n in &OUTCOMES {
            n.store(0, Ordering::Relaxed);
        }
        crate::loom::model_bounded(4, move || {
            let (idle, m0, m1) = setup();
            let world = Arc::new(queues(false));
            // M1 is idle; M0 holds P0 and is stopped: sysmon lists it hungry and hands P0 to
            // M1 (woken: it takes P0 from its slot below).
            assert!(!idle.stop_m(&m1, false, &*world));
            assert!(matches!(idle.stop_preempted(&m0, 0, false), Started::Woke));
            let model = Model::new((idle, world, m0, m1));
            let sysmon = {
                let model = Model::new((*model).clone());
                thread::spawn(move || {
                    let (idle, _, m0, _) = &*model;
                    m0.monitor.in_stop_wait() && idle.resume_without_p(m0)
                })
            };
            let other = {
                let model = Model::new((*model).clone());
                thread::spawn(move || {
                    let (idle, world, _, m1) = &*model;
                    let (p, _) = m1.wait();
                    assert_eq!(p, 0);
                    if !by_hand {
                        assert!(idle.release_p(p, false, &**world).is_none());
                        return None;
                    }
                    match idle.hand_to_hungry(p) {
                        Ok(m) => {
                            m.wake();
                            None
                        }
                        Err(p) => Some(p),
                    }
                })
            };
            let m0_side = {
                let model = Model::new((*model).clone());
                thread::spawn(move || {
                    let (idle, world, m0, _) = &*model;
                    let got = wait_while_stopped(m0);
                    if let Some((p, _)) = got {
                        // M0 runs its goroutine on, finds nothing, and goes idle.
                        assert!(idle.release_p(p, false, &**world).is_none());
                        assert!(!idle.stop_m(m0, false, &**world));
                    }
                    got
                })
            };
            let (idle, _, m0, _) = &*model;
            let got = m0_side.join().unwrap();
            let resumed = sysmon.join().unwrap();
            let kept = other.join().unwrap();
            OUTCOMES[usize::from(resumed)].fetch_add(1, Ordering::Relaxed);
            let l = idle.lock();
            idle.check(&l, false);
            assert!(m0.take().is_none(), "a P left in M0's slot");
            assert!(l.hungry.is_empty(), "M0 still hungry");
            if got.is_some() {
                assert!(!resumed, "M0 handed a P, and sysmon says it resumed it");
                assert!(l.listed(m0), "M0 went idle, and nobody can hand it a P");
                assert!(l.procs == [0] && kept.is_none());
            } else {
                assert!(resumed, "M0 resumed, and sysmon says it was handed a P");
                assert!(!l.listed(m0), "M0 resumed, and still listed");
                let places = [l.procs == [0], kept == Some(0)];
                assert_eq!(places, [!by_hand, by_hand], "P0 lost");
            }
        });
        let [handed, resumed] = OUTCOMES.each_ref().map(|n| n.load(Ordering::Relaxed));
        assert!(
            handed > 0 && resumed > 0,
            "{handed} handed, {resumed} resumed"
        );
    }
}

/// (c) A goroutine on M0, which lost its P while blocked (`DETACH`), calls into the scheduler
/// and wants a P back (`retake::reacquire_p_while_running`: `list_hungry`, then
/// `wait_stopped`), while M1, holding the only P, finds nothing and goes idle. The P reaches
/// M0: idle already when M0 lists itself (`serve` hands it at once), or handed by `put_p` to
/// the hungry M0.
///
/// With `list_hungry` marking M0 hungry without looking for an idle P, M0 sleeps beside the
/// idle P and loom reports a deadlock.
#[test]
fn detached_m_reacquires_vs_last_p_going_idle() {
    loom::model(|| {
        let (idle, m0, m1) = setup();
        let model = Model::new((idle, Arc::new(queues(false)), m0, m1));
        let other = {
            let model = Model::new((*model).clone());
            thread::spawn(move || {
                let (idle, world, _, m1) = &*model;
                assert!(idle.release_p(0, false, &**world).is_none());
                assert!(!idle.stop_m(m1, false, &**world));
            })
        };
        let m0_side = {
            let model = Model::new((*model).clone());
            thread::spawn(move || {
                let (idle, _, m0, _) = &*model;
                if idle.list_hungry(m0) {
                    m0.wake();
                }
                wait_while_stopped(m0).expect("nobody resumes M0")
            })
        };
        let (idle, _, m0, m1) = &*model;
        let (p, spinning) = m0_side.join().unwrap();
        assert_eq!((p, spinning), (0, false));
        other.join().unwrap();
        let l = idle.lock();
        idle.check(&l, false);
        assert!(l.procs.is_empty() && l.hungry.is_empty());
        assert!(!l.listed(m0) && l.listed(m1) && !m1.is_handed());
    });
}
