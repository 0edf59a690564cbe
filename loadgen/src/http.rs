//! A minimal HTTP/1.1 client connection over one `TcpStream`.
//!
//! Why not reqwest or hyper's client: the load generator keeps tens of
//! thousands of connections, one per simulated browser, each doing one
//! request at a time; a plain buffer per connection and no pool, no task per
//! connection and no header maps keeps the client cheap enough not to be
//! the bottleneck on two cores. It also lets a poll read the status line
//! and headers (sent when the server accepts the poll) separately from the
//! body (sent when there is something to say), which is how held polls are
//! counted.
//!
//! Supports what the servers under test send: `Content-Length` and chunked
//! bodies, keep-alive, `Connection: close`.

use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest body accepted (a poll reply holds at most a batch of messages).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// `--quickack` (a diagnostic): acknowledge every read at once instead of
/// letting the kernel delay the ACK. Browsers do not do this; comparing runs
/// with and without it shows how much latency comes from the server's Nagle
/// algorithm waiting on the client's delayed ACK.
static QUICKACK: AtomicBool = AtomicBool::new(false);

pub fn set_quickack(on: bool) {
    QUICKACK.store(on, Ordering::Relaxed);
}

fn quickack(stream: &TcpStream) {
    let _ = crate::sys::set_int_option(stream, libc::IPPROTO_TCP, libc::TCP_QUICKACK, 1);
}

/// Why a request failed at the HTTP level.
#[derive(Debug)]
pub enum HttpError {
    Connect(io::Error),
    Io(io::Error),
    /// The server closed the connection (before or inside a response).
    Eof,
    Protocol(&'static str),
}

impl HttpError {
    /// A short stable name, for counting errors by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            HttpError::Connect(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                "connect_addr_unavailable"
            }
            HttpError::Connect(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                "connect_refused"
            }
            HttpError::Connect(e) if e.raw_os_error() == Some(libc::EMFILE) => "connect_emfile",
            HttpError::Connect(_) => "connect",
            HttpError::Io(e) if e.kind() == io::ErrorKind::ConnectionReset => "reset",
            HttpError::Io(_) => "io",
            HttpError::Eof => "eof",
            HttpError::Protocol(_) => "protocol",
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Connect(e) => write!(f, "connect: {e}"),
            HttpError::Io(e) => write!(f, "i/o: {e}"),
            HttpError::Eof => f.write_str("connection closed by the server"),
            HttpError::Protocol(what) => write!(f, "bad response: {what}"),
        }
    }
}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        HttpError::Io(e)
    }
}

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

/// A response's status line and the headers the load generator cares about.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    /// The `comet_token` cookie value, if a `Set-Cookie` carried one.
    pub token: Option<String>,
    /// `Last-Modified` and `Etag`: where an Nchan subscriber resumes from
    /// (see `nchan.rs`). Our server sends neither.
    pub last_modified: Option<String>,
    pub etag: Option<String>,
    /// The boundary of a `multipart/…` body (Nchan's batch of messages).
    pub boundary: Option<String>,
    framing: Framing,
    close: bool,
}

/// One keep-alive connection. Requests are sequential: write one, read its
/// head, read its body, then the next.
pub struct Conn {
    stream: TcpStream,
    host: String,
    /// Received bytes; `buf[start..end]` is not consumed yet.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The request being written (reused).
    req: Vec<u8>,
    /// Set when the server said it closes (or closed): reconnect before reuse.
    pub closed: bool,
    /// When the kernel received the bytes of the latest read (nanoseconds
    /// since the Unix epoch; 0 if it did not say).
    arrived: u64,
}

impl Conn {
    pub async fn connect(server: SocketAddr, source: Option<IpAddr>) -> Result<Conn, HttpError> {
        let stream = crate::sys::connect(server, source)
            .await
            .map_err(HttpError::Connect)?;
        Ok(Conn::from_stream(stream, server))
    }

