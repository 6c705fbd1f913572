//! What the facade needs of an async runtime: a timer, name resolution and
//! connecting (and, for the pool, starting a background task when it can).
//! Everything else (the session, TLS, the pool) is written once over these,
//! as quinn's endpoint is over its runtimes.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncRead, AsyncWrite};

/// A byte stream the session runs over (the `futures-io` traits).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A stream of any type, as the session holds it.
pub type BoxIo = Box<dyn Io>;

/// A connected stream and the IP address of its local end (for the default
/// EHLO name; `None` for a Unix socket).
pub struct Connected {
    /// The stream.
    pub io: BoxIo,
    /// The local address, when the stream has one.
    pub local_ip: Option<IpAddr>,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("local_ip", &self.local_ip)
            .finish_non_exhaustive()
    }
}

/// An async runtime: `smtp-tokio` and `smtp-async-std` each implement it for a
/// marker type of their own.
pub trait Runtime: Send + Sync + Sized + 'static {
    /// The runtime's timer, which can be moved to a new deadline without being
    /// made anew.
    type Timer: Send + Unpin + 'static;

    /// A timer firing at `deadline`.
    fn timer(deadline: Instant) -> Self::Timer;

    /// Moves `timer` to fire at `deadline`.
    fn reset(timer: &mut Self::Timer, deadline: Instant);

    /// Ready once `timer`'s deadline has passed.
    fn poll_timer(timer: &mut Self::Timer, cx: &mut Context<'_>) -> Poll<()>;

    /// The addresses of `host` (a name; IP literals never reach this).
    fn resolve(host: &str, port: u16) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;

    /// A TCP connection to `addr` with `TCP_NODELAY`, bound to `source` when
    /// given; the caller bounds it by `timeout` too.
    fn connect_tcp(
        addr: SocketAddr,
        source: Option<SocketAddr>,
        timeout: Duration,
    ) -> impl Future<Output = io::Result<Connected>> + Send;

    /// A connection to the Unix socket at `path`.
    #[cfg(unix)]
    fn connect_unix(path: &std::path::Path) -> impl Future<Output = io::Result<Connected>> + Send;

    /// The time now on the runtime's clock. The pool reads every age, idle
    /// time and checkout deadline from it, so that a runtime with a test
    /// clock (Tokio's, paused) drives them. The default is [`Instant::now`].
    fn now() -> Instant {
        Instant::now()
    }

    /// Runs `task` in the background, detached (the pool closes sessions
    /// with QUIT so, without making a caller wait). Gives `task` back when
    /// the runtime cannot take it here (no runtime on this thread); the
    /// caller then runs it itself or drops it. The default takes none.
    fn spawn(task: Task) -> Result<(), Task> {
        Err(task)
    }
}

/// A detached background task ([`Runtime::spawn`]).
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A runtime that can take a caller's stream of type `S`
/// ([`SmtpClient::from_stream`](crate::SmtpClient::from_stream)): Tokio's
/// `AsyncRead + AsyncWrite` streams for `smtp-tokio`, `futures-io` ones for
/// `smtp-async-std`.
pub trait WrapStream<S>: Runtime {
    /// `stream` as the session holds it.
    fn wrap(stream: S) -> BoxIo;
}

/// A runtime that can read a message body from a caller's reader of type `B`
/// ([`SmtpClient::send_from_reader`](crate::SmtpClient::send_from_reader)).
pub trait ReadBody<B: ?Sized>: Runtime {
    /// Reads into `buf`, as the runtime's `AsyncRead::poll_read` does.
    fn poll_read_body(
        body: Pin<&mut B>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>>;
}

/// `future`'s output, or `None` when `deadline` passes first. The timer is
/// made only once `future` has to wait: most writes complete at their first
/// poll, and a Tokio timer costs an allocation and a look-up of the runtime.
pub(crate) async fn before<R: Runtime, F: Future>(
    deadline: Instant,
    future: F,
) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut timer: Option<R::Timer> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        let timer = timer.get_or_insert_with(|| R::timer(deadline));
        R::poll_timer(timer, cx).map(|()| None)
    })
    .await
}
