//! The HTTP exchange of the MTA-STS policy fetch, without I/O: the request
//! an adapter writes into its TLS stream ([`request`]) and a response
//! reader ([`ResponseReader`]) it feeds the bytes it reads, in chunks of
//! any size.
//!
//! The request is an HTTP/1.1 `GET` with `Host` and `Connection: close`.
//! HTTP/1.1 rather than 1.0 because that is what servers and the CDNs in
//! front of them are built and tested for (some refuse 1.0, or answer it
//! without the virtual host the `Host` header names); `Connection: close`
//! so that the server ends the connection after its one response, which
//! makes "the body ends at the end of the stream" a valid framing and
//! leaves no connection to keep. As a 1.1 server may then send its body
//! chunked, the reader decodes the chunked transfer coding.
//!
//! The reader takes a status line and header fields (at most
//! [`MAX_HEAD`] bytes in all, interim 1xx responses included and
//! skipped), the `Content-Type`, then the body framed by
//! `Transfer-Encoding: chunked`, by `Content-Length`, or by the end of the
//! stream (RFC 9112 section 6.3), and stops after
//! [`MAX_BODY`](super::MAX_POLICY_BYTES) `+ 1` bytes of body, so that a
//! larger policy is known to be too large without being read. A redirect
//! is a response like any other: nothing is followed here. Malformed input
//! is an [`HttpError`], never a panic.

use std::fmt;

use crate::engine::PolicyFetch;

use super::MAX_POLICY_BYTES;

/// The most bytes of a response's head (status line and header fields,
/// with any interim 1xx responses before it), and of a chunked body's
/// trailer section.
pub const MAX_HEAD: usize = 8 * 1024;

/// The most body bytes a reader keeps: one more than a policy may have, so
/// that a body over [`MAX_POLICY_BYTES`] is seen to be over it.
pub const MAX_BODY: usize = MAX_POLICY_BYTES + 1;

/// The longest line of a chunk size (with its extensions) accepted.
const MAX_CHUNK_LINE: usize = 1024;

/// The most interim (1xx) responses skipped before the final one.
const MAX_INTERIM: usize = 8;

/// Why a URL or a response could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL is not `https://host[:port][/path]` with a host name.
    Url(String),
    /// The head (status line and fields) is over [`MAX_HEAD`] bytes.
    HeadTooLarge,
    /// The status line is not `HTTP/1.x NNN reason`.
    StatusLine,
    /// A header field is not `name: value`.
    HeaderField,
    /// `Content-Length` is not a number, or given twice with two values.
    ContentLength,
    /// A chunk size line, a chunk's end or the trailer is malformed.
    Chunk,
    /// An interim 101 (a protocol switch), or more than a few 1xx responses.
    Interim,
    /// The stream ended before the response did (within the head, before
    /// `Content-Length` bytes, or before the last chunk).
    Incomplete,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Url(why) => write!(f, "the policy URL cannot be fetched: {why}"),
            HttpError::HeadTooLarge => {
                write!(f, "the response's header is over {MAX_HEAD} bytes")
            }
            HttpError::StatusLine => f.write_str("the response's status line is malformed"),
            HttpError::HeaderField => f.write_str("a header field of the response is malformed"),
            HttpError::ContentLength => f.write_str("the response's Content-Length is malformed"),
            HttpError::Chunk => f.write_str("the response's chunked body is malformed"),
            HttpError::Interim => f.write_str("the server sent an unexpected 1xx response"),
            HttpError::Incomplete => f.write_str("the connection ended inside the response"),
        }
    }
}

impl std::error::Error for HttpError {}

/// A policy URL, split: what the adapter connects to and the path it asks
/// for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyUrl {
    /// The host name (lower case, no final dot): the TLS server name.
    pub host: String,
    /// The port (443 unless the URL names one).
    pub port: u16,
    /// The path (with any query), starting with `/`.
    pub path: String,
}

/// Splits an `https://` URL. Only a host name is accepted (no IP literal,
/// no user information): MTA-STS names the policy host by name, and the
/// certificate is checked for that name.
///
/// # Errors
///
/// [`HttpError::Url`] saying what is wrong.
pub fn parse_url(url: &str) -> Result<PolicyUrl, HttpError> {
    let bad = |why: &str| HttpError::Url(why.to_owned());
    let rest = url
        .get(..8)
        .filter(|s| s.eq_ignore_ascii_case("https://"))
        .and_then(|_| url.get(8..))
        .ok_or_else(|| bad("not an https:// URL"))?;
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    if authority.contains('@') {
        return Err(bad("user information in the URL"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => {
            let port: u16 = port.parse().map_err(|_| bad("a malformed port"))?;
            (host, port)
        }
        None => (authority, 443),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(bad("the host is not a DNS name"));
    }
    if host
        .split('.')
        .next_back()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("the host is an IP address, not a name"));
    }
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(bad("the path holds spaces or control characters"));
    }
    Ok(PolicyUrl { host, port, path })
}

