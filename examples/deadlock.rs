//! A program that can never finish: gort notices and says so, as Go does.
//!
//! `cargo run --example deadlock` exits with status 2 and prints
//! `fatal error: all goroutines are asleep - deadlock!`.
//!
//! The seeds' classic: two goroutines each wait to receive from the other before sending, so
//! neither ever sends; the main goroutine waits for both.

fn main() {
    gort::run(|| {
        let (to_a, from_b) = gort::chan::<&str>(0);
        let (to_b, from_a) = gort::chan::<&str>(0);
        let a = gort::Builder::new().name("a").spawn(move || {
            let msg = from_b.recv(); // waits for b, which waits for us
            to_b.send("hello from a").ok();
            msg
        });
        let b = gort::Builder::new().name("b").spawn(move || {
            let msg = from_a.recv(); // waits for a, which waits for us
            to_a.send("hello from b").ok();
            msg
        });
        println!("{:?} {:?}", a.join().unwrap(), b.join().unwrap());
    });
    println!("unreachable: the program deadlocked");
}
