//! The byte stream under a session: a TCP or Unix socket, plain or inside rustls,
//! with socket timeouts set only when they change.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use smtp_adapter::Error;
use smtp_adapter::net::{SetTimeouts, SocketTimeouts};

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

pub(crate) type Plain = Box<dyn Socket>;

/// The session's stream.
pub(crate) enum Transport {
    Plain(Plain),
    Tls(Box<StreamOwned<ClientConnection, Plain>>),
    /// Between taking the plain stream and finishing the handshake, or closed.
    Gone,
}

impl Transport {
    fn socket(&self) -> Option<&Plain> {
        match self {
            Transport::Plain(p) => Some(p),
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
            Transport::Tls(t) => match t.read(buf) {
                // A peer that closes without close_notify has still closed.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
            Transport::Gone => Ok(0),
        }
    }

    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(p) => p.write_all(data),
            Transport::Tls(t) => {
                t.write_all(data)?;
                t.flush()
            }
            Transport::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Runs the TLS client handshake over the plain stream.
    pub(crate) fn upgrade(&mut self, config: Arc<ClientConfig>, server: &str) -> Result<(), Error> {
        let name = smtp_adapter::tls::server_name(server)?;
        let Transport::Plain(mut plain) = std::mem::replace(self, Transport::Gone) else {
            return Err(smtp_sansio::UsageError::WrongState("TLS is already active").into());
        };
        let mut conn = ClientConnection::new(config, name)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut plain).map_err(Error::from_tls_io)?;
        }
        *self = Transport::Tls(Box::new(StreamOwned::new(conn, plain)));
        Ok(())
    }

    pub(crate) fn close(&mut self) {
        if let Transport::Tls(t) = self {
            t.conn.send_close_notify();
            // Best effort: the session is over either way.
            let _ = t.conn.complete_io(&mut t.sock);
        }
        *self = Transport::Gone;
    }
}