/// The request for `url`: `GET <path> HTTP/1.1`, `Host`, `Connection:
/// close`, `Accept: text/plain` and nothing else (no cookies, no
/// compression asked for).
#[must_use]
pub fn request(url: &PolicyUrl) -> Vec<u8> {
    let host = if url.port == 443 {
        url.host.clone()
    } else {
        format!("{}:{}", url.host, url.port)
    };
    format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: text/plain\r\n\r\n",
        url.path
    )
    .into_bytes()
}

/// A response as read: the final status, the `Content-Type`, and at most
/// [`MAX_BODY`] bytes of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code (a 3xx as sent: redirects are not followed).
    pub status: u16,
    /// The `Content-Type` field, if any (the first when sent twice; bytes
    /// outside UTF-8 replaced).
    pub content_type: Option<String>,
    /// The body (after the chunked coding is removed), at most
    /// [`MAX_BODY`] bytes.
    pub body: Vec<u8>,
    /// Whether reading stopped on reaching [`MAX_BODY`] bytes (whether or
    /// not more would have come): the body is over [`MAX_POLICY_BYTES`].
    pub truncated: bool,
}

impl From<Response> for PolicyFetch {
    fn from(r: Response) -> PolicyFetch {
        PolicyFetch::Response {
            status: r.status,
            content_type: r.content_type,
            body: r.body,
        }
    }
}

/// Whether a [`ResponseReader`] needs more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The response is not whole yet: read more, or call
    /// [`ResponseReader::end`] at the end of the stream.
    More,
    /// The response is read (or its body reached [`MAX_BODY`] bytes): take
    /// it with [`ResponseReader::into_response`] and close the connection.
    Done,
}

/// How the body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// So many bytes more.
    Length(u64),
    /// Until the end of the stream.
    Eof,
    /// Chunked: before a chunk-size line.
    ChunkSize,
    /// Chunked: inside a chunk, so many bytes left.
    ChunkData(u64),
    /// Chunked: the CRLF after a chunk's data.
    ChunkEnd,
    /// Chunked: the trailer section, after the last chunk.
    Trailer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Head,
    Body(Framing),
    Done,
}

/// An incremental HTTP/1.x response reader (see the [module](self)).
///
/// ```
/// use smtp_mx::sts::http::{Progress, ResponseReader};
///
/// let mut reader = ResponseReader::new();
/// let bytes = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
/// for chunk in bytes.chunks(5) {
///     reader.feed(chunk)?;
/// }
/// let response = reader.into_response()?;
/// assert_eq!((response.status, response.body.as_slice()), (200, &b"ok"[..]));
/// # Ok::<(), smtp_mx::sts::http::HttpError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ResponseReader {
    state: State,
    /// Bytes not yet taken: the head, or a chunk line or trailer part.
    pending: Vec<u8>,
    /// Head bytes taken so far (interim responses included).
    head_bytes: usize,
    interim: usize,
    trailer_bytes: usize,
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
    truncated: bool,
}

impl Default for ResponseReader {
    fn default() -> ResponseReader {
        ResponseReader::new()
    }
}

impl ResponseReader {
    /// A reader waiting for the status line.
    #[must_use]
    pub fn new() -> ResponseReader {
        ResponseReader {
            state: State::Head,
            pending: Vec::new(),
            head_bytes: 0,
            interim: 0,
            trailer_bytes: 0,
            status: 0,
            content_type: None,
            body: Vec::new(),
            truncated: false,
        }
    }

