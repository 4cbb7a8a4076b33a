//! The server: one goroutine per connection, keep-alive, Go's four `http.Server` timeouts
//! as deadlines on the connection, and Go's graceful `Shutdown`.
//!
//! A connection's goroutine loops over requests. Each exchange, as Go's `conn.serve` and
//! `readRequest` do it:
//!
//! 1. **Wait for the first byte.** Before the first request the read deadline is the
//!    read-header deadline, counted from the accept; between keep-alive requests it is the
//!    idle deadline, counted from the end of the previous response. An expiry or the peer's
//!    close ends the connection without a word.
//! 2. **Read the head** under the read-header deadline: from the accept for the first request,
//!    from the first byte for later ones (so an idle wait never eats into it). Expiry closes the
//!    connection silently; a malformed head is answered 400, a too large one 431.
//! 3. **Set the read deadline to the read timeout** (head and body, counted from the same
//!    start) and **the write deadline to the write timeout**, counted from the end of the head:
//!    the handler's running time counts against it, as in Go, so a handler slower than the write
//!    timeout sees its response fail and the client sees the connection close with no response.
//! 4. **Read the body** (`Content-Length`), run the handler, write the response, and loop if
//!    both sides keep the connection alive.
//!
//! A zero timeout is off. As in Go, a missing read-header timeout falls back to the read
//! timeout, and a missing idle timeout to the read timeout.
//!
//! Shutdown (Go's `Server.Shutdown`): close the listener, close every connection that waits
//! for a request, let the busy ones finish their exchange (their response says
//! `Connection: close`), and after a grace period close whatever is left.
//!
//! Invariants: every live connection is in `conns`, marked `waiting` exactly while its
//! goroutine waits for the first byte of a request (step 1); `shutting_down` is set under
//! the `conns` lock, in the same critical section that closes the waiting connections, so a
//! connection that marks itself busy under that lock either sees the flag or has not been
//! closed.

use std::collections::HashMap;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::context;
use gort::net::{Shutdown, TcpListener, TcpStream};
use gort::sync::Mutex;

use crate::message::{self, ConnReader, ReadError, Request, Response};

/// A request handler (Go's `http.Handler`): takes the request, returns the whole response.
pub type Handler = Arc<dyn Fn(Request) -> Response + Send + Sync>;

/// Go's `http.Server` timeouts; `None` is off (Go's zero).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    /// `ReadTimeout`: the whole request, head and body, from its start.
    pub read: Option<Duration>,
    /// `ReadHeaderTimeout`: the request head, from its start.
    pub read_header: Option<Duration>,
    /// `WriteTimeout`: from the end of the request head to the end of the response.
    pub write: Option<Duration>,
    /// `IdleTimeout`: the wait for the next request on a keep-alive connection.
    pub idle: Option<Duration>,
}

impl Timeouts {
    /// The read-header timeout in force (Go: `ReadTimeout` if `ReadHeaderTimeout` is zero).
    fn read_header(&self) -> Option<Duration> {
        self.read_header.or(self.read)
    }

    /// The idle timeout in force (Go: `ReadTimeout` if `IdleTimeout` is zero).
    fn idle(&self) -> Option<Duration> {
        self.idle.or(self.read)
    }
}

/// `start + timeout`, or no deadline.
fn deadline(start: Instant, timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| start + t)
}

/// One HTTP/1.1 server: its timeouts, its handler and its live connections.
pub struct Server {
    timeouts: Timeouts,
    handler: Handler,
    conns: Mutex<Conns>,
}

/// The live connections, for shutdown.
#[derive(Default)]
struct Conns {
    next_id: u64,
    by_id: HashMap<u64, Tracked>,
    shutting_down: bool,
}

/// A live connection: a second handle to close it with, and whether it waits for a request.
struct Tracked {
    stream: TcpStream,
    waiting: bool,
}

impl Server {
    /// A server answering with `handler` under `timeouts`.
    pub fn new(timeouts: Timeouts, handler: Handler) -> Arc<Server> {
        Arc::new(Server {
            timeouts,
            handler,
            conns: Mutex::new(Conns::default()),
        })
    }

    /// Accepts connections, one goroutine each, until the listener is closed.
    pub fn serve(self: &Arc<Self>, listener: &TcpListener) {
        loop {
            match listener.accept() {
                Ok((conn, _peer)) => {
                    let accepted_at = Instant::now();
                    let server = Arc::clone(self);
                    gort::go!(move || server.serve_conn(conn, accepted_at));
                }
                // `shutdown` closed the listener.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                // Running out of descriptors is retried inside `accept`; anything else ends
                // the loop, as it ends Go's `Serve`.
                Err(e) => {
                    eprintln!("http_server: accept: {e}");
                    return;
                }
            }
        }
    }

