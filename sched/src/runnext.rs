//! `runnext`: a P's one-goroutine slot for the goroutine to run next (Go's `p.runnext`).
//!
//! Only the P's owner puts a goroutine in; the owner takes it out to run it, and a thief may
//! take it as a last resort (`scheduler/steal.rs`). The slot holds an owned pointer (a `GRef`
//! turned into a raw pointer by its caller), and the protocol makes every pointer put in come
//! out exactly once:
//! - the owner puts into an empty slot with a plain store: only the owner ever puts, so a slot
//!   it sees empty stays empty until its store (a thief only takes out);
//! - the owner puts into an occupied slot with a swap, and gets back what it displaced, or null
//!   if a thief took it meanwhile;
//! - the owner and thieves take with a swap to null, or a thief with a compare-and-swap of the
//!   pointer it saw there to null: of any two takers, one gets the pointer.
//!
//! The loom model at the bottom checks this with an owner that puts and takes against a thief.

use std::ptr;

use crate::loom::{AtomicPtr, Ordering};

/// A one-pointer slot with a single putter (the owner) and many takers.
pub(crate) struct RunNext<T>(AtomicPtr<T>);

impl<T> RunNext<T> {
    pub(crate) fn new() -> RunNext<T> {
        RunNext(AtomicPtr::new(ptr::null_mut()))
    }

    /// True if the slot looks empty (a hint for thieves and for the owner's policy).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.load(Ordering::Relaxed).is_null()
    }

    /// The pointer in the slot now (null if empty), as an identity only: by the time the
    /// caller looks, another taker may own it, so it must not be followed.
    pub(crate) fn peek(&self) -> *mut T {
        self.0.load(Ordering::Relaxed)
    }

    /// Owner: puts `new` if the slot is empty (true); leaves it alone otherwise (false).
    pub(crate) fn put_if_empty(&self, new: *mut T) -> bool {
        if !self.is_empty() {
            return false;
        }
        self.0.store(new, Ordering::Release);
        true
    }

    /// Owner: puts `new` and returns what it displaced (null if the slot was empty, or a thief
    /// emptied it first).
    pub(crate) fn put(&self, new: *mut T) -> *mut T {
        if self.put_if_empty(new) {
            return ptr::null_mut();
        }
        self.0.swap(new, Ordering::AcqRel)
    }

    /// Thief: takes the pointer in the slot if it is still `expected` (an earlier
    /// [`peek`](Self::peek)), and returns it; null if the slot holds anything else (Go's
    /// `runnext.cas(next, 0)` in `runqgrab`).
    pub(crate) fn take_if(&self, expected: *mut T) -> *mut T {
        if expected.is_null() {
            return ptr::null_mut();
        }
        match self.0.compare_exchange(
            expected,
            ptr::null_mut(),
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(p) => p,
            Err(_) => ptr::null_mut(),
        }
    }

    /// Owner or thief: takes the pointer in the slot (null if empty).
    pub(crate) fn take(&self) -> *mut T {
        if self.is_empty() {
            return ptr::null_mut();
        }
        self.0.swap(ptr::null_mut(), Ordering::Acquire)
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// The owner puts two goroutines (the second displacing the first) and takes one while a
    /// thief takes one (each a spawned thread): every goroutine put in comes out exactly
    /// once, with what the putter wrote before putting it.
    #[test]
    fn owner_puts_and_takes_against_a_thief() {
        loom::model(|| {
            let slot = Arc::new(RunNext::<u64>::new());
            let thief = {
                let slot = slot.clone();
                thread::spawn(move || {
                    // Either way of taking: outright, or only what it saw there.
                    let seen = slot.peek();
                    let p = if seen.is_null() {
                        slot.take()
                    } else {
                        slot.take_if(seen)
                    };
                    // SAFETY: a non-null pointer taken from the slot is an owned Box.
                    (!p.is_null()).then(|| *unsafe { Box::from_raw(p) })
                })
            };
            let owner = {
                let slot = slot.clone();
                thread::spawn(move || {
                    let mut out = Vec::new();
                    let displaced = slot.put(Box::into_raw(Box::new(1)));
                    assert!(displaced.is_null(), "the slot started empty");
                    let displaced = slot.put(Box::into_raw(Box::new(2)));
                    let taken = slot.take();
                    for p in [displaced, taken] {
                        if !p.is_null() {
                            // SAFETY: as above.
                            out.push(*unsafe { Box::from_raw(p) });
                        }
                    }
                    out
                })
            };
            let mut out = owner.join().unwrap();
            out.extend(thief.join().unwrap());
            let left = slot.take();
            if !left.is_null() {
                // SAFETY: as above.
                out.push(*unsafe { Box::from_raw(left) });
            }
            out.sort_unstable();
            assert_eq!(out, vec![1, 2], "each goroutine out exactly once");
        });
    }
}
