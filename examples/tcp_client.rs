//! The seeds' TCP client: dials the server and copies what it sends to stdout until the
//! connection ends (or, with a second argument, after that many lines).
//!
//! `cargo run --release --example tcp_client -- 127.0.0.1:8080 [lines]`

use std::io::{self, BufRead, BufReader, Write};

use gort::net::TcpStream;

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let max_lines: Option<usize> = args.next().map(|n| n.parse().expect("lines: a number"));
    if let Err(e) = gort::run(move || copy_lines(&addr, max_lines)) {
        eprintln!("tcp_client: {e}");
        std::process::exit(1);
    }
}

/// Go's `mustCopy(os.Stdout, conn)`, line by line so a line limit can stop it.
fn copy_lines(addr: &str, max_lines: Option<usize>) -> io::Result<()> {
    // Resolve off the scheduler's threads ("localhost" goes through getaddrinfo).
    let addrs = gort::net::lookup_host(addr)?;
    let conn = TcpStream::connect(&addrs[..])?;
    // No `stdout().lock()` across the loop: the goroutine parks in `lines()` and may resume
    // on another thread, and std's stdout lock belongs to a thread (docs/SOUNDNESS.md).
    let mut stdout = io::stdout();
    for line in BufReader::new(conn)
        .lines()
        .take(max_lines.unwrap_or(usize::MAX))
    {
        writeln!(stdout, "{}", line?)?;
        stdout.flush()?;
    }
    Ok(())
}
