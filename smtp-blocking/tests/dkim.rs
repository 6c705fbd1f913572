//! DKIM signatures made with `DkimSigner` and sent through the blocking
//! adapter verify on the bytes the server stored (mail-auth's verifier): a
//! plain message, a dot-stuffed one, one with bare line feeds, 10 MiB; RSA and
//! Ed25519; over DATA and over BDAT.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use smtp_blocking::smtp_adapter::dkim::{DkimKey, DkimSigner};
use smtp_blocking::{Options, SmtpClient};
use smtp_testkit::{MockServer, ServerConfig, dkim};

const WAIT: Duration = Duration::from_secs(30);

fn server(chunking: bool) -> MockServer {
    let extensions: &[&str] = if chunking {
        &["PIPELINING", "8BITMIME", "CHUNKING"]
    } else {
        &["PIPELINING", "8BITMIME"]
    };
    let config = ServerConfig::default()
        .extensions(extensions)
        .size_limit(64 * 1024 * 1024);
    MockServer::start(config).unwrap()
}

fn signed_messages_verify(chunking: bool) {
    let server = server(chunking);
    let mut smtp = SmtpClient::connect(&server.addr().to_string(), Options::default()).unwrap();
    let mut n = 0;
    for key in dkim::keys() {
        let signer = DkimSigner::new(
            DkimKey::from_pem(key.pem.as_bytes()).unwrap(),
            dkim::DOMAIN,
            key.selector(),
        )
        .unwrap();
        for (case, message) in dkim::messages() {
            let signed = signer.sign(&message).unwrap();
            smtp.send_message(signed).unwrap();
            n += 1;
            let stored = server.wait_for_messages(n, WAIT).pop().unwrap();
            assert_eq!(stored.chunked, chunking);
            let name = format!(
                "blocking-{}-{}-{case}",
                if chunking { "bdat" } else { "data" },
                key.name
            );
            assert_eq!(dkim::verify(&stored.data), Ok(1), "{name}");
            dkim::keep(&name, &stored.data);
        }
    }
    smtp.quit().unwrap();
}

#[test]
fn signed_messages_verify_after_data() {
    signed_messages_verify(false);
}

#[test]
fn signed_messages_verify_after_bdat() {
    signed_messages_verify(true);
}

/// The check above can fail: a changed body or a changed signed header
/// field does not verify.
#[test]
fn the_verifier_catches_a_wrong_signature() {
    let key = &dkim::keys()[1];
    let signer = DkimSigner::new(
        DkimKey::from_pem(key.pem.as_bytes()).unwrap(),
        dkim::DOMAIN,
        key.selector(),
    )
    .unwrap();
    let message = b"From: a@example.org\r\nSubject: one\r\n\r\nbody\r\n";
    let signed = signer.sign(message).unwrap().into_vec().unwrap();
    assert_eq!(dkim::verify(&signed), Ok(1));
    let body_changed = [&signed[..signed.len() - 2], b" x\r\n"].concat();
    assert!(dkim::verify(&body_changed).is_err());
    let text = String::from_utf8(signed).unwrap();
    assert!(dkim::verify(text.replace("Subject: one", "Subject: two").as_bytes()).is_err());
}

/// A composed message, signed and sent with send_message: the signature
/// covers the rendered MIME message.
#[test]
fn a_signed_composed_message_verifies() {
    let server = server(true);
    let key = &dkim::keys()[0];
    let signer = DkimSigner::new(
        DkimKey::from_pem(key.pem.as_bytes()).unwrap(),
        dkim::DOMAIN,
        "rsa",
    )
    .unwrap();
    let composed = mail_builder::MessageBuilder::new()
        .from(("Alice", "alice@example.org"))
        .to("bob@example.net")
        .subject("composed and signed")
        .text_body("plain text\n")
        .html_body("<p>html</p>")
        .attachment(
            "application/octet-stream",
            "data.bin",
            &[0u8, 1, 2, 255][..],
        );
    let mut smtp = SmtpClient::connect(&server.addr().to_string(), Options::default()).unwrap();
    smtp.send_message(signer.sign(composed).unwrap()).unwrap();
    smtp.quit().unwrap();
    let stored = server.wait_for_messages(1, WAIT).pop().unwrap();
    assert_eq!(dkim::verify(&stored.data), Ok(1));
    dkim::keep("blocking-bdat-rsa-composed", &stored.data);
}

/// The record `DkimKey::dns_record` gives for a key is the one to publish:
/// mail-auth verifies with it, and it is what openssl derives from the key
/// when `scripts/dkim` made the keys.
#[test]
fn the_published_record_verifies() {
    for key in dkim::keys() {
        let ours = DkimKey::from_pem(key.pem.as_bytes()).unwrap();
        let record = ours.dns_record().to_owned();
        let signer = DkimSigner::new(ours, dkim::DOMAIN, key.selector()).unwrap();
        let signed = signer
            .sign(&b"From: a@example.org\r\nTo: b@example.net\r\n\r\nhi\r\n"[..])
            .unwrap()
            .into_vec()
            .unwrap();
        let records = [(key.dns_name(), record.clone())];
        assert_eq!(dkim::verify_with(&signed, &records), Ok(1), "{}", key.name);
        if let Some(dir) = std::env::var_os("SMTP_DKIM_KEYS") {
            let path = std::path::Path::new(&dir).join(format!("{}.txt", key.name));
            let openssl = std::fs::read_to_string(path).unwrap();
            assert_eq!(record, openssl.trim(), "{}", key.name);
        }
    }
}
