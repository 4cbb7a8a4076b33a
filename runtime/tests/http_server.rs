//! The HTTP/1.1 server example (`examples/http_server.rs`), driven from outside as its clients
//! would: the test starts the example's binary (building it first, so it is never stale) and
//! talks to it over std `TcpStream`s, parsing replies with `httparse`. Covered: keep-alive and
//! pipelining, each of Go's four server timeouts (read-header against a client that sends one
//! byte a second, read, write, idle), the timeout handler's 503, a POST echo (with
//! `Expect: 100-continue`), refusals, graceful shutdown, 1,000 concurrent keep-alive
//! connections with 0 errors, and `curl` (skipped with a note where it is missing).
//!
//! Every scenario runs at GORT_MAXPROCS 1, 2 and 4 (the server's, through its environment),
//! bounded in time (`common::bounded`); every client socket has a read timeout, and every
//! server is started with `--exit-after`, so a failure never leaves a process behind for long.
//! The timing checks are of behaviour, not speed: a timeout may not fire before its time, and
//! must fire within a generous bound after it.

mod common;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

/// How long a client waits for any one read before the scenario fails.
const CLIENT_WAIT: Duration = Duration::from_secs(10);
/// Slack allowed after a timeout's expiry for the connection to be seen closed.
const SLACK: Duration = Duration::from_secs(5);
/// Connections held open at once in the load scenario.
const LOAD_CONNS: usize = 1_000;
/// Requests each of them makes.
const LOAD_REQUESTS: usize = 5;

/// The example's binary, built (or found up to date) once per test process.
fn example_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // This test is <target>/<profile>/deps/http_server-<hash>; the example goes to
        // <target>/<profile>/examples/http_server.
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe.parent().and_then(|d| d.parent()).expect("profile dir");
        let target_dir = profile_dir.parent().expect("target dir");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(other) => other,
            None => panic!("no profile in {}", exe.display()),
        };
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "gort", "--example", "http_server"])
            .args(["--profile", profile])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            .status()
            .expect("run cargo build --example http_server");
        assert!(status.success(), "cargo build --example http_server failed");
        profile_dir.join("examples").join("http_server")
    })
}

/// A running example server; dropping it kills the process.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
}

impl Server {
    /// Starts the example at `procs` with `flags` (after defaults: a free port, and an exit
    /// after two minutes whatever happens) and waits for its address.
    fn start(procs: usize, flags: &[&str]) -> Server {
        let mut command = Command::new(example_binary());
        command
            .args(["--addr", "127.0.0.1:0", "--exit-after", "120s"])
            .args(flags)
            .env("GORT_MAXPROCS", procs.to_string())
            .stdout(Stdio::piped());
        if common::migrating() {
            command.env("GORT_BENCH_MIGRATE", "1");
        }
        let mut child = command.spawn().expect("start the http_server example");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in the server's first line: {line:?}"));
        Server {
            child,
            stdout,
            addr,
        }
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Waits (bounded) for the process to exit by itself; returns the rest of its stdout.
    fn wait_exit(mut self) -> String {
        let give_up = Instant::now() + CLIENT_WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                assert!(status.success(), "server exited with {status}");
                let mut rest = String::new();
                self.stdout.read_to_string(&mut rest).expect("read stdout");
                return rest;
            }
            assert!(Instant::now() < give_up, "server still running");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One parsed reply.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        found.next().map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }
}

