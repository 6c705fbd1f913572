//! What a person reads from the async facade, on Tokio and on async-std:
//! errors that name the server (connecting, and later in the session), and
//! a transcript with the server's control characters escaped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::error::Error as _;
use std::io::{ErrorKind, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::on_both;
use smtp_async::{Error, Options, Runtime, SmtpClient, smtp_sansio};
use smtp_async_std::AsyncStd;
use smtp_testkit::{MockServer, Script, ServerConfig};
use smtp_tokio::Tokio;

fn options(timeout: Duration) -> Options {
    let mut o = Options::default();
    o.timeout = Some(timeout);
    o
}

async fn refused<R: Runtime>() {
    // Nothing listens on this port once the listener is dropped.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = SmtpClient::<R>::connect(&addr.to_string(), options(Duration::from_secs(10)))
        .await
        .unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("connecting to {addr}: ")),
        "{shown}"
    );
    assert_eq!(
        e.io_error().map(std::io::Error::kind),
        Some(ErrorKind::ConnectionRefused)
    );
    assert!(e.source().is_none());
}

#[test]
fn a_refused_connection_names_the_server() {
    on_both(refused::<Tokio>(), refused::<AsyncStd>());
}

async fn named<R: Runtime>() {
    let silent = MockServer::start(ServerConfig::scripted(
        Script::default().silence(Duration::from_secs(20)),
    ))
    .unwrap();
    let port = silent.addr().port();
    let e = SmtpClient::<R>::connect(
        &format!("localhost:{port}"),
        options(Duration::from_millis(300)),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("localhost:{port} (127.0.0.1:{port}): timed out waiting for the greeting")
    );
    assert!(matches!(
        e.inner(),
        Error::Smtp(smtp_sansio::Error::Timeout(_))
    ));
    assert_eq!(e.server().and_then(|s| s.addr()), Some(silent.addr()));
}

#[test]
fn a_name_is_shown_with_the_address_it_reached() {
    on_both(named::<Tokio>(), named::<AsyncStd>());
}

async fn lost<R: Runtime>() {
    let server = MockServer::start(ServerConfig::scripted(
        Script::default().send("220 mx").expect_line().close(),
    ))
    .unwrap();
    let addr = server.addr();
    let mut smtp = SmtpClient::<R>::connect(&addr.to_string(), options(Duration::from_secs(10)))
        .await
        .unwrap();
    let e = smtp.noop().await.unwrap_err();
    assert_eq!(e.to_string(), format!("{addr}: server disconnected"));
}

#[test]
fn a_connection_lost_later_names_the_server() {
    on_both(lost::<Tokio>(), lost::<AsyncStd>());
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn transcript<R: Runtime>() {
    let hostile = "\u{1b}[2J\u{7}\r\0\u{7f}\u{9b}";
    let line = |s: String| format!("{s}\r\n").into_bytes();
    let script = Script::default()
        .send("220 mx")
        .expect_line()
        .send_bytes(&line(format!("250-mx{hostile}\r\n250 HELP{hostile}")))
        .expect_line()
        .send_bytes(&line(format!("250 ok{hostile}")))
        .close();
    let server = MockServer::start(ServerConfig::scripted(script)).unwrap();
    let mut o = options(Duration::from_secs(10));
    o.debug_level = 1.into();
    let mut smtp = SmtpClient::<R>::connect(&server.addr().to_string(), o)
        .await
        .unwrap();
    let writer = Buffer::default();
    smtp.set_transcript(Box::new(writer.clone()));
    smtp.ehlo(None).await.unwrap();
    smtp.noop().await.unwrap();
    let written = String::from_utf8(writer.0.lock().unwrap().clone()).unwrap();
    assert!(
        !written.chars().any(|c| c.is_control() && c != '\n'),
        "{written:?}"
    );
    let escaped = r"\x1b[2J\x07\x0d\x00\x7f\u{9b}";
    assert!(
        written.contains(&format!("S: 250-mx{escaped}\n")),
        "{written}"
    );
    assert!(
        written.contains(&format!("S: 250 ok{escaped}\n")),
        "{written}"
    );
}

#[test]
fn transcripts_escape_what_the_server_sent() {
    on_both(transcript::<Tokio>(), transcript::<AsyncStd>());
}

#[cfg(feature = "tls")]
async fn tls_named<R: Runtime>() {
    let other = smtp_testkit::TestPki::generate().unwrap();
    let server =
        MockServer::start(ServerConfig::default().tls(smtp_testkit::ServerTls::Implicit)).unwrap();
    let addr = server.addr();
    let e = SmtpClient::<R>::connect_tls(
        &addr.to_string(),
        options(Duration::from_secs(10)),
        Some(other.client_config()),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "connecting to {addr}: TLS error: invalid peer certificate"
        )),
        "{e}"
    );
    let server =
        MockServer::start(ServerConfig::default().tls(smtp_testkit::ServerTls::StartTls)).unwrap();
    let addr = server.addr();
    let e = SmtpClient::<R>::builder(addr)
        .tls(smtp_async::Tls::StartTls)
        .tls_config(other.client_config())
        .tls_server_name("localhost")
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{addr}: TLS error: invalid peer certificate")),
        "{e}"
    );
    assert!(matches!(e.inner(), Error::Tls(_)));
}

#[cfg(feature = "tls")]
#[test]
fn tls_failures_name_the_server() {
    on_both(tls_named::<Tokio>(), tls_named::<AsyncStd>());
}
