//! The rule on secrets in the clear against a peer that is not loopback,
//! through the blocking facade. The server listens on the address
//! `SMTP_TEST_NONLOOPBACK` names; `scripts/test` runs these tests with
//! `--ignored` in a private network namespace where `192.0.2.10/32` sits on
//! `lo` (no packet leaves the machine). Without the variable they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(not(feature = "tls"), allow(unused_imports, dead_code))]

use std::time::Duration;

use smtp_blocking::smtp_sansio::sasl::{Credentials, Plain, XOAuth2};
use smtp_blocking::smtp_sansio::{Error as SmtpError, Secret, SecurityError};
use smtp_blocking::{Error, InitialResponse, Options, SmtpClient, Tls};
use smtp_testkit::{MockServer, ServerConfig};

const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n";
const WAIT: Duration = Duration::from_secs(10);

/// A server on the non-loopback address, with a user.
fn server(tls: smtp_testkit::ServerTls) -> MockServer {
    let config = ServerConfig::default()
        .tcp_on(smtp_testkit::nonloopback_ip())
        .tls(tls)
        .user("alice", "pw");
    let server = MockServer::start(config).unwrap();
    assert_eq!(server.addr().ip(), smtp_testkit::nonloopback_ip());
    server
}

/// What the client sent on the server's first connection (decrypted), once
/// it is over.
fn received(server: &MockServer) -> String {
    server.wait_for_closed(1, WAIT);
    String::from_utf8_lossy(&server.raw()[0]).into_owned()
}

/// The refusal, with a message that names the way out; the mechanism.
fn plaintext_auth(e: Error) -> String {
    let shown = e.to_string();
    assert!(
        shown.contains("Tls::StartTls") && shown.contains("allow_plaintext_auth"),
        "{shown}"
    );
    match e {
        Error::Smtp(SmtpError::Security(SecurityError::PlaintextAuth { mechanism })) => mechanism,
        other => panic!("expected the plaintext-AUTH refusal, got {other:?}"),
    }
}

fn send_and_quit(server: &MockServer, mut smtp: SmtpClient) -> smtp_testkit::Received {
    smtp.sendmail("a@example.org", &["b@example.org"], MSG)
        .unwrap();
    smtp.quit().unwrap();
    server.wait_for_messages(1, WAIT).remove(0)
}

/// Credentials with opportunistic TLS (the default) and no STARTTLS offered:
/// a typed error before any AUTH or MAIL, never a login in the clear.
#[test]
#[ignore = "needs a non-loopback address in SMTP_TEST_NONLOOPBACK (scripts/test)"]
fn opportunistic_credentials_without_starttls_send_nothing() {
    let s = server(smtp_testkit::ServerTls::None);
    let e = SmtpClient::builder(s.addr())
        .credentials("alice", "pw")
        .timeout(WAIT)
        .connect()
        .unwrap_err();
    assert_eq!(plaintext_auth(e), "CRAM-MD5");
    let raw = received(&s);
    assert!(raw.starts_with("EHLO "), "{raw}");
    assert!(!raw.contains("AUTH") && !raw.contains("MAIL"), "{raw}");
    assert!(s.messages().is_empty());

    // A mechanism of one's own choice that carries a token: the same.
    let s = server(smtp_testkit::ServerTls::None);
    let e = SmtpClient::builder(s.addr())
        .mechanism(|| Box::new(XOAuth2::new("alice", Secret::new("pw"))))
        .timeout(WAIT)
        .connect()
        .unwrap_err();
    assert_eq!(plaintext_auth(e), "XOAUTH2");
    let raw = received(&s);
    assert!(!raw.contains("AUTH") && !raw.contains("MAIL"), "{raw}");
}

/// smtplib's `login` in plaintext: refused, nothing sent (unlike smtplib).
#[test]
#[ignore = "needs a non-loopback address in SMTP_TEST_NONLOOPBACK (scripts/test)"]
fn login_in_plaintext_is_refused() {
    let s = server(smtp_testkit::ServerTls::None);
    let o = Options::default().timeout(WAIT);
    let mut smtp = SmtpClient::connect(&s.addr().to_string(), o).unwrap();
    assert!(!smtp.config().loopback_peer);
    assert_eq!(
        plaintext_auth(smtp.login("alice", "pw").unwrap_err()),
        "CRAM-MD5"
    );
    let auth = smtp.auth(
        Box::new(Plain::new(Credentials::new("alice", "pw"))),
        InitialResponse::Send,
    );
    assert_eq!(plaintext_auth(auth.unwrap_err()), "PLAIN");
    smtp.quit().unwrap();
    let raw = received(&s);
    assert!(!raw.contains("AUTH"), "{raw}");
}

