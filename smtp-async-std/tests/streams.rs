//! smtp-async-std over a caller's stream: through a SOCKS5 proxy, with STARTTLS
//! and AUTH.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use smtp_async_std::{Options, SmtpClient};
#[cfg(feature = "tls")]
use smtp_testkit::ServerTls;
use smtp_testkit::{MockServer, ServerConfig, Socks5Proxy};

const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: proxied\r\n\r\nhello\r\n";

fn options() -> Options {
    let mut o = Options::default();
    o.timeout = Some(Duration::from_secs(10));
    o
}

/// A session with `server` through `proxy` (tokio-socks' client over an async-std stream).
async fn through(proxy: &Socks5Proxy, server: &MockServer) -> SmtpClient {
    let tcp = async_std::net::TcpStream::connect(proxy.addr())
        .await
        .unwrap();
    let socket = tokio_socks::io::Compat::new(tcp);
    let stream = tokio_socks::tcp::Socks5Stream::connect_with_socket(socket, server.addr())
        .await
        .unwrap();
    SmtpClient::from_stream(stream, "localhost", options())
        .await
        .unwrap()
}

#[test]
fn a_plain_session_through_a_socks5_proxy() {
    async_std::task::block_on(async {
        let server = MockServer::start(ServerConfig::default()).unwrap();
        let proxy = Socks5Proxy::start().unwrap();
        let mut smtp = through(&proxy, &server).await;
        smtp.sendmail("a@example.org", &["b@example.org"], MSG)
            .await
            .unwrap();
        smtp.quit().await.unwrap();
        assert_eq!(proxy.targets(), [server.addr()]);
        assert_eq!(
            server.wait_for_messages(1, Duration::from_secs(5))[0].data,
            MSG
        );
    });
}

#[cfg(feature = "tls")]
#[test]
fn starttls_and_auth_through_a_socks5_proxy() {
    async_std::task::block_on(async {
        let server = MockServer::start(
            ServerConfig::default()
                .tls(ServerTls::StartTls)
                .user("alice", "secret"),
        )
        .unwrap();
        let proxy = Socks5Proxy::start().unwrap();
        let mut smtp = through(&proxy, &server).await;
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
    });
}
