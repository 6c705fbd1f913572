//! A fast in-process SMTP sink: enough of RFC 5321 for a benchmark client
//! (greeting, EHLO/HELO, MAIL, RCPT, DATA, BDAT, RSET, NOOP, QUIT), replies to
//! pipelined commands in one write, the end of DATA found with `memmem`, BDAT
//! counted without looking at the bytes, 256 KiB reads. Messages are counted,
//! never stored.
//!
//! It also counts, for the benchmark's evidence, how many writes carried a
//! reply of a mail transaction (MAIL, RCPT, DATA, BDAT, the final reply): with
//! PIPELINING that is 2 per message, with CHUNKING 1, without either 4. The
//! `XSTATS` command returns the counters.
//!
//! Round trips are counted for every client the same way: a *turn* is a write
//! of the sink that follows something read from the client (the greeting,
//! written before anything is read, is not one). A client that waits for each
//! reply makes one turn per command; one that pipelines makes one per batch.
//! TLS handshake flights count too (the client waits for them), except that a
//! TLS 1.3 server's session tickets, which the client does not wait for, are
//! held back and go out with the next reply.
//!
//! With [`SinkConfig::pipe_connect`] the sink also offers early pipelining
//! (PIPECONNECT, draft-harris-early-pipe, as Exim does): input already
//! waiting when the greeting is about to go out is taken as a client's early
//! EHLO, not as a protocol error; the greeting is held back and goes out in
//! one write with the replies to that input (one turn), and the session is
//! counted in [`Stats::early`]: its greeting cost the client no round trip
//! of its own. Input that comes a little too late for that (the greeting
//! has just gone out alone) still travelled in the greeting's flight when it
//! arrives less than [`SinkConfig::link_rtt`] after the greeting left: it is
//! counted early too. Early input may end with STARTTLS: the 220 goes out in
//! that same write, and the handshake follows.
//!
//! With a rustls [`ServerConfig`] the sink also offers STARTTLS (RFC 3207),
//! then, inside TLS, `AUTH PLAIN` accepting any credentials; it counts the
//! handshakes, the resumed ones, and the logins.

use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use memchr::memmem;
use rustls::{HandshakeKind, ProtocolVersion, ServerConfig, ServerConnection};

mod stats;
pub use stats::{Snapshot, Stats, query_stats};

/// What the sink offers in its EHLO reply.
#[derive(Debug, Clone, Default)]
pub struct SinkConfig {
    /// Offer PIPELINING.
    pub pipelining: bool,
    /// Offer CHUNKING (BDAT).
    pub chunking: bool,
    /// Offer PIPECONNECT (early pipelining; with [`SinkConfig::pipelining`])
    /// and answer input that arrives before the greeting with the greeting.
    pub pipe_connect: bool,
    /// With PIPECONNECT: the round-trip time of the link between the clients
    /// and the sink (a [`crate::relay`]). A session whose first input
    /// arrives less than this after the greeting went out wrote it before
    /// the greeting arrived, and is counted in [`Stats::early`] even when
    /// that input came too late to go out with the greeting.
    pub link_rtt: Option<Duration>,
    /// Offer STARTTLS with this configuration (and AUTH PLAIN inside TLS).
    pub tls: Option<Arc<ServerConfig>>,
}

impl SinkConfig {
    /// A short name of what is offered: `plain`, `pipelining`, `chunking` or
    /// `pipelining+chunking`, with `+pipe-connect` when PIPECONNECT is
    /// offered and `+STARTTLS` when TLS is.
    #[must_use]
    pub fn label(&self) -> String {
        let base = match (self.pipelining, self.chunking) {
            (false, false) => "plain",
            (true, false) => "pipelining",
            (false, true) => "chunking",
            (true, true) => "pipelining+chunking",
        };
        let mut label = base.to_owned();
        if self.offers_pipe_connect() {
            label.push_str("+pipe-connect");
        }
        if self.tls.is_some() {
            label.push_str("+STARTTLS");
        }
        label
    }

    /// PIPECONNECT is offered: asked for, with PIPELINING, which it extends.
    fn offers_pipe_connect(&self) -> bool {
        self.pipe_connect && self.pipelining
    }
}

