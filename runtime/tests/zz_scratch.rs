mod common;
#[test]
fn t() {
    common::each_procs("g", |_| {
        let leftover = gort::run(move || {
            let mine = gort::num_goroutine();
            for round in 0..100_000 {
                gort::spawn(|| ()).join().unwrap();
                let now = gort::num_goroutine();
                if now != mine {
                    return Some((round, now - mine));
                }
            }
            None
        });
        assert_eq!(leftover, None);
    });
}
