//! An intrusive doubly linked FIFO: every wait queue in the crate (a channel's `recvq` and
//! `sendq`, the queue of each `sync` primitive). Go's `waitq` of `sudog`s: a node lives in the
//! blocked goroutine's own stack frame (no allocation per wait), and any node leaves in O(1)
//! (`dequeueSudoG`), which a waiter that times out, or whose select fired on another channel,
//! needs: N waiters leaving one queue cost O(N), not O(N²).
//!
//! Invariants (the contract of the `unsafe` methods; their callers state how they keep it):
//! - Each list is guarded by one lock (a channel's, or a sync primitive's queue lock), and a
//!   `&mut List` is only reached through it. A node's links are read and written only through
//!   the `&mut List` of the list that holds it, so the lock serialises every access to them.
//! - A node is in at most one list at a time, and `remove` is only ever called on the list the
//!   node was pushed onto.
//! - A linked node stays at its address and alive until it is unlinked (`pop_front`,
//!   `remove`): its owner keeps a drop guard that takes the lock and removes it before the
//!   frame holding it ends, on every path out including unwinding. `Node` is `!Unpin`.
//! - `len` is the number of linked nodes; `head`/`tail` are null exactly when it is 0.

use std::marker::PhantomPinned;
use std::ptr::{self, NonNull};

use crate::loom::UnsafeCell;

/// A list element: the waiter's data (`value`) and the links the list owns.
pub(crate) struct Node<T> {
    links: UnsafeCell<Links<T>>,
    value: T,
    /// Linked nodes are pointed to by their neighbours: a node must not move while linked.
    _pinned: PhantomPinned,
}

struct Links<T> {
    prev: *const Node<T>,
    next: *const Node<T>,
    linked: bool,
}

impl<T> Node<T> {
    pub(crate) fn new(value: T) -> Node<T> {
        Node {
            links: UnsafeCell::new(Links {
                prev: ptr::null(),
                next: ptr::null(),
                linked: false,
            }),
            value,
            _pinned: PhantomPinned,
        }
    }

    pub(crate) fn value(&self) -> &T {
        &self.value
    }