/// Accepts connections forever, one thread each.
pub fn serve(listener: TcpListener, config: SinkConfig, stats: Arc<Stats>) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept()?;
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let stats = stats.clone();
        let config = config.clone();
        std::thread::spawn(move || {
            // A client that goes away mid-session is not the sink's problem.
            let _ = handle(stream, &config, &stats);
        });
    }
}

/// Accepts connections forever and reads each to its end, discarding the bytes
/// (the peer of the raw TCP bound).
pub fn serve_discard(listener: TcpListener) -> io::Result<()> {
    loop {
        let (mut stream, _) = listener.accept()?;
        std::thread::spawn(move || {
            let mut buf = vec![0u8; READ_BUF];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
        });
    }
}

const READ_BUF: usize = 256 * 1024;
const TERMINATOR: &[u8] = b"\r\n.\r\n";

enum State {
    Command,
    /// In DATA: the last (up to 4) bytes seen, to find a terminator split
    /// across reads.
    Data {
        tail: [u8; 4],
        tail_len: usize,
    },
    Bdat {
        remaining: u64,
        last: bool,
    },
    /// After `AUTH PLAIN` without an initial response: the next line is it.
    AuthResponse,
}

/// The client's socket, counting turns (writes that follow a read).
struct Wire<'a> {
    tcp: TcpStream,
    stats: &'a Stats,
    /// Something was read since the last write.
    answered: bool,
    /// Count turns (off for an `XSTATS` connection).
    counting: bool,
    /// The client wrote before the greeting, which waits for the first
    /// turn (counted in [`Stats::early`] with it).
    early: bool,
    /// With PIPECONNECT offered: the RTT of the link in front of the sink
    /// ([`SinkConfig::link_rtt`]).
    link_rtt: Option<Duration>,
    /// When the first write (the greeting) went out.
    greeted: Option<Instant>,
    /// Something has been read from the client.
    heard: bool,
}

impl Wire<'_> {
    fn turn(&mut self) {
        self.greeted.get_or_insert_with(Instant::now);
        if self.answered && self.counting {
            self.stats.turns.fetch_add(1, Ordering::Relaxed);
            if self.early {
                self.stats.early.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.answered = false;
        self.early = false;
    }
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.tcp.read(buf)?;
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        self.answered |= n > 0;
        if n > 0 && !self.heard {
            self.heard = true;
            // Sent before the greeting reached the client: over a link that
            // delivers nothing early, an answer to the greeting arrives a
            // whole RTT after it went out at the soonest.
            if let (Some(rtt), Some(greeted)) = (self.link_rtt, self.greeted) {
                self.early |= greeted.elapsed() < rtt;
            }
        }
        Ok(n)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.turn();
        self.tcp.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.turn();
        self.tcp.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A server-side TLS session over a [`Wire`], driven by hand: the socket is
/// read 256 KiB at a time and the records fed to rustls from that buffer, and
/// rustls' output goes out only while the handshake needs it or with a reply
/// (so a TLS 1.3 server's session tickets travel with the next reply instead
/// of making a turn of their own).
struct TlsIo<'a> {
    conn: ServerConnection,
    wire: Wire<'a>,
    raw: Vec<u8>,
    raw_start: usize,
    raw_end: usize,
    eof: bool,
}

impl TlsIo<'_> {
    fn send_pending(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.wire)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }
}

impl Read for TlsIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                // 0: the client sent close_notify.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The socket ended without close_notify: the end all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.raw_start == self.raw_end {
                if self.eof {
                    return Ok(0);
                }
                self.raw_start = 0;
                self.raw_end = self.wire.read(&mut self.raw)?;
                if self.raw_end == 0 {
                    self.eof = true;
                    return Ok(0);
                }
            }
            let was_handshaking = self.conn.is_handshaking();
            let mut records = &self.raw[self.raw_start..self.raw_end];
            let used = self.conn.read_tls(&mut records)?;
            if used == 0 {
                return Ok(0);
            }
            self.raw_start += used;
            if let Err(e) = self.conn.process_new_packets() {
                // rustls has queued an alert for the client.
                let _ = self.send_pending();
                return Err(io::Error::other(e));
            }
            if self.conn.is_handshaking() {
                self.send_pending()?;
            } else if was_handshaking {
                let stats = self.wire.stats;
                stats.tls_handshakes.fetch_add(1, Ordering::Relaxed);
                if self.conn.handshake_kind() == Some(HandshakeKind::Resumed) {
                    stats.tls_resumed.fetch_add(1, Ordering::Relaxed);
                }
                // TLS 1.2 ends with the server's Finished, which the client
                // waits for; TLS 1.3 leaves only tickets, sent with the next reply.
                if self.conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
                    self.send_pending()?;
                }
            }
        }
    }
}

