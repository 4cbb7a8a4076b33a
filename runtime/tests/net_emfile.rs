//! `accept` survives running out of file descriptors, and says so once per episode: while the
//! process is at its `RLIMIT_NOFILE`, a pending connection cannot be accepted (`EMFILE`); the
//! accept loop backs off and retries instead of failing, the listener's stall hook hears one
//! `Began` (with the listener, the error and the limits) and, once a descriptor is freed and
//! the connection accepted, one `Ended` (with the episode's length and retries). Two episodes
//! in a row, to see that each is reported on its own. Alone in its binary: it lowers the
//! process's descriptor limit.
//!
//! That an episode of many failures is reported exactly once with the exact number of retries
//! is checked with scripted failures in `runtime/src/net/accept.rs`; here the failures are
//! real and their number depends on timing.

mod common;

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gort::net::{AcceptStall, TcpListener};

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

/// A TCP socket, not connected yet (its descriptor taken before the table is filled).
fn unconnected_socket() -> OwnedFd {
    // SAFETY: socket(2) has no memory preconditions; a negative result is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Connects `socket` (blocking) to the IPv4 `addr`; needs no new descriptor.
fn connect(socket: OwnedFd, addr: SocketAddr) -> std::net::TcpStream {
    let SocketAddr::V4(v4) = addr else {
        panic!("the listener is bound to IPv4")
    };
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(v4.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `sa` is a valid `sockaddr_in` of `len` bytes that outlives the call, and the
    // descriptor is open (owned by `socket`).
    let rc = unsafe { libc::connect(socket.as_raw_fd(), (&raw const sa).cast(), len) };
    assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
    std::net::TcpStream::from(socket)
}

/// The fields of an [`AcceptStall`] the test checks (the event itself holds an `io::Error`,
/// which is not `Clone`).
#[derive(Debug, PartialEq)]
enum Seen {
    Began {
        listener: String,
        errno: Option<i32>,
        nofile: Option<(u64, u64)>,
    },
    Ended {
        listener: String,
        retries: u32,
        lasted: Duration,
        recovered: bool,
    },
}

impl From<&AcceptStall> for Seen {
    fn from(s: &AcceptStall) -> Seen {
        match s {
            AcceptStall::Began {
                listener,
                error,
                nofile,
                ..
            } => Seen::Began {
                listener: listener.clone(),
                errno: error.raw_os_error(),
                nofile: *nofile,
            },
            AcceptStall::Ended {
                listener,
                retries,
                lasted,
                recovered,
                ..
            } => Seen::Ended {
                listener: listener.clone(),
                retries: *retries,
                lasted: *lasted,
                recovered: *recovered,
            },
            other => panic!("unknown stall event {other:?}"),
        }
    }
}

/// How long each episode is kept going before a descriptor is freed.
const STALL: Duration = Duration::from_millis(300);

#[test]
fn accept_backs_off_on_emfile_reports_each_episode_once_and_recovers() {
    common::bounded("accept_backs_off_on_emfile", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (events_tx, events) = mpsc::channel::<String>();
        let (stalls_tx, stalls) = mpsc::channel::<Seen>();
        listener.on_accept_stall(move |s| {
            events_tx.send(s.to_string()).unwrap();
            stalls_tx.send(Seen::from(s)).unwrap();
        });
        let saved = nofile();
        let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
        let lowered = open_now + 16;
        set_nofile(libc::rlimit {
            rlim_cur: lowered,
            rlim_max: saved.rlim_max,
        });
        let listener = std::sync::Arc::new(listener);
        for episode in 1..=2 {
            // Make the client's socket, fill the table, connect, and only then start the
            // acceptor: the pending connection can only be accepted once something else is
            // closed. (Freeing one descriptor for the client after filling the table raced the
            // runtime's own short-lived opens of /proc files. Starting the acceptor first
            // raced its own accept: accept(2) reserves the new descriptor before it looks at
            // the queue, so an accept finding nothing pending held a slot for a moment, the
            // table looked full with that slot taken, and the connection was accepted into it
            // without a stall: 1 run in 40 on 2 busy CPUs.)
            let client = unconnected_socket();
            let mut held = exhaust_descriptors();
            let client = connect(client, addr);
            let l = listener.clone();
            let acceptor = gort::go!(move || {
                let r = l.accept().map(|(s, _)| s.peer_addr().unwrap());
                (r, Instant::now())
            });
            let began = stalls.recv_timeout(common::DEADLINE).unwrap();
            let began_at = Instant::now();
            assert_eq!(
                began,
                Seen::Began {
                    listener: format!("tcp {addr}"),
                    errno: Some(libc::EMFILE),
                    nofile: Some((lowered, saved.rlim_max)),
                },
                "episode {episode}"
            );
            std::thread::sleep(STALL);
            assert!(
                !acceptor.is_finished(),
                "episode {episode}: accept returned while the process had no free descriptor"
            );
            let freed = Instant::now();
            held.truncate(held.len().saturating_sub(8));
            let (r, accepted) = acceptor.join().unwrap();
            drop(held);
            assert_eq!(r.unwrap(), client.local_addr().unwrap());
            let took = accepted - freed;
            // The pause doubles from 5 ms; after 300 ms of retries it is at most ~320 ms.
            assert!(
                took < Duration::from_secs(2),
                "episode {episode}: accept recovered late: {took:?}"
            );
            match stalls.recv_timeout(common::DEADLINE).unwrap() {
                Seen::Ended {
                    listener,
                    retries,
                    lasted,
                    recovered,
                } => {
                    assert_eq!(listener, format!("tcp {addr}"));
                    assert!(recovered, "episode {episode}");
                    assert!(retries >= 1, "episode {episode}: {retries} retries");
                    // It began before we heard of it and ended after we freed descriptors.
                    assert!(
                        lasted >= freed - began_at,
                        "episode {episode}: lasted {lasted:?}, stalled for {:?}",
                        freed - began_at
                    );
                }
                other => panic!("episode {episode}: expected Ended, got {other:?}"),
            }
        }
        set_nofile(saved);
        // Exactly one line at the start and one at the end of each episode, nothing else.
        let lines: Vec<String> = events.try_iter().collect();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        for (i, line) in lines.iter().enumerate() {
            assert!(line.starts_with(&format!("accept tcp {addr}: ")), "{line}");
            if i % 2 == 0 {
                assert!(line.contains("(os error 24)"), "{line}");
                assert!(
                    line.contains(&format!("RLIMIT_NOFILE is {lowered} (soft)")),
                    "{line}"
                );
                assert!(line.contains("ulimit -n"), "{line}");
            } else {
                assert!(line.contains(": recovered after "), "{line}");
            }
            eprintln!("{line}");
        }
        assert!(stalls.try_recv().is_err());
    });
}
