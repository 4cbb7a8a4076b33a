//! A program that can never finish: gort notices and says so, as Go does.
//!
//! `cargo run --example deadlock` exits with status 2 and prints
//! `fatal error: all goroutines are asleep - deadlock!`.
//!
//! The main goroutine waits for a worker that waits for a wake-up nobody will ever send.
//! (With channels this is the classic `<-ch` on a channel nobody sends on.)

fn main() {
    gort::run(|| {
        let worker = gort::Builder::new().name("waits-forever").spawn(|| {
            // Nobody keeps this goroutine's Unparker: no one can ever wake it.
            gort::park();
            // A stray token could end the first park; the loop makes the wait truly endless.
            loop {
                gort::park();
            }
        });
        worker.join().unwrap();
    });
    println!("unreachable: the program deadlocked");
}