impl Write for TlsIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        self.send_pending()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}

enum Io<'a> {
    Plain(Wire<'a>),
    Tls(Box<TlsIo<'a>>),
    /// Between the two (never seen by a read or a write).
    Switching,
}

impl<'a> Io<'a> {
    fn wire(&mut self) -> Option<&mut Wire<'a>> {
        match self {
            Io::Plain(w) => Some(w),
            Io::Tls(t) => Some(&mut t.wire),
            Io::Switching => None,
        }
    }
}

fn switching() -> io::Error {
    io::Error::other("the connection is being switched to TLS")
}

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Plain(w) => w.read(buf),
            Io::Tls(t) => t.read(buf),
            Io::Switching => Err(switching()),
        }
    }
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Io::Plain(w) => w.write(buf),
            Io::Tls(t) => t.write(buf),
            Io::Switching => Err(switching()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Io::Plain(w) => w.flush(),
            Io::Tls(t) => t.flush(),
            Io::Switching => Err(switching()),
        }
    }
}

struct Conn<'a> {
    io: Io<'a>,
    out: Vec<u8>,
    out_has_tx: bool,
    stats: &'a Stats,
}

impl Conn<'_> {
    fn reply(&mut self, text: &[u8], tx: bool) {
        self.out.extend_from_slice(text);
        self.out_has_tx |= tx;
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.io.write_all(&self.out)?;
        self.out.clear();
        if self.out_has_tx {
            self.stats.tx_writes.fetch_add(1, Ordering::Relaxed);
            self.out_has_tx = false;
        }
        Ok(())
    }

    fn is_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }

    /// Starts the server side of a TLS handshake, which the next read drives.
    fn start_tls(&mut self, config: &Arc<ServerConfig>) -> io::Result<()> {
        let Io::Plain(wire) = std::mem::replace(&mut self.io, Io::Switching) else {
            return Err(switching());
        };
        let conn = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
        self.io = Io::Tls(Box::new(TlsIo {
            conn,
            wire,
            raw: vec![0u8; READ_BUF],
            raw_start: 0,
            raw_end: 0,
            eof: false,
        }));
        Ok(())
    }
}

