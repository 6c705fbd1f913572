//! What a Tokio user names is at hand: the runtime-neutral crate and its
//! `Runtime` for generic code, `mail_builder`, serde for results. The pool's
//! send calls with any message, a server as a URL and a wrong CA run on both
//! runtimes in smtp-async's `tests/at_hand.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use smtp_testkit::{MockServer, ServerConfig};
use smtp_tokio::{
    Builder, Envelope, Error, Message, SmtpClient, TransactionResult, mail_builder::MessageBuilder,
    smtp_async,
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
