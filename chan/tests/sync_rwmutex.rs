//! `chan::sync::RwMutex` at maxprocs 1, 2 and 4: readers share the lock (several observed
//! inside at once), writers exclude everyone (exact counts, witnesses), a pending writer
//! blocks new readers (Go's writer preference), and the `try_` variants.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use chan::sync::RwMutex;
use common::{each_procs, start, wait_until, Side};

/// Four readers (three goroutines, one plain thread) each hold a read lock until all four
/// are inside together: readers do not exclude each other.
#[test]
fn readers_share_the_lock() {
    each_procs("readers_share_the_lock", |_| {
        const READERS: usize = 4;
        let lock = Arc::new(RwMutex::new(7));
        let inside = Arc::new(AtomicUsize::new(0));
        let joins: Vec<_> = (0..READERS)
            .map(|i| {
                let side = if i == 0 {
                    Side::Thread
                } else {
                    Side::Goroutine
                };
                let (lock, inside) = (lock.clone(), inside.clone());
                start(side, move || {
                    let g = lock.read();
                    inside.fetch_add(1, Ordering::SeqCst);
                    wait_until("all readers inside", || {
                        inside.load(Ordering::SeqCst) == READERS
                    });
                    assert_eq!(*g, 7);
                })
            })
            .collect();
        for j in joins {
            j();
        }
    });
}

/// Writers and readers hammering one lock. Writers: exact count of non-atomic increments,
/// nobody else inside. Readers: no writer inside, and the two halves of the data agree.
#[test]
fn writers_are_exclusive() {
    each_procs("writers_are_exclusive", |_| {
        const WRITERS: usize = 4;
        const READERS: usize = 4;
        const ROUNDS: usize = 2_000;
        let lock = Arc::new(RwMutex::new((0u64, 0u64)));
        let readers_in = Arc::new(AtomicUsize::new(0));
        let writers_in = Arc::new(AtomicUsize::new(0));
        let mut joins = Vec::new();
        for w in 0..WRITERS {
            let (lock, readers_in, writers_in) =
                (lock.clone(), readers_in.clone(), writers_in.clone());
            let side = if w == 0 {
                Side::Thread
            } else {
                Side::Goroutine
            };
            joins.push(start(side, move || {
                for i in 0..ROUNDS {
                    let mut g = lock.write();
                    assert_eq!(writers_in.fetch_add(1, Ordering::SeqCst), 0, "two writers");
                    assert_eq!(readers_in.load(Ordering::SeqCst), 0, "reader with writer");
                    g.0 += 1;
                    if i % 32 == 0 {
                        sched::yield_now();
                    }
                    g.1 += 1;
                    writers_in.fetch_sub(1, Ordering::SeqCst);
                }
            }));
        }
        for _ in 0..READERS {
            let (lock, readers_in, writers_in) =
                (lock.clone(), readers_in.clone(), writers_in.clone());
            joins.push(start(Side::Goroutine, move || {
                for i in 0..ROUNDS {
                    let g = lock.read();
                    readers_in.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(writers_in.load(Ordering::SeqCst), 0, "writer with reader");
                    assert_eq!(g.0, g.1, "torn write seen");
                    if i % 32 == 0 {
                        sched::yield_now();
                    }
                    readers_in.fetch_sub(1, Ordering::SeqCst);
                }
            }));
        }
        for j in joins {
            j();
        }
        let want = (WRITERS * ROUNDS) as u64;
        assert_eq!(*lock.read(), (want, want));
    });
}

/// Go's writer preference: with a reader inside and a writer waiting, a new reader waits
/// too (`try_read` fails), and gets in only after the writer has been in and out.
#[test]
fn pending_writer_blocks_new_readers() {
    each_procs("pending_writer_blocks_new_readers", |_| {
        let lock = Arc::new(RwMutex::new(Vec::<&str>::new()));
        let first = lock.read();
        let writer = {
            let lock = lock.clone();
            sched::spawn(move || lock.write().push("writer"))
        };
        // The writer has announced itself once new readers are refused.
        wait_until("writer pending", || lock.try_read().is_none());
        let late_reader_in = Arc::new(AtomicBool::new(false));
        let late_reader = {
            let (lock, flag) = (lock.clone(), late_reader_in.clone());
            sched::spawn(move || {
                let g = lock.read();
                flag.store(true, Ordering::SeqCst);
                g.clone()
            })
        };
        for _ in 0..100 {
            sched::yield_now();
        }
        assert!(
            !late_reader_in.load(Ordering::SeqCst),
            "reader overtook a pending writer"
        );
        drop(first);
        writer.join().unwrap();
        assert_eq!(late_reader.join().unwrap(), ["writer"]);
    });
}

/// `try_write` fails with a reader or writer inside; `try_read` fails with a writer inside.
#[test]
fn try_variants() {
    each_procs("try_variants", |_| {
        let lock = RwMutex::new(0);
        {
            let _r = lock.read();
            assert!(lock.try_write().is_none());
            assert!(lock.try_read().is_some());
        }
        {
            let _w = lock.write();
            assert!(lock.try_write().is_none());
            assert!(lock.try_read().is_none());
        }
        *lock.try_write().expect("free") += 1;
        assert_eq!(*lock.try_read().expect("free"), 1);
    });
}
