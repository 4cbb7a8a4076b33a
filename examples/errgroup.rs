//! Pattern: a group of goroutines with error propagation (Go's `golang.org/x/sync/errgroup`,
//! the packaged form of Cox-Buday's "Error Handling", ch. 4: hand errors to the goroutine that
//! has the whole picture, and let it stop the rest).
//!
//! Go's idea: `g, ctx := errgroup.WithContext(parent)` starts the parts of one task with
//! `g.Go(func() error {...})`; the first part to return an error cancels `ctx`, so the other
//! parts, selecting on `ctx.Done()`, stop early; `g.Wait()` waits for all of them and returns
//! that first error. `g.SetLimit(n)` bounds how many parts run at once (`Go` blocks until one
//! finishes).
//!
//! gort's `errgroup::Group` is the same: `Group::with_context(&ctx)`, `go`, `wait`,
//! `set_limit`; the parts park on `select!` over `ctx.done()`.
//!
//! Prints the error `wait` returned when one of five simulated fetches fails (the other four
//! were cancelled, not left to finish their 60 s), then how many of twenty parts ran at once
//! under a limit of 2.
//!
//! `cargo run --example errgroup`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::context::{self, Context};
use gort::errgroup::Group;

/// A fetch that takes `load`, unless `ctx` ends first; fetch 3 fails at once.
fn fetch(ctx: &Context, id: usize, load: Duration, cancelled: &AtomicUsize) -> Result<(), String> {
    if id == 3 {
        return Err(format!("fetch #{id} failed: connection refused"));
    }
    gort::select! {
        recv(ctx.done()) -> _ => {
            cancelled.fetch_add(1, Ordering::SeqCst);
            Err(ctx.err().expect("done fired").to_string())
        },
        recv(gort::time::after(load)) -> _ => Ok(()),
    }
}

fn main() {
    gort::run(|| {
        // The first error cancels the others; wait returns it.
        let start = Instant::now();
        let (group, ctx) = Group::with_context(&context::background());
        let cancelled = Arc::new(AtomicUsize::new(0));
        for id in 0..5 {
            let (ctx, cancelled) = (ctx.clone(), cancelled.clone());
            group.go(move || fetch(&ctx, id, Duration::from_secs(60), &cancelled));
        }
        let err = group.wait().unwrap_err();
        assert_eq!(err, "fetch #3 failed: connection refused");
        assert_eq!(cancelled.load(Ordering::SeqCst), 4);
        assert!(start.elapsed() < Duration::from_secs(60));
        println!("errgroup: wait returned the first error: {err}");
        println!(
            "errgroup: the other 4 fetches saw the group's context cancelled and stopped early"
        );

        // A limit: at most 2 parts run at once; `go` parks while 2 are running.
        let group = Group::<String>::new();
        group.set_limit(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        for _ in 0..20 {
            let (running, most) = (running.clone(), most.clone());
            group.go(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                gort::time::sleep(Duration::from_millis(1));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            });
        }
        group.wait().expect("no part fails");
        let most = most.load(Ordering::SeqCst);
        assert!(most <= 2);
        println!("errgroup: 20 parts under set_limit(2): at most {most} ran at once");
    });
}
