//! One accepted connection: buffered, bounded reads; batched writes; the
//! server side of TLS; and the record of every byte in both directions.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ServerConnection, StreamOwned};

use crate::fault::{Fault, FaultAction};
use crate::record::{Mismatch, Received, Shared};
use crate::sock::Sock;

/// The most bytes one connection may send before the server drops it.
pub(crate) const MAX_RECEIVED: usize = 64 * 1024 * 1024;
/// The most bytes of a connection's output kept in its log.
pub(crate) const MAX_SENT_LOG: usize = 1024 * 1024;
/// The most write sizes kept in a connection's log.
const MAX_WRITES_LOG: usize = 100_000;
/// How long a closing connection waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(2);
/// How long a client must stay silent for [`FaultAction::ResetWhenIdle`] to
/// take it as waiting for a reply.
const IDLE: Duration = Duration::from_millis(250);

/// The byte stream of a connection, before or after the TLS handshake.
enum Io {
    Plain(Sock),
    Tls(Box<StreamOwned<ServerConnection, Sock>>),
    /// After a failed handshake: nothing more can be read or written.
    Gone,
}

impl Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf),
            Io::Tls(s) => s.read(buf),
            Io::Gone => Ok(0),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Io::Plain(s) => {
                s.write_all(buf)?;
                s.flush()
            }
            Io::Tls(s) => {
                s.write_all(buf)?;
                s.flush()
            }
            Io::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

/// Whether an error is a read timeout.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A connection with an input buffer, an output batch and a log.
pub(crate) struct Conn {
    io: Io,
    /// A second handle on the socket, for timeouts and shutdown.
    ctl: Sock,
    inbuf: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
    shared: Arc<Shared>,
    index: usize,
    received: usize,
    tls: bool,
    read_timeout: Duration,
    tls_config: Arc<rustls::ServerConfig>,
    /// The fault to inject, and how many bytes were sent so far.
    fault: Option<Fault>,
    sent: usize,
    /// The fault struck with this action: no more input or output.
    struck: Option<FaultAction>,
    /// Reading and dropping input after a fault (or while closing).
    stalling: bool,
    /// A negative reply went out ([`Fault::AfterRefusal`]).
    refused: bool,
}

/// The error that ends a session when its fault strikes.
fn struck() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "injected fault")
}

impl Conn {
    pub(crate) fn new(
        sock: Sock,
        ctl: Sock,
        shared: Arc<Shared>,
        index: usize,
        read_timeout: Duration,
        tls_config: Arc<rustls::ServerConfig>,
    ) -> Conn {
        Conn {
            io: Io::Plain(sock),
            ctl,
            inbuf: Vec::new(),
            pos: 0,
            out: Vec::new(),
            shared,
            index,
            received: 0,
            tls: false,
            read_timeout,
            tls_config,
            fault: None,
            sent: 0,
            struck: None,
            stalling: false,
            refused: false,
        }
    }

    /// Injects `fault` (behavioural sessions).
    pub(crate) fn set_fault(&mut self, fault: Option<Fault>) {
        self.fault = fault;
    }

    /// Records in the log that the connection's fault struck.
    pub(crate) fn note_fault(&self) {
        let (index, fault) = (self.index, self.fault);
        self.shared.update(|r| {
            if let Some(log) = r.conns.get_mut(index) {
                log.fault = fault;
            }
        });
    }

    /// The number of commands after which this connection answers 421.
    pub(crate) fn reply_421_after(&self) -> Option<usize> {
        match self.fault {
            Some(Fault::Reply421After(n)) => Some(n),
            _ => None,
        }
    }

    /// The fault strikes: nothing more goes out; a stall reads and drops
    /// input until the client closes. The session ends with an error.
    fn strike(&mut self, action: FaultAction) -> io::Error {
        self.out.clear();
        self.struck = Some(action);
        self.note_fault();
        match action {
            FaultAction::Stall => {
                self.stalling = true;
                self.drain(self.read_timeout);
                self.stalling = false;
            }
            FaultAction::ResetWhenIdle => {
                self.stalling = true;
                self.drain_until_idle();
                self.stalling = false;
            }
            FaultAction::Close | FaultAction::Reset => {}
        }
        struck()
    }

