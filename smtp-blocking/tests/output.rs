//! What a person reads from the blocking facade: errors that name the
//! server (connecting, and later in the session), and transcripts (the
//! writer and the `tracing` events) with the server's control characters
//! escaped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error as _;
use std::io::{ErrorKind, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_blocking::smtp_sansio::Error as SmtpError;
use smtp_blocking::{Error, Options, SmtpClient};
use smtp_testkit::{MockServer, Script, ServerConfig};

/// ESC (a CSI that clears the screen), BEL, a bare CR, NUL, DEL, a C1 CSI.
const HOSTILE: &str = "\u{1b}[2J\u{7}\r\0\u{7f}\u{9b}";
const ESCAPED: &str = r"\x1b[2J\x07\x0d\x00\x7f\u{9b}";

fn options() -> Options {
    let mut o = Options::default();
    o.timeout = Some(Duration::from_secs(10));
    o
}

fn closed_port() -> std::net::SocketAddr {
    // Nothing listens on this port once the listener is dropped.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn a_refused_connection_names_the_server() {
    let addr = closed_port();
    let e = SmtpClient::connect(&addr.to_string(), options()).unwrap_err();
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
    // The same through the builder.
    let e = SmtpClient::builder(addr)
        .tls(smtp_blocking::Tls::None)
        .connect()
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("connecting to {addr}: "))
    );
}

#[test]
fn a_name_is_shown_with_the_address_it_reached() {
    let silent = MockServer::start(ServerConfig::scripted(
        Script::default().silence(Duration::from_secs(20)),
    ))
    .unwrap();
    let port = silent.addr().port();
    let mut o = options();
    o.timeout = Some(Duration::from_millis(300));
    let e = SmtpClient::connect(&format!("localhost:{port}"), o).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("localhost:{port} (127.0.0.1:{port}): timed out waiting for the greeting")
    );
    assert!(matches!(e.inner(), Error::Smtp(SmtpError::Timeout(_))));
    let server = e.server().unwrap();
    assert_eq!((server.name(), server.port()), ("localhost", Some(port)));
    assert_eq!(server.addr(), Some(silent.addr()));
}

#[test]
fn a_connection_lost_later_names_the_server() {
    let server = MockServer::start(ServerConfig::scripted(
        Script::default().send("220 mx").expect_line().close(),
    ))
    .unwrap();
    let addr = server.addr();
    let mut smtp = SmtpClient::connect(&addr.to_string(), options()).unwrap();
    assert_eq!(smtp.server().addr(), Some(addr));
    let e = smtp.noop().unwrap_err();
    assert_eq!(e.to_string(), format!("{addr}: server disconnected"));
    assert_eq!(e.inner().to_string(), "server disconnected");
}

#[cfg(unix)]
#[test]
fn a_missing_unix_socket_names_its_path() {
    let path = smtp_testkit::temp_socket_path("output-missing");
    let e = SmtpClient::connect_unix(&path, options()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("connecting to {}: ", path.display())),
        "{e}"
    );
    assert_eq!(
        e.io_error().map(std::io::Error::kind),
        Some(ErrorKind::NotFound)
    );
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect()
}

#[test]
fn transcripts_escape_what_the_server_sent() {
    let line = |s: String| format!("{s}\r\n").into_bytes();
    let script = Script::default()
        .send_bytes(&line(format!("220 mx{HOSTILE} ready")))
        .expect_line()
        .send_bytes(&line(format!("250-mx{HOSTILE}\r\n250 HELP{HOSTILE}")))
        .expect_line()
        .send_bytes(&line(format!("250 ok{HOSTILE}")))
        .expect_line()
        .send_bytes(&line(format!("221 bye{HOSTILE}")))
        .close();
    let server = MockServer::start(ServerConfig::scripted(script)).unwrap();

    let events = Buffer::default();
    let out = events.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || out.clone())
        .finish();
    let writer = Buffer::default();
    tracing::subscriber::with_default(subscriber, || {
        let mut o = options();
        o.debug_level = 1.into();
        let mut smtp = SmtpClient::connect(&server.addr().to_string(), o).unwrap();
        // The reply itself keeps what the server sent.
        assert_eq!(smtp.greeting().text(), format!("mx{HOSTILE} ready"));
        smtp.set_transcript(Box::new(writer.clone()));
        smtp.ehlo(None).unwrap();
        smtp.noop().unwrap();
        smtp.quit().unwrap();
    });
    let written = writer.text();
    assert!(controls(&written).is_empty(), "{written:?}");
    assert_eq!(
        written,
        format!(
            "C: EHLO {name}\nS: 250-mx{ESCAPED}\nS: 250 HELP{ESCAPED}\nC: NOOP\nS: 250 ok{ESCAPED}\n\
             C: QUIT\nS: 221 bye{ESCAPED}\n",
            name = written
                .lines()
                .next()
                .unwrap()
                .trim_start_matches("C: EHLO ")
        )
    );
    // The tracing events, the greeting's included.
    let events = events.text();
    assert!(controls(&events).is_empty(), "{events:?}");
    assert!(
        events.contains(&format!("S: 220 mx{ESCAPED} ready")),
        "{events}"
    );
    assert!(events.contains(&format!("S: 250 ok{ESCAPED}")), "{events}");
}

#[cfg(feature = "tls")]
#[test]
fn tls_failures_name_the_server() {
    use smtp_blocking::Tls;
    let other = smtp_testkit::TestPki::generate().unwrap();
    // Implicit TLS: while connecting.
    let server =
        MockServer::start(ServerConfig::default().tls(smtp_testkit::ServerTls::Implicit)).unwrap();
    let addr = server.addr();
    let e = SmtpClient::connect_tls(&addr.to_string(), options(), Some(other.client_config()))
        .unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "connecting to {addr}: TLS error: invalid peer certificate"
        )),
        "{e}"
    );
    assert!(matches!(e.inner(), Error::Tls(_)));
    // STARTTLS: in the session.
    let server =
        MockServer::start(ServerConfig::default().tls(smtp_testkit::ServerTls::StartTls)).unwrap();
    let addr = server.addr();
    let e = SmtpClient::builder(addr)
        .tls(Tls::StartTls)
        .tls_config(other.client_config())
        .tls_server_name("localhost")
        .timeout(Duration::from_secs(10))
        .connect()
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{addr}: TLS error: invalid peer certificate")),
        "{e}"
    );
    assert!(matches!(e.inner(), Error::Tls(_)));
}