    /// Takes the next bytes read from the stream. Bytes after the end of
    /// the response are ignored.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] for a malformed or oversized head or chunk; the
    /// reader is then of no further use.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<Progress, HttpError> {
        while !input.is_empty() {
            match self.state {
                State::Done => break,
                State::Head => input = self.feed_head(input)?,
                State::Body(framing) => input = self.feed_body(framing, input)?,
            }
        }
        Ok(self.progress())
    }

    /// The stream ended: a body framed by the end of the stream is whole.
    ///
    /// # Errors
    ///
    /// [`HttpError::Incomplete`] when the response was not whole.
    pub fn end(&mut self) -> Result<Progress, HttpError> {
        match self.state {
            State::Done => Ok(Progress::Done),
            State::Body(Framing::Eof) => {
                self.state = State::Done;
                Ok(Progress::Done)
            }
            _ => Err(HttpError::Incomplete),
        }
    }

    /// Whether the response is whole.
    #[must_use]
    pub fn progress(&self) -> Progress {
        if self.state == State::Done {
            Progress::Done
        } else {
            Progress::More
        }
    }

    /// The response, once [`Progress::Done`].
    ///
    /// # Errors
    ///
    /// [`HttpError::Incomplete`] before then.
    pub fn into_response(self) -> Result<Response, HttpError> {
        if self.state != State::Done {
            return Err(HttpError::Incomplete);
        }
        Ok(Response {
            status: self.status,
            content_type: self.content_type,
            body: self.body,
            truncated: self.truncated,
        })
    }

    /// Gathers the head until its blank line; returns what follows it.
    fn feed_head<'a>(&mut self, input: &'a [u8]) -> Result<&'a [u8], HttpError> {
        // Search from a little before the new bytes, for a terminator that
        // spans two feeds.
        let from = self.pending.len().saturating_sub(3);
        let room = MAX_HEAD.saturating_sub(self.head_bytes + self.pending.len());
        let take = input.len().min(room + 1);
        self.pending.extend_from_slice(&input[..take]);
        let Some(end) = head_end(&self.pending, from) else {
            if self.head_bytes + self.pending.len() > MAX_HEAD {
                return Err(HttpError::HeadTooLarge);
            }
            return Ok(&input[take..]);
        };
        if self.head_bytes + end > MAX_HEAD {
            return Err(HttpError::HeadTooLarge);
        }
        // The bytes of this feed past the head.
        let used = end - (self.pending.len() - take);
        let head = std::mem::take(&mut self.pending);
        self.head_bytes += end;
        self.take_head(&head[..end])?;
        Ok(&input[used..])
    }

    /// Reads a whole head (its blank line included).
    fn take_head(&mut self, head: &[u8]) -> Result<(), HttpError> {
        let mut lines = head
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let status = parse_status_line(lines.next().unwrap_or_default())?;
        if (100..200).contains(&status) {
            self.interim += 1;
            if status == 101 || self.interim > MAX_INTERIM {
                return Err(HttpError::Interim);
            }
            // An interim response: the final one follows.
            return Ok(());
        }
        let fields = unfold(lines)?;
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut coded = false;
        for (name, value) in &fields {
            if name.eq_ignore_ascii_case(b"content-type") {
                if self.content_type.is_none() {
                    self.content_type = Some(String::from_utf8_lossy(value).into_owned());
                }
            } else if name.eq_ignore_ascii_case(b"content-length") {
                for part in value.split(|&b| b == b',') {
                    let n = parse_decimal(trim(part)).ok_or(HttpError::ContentLength)?;
                    if length.is_some_and(|l| l != n) {
                        return Err(HttpError::ContentLength);
                    }
                    length = Some(n);
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                // Only the last coding decides whether the body is chunked.
                for coding in value.split(|&b| b == b',').map(trim) {
                    if coding.is_empty() {
                        continue;
                    }
                    coded = true;
                    chunked = coding.eq_ignore_ascii_case(b"chunked");
                }
            }
        }
        self.status = status;
        // RFC 9112 section 6.3: no body for 204 and 304; Transfer-Encoding
        // wins over Content-Length; a coding other than chunked last, or
        // neither field: the body runs to the end of the stream.
        let framing = if status == 204 || status == 304 {
            Framing::Length(0)
        } else if coded {
            if chunked {
                Framing::ChunkSize
            } else {
                Framing::Eof
            }
        } else {
            length.map_or(Framing::Eof, Framing::Length)
        };
        self.state = match framing {
            Framing::Length(0) => State::Done,
            f => State::Body(f),
        };
        Ok(())
    }

    /// Adds body bytes, up to [`MAX_BODY`]; past that the reader is done.
    fn keep(&mut self, data: &[u8]) {
        let room = MAX_BODY - self.body.len();
        if data.len() >= room && !data.is_empty() {
            self.body.extend_from_slice(&data[..room]);
            // Exactly MAX_BODY bytes may still be the whole body; more
            // than a policy may have is all the engine needs to know.
            self.truncated = true;
            self.state = State::Done;
        } else {
            self.body.extend_from_slice(data);
        }
    }

    fn feed_body<'a>(&mut self, framing: Framing, input: &'a [u8]) -> Result<&'a [u8], HttpError> {
        match framing {
            Framing::Eof => {
                self.keep(input);
                Ok(&[])
            }
            Framing::Length(left) | Framing::ChunkData(left) => {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                let (data, rest) = input.split_at(n);
                self.keep(data);
                if self.state == State::Done {
                    return Ok(&[]);
                }
                let left = left - n as u64;
                self.state = State::Body(match (framing, left) {
                    (Framing::Length(_), 0) => {
                        self.state = State::Done;
                        return Ok(&[]);
                    }
                    (Framing::Length(_), l) => Framing::Length(l),
                    (_, 0) => Framing::ChunkEnd,
                    (_, l) => Framing::ChunkData(l),
                });
                Ok(rest)
            }
            Framing::ChunkSize | Framing::ChunkEnd | Framing::Trailer => {
                self.feed_line(framing, input)
            }
        }
    }

    /// Gathers one line of the chunked framing and takes it.
    fn feed_line<'a>(&mut self, framing: Framing, input: &'a [u8]) -> Result<&'a [u8], HttpError> {
        let limit = if framing == Framing::Trailer {
            MAX_HEAD - self.trailer_bytes
        } else {
            MAX_CHUNK_LINE
        };
        let too_long = if framing == Framing::Trailer {
            HttpError::HeadTooLarge
        } else {
            HttpError::Chunk
        };
        let Some(nl) = input.iter().position(|&b| b == b'\n') else {
            if self.pending.len() + input.len() > limit {
                return Err(too_long);
            }
            self.pending.extend_from_slice(input);
            return Ok(&[]);
        };
        if self.pending.len() + nl > limit {
            return Err(too_long);
        }
        self.pending.extend_from_slice(&input[..nl]);
        let mut line = std::mem::take(&mut self.pending);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let rest = &input[nl + 1..];
        match framing {
            Framing::ChunkEnd => {
                if !line.is_empty() {
                    return Err(HttpError::Chunk);
                }
                self.state = State::Body(Framing::ChunkSize);
            }
            Framing::Trailer => {
                self.trailer_bytes += line.len() + 2;
                if line.is_empty() {
                    self.state = State::Done;
                    return Ok(&[]);
                }
            }
            _ => {
                let size = line.split(|&b| b == b';').next().unwrap_or_default();
                let size = parse_hex(trim(size)).ok_or(HttpError::Chunk)?;
                self.state = State::Body(if size == 0 {
                    Framing::Trailer
                } else {
                    Framing::ChunkData(size)
                });
            }
        }
        Ok(rest)
    }
}

