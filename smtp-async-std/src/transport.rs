//! The byte stream under a session: any `futures-io` stream, plain or inside
//! `futures-rustls`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures_rustls::client::TlsStream;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;

use crate::Error;

/// The streams this crate connects itself: async-std TCP or Unix sockets.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(async_std::net::TcpStream),
    /// A Unix socket.
    Unix(async_std::os::unix::net::UnixStream),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_close(cx),
            Stream::Unix(s) => Pin::new(s).poll_close(cx),
        }
    }
}

impl Stream {
    /// The IP address of the local end (for the default EHLO name).
    pub(crate) fn local_ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr().ok().map(|a| a.ip()),
            Stream::Unix(_) => None,
        }
    }
}

/// The session's stream.
pub(crate) enum Transport<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
    Gone,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Transport<S> {
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(p) => p.read(buf).await,
            Transport::Tls(t) => match t.read(buf).await {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
            Transport::Gone => Ok(0),
        }
    }

    pub(crate) async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(p) => {
                p.write_all(data).await?;
                p.flush().await
            }
            Transport::Tls(t) => {
                t.write_all(data).await?;
                t.flush().await
            }
            Transport::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    pub(crate) async fn upgrade(
        &mut self,
        config: Arc<ClientConfig>,
        server: &str,
    ) -> Result<(), Error> {
        let Transport::Plain(plain) = std::mem::replace(self, Transport::Gone) else {
            return Err(Error::Smtp(
                smtp_proto::UsageError::WrongState("TLS is already active").into(),
            ));
        };
        let name = ServerName::try_from(server.to_owned())
            .map_err(|_| Error::InvalidServerName(server.to_owned()))?;
        let tls = futures_rustls::TlsConnector::from(config)
            .connect(name, plain)
            .await
            .map_err(
                |e| match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    Some(t) => Error::Tls(t.clone()),
                    None => Error::Io(e),
                },
            )?;
        *self = Transport::Tls(Box::new(tls));
        Ok(())
    }

    pub(crate) async fn close(&mut self) {
        match self {
            Transport::Tls(t) => {
                let _ = t.close().await;
            }
            Transport::Plain(p) => {
                let _ = p.close().await;
            }
            Transport::Gone => {}
        }
        *self = Transport::Gone;
    }
}

/// Connects over TCP with `TCP_NODELAY`, trying each address of `host` in turn,
/// each attempt within `timeout`. The connect itself is non-blocking (async-io's
/// reactor); only a name lookup, and a connect bound to `source` (which async-io
/// cannot do: socket2 binds and connects there), run on a blocking thread.
pub(crate) async fn connect_tcp(
    host: &str,
    port: u16,
    source: Option<SocketAddr>,
    timeout: Duration,
) -> Result<Stream, Error> {
    let timed_out = || io::Error::from(io::ErrorKind::TimedOut);
    let addrs: Vec<SocketAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let name = host.to_owned();
            let lookup = async_std::task::spawn_blocking(move || {
                use std::net::ToSocketAddrs;
                (name.as_str(), port)
                    .to_socket_addrs()
                    .map(Iterator::collect)
            });
            within(timeout, lookup)
                .await
                .unwrap_or_else(|| Err(timed_out()))?
        }
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}"));
    for addr in addrs {
        if source.is_some_and(|s| s.is_ipv4() != addr.is_ipv4()) {
            continue;
        }
        match within(timeout, connect_one(addr, source, timeout)).await {
            Some(Ok(stream)) => {
                stream.set_nodelay(true)?;
                return Ok(Stream::Tcp(async_std::net::TcpStream::from(stream)));
            }
            Some(Err(e)) => last = e,
            None => last = timed_out(),
        }
    }
    Err(Error::Io(last))
}

/// One connection attempt to `addr`.
async fn connect_one(
    addr: SocketAddr,
    source: Option<SocketAddr>,
    timeout: Duration,
) -> io::Result<std::net::TcpStream> {
    let Some(src) = source else {
        return async_io::Async::<std::net::TcpStream>::connect(addr)
            .await?
            .into_inner();
    };
    async_std::task::spawn_blocking(move || {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.bind(&src.into())?;
        socket.connect_timeout(&addr.into(), timeout)?;
        Ok(socket.into())
    })
    .await
}

/// `future`'s output, or `None` when `timeout` passes first.
async fn within<T>(timeout: Duration, future: impl std::future::Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(future.await) }, async {
        async_io::Timer::after(timeout).await;
        None
    })
    .await
}

/// A client configuration trusting the platform's root certificates.
pub(crate) fn default_tls_config() -> Result<Arc<ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // Certificates the store cannot parse are skipped.
        let _ = roots.add(cert);
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}
