//! A runtime-free echo server on mio, for benches/echo_side_by_side.sh: the floor of what an
//! echo server can cost on this machine, against which gort's, Go's and tokio's are read. No
//! scheduler, no tasks, no wake-ups between threads: each of `WORKERS` threads (default 1) owns
//! an epoll instance and the connections it was given, reads what is ready, writes it back, and
//! blocks in `epoll_wait` when nothing is. Thread 0 also accepts, and deals the connections out
//! round-robin (a channel and the worker's `mio::Waker`).
//!
//! `cargo run --release -p gort-benches --example echo_mio -- 127.0.0.1:7882`
//! Same protocol as the other servers: echo every byte back; a connection ends at EOF or error.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::mpsc;
use std::sync::Arc;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

/// A worker's inbox: connections dealt to it, and the waker that ends its `epoll_wait`.
struct Inbox {
    conns: mpsc::Sender<TcpStream>,
    waker: Arc<Waker>,
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7882".into());
    let workers: usize = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1)
        .max(1);
    let listener = TcpListener::bind(addr.parse().map_err(io::Error::other)?)?;
    let mut inboxes = Vec::new();
    let mut handles = Vec::new();
    for _ in 1..workers {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = mpsc::channel();
        inboxes.push(Inbox { conns: tx, waker });
        handles.push(std::thread::spawn(move || {
            serve(poll, None, rx, Vec::new())
        }));
    }
    let (_tx, rx) = mpsc::channel();
    serve(Poll::new()?, Some(listener), rx, inboxes)?;
    for h in handles {
        h.join().expect("worker panicked")?;
    }
    Ok(())
}

/// One worker's loop. With `listener`, it also accepts and deals connections to `others` and
/// itself in turn.
fn serve(
    mut poll: Poll,
    mut listener: Option<TcpListener>,
    inbox: mpsc::Receiver<TcpStream>,
    others: Vec<Inbox>,
) -> io::Result<()> {
    if let Some(l) = listener.as_mut() {
        poll.registry().register(l, LISTENER, Interest::READABLE)?;
    }
    let mut conns: HashMap<usize, TcpStream> = HashMap::new();
    let mut next_token = 0usize;
    let mut turn = 0usize;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 4096];
    loop {
        poll.poll(&mut events, None)?;
        for ev in events.iter() {
            match ev.token() {
                LISTENER => {
                    let l = listener.as_ref().expect("only thread 0 listens");
                    while let Ok((conn, _)) = l.accept() {
                        let _ = conn.set_nodelay(true);
                        turn = (turn + 1) % (others.len() + 1);
                        if turn == others.len() {
                            add(&poll, &mut conns, &mut next_token, conn)?;
                        } else {
                            let _ = others[turn].conns.send(conn);
                            others[turn].waker.wake()?;
                        }
                    }
                }
                WAKER => {
                    while let Ok(conn) = inbox.try_recv() {
                        add(&poll, &mut conns, &mut next_token, conn)?;
                    }
                }
                Token(t) => {
                    if !echo(conns.get_mut(&t).expect("registered"), &mut buf) {
                        let mut conn = conns.remove(&t).expect("registered");
                        poll.registry().deregister(&mut conn)?;
                    }
                }
            }
        }
    }
}

fn add(
    poll: &Poll,
    conns: &mut HashMap<usize, TcpStream>,
    next_token: &mut usize,
    mut conn: TcpStream,
) -> io::Result<()> {
    let t = *next_token;
    *next_token += 1;
    poll.registry()
        .register(&mut conn, Token(t), Interest::READABLE)?;
    conns.insert(t, conn);
    // Bytes may have arrived before the registration: epoll reports them (edge on register).
    Ok(())
}

/// Echoes what is readable, one `recvfrom` a message; false when the connection is over. The peer sends one small
/// message at a time and waits for it, so a write that would block does not happen in this
/// benchmark's protocol; if it did, this server would end the connection rather than buffer.
fn echo(conn: &mut TcpStream, buf: &mut [u8]) -> bool {
    loop {
        match conn.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return false;
                }
                // A short read emptied the socket: the next bytes bring a new edge. (gort's
                // and tokio's servers skip the read that would say `WouldBlock` the same way.)
                if n < buf.len() {
                    return true;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}