    /// A connection over a stream the caller opened (e.g. with a small
    /// receive buffer, see `sys::connect_with`).
    pub fn from_stream(stream: TcpStream, server: SocketAddr) -> Conn {
        Conn {
            stream,
            host: server.to_string(),
            buf: vec![0; 2048],
            start: 0,
            end: 0,
            req: Vec::with_capacity(512),
            closed: false,
            arrived: 0,
        }
    }

    /// Writes one request. `auth` is a bearer token; `content_type` goes
    /// with a non-empty or POST body.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), HttpError> {
        self.send_with(method, path, auth, content_type, "", body)
            .await
    }

    /// As [`send`](Self::send), with `extra` header lines (each ending in
    /// `\r\n`).
    pub async fn send_with(
        &mut self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        content_type: Option<&str>,
        extra: &str,
        body: &[u8],
    ) -> Result<(), HttpError> {
        self.req.clear();
        let head = RequestHead {
            host: &self.host,
            method,
            path,
            auth,
            content_type,
            extra,
        };
        head.write(&mut self.req);
        if method != "GET" || !body.is_empty() {
            let _ = write!(self.req, "Content-Length: {}\r\n", body.len());
        }
        self.req.extend_from_slice(b"\r\n");
        self.req.extend_from_slice(body);
        self.stream.write_all(&self.req).await?;
        Ok(())
    }

    /// Writes a request the caller assembles in the connection's own
    /// buffer (cleared first): for requests sent thousands of times a
    /// second, whose fixed part is built once.
    pub async fn send_built(&mut self, build: impl FnOnce(&mut Vec<u8>)) -> Result<(), HttpError> {
        self.req.clear();
        build(&mut self.req);
        self.stream.write_all(&self.req).await?;
        Ok(())
    }

    /// Reads more bytes into the buffer; `Eof` if the server closed.
    async fn fill(&mut self) -> Result<(), HttpError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        let n = loop {
            // The stream's own reader slot (not `readable()`, whose shared
            // waiter list costs a lock per wait).
            std::future::poll_fn(|cx| self.stream.poll_read_ready(cx)).await?;
            let into = &mut self.buf[self.end..];
            let fd = self.stream.as_raw_fd();
            match self
                .stream
                .try_io(Interest::READABLE, || crate::sys::recv_stamped(fd, into))
            {
                Ok((n, arrived)) => {
                    self.arrived = arrived;
                    break n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            }
        };
        if QUICKACK.load(Ordering::Relaxed) {
            quickack(&self.stream);
        }
        if n == 0 {
            self.closed = true;
            return Err(HttpError::Eof);
        }
        self.end += n;
        Ok(())
    }

    /// Reads the status line and headers of the next response (skipping
    /// any `1xx`).
    pub async fn read_head(&mut self) -> Result<Head, HttpError> {
        loop {
            if self.end > self.start {
                match parse_head(&self.buf[self.start..self.end])? {
                    Some((used, head)) => {
                        self.start += used;
                        if (100..200).contains(&head.status) {
                            continue;
                        }
                        return Ok(head);
                    }
                    None if self.end - self.start > MAX_HEAD => {
                        return Err(HttpError::Protocol("response head too large"))
                    }
                    None => {}
                }
            }
            self.fill().await?;
        }
    }

    /// Reads the body that follows `head` into `out` (cleared first).
    pub async fn read_body(&mut self, head: &Head, out: &mut Vec<u8>) -> Result<(), HttpError> {
        out.clear();
        match head.framing {
            Framing::Empty => {}
            Framing::Length(n) => self.read_exact_into(n, out).await?,
            Framing::Chunked => loop {
                let (a, b) = self.next_line().await?;
                let size = parse_chunk_size(&self.buf[a..b])?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    loop {
                        let (a, b) = self.next_line().await?;
                        if a == b {
                            break;
                        }
                    }
                    break;
                }
                if out.len() + size > MAX_BODY {
                    return Err(HttpError::Protocol("body too large"));
                }
                self.read_exact_into(size, out).await?;
                let (a, b) = self.next_line().await?;
                if a != b {
                    return Err(HttpError::Protocol("chunk not followed by CRLF"));
                }
            },
            Framing::UntilClose => loop {
                out.extend_from_slice(&self.buf[self.start..self.end]);
                self.start = self.end;
                if out.len() > MAX_BODY {
                    return Err(HttpError::Protocol("body too large"));
                }
                match self.fill().await {
                    Ok(()) => {}
                    Err(HttpError::Eof) => break,
                    Err(e) => return Err(e),
                }
            },
        }
        if head.close {
            self.closed = true;
        }
        Ok(())
    }

    /// The body that follows `head`, and when its last bytes reached this
    /// socket (kernel receive time, nanoseconds since the Unix epoch; 0 if
    /// unknown): a fixed-length body is read in place and borrowed from the
    /// connection's buffer (no copy: every poll reply has one); anything
    /// else is gathered into `scratch`.
    pub async fn body<'a>(
        &'a mut self,
        head: &Head,
        scratch: &'a mut Vec<u8>,
    ) -> Result<(&'a [u8], u64), HttpError> {
        let Framing::Length(n) = head.framing else {
            self.read_body(head, scratch).await?;
            return Ok((scratch, self.arrived));
        };
        if n > MAX_BODY {
            return Err(HttpError::Protocol("body too large"));
        }
        while self.end - self.start < n {
            self.fill().await?;
        }
        let body = self.start..self.start + n;
        self.start += n;
        if head.close {
            self.closed = true;
        }
        Ok((&self.buf[body], self.arrived))
    }

    /// One whole request: write, then read head and body.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Head, HttpError> {
        self.send(method, path, auth, content_type, body).await?;
        let head = self.read_head().await?;
        self.read_body(&head, out).await?;
        Ok(head)
    }

    async fn read_exact_into(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), HttpError> {
        if n > MAX_BODY {
            return Err(HttpError::Protocol("body too large"));
        }
        let mut left = n;
        loop {
            let take = left.min(self.end - self.start);
            out.extend_from_slice(&self.buf[self.start..self.start + take]);
            self.start += take;
            left -= take;
            if left == 0 {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// Consumes one CRLF-terminated line; returns where it is in `buf`
    /// (without the CRLF), valid until the next read.
    async fn next_line(&mut self) -> Result<(usize, usize), HttpError> {
        loop {
            let pending = &self.buf[self.start..self.end];
            if let Some(pos) = pending.windows(2).position(|w| w == b"\r\n") {
                let line = (self.start, self.start + pos);
                self.start += pos + 2;
                return Ok(line);
            }
            if pending.len() > 4096 {
                return Err(HttpError::Protocol("line too long"));
            }
            self.fill().await?;
        }
    }
}

/// A request's line and headers up to (not including) `Content-Length`.
pub struct RequestHead<'a> {
    /// The `Host` header: the server's `address:port`.
    pub host: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// A bearer token.
    pub auth: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// More header lines, each ending in `\r\n`.
    pub extra: &'a str,
}

impl RequestHead<'_> {
    pub fn write(&self, out: &mut Vec<u8>) {
        let Self {
            host,
            method,
            path,
            auth,
            content_type,
            extra,
        } = self;
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n"
        );
        if let Some(token) = auth {
            let _ = write!(out, "Authorization: Bearer {token}\r\n");
        }
        if let Some(ct) = content_type {
            let _ = write!(out, "Content-Type: {ct}\r\n");
        }
        out.extend_from_slice(extra.as_bytes());
    }
}