/// Where the head in `buf` ends (just past its blank line), searching from
/// `from`: `\r\n\r\n`, or bare `\n` line ends (tolerated, as browsers do).
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + off;
        let next = buf.get(nl + 1..)?;
        if next.first() == Some(&b'\n') {
            return Some(nl + 2);
        }
        if next.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        if next.is_empty() || next == b"\r" {
            return None;
        }
        i = nl + 1;
    }
    None
}

/// `HTTP/1.x NNN[ reason]`: the status.
fn parse_status_line(line: &[u8]) -> Result<u16, HttpError> {
    let rest = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))
        .ok_or(HttpError::StatusLine)?;
    let (code, reason) = rest.split_at(rest.len().min(3));
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) || code[0] == b'0' {
        return Err(HttpError::StatusLine);
    }
    if !(reason.is_empty() || reason[0] == b' ') {
        return Err(HttpError::StatusLine);
    }
    parse_decimal(code)
        .and_then(|n| u16::try_from(n).ok())
        .ok_or(HttpError::StatusLine)
}

/// A header field: its name and its value (unfolded).
type Field<'a> = (&'a [u8], Vec<u8>);

/// The header fields of `lines` (after the status line, up to the blank
/// one), obsolete line folding replaced by a space (RFC 9112 section 5.2).
fn unfold<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Result<Vec<Field<'a>>, HttpError> {
    let mut fields: Vec<Field<'a>> = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            let (_, value) = fields.last_mut().ok_or(HttpError::HeaderField)?;
            value.push(b' ');
            value.extend_from_slice(trim(line));
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(HttpError::HeaderField)?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(HttpError::HeaderField);
        }
        fields.push((name, trim(value).to_vec()));
    }
    Ok(fields)
}

/// A token character (RFC 9110 section 5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// A decimal number of at most 18 digits.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// A hexadecimal number of at most 15 digits.
fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    s.iter().try_fold(0u64, |n, &d| {
        let v = (d as char).to_digit(16)?;
        Some(n * 16 + u64::from(v))
    })
}