    /// The value, to fill in while the node is in no list (the unique borrow proves that no
    /// list can reach it: a linked node is borrowed by its owner's drop guard).
    pub(crate) fn value_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// The list: head, tail and length; the nodes are elsewhere (see the module invariants).
pub(crate) struct List<T> {
    head: *const Node<T>,
    tail: *const Node<T>,
    len: usize,
}

// SAFETY: the list only holds pointers to nodes, which it reaches under its lock (module
// invariants); moving the list to another thread moves that access with it. The nodes' values
// are then read from that thread, hence `T: Sync`.
unsafe impl<T: Sync> Send for List<T> {}

impl<T> Default for List<T> {
    fn default() -> List<T> {
        List::new()
    }
}

impl<T> List<T> {
    pub(crate) const fn new() -> List<T> {
        List {
            head: ptr::null(),
            tail: ptr::null(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends `node`.
    ///
    /// # Safety
    /// `node` is in no list, and stays at its address and alive until it is unlinked from this
    /// list (module invariants).
    pub(crate) unsafe fn push_back(&mut self, node: &Node<T>) {
        let tail = self.tail;
        node.links.with_mut(|l| {
            // SAFETY: the node is in no list, so nothing else touches its links.
            let l = unsafe { &mut *l };
            debug_assert!(!l.linked, "node pushed twice");
            *l = Links {
                prev: tail,
                next: ptr::null(),
                linked: true,
            };
        });
        match NonNull::new(tail.cast_mut()) {
            // SAFETY: `tail` is linked in this list, so alive; we hold its lock (`&mut self`).
            Some(t) => unsafe { set_next(t, node) },
            None => self.head = node,
        }
        self.tail = node;
        self.len += 1;
    }

    /// Prepends `node`.
    ///
    /// # Safety
    /// As for [`List::push_back`].
    pub(crate) unsafe fn push_front(&mut self, node: &Node<T>) {
        let head = self.head;
        node.links.with_mut(|l| {
            // SAFETY: the node is in no list, so nothing else touches its links.
            let l = unsafe { &mut *l };
            debug_assert!(!l.linked, "node pushed twice");
            *l = Links {
                prev: ptr::null(),
                next: head,
                linked: true,
            };
        });
        match NonNull::new(head.cast_mut()) {
            // SAFETY: `head` is linked in this list, so alive; we hold its lock.
            Some(h) => unsafe { set_prev(h, node) },
            None => self.tail = node,
        }
        self.head = node;
        self.len += 1;
    }

    /// The first node, if any. It stays valid while it is linked and the lock is held.
    pub(crate) fn front(&self) -> Option<NonNull<Node<T>>> {
        NonNull::new(self.head.cast_mut())
    }

    /// The node after `node`.
    ///
    /// # Safety
    /// `node` is linked in this list.
    pub(crate) unsafe fn next(&self, node: NonNull<Node<T>>) -> Option<NonNull<Node<T>>> {
        // SAFETY: linked in this list (the caller's contract), so alive.
        let node = unsafe { node.as_ref() };
        // SAFETY: its links are ours to read under the lock that `&self` of the list implies.
        let next = node.links.with(|l| unsafe { (*l).next });
        NonNull::new(next.cast_mut())
    }

    /// Unlinks and returns the first node. The caller may use it only as long as its owner
    /// cannot be past its drop guard: while holding the lock, and before publishing to the
    /// owner that it is done with it.
    pub(crate) fn pop_front(&mut self) -> Option<NonNull<Node<T>>> {
        let head = self.front()?;
        // SAFETY: `head` is linked in this list.
        unsafe { self.unlink(head) };
        Some(head)
    }

    /// Unlinks `node` if it is linked; true if it was. O(1).
    ///
    /// # Safety
    /// `node` is alive, and if linked, linked in this list.
    pub(crate) unsafe fn remove(&mut self, node: &Node<T>) -> bool {
        // SAFETY: alive (the caller's contract); its links are only touched under this list's
        // lock, which `&mut self` implies.
        let linked = node.links.with(|l| unsafe { (*l).linked });
        if linked {
            // SAFETY: linked, hence in this list (the caller's contract).
            unsafe { self.unlink(NonNull::from(node)) };
        }
        linked
    }

    /// # Safety
    /// `node` is linked in this list.
    unsafe fn unlink(&mut self, node: NonNull<Node<T>>) {
        // SAFETY: linked in this list, so alive; its links are ours under the lock.
        let (prev, next) = unsafe { node.as_ref() }.links.with_mut(|l| {
            // SAFETY: as above.
            let l = unsafe { &mut *l };
            l.linked = false;
            (
                std::mem::replace(&mut l.prev, ptr::null()),
                std::mem::replace(&mut l.next, ptr::null()),
            )
        });
        match NonNull::new(prev.cast_mut()) {
            // SAFETY: the neighbours of a linked node are linked in the same list.
            Some(p) => unsafe { set_next(p, next) },
            None => self.head = next,
        }
        match NonNull::new(next.cast_mut()) {
            // SAFETY: as above.
            Some(n) => unsafe { set_prev(n, prev) },
            None => self.tail = prev,
        }
        self.len -= 1;
    }
}

/// # Safety
/// `node` is linked in a list whose lock the caller holds.
unsafe fn set_next<T>(node: NonNull<Node<T>>, next: *const Node<T>) {
    // SAFETY: alive and ours to write under the lock (the caller's contract).
    unsafe { node.as_ref() }
        .links
        .with_mut(|l| unsafe { (*l).next = next });
}

/// # Safety
/// As for [`set_next`].
unsafe fn set_prev<T>(node: NonNull<Node<T>>, prev: *const Node<T>) {
    // SAFETY: alive and ours to write under the lock (the caller's contract).
    unsafe { node.as_ref() }
        .links
        .with_mut(|l| unsafe { (*l).prev = prev });
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn values(list: &List<u32>) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = list.front();
        while let Some(n) = cur {
            // SAFETY: the nodes outlive the list in these tests, and `n` is linked.
            out.push(*unsafe { n.as_ref() }.value());
            // SAFETY: as above.
            cur = unsafe { list.next(n) };
        }
        out
    }

    #[test]
    fn fifo_with_removal_anywhere() {
        let nodes: Vec<Node<u32>> = (0..5).map(Node::new).collect();
        let mut list = List::new();
        for n in &nodes {
            // SAFETY: each node is pushed once and outlives the list.
            unsafe { list.push_back(n) };
        }
        assert_eq!(values(&list), [0, 1, 2, 3, 4]);
        // SAFETY: the nodes are alive and were pushed onto this list.
        unsafe {
            assert!(list.remove(&nodes[2])); // middle
            assert!(!list.remove(&nodes[2])); // already out
            assert!(list.remove(&nodes[4])); // tail
            assert!(list.remove(&nodes[0])); // head
        }
        assert_eq!(values(&list), [1, 3]);
        assert_eq!(list.len(), 2);
        // SAFETY: node 0 is out of the list again.
        unsafe { list.push_front(&nodes[0]) };
        assert_eq!(values(&list), [0, 1, 3]);
        let popped: Vec<u32> = std::iter::from_fn(|| list.pop_front())
            // SAFETY: the nodes outlive the list.
            .map(|n| *unsafe { n.as_ref() }.value())
            .collect();
        assert_eq!(popped, [0, 1, 3]);
        assert!(list.len() == 0 && list.front().is_none());
    }
}
