//! The byte stream under a session, plain or inside `futures-rustls`.

use std::io;
use std::sync::Arc;

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
#[cfg(feature = "tls")]
use futures_rustls::client::TlsStream;
use smtp_adapter::Error;
use smtp_adapter::tls::ClientConfig;

use crate::runtime::BoxIo;

/// The session's stream.
pub(crate) enum Transport {
    Plain(BoxIo),
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream<BoxIo>>),
    /// During the handshake, or closed.
    Gone,
}

impl Transport {
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(p) => p.read(buf).await,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => match t.read(buf).await {
                // A peer that closes without close_notify has still closed.
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
            #[cfg(feature = "tls")]
            Transport::Tls(t) => {
                t.write_all(data).await?;
                t.flush().await
            }
            Transport::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Without the `tls` feature there is no handshake to run.
    #[cfg(not(feature = "tls"))]
    #[allow(clippy::unused_async)]
    pub(crate) async fn upgrade(&mut self, _: Arc<ClientConfig>, _: &str) -> Result<bool, Error> {
        Err(Error::TlsUnavailable(
            "smtp-async was built without its tls feature",
        ))
    }

    /// Runs the TLS client handshake over the plain stream; whether it resumed
    /// an earlier session (an abbreviated handshake).
    #[cfg(feature = "tls")]
    pub(crate) async fn upgrade(
        &mut self,
        config: Arc<ClientConfig>,
        server: &str,
    ) -> Result<bool, Error> {
        let name = smtp_adapter::tls::server_name(server)?;
        let Transport::Plain(plain) = std::mem::replace(self, Transport::Gone) else {
            return Err(smtp_sansio::UsageError::WrongState("TLS is already active").into());
        };
        let tls = futures_rustls::TlsConnector::from(config)
            .connect(name, plain)
            .await
            .map_err(Error::from_tls_io)?;
        let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        *self = Transport::Tls(Box::new(tls));
        Ok(resumed)
    }

    pub(crate) async fn close(&mut self) {
        // Closing is best effort: the session is over either way.
        match self {
            #[cfg(feature = "tls")]
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
