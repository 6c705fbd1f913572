//! A write that fails part of the way through the end of the message: the
//! end counts as sent only when the write holding its last byte completed.
//! The session runs over a caller's stream (`from_stream`) that passes the
//! client's bytes to a real server until a point near the final dot, then
//! fails (or times out).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use smtp_blocking::{Delivery, Envelope, Error, Options, SmtpClient, smtp_sansio};
use smtp_testkit::cut::WriteCut;
use smtp_testkit::{MockServer, ServerConfig};

const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: cut\r\n\r\nhello\r\n";

/// A stream to the server that stops passing writes on where `cut` says,
/// failing them then (a broken pipe, or a write timeout).
struct Cutting {
    inner: TcpStream,
    cut: WriteCut,
    timeout: bool,
}

impl Read for Cutting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for Cutting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.cut.allowed(buf);
        if n == 0 {
            let kind = if self.timeout {
                io::ErrorKind::WouldBlock
            } else {
                io::ErrorKind::BrokenPipe
            };
            return Err(kind.into());
        }
        self.inner.write_all(&buf[..n])?;
        self.cut.commit(buf, n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A server without CHUNKING (the end of the message is the final dot).
fn server() -> MockServer {
    MockServer::start(ServerConfig::default().extensions(&["PIPELINING", "8BITMIME"])).unwrap()
}

fn session(server: &MockServer, cut: WriteCut, timeout: bool) -> SmtpClient {
    let inner = TcpStream::connect(server.addr()).unwrap();
    inner
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let stream = Cutting {
        inner,
        cut,
        timeout,
    };
    let mut o = Options::default();
    o.timeout = Some(Duration::from_secs(10));
    SmtpClient::from_stream(stream, "localhost", o).unwrap()
}

fn envelope() -> Envelope {
    Envelope::parse("a@example.org", &["b@example.org"]).unwrap()
}

#[test]
fn a_final_dot_line_short_of_its_last_byte_is_not_sent() {
    let server = server();
    let mut smtp = session(&server, WriteCut::before_end_of_message(1), false);
    let e = smtp.send(&envelope(), MSG).unwrap_err();
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
fn a_write_timeout_in_the_final_dot_line_is_not_sent() {
    let server = server();
    let mut smtp = session(&server, WriteCut::before_end_of_message(3), true);
    let e = smtp.send(&envelope(), MSG).unwrap_err();
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
fn a_quit_behind_the_final_dot_failing_leaves_the_message_unknown() {
    // send_and_quit writes QUIT in the same write as the final dot; the dot
    // gets through, the QUIT does not.
    let server = server();
    let smtp = session(&server, WriteCut::after_end_of_message(), false);
    let e = smtp.send_and_quit(&envelope(), MSG).unwrap_err();
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
fn a_quit_behind_a_final_dot_line_cut_short_leaves_the_message_not_sent() {
    let server = server();
    let smtp = session(&server, WriteCut::before_end_of_message(1), false);
    let e = smtp.send_and_quit(&envelope(), MSG).unwrap_err();
    assert_eq!(e.delivery(), Delivery::NotSent, "{e:?}");
    server.wait_for_finished(1, Duration::from_secs(10));
    assert!(server.messages().is_empty());
}
