//! loom models of the timer set (`set.rs`) and a timer's state (`state.rs`), on their own code:
//! who may fire a timer, and that a timer made the earliest of all is never missed by a watcher
//! reading the deadline to sleep until.
//!
//! Deadlines here are plain numbers (nanoseconds); `run_due` is given `now`. Every racing side
//! is a spawned thread: with one side on the model's main thread, loom explored only the
//! interleavings where it ran first (seen here: a model that could not fail passed).

use std::sync::Arc;

use loom::sync::atomic::AtomicUsize;
use loom::thread;

use super::set::TimerSet;
use crate::loom::Ordering;

/// An action that counts its runs in `ran`.
fn counting(ran: &Arc<AtomicUsize>) -> Box<dyn FnOnce() + Send> {
    let ran = ran.clone();
    Box::new(move || {
        ran.fetch_add(1, Ordering::Relaxed);
    })
}

/// `stop` racing the firing: exactly one wins. Either the action runs and `stop` reports
/// false, or `stop` reports true and the action never runs; the live count goes back to zero
/// either way.
#[test]
fn stop_races_fire() {
    loom::model(|| {
        let set = Arc::new(TimerSet::new(1));
        let ran = Arc::new(AtomicUsize::new(0));
        let (timer, _) = set.push(0, 5, counting(&ran));
        let firer = {
            let set = set.clone();
            thread::spawn(move || set.run_due(0, 5, 5))
        };
        let stopper = {
            let set = set.clone();
            thread::spawn(move || set.stop(&timer))
        };
        let stopped = stopper.join().unwrap();
        let fired = firer.join().unwrap();
        assert!(stopped != (fired == 1), "exactly one side wins");
        assert_eq!(ran.load(Ordering::Relaxed), fired);
        assert!(!set.pending());
    });
}

/// Two Ms fire at once: one its own heap (shard 0), the other, whose heap (shard 1) has
/// nothing due, the first one's due timers. Each action runs exactly once, and the heap and the
/// earliest deadline end empty.
#[test]
fn two_ms_fire_one_heap() {
    loom::model(|| {
        let set = Arc::new(TimerSet::new(2));
        let ran = Arc::new(AtomicUsize::new(0));
        let _a = set.push(0, 3, counting(&ran));
        let _b = set.push(0, 4, counting(&ran));
        let other = {
            let set = set.clone();
            thread::spawn(move || set.run_due(1, 5, 5))
        };
        let owner = {
            let set = set.clone();
            thread::spawn(move || set.run_due(0, 5, 5))
        };
        let mine = owner.join().unwrap();
        let theirs = other.join().unwrap();
        assert_eq!(mine + theirs, 2);
        assert_eq!(ran.load(Ordering::Relaxed), 2);
        assert_eq!(set.next(), u64::MAX);
        assert_eq!(set.entries_now(), 0);
        assert!(!set.pending());
    });
}

/// A timer armed on M1 while M0 fires its heap's earliest timer (so that heap's earliest moves
/// later) and the watcher reads the deadline it would sleep until. Whatever the interleaving,
/// the watcher either read a deadline no later than the new timer's, or the `push` reports
/// that the scheduler must be told (`timers_changed` pokes the watcher, which reads again).
/// With each heap's earliest deadline compared without `next_lock`, the `push` can read M0's
/// old earliest (already popped) and stay silent while the watcher reads M0's new, later one:
/// the watcher would sleep past the new timer (checked: that version fails this model).
#[test]
fn armed_timer_wakes_the_watcher() {
    loom::model(|| {
        let set = Arc::new(TimerSet::new(2));
        let ran = Arc::new(AtomicUsize::new(0));
        let _due = set.push(0, 3, counting(&ran));
        let _far = set.push(0, 100, counting(&ran));
        let firer = {
            let set = set.clone();
            thread::spawn(move || set.run_due(0, 4, 4))
        };
        let armer = {
            let (set, ran) = (set.clone(), ran.clone());
            thread::spawn(move || set.push(1, 50, counting(&ran)).1)
        };
        let watcher = {
            let set = set.clone();
            thread::spawn(move || set.next())
        };
        let watcher_read = watcher.join().unwrap();
        let fired = firer.join().unwrap();
        let told = armer.join().unwrap();
        assert_eq!(fired, 1);
        assert!(
            told || watcher_read <= 50,
            "the watcher read {watcher_read} and nobody told it about the timer at 50"
        );
        assert_eq!(set.next(), 50);
    });
}
