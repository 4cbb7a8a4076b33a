//! A goroutine that recurses without bound: gort reports which one overflowed and aborts.
//!
//! `cargo run --example stack_overflow` exits non-zero; stderr says
//! `goroutine N (recurse) stack overflow: its stack is 64 KiB; raise it with ...`.

fn depth(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 64]);
    if n == u64::MAX {
        return 0;
    }
    frame[(n % 64) as usize] + depth(n + 1)
}

fn main() {
    gort::run(|| {
        let h = gort::Builder::new()
            .name("recurse")
            .stack_size(64 * 1024)
            .spawn(|| depth(0));
        println!("unreachable: {}", h.join().unwrap());
    });
}
