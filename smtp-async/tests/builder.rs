//! The connection builder on both async runtimes: TLS modes, login, a custom
//! mechanism, LMTP, and STARTTLS required but not offered. Each case is written
//! once, generic over the runtime, and run on Tokio and on async-std.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Without TLS only the plain-text cases run.
#![cfg_attr(not(feature = "tls"), allow(unused_imports, dead_code))]

mod common;

use std::time::Duration;

use common::on_both;
use smtp_async::smtp_sansio::sasl::{Credentials, Plain};
use smtp_async::{Runtime, SmtpClient, Tls};
use smtp_async_std::AsyncStd;
use smtp_testkit::{MockServer, Received, ServerConfig};
use smtp_tokio::Tokio;

const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n";
const WAIT: Duration = Duration::from_secs(10);

async fn send_one<R: Runtime>(server: &MockServer, mut smtp: SmtpClient<R>) -> Received {
    smtp.sendmail("a@example.org", &["b@example.org"], MSG)
        .await
        .unwrap();
    smtp.quit().await.unwrap();
    server.wait_for_messages(1, WAIT).remove(0)
}

#[cfg(feature = "tls")]
async fn starttls_required<R: Runtime>() {
    let config = ServerConfig::default()
        .tls(smtp_testkit::ServerTls::StartTls)
        .user("alice", "secret");
    let server = MockServer::start(config).unwrap();
    let smtp = SmtpClient::<R>::builder(server.addr())
        .tls(Tls::StartTls)
        .tls_config(server.pki().client_config())
        .tls_server_name("localhost")
        .credentials("alice", "secret")
        .timeout(WAIT)
        .connect()
        .await
        .unwrap();
    assert!(smtp.is_tls());
    let m = send_one(&server, smtp).await;
    assert!(m.tls);
    assert_eq!(m.auth_user.as_deref(), Some("alice"));
}

#[cfg(feature = "tls")]
#[test]
fn starttls_required_with_credentials() {
    on_both(
        starttls_required::<Tokio>(),
        starttls_required::<AsyncStd>(),
    );
}

#[cfg(feature = "tls")]
async fn opportunistic<R: Runtime>() {
    let tls =
        MockServer::start(ServerConfig::default().tls(smtp_testkit::ServerTls::StartTls)).unwrap();
    let smtp = SmtpClient::<R>::builder(tls.addr())
        .tls_config(tls.pki().client_config())
        .tls_server_name("localhost")
        .connect()
        .await
        .unwrap();
    assert!(send_one(&tls, smtp).await.tls);
    let plain = MockServer::start(ServerConfig::default()).unwrap();
    let smtp = SmtpClient::<R>::builder(plain.addr())
        .connect()
        .await
        .unwrap();
    assert!(!send_one(&plain, smtp).await.tls);
}

#[cfg(feature = "tls")]
#[test]
fn opportunistic_uses_starttls_when_offered_and_plain_otherwise() {
    on_both(opportunistic::<Tokio>(), opportunistic::<AsyncStd>());
}

#[cfg(feature = "tls")]
async fn required_not_offered<R: Runtime>() {
    let server = MockServer::start(ServerConfig::default().user("alice", "secret")).unwrap();
    let e = SmtpClient::<R>::builder(server.addr())
        .tls(Tls::StartTls)
        .credentials("alice", "secret")
        .connect()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("STARTTLS"), "{e}");
    server.wait_for_closed(1, WAIT);
    let raw = String::from_utf8_lossy(&server.raw()[0]).into_owned();
    assert!(!raw.contains("AUTH") && !raw.contains("MAIL"), "{raw}");
}

#[cfg(feature = "tls")]
#[test]
fn starttls_required_but_not_offered_sends_nothing_else() {
    on_both(
        required_not_offered::<Tokio>(),
        required_not_offered::<AsyncStd>(),
    );
}

#[cfg(feature = "tls")]
async fn implicit_with_mechanism<R: Runtime>() {
    let config = ServerConfig::default()
        .tls(smtp_testkit::ServerTls::Implicit)
        .user("carol", "pw");
    let server = MockServer::start(config).unwrap();
    let smtp = SmtpClient::<R>::builder(server.addr())
        .tls(Tls::Implicit)
        .tls_config(server.pki().client_config())
        .tls_server_name("localhost")
        .mechanism(|| Box::new(Plain::new(Credentials::new("carol", "pw"))))
        .connect()
        .await
        .unwrap();
    let m = send_one(&server, smtp).await;
    assert!(m.tls);
    assert_eq!(m.auth_user.as_deref(), Some("carol"));
}

#[cfg(feature = "tls")]
#[test]
fn implicit_tls_and_a_custom_mechanism() {
    on_both(
        implicit_with_mechanism::<Tokio>(),
        implicit_with_mechanism::<AsyncStd>(),
    );
}

#[cfg(unix)]
async fn lmtp_unix<R: Runtime>() {
    let path = smtp_testkit::temp_socket_path("async-builder-lmtp");
    let server = MockServer::start(ServerConfig::lmtp_unix(&path)).unwrap();
    let mut lmtp = SmtpClient::<R>::lmtp_builder(path.to_str().unwrap())
        .connect()
        .await
        .unwrap();
    let r = lmtp
        .sendmail("a@example.org", &["bob", "carol"], MSG)
        .await
        .unwrap();
    assert_eq!(r.recipients.len(), 2);
    lmtp.quit().await.unwrap();
    assert_eq!(server.wait_for_messages(1, WAIT).len(), 1);
}

#[cfg(unix)]
#[test]
fn lmtp_over_a_unix_socket() {
    on_both(lmtp_unix::<Tokio>(), lmtp_unix::<AsyncStd>());
}
