//! The cancellation tree: one `Canceller` per cancellable context (`with_cancel`,
//! `with_deadline`, `with_timeout`), linked to the nearest cancellable ancestor. A value
//! context, `background()` and `todo()` have none of their own: they share their parent's.
//!
//! As in Go's context.go, a parent holds its live children strongly (it must reach them to
//! cancel them) and a child holds its parent (it must reach it to leave). The cycle is broken by
//! cancellation, which every child meets: its `CancelFn` cancels on drop, its timer fires, or
//! its parent is cancelled. Cancelling a node removes it from its parent's `children`, takes its
//! own `children` out (they are cancelled next, with the same error and cause) and stops its
//! timer, so a cancelled subtree holds nothing in the tree or in the timer heap.
//!
//! Besides cancellable children, a node's child set holds hooks (`after.rs`): functions run
//! once when the node is cancelled (`after_func`, and the wake-ups of blocking calls waiting on
//! a context). A hook is a leaf: cancelling the node takes it out with the other children and
//! runs it after the node is marked; stopping it removes it.
//!
//! Invariants:
//! - `err` is 0 (live) until the node is cancelled, then the error's code for good; it is set
//!   under `state`, together with `cause` and the close of `done`, so whoever sees `done` closed
//!   or `err` set sees the cause too (under the lock).
//! - A cancelled node has no `children`, no `timer` and no `tx`; a node is in its parent's
//!   `children` only while both are live, and leaves before any `done` of its subtree closes
//!   (so a goroutine woken by that close finds the parent's count already down).
//!
//! Locks: `state` is held only to read or change the node's own fields and, in `cancel`, to
//! close its `done` channel (the channel's lock is taken under it). No two `state` locks are
//! ever held at once: registration reads the parent under its lock and cancels the child after
//! releasing it; cancellation takes the children out and walks them with a work list (no
//! recursion, so a chain a million deep needs no stack); a timer is armed and stopped outside
//! the lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chan::{chan, Receiver, Sender};

use super::after::Hook;
use super::{Cause, ContextError};

pub(super) struct Canceller {
    /// The nearest cancellable ancestor, if any (`None` under `background()`).
    parent: Option<Arc<Canceller>>,
    /// Closed when the node is cancelled. Its sender is `State::tx`.
    pub(super) done: Receiver<()>,
    /// `0` while live, else `ContextError::code`. Written under `state` (Release), read
    /// without it (Acquire) by `err`.
    err: AtomicU8,
    state: Mutex<State>,
}

struct State {
    /// `None` once cancelled (closed, then dropped).
    tx: Option<Sender<()>>,
    cause: Option<Cause>,
    /// The live cancellable children and hooks, keyed by address (unique while the entry
    /// holds them).
    children: HashMap<usize, Child>,
    /// A `with_deadline` node's timer until it fires or the node is cancelled.
    timer: Option<sched::Timer>,
}

/// What a node's child set holds.
enum Child {
    /// A cancellable child context: cancelled with its parent.
    Node(Arc<Canceller>),
    /// A function to run when the node is cancelled.
    Hook(Arc<Hook>),
}

/// A map this large with a quarter of it in use is shrunk, so a parent that once had a million
/// children at once does not keep the table they needed.
const SHRINK_MIN: usize = 64;

