//! smtp-async-std: the same session type over a smol (`async-net`) stream.
//! What is not particular to the runtime runs on both runtimes in
//! smtp-async's tests (`scenarios.rs`, `session.rs` among them).

// The smol case needs TLS.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use smtp_async_std::{Options, SmtpClient};
use smtp_testkit::{MockServer, ServerConfig};

#[test]
#[cfg(feature = "tls")]
fn runs_on_smol_over_an_async_net_stream() {
    let server = MockServer::start(
        ServerConfig::default()
            .tls(smtp_testkit::ServerTls::StartTls)
            .user("alice", "pw"),
    )
    .unwrap();
    let addr = server.addr();
    smol::block_on(async {
        let stream = smol::net::TcpStream::connect(addr).await.unwrap();
        let mut o = Options::default();
        o.timeout = Some(Duration::from_secs(10));
        let mut c = SmtpClient::from_stream(stream, "localhost", o)
            .await
            .unwrap();
        c.set_tls_config(server.pki().client_config());
        c.starttls().await.unwrap();
        c.login("alice", "pw").await.unwrap();
        let r = c
            .sendmail(
                "a@example.org",
                &["b@example.org"],
                b"Subject: smol\r\n\r\nhi\r\n",
            )
            .await
            .unwrap();
        assert!(r.refused().is_empty());
        c.quit().await.unwrap();
    });
    let m = &server.wait_for_messages(1, Duration::from_secs(5))[0];
    assert!(m.tls);
    assert_eq!(m.data, b"Subject: smol\r\n\r\nhi\r\n");
}