/// The named opt-in: the login goes in the clear.
#[test]
#[ignore = "needs a non-loopback address in SMTP_TEST_NONLOOPBACK (scripts/test)"]
fn allow_plaintext_auth_logs_in_in_the_clear() {
    let s = server(smtp_testkit::ServerTls::None);
    let smtp = SmtpClient::builder(s.addr())
        .credentials("alice", "pw")
        .allow_plaintext_auth(true)
        .timeout(WAIT)
        .connect()
        .unwrap();
    assert!(!smtp.is_tls() && !smtp.config().loopback_peer);
    let m = send_and_quit(&s, smtp);
    assert_eq!(m.auth_user.as_deref(), Some("alice"));
    assert!(!m.tls);
}

/// STARTTLS with a certificate verified against the test CA: the login goes,
/// required or opportunistic.
#[cfg(feature = "tls")]
#[test]
#[ignore = "needs a non-loopback address in SMTP_TEST_NONLOOPBACK (scripts/test)"]
fn starttls_with_a_verified_certificate_logs_in() {
    for mode in [Tls::StartTls, Tls::Opportunistic] {
        let s = server(smtp_testkit::ServerTls::StartTls);
        let smtp = SmtpClient::builder(s.addr())
            .tls(mode)
            .tls_config(s.pki().client_config())
            .tls_server_name("localhost")
            .credentials("alice", "pw")
            .timeout(WAIT)
            .connect()
            .unwrap();
        assert!(smtp.is_tls_verified());
        let m = send_and_quit(&s, smtp);
        assert!(m.tls, "{mode:?}");
        assert_eq!(m.auth_user.as_deref(), Some("alice"), "{mode:?}");
    }
}

/// TLS that accepts any certificate counts as plaintext, by STARTTLS and
/// implicitly; the one opt-in covers it.
// The accept-anything configuration needs a crypto provider.
#[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
#[test]
#[ignore = "needs a non-loopback address in SMTP_TEST_NONLOOPBACK (scripts/test)"]
fn insecure_tls_counts_as_plaintext() {
    let insecure = smtp_blocking::smtp_adapter::tls::dangerous_accept_any_certificate().unwrap();
    for (server_tls, mode) in [
        (smtp_testkit::ServerTls::StartTls, Tls::StartTls),
        (smtp_testkit::ServerTls::Implicit, Tls::Implicit),
    ] {
        let s = server(server_tls);
        let e = SmtpClient::builder(s.addr())
            .tls(mode)
            .tls_config(insecure.clone())
            .credentials("alice", "pw")
            .timeout(WAIT)
            .connect()
            .unwrap_err();
        assert_eq!(plaintext_auth(e), "CRAM-MD5", "{mode:?}");
        let raw = received(&s);
        assert!(s.connection_logs()[0].tls, "{mode:?}: TLS was up");
        assert!(
            !raw.contains("AUTH") && !raw.contains("MAIL"),
            "{mode:?}: {raw}"
        );

        let s = server(server_tls);
        let smtp = SmtpClient::builder(s.addr())
            .tls(mode)
            .tls_config(insecure.clone())
            .credentials("alice", "pw")
            .allow_plaintext_auth(true)
            .timeout(WAIT)
            .connect()
            .unwrap();
        assert!(smtp.is_tls() && !smtp.is_tls_verified());
        let m = send_and_quit(&s, smtp);
        assert_eq!(m.auth_user.as_deref(), Some("alice"), "{mode:?}");
    }
}

/// The variable the tests read is checked, so that none passes as if it ran.
#[test]
#[ignore = "needs a non-loopback address in SMTP_TEST_NONLOOPBACK (scripts/test)"]
fn the_address_is_not_loopback() {
    let ip = smtp_testkit::nonloopback_ip();
    assert!(!smtp_blocking::smtp_adapter::net::is_loopback(ip));
}
