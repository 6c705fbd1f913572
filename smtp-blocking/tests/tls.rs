//! TLS in the blocking facade: session resumption across connections, the
//! crypto provider the features chose, and a build without TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use smtp_blocking::{Options, SmtpClient};
use smtp_testkit::{MockServer, ServerConfig, ServerTls};

const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: tls\r\n\r\nhello\r\n";

fn options() -> Options {
    let mut o = Options::default();
    o.timeout = Some(Duration::from_secs(10));
    o
}

/// Two connections with one configuration: the second handshake resumes
/// the first session (rustls' session cache), as the client and the
/// server both report; for STARTTLS and for implicit TLS.
#[cfg(feature = "tls")]
#[test]
fn a_second_connection_resumes_the_tls_session() {
    for mode in [ServerTls::StartTls, ServerTls::Implicit] {
        let server = MockServer::start(ServerConfig::default().tls(mode)).unwrap();
        let config = server.pki().client_config();
        let addr = server.addr().to_string();
        let mut resumed = Vec::new();
        for _ in 0..2 {
            let mut smtp = if mode == ServerTls::Implicit {
                SmtpClient::connect_tls(&addr, options(), Some(config.clone())).unwrap()
            } else {
                let mut smtp = SmtpClient::connect(&addr, options()).unwrap();
                smtp.set_tls_config(config.clone());
                smtp.set_tls_server_name("localhost");
                assert!(!smtp.tls_resumed());
                smtp.starttls().unwrap();
                smtp
            };
            smtp.noop().unwrap();
            resumed.push(smtp.tls_resumed());
            smtp.quit().unwrap();
        }
        assert_eq!(resumed, [false, true], "{mode:?}");
        server.wait_for_closed(2, Duration::from_secs(5));
        let logs = server.connection_logs();
        let on_server: Vec<bool> = logs.iter().map(|l| l.tls_resumed).collect();
        assert_eq!(on_server, [false, true], "{mode:?}");
    }
}

/// The crypto provider the features chose (ring or aws-lc-rs) completes a
/// STARTTLS handshake with the test server (whose side runs ring), with
/// the default configuration's protocol versions and the test CA.
#[cfg(feature = "tls")]
#[test]
fn the_chosen_provider_completes_a_handshake() {
    let Ok(provider) = smtp_blocking::smtp_adapter::tls::provider() else {
        // `tls` without a provider feature: nothing to check here.
        return;
    };
    let server = MockServer::start(ServerConfig::default().tls(ServerTls::StartTls)).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.pki().ca_der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut smtp = SmtpClient::connect(&server.addr().to_string(), options()).unwrap();
    smtp.set_tls_config(std::sync::Arc::new(config));
    smtp.set_tls_server_name("localhost");
    smtp.starttls().unwrap();
    smtp.sendmail("a@example.org", &["b@example.org"], MSG)
        .unwrap();
    smtp.quit().unwrap();
    assert!(server.wait_for_messages(1, Duration::from_secs(5))[0].tls);
}

/// Without TLS, STARTTLS and implicit TLS are a typed error, and STARTTLS
/// is not sent; plain sessions work.
#[cfg(not(feature = "tls"))]
#[test]
fn without_tls_asking_for_it_is_a_typed_error() {
    let server = MockServer::start(ServerConfig::default().tls(ServerTls::StartTls)).unwrap();
    let addr = server.addr().to_string();
    let e = SmtpClient::connect_tls(&addr, options(), None).unwrap_err();
    assert!(
        matches!(e, smtp_blocking::Error::TlsUnavailable(_)),
        "{e:?}"
    );

    let mut smtp = SmtpClient::connect(&addr, options()).unwrap();
    let e = smtp.starttls().unwrap_err();
    assert!(
        matches!(e, smtp_blocking::Error::TlsUnavailable(_)),
        "{e:?}"
    );
    smtp.sendmail("a@example.org", &["b@example.org"], MSG)
        .unwrap();
    smtp.quit().unwrap();
    server.wait_for_closed(1, Duration::from_secs(5));
    assert!(
        !server
            .transcript()
            .iter()
            .any(|l| l.contains("STARTTLS") && l.starts_with("C:")),
        "{:?}",
        server.transcript()
    );
}
