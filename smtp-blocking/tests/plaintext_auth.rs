//! The rule on secrets in the clear through the blocking facade, on this
//! machine: a loopback TCP peer and a Unix socket still log in without TLS; a
//! caller's stream counts as remote (`from_stream` cannot see where it goes)
//! unless the caller vouches for it (`Options::stream_is_loopback`) or opts in
//! (`allow_plaintext_auth`); TLS with the accept-anything configuration counts
//! as plaintext. The same rule against a peer that is not loopback runs in
//! `smtp-async/tests/nonloopback.rs` (a network namespace, `scripts/test`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::time::Duration;

use smtp_blocking::smtp_sansio::{Error as SmtpError, SecurityError};
use smtp_blocking::{Error, Options, SmtpClient};
use smtp_testkit::{MockServer, ServerConfig};

const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n";
const WAIT: Duration = Duration::from_secs(10);

fn opts() -> Options {
    Options::default().timeout(WAIT)
}

/// What the client sent on the server's first connection, once it is over.
fn received(server: &MockServer) -> String {
    server.wait_for_closed(1, WAIT);
    String::from_utf8_lossy(&server.raw()[0]).into_owned()
}

fn plaintext_auth(e: Error) -> String {
    match e {
        Error::Smtp(SmtpError::Security(SecurityError::PlaintextAuth { mechanism })) => mechanism,
        other => panic!("expected the plaintext-AUTH refusal, got {other:?}"),
    }
}

fn send_and_quit(server: &MockServer, mut smtp: SmtpClient) -> Option<String> {
    smtp.sendmail("a@example.org", &["b@example.org"], MSG)
        .unwrap();
    smtp.quit().unwrap();
    server.wait_for_messages(1, WAIT).remove(0).auth_user
}

#[test]
fn loopback_tcp_logs_in_without_tls() {
    let server = MockServer::start(ServerConfig::default().user("alice", "pw")).unwrap();
    let smtp = SmtpClient::builder(server.addr())
        .credentials("alice", "pw")
        .timeout(WAIT)
        .connect()
        .unwrap();
    assert!(!smtp.is_tls() && smtp.config().loopback_peer);
    assert_eq!(send_and_quit(&server, smtp).as_deref(), Some("alice"));
}

#[cfg(unix)]
#[test]
fn a_unix_socket_logs_in_without_tls() {
    let path = smtp_testkit::temp_socket_path("blocking-plaintext-auth");
    let server =
        MockServer::start(ServerConfig::default().unix(&path).user("alice", "pw")).unwrap();
    let smtp = smtp_blocking::Builder::<SmtpClient>::unix(&path)
        .credentials("alice", "pw")
        .timeout(WAIT)
        .connect()
        .unwrap();
    assert!(smtp.config().loopback_peer);
    assert_eq!(send_and_quit(&server, smtp).as_deref(), Some("alice"));
}

/// A stream of the caller's: the session cannot tell a loopback socket from
/// a proxy's, so the password stays home.
#[test]
fn a_callers_stream_counts_as_remote() {
    let server = MockServer::start(ServerConfig::default().user("alice", "pw")).unwrap();
    let stream = TcpStream::connect(server.addr()).unwrap();
    let mut smtp = SmtpClient::from_stream(stream, "localhost", opts()).unwrap();
    assert_eq!(
        plaintext_auth(smtp.login("alice", "pw").unwrap_err()),
        "CRAM-MD5"
    );
    assert!(!smtp.is_authenticated());
    drop(smtp);
    let raw = received(&server);
    assert!(raw.starts_with("EHLO ") && !raw.contains("AUTH"), "{raw}");
}

#[test]
fn a_stream_the_caller_vouches_for_logs_in() {
    let server = MockServer::start(ServerConfig::default().user("alice", "pw")).unwrap();
    let stream = TcpStream::connect(server.addr()).unwrap();
    let o = opts().stream_is_loopback(true);
    let mut smtp = SmtpClient::from_stream(stream, "localhost", o).unwrap();
    smtp.login("alice", "pw").unwrap();
    assert_eq!(send_and_quit(&server, smtp).as_deref(), Some("alice"));
}

#[test]
fn allow_plaintext_auth_opts_in() {
    let server = MockServer::start(ServerConfig::default().user("alice", "pw")).unwrap();
    let stream = TcpStream::connect(server.addr()).unwrap();
    let o = opts().allow_plaintext_auth(true);
    let mut smtp = SmtpClient::from_stream(stream, "localhost", o).unwrap();
    smtp.login("alice", "pw").unwrap();
    assert_eq!(send_and_quit(&server, smtp).as_deref(), Some("alice"));
}

/// TLS over a caller's stream: verified by the test CA, the login goes;
/// with the accept-anything configuration, it counts as plaintext.
// The accept-anything configuration needs a crypto provider.
#[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
#[test]
fn unverified_tls_counts_as_plaintext() {
    use smtp_blocking::smtp_adapter::tls;

    let config = ServerConfig::default()
        .tls(smtp_testkit::ServerTls::StartTls)
        .user("alice", "pw");
    let insecure = tls::dangerous_accept_any_certificate().unwrap();
    assert!(!tls::verifies_certificates(&insecure));

    let server = MockServer::start(config.clone()).unwrap();
    let stream = TcpStream::connect(server.addr()).unwrap();
    let mut smtp = SmtpClient::from_stream(stream, "localhost", opts()).unwrap();
    smtp.set_tls_config(insecure.clone());
    smtp.starttls().unwrap();
    assert!(smtp.is_tls() && !smtp.is_tls_verified());
    assert_eq!(
        plaintext_auth(smtp.login("alice", "pw").unwrap_err()),
        "CRAM-MD5"
    );
    drop(smtp);
    let raw = received(&server);
    assert!(raw.contains("STARTTLS") && !raw.contains("AUTH"), "{raw}");

    // The one opt-in covers it.
    let server = MockServer::start(config.clone()).unwrap();
    let stream = TcpStream::connect(server.addr()).unwrap();
    let o = opts().allow_plaintext_auth(true);
    let mut smtp = SmtpClient::from_stream(stream, "localhost", o).unwrap();
    smtp.set_tls_config(insecure);
    smtp.starttls().unwrap();
    smtp.login("alice", "pw").unwrap();
    assert_eq!(send_and_quit(&server, smtp).as_deref(), Some("alice"));

    // A verified certificate needs no opt-in.
    let server = MockServer::start(config).unwrap();
    let stream = TcpStream::connect(server.addr()).unwrap();
    let mut smtp = SmtpClient::from_stream(stream, "localhost", opts()).unwrap();
    smtp.set_tls_config(server.pki().client_config());
    smtp.starttls().unwrap();
    assert!(smtp.is_tls_verified());
    smtp.login("alice", "pw").unwrap();
    assert_eq!(send_and_quit(&server, smtp).as_deref(), Some("alice"));
}
