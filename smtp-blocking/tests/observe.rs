//! What a session tells an operator: the builder's transcript writer (connect's
//! own exchange included), the `smtp.session` span's `tls` recorded once, and
//! `tracing` events for each transaction's end and each failed operation,
//! with the fields a log search needs and no secret. A small subscriber
//! records every span field and event as given.

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_blocking::{Error, Options, SmtpClient, Tls};
use smtp_testkit::{MockServer, ServerConfig, ServerTls};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Fields as recorded, each value as `Debug` shows it (a `&str` as is).
type Fields = Vec<(String, String)>;

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

#[derive(Debug, Clone)]
struct Captured {
    level: tracing::Level,
    target: String,
    fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Log {
    /// Each span's name and every field value it was given, in order (at
    /// creation and each `record`).
    spans: BTreeMap<u64, (String, Fields)>,
    events: Vec<Captured>,
}

#[derive(Clone, Default)]
struct Capture {
    log: Arc<Mutex<Log>>,
    next: Arc<AtomicU64>,
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut fields = Fields::new();
        attrs.record(&mut Visitor(&mut fields));
        let name = attrs.metadata().name().to_owned();
        self.log.lock().unwrap().spans.insert(id, (name, fields));
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut log = self.log.lock().unwrap();
        if let Some((_, fields)) = log.spans.get_mut(&span.into_u64()) {
            values.record(&mut Visitor(fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        self.log.lock().unwrap().events.push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields: fields.into_iter().collect(),
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Capture {
    /// The values of `tls` each `smtp.session` span was given, in order.
    fn session_tls(&self) -> Vec<Vec<String>> {
        let log = self.log.lock().unwrap();
        log.spans
            .values()
            .filter(|(name, _)| name == "smtp.session")
            .map(|(_, fields)| {
                fields
                    .iter()
                    .filter(|(k, _)| k == "tls")
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .collect()
    }

    /// The events of target `smtp` other than transcript lines.
    fn outcomes(&self) -> Vec<Captured> {
        let log = self.log.lock().unwrap();
        log.events
            .iter()
            .filter(|e| e.target == "smtp" && !e.fields.contains_key("message_line"))
            .filter(|e| {
                let m = e.fields.get("message").map_or("", String::as_str);
                !m.starts_with("C: ") && !m.starts_with("S: ")
            })
            .cloned()
            .collect()
    }

    fn everything(&self) -> String {
        let log = self.log.lock().unwrap();
        format!("{:?} {:?}", log.spans, log.events)
    }
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A transcript writer the test reads back.
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

fn auth_server() -> MockServer {
    MockServer::start(
        ServerConfig::default()
            .tls(ServerTls::StartTls)
            .auth_mechanisms(&["PLAIN"])
            .user("alice", "hunter2"),
    )
    .unwrap()
}

fn starttls_builder(server: &MockServer) -> smtp_blocking::Builder<SmtpClient> {
    SmtpClient::builder(server.addr())
        .tls(Tls::StartTls)
        .tls_config(server.pki().client_config())
        .tls_server_name("localhost")
        .timeout(Duration::from_secs(10))
}

#[test]
fn the_builders_transcript_holds_connects_exchange() {
    let server = auth_server();
    let buffer = Buffer::default();
    let smtp = starttls_builder(&server)
        .credentials("alice", "hunter2")
        .transcript(buffer.clone())
        .connect()
        .unwrap();
    assert!(smtp.is_tls() && smtp.is_authenticated());
    smtp.quit().unwrap();
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let client: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("C: "))
        .collect();
    let ehlo = client[0];
    assert!(ehlo.starts_with("C: EHLO "), "{text}");
    assert_eq!(
        client,
        [
            ehlo,
            "C: STARTTLS",
            ehlo,
            "C: AUTH PLAIN <redacted>",
            "C: QUIT"
        ],
        "{text}"
    );
    assert!(lines[0].starts_with("S: 220 "), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("S: 235 ")), "{text}");
    assert_eq!(lines.last().copied(), Some("S: 221 2.0.0 Bye"));
    assert!(!text.contains("hunter2") && !text.contains("AGFsaWNlAGh1bnRlcjI="));
}

#[test]
fn the_session_span_records_tls_once() {
    let capture = Capture::default();
    let server = auth_server();
    let implicit = MockServer::start(ServerConfig::default().tls(ServerTls::Implicit)).unwrap();
    let plain = MockServer::start(ServerConfig::default()).unwrap();
    tracing::subscriber::with_default(capture.clone(), || {
        // STARTTLS by the builder: recorded at the handshake.
        let smtp = starttls_builder(&server).connect().unwrap();
        smtp.quit().unwrap();
        // Implicit TLS: recorded as the session starts.
        let smtp = SmtpClient::builder(implicit.addr())
            .tls(Tls::Implicit)
            .tls_config(implicit.pki().client_config())
            .tls_server_name("localhost")
            .timeout(Duration::from_secs(10))
            .connect()
            .unwrap();
        smtp.quit().unwrap();
        // No TLS: recorded at the end of the builder's open.
        let smtp = SmtpClient::builder(plain.addr())
            .tls(Tls::None)
            .timeout(Duration::from_secs(10))
            .connect()
            .unwrap();
        smtp.quit().unwrap();
        // smtplib style: connect, then STARTTLS by hand, then a message.
        let o = Options::default().timeout(Duration::from_secs(10));
        let mut smtp = SmtpClient::connect(&server.addr().to_string(), o).unwrap();
        smtp.set_tls_config(server.pki().client_config());
        smtp.set_tls_server_name("localhost");
        smtp.starttls().unwrap();
        smtp.sendmail(
            "a@example.org",
            &["b@example.org"],
            "Subject: s\r\n\r\nx\r\n",
        )
        .unwrap();
        smtp.quit().unwrap();
        // smtplib style without TLS: recorded when the first message starts.
        let o = Options::default().timeout(Duration::from_secs(10));
        let mut smtp = SmtpClient::connect(&plain.addr().to_string(), o).unwrap();
        smtp.sendmail(
            "a@example.org",
            &["b@example.org"],
            "Subject: s\r\n\r\nx\r\n",
        )
        .unwrap();
        smtp.quit().unwrap();
    });
    assert_eq!(
        capture.session_tls(),
        [["true"], ["true"], ["false"], ["true"], ["false"]],
        "{}",
        capture.everything()
    );
}

#[test]
fn transaction_ends_are_events_with_their_fields() {
    let capture = Capture::default();
    let server = MockServer::start(
        ServerConfig::default()
            .data_reply("250 2.0.0 Ok: queued as ABC123")
            .refuse_recipient("x@example.org"),
    )
    .unwrap();
    let name = server.addr().ip().to_string();
    let port = server.addr().port();
    tracing::subscriber::with_default(capture.clone(), || {
        let mut smtp = SmtpClient::builder(server.addr())
            .tls(Tls::None)
            .timeout(Duration::from_secs(10))
            .connect()
            .unwrap();
        let msg = "Subject: s\r\n\r\nx\r\n";
        smtp.sendmail("a@example.org", &["b@example.org", "c@example.org"], msg)
            .unwrap();
        smtp.sendmail("a@example.org", &["b@example.org", "x@example.org"], msg)
            .unwrap();
        let e = smtp
            .sendmail("a@example.org", &["x@example.org"], msg)
            .unwrap_err();
        assert!(e.to_string().starts_with("all recipients refused"), "{e}");
        smtp.quit().unwrap();
    });
    let server_field = format!("{name}:{port}");
    let events = capture.outcomes();
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(events[0].level, tracing::Level::INFO);
    assert_eq!(
        events[0].fields,
        fields(&[
            ("message", "mail transaction accepted"),
            ("server", &server_field),
            ("delivery", "accepted"),
            ("accepted", "2"),
            ("refused", "0"),
            ("code", "250"),
            ("enhanced_code", "2.0.0"),
            ("queue_id", "ABC123"),
        ])
    );
    assert_eq!(events[1].level, tracing::Level::WARN);
    assert_eq!(
        events[1].fields,
        fields(&[
            ("message", "mail transaction partly refused"),
            ("server", &server_field),
            ("delivery", "accepted"),
            ("accepted", "1"),
            ("refused", "1"),
            ("code", "250"),
            ("enhanced_code", "2.0.0"),
            ("queue_id", "ABC123"),
        ])
    );
    assert_eq!(events[2].level, tracing::Level::WARN);
    assert_eq!(
        events[2].fields,
        fields(&[
            ("message", "mail transaction failed"),
            ("server", &server_field),
            ("delivery", "refused"),
            ("accepted", "0"),
            ("refused", "1"),
            ("code", "550"),
            ("enhanced_code", "5.1.1"),
            ("stage", "rcpt"),
            (
                "error",
                "all recipients refused: x@example.org: 550 5.1.1 <x@example.org> no such user"
            ),
        ])
    );
}

#[test]
fn failed_operations_are_events_without_secrets() {
    let capture = Capture::default();
    let server = auth_server();
    let port = server.addr().port();
    let server_field = format!("localhost:{port} (127.0.0.1:{port})");
    let r = tracing::subscriber::with_default(capture.clone(), || {
        SmtpClient::builder(("localhost", server.addr().port()))
            .tls(Tls::StartTls)
            .tls_config(server.pki().client_config())
            .credentials("alice", "wrong-password")
            .timeout(Duration::from_secs(10))
            .connect()
    });
    let e = r.unwrap_err();
    let events = capture.outcomes();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].level, tracing::Level::WARN);
    assert_eq!(
        events[0].fields,
        fields(&[
            ("message", "smtp operation failed"),
            ("server", &server_field),
            ("delivery", "not_sent"),
            ("code", "535"),
            ("enhanced_code", "5.7.8"),
            ("error", &e.to_string()),
        ])
    );
    let all = capture.everything();
    assert!(!all.contains("wrong-password"), "{all}");
}

#[test]
fn the_blocking_scoped_session_ends_with_quit() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let b = SmtpClient::builder(server.addr())
        .tls(Tls::None)
        .timeout(Duration::from_secs(10));
    let r = SmtpClient::connect_session(b, |smtp| {
        smtp.noop()?;
        Err::<(), Error>(Error::timeout("the test's own early return"))
    });
    assert!(r.is_err());
    assert_eq!(server.wait_for_closed(1, Duration::from_secs(5)), 1);
    let t = server.transcript();
    let client: Vec<&str> = t
        .iter()
        .filter(|l| l.starts_with("C: "))
        .map(String::as_str)
        .filter(|l| !l.starts_with("C: EHLO"))
        .collect();
    assert_eq!(client, ["C: NOOP", "C: QUIT"], "{t:?}");
}

#[test]
fn a_connection_that_cannot_be_made_is_an_event() {
    let capture = Capture::default();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = tracing::subscriber::with_default(capture.clone(), || {
        SmtpClient::builder(("127.0.0.1", port))
            .timeout(Duration::from_secs(10))
            .connect()
    });
    let e = r.unwrap_err();
    assert_eq!(
        e.io_error().map(std::io::Error::kind),
        Some(std::io::ErrorKind::ConnectionRefused),
        "{e}"
    );
    let events = capture.outcomes();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].level, tracing::Level::WARN);
    assert_eq!(
        events[0].fields,
        fields(&[
            ("message", "smtp connection failed"),
            ("server", &format!("127.0.0.1:{port}")),
            ("error", &e.inner().to_string()),
        ])
    );
}

#[test]
fn a_batch_message_refused_before_its_transaction_is_an_event() {
    // The second message has a bare LF, which LineEndings::Reject refuses
    // before its transaction starts, while the first one's runs: it is
    // reported on its own, next to the two transactions' ends.
    let capture = Capture::default();
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let envelope = smtp_blocking::Envelope::parse("a@example.org", &["b@example.org"]).unwrap();
    let good: &[u8] = b"Subject: one\r\n\r\nfine\r\n";
    let bare: &[u8] = b"Subject: two\r\n\r\nbare\nline\r\n";
    let results = tracing::subscriber::with_default(capture.clone(), || {
        let mut smtp = SmtpClient::builder(server.addr())
            .tls(Tls::None)
            .line_endings(smtp_blocking::LineEndings::Reject)
            .timeout(Duration::from_secs(10))
            .connect()
            .unwrap();
        let results = smtp.send_batch([(&envelope, good), (&envelope, bare), (&envelope, good)]);
        smtp.quit().unwrap();
        results
    });
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    let e = results[1].as_ref().unwrap_err();
    let port = server.addr().port();
    let events = capture.outcomes();
    let messages: Vec<&str> = events
        .iter()
        .map(|e| e.fields.get("message").map_or("", String::as_str))
        .collect();
    assert_eq!(
        messages,
        [
            "smtp operation failed",
            "mail transaction accepted",
            "mail transaction accepted"
        ],
        "{events:#?}"
    );
    assert_eq!(events[0].level, tracing::Level::WARN);
    assert_eq!(
        events[0].fields.get("error").map(String::as_str),
        Some(e.to_string().as_str())
    );
    assert_eq!(
        events[0].fields.get("server").map(String::as_str),
        Some(format!("127.0.0.1:{port}").as_str())
    );
}
