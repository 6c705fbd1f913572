//! The byte stream under a blocking session: a TCP or Unix socket or a
//! caller's stream, plain or inside rustls (driven by hand, so that every read
//! and handshake ends at its deadline), with socket timeouts set only when
//! they change.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::net::{SetTimeouts, SocketTimeouts};
use crate::{Error, TlsUpgrade};
#[cfg(feature = "tls")]
use rustls::ClientConnection;

/// A connected socket.
pub trait Socket: Read + Write + SetTimeouts + Send {
    /// The socket, for setting its timeouts.
    fn timeouts(&self) -> &dyn SetTimeouts;
}

impl<T: Read + Write + SetTimeouts + Send> Socket for T {
    fn timeouts(&self) -> &dyn SetTimeouts {
        self
    }
}

/// A connected socket or stream, boxed.
pub type BoxSocket = Box<dyn Socket>;

/// The session's stream.
pub enum Transport {
    /// A plain socket or stream.
    Plain(BoxSocket),
    /// TLS over one.
    #[cfg(feature = "tls")]
    Tls(Box<TlsIo>),
    /// Between taking the plain stream and finishing the handshake, or closed.
    Gone,
}

impl Transport {
    fn socket(&self) -> Option<&BoxSocket> {
        match self {
            Transport::Plain(p) => Some(p),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => Some(&t.sock),
            Transport::Gone => None,
        }
    }

    /// Sets the socket's timeouts that changed (see [`SocketTimeouts::set`]).
    pub fn set_timeouts(
        &self,
        cache: &mut SocketTimeouts,
        read: Option<Duration>,
        write: Option<Duration>,
    ) -> io::Result<()> {
        match self.socket() {
            Some(s) => cache.set(s.timeouts(), read, write),
            None => Ok(()),
        }
    }

    /// Reads what arrives before `deadline` (not passed yet): one socket
    /// read with a timeout no later than the deadline for a plain stream;
    /// under TLS, socket reads until a record's plaintext is whole, each
    /// bounded by the time left, and `TimedOut` once the deadline passed,
    /// however the server paces the record. A socket timeout that fires
    /// early is `WouldBlock` or `TimedOut` too: the caller asks again.
    pub fn read_before(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        cache: &mut SocketTimeouts,
    ) -> io::Result<usize> {
        match self {
            Transport::Plain(p) => {
                cache.set_read_within(p.timeouts(), time_left(deadline)?)?;
                p.read(buf)
            }
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.read_before(buf, deadline, cache),
            Transport::Gone => Ok(0),
        }
    }

    /// Writes all of `data`, counting in `written` the bytes the stream
    /// accepted, so that a failure (an error, the write timeout) says how far
    /// it got. Under TLS a byte counts once rustls took it: a failure to
    /// flush it after counts it as written, which never claims less went out
    /// than did.
    pub fn write_counted(&mut self, data: &[u8], written: &mut usize) -> io::Result<()> {
        match self {
            Transport::Plain(p) => write_counted(p, data, written),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.write_counted(data, written),
            Transport::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Runs the TLS client handshake over the plain stream, over by
    /// `deadline` whatever the server's pacing; whether it resumed an
    /// earlier session (an abbreviated handshake).
    #[cfg(feature = "tls")]
    pub fn upgrade(
        &mut self,
        tls: TlsUpgrade<'_>,
        cache: &mut SocketTimeouts,
    ) -> Result<bool, Error> {
        let TlsUpgrade {
            config,
            host,
            deadline,
        } = tls;
        let name = crate::tls::server_name(host)?;
        let Transport::Plain(sock) = std::mem::replace(self, Transport::Gone) else {
            return Err(smtp_sansio::UsageError::WrongState("TLS is already active").into());
        };
        let conn = ClientConnection::new(config, name)?;
        let mut tls = Box::new(TlsIo { conn, sock });
        tls.handshake(deadline, cache)?;
        let resumed = tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        *self = Transport::Tls(tls);
        Ok(resumed)
    }

    /// Without the `tls` feature there is no handshake to run.
    #[cfg(not(feature = "tls"))]
    pub fn upgrade(&mut self, _: TlsUpgrade<'_>, _: &mut SocketTimeouts) -> Result<bool, Error> {
        Err(Error::TlsUnavailable(
            "smtp-adapter was built without its tls feature",
        ))
    }

    /// Closes the stream (under TLS, `close_notify` first, best effort).
    pub fn close(&mut self) {
        #[cfg(feature = "tls")]
        if let Transport::Tls(t) = self {
            t.conn.send_close_notify();
            // Best effort, within the socket's write timeout: the session is
            // over either way.
            let _ = t.flush();
        }
        *self = Transport::Gone;
    }
}

/// The time left until `deadline`; `TimedOut` once it passed.
fn time_left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::ErrorKind::TimedOut.into())
    } else {
        Ok(left)
    }
}

