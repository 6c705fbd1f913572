//! The connection builder: TLS modes, login, a custom mechanism, LMTP, and the
//! refusal to go on in plain text when STARTTLS is required but not offered.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Without TLS only the plain-text cases run.
#![cfg_attr(not(feature = "tls"), allow(unused_imports, dead_code))]

use std::time::Duration;

use smtp_blocking::smtp_sansio::sasl::{Credentials, Plain};
use smtp_blocking::{SmtpClient, Tls};
use smtp_testkit::{MockServer, ServerConfig};

const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n";
const WAIT: Duration = Duration::from_secs(10);

fn send_one(server: &MockServer, mut smtp: SmtpClient) -> smtp_testkit::Received {
    smtp.sendmail("a@example.org", &["b@example.org"], MSG)
        .unwrap();
    smtp.quit().unwrap();
    server.wait_for_messages(1, WAIT).remove(0)
}

#[cfg(feature = "tls")]
#[test]
fn starttls_required_with_credentials() {
    let config = ServerConfig::default()
        .tls(smtp_testkit::ServerTls::StartTls)
        .user("alice", "secret");
    let server = MockServer::start(config).unwrap();
    let smtp = SmtpClient::builder(server.addr())
        .tls(Tls::StartTls)
        .tls_config(server.pki().client_config())
        .tls_server_name("localhost")
        .credentials("alice", "secret")
        .timeout(WAIT)
        .connect()
        .unwrap();
    assert!(smtp.is_tls());
    let m = send_one(&server, smtp);
    assert!(m.tls);
    assert_eq!(m.auth_user.as_deref(), Some("alice"));
}

#[cfg(feature = "tls")]
#[test]
fn opportunistic_uses_starttls_when_offered_and_plain_otherwise() {
    let tls_server =
        MockServer::start(ServerConfig::default().tls(smtp_testkit::ServerTls::StartTls)).unwrap();
    let smtp = SmtpClient::builder(tls_server.addr())
        .tls_config(tls_server.pki().client_config())
        .tls_server_name("localhost")
        .connect()
        .unwrap();
    assert!(send_one(&tls_server, smtp).tls);

    let plain = MockServer::start(ServerConfig::default()).unwrap();
    let smtp = SmtpClient::builder(plain.addr()).connect().unwrap();
    assert!(!send_one(&plain, smtp).tls);
}

#[cfg(feature = "tls")]
#[test]
fn starttls_required_but_not_offered_sends_nothing_else() {
    let server = MockServer::start(ServerConfig::default().user("alice", "secret")).unwrap();
    let e = SmtpClient::builder(server.addr())
        .tls(Tls::StartTls)
        .credentials("alice", "secret")
        .connect()
        .unwrap_err();
    // STARTTLS not offered; or, in a build with TLS but no crypto provider,
    // TLS not available, found before connecting: either way nothing else
    // goes out.
    assert!(e.to_string().contains("TLS"), "{e}");
    if cfg!(any(feature = "ring", feature = "aws-lc-rs")) {
        server.wait_for_closed(1, WAIT);
    }
    for raw in server.raw() {
        let raw = String::from_utf8_lossy(&raw).into_owned();
        assert!(!raw.contains("AUTH") && !raw.contains("MAIL"), "{raw}");
    }
    assert_eq!(
        server.raw().len(),
        usize::from(cfg!(any(feature = "ring", feature = "aws-lc-rs")))
    );
}

#[cfg(feature = "tls")]
#[test]
fn implicit_tls_and_a_custom_mechanism() {
    let config = ServerConfig::default()
        .tls(smtp_testkit::ServerTls::Implicit)
        .user("carol", "pw");
    let server = MockServer::start(config).unwrap();
    let smtp = SmtpClient::builder(server.addr())
        .tls(Tls::Implicit)
        .tls_config(server.pki().client_config())
        .tls_server_name("localhost")
        .mechanism(|| Box::new(Plain::new(Credentials::new("carol", "pw"))))
        .connect()
        .unwrap();
    let m = send_one(&server, smtp);
    assert!(m.tls);
    assert_eq!(m.auth_user.as_deref(), Some("carol"));
}

#[test]
fn a_wrong_password_is_an_error_from_connect() {
    let server = MockServer::start(ServerConfig::default().user("alice", "secret")).unwrap();
    let e = SmtpClient::builder(server.addr())
        .credentials("alice", "wrong")
        .connect()
        .unwrap_err();
    assert_eq!(e.reply().map(|r| r.code()), Some(535), "{e}");
}

#[cfg(unix)]
#[test]
fn lmtp_over_a_unix_socket() {
    let path = smtp_testkit::temp_socket_path("builder-lmtp");
    let server = MockServer::start(ServerConfig::lmtp_unix(&path)).unwrap();
    let mut lmtp = SmtpClient::lmtp_builder(path.to_str().unwrap())
        .connect()
        .unwrap();
    let r = lmtp
        .sendmail("a@example.org", &["bob", "carol"], MSG)
        .unwrap();
    assert_eq!(r.recipients.len(), 2);
    assert!(
        r.recipients
            .iter()
            .all(|r| r.final_reply.as_ref().is_some_and(|f| f.code() == 250))
    );
    lmtp.quit().unwrap();
    assert_eq!(server.wait_for_messages(1, WAIT).len(), 1);
}

#[test]
fn dropping_an_open_session_sends_quit() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    {
        let mut smtp = SmtpClient::builder(server.addr()).connect().unwrap();
        smtp.sendmail("a@example.org", &["b@example.org"], MSG)
            .unwrap();
        // An early return: no quit().
    }
    server.wait_for_closed(1, WAIT);
    let raw = String::from_utf8_lossy(&server.raw()[0]).into_owned();
    assert!(raw.ends_with("QUIT\r\n"), "{raw}");
}

#[test]
fn dropping_does_not_wait_long_for_a_silent_server() {
    use smtp_testkit::Script;
    let script = Script::default()
        .send("220 mx ready")
        .expect_line()
        .send("250 mx")
        .expect_line();
    let server = MockServer::start(ServerConfig::scripted(script)).unwrap();
    let smtp = SmtpClient::builder(server.addr()).connect().unwrap();
    let started = std::time::Instant::now();
    drop(smtp);
    // The QUIT linger on drop (Timeouts::quit_linger) is one second (a hang
    // would be the five-minute default): the drop ends within it plus 1 s.
    let linger = Duration::from_secs(1);
    let took = started.elapsed();
    assert!(took < linger + Duration::from_secs(1), "{took:?}");
    server.wait_for_closed(1, WAIT);
    assert!(String::from_utf8_lossy(&server.raw()[0]).contains("QUIT"));
}