/// `Some((bytes used, head))` once a whole head is in `data`.
pub(crate) fn parse_head(data: &[u8]) -> Result<Option<(usize, Head)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut response = httparse::Response::new(&mut headers);
    let used = match response.parse(data) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HttpError::Protocol("malformed response head")),
    };
    let status = response.code.unwrap_or(0);
    let mut length = None;
    let mut chunked = false;
    let mut close = response.version == Some(0);
    let mut token = None;
    let mut last_modified = None;
    let mut etag = None;
    let mut boundary = None;
    for h in response.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value)
                .map_err(|_| HttpError::Protocol("bad content-length"))?;
            length = Some(
                text.trim()
                    .parse::<usize>()
                    .map_err(|_| HttpError::Protocol("bad content-length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            let v = h.value.trim_ascii();
            if v.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if v.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        } else if name.eq_ignore_ascii_case("set-cookie") {
            if let Some(rest) = h.value.strip_prefix(b"comet_token=") {
                let end = rest.iter().position(|b| *b == b';').unwrap_or(rest.len());
                let value = &rest[..end];
                if !value.is_empty() {
                    token = Some(String::from_utf8_lossy(value).into_owned());
                }
            }
        } else if name.eq_ignore_ascii_case("last-modified") {
            last_modified = Some(header_text(h.value)?);
        } else if name.eq_ignore_ascii_case("etag") {
            etag = Some(header_text(h.value)?);
        } else if name.eq_ignore_ascii_case("content-type") && h.value.starts_with(b"multipart") {
            let value = header_text(h.value)?;
            boundary = crate::multipart::boundary(&value).map(str::to_owned);
        }
    }
    let framing = if status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        if n == 0 {
            Framing::Empty
        } else {
            Framing::Length(n)
        }
    } else {
        Framing::UntilClose
    };
    if matches!(framing, Framing::UntilClose) {
        close = true;
    }
    Ok(Some((
        used,
        Head {
            status,
            token,
            last_modified,
            etag,
            boundary,
            framing,
            close,
        },
    )))
}

