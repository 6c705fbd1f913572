//! The decisions of a facade's drive loop, written once: what I/O to do next
//! for the operation being driven ([`Driver::next`], an [`Io`]), and what
//! what happened means for the session (the `*_done` reports). A facade's
//! loop asks, performs the I/O with its own transport (std or async), and
//! reports back; it decides nothing.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_sansio::client::deadline_after;
use smtp_sansio::{Completion, Event, Op, Output};

use crate::args::Body;
use crate::tls::ClientConfig;
use crate::{Driver, Error, settle};

/// The next thing a facade does for the operation it drives.
#[must_use]
pub enum Io<'a, T> {
    /// Write all of `bytes`, each write within `timeout`; then
    /// [`Driver::write_done`].
    Write {
        /// The bytes, in order.
        bytes: &'a [u8],
        /// How long one write may take.
        timeout: Duration,
    },
    /// Read once into `buf`, before `deadline`; then [`Driver::read_done`].
    Read {
        /// Where the bytes go.
        buf: &'a mut [u8],
        /// When the wait ends.
        deadline: Instant,
    },
    /// Read the next chunk of the caller's body reader into this buffer;
    /// then [`Driver::body_done`].
    ReadBody(&'a mut [u8]),
    /// Run the TLS client handshake over the plain transport; then
    /// [`Driver::handshake_done`].
    Handshake(TlsUpgrade<'a>),
    /// Close the transport (best effort, within [`Driver::close_deadline`]),
    /// then ask again.
    Close,
    /// The operation is over, with this result (a failure names the server).
    Done(Result<T, Error>),
}

impl<T> std::fmt::Debug for Io<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Io::Write { bytes, timeout } => {
                write!(f, "Write(<{} bytes>, {timeout:?})", bytes.len())
            }
            Io::Read { deadline, .. } => write!(f, "Read(until {deadline:?})"),
            Io::ReadBody(buf) => write!(f, "ReadBody(<{} bytes>)", buf.len()),
            Io::Handshake(tls) => write!(f, "Handshake({})", tls.host),
            Io::Close => f.write_str("Close"),
            Io::Done(r) => f.write_str(if r.is_ok() { "Done(Ok)" } else { "Done(Err)" }),
        }
    }
}

/// A TLS client handshake to run over a plain transport.
#[derive(Debug)]
pub struct TlsUpgrade<'a> {
    /// The configuration.
    pub config: Arc<ClientConfig>,
    /// The name the certificate is checked against (and SNI).
    pub host: &'a str,
    /// When the handshake must be over.
    pub deadline: Instant,
}

impl TlsUpgrade<'_> {
    /// The handshake that opens a connection `b` makes with implicit TLS
    /// (none for another TLS mode): the configuration given or the default
    /// one, the name certificates are checked against, and the deadline of
    /// the options' handshake timeout from now.
    ///
    /// # Errors
    ///
    /// No TLS configuration can be had, or a zero timeout.
    pub fn implicit<'b, C>(
        b: &'b crate::Builder<C>,
        options: &crate::Options,
    ) -> Result<Option<TlsUpgrade<'b>>, Error> {
        if b.tls_mode() != crate::Tls::Implicit {
            return Ok(None);
        }
        let config = crate::tls::config_or_default(b.tls_config_given())?;
        let deadline = deadline_after(Instant::now(), options.timeouts()?.tls_handshake);
        let host = b.server_name();
        Ok(Some(TlsUpgrade {
            config,
            host,
            deadline,
        }))
    }
}

