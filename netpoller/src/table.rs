//! The table of [`PollDesc`]s and the mio tokens that name them (Go's `pollCache` plus its
//! tagged pointers).
//!
//! The kernel hands back, with each event, the token given at registration. A token must
//! still lead somewhere safe when its descriptor has been closed and its `PollDesc` reused by
//! a newer socket: events already copied into the poller's buffer may be dispatched after the
//! close. So descriptors are never freed: they live in pages allocated on demand and kept for
//! the life of the poller, and are recycled through a free list. A token packs the index with
//! the descriptor's incarnation number (`gen`, bumped at each release); an event whose
//! incarnation does not match is dropped.
//!
//! ```text
//!  token (usize):  [ gen (low bits that fit) | index (INDEX_BITS) ]
//!  index:          [ page (INDEX_BITS - PAGE_BITS) | slot in page (PAGE_BITS) ]
//! ```
//!
//! The check is racy by design: the poller may match a token, the descriptor may then be
//! released and reused, and the poller records an edge on the new socket. That costs the new
//! socket's waiters one spurious retry of their syscall (see `desc.rs`), never correctness.
//!
//! Invariants: an index is either on the free list, or owned by exactly one live registration
//! (a `PollFd`); a page, once allocated, is never freed or moved, so `&PollDesc` borrowed from
//! the table lives as long as the table. The last index is never handed out: its token (all
//! ones) is the waker's.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};

use crate::desc::PollDesc;

/// Bits of a token that hold the index.
const INDEX_BITS: u32 = 20;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
const PAGE_BITS: u32 = 10;
const PAGE_LEN: usize = 1 << PAGE_BITS;
const NPAGES: usize = 1 << (INDEX_BITS - PAGE_BITS);

/// The most descriptors one poller can have registered at once.
pub(crate) const MAX_DESCS: usize = INDEX_MASK;

/// The token of the poller's waker; no descriptor's token can equal it.
pub(crate) const WAKER_TOKEN: usize = usize::MAX;

pub(crate) struct Table {
    pages: Box<[OnceLock<Box<[PollDesc]>>]>,
    free: Mutex<Free>,
}

struct Free {
    /// Released indices, reused last-in first-out (their pages are warm).
    list: Vec<u32>,
    /// The next never-used index.
    next: u32,
}

impl Table {
    pub(crate) fn new() -> Table {
        Table {
            pages: (0..NPAGES).map(|_| OnceLock::new()).collect(),
            free: Mutex::new(Free {
                list: Vec::new(),
                next: 0,
            }),
        }
    }

    /// Takes a descriptor for a new registration and returns its index.
    pub(crate) fn alloc(&self) -> io::Result<u32> {
        let index = {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            match free.list.pop() {
                Some(i) => i,
                None if (free.next as usize) < MAX_DESCS => {
                    free.next += 1;
                    free.next - 1
                }
                None => {
                    return Err(io::Error::other(format!(
                        "gort netpoller: more than {MAX_DESCS} descriptors registered at once"
                    )))
                }
            }
        };
        let desc = self.page(index).get_or_init(new_page);
        desc[index as usize % PAGE_LEN].reset();
        Ok(index)
    }

    /// The descriptor at `index`, which must have been allocated.
    pub(crate) fn get(&self, index: u32) -> &PollDesc {
        let page = self.page(index).get().expect("index was allocated");
        &page[index as usize % PAGE_LEN]
    }

    /// The token naming the current incarnation of `index`.
    pub(crate) fn token(&self, index: u32) -> usize {
        let gen = self.get(index).gen.load(Ordering::Acquire) as usize;
        (gen << INDEX_BITS) | index as usize
    }

    /// The descriptor a token names, if it is still the same incarnation.
    pub(crate) fn lookup(&self, token: usize) -> Option<&PollDesc> {
        let index = token & INDEX_MASK;
        if index == INDEX_MASK {
            return None;
        }
        let desc = &self.pages[index >> PAGE_BITS].get()?[index % PAGE_LEN];
        let gen = desc.gen.load(Ordering::Acquire) as usize;
        ((gen << INDEX_BITS) == token & !INDEX_MASK).then_some(desc)
    }

    /// Returns `index` to the free list, ending its incarnation. The caller has closed the
    /// descriptor's file (so no new event carries the old token) and no waiter remains.
    pub(crate) fn release(&self, index: u32) {
        self.get(index).gen.fetch_add(1, Ordering::AcqRel);
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.list.push(index);
    }

    fn page(&self, index: u32) -> &OnceLock<Box<[PollDesc]>> {
        &self.pages[index as usize >> PAGE_BITS]
    }
}

fn new_page() -> Box<[PollDesc]> {
    (0..PAGE_LEN).map(|_| PollDesc::new()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_one_incarnation() {
        let t = Table::new();
        let i = t.alloc().unwrap();
        let tok = t.token(i);
        assert!(std::ptr::eq(t.lookup(tok).unwrap(), t.get(i)));
        t.release(i);
        assert!(t.lookup(tok).is_none(), "a stale token must not match");
        let j = t.alloc().unwrap();
        assert_eq!(i, j, "released indices are reused");
        assert_ne!(t.token(j), tok);
        assert!(t.lookup(WAKER_TOKEN).is_none());
    }

    #[test]
    fn pages_grow_on_demand() {
        let t = Table::new();
        let ids: Vec<u32> = (0..PAGE_LEN as u32 + 5)
            .map(|_| t.alloc().unwrap())
            .collect();
        assert_eq!(ids.last().copied(), Some(PAGE_LEN as u32 + 4));
        for &i in &ids {
            assert!(t.lookup(t.token(i)).is_some());
        }
    }
}
