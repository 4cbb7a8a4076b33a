//! `accept` survives running out of file descriptors: while the process is at its
//! `RLIMIT_NOFILE`, a pending connection cannot be accepted (`EMFILE`), and the accept loop
//! backs off and retries instead of failing; once a descriptor is freed the connection is
//! accepted. Alone in its binary: it lowers the process's descriptor limit.

mod common;

use std::fs::File;
use std::time::{Duration, Instant};

use gort::net::TcpListener;

fn nofile() -> libc::rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the live local we pass.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim
}

fn set_nofile(lim: libc::rlimit) {
    // SAFETY: setrlimit reads one rlimit from the live local we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

/// Opens descriptors until the limit refuses one; returns them.
fn exhaust_descriptors() -> Vec<File> {
    let mut held = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return held,
            Err(e) => panic!("unexpected error while filling the descriptor table: {e}"),
        }
    }
}

#[test]
fn accept_backs_off_on_emfile_and_recovers() {
    common::bounded("accept_backs_off_on_emfile", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = gort::go!(move || {
            let r = listener.accept().map(|(s, _)| s.peer_addr().unwrap());
            (r, Instant::now())
        });
        let saved = nofile();
        let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
        set_nofile(libc::rlimit {
            rlim_cur: open_now + 16,
            rlim_max: saved.rlim_max,
        });
        // Fill the table, then spend the last free descriptor on the client: the pending
        // connection can only be accepted once something else is closed.
        let mut held = exhaust_descriptors();
        held.pop();
        let client = std::net::TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !acceptor.is_finished(),
            "accept returned while the process had no free descriptor"
        );
        let freed = Instant::now();
        held.truncate(held.len().saturating_sub(8));
        let (r, accepted) = acceptor.join().unwrap();
        set_nofile(saved);
        drop(held);
        assert_eq!(r.unwrap(), client.local_addr().unwrap());
        let took = accepted - freed;
        // The pause doubles from 5 ms; after 300 ms of retries it is at most ~320 ms.
        assert!(
            took < Duration::from_secs(2),
            "accept recovered late: {took:?}"
        );
        eprintln!("accept recovered {took:?} after descriptors were freed");
    });
}
