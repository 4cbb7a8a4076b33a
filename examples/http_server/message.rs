//! HTTP/1.1 messages on the wire: reading one request from a connection (the head parsed by
//! `httparse`, the body delimited by `Content-Length`) and writing one response.
//!
//! Invariants: a [`ConnReader`]'s buffer holds exactly the bytes read from the connection that
//! no request has consumed yet (the start of the next, possibly pipelined, request); a request's
//! body is read whole before its handler runs. Reads obey whatever deadline the caller set on
//! the connection: this file sets none (the server's timeouts live in `server.rs`).

use std::io::{self, Read, Write};

use gort::context::Context;
use gort::net::TcpStream;

/// Largest request head accepted (Go's `DefaultMaxHeaderBytes`, 1 MiB); a longer one is
/// answered 431.
pub const MAX_HEAD_BYTES: usize = 1 << 20;
/// Largest request body accepted; a longer `Content-Length` is answered 413.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// Most header fields in one request; more are answered 431.
const MAX_HEADERS: usize = 64;
/// Bytes asked of each `read` on the connection.
const READ_CHUNK: usize = 16 * 1024;

/// One request, as a handler sees it.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`...
    pub method: String,
    /// The request target as sent: path and query (`/slow?ms=50`).
    pub target: String,
    /// Header fields in the order sent; names as sent (compare them without case).
    pub headers: Vec<(String, String)>,
    /// The whole body (`Content-Length` bytes; empty without one).
    pub body: Vec<u8>,
    /// Go's `r.Context()`: cancelled once the handler has returned, and earlier by a wrapper
    /// such as the timeout handler.
    pub ctx: Context,
}

impl Request {
    /// The first value of header `name` (compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The target's path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The value of query parameter `key` (`/slow?ms=50`: `query("ms")` is `Some("50")`).
    /// Not percent-decoded: this demo's parameters are numbers.
    pub fn query(&self, key: &str) -> Option<&str> {
        let (_, query) = self.target.split_once('?')?;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// The part of a request read before its body.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// True if the client asked to keep the connection open after this exchange: HTTP/1.1
    /// unless `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        let connection = header(&self.headers, "connection").unwrap_or("");
        let has = |token: &str| {
            connection
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        if self.minor_version >= 1 {
            !has("close")
        } else {
            has("keep-alive")
        }
    }

    /// The body's length from `Content-Length` (0 without one), or the response that
    /// refuses the body.
    pub fn body_len(&self) -> Result<usize, ReadError> {
        if header(&self.headers, "transfer-encoding").is_some() {
            // Go's server decodes chunked bodies; this demo reads `Content-Length` ones only.
            return Err(ReadError::Refused(501, "transfer-encoding not supported"));
        }
        let Some(len) = header(&self.headers, "content-length") else {
            return Ok(0);
        };
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| ReadError::Refused(400, "bad content-length"))?;
        if len > MAX_BODY_BYTES {
            return Err(ReadError::Refused(413, "request body too large"));
        }
        Ok(len)
    }

    /// True if the client waits for `100 Continue` before sending the body (curl does so
    /// for bodies over 1 KiB).
    pub fn expects_continue(&self) -> bool {
        header(&self.headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }

    /// The request this head starts, with its body and context.
    pub fn into_request(self, body: Vec<u8>, ctx: Context) -> Request {
        Request {
            method: self.method,
            target: self.target,
            headers: self.headers,
            body,
            ctx,
        }
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The connection failed, timed out or was closed by the peer: nothing to answer.
    Closed,
    /// The request is refused with this status and reason; the connection closes after.
    Refused(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> ReadError {
        ReadError::Closed
    }
}

/// The read side of one connection: a buffer of received bytes not yet consumed.
#[derive(Default)]
pub struct ConnReader {
    buf: Vec<u8>,
}

impl ConnReader {
    /// Waits until at least one byte of a request is buffered (Go's server peeks the same way
    /// between keep-alive requests). End of stream is an `UnexpectedEof` error.
    pub fn wait_for_bytes(&mut self, conn: &TcpStream) -> io::Result<()> {
        if self.buf.is_empty() {
            self.fill(conn)?;
        }
        Ok(())
    }

    /// Reads and parses one request head, leaving any bytes after it buffered.
    pub fn read_head(&mut self, conn: &TcpStream) -> Result<Head, ReadError> {
        loop {
            if let Some(head) = self.parse_head()? {
                return Ok(head);
            }
            if self.buf.len() >= MAX_HEAD_BYTES {
                return Err(ReadError::Refused(431, "request header too large"));
            }
            self.fill(conn)?;
        }
    }

    /// Reads a body of `len` bytes (some may already be buffered).
    pub fn read_body(&mut self, conn: &TcpStream, len: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < len {
            self.fill(conn)?;
        }
        Ok(self.buf.drain(..len).collect())
    }

    /// Parses the buffered bytes: the head and its length once complete, `None` while partial.
    fn parse_head(&mut self) -> Result<Option<Head>, ReadError> {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut fields);
        let len = match parsed.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ReadError::Refused(431, "too many header fields"))
            }
            Err(_) => return Err(ReadError::Refused(400, "malformed request")),
        };
        let head = Head {
            // A complete parse has all three.
            method: parsed.method.unwrap_or_default().to_string(),
            target: parsed.path.unwrap_or_default().to_string(),
            minor_version: parsed.version.unwrap_or_default(),
            headers: parsed
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value).into_owned();
                    (h.name.to_string(), value)
                })
                .collect(),
        };
        self.buf.drain(..len);
        Ok(Some(head))
    }

    /// Appends what one `read` returns; end of stream is an `UnexpectedEof` error.
    fn fill(&mut self, mut conn: &TcpStream) -> io::Result<()> {
        let old_len = self.buf.len();
        self.buf.resize(old_len + READ_CHUNK, 0);
        let read = conn.read(&mut self.buf[old_len..]);
        self.buf.truncate(old_len + *read.as_ref().unwrap_or(&0));
        match read? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => Ok(()),
        }
    }
}

/// A handler's answer: status, extra header fields and the whole body (the server adds
/// `Content-Length` and `Connection`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::bytes(
            status,
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    /// A response with a body of type `content_type`.
    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }
}

/// Writes `response` in one piece. `keep_alive` says whether the connection stays open after
/// it (announced in `Connection`); `with_body` is false for `HEAD`, whose response carries the
/// body's length but not the body.
pub fn write_response(
    mut conn: &TcpStream,
    response: &Response,
    minor_version: u8,
    keep_alive: bool,
    with_body: bool,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(128 + response.body.len());
    write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    )?;
    for (name, value) in &response.headers {
        write!(out, "{name}: {value}\r\n")?;
    }
    write!(out, "Content-Length: {}\r\n", response.body.len())?;
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if minor_version == 0 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if with_body {
        out.extend_from_slice(&response.body);
    }
    conn.write_all(&out)
}

/// Tells a client that sent `Expect: 100-continue` to send its body.
pub fn write_continue(mut conn: &TcpStream) -> io::Result<()> {
    conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
}

/// The reason phrase of the statuses this server sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// The first value of header `name` in `headers` (compared without case).
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
