//! The async facade over a caller's stream, on both runtimes: through a
//! SOCKS5 proxy (tokio-socks' client over the runtime's own TCP stream),
//! with STARTTLS and AUTH. Each case is written once, generic over the
//! runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Rt, on_both, options};
use smtp_async::SmtpClient;
use smtp_async_std::AsyncStd;
#[cfg(feature = "tls")]
use smtp_testkit::ServerTls;
use smtp_testkit::{MockServer, ServerConfig, Socks5Proxy};
use smtp_tokio::Tokio;

const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: proxied\r\n\r\nhello\r\n";

/// A session with `server` through `proxy`.
async fn through<R: Rt>(proxy: &Socks5Proxy, server: &MockServer) -> SmtpClient<R> {
    let tcp = R::tcp(proxy.addr()).await.unwrap();
    let socket = tokio_socks::io::Compat::new(tcp);
    let stream = tokio_socks::tcp::Socks5Stream::connect_with_socket(socket, server.addr())
        .await
        .unwrap();
    R::over(stream, "localhost", options()).await.unwrap()
}

async fn plain<R: Rt>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let proxy = Socks5Proxy::start().unwrap();
    let mut smtp = through::<R>(&proxy, &server).await;
    smtp.sendmail("a@example.org", &["b@example.org"], MSG)
        .await
        .unwrap();
    smtp.quit().await.unwrap();
    assert_eq!(proxy.targets(), [server.addr()]);
    assert_eq!(
        server.wait_for_messages(1, Duration::from_secs(5))[0].data,
        MSG
    );
}

#[test]
fn a_plain_session_through_a_socks5_proxy() {
    on_both(plain::<Tokio>(), plain::<AsyncStd>());
}

#[cfg(feature = "tls")]
async fn starttls_and_auth<R: Rt>() {
    let server = MockServer::start(
        ServerConfig::default()
            .tls(ServerTls::StartTls)
            .user("alice", "secret"),
    )
    .unwrap();
    let proxy = Socks5Proxy::start().unwrap();
    let mut smtp = through::<R>(&proxy, &server).await;
    smtp.set_tls_config(server.pki().client_config());
    smtp.starttls().await.unwrap();
    assert!(smtp.is_tls());
    smtp.login("alice", "secret").await.unwrap();
    smtp.sendmail("a@example.org", &["b@example.org"], MSG)
        .await
        .unwrap();
    smtp.quit().await.unwrap();

    assert_eq!(proxy.targets(), [server.addr()]);
    let m = &server.wait_for_messages(1, Duration::from_secs(5))[0];
    assert!(m.tls);
    assert_eq!(m.auth_user.as_deref(), Some("alice"));
    assert_eq!(m.data, MSG);
}

#[cfg(feature = "tls")]
#[test]
fn starttls_and_auth_through_a_socks5_proxy() {
    on_both(
        starttls_and_auth::<Tokio>(),
        starttls_and_auth::<AsyncStd>(),
    );
}
