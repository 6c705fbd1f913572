//! What a user names is at hand: the types at the crate root, every address
//! form a builder takes, any message in every send call, a server as a URL,
//! and the TLS helpers that trust a private CA.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use smtp_blocking::{
    Address, Credentials, Envelope, Error, Message, Notify, Recipient, Ret, SmtpClient, Tls,
    UrlError, XOAuth2,
};
use smtp_testkit::{MockServer, ServerConfig};

const MSG: &str = "From: a@example.org\r\nTo: b@example.org\r\nSubject: at hand\r\n\r\nhello\r\n";

fn wait(server: &MockServer, n: usize) -> Vec<smtp_testkit::Received> {
    server.wait_for_messages(n, Duration::from_secs(5))
}

/// The address, recipient, DSN, mechanism and message types, named from the
/// crate root, make a session that logs in and sends with DSN options.
#[test]
fn the_types_a_user_names_are_at_the_crate_root() {
    let server = MockServer::start(ServerConfig::default().user("alice", "token")).unwrap();
    let from: Address = "a@example.org".parse().unwrap();
    let envelope = Envelope::new(from, [])
        .ret(Ret::Headers)
        .recipient(Recipient::new("b@example.org".parse().unwrap()).notify(Notify::FAILURE));
    let mechanism = || -> Box<dyn smtp_blocking::Mechanism> {
        Box::new(XOAuth2::new(
            "alice",
            smtp_blocking::smtp_sansio::Secret::new("token"),
        ))
    };
    let credentials = Credentials::new("alice", "token");
    assert!(!format!("{credentials:?}").contains("token"));
    let mut smtp = SmtpClient::builder(server.addr())
        .tls(Tls::None)
        .mechanism(mechanism)
        .connect()
        .unwrap();
    smtp.send(&envelope, Message::from(MSG)).unwrap();
    smtp.quit().unwrap();
    let m = &wait(&server, 1)[0];
    assert_eq!(m.auth_user.as_deref(), Some("alice"));
    let size = MSG.len();
    assert_eq!(m.mail_from, format!("<a@example.org> RET=HDRS SIZE={size}"));
    assert_eq!(m.rcpt_to, ["<b@example.org> NOTIFY=FAILURE"]);
}

/// `mail_builder` comes from the facade, at the version its send calls take.
#[cfg(feature = "mail-builder")]
#[test]
fn mail_builder_is_re_exported() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let message = smtp_blocking::mail_builder::MessageBuilder::new()
        .from("a@example.org")
        .to("b@example.org")
        .subject("composed")
        .text_body("hi");
    let mut smtp = SmtpClient::builder(server.addr()).connect().unwrap();
    smtp.send_message(message).unwrap();
    smtp.quit().unwrap();
    assert_eq!(wait(&server, 1)[0].rcpt_to, ["<b@example.org>"]);
}

/// `send_and_quit` takes any message, as `send` does: bytes, a string, an
/// owned buffer.
#[test]
fn send_and_quit_takes_any_message() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let envelope = Envelope::parse("a@example.org", &["b@example.org"]).unwrap();
    let connect = || SmtpClient::builder(server.addr()).connect().unwrap();
    connect().send_and_quit(&envelope, MSG).unwrap();
    connect().send_and_quit(&envelope, MSG.to_owned()).unwrap();
    connect()
        .send_and_quit(&envelope, MSG.as_bytes().to_vec())
        .unwrap();
    connect().send_and_quit(&envelope, MSG.as_bytes()).unwrap();
    let received = wait(&server, 4);
    assert_eq!(received.len(), 4);
    assert!(received.iter().all(|m| m.data == MSG.as_bytes()));
}

/// A builder takes a `SocketAddr`, an `IpAddr` (with the port set apart), a
/// `(host, port)` pair, `"host:port"` as a `&str` or a `String`.
#[test]
fn builders_take_every_address_form() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let port = server.addr().port();
    let loopback = IpAddr::from(Ipv4Addr::LOCALHOST);
    let text = format!("127.0.0.1:{port}");
    let builders = [
        SmtpClient::builder(server.addr()),
        SmtpClient::builder(loopback).with_port(port),
        SmtpClient::builder(("localhost", port)),
        SmtpClient::builder(("127.0.0.1", port)),
        SmtpClient::builder(text.as_str()),
        SmtpClient::builder(&text),
        SmtpClient::builder(text.clone()),
    ];
    for b in builders {
        let mut smtp = b.tls(Tls::None).connect().unwrap();
        assert!(smtp.noop().unwrap().is_positive());
        smtp.quit().unwrap();
    }
    // A pair whose host has a port of its own is refused by connect.
    let e = SmtpClient::builder(("127.0.0.1:25", port))
        .connect()
        .unwrap_err();
    assert!(
        matches!(
            e.inner(),
            Error::Smtp(smtp_blocking::smtp_sansio::Error::Usage(_))
        ),
        "{e:?}"
    );
}

/// An LMTP builder takes a `SocketAddr` too.
#[test]
fn the_lmtp_builder_takes_a_socket_address() {
    let server = MockServer::start(ServerConfig::lmtp_tcp()).unwrap();
    let mut lmtp = SmtpClient::lmtp_builder(server.addr()).connect().unwrap();
    let r = lmtp
        .sendmail("a@example.org", &["b@example.org"], MSG)
        .unwrap();
    assert_eq!(r.recipients.len(), 1);
    lmtp.quit().unwrap();
}

