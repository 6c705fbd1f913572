//! The byte stream under a session: TCP or a Unix socket, plain or inside rustls.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

use crate::Error;

/// A plain stream.
#[derive(Debug)]
pub(crate) enum Plain {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsyncRead for Plain {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Plain::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Plain::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Plain {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Plain::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Plain::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Plain::Tcp(s) => Pin::new(s).poll_flush(cx),
            Plain::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Plain::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Plain::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The session's stream.
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(Plain),
    Tls(Box<TlsStream<Plain>>),
    Gone,
}

impl Transport {
    pub(crate) fn local_ip(&self) -> Option<std::net::IpAddr> {
        let plain = match self {
            Transport::Plain(p) => p,
            Transport::Tls(t) => t.get_ref().0,
            Transport::Gone => return None,
        };
        match plain {
            Plain::Tcp(s) => s.local_addr().ok().map(|a| a.ip()),
            Plain::Unix(_) => None,
        }
    }

    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use tokio::io::AsyncReadExt;
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
        use tokio::io::AsyncWriteExt;
        match self {
            Transport::Plain(p) => p.write_all(data).await,
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
        let tls = tokio_rustls::TlsConnector::from(config)
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
        use tokio::io::AsyncWriteExt;
        if let Transport::Tls(t) = self {
            let _ = t.shutdown().await;
        }
        *self = Transport::Gone;
    }
}

/// Connects over TCP with `TCP_NODELAY`, trying each resolved address, bound to
/// `source` when given.
pub(crate) async fn connect_tcp(
    host: &str,
    port: u16,
    source: Option<SocketAddr>,
    timeout: Duration,
) -> Result<Plain, Error> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}"));
    let addrs = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| Error::Smtp(smtp_proto::Error::Timeout("the connection")))??;
    for addr in addrs {
        if source.is_some_and(|s| s.is_ipv4() != addr.is_ipv4()) {
            continue;
        }
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        if let Some(src) = source {
            socket.bind(src)?;
        }
        match tokio::time::timeout(timeout, socket.connect(addr)).await {
            Ok(Ok(s)) => {
                s.set_nodelay(true)?;
                return Ok(Plain::Tcp(s));
            }
            Ok(Err(e)) => last = e,
            Err(_) => last = io::ErrorKind::TimedOut.into(),
        }
    }
    Err(Error::Io(last))
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
