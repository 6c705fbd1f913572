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

/// Connects over TCP with `TCP_NODELAY`, bound to `source` when given (socket2
/// does the bind and connect on a blocking thread, as async-std cannot bind).
pub(crate) async fn connect_tcp(
    host: &str,
    port: u16,
    source: Option<SocketAddr>,
    timeout: Duration,
) -> Result<Stream, Error> {
    let host = host.to_owned();
    let std_stream = async_std::task::spawn_blocking(move || -> io::Result<std::net::TcpStream> {
        use std::net::ToSocketAddrs;
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}"));
        for addr in (host.as_str(), port).to_socket_addrs()? {
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
                    return Ok(socket.into());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    })
    .await?;
    Ok(Stream::Tcp(async_std::net::TcpStream::from(std_stream)))
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
