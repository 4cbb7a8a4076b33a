//! A program that can never finish: gort notices and says so, as Go does.
//!
//! `cargo run --example deadlock` exits with status 2 and prints
//! `fatal error: all goroutines are asleep - deadlock!`.
//!
//! The seeds' classic: two goroutines each wait to receive from the other before sending, so
//! neither ever sends; the main goroutine waits for both.
//!
//! `cargo run --example deadlock -- mutex` is the book's other deadlock (Cox-Buday, "Concurrency
//! in Go", ch. 1, "Deadlock"): `printSum(&a, &b)` and `printSum(&b, &a)` each lock their first
//! value, then wait for the second, which the other holds; all four Coffman conditions hold
//! (mutual exclusion, hold and wait, no preemption, circular wait). The book sleeps 2 s between
//! the two locks to make the interleaving likely; here a `WaitGroup` makes it certain: each
//! takes its second lock only once both hold their first.

use std::sync::Arc;

use gort::sync::{Mutex, WaitGroup};

fn main() {
    match std::env::args().nth(1).as_deref() {
        None | Some("channels") => channels(),
        Some("mutex") => mutexes(),
        Some(other) => panic!("unknown deadlock {other:?}: channels or mutex"),
    }
    println!("unreachable: the program deadlocked");
}

fn channels() {
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
}

fn mutexes() {
    gort::run(|| {
        let a = Arc::new(Mutex::new(1));
        let b = Arc::new(Mutex::new(2));
        let both_hold_one = WaitGroup::new();
        both_hold_one.add(2);
        let print_sum = |v1: Arc<Mutex<i32>>, v2: Arc<Mutex<i32>>, wg: WaitGroup| {
            move || {
                let first = v1.lock();
                wg.done();
                wg.wait(); // the book's time.Sleep(2 * time.Second)
                let second = v2.lock(); // held by the other goroutine, which waits for ours
                println!("sum={}", *first + *second);
            }
        };
        let one = gort::go!(print_sum(a.clone(), b.clone(), both_hold_one.clone()));
        let two = gort::go!(print_sum(b, a, both_hold_one));
        one.join().unwrap();
        two.join().unwrap();
    });
}
