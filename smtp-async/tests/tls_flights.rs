//! The client's writes around a TLS handshake, counted on the stream, on
//! both runtimes: under TLS 1.3 the client's Finished (its last flight,
//! which the server does not answer) leaves in the same write as the EHLO
//! after STARTTLS.

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use common::{Rt, on_both};
use futures_lite::io::{AsyncRead, AsyncWrite};
use smtp_async::Options;
use smtp_async_std::AsyncStd;
use smtp_testkit::{MockServer, ServerConfig, ServerTls};
use smtp_tokio::Tokio;

/// A stream that counts its writes (a vectored write is one) and keeps how
/// many bytes the last one took.
struct Counting<S> {
    inner: S,
    writes: Arc<AtomicUsize>,
    last: Arc<AtomicUsize>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> Counting<S> {
    fn count(&self, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = r {
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.last.store(n, Ordering::SeqCst);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.count(r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.count(r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// The size of the EHLO's TLS record: `EHLO client.example\r\n` (21
/// bytes), its content type, and the 5-byte header and 16-byte tag.
const EHLO_RECORD: usize = 21 + 1 + 5 + 16;

async fn finished_with_ehlo<R: Rt>() {
    let server = MockServer::start(ServerConfig::default().tls(ServerTls::StartTls)).unwrap();
    let writes = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(AtomicUsize::new(0));
    let stream = Counting {
        inner: R::tcp(server.addr()).await.unwrap(),
        writes: writes.clone(),
        last: last.clone(),
    };
    let mut options = Options::default();
    options.timeout = Some(Duration::from_secs(10));
    options.local_name = Some("client.example".into());
    let mut smtp = R::over(stream, "localhost", options).await.unwrap();
    smtp.set_tls_config(server.pki().client_config());
    smtp.ehlo(None).await.unwrap();
    let before = writes.load(Ordering::SeqCst);
    smtp.starttls().await.unwrap();
    assert!(smtp.is_tls());
    // The last write held more than the EHLO's record: the end of the
    // handshake went with it (it used to be a write of its own).
    assert!(last.load(Ordering::SeqCst) > EHLO_RECORD, "{}", R::NAME);
    // STARTTLS, the ClientHello, then the Finished and the EHLO together
    // (with the middlebox ChangeCipherSpec before them, or alone before
    // when the ServerHello was read alone).
    let n = writes.load(Ordering::SeqCst) - before;
    assert!(n == 3 || n == 4, "{}: {n} writes", R::NAME);
    assert!(smtp.has_extn("PIPELINING"));
    smtp.sendmail(
        "a@example.org",
        &["b@example.org"],
        &b"Subject: t\r\n\r\nhi\r\n"[..],
    )
    .await
    .unwrap();
    smtp.quit().await.unwrap();
    assert_eq!(
        server.wait_for_messages(1, Duration::from_secs(10)).len(),
        1
    );
}

#[test]
fn ehlo_after_starttls_leaves_with_the_clients_finished() {
    on_both(
        finished_with_ehlo::<Tokio>(),
        finished_with_ehlo::<AsyncStd>(),
    );
}
