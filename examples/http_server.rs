//! An HTTP/1.1 server on `gort::net`: one goroutine per connection, keep-alive, Go's four
//! `http.Server` timeouts (read, read-header, write, idle) as connection deadlines, Go's
//! `http.TimeoutHandler` (503 when a handler runs too long), and Go's graceful shutdown. A
//! demo, not a framework: `httparse` parses request heads, everything else is in
//! `http_server/` (`server.rs` the connection loop and its timeouts, `message.rs` requests and
//! responses on the wire, `timeout_handler.rs`, `routes.rs`). `docs/HTTP.md` maps each timeout
//! to Go's field.
//!
//! ```text
//! cargo run --release --example http_server -- --addr 127.0.0.1:8080 --handler-timeout 2s
//! curl -v http://127.0.0.1:8080/ http://127.0.0.1:8080/slow?ms=3000   # 200, then 503
//! curl -X POST --data-binary @Cargo.toml http://127.0.0.1:8080/echo
//! curl http://127.0.0.1:8080/quit                                       # graceful shutdown
//! ```
//!
//! It prints `http_server: listening on http://ADDR ...` on stdout once it accepts (port 0
//! picks a free port), and `http_server: shut down ...` when it is done.

#[path = "bench_mode.rs"]
mod bench_mode;
#[path = "http_server/message.rs"]
mod message;
#[path = "http_server/routes.rs"]
mod routes;
#[path = "http_server/server.rs"]
mod server;
#[path = "http_server/timeout_handler.rs"]
mod timeout_handler;

use std::io::{self, Write};
use std::time::Duration;

use gort::net::TcpListener;

use server::{Server, Timeouts};

const USAGE: &str = "\
usage: http_server [--addr ADDR] [--read-header-timeout D] [--read-timeout D]
                   [--write-timeout D] [--idle-timeout D] [--handler-timeout D] [--exit-after D]

Each option can also come from the environment: --read-timeout from HTTP_READ_TIMEOUT, and so
on (the flag wins). D is a duration such as 250ms, 2s, 1.5s or 1m; 0 is off.

  --addr                 address to listen on (127.0.0.1:8080; port 0 picks one)
  --read-header-timeout  Go's ReadHeaderTimeout (5s; 0 falls back to --read-timeout)
  --read-timeout         Go's ReadTimeout, head and body (30s)
  --write-timeout        Go's WriteTimeout, from the end of the head (30s)
  --idle-timeout         Go's IdleTimeout, between keep-alive requests (120s; 0 falls back
                         to --read-timeout)
  --handler-timeout      Go's TimeoutHandler: 503 after this (10s; 0 is no timeout handler)
  --exit-after           shut down after this long (off); GET /quit shuts down too";

/// How long a shutdown waits for busy connections before closing them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The command line, with the environment's defaults.
struct Config {
    addr: String,
    timeouts: Timeouts,
    handler_timeout: Option<Duration>,
    exit_after: Option<Duration>,
}

impl Config {
    /// Reads `--name value` (or `--name=value`) flags, then `HTTP_NAME` variables, then the
    /// defaults.
    fn from_args(args: Vec<String>) -> Result<Config, String> {
        let flags = parse_flags(args)?;
        let get = |name: &str, default: &str| -> String {
            let env_name = format!("HTTP_{}", name.to_uppercase().replace('-', "_"));
            let from_env = std::env::var(env_name).ok();
            flags
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .or(from_env)
                .unwrap_or_else(|| default.to_string())
        };
        let duration = |name: &str, default: &str| {
            parse_duration(&get(name, default)).map_err(|e| format!("--{name}: {e}"))
        };
        Ok(Config {
            addr: get("addr", "127.0.0.1:8080"),
            timeouts: Timeouts {
                read_header: duration("read-header-timeout", "5s")?,
                read: duration("read-timeout", "30s")?,
                write: duration("write-timeout", "30s")?,
                idle: duration("idle-timeout", "120s")?,
            },
            handler_timeout: duration("handler-timeout", "10s")?,
            exit_after: duration("exit-after", "0")?,
        })
    }
}

/// The names every flag may have.
const FLAGS: [&str; 7] = [
    "addr",
    "read-header-timeout",
    "read-timeout",
    "write-timeout",
    "idle-timeout",
    "handler-timeout",
    "exit-after",
];

/// Splits `--name value` and `--name=value` into pairs, checking the names.
fn parse_flags(args: Vec<String>) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        let (name, inline_value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (flag, None),
        };
        if !FLAGS.contains(&name) {
            return Err(format!("unknown flag --{name}"));
        }
        let value = match inline_value {
            Some(value) => value,
            None => args.next().ok_or(format!("--{name} needs a value"))?,
        };
        pairs.push((name.to_string(), value));
    }
    Ok(pairs)
}

/// `250ms`, `2s`, `1.5s`, `1m`; `0` is `None` (off).
fn parse_duration(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(None);
    }
    let (number, unit_secs) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        return Err(format!("{text:?}: want a number with ms, s or m, or 0"));
    };
    match number.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok(Some(Duration::from_secs_f64(n * unit_secs))),
        Ok(_) => Ok(None),
        Err(_) => Err(format!("{text:?} is not a duration")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let config = Config::from_args(args).unwrap_or_else(|e| {
        eprintln!("http_server: {e}\n\n{USAGE}");
        std::process::exit(2);
    });
    let mode = bench_mode::init();
    if let Err(e) = gort::run(move || serve(config, mode)) {
        eprintln!("http_server: {e}");
        std::process::exit(1);
    }
}

/// Serves until `/quit` or `--exit-after`, then shuts down gracefully.
fn serve(config: Config, mode: &str) -> io::Result<()> {
    let listener = TcpListener::bind(config.addr.as_str())?;
    listener.on_accept_stall(|stall| eprintln!("http_server: {stall}"));
    let (quit_tx, quit_rx) = gort::chan::<()>(1);
    let server = Server::new(
        config.timeouts,
        routes::app(quit_tx, config.handler_timeout),
    );
    let accepting = {
        let (server, listener) = (server.clone(), listener.try_clone()?);
        gort::go!(move || server.serve(&listener))
    };
    let t = config.timeouts;
    println!(
        "http_server: listening on http://{} (GORT_MAXPROCS={}, mode {mode}; timeouts: \
         read-header {}, read {}, write {}, idle {}, handler {})",
        listener.local_addr()?,
        gort::maxprocs(),
        show(t.read_header),
        show(t.read),
        show(t.write),
        show(t.idle),
        show(config.handler_timeout),
    );
    io::stdout().flush()?;

    let exit_timer = config.exit_after.map(gort::time::after);
    let why = gort::select! {
        recv(quit_rx) -> _ => "GET /quit",
        recv(exit_timer.as_deref()) -> _ => "--exit-after",
    };
    let forced = server.shutdown(&listener, SHUTDOWN_GRACE);
    accepting.join().expect("the accept loop does not panic");
    println!("http_server: shut down ({why}); {forced} busy connections closed at the deadline");
    Ok(())
}

/// A timeout as the flags spell it: `250ms`, `0` for off.
fn show(timeout: Option<Duration>) -> String {
    timeout.map_or("0".into(), |t| format!("{t:?}"))
}
