// The crate docs (examples compiled and run as doctests) are in their own
// file, so that this one holds the code.
#![doc = include_str!("../crate-docs.md")]
#![forbid(unsafe_code)]

use futures_lite::io::{AsyncRead, AsyncWrite};
use std::{
    future::Future as _,
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

pub use smtp_async::common::*;
/// The runtime-neutral facade and pool this crate runs on async-std: name it
/// (and its [`Runtime`]) in code written once for every runtime.
pub use smtp_async::{self, Runtime};

/// Direct delivery to a domain's mail exchangers (feature `mx`): the types
/// of [`smtp_async::mx`], and its `deliver` on async-std.
#[cfg(feature = "mx")]
pub mod mx {
    pub use smtp_async::mx::*;

    /// Delivers `message` to each recipient of `envelope` through the mail
    /// exchangers of its domain: [`smtp_async::mx::deliver`] on async-std.
    pub async fn deliver(envelope: &crate::Envelope, message: &[u8], config: &MxConfig) -> Report {
        smtp_async::mx::deliver::<crate::AsyncStd>(envelope, message, config).await
    }
}
use smtp_async::{BoxIo, Connected, ReadBody, WrapStream};

/// The async-std runtime (and smol, which shares its reactor, `async-io`), as
/// [`smtp_async`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct AsyncStd;

impl smtp_async::Runtime for AsyncStd {
    type Timer = async_io::Timer;

    fn timer(deadline: Instant) -> Self::Timer {
        async_io::Timer::at(deadline)
    }

    /// Setting an `async-io` timer wakes the reactor; the facade keeps an armed
    /// timer while it can serve a wait, so this runs about once per run of
    /// similar waits.
    fn reset(timer: &mut Self::Timer, deadline: Instant) {
        timer.set_at(deadline);
    }

    fn poll_timer(timer: &mut Self::Timer, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(timer).poll(cx).map(|_| ())
    }

    async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let name = host.to_owned();
        async_std::task::spawn_blocking(move || {
            use std::net::ToSocketAddrs;
            (name.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect)
        })
        .await
    }

    /// The connect itself is non-blocking (`async-io`'s reactor); only a connect
    /// bound to `source`, which `async-io` cannot do, runs on a blocking thread.
    async fn connect_tcp(
        addr: SocketAddr,
        source: Option<SocketAddr>,
        timeout: Duration,
    ) -> io::Result<Connected> {
        let stream = match source {
            None => async_io::Async::<std::net::TcpStream>::connect(addr)
                .await?
                .into_inner()?,
            Some(src) => {
                let connect =
                    move || smtp_async::smtp_adapter::net::connect_addr(addr, Some(src), timeout);
                async_std::task::spawn_blocking(connect).await?
            }
        };
        stream.set_nodelay(true)?;
        let local_ip = stream.local_addr().ok().map(|a| a.ip());
        Ok(Connected {
            io: Box::new(async_std::net::TcpStream::from(stream)),
            local_ip,
        })
    }

    #[cfg(unix)]
    async fn connect_unix(path: &std::path::Path) -> io::Result<Connected> {
        let s = async_std::os::unix::net::UnixStream::connect(path).await?;
        Ok(Connected {
            io: Box::new(s),
            local_ip: None,
        })
    }

    /// On async-std's global executor, which runs wherever it is called from.
    fn spawn(task: smtp_async::Task) -> Result<(), smtp_async::Task> {
        drop(async_std::task::spawn(task));
        Ok(())
    }
}

/// Any `futures-io` stream can carry a session ([`SmtpClient::from_stream`]).
impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> WrapStream<S> for AsyncStd {
    fn wrap(stream: S) -> BoxIo {
        Box::new(stream)
    }
}

/// Any `futures-io` reader can supply a message body
/// ([`SmtpClient::send_from_reader`]).
impl<B> ReadBody<B> for AsyncStd
where
    B: AsyncRead + Unpin + ?Sized,
{
    fn poll_read_body(
        body: Pin<&mut B>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        body.poll_read(cx, buf)
    }
}

/// An SMTP or LMTP session on async-std or smol (see [`smtp_async::SmtpClient`]).
pub type SmtpClient = smtp_async::SmtpClient<AsyncStd>;

/// A pool of sessions (see [`smtp_async::pool::Pool`]).
pub type Pool = smtp_async::Pool<AsyncStd>;
