// The crate docs (examples compiled and run as doctests) are in their own
// file, so that this one holds the code.
#![doc = include_str!("../crate-docs.md")]
#![forbid(unsafe_code)]

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub use smtp_async::common::*;
/// The runtime-neutral facade and pool this crate runs on Tokio: name it (and
/// its [`Runtime`]) in code written once for every runtime.
pub use smtp_async::{self, Runtime};

/// Direct delivery to a domain's mail exchangers (feature `mx`): the types
/// of [`smtp_async::mx`], and its `deliver` on Tokio.
#[cfg(feature = "mx")]
pub mod mx {
    pub use smtp_async::mx::*;

    /// Delivers `message` to each recipient of `envelope` through the mail
    /// exchangers of its domain: [`smtp_async::mx::deliver`] on Tokio.
    pub async fn deliver(envelope: &crate::Envelope, message: &[u8], config: &MxConfig) -> Report {
        smtp_async::mx::deliver::<crate::Tokio>(envelope, message, config).await
    }
}
use smtp_async::{BoxIo, Connected, ReadBody, WrapStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

mod compat;
use compat::Compat;

/// The Tokio runtime, as [`smtp_async`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

fn tcp(s: tokio::net::TcpStream) -> io::Result<Connected> {
    s.set_nodelay(true)?;
    let local_ip = s.local_addr().ok().map(|a| a.ip());
    Ok(Connected {
        io: Box::new(Compat(s)),
        local_ip,
    })
}

impl smtp_async::Runtime for Tokio {
    type Timer = Pin<Box<tokio::time::Sleep>>;

    fn timer(deadline: Instant) -> Self::Timer {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn reset(timer: &mut Self::Timer, deadline: Instant) {
        timer.as_mut().reset(deadline.into());
    }

    fn poll_timer(timer: &mut Self::Timer, cx: &mut Context<'_>) -> Poll<()> {
        timer.as_mut().poll(cx)
    }

    async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }

    async fn connect_tcp(
        addr: SocketAddr,
        source: Option<SocketAddr>,
        _timeout: Duration,
    ) -> io::Result<Connected> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        if let Some(src) = source {
            socket.bind(src)?;
        }
        tcp(socket.connect(addr).await?)
    }

    #[cfg(unix)]
    async fn connect_unix(path: &std::path::Path) -> io::Result<Connected> {
        let s = tokio::net::UnixStream::connect(path).await?;
        Ok(Connected {
            io: Box::new(Compat(s)),
            local_ip: None,
        })
    }

    /// Tokio's clock, which a paused test runtime moves only when told.
    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    /// On the runtime of the calling thread; none outside a runtime.
    fn spawn(task: smtp_async::Task) -> Result<(), smtp_async::Task> {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                drop(runtime.spawn(task));
                Ok(())
            }
            Err(_) => Err(task),
        }
    }
}

/// Any Tokio stream can carry a session ([`SmtpClient::from_stream`]).
impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> WrapStream<S> for Tokio {
    fn wrap(stream: S) -> BoxIo {
        Box::new(Compat(stream))
    }
}

/// Any Tokio reader can supply a message body ([`SmtpClient::send_from_reader`]).
impl<B: AsyncRead + Unpin + ?Sized> ReadBody<B> for Tokio {
    fn poll_read_body(
        body: Pin<&mut B>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        match body.poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// An SMTP or LMTP session on Tokio (see [`smtp_async::SmtpClient`]).
pub type SmtpClient = smtp_async::SmtpClient<Tokio>;

/// A pool of Tokio sessions (see [`smtp_async::pool::Pool`]).
pub type Pool = smtp_async::Pool<Tokio>;
