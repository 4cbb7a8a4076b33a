//! The main demo: ten goroutines, spread over the runtime's threads, each reporting where it
//! ran; the main goroutine joins them.
//!
//! `cargo run --release --example hello`

fn main() {
    let lines = gort::run(|| {
        let workers: Vec<_> = (0..10u64)
            .map(|i| {
                gort::Builder::new()
                    .name(format!("worker-{i}"))
                    .spawn(move || {
                        let me = gort::current().expect("inside a goroutine");
                        let sum: u64 = (0..=i * 1_000_000).sum();
                        format!(
                            "{} (goroutine {}) on thread gort-m{}: sum(0..={}) = {sum}",
                            me.name().unwrap_or("?"),
                            me.id(),
                            gort::current_machine_id().unwrap_or(0),
                            i * 1_000_000
                        )
                    })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    for line in lines {
        println!("{line}");
    }
    println!(
        "hello: maxprocs={} goroutines_left={}",
        gort::maxprocs(),
        gort::num_goroutine()
    );
}
