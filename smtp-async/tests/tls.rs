//! TLS through the async facade, on both runtimes: session resumption across
//! connections, and a build without TLS. Each case is written once, generic
//! over the runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{on_both, options};
use smtp_async::{Runtime, SmtpClient};
use smtp_async_std::AsyncStd;
use smtp_testkit::{MockServer, ServerConfig, ServerTls};
use smtp_tokio::Tokio;

#[cfg(not(feature = "tls"))]
const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: tls\r\n\r\nhello\r\n";

/// Two connections with one configuration: the second handshake resumes the
/// first session, as the client and the server both report.
#[cfg(feature = "tls")]
async fn resumption<R: Runtime>() {
    for mode in [ServerTls::StartTls, ServerTls::Implicit] {
        let server = MockServer::start(ServerConfig::default().tls(mode)).unwrap();
        let config = server.pki().client_config();
        let addr = server.addr().to_string();
        let mut resumed = Vec::new();
        for _ in 0..2 {
            let mut smtp = if mode == ServerTls::Implicit {
                SmtpClient::<R>::connect_tls(&addr, options(), Some(config.clone()))
                    .await
                    .unwrap()
            } else {
                let mut smtp = SmtpClient::<R>::connect(&addr, options()).await.unwrap();
                smtp.set_tls_config(config.clone());
                smtp.set_tls_server_name("localhost");
                assert!(!smtp.tls_resumed());
                smtp.starttls().await.unwrap();
                smtp
            };
            smtp.noop().await.unwrap();
            resumed.push(smtp.tls_resumed());
            smtp.quit().await.unwrap();
        }
        assert_eq!(resumed, [false, true], "{mode:?}");
        server.wait_for_closed(2, Duration::from_secs(5));
        let on_server: Vec<bool> = server
            .connection_logs()
            .iter()
            .map(|l| l.tls_resumed)
            .collect();
        assert_eq!(on_server, [false, true], "{mode:?}");
    }
}

#[cfg(feature = "tls")]
#[test]
fn a_second_connection_resumes_the_tls_session() {
    on_both(resumption::<Tokio>(), resumption::<AsyncStd>());
}

/// Without TLS, STARTTLS and implicit TLS are a typed error, and STARTTLS is
/// not sent; plain sessions work.
#[cfg(not(feature = "tls"))]
async fn without_tls<R: Runtime>() {
    let server = MockServer::start(ServerConfig::default().tls(ServerTls::StartTls)).unwrap();
    let addr = server.addr().to_string();
    let e = SmtpClient::<R>::connect_tls(&addr, options(), None)
        .await
        .unwrap_err();
    assert!(matches!(e, smtp_async::Error::TlsUnavailable(_)), "{e:?}");

    let mut smtp = SmtpClient::<R>::connect(&addr, options()).await.unwrap();
    let e = smtp.starttls().await.unwrap_err();
    assert!(matches!(e, smtp_async::Error::TlsUnavailable(_)), "{e:?}");
    smtp.sendmail("a@example.org", &["b@example.org"], MSG)
        .await
        .unwrap();
    smtp.quit().await.unwrap();
    server.wait_for_closed(1, Duration::from_secs(5));
    let sent_starttls = server
        .transcript()
        .iter()
        .any(|l| l.starts_with("C:") && l.contains("STARTTLS"));
    assert!(!sent_starttls, "{:?}", server.transcript());
}

#[cfg(not(feature = "tls"))]
#[test]
fn without_tls_asking_for_it_is_a_typed_error() {
    on_both(without_tls::<Tokio>(), without_tls::<AsyncStd>());
}
