//! The rule on secrets in the clear through the async facade, on Tokio and on
//! async-std, on this machine: a loopback TCP peer and a Unix socket still log
//! in without TLS; a caller's stream counts as remote unless the caller
//! vouches for it (`Options::stream_is_loopback`) or opts in
//! (`allow_plaintext_auth`); TLS with the accept-anything configuration counts
//! as plaintext. Against a peer that is not loopback: `tests/nonloopback.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(not(feature = "tls"), allow(unused_imports, dead_code))]

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use common::on_both;
use smtp_async::smtp_sansio::{Error as SmtpError, SecurityError};
use smtp_async::{Error, Options, Runtime, SmtpClient};
use smtp_async_std::AsyncStd;
use smtp_testkit::{MockServer, ServerConfig};
use smtp_tokio::Tokio;

const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n";
const WAIT: Duration = Duration::from_secs(10);

/// A runtime whose own TCP stream a test can hand to `from_stream`.
trait StreamRuntime: Runtime {
    /// A session over a TCP stream to `addr` that the test connected.
    fn over_stream(addr: SocketAddr, options: Options) -> impl Future<Output = SmtpClient<Self>>;
}

impl StreamRuntime for Tokio {
    async fn over_stream(addr: SocketAddr, options: Options) -> SmtpClient<Tokio> {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        SmtpClient::from_stream(stream, "localhost", options)
            .await
            .unwrap()
    }
}

impl StreamRuntime for AsyncStd {
    async fn over_stream(addr: SocketAddr, options: Options) -> SmtpClient<AsyncStd> {
        let stream = async_std::net::TcpStream::connect(addr).await.unwrap();
        SmtpClient::from_stream(stream, "localhost", options)
            .await
            .unwrap()
    }
}

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

async fn send_and_quit<R: Runtime>(server: &MockServer, mut smtp: SmtpClient<R>) -> Option<String> {
    smtp.sendmail("a@example.org", &["b@example.org"], MSG)
        .await
        .unwrap();
    smtp.quit().await.unwrap();
    server.wait_for_messages(1, WAIT).remove(0).auth_user
}

async fn loopback_tcp<R: Runtime>() {
    let server = MockServer::start(ServerConfig::default().user("alice", "pw")).unwrap();
    let smtp = SmtpClient::<R>::builder(server.addr())
        .credentials("alice", "pw")
        .timeout(WAIT)
        .connect()
        .await
        .unwrap();
    assert!(!smtp.is_tls() && smtp.config().loopback_peer);
    assert_eq!(send_and_quit(&server, smtp).await.as_deref(), Some("alice"));
}

#[test]
fn loopback_tcp_logs_in_without_tls() {
    on_both(loopback_tcp::<Tokio>(), loopback_tcp::<AsyncStd>());
}

#[cfg(unix)]
async fn unix_socket<R: Runtime>() {
    let path = smtp_testkit::temp_socket_path("async-plaintext-auth");
    let server =
        MockServer::start(ServerConfig::default().unix(&path).user("alice", "pw")).unwrap();
    let smtp = smtp_async::Builder::<SmtpClient<R>>::unix(&path)
        .credentials("alice", "pw")
        .timeout(WAIT)
        .connect()
        .await
        .unwrap();
    assert!(smtp.config().loopback_peer);
    assert_eq!(send_and_quit(&server, smtp).await.as_deref(), Some("alice"));
}

#[cfg(unix)]
#[test]
fn a_unix_socket_logs_in_without_tls() {
    on_both(unix_socket::<Tokio>(), unix_socket::<AsyncStd>());
}

async fn callers_stream<R: StreamRuntime>() {
    let server = MockServer::start(ServerConfig::default().user("alice", "pw")).unwrap();
    let mut smtp = R::over_stream(server.addr(), opts()).await;
    let e = smtp.login("alice", "pw").await.unwrap_err();
    assert_eq!(plaintext_auth(e), "CRAM-MD5");
    assert!(!smtp.is_authenticated());
    smtp.quit().await.unwrap();
    let raw = received(&server);
    assert!(raw.starts_with("EHLO ") && !raw.contains("AUTH"), "{raw}");
}

/// A stream of the caller's: the session cannot tell a loopback socket from
/// a proxy's, so the password stays home.
#[test]
fn a_callers_stream_counts_as_remote() {
    on_both(callers_stream::<Tokio>(), callers_stream::<AsyncStd>());
}

async fn vouched_or_allowed<R: StreamRuntime>() {
    for o in [
        opts().stream_is_loopback(true),
        opts().allow_plaintext_auth(true),
    ] {
        let server = MockServer::start(ServerConfig::default().user("alice", "pw")).unwrap();
        let mut smtp = R::over_stream(server.addr(), o).await;
        smtp.login("alice", "pw").await.unwrap();
        assert_eq!(send_and_quit(&server, smtp).await.as_deref(), Some("alice"));
    }
}

#[test]
fn a_vouched_for_stream_and_the_opt_in_log_in() {
    on_both(
        vouched_or_allowed::<Tokio>(),
        vouched_or_allowed::<AsyncStd>(),
    );
}

#[cfg(feature = "tls")]
async fn unverified_tls<R: StreamRuntime>() {
    use smtp_async::smtp_adapter::tls;

    let config = ServerConfig::default()
        .tls(smtp_testkit::ServerTls::StartTls)
        .user("alice", "pw");
    let insecure = tls::dangerous_accept_any_certificate().unwrap();

    let server = MockServer::start(config.clone()).unwrap();
    let mut smtp = R::over_stream(server.addr(), opts()).await;
    smtp.set_tls_config(insecure.clone());
    smtp.starttls().await.unwrap();
    assert!(smtp.is_tls() && !smtp.is_tls_verified());
    let e = smtp.login("alice", "pw").await.unwrap_err();
    assert_eq!(plaintext_auth(e), "CRAM-MD5");
    smtp.quit().await.unwrap();
    let raw = received(&server);
    assert!(raw.contains("STARTTLS") && !raw.contains("AUTH"), "{raw}");

    // The one opt-in covers it.
    let server = MockServer::start(config.clone()).unwrap();
    let mut smtp = R::over_stream(server.addr(), opts().allow_plaintext_auth(true)).await;
    smtp.set_tls_config(insecure);
    smtp.starttls().await.unwrap();
    smtp.login("alice", "pw").await.unwrap();
    assert_eq!(send_and_quit(&server, smtp).await.as_deref(), Some("alice"));

    // A verified certificate needs no opt-in.
    let server = MockServer::start(config).unwrap();
    let mut smtp = R::over_stream(server.addr(), opts()).await;
    smtp.set_tls_config(server.pki().client_config());
    smtp.starttls().await.unwrap();
    assert!(smtp.is_tls_verified());
    smtp.login("alice", "pw").await.unwrap();
    assert_eq!(send_and_quit(&server, smtp).await.as_deref(), Some("alice"));
}

/// TLS over a caller's stream: verified by the test CA, the login goes;
/// with the accept-anything configuration, it counts as plaintext.
#[cfg(feature = "tls")]
#[test]
fn unverified_tls_counts_as_plaintext() {
    on_both(unverified_tls::<Tokio>(), unverified_tls::<AsyncStd>());
}
