//! The byte stream under a session: TCP or a Unix socket, plain or inside rustls.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use smtp_proto::client::armed_wait_serves;

use crate::Error;

/// A plain stream.
#[derive(Debug)]
pub(crate) enum Plain {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Plain {
    pub(crate) fn set_timeouts(
        &self,
        read: Option<Duration>,
        write: Option<Duration>,
    ) -> io::Result<()> {
        match self {
            Plain::Tcp(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
            Plain::Unix(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
        }
    }

    pub(crate) fn local_ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Plain::Tcp(s) => s.local_addr().ok().map(|a| a.ip()),
            Plain::Unix(_) => None,
        }
    }
}

impl Read for Plain {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Plain::Tcp(s) => s.read(buf),
            Plain::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Plain {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Plain::Tcp(s) => s.write(buf),
            Plain::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Plain::Tcp(s) => s.flush(),
            Plain::Unix(s) => s.flush(),
        }
    }
}

/// The session's stream.
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(Plain),
    Tls(Box<StreamOwned<ClientConnection, Plain>>),
    /// Between taking the plain stream and finishing the handshake, or closed.
    Gone,
}

impl Transport {
    fn plain(&self) -> Option<&Plain> {
        match self {
            Transport::Plain(p) => Some(p),
            Transport::Tls(t) => Some(&t.sock),
            Transport::Gone => None,
        }
    }

    pub(crate) fn set_timeouts(
        &self,
        read: Option<Duration>,
        write: Option<Duration>,
    ) -> io::Result<()> {
        match self.plain() {
            Some(p) => p.set_timeouts(read, write),
            None => Ok(()),
        }
    }

    pub(crate) fn local_ip(&self) -> Option<std::net::IpAddr> {
        self.plain().and_then(Plain::local_ip)
    }

    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self.plain() {
            Some(Plain::Tcp(s)) => s.set_read_timeout(t),
            Some(Plain::Unix(s)) => s.set_read_timeout(t),
            None => Ok(()),
        }
    }

    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self.plain() {
            Some(Plain::Tcp(s)) => s.set_write_timeout(t),
            Some(Plain::Unix(s)) => s.set_write_timeout(t),
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
        let Transport::Plain(mut plain) = std::mem::replace(self, Transport::Gone) else {
            return Err(Error::Smtp(
                smtp_proto::UsageError::WrongState("TLS is already active").into(),
            ));
        };
        let name = ServerName::try_from(server.to_owned())
            .map_err(|_| Error::InvalidServerName(server.to_owned()))?;
        let mut conn = ClientConnection::new(config, name)?;
        while conn.is_handshaking() {
            match conn.complete_io(&mut plain) {
                Ok(_) => {}
                Err(e) => {
                    // rustls reports its own failures as InvalidData wrapping the error.
                    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                        return Err(Error::Tls(tls.clone()));
                    }
                    return Err(Error::Io(e));
                }
            }
        }
        *self = Transport::Tls(Box::new(StreamOwned::new(conn, plain)));
        Ok(())
    }

    pub(crate) fn close(&mut self) {
        if let Transport::Tls(t) = self {
            t.conn.send_close_notify();
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
    read: Option<Option<Duration>>,
    write: Option<Option<Duration>>,
    /// `setsockopt` calls made, for the tests.
    pub(crate) syscalls: u64,
}

impl Timeouts {
    /// Sets the read timeout for a wait of `left` (not zero), unless the one set
    /// can serve it ([`armed_wait_serves`]). A new one is rounded down to whole
    /// seconds above one second, so that the next waits of about the same length
    /// keep it.
    pub(crate) fn set_read_within(&mut self, io: &Transport, left: Duration) -> io::Result<()> {
        if let Some(Some(current)) = self.read {
            if armed_wait_serves(current, left) {
                return Ok(());
            }
        }
        let t = if left > Duration::from_secs(1) {
            Duration::from_secs(left.as_secs())
        } else {
            left
        };
        self.set_read(io, Some(t))
    }

    pub(crate) fn set_read(&mut self, io: &Transport, t: Option<Duration>) -> io::Result<()> {
        if self.read != Some(t) {
            io.set_read_timeout(t)?;
            self.syscalls += 1;
            self.read = Some(t);
        }
        Ok(())
    }

    pub(crate) fn set_write(&mut self, io: &Transport, t: Option<Duration>) -> io::Result<()> {
        if self.write != Some(t) {
            io.set_write_timeout(t)?;
            self.syscalls += 1;
            self.write = Some(t);
        }
        Ok(())
    }
}

/// Connects over TCP (with `TCP_NODELAY`), trying each resolved address in turn,
/// bound to `source` when given.
pub(crate) fn connect_tcp(
    host: &str,
    port: u16,
    source: Option<SocketAddr>,
    timeout: Duration,
) -> Result<Plain, Error> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}"));
    for addr in (host, port).to_socket_addrs()? {
        if let Some(src) = source {
            if src.is_ipv4() != addr.is_ipv4() {
                continue;
            }
        }
        match connect_one(addr, source, timeout) {
            Ok(s) => return Ok(Plain::Tcp(s)),
            Err(e) => last = e,
        }
    }
    Err(Error::Io(last))
}

fn connect_one(
    addr: SocketAddr,
    source: Option<SocketAddr>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if let Some(src) = source {
        socket.bind(&src.into())?;
    }
    socket.connect_timeout(&addr.into(), timeout)?;
    socket.set_tcp_nodelay(true)?;
    Ok(socket.into())
}

pub(crate) fn connect_unix(path: &Path) -> Result<Plain, Error> {
    Ok(Plain::Unix(UnixStream::connect(path)?))
}

/// A client configuration trusting the platform's root certificates.
pub(crate) fn default_tls_config() -> Result<Arc<ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        // Certificates the store cannot parse are skipped, as browsers do.
        let _ = roots.add(cert);
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}