fn handle(stream: TcpStream, config: &SinkConfig, stats: &Stats) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        io: Io::Plain(Wire {
            tcp: stream,
            stats,
            answered: false,
            counting: true,
            early: false,
            link_rtt: config.link_rtt.filter(|_| config.offers_pipe_connect()),
            greeted: None,
            heard: false,
        }),
        out: Vec::with_capacity(4096),
        out_has_tx: false,
        stats,
    };
    let finder = memmem::Finder::new(TERMINATOR);
    let mut buf = vec![0u8; READ_BUF];
    let (mut start, mut end) = (0usize, 0usize);
    let mut state = State::Command;
    conn.reply(b"220 sink.example ESMTP bench sink\r\n", false);
    if config.offers_pipe_connect() {
        end = early_input(&mut conn.io, &mut buf)?;
    }
    loop {
        if start == end {
            // Everything received is handled: answer it all in one write.
            conn.flush()?;
            start = 0;
            end = conn.io.read(&mut buf)?;
            if end == 0 {
                return Ok(());
            }
        }
        match &mut state {
            State::Command | State::AuthResponse => {
                let Some(nl) = memchr::memchr(b'\n', &buf[start..end]) else {
                    // A partial command line: keep it and read more.
                    if end - start > 4096 {
                        return Ok(());
                    }
                    conn.flush()?;
                    buf.copy_within(start..end, 0);
                    end -= start;
                    start = 0;
                    let n = conn.io.read(&mut buf[end..])?;
                    if n == 0 {
                        return Ok(());
                    }
                    end += n;
                    continue;
                };
                let line = &buf[start..start + nl];
                start += nl + 1;
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if let State::AuthResponse = state {
                    state = State::Command;
                    if line == b"*" {
                        conn.reply(b"501 5.7.0 Authentication cancelled\r\n", false);
                    } else {
                        stats.auths.fetch_add(1, Ordering::Relaxed);
                        conn.reply(b"235 2.7.0 Authentication successful\r\n", false);
                    }
                    continue;
                }
                match command(&mut conn, config, stats, line, &mut state)? {
                    After::Next => {}
                    After::Discard => start = end,
                    After::Close => return Ok(()),
                }
            }
            State::Data { tail, tail_len } => {
                let chunk = &buf[start..end];
                // A terminator that starts in the bytes of an earlier read.
                let mut joined = [0u8; 8];
                let head = chunk.len().min(4);
                joined[..*tail_len].copy_from_slice(&tail[..*tail_len]);
                joined[*tail_len..*tail_len + head].copy_from_slice(&chunk[..head]);
                let straddling = memmem::find(&joined[..*tail_len + head], TERMINATOR)
                    .filter(|&p| p < *tail_len)
                    .map(|p| p + TERMINATOR.len() - *tail_len);
                let found = straddling.or_else(|| finder.find(chunk).map(|p| p + TERMINATOR.len()));
                match found {
                    Some(used) => {
                        stats.body_bytes.fetch_add(used as u64, Ordering::Relaxed);
                        stats.messages.fetch_add(1, Ordering::Relaxed);
                        start += used;
                        conn.reply(b"250 2.0.0 Ok: queued\r\n", true);
                        state = State::Command;
                    }
                    None => {
                        stats
                            .body_bytes
                            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        // Keep the last 4 bytes seen.
                        let total = *tail_len + chunk.len();
                        let mut t = [0u8; 4];
                        let keep = total.min(4);
                        for (i, slot) in t.iter_mut().enumerate().take(keep) {
                            let idx = total - keep + i;
                            *slot = if idx < *tail_len {
                                tail[idx]
                            } else {
                                chunk[idx - *tail_len]
                            };
                        }
                        *tail = t;
                        *tail_len = keep;
                        start = end;
                    }
                }
            }
            State::Bdat { remaining, last } => {
                let take = ((end - start) as u64).min(*remaining);
                *remaining -= take;
                start += take as usize;
                stats.body_bytes.fetch_add(take, Ordering::Relaxed);
                if *remaining == 0 {
                    let last = *last;
                    finish_bdat(&mut conn, last);
                    state = State::Command;
                }
            }
        }
    }
}