/// Whether `e` says a socket timeout fired (or the facade's timer).
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Driver {
    /// Starts driving an operation: refused while another one is being driven
    /// (a cancelled call left the session out of step).
    ///
    /// # Errors
    ///
    /// [`Error::out_of_step`].
    pub fn begin(&mut self) -> Result<(), Error> {
        if self.busy {
            let e = Error::out_of_step();
            self.report_error(&e);
            return Err(e);
        }
        self.busy = true;
        self.broken = None;
        self.failed = None;
        Ok(())
    }

    /// What to do next for `op`, whose body (if any) is `body`: the body's
    /// pieces in memory are handed to the core here; a reader is read by the
    /// facade ([`Io::ReadBody`]). A transport failure ends the session in
    /// the core and the loop goes on to the operation's own result, which
    /// says whether a message's fate is unknown ([`settle`]).
    pub fn next<T: Completion, R: ?Sized>(
        &mut self,
        op: Op<T>,
        body: &mut Body<'_, R>,
    ) -> Io<'_, T> {
        loop {
            if let Some(e) = self.failed.take() {
                return self.done(Err(e));
            }
            if std::mem::take(&mut self.close_next) {
                return Io::Close;
            }
            let now = Instant::now();
            match self.core.drive(op) {
                Output::Transmit(bytes) => {
                    self.out = bytes;
                    let timeout = self.core.write_timeout();
                    return Io::Write {
                        bytes: &self.out,
                        timeout,
                    };
                }
                Output::Event(Event::BodyWanted { .. }) => {
                    let (piece, last) = match body {
                        Body::Parts(cursor) => cursor.next_piece(),
                        Body::None => (&[][..], true),
                        Body::Reader(_) => {
                            self.chunk.resize(crate::CHUNK, 0);
                            return Io::ReadBody(&mut self.chunk);
                        }
                    };
                    if let Err(e) = self.core.send_body(now, piece, last) {
                        self.failed = Some(e.into());
                    }
                }
                Output::StartTls { deadline } => match self.tls_config() {
                    Ok(config) => {
                        let host = &self.host;
                        return Io::Handshake(TlsUpgrade {
                            config,
                            host,
                            deadline,
                        });
                    }
                    Err(e) => self.abort(e),
                },
                Output::Trace(t) => self.transcript.line(&t),
                Output::Wait(deadline) => {
                    // The core's drive loop always gives a deadline; bound the
                    // wait anyway.
                    let mut deadline = deadline.unwrap_or_else(|| {
                        deadline_after(now, self.core.config().timeouts.command)
                    });
                    if let Some(limit) = self.limit {
                        if now >= limit {
                            self.abort(Error::timeout("the reply to QUIT"));
                            continue;
                        }
                        deadline = deadline.min(limit);
                    }
                    if deadline <= now {
                        self.core.handle_timeout(now);
                        continue;
                    }
                    self.rbuf.resize(crate::READ_BUFFER, 0);
                    return Io::Read {
                        buf: &mut self.rbuf,
                        deadline,
                    };
                }
                Output::Closed => return Io::Close,
                Output::Event(Event::Completed { result, .. }) => {
                    let r = settle(result, self.broken.take());
                    return self.done(r);
                }
            }
        }
    }

    /// The operation's result, its failure naming the server (and reported
    /// as an event, [`Driver::report_error`]). The end of the builder's
    /// open records the session span's `tls`.
    fn done<T>(&mut self, r: Result<T, Error>) -> Io<'_, T> {
        self.busy = false;
        if std::mem::take(&mut self.opening) {
            self.record_tls();
        }
        let r = r.map_err(|e| e.with_server(&self.server));
        if let Err(e) = &r {
            self.report_error(e);
        }
        Io::Done(r)
    }

    /// Ends the session after a transport failure: the core takes it as the
    /// end of the stream, and the transport is closed next.
    fn abort(&mut self, e: Error) {
        self.core.handle_eof(Instant::now());
        self.broken = Some(e);
        self.close_next = true;
    }

    /// How an [`Io::Write`] went: all written, or a failure (an error, the
    /// write timeout passed: `WouldBlock` or `TimedOut`) once `written` bytes
    /// were accepted. The core learns how far it got, which decides whether
    /// the end of a message went out; the transport is closed next.
    pub fn write_done(&mut self, result: io::Result<()>, written: usize) {
        match result {
            Ok(()) => self.core.recycle(std::mem::take(&mut self.out)),
            Err(e) => {
                self.core.handle_write_error(Instant::now(), written);
                self.broken = Some(if is_timeout(&e) {
                    Error::timeout("writing to the server")
                } else {
                    Error::from_tls_io(e)
                });
                self.close_next = true;
            }
        }
    }

    /// How an [`Io::Read`] went: `n` bytes (0: the end of the stream), the
    /// deadline passed (`WouldBlock` or `TimedOut`, also a socket timeout
    /// firing early: the core ignores an early timeout), interrupted (asked
    /// again), or a transport failure, which ends the session.
    pub fn read_done(&mut self, result: io::Result<usize>) {
        let now = Instant::now();
        match result {
            Ok(0) => self.core.handle_eof(now),
            Ok(n) => {
                let bytes = self.rbuf.get(..n).unwrap_or_default();
                self.core.handle_input(now, bytes);
            }
            Err(e) if is_timeout(&e) => self.core.handle_timeout(now),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => self.abort(Error::from_tls_io(e)),
        }
    }

    /// What a read that does not wait (a probe of an idle session) found: the
    /// end of the stream or a failure ends the session.
    pub fn probe_done(&mut self, result: io::Result<usize>) {
        let now = Instant::now();
        match result {
            Ok(n) if n > 0 => {
                let bytes = self.rbuf.get(..n).unwrap_or_default();
                self.core.handle_input(now, bytes);
            }
            _ => self.core.handle_eof(now),
        }
    }

    /// The buffer a probe reads into.
    pub fn read_buffer(&mut self) -> &mut [u8] {
        self.rbuf.resize(crate::READ_BUFFER, 0);
        &mut self.rbuf
    }

    /// How an [`Io::ReadBody`] went: `n` bytes read (0: the end of the
    /// message), or the reader failed, which drops the connection (the
    /// transaction cannot be completed).
    pub fn body_done(&mut self, result: io::Result<usize>) {
        match result {
            Ok(n) => {
                let piece = self.chunk.get(..n).unwrap_or_default();
                if let Err(e) = self.core.send_body(Instant::now(), piece, n == 0) {
                    self.failed = Some(e.into());
                }
            }
            Err(e) => self.abort(Error::Io(e)),
        }
    }

    /// How an [`Io::Handshake`] went: established (and whether it resumed an
    /// earlier session), or failed, which ends the session.
    pub fn handshake_done(&mut self, result: Result<bool, Error>) {
        match result {
            Ok(resumed) => {
                self.core.tls_established(Instant::now());
                self.note_tls(resumed);
            }
            Err(e) => self.abort(e),
        }
    }

    /// How long closing the transport may take (a TLS close sends
    /// `close_notify`, which a peer that stopped reading never takes).
    #[must_use]
    pub fn close_deadline(&self) -> Instant {
        deadline_after(Instant::now(), self.core.write_timeout())
    }
}
