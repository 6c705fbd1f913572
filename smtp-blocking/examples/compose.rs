//! A composed message (feature `mail-builder`; the example has it through
//! its dev-dependencies): a text and an HTML
//! alternative and a binary attachment, built with `mail_builder` and handed
//! to `send_message` as it is; the blocking adapter renders it straight into
//! the message body. Sent to the embedded test server, then read back: the
//! stored message is parsed and its HTML part and attachment bytes compared
//! with what was composed.
//!
//! `cargo run -p smtp-blocking --example compose`
//! (also run by `cargo test`).

use std::time::Duration;

use mail_builder::MessageBuilder;
use mail_parser::{MessageParser, MimeHeaders};
use smtp_blocking::{Options, SmtpClient};
use smtp_testkit::{MockServer, ServerConfig};

const HTML: &str = "<html><body><h1>Quarterly report</h1>\
                    <p>See the attached figures. \u{2014} Alice</p></body></html>";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 200 KiB of every byte value: more than one chunk on the wire, and bytes
    // that only survive if the base64 transfer encoding round-trips.
    let attachment: Vec<u8> = (0..200 * 1024).map(|i| (i * 7 % 256) as u8).collect();

    let message = MessageBuilder::new()
        .from(("Alice", "alice@example.org"))
        .to(("Bob", "bob@example.net"))
        .bcc("carol@example.com")
        .subject("Quarterly report")
        .text_body("See the attached figures.\n-- Alice\n")
        .html_body(HTML)
        .attachment(
            "application/octet-stream",
            "figures.bin",
            attachment.as_slice(),
        );

    let server = MockServer::start(ServerConfig::default())?;
    let mut smtp = SmtpClient::connect(&server.addr().to_string(), Options::default())?;
    // The envelope comes from the headers (Bcc included, then removed).
    let result = smtp.send_message(message)?;
    smtp.quit()?;
    println!("accepted: {:?}", result.accepted());

    let stored = server
        .wait_for_messages(1, Duration::from_secs(10))
        .pop()
        .ok_or("the server stored no message")?;
    println!(
        "stored {} bytes for {:?} (BDAT: {})",
        stored.data.len(),
        stored.rcpt_to,
        stored.chunked
    );
    if stored.rcpt_to.len() != 2 {
        return Err(format!("expected Bob and Carol as recipients: {:?}", stored.rcpt_to).into());
    }

    let parsed = MessageParser::default()
        .parse(&stored.data)
        .ok_or("the stored message does not parse")?;
    if parsed.header("Bcc").is_some() {
        return Err("Bcc was transmitted".into());
    }
    let html = parsed.body_html(0).ok_or("no HTML part")?;
    if html.trim_end() != HTML {
        return Err(format!("the HTML part changed: {html:?}").into());
    }
    let text = parsed.body_text(0).ok_or("no text part")?;
    println!("text part: {:?}", text.trim_end());
    let part = parsed.attachment(0).ok_or("no attachment")?;
    if part.attachment_name() != Some("figures.bin") {
        return Err(format!("attachment name: {:?}", part.attachment_name()).into());
    }
    if part.contents() != attachment.as_slice() {
        return Err("the attachment's bytes changed".into());
    }
    println!(
        "HTML part and the {} attachment bytes arrived intact",
        attachment.len()
    );
    Ok(())
}

#[test]
fn the_composed_message_arrives_intact() {
    if let Err(e) = main() {
        panic!("{e}");
    }
}