impl Canceller {
    /// A live node under `parent`, registered with it; cancelled at once (with the parent's
    /// error and cause) if the parent already is.
    pub(super) fn new(parent: Option<&Arc<Canceller>>) -> Arc<Canceller> {
        let (tx, done) = chan(0);
        let node = Arc::new(Canceller {
            parent: parent.cloned(),
            done,
            err: AtomicU8::new(0),
            state: Mutex::new(State {
                tx: Some(tx),
                cause: None,
                children: HashMap::new(),
                timer: None,
            }),
        });
        if let Some(p) = parent {
            let inherited = {
                let mut ps = p.lock();
                match p.err() {
                    Some(err) => Some((err, ps.cause.clone())),
                    None => {
                        ps.children.insert(key(&node), Child::Node(node.clone()));
                        None
                    }
                }
            };
            if let Some((err, cause)) = inherited {
                // Not registered: nothing to remove.
                node.cancel_subtree(err, &cause);
            }
        }
        node
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn err(&self) -> Option<ContextError> {
        ContextError::from_code(self.err.load(Ordering::Acquire))
    }

    pub(super) fn cause(&self) -> Option<Cause> {
        let err = self.err()?;
        let s = self.lock();
        Some(s.cause.clone().unwrap_or_else(|| Arc::new(err)))
    }

    pub(super) fn child_count(&self) -> usize {
        self.lock().children.len()
    }

    /// Registers `hook` to run when this node is cancelled; false (and nothing registered) if
    /// it already is.
    pub(super) fn add_hook(&self, hook: &Arc<Hook>) -> bool {
        let mut s = self.lock();
        if self.err().is_some() {
            return false;
        }
        s.children
            .insert(Arc::as_ptr(hook) as usize, Child::Hook(hook.clone()));
        true
    }

    /// Removes `hook` from the child set, if it is still there.
    pub(super) fn remove_hook(&self, hook: &Hook) {
        self.remove_child(hook as *const Hook as usize);
    }

    /// Removes the child with `key`, if any, shrinking a mostly empty table.
    fn remove_child(&self, key: usize) {
        let mut s = self.lock();
        s.children.remove(&key);
        let cap = s.children.capacity();
        if cap >= SHRINK_MIN && s.children.len() * 4 <= cap {
            let len = s.children.len();
            s.children.shrink_to(len * 2);
        }
    }

    /// Arms the deadline: at `deadline`, a goroutine of its own cancels the node with
    /// `DeadlineExceeded` and `cause` (the timer's action runs on the scheduler's stack and
    /// must stay short, while a subtree may be large: Go's `AfterFunc` does the same).
    pub(super) fn arm(self: &Arc<Self>, deadline: Instant, cause: Option<Cause>) {
        if self.err().is_some() {
            return; // born cancelled, under a cancelled parent
        }
        if deadline <= Instant::now() {
            self.cancel(ContextError::DeadlineExceeded, cause);
            return;
        }
        let me = self.clone();
        let timer = sched::at(deadline, move || {
            drop(sched::spawn(move || {
                me.cancel(ContextError::DeadlineExceeded, cause)
            }))
        });
        let mut s = self.lock();
        if self.err().is_none() {
            s.timer = Some(timer);
        } else {
            // Cancelled while arming: nobody else will stop it.
            drop(s);
            timer.stop();
        }
    }

    /// Cancels this node and its subtree with `err` and `cause` (the first cancellation of a
    /// node wins; later ones do nothing), and removes it from its parent's children.
    ///
    /// The removal comes first, so whoever sees a `done` of the subtree closed sees the node
    /// gone from its parent. If the parent is being cancelled at the same time, it may have
    /// taken its children out already (the removal then finds nothing) and may mark this node
    /// first: either error wins, whole.
    pub(super) fn cancel(self: &Arc<Self>, err: ContextError, cause: Option<Cause>) {
        if self.err().is_some() {
            return;
        }
        if let Some(p) = &self.parent {
            p.remove_child(key(self));
        }
        self.cancel_subtree(err, &cause);
    }

    /// Cancels this node, then its descendants (their parents' maps are taken out, so they
    /// need no removal), with a work list rather than recursion; runs each node's hooks once
    /// the node is marked.
    fn cancel_subtree(&self, err: ContextError, cause: &Option<Cause>) {
        let mut work = Vec::new();
        if !self.mark(err, cause, &mut work) {
            return;
        }
        while let Some(child) = work.pop() {
            match child {
                Child::Node(node) => {
                    node.mark(err, cause, &mut work);
                }
                Child::Hook(hook) => hook.fire(),
            }
        }
    }

    /// Marks this node cancelled, closes `done`, stops its timer and pushes its children
    /// (nodes and hooks) onto `work`. False if it was already cancelled.
    fn mark(&self, err: ContextError, cause: &Option<Cause>, work: &mut Vec<Child>) -> bool {
        let (timer, children) = {
            let mut s = self.lock();
            if self.err().is_some() {
                return false;
            }
            self.err.store(err.code(), Ordering::Release);
            s.cause = cause.clone();
            if let Some(tx) = s.tx.take() {
                // Under the lock, as in Go: once `err` is seen set, `done` is closed.
                let _ = tx.close();
            }
            (s.timer.take(), std::mem::take(&mut s.children))
        };
        if let Some(t) = timer {
            t.stop();
        }
        work.extend(children.into_values());
        true
    }
}

impl Drop for Canceller {
    /// Releases the chain of ancestors this node held last one at a time, as `Node`'s drop
    /// does for contexts: a chain a million deep must not recurse.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(node) = next {
            next = Arc::into_inner(node).and_then(|mut n| n.parent.take());
        }
    }
}

fn key(node: &Arc<Canceller>) -> usize {
    Arc::as_ptr(node) as usize
}
