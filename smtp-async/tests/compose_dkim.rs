//! Composed and DKIM-signed messages through the async facade, on both
//! runtimes: a `MessageBuilder` passed to `send_message` as it is (envelope
//! from its headers, HTML part and attachment intact), and signatures by
//! `DkimSigner` (RSA, Ed25519) that verify on the bytes the server stored,
//! for a plain, a dot-stuffed, a bare-LF and a 10 MiB message. scripts/dkim
//! runs this file and has dkimpy verify what it kept.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Rt, on_both};
use mail_builder::MessageBuilder;
use mail_parser::{MessageParser, MimeHeaders};
use smtp_async::{DkimKey, DkimSigner, Options, SmtpClient};
use smtp_async_std::AsyncStd;
use smtp_testkit::{MockServer, ServerConfig, dkim};
use smtp_tokio::Tokio;

const WAIT: Duration = Duration::from_secs(30);

async fn composed<R: Rt>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let attachment: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let message = MessageBuilder::new()
        .from("alice@example.org")
        .to("bob@example.net")
        .bcc("carol@example.com")
        .subject("composed")
        .html_body("<p>Hello <b>Bob</b></p>")
        .attachment(
            "application/octet-stream",
            "blob.bin",
            attachment.as_slice(),
        );
    let mut smtp = SmtpClient::<R>::connect(&server.addr().to_string(), Options::default())
        .await
        .unwrap();
    smtp.send_message(message).await.unwrap();
    smtp.quit().await.unwrap();
    let stored = server.wait_for_messages(1, WAIT).pop().unwrap();
    assert_eq!(stored.rcpt_to, ["<bob@example.net>", "<carol@example.com>"]);
    let parsed = MessageParser::default().parse(&stored.data).unwrap();
    assert!(parsed.header("Bcc").is_none());
    assert_eq!(parsed.body_html(0).unwrap(), "<p>Hello <b>Bob</b></p>");
    let part = parsed.attachment(0).unwrap();
    assert_eq!(part.attachment_name(), Some("blob.bin"));
    assert_eq!(part.contents(), attachment.as_slice());
}

#[test]
fn a_composed_message_arrives_intact() {
    on_both(composed::<Tokio>(), composed::<AsyncStd>());
}

async fn signed<R: Rt>() {
    let config = ServerConfig::default().size_limit(64 * 1024 * 1024);
    let server = MockServer::start(config).unwrap();
    let mut smtp = SmtpClient::<R>::connect(&server.addr().to_string(), Options::default())
        .await
        .unwrap();
    let mut n = 0;
    for key in dkim::keys() {
        let key_pem = DkimKey::from_pem(key.pem.as_bytes()).unwrap();
        let signer = DkimSigner::new(key_pem, dkim::DOMAIN, key.selector()).unwrap();
        for (case, message) in dkim::messages() {
            smtp.send_message(signer.sign(&message).unwrap())
                .await
                .unwrap();
            n += 1;
            let stored = server.wait_for_messages(n, WAIT).pop().unwrap();
            let name = format!("{}-{}-{case}", R::NAME, key.name);
            assert_eq!(dkim::verify(&stored.data), Ok(1), "{name}");
            dkim::keep(&name, &stored.data);
        }
    }
    smtp.quit().await.unwrap();
}

#[test]
fn signed_messages_verify_on_what_the_server_stored() {
    on_both(signed::<Tokio>(), signed::<AsyncStd>());
}
