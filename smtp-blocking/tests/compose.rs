//! Composed messages (`mail_builder::MessageBuilder`) through the blocking
//! adapter, which renders them straight into the body: the envelope from the
//! rendered headers, Bcc removed, DATA and BDAT, refusals before the body.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mail_builder::MessageBuilder;
use mail_parser::MessageParser;
use smtp_blocking::{Envelope, Options, SmtpClient};
use smtp_testkit::{MockServer, ServerConfig};

const WAIT: Duration = Duration::from_secs(10);

fn composed(text: &str) -> MessageBuilder<'_> {
    MessageBuilder::new()
        .from("alice@example.org")
        .to("bob@example.net")
        .bcc("carol@example.com")
        .subject("composed")
        .text_body(text)
}

#[test]
fn send_message_takes_the_envelope_from_the_rendered_headers() {
    for extensions in [&["PIPELINING", "CHUNKING"][..], &["PIPELINING"][..]] {
        let server = MockServer::start(ServerConfig::default().extensions(extensions)).unwrap();
        let mut smtp = SmtpClient::connect(&server.addr().to_string(), Options::default()).unwrap();
        // A line that starts with a dot is stuffed on the wire under DATA.
        let text = "first line\n.a dotted line\n.\nlast line\n";
        let result = smtp.send_message(composed(text)).unwrap();
        assert_eq!(result.accepted().len(), 2);
        smtp.quit().unwrap();
        let stored = server.wait_for_messages(1, WAIT).pop().unwrap();
        assert_eq!(stored.mail_from, "<alice@example.org>");
        assert_eq!(stored.rcpt_to, ["<bob@example.net>", "<carol@example.com>"]);
        assert_eq!(stored.chunked, extensions.contains(&"CHUNKING"));
        let parsed = MessageParser::default().parse(&stored.data).unwrap();
        assert!(parsed.header("Bcc").is_none());
        assert_eq!(
            parsed.body_text(0).unwrap().replace("\r\n", "\n"),
            text,
            "{}",
            String::from_utf8_lossy(&stored.data)
        );
    }
}

#[test]
fn send_sends_the_rendered_message_as_it_is_to_the_envelope() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let mut smtp = SmtpClient::connect(&server.addr().to_string(), Options::default()).unwrap();
    let envelope = Envelope::parse("bounces@example.org", &["dave@example.net"]).unwrap();
    smtp.send(&envelope, composed("hello\n")).unwrap();
    smtp.quit().unwrap();
    let stored = server.wait_for_messages(1, WAIT).pop().unwrap();
    // Rendered first, so its size is announced.
    assert!(
        stored.mail_from.starts_with("<bounces@example.org> SIZE="),
        "{}",
        stored.mail_from
    );
    assert_eq!(stored.rcpt_to, ["<dave@example.net>"]);
    // As smtplib's sendmail: the message goes as it is, Bcc included.
    let parsed = MessageParser::default().parse(&stored.data).unwrap();
    assert!(parsed.header("Bcc").is_some());
}

#[test]
fn a_refused_transaction_leaves_the_session_usable() {
    let config = ServerConfig::default()
        .refuse_recipient("bob@example.net")
        .refuse_recipient("carol@example.com");
    let server = MockServer::start(config).unwrap();
    let mut smtp = SmtpClient::connect(&server.addr().to_string(), Options::default()).unwrap();
    let e = smtp.send_message(composed("refused\n")).unwrap_err();
    assert!(
        matches!(
            e,
            smtp_blocking::Error::Smtp(smtp_blocking::smtp_sansio::Error::RecipientsRefused(_))
        ),
        "{e:?}"
    );
    let envelope = Envelope::parse("alice@example.org", &["erin@example.net"]).unwrap();
    smtp.send(&envelope, composed("accepted\n")).unwrap();
    smtp.quit().unwrap();
    let stored = server.wait_for_messages(1, WAIT);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].rcpt_to, ["<erin@example.net>"]);
}

#[test]
fn a_message_without_recipients_is_refused_before_anything_is_sent() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let mut smtp = SmtpClient::connect(&server.addr().to_string(), Options::default()).unwrap();
    let message = MessageBuilder::new()
        .from("alice@example.org")
        .subject("nobody")
        .text_body("x");
    let e = smtp.send_message(message).unwrap_err();
    assert!(e.to_string().contains("no To, Cc or Bcc"), "{e}");
    smtp.noop().unwrap();
    smtp.quit().unwrap();
    let log = server.connection_logs();
    assert!(!log[0].transcript.iter().any(|l| l.contains("MAIL FROM")));
}
