//! `gort::net` failure paths: timeouts and deadlines fire on time, closing wakes whoever is
//! blocked (goroutine or plain thread, reader or acceptor), a refused connect and a reset
//! peer are plain `io::Error`s. Each scenario runs at GORT_MAXPROCS 1, 2 and 4, bounded in
//! time (see `common`).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use gort::net::{TcpListener, TcpStream, UdpSocket, UnixStream};

/// Slack allowed past a timeout on a loaded CI machine.
const LATE: Duration = Duration::from_secs(2);

/// A connected pair: (client, server side), both idle.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

fn is_timeout(kind: ErrorKind) -> bool {
    // std reports WouldBlock on Unix; gort reports TimedOut (Go's "i/o timeout").
    matches!(kind, ErrorKind::TimedOut | ErrorKind::WouldBlock)
}

/// Runs `f` in a goroutine and on a plain thread.
fn both_ways(f: fn()) {
    gort::go!(f).join().unwrap();
    std::thread::spawn(f).join().unwrap();
}

#[test]
fn read_timeout_fires_within_bounds() {
    common::each_procs("read_timeout_fires", |_| {
        both_ways(|| {
            let (mut c, _s) = tcp_pair();
            c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(50)));
            let start = Instant::now();
            let err = c.read(&mut [0u8; 8]).unwrap_err();
            let took = start.elapsed();
            assert!(is_timeout(err.kind()), "{err}");
            assert!(took >= Duration::from_millis(50), "early: {took:?}");
            assert!(took < Duration::from_millis(50) + LATE, "late: {took:?}");
        });
    });
}

