//! What a user of either runtime names is at hand, on both runtimes (each
//! case written once, generic over the runtime): the pool's send calls take
//! any message and DSN options; a server as a URL, logged in over required
//! STARTTLS; a wrong CA is a TLS error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::on_both;
use smtp_async::mail_builder::MessageBuilder;
use smtp_async::pool::Pool;
use smtp_async::{Envelope, Error, Notify, PoolConfig, Recipient, Runtime, SmtpClient, Tls};
use smtp_async_std::AsyncStd;
use smtp_testkit::{MockServer, ServerConfig};
use smtp_tokio::Tokio;

const MSG: &str = "From: a@example.org\r\nTo: b@example.org\r\nSubject: at hand\r\n\r\nhello\r\n";

/// `Pool::send` takes any message (a composed one here), `Pool::sendmail`
/// the smtplib form; DSN options come from the facade's names.
async fn pool_send<R: Runtime>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let builder = SmtpClient::<R>::builder(("127.0.0.1", server.addr().port())).tls(Tls::None);
    let pool = Pool::new(PoolConfig::default(), move || builder.clone().connect());
    let envelope = Envelope::new("a@example.org".parse().unwrap(), []).recipient(
        Recipient::new("b@example.org".parse().unwrap()).notify(Notify::SUCCESS | Notify::FAILURE),
    );
    let composed = MessageBuilder::new()
        .from("a@example.org")
        .to("b@example.org")
        .subject("pooled")
        .text_body("hi");
    pool.send(&envelope, composed).await.unwrap();
    pool.send(&envelope, MSG.to_owned()).await.unwrap();
    let r = pool
        .sendmail("a@example.org", &["c@example.org"], MSG.as_bytes())
        .await
        .unwrap();
    assert!(r.refused().is_empty());
    let e = pool
        .sendmail("not an address", &["c@example.org"], MSG)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Smtp(_)), "{e:?}");
    pool.close().await;
    let received = server.wait_for_messages(3, Duration::from_secs(5));
    assert_eq!(
        received[0].rcpt_to,
        ["<b@example.org> NOTIFY=SUCCESS,FAILURE"]
    );
    assert!(String::from_utf8_lossy(&received[0].data).contains("Subject: pooled\r\n"));
    assert_eq!(received[1].data, MSG.as_bytes());
    assert_eq!(received[2].rcpt_to, ["<c@example.org>"]);
    // One connection served the three messages.
    assert_eq!(
        received.iter().map(|m| m.connection).collect::<Vec<_>>(),
        [0, 0, 0]
    );
}

/// `from_url` end to end: the URL's login over required STARTTLS,
/// the test server's CA trusted through the helper.
#[cfg(feature = "tls")]
async fn from_url<R: Runtime>() {
    let server = MockServer::start(
        ServerConfig::default()
            .tls(smtp_testkit::ServerTls::StartTls)
            .user("alice", "s3cret"),
    )
    .unwrap();
    let ca = smtp_async::tls::config_with_ca_pem(server.pki().ca_pem().as_bytes()).unwrap();
    let url = format!("smtp://alice:s3cret@localhost:{}", server.addr().port());
    let mut smtp = SmtpClient::<R>::from_url(&url)
        .unwrap()
        .tls_config(ca)
        .connect()
        .await
        .unwrap();
    assert!(smtp.is_tls());
    smtp.sendmail("a@example.org", &["b@example.org"], MSG)
        .await
        .unwrap();
    smtp.quit().await.unwrap();
    let m = &server.wait_for_messages(1, Duration::from_secs(5))[0];
    assert!(m.tls);
    assert_eq!(m.auth_user.as_deref(), Some("alice"));
}

/// A client trusting another CA fails the handshake with a TLS error.
#[cfg(feature = "tls")]
async fn wrong_ca<R: Runtime>() {
    let server =
        MockServer::start(ServerConfig::default().tls(smtp_testkit::ServerTls::Implicit)).unwrap();
    let other = smtp_testkit::TestPki::generate().unwrap();
    let wrong = smtp_async::tls::config_with_ca_pem(other.ca_pem().as_bytes()).unwrap();
    let e = SmtpClient::<R>::builder(server.addr())
        .tls(Tls::Implicit)
        .tls_config(wrong)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e.inner(), Error::Tls(_)), "{e:?}");
}

#[test]
fn the_pool_sends_any_message_and_has_sendmail() {
    on_both(pool_send::<Tokio>(), pool_send::<AsyncStd>());
}

#[cfg(feature = "tls")]
#[test]
fn from_url_logs_in_over_starttls() {
    on_both(from_url::<Tokio>(), from_url::<AsyncStd>());
}

#[cfg(feature = "tls")]
#[test]
fn a_wrong_ca_is_a_tls_error() {
    on_both(wrong_ca::<Tokio>(), wrong_ca::<AsyncStd>());
}
