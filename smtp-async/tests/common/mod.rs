//! What the tests written once for both runtimes share: a runtime as a test
//! drives it (blocking on it, starting a task, sleeping on its timer, taking
//! a `futures-io` stream), and [`on_both`], which runs one case on Tokio and
//! then on async-std.

// Each test file uses a part of this.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::io::{AsyncRead, AsyncWrite};
use smtp_async::{Error, Options, ReadBody, Runtime, SmtpClient};
use smtp_async_std::AsyncStd;
use smtp_tokio::Tokio;

/// A runtime as the tests drive it.
pub trait Rt: Runtime + for<'a> ReadBody<&'a [u8]> {
    /// Its name, in test messages and in the names of kept files.
    const NAME: &'static str;
    /// What runs a future to its end on this runtime.
    type Exec;
    /// A new executor (for Tokio, a current-thread runtime with I/O and
    /// timers).
    fn exec() -> Self::Exec;
    /// Runs `future` to its end on `exec`.
    fn block_on<F: Future>(exec: &Self::Exec, future: F) -> F::Output;
    /// A TCP stream of the runtime's own, seen through `futures-io`.
    type Tcp: AsyncRead + AsyncWrite + Send + Unpin + 'static;
    /// A TCP connection to `addr`.
    fn tcp(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Tcp>>;
    /// Starts `task` in the background, on the runtime of the calling task.
    fn start(task: impl Future<Output = ()> + Send + 'static);
    /// A session over a caller's `futures-io` stream (for Tokio, through
    /// tokio-util's compat layer, as a Tokio user's stream arrives), EHLO
    /// name from `host`.
    fn over<S>(
        stream: S,
        host: &str,
        options: Options,
    ) -> impl Future<Output = Result<SmtpClient<Self>, Error>>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static;
}

impl Rt for Tokio {
    const NAME: &'static str = "tokio";
    type Exec = tokio::runtime::Runtime;

    fn exec() -> Self::Exec {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn block_on<F: Future>(exec: &Self::Exec, future: F) -> F::Output {
        exec.block_on(future)
    }

    type Tcp = tokio_util::compat::Compat<tokio::net::TcpStream>;

    async fn tcp(addr: SocketAddr) -> io::Result<Self::Tcp> {
        use tokio_util::compat::TokioAsyncReadCompatExt;
        Ok(tokio::net::TcpStream::connect(addr).await?.compat())
    }

    fn start(task: impl Future<Output = ()> + Send + 'static) {
        drop(tokio::spawn(task));
    }

    async fn over<S>(stream: S, host: &str, options: Options) -> Result<SmtpClient<Self>, Error>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        use tokio_util::compat::FuturesAsyncReadCompatExt;
        SmtpClient::<Tokio>::from_stream(stream.compat(), host, options).await
    }
}

impl Rt for AsyncStd {
    const NAME: &'static str = "async-std";
    type Exec = ();

    fn exec() -> Self::Exec {}

    fn block_on<F: Future>((): &Self::Exec, future: F) -> F::Output {
        async_std::task::block_on(future)
    }

    type Tcp = async_std::net::TcpStream;

    async fn tcp(addr: SocketAddr) -> io::Result<Self::Tcp> {
        async_std::net::TcpStream::connect(addr).await
    }

    fn start(task: impl Future<Output = ()> + Send + 'static) {
        drop(async_std::task::spawn(task));
    }

    async fn over<S>(stream: S, host: &str, options: Options) -> Result<SmtpClient<Self>, Error>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        SmtpClient::<AsyncStd>::from_stream(stream, host, options).await
    }
}

/// Runs the same case on Tokio, then on async-std.
pub fn on_both(tokio_case: impl Future<Output = ()>, async_std_case: impl Future<Output = ()>) {
    // On the heap: a test's whole future, moved through each layer of a
    // runtime's block_on, would otherwise be copied onto the test thread's
    // 2 MiB stack several times over in a debug build.
    Tokio::block_on(&Tokio::exec(), Box::pin(tokio_case));
    AsyncStd::block_on(&(), Box::pin(async_std_case));
}

/// Sleeps on the runtime's timer (a paused Tokio clock moves past it at
/// once).
pub async fn sleep<R: Runtime>(d: Duration) {
    let mut timer = R::timer(R::now() + d);
    std::future::poll_fn(|cx| R::poll_timer(&mut timer, cx)).await;
}

/// `future`'s output, or `None` when `d` of the runtime's time passes
/// first (the future is then dropped: its call cancelled).
pub async fn within<R: Runtime, F: Future>(d: Duration, future: F) -> Option<F::Output> {
    futures_lite::future::or(async { Some(future.await) }, async {
        sleep::<R>(d).await;
        None
    })
    .await
}

/// Waits on the runtime (so that its tasks run) until `done`, at most
/// `limit` of the runtime's time; returns whether it came.
pub async fn until<R: Runtime>(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = R::now() + limit;
    while !done() {
        if R::now() >= end {
            return false;
        }
        sleep::<R>(Duration::from_millis(5)).await;
    }
    true
}

/// Options with a 10 s timeout.
pub fn options() -> Options {
    let mut o = Options::default();
    o.timeout = Some(Duration::from_secs(10));
    o
}