/// `from_url` end to end: the login from the URL's user information,
/// percent-decoded, over STARTTLS (which a URL with a login requires), with
/// the test server's CA trusted through the helper.
#[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
#[test]
fn from_url_logs_in_with_the_decoded_user_information() {
    let server = MockServer::start(
        ServerConfig::default()
            .tls(smtp_testkit::ServerTls::StartTls)
            .user("alice@example.org", "p/ss w:rd@%"),
    )
    .unwrap();
    let ca = smtp_blocking::tls::config_with_ca_pem(server.pki().ca_pem().as_bytes()).unwrap();
    let port = server.addr().port();
    let url = format!("smtp://alice%40example.org:p%2Fss%20w%3Ard%40%25@127.0.0.1:{port}");
    let b = SmtpClient::from_url(&url).unwrap();
    assert_eq!((b.tls_mode(), b.port()), (Tls::StartTls, port));
    let mut smtp = b.tls_config(ca).connect().unwrap();
    assert!(smtp.is_tls());
    smtp.sendmail("a@example.org", &["b@example.org"], MSG)
        .unwrap();
    smtp.quit().unwrap();
    let m = &wait(&server, 1)[0];
    assert!(m.tls);
    assert_eq!(m.auth_user.as_deref(), Some("alice@example.org"));
}

/// A URL with a login and no word on TLS requires STARTTLS: a server that
/// does not offer it gets no AUTH and no MAIL, even on loopback, where an
/// opportunistic session would have logged in in the clear.
#[test]
fn a_url_with_a_login_never_logs_in_without_tls() {
    let server = MockServer::start(ServerConfig::default().user("alice", "pw")).unwrap();
    let url = format!("smtp://alice:pw@127.0.0.1:{}", server.addr().port());
    let e = SmtpClient::from_url(&url).unwrap().connect().unwrap_err();
    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    let refused = matches!(
        e.inner(),
        Error::Smtp(smtp_blocking::smtp_sansio::Error::Security(
            smtp_blocking::SecurityError::StartTlsNotOffered
        ))
    );
    // A build without TLS (or without a crypto provider) refuses STARTTLS
    // itself.
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    let refused = matches!(e.inner(), Error::TlsUnavailable(_));
    assert!(refused, "{e:?}");
    server.wait_for_closed(1, Duration::from_secs(5));
    for log in server.connection_logs() {
        assert!(
            !log.transcript
                .iter()
                .any(|l| l.starts_with("C: AUTH") || l.starts_with("C: MAIL")),
            "{:?}",
            log.transcript
        );
    }
    // Saying so (`tls=opportunistic`) keeps the builder's rule: loopback may.
    let url = format!("{url}?tls=opportunistic");
    let smtp = SmtpClient::from_url(&url).unwrap().connect().unwrap();
    smtp.quit().unwrap();
    assert!(matches!(
        SmtpClient::from_url("smtp://alice:pw@host:99999"),
        Err(UrlError::Port)
    ));
}

/// A client trusting the test server's CA through the helper completes
/// STARTTLS (from the PEM in memory, or a file); one trusting another CA
/// fails with a TLS error and sends nothing after STARTTLS.
#[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
#[test]
fn the_ca_helpers_trust_that_ca_and_no_other() {
    let server =
        MockServer::start(ServerConfig::default().tls(smtp_testkit::ServerTls::StartTls)).unwrap();
    let file = std::env::temp_dir().join(format!("smtp-at-hand-{}.pem", std::process::id()));
    server.pki().write_ca_pem(&file).unwrap();
    let configs = [
        smtp_blocking::tls::config_with_ca_pem(server.pki().ca_pem().as_bytes()).unwrap(),
        smtp_blocking::tls::config_with_ca_file(&file).unwrap(),
    ];
    std::fs::remove_file(&file).unwrap();
    for config in configs {
        assert!(smtp_blocking::tls::verifies_certificates(&config));
        let mut smtp = SmtpClient::builder(server.addr())
            .tls(Tls::StartTls)
            .tls_config(config)
            .connect()
            .unwrap();
        assert!(smtp.is_tls());
        smtp.sendmail("a@example.org", &["b@example.org"], MSG)
            .unwrap();
        smtp.quit().unwrap();
    }
    assert_eq!(wait(&server, 2).len(), 2);

    let other = smtp_testkit::TestPki::generate().unwrap();
    let wrong = smtp_blocking::tls::config_with_ca_pem(other.ca_pem().as_bytes()).unwrap();
    let e = SmtpClient::builder(server.addr())
        .tls(Tls::StartTls)
        .tls_config(wrong)
        .connect()
        .unwrap_err();
    assert!(
        matches!(
            e.inner(),
            // Both test CAs have the same name: the other one's signature
            // does not verify.
            Error::Tls(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadSignature
            ))
        ),
        "{e:?}"
    );
}

/// A PEM without a certificate, or a malformed one, is a typed error; so is
/// a file that cannot be read.
#[cfg(feature = "tls")]
#[test]
fn the_ca_helpers_refuse_what_holds_no_certificate() {
    for pem in [
        &b""[..],
        b"not a certificate",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        let e = smtp_blocking::tls::config_with_ca_pem(pem).unwrap_err();
        assert!(matches!(e, Error::NoRootCertificates(_)), "{e:?}");
    }
    let e = smtp_blocking::tls::config_with_ca_file("/nonexistent/ca.pem").unwrap_err();
    assert!(
        matches!(&e, Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound),
        "{e:?}"
    );
}
