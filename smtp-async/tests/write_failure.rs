//! A write that fails part of the way through the end of the message, on
//! both runtimes: the end counts as sent only when the write holding its
//! last byte completed. The session runs over a caller's stream
//! (`from_stream`) that passes the client's bytes to a real server until a
//! point near the final dot, then fails (or never finishes, until the write
//! deadline). Each case is written once, generic over the runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use common::{Rt, on_both};
use futures_lite::io::{AsyncRead, AsyncWrite};
use smtp_async::{Delivery, Envelope, Error, Options, SmtpClient, smtp_sansio};
use smtp_async_std::AsyncStd;
use smtp_testkit::cut::WriteCut;
use smtp_testkit::{MockServer, ServerConfig};
use smtp_tokio::Tokio;

const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: cut\r\n\r\nhello\r\n";

/// A stream to the server that stops passing writes on where `cut` says,
/// failing them then (a broken pipe), or leaving them pending.
struct Cutting<S> {
    inner: S,
    cut: WriteCut,
    stall: bool,
}

impl<S: AsyncRead + Unpin> AsyncRead for Cutting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Cutting<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = self.cut.allowed(buf);
        if n == 0 {
            if self.stall {
                return Poll::Pending;
            }
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let polled = Pin::new(&mut self.inner).poll_write(cx, &buf[..n]);
        if let Poll::Ready(Ok(m)) = polled {
            self.cut.commit(buf, m);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// A server without CHUNKING (the end of the message is the final dot).
fn server() -> MockServer {
    MockServer::start(ServerConfig::default().extensions(&["PIPELINING", "8BITMIME"])).unwrap()
}

async fn session<R: Rt>(server: &MockServer, cut: WriteCut, stall: bool) -> SmtpClient<R> {
    let inner = R::tcp(server.addr()).await.unwrap();
    let mut o = Options::default();
    // The write deadline of a stalled write.
    o.timeout = Some(Duration::from_secs(1));
    let stream = Cutting { inner, cut, stall };
    R::over(stream, "localhost", o).await.unwrap()
}

fn envelope() -> Envelope {
    Envelope::parse("a@example.org", &["b@example.org"]).unwrap()
}

async fn cut_in_the_dot<R: Rt>() {
    let server = server();
    let mut smtp = session::<R>(&server, WriteCut::before_end_of_message(1), false).await;
    let e = smtp.send(&envelope(), MSG).await.unwrap_err();
    assert_eq!(e.delivery(), Delivery::NotSent, "{e:?}");
    assert!(
        matches!(e.inner(), Error::Io(io) if io.kind() == io::ErrorKind::BrokenPipe),
        "{e:?}"
    );
    drop(smtp);
    server.wait_for_finished(1, Duration::from_secs(10));
    assert!(server.messages().is_empty(), "the server never got the end");
}

#[test]
fn a_final_dot_line_short_of_its_last_byte_is_not_sent() {
    on_both(cut_in_the_dot::<Tokio>(), cut_in_the_dot::<AsyncStd>());
}

async fn stalled_in_the_dot<R: Rt>() {
    let server = server();
    let mut smtp = session::<R>(&server, WriteCut::before_end_of_message(3), true).await;
    let e = smtp.send(&envelope(), MSG).await.unwrap_err();
    assert_eq!(e.delivery(), Delivery::NotSent, "{e:?}");
    assert!(
        matches!(e.inner(), Error::Smtp(smtp_sansio::Error::Timeout(_))),
        "{e:?}"
    );
    drop(smtp);
    server.wait_for_finished(1, Duration::from_secs(10));
    assert!(server.messages().is_empty());
}

#[test]
fn a_write_deadline_in_the_final_dot_line_is_not_sent() {
    on_both(
        stalled_in_the_dot::<Tokio>(),
        stalled_in_the_dot::<AsyncStd>(),
    );
}

async fn cut_in_the_quit<R: Rt>() {
    // send_and_quit writes QUIT in the same write as the final dot; the dot
    // gets through, the QUIT does not.
    let server = server();
    let smtp = session::<R>(&server, WriteCut::after_end_of_message(), false).await;
    let e = smtp.send_and_quit(&envelope(), MSG).await.unwrap_err();
    assert_eq!(e.delivery(), Delivery::Unknown, "{e:?}");
    assert!(
        matches!(e.inner(), Error::Smtp(smtp_sansio::Error::Uncertain { .. })),
        "{e:?}"
    );
    // The server did get the whole message: unknown was the right answer.
    assert_eq!(
        server.wait_for_messages(1, Duration::from_secs(10)).len(),
        1
    );
}

#[test]
fn a_quit_behind_the_final_dot_failing_leaves_the_message_unknown() {
    on_both(cut_in_the_quit::<Tokio>(), cut_in_the_quit::<AsyncStd>());
}

async fn cut_before_the_quit<R: Rt>() {
    let server = server();
    let smtp = session::<R>(&server, WriteCut::before_end_of_message(1), false).await;
    let e = smtp.send_and_quit(&envelope(), MSG).await.unwrap_err();
    assert_eq!(e.delivery(), Delivery::NotSent, "{e:?}");
    server.wait_for_finished(1, Duration::from_secs(10));
    assert!(server.messages().is_empty());
}

#[test]
fn a_quit_behind_a_final_dot_line_cut_short_leaves_the_message_not_sent() {
    on_both(
        cut_before_the_quit::<Tokio>(),
        cut_before_the_quit::<AsyncStd>(),
    );
}