    /// Go's `Shutdown`: closes `listener` and the connections waiting for a request, waits for
    /// the busy ones to finish their exchange, and closes those still open after `grace`.
    /// Returns how many it had to close that way.
    pub fn shutdown(&self, listener: &TcpListener, grace: Duration) -> usize {
        listener.close();
        {
            let mut conns = self.conns.lock();
            conns.shutting_down = true;
            for tracked in conns.by_id.values().filter(|t| t.waiting) {
                tracked.stream.close();
            }
        }
        // Go polls too, from 1 ms doubling to 500 ms; busy exchanges are short here.
        let give_up = Instant::now() + grace;
        let mut pause = Duration::from_millis(1);
        loop {
            {
                let conns = self.conns.lock();
                if conns.by_id.is_empty() {
                    return 0;
                }
                if Instant::now() >= give_up {
                    conns.by_id.values().for_each(|t| t.stream.close());
                    return conns.by_id.len();
                }
            }
            gort::time::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// One connection's goroutine: exchanges until either side ends keep-alive, a timeout
    /// expires, or shutdown.
    fn serve_conn(self: Arc<Self>, conn: TcpStream, accepted_at: Instant) {
        let Some(tracking) = self.track(&conn) else {
            return; // shutting down: dropping `conn` closes it
        };
        let mut reader = ConnReader::default();
        let mut first = true;
        loop {
            // Step 1: wait for a request's first byte.
            if !tracking.set_waiting(true) {
                return;
            }
            let wait_limit = if first {
                deadline(accepted_at, self.timeouts.read_header())
            } else {
                deadline(Instant::now(), self.timeouts.idle())
            };
            conn.set_read_deadline(wait_limit);
            if reader.wait_for_bytes(&conn).is_err() || !tracking.set_waiting(false) {
                return;
            }
            // Later requests count their head and body from their first byte.
            let start = if first { accepted_at } else { Instant::now() };
            match self.exchange(&conn, &mut reader, start) {
                Ok(true) => first = false,
                Ok(false) | Err(_) => return,
            }
        }
    }

    /// Steps 2 to 4 for one request whose first byte is buffered. Returns whether the
    /// connection stays open for another.
    fn exchange(
        &self,
        conn: &TcpStream,
        reader: &mut ConnReader,
        start: Instant,
    ) -> io::Result<bool> {
        conn.set_read_deadline(deadline(start, self.timeouts.read_header()));
        let head = match reader.read_head(conn) {
            Ok(head) => head,
            Err(e) => return refuse(conn, e),
        };
        conn.set_read_deadline(deadline(start, self.timeouts.read));
        conn.set_write_deadline(deadline(Instant::now(), self.timeouts.write));
        let body_len = match head.body_len() {
            Ok(len) => len,
            Err(e) => return refuse(conn, e),
        };
        if body_len > 0 && head.expects_continue() {
            message::write_continue(conn)?;
        }
        let body = reader.read_body(conn, body_len)?;

        let (minor_version, with_body) = (head.minor_version, head.method != "HEAD");
        let keep_alive = head.keep_alive();
        // Go's request context: cancelled when the handler returns (dropping `_cancel`).
        let (ctx, _cancel) = context::with_cancel(&context::background());
        let request = head.into_request(body, ctx);
        let handler = &self.handler;
        let response = match panic::catch_unwind(AssertUnwindSafe(|| handler(request))) {
            Ok(response) => response,
            // As Go's server: the panic was reported (by the panic hook); drop the connection.
            Err(_) => {
                eprintln!("http_server: handler panicked; closing its connection");
                return Ok(false);
            }
        };
        let keep_alive = keep_alive && !self.conns.lock().shutting_down;
        message::write_response(conn, &response, minor_version, keep_alive, with_body)?;
        Ok(keep_alive)
    }

    /// Registers `conn`; `None` if the server is shutting down.
    fn track(self: &Arc<Self>, conn: &TcpStream) -> Option<Tracking> {
        let stream = conn.try_clone().ok()?;
        let mut conns = self.conns.lock();
        if conns.shutting_down {
            return None;
        }
        let id = conns.next_id;
        conns.next_id += 1;
        let waiting = false;
        conns.by_id.insert(id, Tracked { stream, waiting });
        Some(Tracking {
            server: Arc::clone(self),
            id,
        })
    }
}

/// Answers a request that could not be read with `status` (nothing for an I/O error or a
/// timeout, as Go's server), and ends the connection.
fn refuse(conn: &TcpStream, error: ReadError) -> io::Result<bool> {
    if let ReadError::Refused(status, why) = error {
        message::write_response(conn, &Response::text(status, why), 1, false, true)?;
    }
    Ok(false)
}

/// A connection's entry in `Server::conns`, for its goroutine's lifetime. Dropping it removes
/// the entry and closes the connection for every handle.
struct Tracking {
    server: Arc<Server>,
    id: u64,
}

impl Tracking {
    /// Marks the connection as waiting for a request or busy with one. Returns false if the
    /// server is shutting down and the connection should end: it will not wait for another
    /// request, and a connection that was waiting has been closed.
    fn set_waiting(&self, waiting: bool) -> bool {
        let mut conns = self.server.conns.lock();
        if conns.shutting_down {
            return false;
        }
        if let Some(t) = conns.by_id.get_mut(&self.id) {
            t.waiting = waiting;
        }
        true
    }
}

impl Drop for Tracking {
    fn drop(&mut self) {
        let tracked = self.server.conns.lock().by_id.remove(&self.id);
        if let Some(t) = tracked {
            // Half-close first, as Go does after a last response: the peer reads the response
            // and then the end of the stream.
            let _ = t.stream.shutdown(Shutdown::Write);
            t.stream.close();
        }
    }
}