/// A header value kept to be sent back (as `If-Modified-Since`, …):
/// visible ASCII and spaces only, so it cannot break the request it goes
/// into.
fn header_text(value: &[u8]) -> Result<String, HttpError> {
    let value = value.trim_ascii();
    if value.len() > 256 || !value.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(HttpError::Protocol("header value not visible ASCII"));
    }
    Ok(String::from_utf8_lossy(value).into_owned())
}

fn parse_chunk_size(line: &[u8]) -> Result<usize, HttpError> {
    let hex = line
        .split(|b| *b == b';')
        .next()
        .unwrap_or(&[])
        .trim_ascii();
    if hex.is_empty() || hex.len() > 12 {
        return Err(HttpError::Protocol("bad chunk size"));
    }
    let mut size = 0usize;
    for b in hex {
        let digit = (*b as char)
            .to_digit(16)
            .ok_or(HttpError::Protocol("bad chunk size"))?;
        size = size * 16 + digit as usize;
    }
    Ok(size)
}

/// `application/x-www-form-urlencoded` for one value.
pub fn form_encode(value: &str, out: &mut String) {
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = fmt::Write::write_fmt(out, format_args!("%{b:02X}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_keeps_where_an_nchan_subscriber_resumes() {
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\
                      Last-Modified: Mon, 30 Nov 2026 06:44:05 GMT\r\n\
                      Connection: keep-alive\r\nEtag: 1\r\n\r\nhello2";
        let (used, head) = parse_head(reply).unwrap().unwrap();
        assert_eq!(&reply[used..], b"hello2");
        assert_eq!(head.status, 200);
        assert_eq!(
            head.last_modified.as_deref(),
            Some("Mon, 30 Nov 2026 06:44:05 GMT")
        );
        assert_eq!(head.etag.as_deref(), Some("1"));
        assert!(!head.close);
    }

    #[test]
    fn a_head_without_them_has_none() {
        let reply = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n";
        let (_, head) = parse_head(reply).unwrap().unwrap();
        assert_eq!(head.status, 408);
        assert!(head.last_modified.is_none() && head.etag.is_none());
    }

    #[test]
    fn a_resume_header_that_is_not_plain_ascii_is_refused() {
        let reply = b"HTTP/1.1 200 OK\r\nEtag: 1\xc3\xa92\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(parse_head(reply), Err(HttpError::Protocol(_))));
    }
}
