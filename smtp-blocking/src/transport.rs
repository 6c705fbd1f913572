//! The byte stream under a session: a TCP or Unix socket or a caller's stream,
//! plain or inside rustls, with socket timeouts set only when they change.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "tls")]
use rustls::{ClientConnection, StreamOwned};
use smtp_adapter::Error;
use smtp_adapter::net::{SetTimeouts, SocketTimeouts};
use smtp_adapter::tls::ClientConfig;

/// A connected socket.
pub(crate) trait Socket: Read + Write + SetTimeouts + Send {
    /// The socket, for setting its timeouts.
    fn timeouts(&self) -> &dyn SetTimeouts;
}

impl<T: Read + Write + SetTimeouts + Send> Socket for T {
    fn timeouts(&self) -> &dyn SetTimeouts {
        self
    }
}

/// A caller's stream ([`SmtpClient::from_stream`](crate::SmtpClient::from_stream)),
/// with the TCP socket under it when the caller gave one, whose timeouts then
/// bound the session's waits.
pub(crate) struct Caller<S> {
    pub(crate) stream: S,
    pub(crate) socket: Option<TcpStream>,
}

impl<S: Read> Read for Caller<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl<S: Write> Write for Caller<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl<S> SetTimeouts for Caller<S> {
    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        match &self.socket {
            Some(s) => s.set_timeouts(read, write),
            None => Ok(()),
        }
    }
}

pub(crate) type Plain = Box<dyn Socket>;

/// The session's stream.
pub(crate) enum Transport {
    Plain(Plain),
    #[cfg(feature = "tls")]
    Tls(Box<StreamOwned<ClientConnection, Plain>>),
    /// Between taking the plain stream and finishing the handshake, or closed.
    Gone,
}

impl Transport {
    fn socket(&self) -> Option<&Plain> {
        match self {
            Transport::Plain(p) => Some(p),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => Some(&t.sock),
            Transport::Gone => None,
        }
    }

    /// Sets the socket's timeouts that changed (see [`SocketTimeouts::set`]).
    pub(crate) fn set_timeouts(
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

    /// Sets the read timeout for a wait of `left` (see
    /// [`SocketTimeouts::set_read_within`]).
    pub(crate) fn set_read_within(
        &self,
        cache: &mut SocketTimeouts,
        left: Duration,
    ) -> io::Result<()> {
        match self.socket() {
            Some(s) => cache.set_read_within(s.timeouts(), left),
            None => Ok(()),
        }
    }

    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(p) => p.read(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => match t.read(buf) {
                // A peer that closes without close_notify has still closed.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
            Transport::Gone => Ok(0),
        }
    }

    /// Writes all of `data`, counting in `written` the bytes the stream
    /// accepted, so that a failure (an error, the write timeout) says how far
    /// it got. Under TLS a byte counts once rustls took it: a failure to
    /// flush it after counts it as written, which never claims less went out
    /// than did.
    pub(crate) fn write_counted(&mut self, data: &[u8], written: &mut usize) -> io::Result<()> {
        match self {
            Transport::Plain(p) => write_counted(p, data, written),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => {
                write_counted(t, data, written)?;
                t.flush()
            }
            Transport::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Runs the TLS client handshake over the plain stream; whether it resumed
    /// an earlier session (an abbreviated handshake).
    #[cfg(feature = "tls")]
    pub(crate) fn upgrade(
        &mut self,
        config: Arc<ClientConfig>,
        server: &str,
    ) -> Result<bool, Error> {
        let name = smtp_adapter::tls::server_name(server)?;
        let Transport::Plain(mut plain) = std::mem::replace(self, Transport::Gone) else {
            return Err(smtp_sansio::UsageError::WrongState("TLS is already active").into());
        };
        let mut conn = ClientConnection::new(config, name)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut plain).map_err(Error::from_tls_io)?;
        }
        let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        *self = Transport::Tls(Box::new(StreamOwned::new(conn, plain)));
        Ok(resumed)
    }

    /// Without the `tls` feature there is no handshake to run.
    #[cfg(not(feature = "tls"))]
    pub(crate) fn upgrade(&mut self, _: Arc<ClientConfig>, _: &str) -> Result<bool, Error> {
        Err(Error::TlsUnavailable(
            "smtp-blocking was built without its tls feature",
        ))
    }

    pub(crate) fn close(&mut self) {
        #[cfg(feature = "tls")]
        if let Transport::Tls(t) = self {
            t.conn.send_close_notify();
            // Best effort: the session is over either way.
            let _ = t.conn.complete_io(&mut t.sock);
        }
        *self = Transport::Gone;
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
