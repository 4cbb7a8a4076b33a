//! The runtime starts lazily, on first use, from a plain thread.
//!
//! Its own test binary, with a single test, so that nothing has touched the runtime before:
//! this pins down that a program needs no set-up call (the first `spawn` from any plain thread
//! starts the runtime), and that a `set_maxprocs` made before that start is honoured by it.

mod common;

#[test]
fn first_spawn_from_a_plain_thread_starts_the_runtime() {
    common::bounded("lazy start", || {
        assert_eq!(gort::num_goroutine(), 0, "nothing has started yet");
        gort::set_maxprocs(3);
        assert_eq!(gort::maxprocs(), 3);

        let first = gort::spawn(|| (gort::current_machine_id().is_some(), gort::maxprocs()));
        assert_eq!(first.join().unwrap(), (true, 3));
        assert_eq!(gort::maxprocs(), 3);

        // Plain threads other than the first one can spawn and join too, concurrently.
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                std::thread::spawn(move || {
                    let handles: Vec<_> = (0..100u64)
                        .map(|i| gort::spawn(move || t * 100 + i))
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
                })
            })
            .collect();
        let sum: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(sum, (0..400).sum::<u64>());
    });
}
