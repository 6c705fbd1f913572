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

    /// Writes all of `data` and flushes, counting in `written` the bytes the
    /// stream accepted, so that a failure (an error, or the future dropped
    /// at the write deadline) says how far it got. Under TLS a byte counts
    /// once rustls took it: a failure to flush it after counts it as
    /// written, which never claims less went out than did.
    pub(crate) async fn write_counted(
        &mut self,
        data: &[u8],
        written: &mut usize,
    ) -> io::Result<()> {
        match self {
            Transport::Plain(p) => {
                write_counted(p, data, written).await?;
                p.flush().await
            }
            #[cfg(feature = "tls")]
            Transport::Tls(t) => {
                write_counted(t, data, written).await?;
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

/// `write_all`, adding each accepted byte to `written` as it goes (so the
/// count holds when the future is dropped half-way).
async fn write_counted<W: futures_lite::io::AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    data: &[u8],
    written: &mut usize,
) -> io::Result<()> {
    while let Some(rest) = data.get(*written..).filter(|r| !r.is_empty()) {
        match w.write(rest).await {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