/// A client connection: a std socket and the bytes received but not yet parsed.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr).expect("connect")
    }

    fn try_connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(CLIENT_WAIT))?;
        stream.set_write_timeout(Some(CLIENT_WAIT))?;
        Ok(Client {
            stream,
            buf: Vec::new(),
        })
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    fn get(&mut self, path: &str) -> io::Result<Reply> {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())?;
        self.reply()
    }

    fn post(&mut self, path: &str, body: &[u8]) -> io::Result<Reply> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-test\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        self.send(&[head.as_bytes(), body].concat())?;
        self.reply()
    }

    /// Reads one reply (head parsed by `httparse`, body by `Content-Length`).
    fn reply(&mut self) -> io::Result<Reply> {
        loop {
            let mut fields = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut fields);
            let status = parsed.parse(&self.buf).map_err(io::Error::other)?;
            if let httparse::Status::Complete(head_len) = status {
                let headers: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).into_owned();
                        (h.name.to_string(), value)
                    })
                    .collect();
                let mut reply = Reply {
                    status: parsed.code.unwrap_or_default(),
                    headers,
                    body: Vec::new(),
                };
                let body_len: usize = reply
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                self.buf.drain(..head_len);
                while self.buf.len() < body_len {
                    self.fill()?;
                }
                reply.body = self.buf.drain(..body_len).collect();
                return Ok(reply);
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk)? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }

    /// Waits for the server to close the connection without sending anything more; panics
    /// if it sends bytes or stays open past the client's wait.
    fn expect_closed(&mut self, what: &str) {
        assert!(self.buf.is_empty(), "{what}: unread bytes {:?}", self.buf);
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Ok(_) => panic!("{what}: the server sent data instead of closing"),
            Err(e) => panic!("{what}: connection not closed: {e}"),
        }
    }
}

/// Runs `scenario` at each processor count, bounded in time.
fn each_procs(name: &str, scenario: fn(usize)) {
    for procs in common::procs() {
        common::bounded(&format!("{name} at GORT_MAXPROCS={procs}"), move || {
            scenario(procs)
        });
    }
}

/// Sends `bytes` on `c` one at a time, `every` apart, from a thread of its own; the thread
/// returns true if all went through, false once a write fails (the server hung up, or the
/// test shut the socket down).
fn drip(c: &Client, bytes: &'static [u8], every: Duration) -> std::thread::JoinHandle<bool> {
    let mut stream = c.stream.try_clone().unwrap();
    std::thread::spawn(move || {
        for byte in bytes {
            if stream.write_all(&[*byte]).is_err() {
                return false;
            }
            std::thread::sleep(every);
        }
        true
    })
}

