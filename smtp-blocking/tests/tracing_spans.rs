//! `tracing`: a span per session (server, TLS) and per transaction (recipient
//! count, outcome, queue id), the transcript as events inside them, and never
//! a secret.

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_blocking::{SmtpClient, Tls};
use smtp_testkit::{MockServer, ServerConfig};
use tracing_subscriber::fmt::format::FmtSpan;

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

#[test]
fn session_and_transaction_spans_carry_their_fields() {
    let buffer = Buffer::default();
    let out = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || out.clone())
        .finish();
    let server = MockServer::start(
        ServerConfig::default()
            .tls(smtp_testkit::ServerTls::StartTls)
            // PLAIN only, so that the payload checked below is really sent.
            .auth_mechanisms(&["PLAIN"])
            .user("alice", "hunter2"),
    )
    .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let mut smtp = SmtpClient::builder(server.addr())
            .tls(Tls::StartTls)
            .tls_config(server.pki().client_config())
            .tls_server_name("localhost")
            .credentials("alice", "hunter2")
            .debug_level(1)
            .timeout(Duration::from_secs(10))
            .connect()
            .unwrap();
        smtp.sendmail(
            "a@example.org",
            &["b@example.org", "c@example.org"],
            b"Subject: t\r\n\r\nx\r\n",
        )
        .unwrap();
        smtp.quit().unwrap();
    });
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let transaction = log
        .lines()
        .find(|l| l.contains("smtp.transaction") && l.contains("close"))
        .unwrap_or_else(|| panic!("no transaction span closed:\n{log}"));
    assert!(transaction.contains("recipients=2"), "{transaction}");
    assert!(
        transaction.contains("outcome=\"accepted\"") || transaction.contains("outcome=accepted"),
        "{transaction}"
    );
    assert!(transaction.contains("queue_id=\"T"), "{transaction}");
    assert!(transaction.contains("tls=true"), "{transaction}");
    assert!(log.contains("C: MAIL FROM:<a@example.org>"), "{log}");
    // The login happened with PLAIN, and exactly this payload went over the
    // wire, so the absence checks below look for what was really sent.
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].auth_user.as_deref(), Some("alice"));
    let sent = String::from_utf8_lossy(&server.raw().concat()).into_owned();
    assert!(
        sent.contains(&format!("AUTH PLAIN {}\r\n", base64_plain())),
        "{sent}"
    );
    // Its line was traced, redacted.
    assert_eq!(log.matches("C: AUTH PLAIN <redacted>").count(), 1, "{log}");
    assert!(!log.contains("hunter2"), "{log}");
    assert!(!log.contains(&base64_plain()), "{log}");
}

fn base64_plain() -> String {
    // AUTH PLAIN's payload for alice / hunter2: "\0alice\0hunter2".
    "AGFsaWNlAGh1bnRlcjI=".to_owned()
}
