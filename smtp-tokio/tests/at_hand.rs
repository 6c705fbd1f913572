//! What a Tokio user names is at hand: the runtime-neutral crate and its
//! `Runtime` for generic code, `mail_builder`, the address and DSN types;
//! the pool's send calls take any message; builders take every address
//! form; a server as a URL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use smtp_testkit::{MockServer, ServerConfig};
use smtp_tokio::{
    Builder, Envelope, Error, Message, Notify, Pool, PoolConfig, Recipient, SmtpClient, Tls,
    TransactionResult, mail_builder::MessageBuilder, smtp_async,
};

const MSG: &str = "From: a@example.org\r\nTo: b@example.org\r\nSubject: at hand\r\n\r\nhello\r\n";

/// Code written once for every runtime, through the names smtp-tokio
/// re-exports (no direct dependency on smtp-async).
async fn send_once<R: smtp_tokio::Runtime>(
    builder: Builder<smtp_async::SmtpClient<R>>,
    message: impl Into<Message<'_>>,
) -> Result<TransactionResult, Error> {
    let envelope = Envelope::parse("a@example.org", &["b@example.org"])?;
    builder
        .connect()
        .await?
        .send_and_quit(&envelope, message)
        .await
}

#[tokio::test]
async fn generic_code_runs_through_the_re_exported_runtime() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let composed = MessageBuilder::new()
        .from("a@example.org")
        .to("b@example.org")
        .subject("composed")
        .text_body("hi");
    let b = SmtpClient::builder(server.addr());
    send_once(b.clone(), composed).await.unwrap();
    send_once(b, MSG).await.unwrap();
    let received = server.wait_for_messages(2, Duration::from_secs(5));
    assert!(String::from_utf8_lossy(&received[0].data).contains("Subject: composed\r\n"));
    assert_eq!(received[1].data, MSG.as_bytes());
}

/// `Pool::send` takes any message (a composed one here), `Pool::sendmail`
/// the smtplib form; DSN options come from the facade's names.
#[tokio::test]
async fn the_pool_sends_any_message_and_has_sendmail() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let builder = SmtpClient::builder(("127.0.0.1", server.addr().port())).tls(Tls::None);
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

/// `from_url` end to end on Tokio: the URL's login over required STARTTLS,
/// the test server's CA trusted through the helper.
#[cfg(feature = "tls")]
#[tokio::test]
async fn from_url_logs_in_over_starttls() {
    let server = MockServer::start(
        ServerConfig::default()
            .tls(smtp_testkit::ServerTls::StartTls)
            .user("alice", "s3cret"),
    )
    .unwrap();
    let ca = smtp_tokio::tls::config_with_ca_pem(server.pki().ca_pem().as_bytes()).unwrap();
    let url = format!("smtp://alice:s3cret@localhost:{}", server.addr().port());
    let mut smtp = SmtpClient::from_url(&url)
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
#[tokio::test]
async fn a_wrong_ca_is_a_tls_error() {
    let server =
        MockServer::start(ServerConfig::default().tls(smtp_testkit::ServerTls::Implicit)).unwrap();
    let other = smtp_testkit::TestPki::generate().unwrap();
    let wrong = smtp_tokio::tls::config_with_ca_pem(other.ca_pem().as_bytes()).unwrap();
    let e = SmtpClient::builder(server.addr())
        .tls(Tls::Implicit)
        .tls_config(wrong)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e.inner(), Error::Tls(_)), "{e:?}");
}

/// With the serde feature (`cargo test -p smtp-tokio --features serde`),
/// what a send returns serializes and reads back, through the facade alone.
#[cfg(feature = "serde")]
#[tokio::test]
async fn results_and_envelopes_serialize_with_the_serde_feature() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let envelope = Envelope::parse("a@example.org", &["b@example.org"]).unwrap();
    let r = SmtpClient::builder(server.addr())
        .connect()
        .await
        .unwrap()
        .send_and_quit(&envelope, MSG)
        .await
        .unwrap();
    let json = serde_json::to_string(&r).unwrap();
    let back: TransactionResult = serde_json::from_str(&json).unwrap();
    assert_eq!(back.recipients.len(), 1);
    assert_eq!(back.recipients[0].address.to_string(), "b@example.org");
    let json = serde_json::to_string(&envelope).unwrap();
    let back: Envelope = serde_json::from_str(&json).unwrap();
    assert_eq!(back.recipients(), envelope.recipients());
}
