//! A submission session through a SOCKS5 proxy, with STARTTLS and AUTH:
//! `cargo run -p smtp-tokio --example tokio_socks5`.
//!
//! It starts the embedded test server and a SOCKS5 proxy on loopback, opens
//! the tunnel with `tokio-socks`, and hands it to `SmtpClient::from_stream`
//! (any Tokio `AsyncRead + AsyncWrite` stream). Against a real server, connect
//! the tunnel to `smtp.example.org:587` and name that host instead of
//! `localhost`.

use std::time::Duration;

use smtp_testkit::{MockServer, ServerConfig, ServerTls, Socks5Proxy};
use smtp_tokio::{Options, SmtpClient};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = MockServer::start(
        ServerConfig::default()
            .tls(ServerTls::StartTls)
            .user("alice", "correct horse battery staple"),
    )?;
    let proxy = Socks5Proxy::start()?;

    let tunnel = tokio_socks::tcp::Socks5Stream::connect(proxy.addr(), server.addr()).await?;
    let mut smtp = SmtpClient::from_stream(tunnel, "localhost", Options::default()).await?;
    // The test server's certificate is signed by its own CA.
    smtp.set_tls_config(server.pki().client_config());
    smtp.starttls().await?;
    smtp.login("alice", "correct horse battery staple").await?;
    let result = smtp
        .sendmail(
            "alice@example.org",
            &["bob@example.net"],
            b"Subject: through a proxy\r\n\r\nHello from behind a SOCKS5 proxy.\r\n",
        )
        .await?;
    smtp.quit().await?;

    let received = server.wait_for_messages(1, Duration::from_secs(10));
    println!(
        "proxy connected to {:?}; accepted: {:?}; server saw TLS: {}, user: {:?}",
        proxy.targets(),
        result.accepted(),
        received.first().is_some_and(|m| m.tls),
        received.first().and_then(|m| m.auth_user.clone()),
    );
    Ok(())
}