/// What the client sent before the greeting, read without waiting (as Exim
/// looks for it before it sends its banner): 0 when nothing is there yet.
/// What was read is answered with the greeting, in one write.
fn early_input(io: &mut Io<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let Some(wire) = io.wire() else {
        return Ok(0);
    };
    wire.tcp.set_nonblocking(true)?;
    let read = wire.read(buf);
    wire.tcp.set_nonblocking(false)?;
    match read {
        Ok(n) => {
            wire.early = n > 0;
            Ok(n)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    }
}

/// What the connection does after a command.
enum After {
    /// Goes on with what it has read.
    Next,
    /// Drops what it has read and not handled (the handshake starts).
    Discard,
    /// Closes.
    Close,
}

/// Answers one command line (without its line end).
fn command(
    conn: &mut Conn<'_>,
    config: &SinkConfig,
    stats: &Stats,
    line: &[u8],
    state: &mut State,
) -> io::Result<After> {
    let verb: [u8; 4] = match line.get(..4) {
        Some(v) => [
            v[0].to_ascii_uppercase(),
            v[1].to_ascii_uppercase(),
            v[2].to_ascii_uppercase(),
            v[3].to_ascii_uppercase(),
        ],
        None => *b"    ",
    };
    match &verb {
        b"EHLO" | b"LHLO" => {
            let mut r = b"250-sink.example\r\n".to_vec();
            if config.pipelining {
                r.extend_from_slice(b"250-PIPELINING\r\n");
            }
            if config.chunking {
                r.extend_from_slice(b"250-CHUNKING\r\n");
            }
            if config.offers_pipe_connect() {
                r.extend_from_slice(b"250-PIPECONNECT\r\n");
            }
            if config.tls.is_some() {
                if conn.is_tls() {
                    r.extend_from_slice(b"250-AUTH PLAIN\r\n");
                } else {
                    r.extend_from_slice(b"250-STARTTLS\r\n");
                }
            }
            r.extend_from_slice(b"250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n");
            conn.reply(&r, false);
        }
        b"HELO" => conn.reply(b"250 sink.example\r\n", false),
        b"STAR" => match &config.tls {
            Some(tls) if !conn.is_tls() && line.eq_ignore_ascii_case(b"STARTTLS") => {
                conn.reply(b"220 2.0.0 Ready to start TLS\r\n", false);
                conn.flush()?;
                // Nothing sent before the handshake may be used after
                // it (RFC 3207 section 4.2).
                conn.start_tls(tls)?;
                return Ok(After::Discard);
            }
            _ => conn.reply(b"503 5.5.1 Error: TLS not available\r\n", false),
        },
        b"AUTH" => {
            let args = std::str::from_utf8(&line[4..]).unwrap_or("");
            let mut words = args.split_whitespace();
            let mechanism = words.next().unwrap_or("");
            if !mechanism.eq_ignore_ascii_case("PLAIN") {
                conn.reply(b"504 5.5.4 Unrecognized authentication type\r\n", false);
            } else if words.next().is_some() {
                // Any credentials will do.
                stats.auths.fetch_add(1, Ordering::Relaxed);
                conn.reply(b"235 2.7.0 Authentication successful\r\n", false);
            } else {
                conn.reply(b"334 \r\n", false);
                *state = State::AuthResponse;
            }
        }
        b"MAIL" => conn.reply(b"250 2.1.0 Ok\r\n", true),
        b"RCPT" => conn.reply(b"250 2.1.5 Ok\r\n", true),
        b"DATA" => {
            conn.reply(b"354 End data with <CR><LF>.<CR><LF>\r\n", true);
            // As if a line had just ended: ".\r\n" at once is an empty body.
            *state = State::Data {
                tail: *b"\r\n\0\0",
                tail_len: 2,
            };
        }
        b"BDAT" => {
            let args = std::str::from_utf8(&line[4..]).unwrap_or("");
            let mut words = args.split_whitespace();
            let size = words.next().and_then(|w| w.parse::<u64>().ok());
            let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
            match size {
                Some(0) => finish_bdat(conn, last),
                Some(n) => {
                    *state = State::Bdat { remaining: n, last };
                }
                None => conn.reply(b"501 5.5.4 Syntax: BDAT size [LAST]\r\n", true),
            }
        }
        b"RSET" | b"NOOP" => conn.reply(b"250 2.0.0 Ok\r\n", false),
        b"QUIT" => {
            conn.reply(b"221 2.0.0 Bye\r\n", false);
            conn.flush()?;
            return Ok(After::Close);
        }
        b"XSTA" => {
            // The benchmark's own queries are not the client's turns.
            if let Some(w) = conn.io.wire() {
                w.counting = false;
            }
            let s = stats.snapshot();
            let r = format!(
                "250 messages={} body_bytes={} tx_writes={} reads={} connections={} \
                     turns={} tls_handshakes={} tls_resumed={} auths={} early={}\r\n",
                s.messages,
                s.body_bytes,
                s.tx_writes,
                s.reads,
                s.connections,
                s.turns,
                s.tls_handshakes,
                s.tls_resumed,
                s.auths,
                s.early
            );
            conn.reply(r.as_bytes(), false);
        }
        _ => conn.reply(b"502 5.5.2 Error: command not recognized\r\n", false),
    }
    Ok(After::Next)
}

fn finish_bdat(conn: &mut Conn<'_>, last: bool) {
    if last {
        conn.stats.messages.fetch_add(1, Ordering::Relaxed);
        conn.reply(b"250 2.0.0 Ok: queued\r\n", true);
    } else {
        conn.reply(b"250 2.0.0 Ok: chunk received\r\n", true);
    }
}