/// Asserts `elapsed` is at least `timeout` and at most `timeout` plus [`SLACK`].
fn assert_fired(what: &str, elapsed: Duration, timeout: Duration) {
    assert!(
        elapsed >= timeout,
        "{what}: fired after {elapsed:?}, before {timeout:?}"
    );
    assert!(
        elapsed <= timeout + SLACK,
        "{what}: fired only after {elapsed:?}"
    );
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    each_procs("keep_alive", |procs| {
        let server = Server::start(procs, &[]);
        let mut c = server.connect();
        for _ in 0..2 {
            let reply = c.get("/").unwrap();
            assert_eq!((reply.status, reply.text()), (200, "hello from gort\n"));
            assert_eq!(reply.header("connection"), None, "HTTP/1.1 keeps alive");
        }
        // Pipelined: two requests in one write, two replies in order.
        c.send(b"GET /slow?ms=1 HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(c.reply().unwrap().text(), "slept 1 ms\n");
        assert_eq!(c.reply().unwrap().text(), "hello from gort\n");
        // `Connection: close` is honoured and announced.
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert_eq!(c.reply().unwrap().header("connection"), Some("close"));
        c.expect_closed("after Connection: close");
        // HTTP/1.0 closes unless asked to keep alive.
        let mut old = server.connect();
        old.send(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(old.reply().unwrap().status, 200);
        old.expect_closed("after an HTTP/1.0 request");
        let mut old = server.connect();
        for _ in 0..2 {
            old.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .unwrap();
            let reply = old.reply().unwrap();
            assert_eq!(reply.header("connection"), Some("keep-alive"));
        }
    });
}

#[test]
fn a_header_sent_one_byte_a_second_is_cut_off_by_the_read_header_timeout() {
    each_procs("read_header_timeout", |procs| {
        // Per-read timeouts would never fire on a byte a second; a deadline does.
        let timeout = Duration::from_millis(2500);
        let server = Server::start(procs, &["--read-header-timeout", "2500ms"]);
        let started = Instant::now();
        let mut c = server.connect();
        let dripper = drip(
            &c,
            b"GET / HTTP/1.1\r\nHost: test\r\n\r\n",
            Duration::from_secs(1),
        );
        c.expect_closed("a drip-fed header");
        assert_fired("read-header timeout", started.elapsed(), timeout);
        c.stream.shutdown(std::net::Shutdown::Both).unwrap();
        assert!(!dripper.join().unwrap(), "the whole header went through");
    });
}

#[test]
fn the_read_timeout_bounds_head_and_body_together() {
    each_procs("read_timeout", |procs| {
        let timeout = Duration::from_secs(1);
        let server = Server::start(
            procs,
            &["--read-timeout", "1s", "--read-header-timeout", "5s"],
        );
        let started = Instant::now();
        let mut c = server.connect();
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n")
            .unwrap();
        // The body arrives a byte every 300 ms: each read is quick, the whole is too slow.
        let dripper = drip(&c, b"0123456789", Duration::from_millis(300));
        c.expect_closed("a slow body");
        assert_fired("read timeout", started.elapsed(), timeout);
        c.stream.shutdown(std::net::Shutdown::Both).unwrap();
        assert!(!dripper.join().unwrap(), "the whole body went through");
    });
}

#[test]
fn a_handler_slower_than_the_write_timeout_gets_no_response_out() {
    each_procs("write_timeout", |procs| {
        let server = Server::start(
            procs,
            &["--write-timeout", "300ms", "--handler-timeout", "10s"],
        );
        let mut c = server.connect();
        let started = Instant::now();
        c.send(b"GET /slow?ms=800 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        // Go's behaviour: the write deadline passed while the handler ran, so its response
        // fails and the connection closes with nothing sent.
        c.expect_closed("a response after the write deadline");
        assert_fired(
            "write timeout",
            started.elapsed(),
            Duration::from_millis(800),
        );
        // A quick handler on a new connection is answered.
        assert_eq!(server.connect().get("/").unwrap().status, 200);
    });
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    each_procs("idle_timeout", |procs| {
        let idle = Duration::from_millis(500);
        let server = Server::start(procs, &["--idle-timeout", "500ms"]);
        // Requests closer together than the idle timeout keep the connection open (8 of them
        // 100 ms apart: longer in all than the timeout)...
        let mut busy = server.connect();
        for _ in 0..8 {
            assert_eq!(busy.get("/").unwrap().status, 200);
            std::thread::sleep(Duration::from_millis(100));
        }
        // ...and a connection left idle is closed once the timeout has passed.
        let mut c = server.connect();
        let started = Instant::now();
        assert_eq!(c.get("/").unwrap().status, 200);
        c.expect_closed("an idle keep-alive connection");
        assert_fired("idle timeout", started.elapsed(), idle);
    });
}

#[test]
fn a_slow_handler_gets_503_from_the_timeout_handler() {
    each_procs("timeout_handler", |procs| {
        let limit = Duration::from_millis(300);
        let server = Server::start(procs, &["--handler-timeout", "300ms"]);
        let mut c = server.connect();
        let started = Instant::now();
        let reply = c.get("/slow?ms=5000").unwrap();
        assert_eq!((reply.status, reply.text()), (503, "timeout\n"));
        assert_fired("handler timeout", started.elapsed(), limit);
        // The connection stays usable, and the late handler's response is never sent: the
        // next reply is the next request's.
        let reply = c.get("/slow?ms=10").unwrap();
        assert_eq!((reply.status, reply.text()), (200, "slept 10 ms\n"));
    });
}

#[test]
fn post_echo_and_refusals() {
    each_procs("echo", |procs| {
        let server = Server::start(procs, &[]);
        let mut c = server.connect();
        let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let reply = c.post("/echo", &body).unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/x-test"));
        assert!(reply.body == body, "echoed body differs");
        // Expect: 100-continue gets the go-ahead before the body is sent.
        c.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap();
        assert_eq!(c.reply().unwrap().status, 100);
        c.send(b"abc").unwrap();
        assert_eq!(c.reply().unwrap().body, b"abc");
        assert_eq!(c.get("/nowhere").unwrap().status, 404);
        assert_eq!(c.post("/", b"x").unwrap().status, 405);
        assert_eq!(c.get("/slow?ms=soon").unwrap().status, 400);
        // A malformed request is answered 400 and the connection closed.
        c.send(b"NOT HTTP AT ALL\r\n\r\n").unwrap();
        let reply = c.reply().unwrap();
        assert_eq!(
            (reply.status, reply.header("connection")),
            (400, Some("close"))
        );
        c.expect_closed("after a malformed request");
    });
}

#[test]
fn quit_shuts_down_gracefully_and_exit_after_ends_the_process() {
    each_procs("shutdown", |procs| {
        let server = Server::start(procs, &[]);
        let mut idle = server.connect();
        assert_eq!(idle.get("/").unwrap().status, 200);
        // A request in progress: its head is read (the server said 100 Continue), its body
        // not yet sent.
        let mut busy = server.connect();
        busy.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        )
        .unwrap();
        assert_eq!(busy.reply().unwrap().status, 100);
        let reply = server.connect().get("/quit").unwrap();
        assert_eq!((reply.status, reply.text()), (200, "shutting down\n"));
        // The idle connection is closed; the busy one finishes, told the connection closes.
        idle.expect_closed("an idle connection at shutdown");
        busy.send(b"ok").unwrap();
        let reply = busy.reply().unwrap();
        assert_eq!(
            (reply.text(), reply.header("connection")),
            ("ok", Some("close"))
        );
        busy.expect_closed("a busy connection after its response at shutdown");
        let rest = server.wait_exit();
        assert!(rest.contains("shut down (GET /quit)"), "{rest}");

        let server = Server::start(procs, &["--exit-after", "300ms"]);
        assert!(server.wait_exit().contains("shut down (--exit-after)"));
    });
}

#[test]
fn thousand_concurrent_keep_alive_connections_get_every_reply() {
    each_procs("thousand_connections", |procs| {
        // The timeouts stay out of the way: 1,000 threads start on a busy machine.
        let server = Server::start(procs, &["--read-header-timeout", "60s"]);
        let addr = server.addr;
        let errors = Arc::new(AtomicUsize::new(0));
        let all_connected = Arc::new(Barrier::new(LOAD_CONNS));
        let clients: Vec<_> = (0..LOAD_CONNS)
            .map(|id| {
                let (errors, all_connected) = (errors.clone(), all_connected.clone());
                std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(move || {
                        let client = Client::try_connect(addr);
                        all_connected.wait(); // all 1,000 are open before any request
                        if let Err(e) = client.and_then(|c| load_requests(c, id)) {
                            eprintln!("connection {id}: {e}");
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                    .expect("spawn a client thread")
            })
            .collect();
        clients.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(errors.load(Ordering::SeqCst), 0, "connections with errors");
    });
}

/// [`LOAD_REQUESTS`] requests on one connection, GETs and POSTs in turn, each reply checked.
fn load_requests(mut c: Client, id: usize) -> io::Result<()> {
    for k in 0..LOAD_REQUESTS {
        let (reply, want) = if k % 2 == 0 {
            (c.get("/")?, b"hello from gort\n".to_vec())
        } else {
            let body = format!("connection {id} request {k}").into_bytes();
            (c.post("/echo", &body)?, body)
        };
        if reply.status != 200 || reply.body != want {
            return Err(io::Error::other(format!("request {k}: {reply:?}")));
        }
    }
    Ok(())
}

#[test]
fn curl_gets_keep_alive_503_and_echo() {
    let curl_present = Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !curl_present {
        eprintln!("curl is not installed: skipping the curl part of the http_server tests");
        return;
    }
    each_procs("curl", |procs| {
        let server = Server::start(procs, &["--handler-timeout", "300ms"]);
        let base = format!("http://{}", server.addr);
        let curl = |args: &[&str]| {
            let out = Command::new("curl")
                .args(["--silent", "--show-error", "--max-time", "10"])
                .args(args)
                .output()
                .expect("run curl");
            assert!(out.status.success(), "curl {args:?}: {out:?}");
            (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        // Two URLs in one curl: the second reuses the first's connection.
        let (out, log) = curl(&["--verbose", &format!("{base}/"), &format!("{base}/")]);
        assert_eq!(out, "hello from gort\nhello from gort\n");
        assert!(log.contains("Re-using existing connection"), "{log}");
        let (out, _) = curl(&[
            "--write-out",
            " %{http_code}",
            &format!("{base}/slow?ms=5000"),
        ]);
        assert_eq!(out, "timeout\n 503");
        let body = "x".repeat(5000); // over 1 KiB: curl sends Expect: 100-continue
        let (out, _) = curl(&["--data-binary", &body, &format!("{base}/echo")]);
        assert_eq!(out, body);
    });
}
