//! The byte stream under a session: a TCP or Unix socket or a caller's stream,
//! plain or inside rustls, with socket timeouts set only when they change.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "tls")]
use rustls::{ClientConnection, StreamOwned};
use smtp_adapter::Error;
use smtp_adapter::tls::ClientConfig;
use smtp_sansio::client::armed_wait_serves;

/// A connected socket.
pub(crate) trait Socket: Read + Write + Send {
    /// Sets the read and write timeouts (`None`: unchanged).
    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()>;
}

impl Socket for TcpStream {
    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        read.map_or(Ok(()), |t| self.set_read_timeout(Some(t)))?;
        write.map_or(Ok(()), |t| self.set_write_timeout(Some(t)))
    }
}

#[cfg(unix)]
impl Socket for std::os::unix::net::UnixStream {
    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        read.map_or(Ok(()), |t| self.set_read_timeout(Some(t)))?;
        write.map_or(Ok(()), |t| self.set_write_timeout(Some(t)))
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

impl<S: Read + Write + Send> Socket for Caller<S> {
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

    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(p) => p.write_all(data),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => {
                t.write_all(data)?;
                t.flush()
            }
            Transport::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Whether TLS is active.
    pub(crate) fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return matches!(self, Transport::Tls(_));
        #[cfg(not(feature = "tls"))]
        return false;
    }

    /// Whether the TLS handshake resumed an earlier session (an abbreviated
    /// handshake); false without TLS.
    pub(crate) fn tls_resumed(&self) -> bool {
        match self {
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
            _ => false,
        }
    }

    /// Runs the TLS client handshake over the plain stream.
    #[cfg(feature = "tls")]
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

    /// Without the `tls` feature there is no handshake to run.
    #[cfg(not(feature = "tls"))]
    pub(crate) fn upgrade(&mut self, _: Arc<ClientConfig>, _: &str) -> Result<(), Error> {
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

/// The socket timeouts last set, so that setting an unchanged one costs no
/// system call (each is a `setsockopt`; setting both before every read and
/// write cost 8 of the 12 system calls of a pipelined message).
#[derive(Debug, Default)]
pub(crate) struct Timeouts {
    read: Option<Duration>,
    write: Option<Duration>,
    /// `setsockopt` calls made.
    pub(crate) syscalls: u64,
}

impl Timeouts {
    /// Sets the read timeout for a wait of `left` (not zero), unless the one set
    /// can serve it ([`armed_wait_serves`]). A new one is rounded down to whole
    /// seconds above one second, so that the next waits of about the same length
    /// keep it.
    pub(crate) fn set_read_within(&mut self, io: &Transport, left: Duration) -> io::Result<()> {
        if self
            .read
            .is_some_and(|current| armed_wait_serves(current, left))
        {
            return Ok(());
        }
        let t = if left > Duration::from_secs(1) {
            Duration::from_secs(left.as_secs())
        } else {
            left
        };
        self.set(io, Some(t), None)
    }

    /// Sets the timeouts given that differ from the ones set.
    pub(crate) fn set(
        &mut self,
        io: &Transport,
        read: Option<Duration>,
        write: Option<Duration>,
    ) -> io::Result<()> {
        let read = read.filter(|t| self.read != Some(*t));
        let write = write.filter(|t| self.write != Some(*t));
        if let (Some(s), true) = (io.socket(), read.is_some() || write.is_some()) {
            s.set_timeouts(read, write)?;
            self.syscalls += u64::from(read.is_some()) + u64::from(write.is_some());
        }
        self.read = read.or(self.read);
        self.write = write.or(self.write);
        Ok(())
    }
}

/// Connects over TCP (with `TCP_NODELAY`), trying each resolved address in turn,
/// bound to `source` when given. Returns the socket and its local address.
pub(crate) fn connect_tcp(
    host: &str,
    port: u16,
    source: Option<SocketAddr>,
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr), Error> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}"));
    for addr in (host, port).to_socket_addrs()? {
        if source.is_some_and(|s| s.is_ipv4() != addr.is_ipv4()) {
            continue;
        }
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        if let Some(src) = source {
            socket.bind(&src.into())?;
        }
        match socket.connect_timeout(&addr.into(), timeout) {
            Ok(()) => {
                socket.set_tcp_nodelay(true)?;
                let stream = TcpStream::from(socket);
                let local = stream.local_addr()?;
                return Ok((stream, local));
            }
            Err(e) => last = e,
        }
    }
    Err(Error::Io(last))
}