#[test]
fn zero_timeout_is_rejected() {
    let (c, _s) = tcp_pair();
    let err = c.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn data_within_the_timeout_is_read() {
    common::each_procs("data_within_the_timeout", |_| {
        let (mut c, mut s) = tcp_pair();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let writer = gort::go!(move || {
            gort::time::sleep(Duration::from_millis(20));
            s.write_all(b"late but in time").unwrap();
            s
        });
        let mut buf = [0u8; 16];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late but in time");
        drop(writer.join().unwrap());
    });
}

#[test]
fn write_timeout_fires_when_the_peer_does_not_read() {
    common::each_procs("write_timeout_fires", |_| {
        gort::go!(|| {
            let (mut c, _s) = tcp_pair();
            c.set_write_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let chunk = vec![0u8; 64 * 1024];
            let start = Instant::now();
            let err = loop {
                // Fills both socket buffers, then waits and times out.
                if let Err(e) = c.write(&chunk) {
                    break e;
                }
                assert!(
                    start.elapsed() < LATE * 5,
                    "the peer's buffers never filled"
                );
            };
            assert!(is_timeout(err.kind()), "{err}");
        })
        .join()
        .unwrap();
    });
}

#[test]
fn read_deadline_fires_and_can_be_moved() {
    common::each_procs("read_deadline", |_| {
        let (c, _s) = tcp_pair();
        let c = std::sync::Arc::new(c);
        // A deadline set while the reader waits takes effect at once.
        let c2 = c.clone();
        let reader = gort::go!(move || {
            let err = (&*c2).read(&mut [0u8; 1]).unwrap_err();
            (err.kind(), Instant::now())
        });
        gort::time::sleep(Duration::from_millis(20));
        let deadline = Instant::now() + Duration::from_millis(30);
        c.set_read_deadline(Some(deadline));
        let (kind, failed_at) = reader.join().unwrap();
        assert_eq!(kind, ErrorKind::TimedOut);
        // Measured against the deadline itself: the reader may start late, never fail early.
        assert!(failed_at >= deadline, "early by {:?}", deadline - failed_at);
        assert!(
            failed_at < deadline + LATE,
            "late by {:?}",
            failed_at - deadline
        );
        // Past the deadline every read fails at once; clearing it restores reads.
        let err = (&*c).read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        c.set_read_deadline(None);
        c.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let err = (&*c).read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn connect_timeout_rejects_zero_and_connects() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    assert_eq!(
        TcpStream::connect_timeout(&addr, Duration::ZERO)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    assert_eq!(c.peer_addr().unwrap(), addr);
    assert!(
        c.nodelay().unwrap(),
        "TCP_NODELAY is on by default, as in Go"
    );
}

#[test]
fn closing_a_clone_wakes_a_blocked_reader() {
    common::each_procs("close_wakes_reader", |_| {
        // Goroutine reader.
        let (c, _s) = tcp_pair();
        let reader = c.try_clone().unwrap();
        let blocked = gort::go!(move || (&reader).read(&mut [0u8; 8]));
        gort::time::sleep(Duration::from_millis(20));
        let start = Instant::now();
        c.close();
        let err = blocked.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotConnected);
        assert!(start.elapsed() < LATE);

        // Plain-thread reader (blocked in poll(2), woken by the shutdown).
        let (c, _s) = tcp_pair();
        let reader = c.try_clone().unwrap();
        let blocked = std::thread::spawn(move || (&reader).read(&mut [0u8; 8]));
        std::thread::sleep(Duration::from_millis(20));
        c.close();
        let err = blocked.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotConnected);

        // Dropping a clone, as with std, leaves the other handle working.
        let (c, mut s) = tcp_pair();
        let reader = c.try_clone().unwrap();
        drop(c);
        s.write_all(b"ok").unwrap();
        let mut buf = [0u8; 2];
        (&reader).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
    });
}

#[test]
fn closing_wakes_acceptors_receivers_and_unix_readers() {
    common::each_procs("close_wakes_everyone", |_| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let l2 = l.try_clone().unwrap();
        let acceptor = gort::go!(move || l2.accept().map(|_| ()));
        let thread_acceptor = {
            let l3 = l.try_clone().unwrap();
            std::thread::spawn(move || l3.accept().map(|_| ()))
        };
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let u2 = u.try_clone().unwrap();
        let receiver = gort::go!(move || u2.recv_from(&mut [0u8; 8]).map(|_| ()));
        let (a, _b) = UnixStream::pair().unwrap();
        let a2 = a.try_clone().unwrap();
        let unix_reader = gort::go!(move || (&a2).read(&mut [0u8; 8]).map(|_| ()));
        gort::time::sleep(Duration::from_millis(20));
        l.close();
        u.close();
        a.close();
        for r in [
            acceptor.join().unwrap(),
            thread_acceptor.join().unwrap(),
            receiver.join().unwrap(),
            unix_reader.join().unwrap(),
        ] {
            assert_eq!(r.unwrap_err().kind(), ErrorKind::NotConnected);
        }
        // Closed stays closed.
        assert_eq!(
            (&a).write(b"x").unwrap_err().kind(),
            ErrorKind::NotConnected
        );
    });
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    common::each_procs("connect_refused", |_| {
        both_ways(|| {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            let err = TcpStream::connect(port).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        });
    });
}

#[test]
fn peer_reset_is_an_error_not_a_crash() {
    common::each_procs("peer_reset", |_| {
        gort::go!(|| {
            let (c, s) = tcp_pair();
            // Shared through an Arc, not try_clone: the reader's handle ending must not
            // close the connection under the writer below.
            let c = std::sync::Arc::new(c);
            let reader = c.clone();
            let blocked = gort::go!(move || {
                let mut buf = [0u8; 8];
                (&*reader).read(&mut buf)
            });
            gort::time::sleep(Duration::from_millis(20));
            common::linger_zero(&s);
            drop(s); // RST
            let r = blocked.join().unwrap();
            assert_eq!(
                r.unwrap_err().kind(),
                ErrorKind::ConnectionReset,
                "a blocked reader sees the reset"
            );
            // Writes to a reset connection fail; they do not kill the process with SIGPIPE.
            let err = loop {
                if let Err(e) = (&*c).write(&[0u8; 1024]) {
                    break e;
                }
            };
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                ),
                "{err}"
            );
        })
        .join()
        .unwrap();
    });
}

#[test]
fn operations_after_close_fail_cleanly() {
    let (c, _s) = tcp_pair();
    c.close();
    c.close(); // idempotent
    assert_eq!(
        (&c).read(&mut [0u8; 1]).unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    assert_eq!(
        (&c).write(b"x").unwrap_err().kind(),
        ErrorKind::NotConnected
    );
}