    /// Reads (logs) and drops input until the client is silent for [`IDLE`]
    /// or closes, within the read timeout.
    fn drain_until_idle(&mut self) {
        let end = Instant::now().checked_add(self.read_timeout);
        loop {
            let left = end.map_or(IDLE, |e| e.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return;
            }
            match self.fill_within(IDLE.min(left)) {
                Ok(Some(0) | None) | Err(_) => return,
                Ok(Some(_)) => self.discard_buffered(),
            }
        }
    }

    /// The connection's number (its index in the server's logs).
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// Whether TLS is active.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls
    }

    /// Input received and not consumed yet.
    pub(crate) fn buffered(&self) -> &[u8] {
        self.inbuf.get(self.pos..).unwrap_or_default()
    }

    /// Marks `n` buffered bytes as consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.inbuf.len());
    }

    /// Drops every buffered byte.
    pub(crate) fn discard_buffered(&mut self) {
        self.inbuf.clear();
        self.pos = 0;
    }

    /// Reads more input. The pending output is sent first: replies are flushed
    /// only when the server needs more input, so the replies to pipelined
    /// commands leave in one write. `Ok(0)` is the end of the stream.
    pub(crate) fn fill(&mut self) -> io::Result<usize> {
        self.flush()?;
        let mut room = 16 * 1024;
        if !self.stalling {
            if self.struck.is_some() {
                return Err(struck());
            }
            if let (true, Some(Fault::AfterRefusal(action))) = (self.refused, self.fault) {
                return Err(self.strike(action));
            }
            if let Some(Fault::AfterReceived(at, action)) = self.fault {
                if self.received >= at {
                    return Err(self.strike(action));
                }
                room = room.min(at - self.received);
            }
        }
        if self.pos == self.inbuf.len() {
            self.inbuf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 && self.pos * 2 > self.inbuf.len() {
            self.inbuf.drain(..self.pos);
            self.pos = 0;
        }
        let mut buf = [0u8; 16 * 1024];
        let n = loop {
            match self.io.read(buf.get_mut(..room).unwrap_or_default()) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A peer that goes away without close_notify is an end of stream.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break 0,
                Err(e) => return Err(e),
            }
        };
        let got = buf.get(..n).unwrap_or_default();
        self.received += n;
        if self.received > MAX_RECEIVED {
            return Err(io::Error::other("the client sent more than the cap"));
        }
        self.inbuf.extend_from_slice(got);
        let index = self.index;
        self.shared.update(|r| {
            if let Some(log) = r.conns.get_mut(index) {
                log.received.extend_from_slice(got);
            }
        });
        Ok(n)
    }

    /// Like [`Conn::fill`], but gives up after `limit`: `Ok(None)` when nothing
    /// arrived in time.
    pub(crate) fn fill_within(&mut self, limit: Duration) -> io::Result<Option<usize>> {
        self.flush()?;
        self.ctl.set_read_timeout(limit)?;
        let r = self.fill();
        self.ctl.set_read_timeout(self.read_timeout)?;
        match r {
            Ok(n) => Ok(Some(n)),
            Err(e) if is_timeout(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One line without its line ending (CRLF, or a bare LF); `None` at the
    /// end of the stream. A line longer than `max` is an error.
    pub(crate) fn read_line(&mut self, max: usize) -> io::Result<Option<Vec<u8>>> {
        let mut scanned = 0;
        loop {
            let have = self.buffered();
            if let Some(n) = have.iter().skip(scanned).position(|&b| b == b'\n') {
                let end = scanned + n;
                let mut line = have.get(..end).unwrap_or_default().to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.consume(end + 1);
                return Ok(Some(line));
            }
            scanned = have.len();
            if scanned > max {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            if self.fill()? == 0 {
                return Ok(None);
            }
        }
    }

    /// Exactly `n` bytes; `Err(partial)` when the stream ends first.
    pub(crate) fn read_exact(&mut self, n: usize) -> io::Result<Result<Vec<u8>, Vec<u8>>> {
        if n > MAX_RECEIVED {
            return Err(io::Error::other("the client announced more than the cap"));
        }
        while self.buffered().len() < n {
            if self.fill()? == 0 {
                let partial = self.buffered().to_vec();
                self.discard_buffered();
                return Ok(Err(partial));
            }
        }
        let v = self.buffered().get(..n).unwrap_or_default().to_vec();
        self.consume(n);
        Ok(Ok(v))
    }

    /// Consumes input up to and including `end`; false when the stream ends
    /// first.
    pub(crate) fn read_until(&mut self, end: &[u8]) -> io::Result<bool> {
        if end.is_empty() {
            return Ok(true);
        }
        let mut from = 0;
        loop {
            let have = self.buffered();
            if let Some(i) = have
                .get(from..)
                .unwrap_or_default()
                .windows(end.len())
                .position(|w| w == end)
            {
                self.consume(from + i + end.len());
                return Ok(true);
            }
            from = have.len().saturating_sub(end.len() - 1);
            if self.fill()? == 0 {
                return Ok(false);
            }
        }
    }

    /// Queues one reply line (CRLF added) and records it.
    pub(crate) fn reply(&mut self, line: &str) {
        let last_line = line.as_bytes().get(3).is_none_or(|&b| b != b'-');
        if last_line && (line.starts_with('4') || line.starts_with('5')) {
            self.refused = true;
        }
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        let index = self.index;
        self.shared.update(|r| {
            if let Some(log) = r.conns.get_mut(index) {
                log.server_lines.push(line.to_owned());
                log.transcript.push(format!("S: {line}"));
            }
        });
    }

    /// Waits up to `limit` for the client to write before the greeting;
    /// records and returns whether it did.
    pub(crate) fn watch_early_talk(&mut self, limit: Duration) -> io::Result<bool> {
        let talked = self.pos < self.inbuf.len() || self.fill_within(limit)?.is_some_and(|n| n > 0);
        let index = self.index;
        self.shared.update(|r| {
            if let Some(log) = r.conns.get_mut(index) {
                log.talked_first = talked;
            }
        });
        Ok(talked)
    }

    /// Records a line of the client in the printable transcript.
    pub(crate) fn note_client(&self, text: &str) {
        let index = self.index;
        self.shared.update(|r| {
            if let Some(log) = r.conns.get_mut(index) {
                log.transcript.push(format!("C: {text}"));
            }
        });
    }

    /// Records a line a script read with `ExpectLine`.
    pub(crate) fn note_expected_line(&self, text: String) {
        let index = self.index;
        self.shared.update(|r| {
            if let Some(log) = r.conns.get_mut(index) {
                log.expected_lines.push(text);
            }
        });
    }

    /// Records an accepted message.
    pub(crate) fn record_message(&self, message: Received) {
        self.shared.update(|r| r.messages.push(message));
    }

    /// Records a difference seen by a script's `Expect`.
    pub(crate) fn record_mismatch(&self, mismatch: Mismatch) {
        let index = self.index;
        self.shared.update(|r| {
            if let Some(log) = r.conns.get_mut(index) {
                log.mismatches.push(mismatch);
            }
        });
    }

    /// Sends `bytes` now, after anything queued.
    pub(crate) fn send_now(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(bytes);
        self.flush()
    }

    /// Writes the queued output.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        if self.struck.is_some() {
            self.out.clear();
            return Err(struck());
        }
        let mut out = std::mem::take(&mut self.out);
        let mut cut = None;
        if let Some(Fault::AfterSent(at, action)) = self.fault {
            // Exactly `at` bytes go out; the fault strikes when more would.
            let room = at.saturating_sub(self.sent);
            if out.len() > room || room == 0 {
                out.truncate(room);
                cut = Some(action);
            }
        }
        self.sent += out.len();
        let written = self.write_logged(&out);
        match cut {
            Some(action) => {
                written?;
                Err(self.strike(action))
            }
            None => written,
        }
    }

    /// Writes `out` and records it in the connection's log.
    fn write_logged(&mut self, out: &[u8]) -> io::Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        let index = self.index;
        self.shared.update(|r| {
            if let Some(log) = r.conns.get_mut(index) {
                if log.writes.len() < MAX_WRITES_LOG {
                    log.writes.push(out.len());
                }
                let room = MAX_SENT_LOG.saturating_sub(log.sent.len());
                log.sent
                    .extend_from_slice(out.get(..room.min(out.len())).unwrap_or_default());
            }
        });
        self.io.write_all(out)
    }

    /// Runs the server side of the TLS handshake. Input buffered before it is
    /// dropped: plaintext that followed STARTTLS must not be taken as sent
    /// under TLS (RFC 3207 section 6).
    pub(crate) fn start_tls(&mut self) -> io::Result<()> {
        self.flush()?;
        self.discard_buffered();
        let Io::Plain(sock) = std::mem::replace(&mut self.io, Io::Gone) else {
            return Err(io::Error::other("TLS is already active"));
        };
        let conn = ServerConnection::new(self.tls_config.clone()).map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            let (read, written) = tls.conn.complete_io(&mut tls.sock)?;
            if read == 0 && written == 0 && tls.conn.is_handshaking() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        let resumed = tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        self.io = Io::Tls(Box::new(tls));
        self.tls = true;
        let index = self.index;
        self.shared.update(|r| {
            if let Some(log) = r.conns.get_mut(index) {
                log.tls = true;
                log.tls_resumed = resumed;
                log.transcript.push("-- TLS established".to_owned());
            }
        });
        Ok(())
    }

    /// Reads and drops input until the client closes or `limit` passes; true
    /// when the client closed.
    pub(crate) fn drain(&mut self, limit: Duration) -> bool {
        let end = Instant::now().checked_add(limit);
        loop {
            let left = end.map_or(limit, |e| e.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return false;
            }
            match self.fill_within(left) {
                Ok(Some(0)) | Err(_) => return true,
                Ok(None) => return false,
                Ok(Some(_)) => self.discard_buffered(),
            }
        }
    }

    /// Closes gracefully: sends what is queued (and TLS close_notify), shuts
    /// the write side, then waits a little for the client to close its side,
    /// so that unread input does not turn the close into a reset that would
    /// hide the last reply from the client.
    pub(crate) fn close(mut self) {
        let refusal_reset = self.refused
            && matches!(
                self.fault,
                Some(Fault::AfterRefusal(
                    FaultAction::Reset | FaultAction::ResetWhenIdle
                ))
            );
        if refusal_reset && self.struck.is_none() {
            // A refusal closing the session (421): it goes out, then the
            // reset.
            let _ = self.flush();
        }
        if refusal_reset
            || matches!(
                self.struck,
                Some(FaultAction::Reset | FaultAction::ResetWhenIdle)
            )
        {
            self.reset();
            return;
        }
        self.stalling = true;
        let _ = self.flush();
        if let Io::Tls(tls) = &mut self.io {
            tls.conn.send_close_notify();
            let _ = tls.conn.complete_io(&mut tls.sock);
        }
        let _ = self.ctl.shutdown(Shutdown::Write);
        // The server is done with the connection; the linger is only courtesy.
        mark_closed(&self.shared, self.index);
        self.drain(LINGER);
    }

    /// Drops the connection at once with a TCP reset (`SO_LINGER` 0): unread
    /// input is discarded and the client's next read or write fails. A Unix
    /// socket is just closed.
    pub(crate) fn reset(self) {
        if let Sock::Tcp(s) = &self.ctl {
            // Best effort: without it the close is a reset anyway when input
            // is unread, and a graceful close otherwise.
            let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
        }
        mark_closed(&self.shared, self.index);
    }

    /// Waits for the client to close after a script ended, at most `limit`.
    pub(crate) fn wait_for_client_close(mut self, limit: Duration) {
        let _ = self.flush();
        self.drain(limit);
    }
}

/// Marks a connection as over (once).
pub(crate) fn mark_closed(shared: &Shared, index: usize) {
    shared.update(|r| {
        if let Some(log) = r.conns.get_mut(index) {
            if !log.closed {
                log.closed = true;
                r.closed += 1;
            }
        }
    });
}