/// Whether `e` is a socket timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO` firing).
#[cfg(feature = "tls")]
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A rustls client connection over a socket, driven by hand (`read_tls`,
/// `process_new_packets`, `write_tls`) rather than by `complete_io` or
/// `StreamOwned`, whose loops give every socket read its own timeout: a
/// server sending one byte every 20 ms would hold them for minutes. Here
/// every socket read is bounded by the time left to the deadline.
#[cfg(feature = "tls")]
pub struct TlsIo {
    conn: ClientConnection,
    sock: BoxSocket,
}

#[cfg(feature = "tls")]
impl TlsIo {
    /// Writes everything rustls holds for the server, within the socket's
    /// write timeout.
    fn flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.sock)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        self.sock.flush()
    }

    /// Takes the records read so far; a TLS failure is sent to the server
    /// as its alert (best effort) and returned as `InvalidData` wrapping the
    /// rustls error (what [`Error::from_tls_io`] unwraps).
    fn process(&mut self) -> io::Result<()> {
        if let Err(e) = self.conn.process_new_packets() {
            let _ = self.flush();
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(())
    }

    fn handshake(&mut self, deadline: Instant, cache: &mut SocketTimeouts) -> Result<(), Error> {
        let timed_out = || Error::timeout("the TLS handshake");
        loop {
            let left = time_left(deadline).map_err(|_| timed_out())?;
            if !self.conn.is_handshaking() {
                // What rustls holds now is the client's last flight (under
                // TLS 1.3 its Finished, which the server does not answer):
                // it leaves with the first write after the handshake (EHLO
                // after STARTTLS), in the same socket write, or before the
                // first read (the greeting of implicit TLS).
                return Ok(());
            }
            if self.conn.wants_write() {
                cache.set(self.sock.timeouts(), None, Some(left))?;
                match self.flush() {
                    Ok(()) => continue,
                    Err(e) if is_timeout(&e) => return Err(timed_out()),
                    Err(e) => return Err(Error::from_tls_io(e)),
                }
            }
            cache.set_read_within(self.sock.timeouts(), left)?;
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => {
                    let eof = "the server closed the connection during the TLS handshake";
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, eof).into());
                }
                Ok(_) => self.process().map_err(Error::from_tls_io)?,
                // An early socket timeout: the loop checks the deadline.
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn read_before(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        cache: &mut SocketTimeouts,
    ) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // A peer that closes without close_notify has still closed.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.conn.wants_write() {
                // The end of the handshake may still be held (see
                // `handshake`): the server waits for it.
                self.flush()?;
            }
            cache.set_read_within(self.sock.timeouts(), time_left(deadline)?)?;
            // At the end of the stream rustls' reader says so next round.
            self.conn.read_tls(&mut self.sock)?;
            self.process()?;
            // A key update or the like wants an answer.
            self.flush()?;
        }
    }

    /// Writes all of `data`, adding to `written` each byte rustls took.
    fn write_counted(&mut self, data: &[u8], written: &mut usize) -> io::Result<()> {
        while let Some(rest) = data.get(*written..).filter(|r| !r.is_empty()) {
            let n = self.conn.writer().write(rest)?;
            if n == 0 && !self.conn.wants_write() {
                return Err(io::ErrorKind::WriteZero.into());
            }
            *written += n;
            self.flush()?;
        }
        self.flush()
    }
}

/// `write_all`, adding each accepted byte to `written`.
fn write_counted<W: Write + ?Sized>(w: &mut W, data: &[u8], written: &mut usize) -> io::Result<()> {
    while let Some(rest) = data.get(*written..).filter(|r| !r.is_empty()) {
        match w.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
