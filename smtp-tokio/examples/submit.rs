//! A first Tokio program: STARTTLS on the submission port, a login, a typed
//! envelope with DSN options, and a message composed with mail-builder (an
//! attachment included), sent to the embedded test server, which the program
//! starts itself:
//!
//! ```text
//! cargo run -p smtp-tokio --example submit --features mail-builder
//! ```
//!
//! Against a real server, drop the test server and the `tls_config` line
//! (the system's roots are trusted by default) and name the host:
//! `SmtpClient::builder("smtp.example.org")`. Prints what the server
//! received and exits with status 1 unless it received the message, over
//! TLS, from the logged-in user, with both recipients and their DSN options.

use std::process::ExitCode;
use std::time::Duration;

use smtp_testkit::{MockServer, ServerConfig, ServerTls};
use smtp_tokio::mail_builder::MessageBuilder;
use smtp_tokio::{Envelope, Notify, Recipient, Ret, SmtpClient, Tls, tls};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("submit: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // A server offering STARTTLS with a certificate from its own CA, and one
    // account.
    let server = MockServer::start(
        ServerConfig::default()
            .tls(ServerTls::StartTls)
            .user("alice@example.org", "app-password"),
    )?;
    // Trust that CA and no other.
    let ca = tls::config_with_ca_pem(server.pki().ca_pem().as_bytes())?;

    // STARTTLS, required (a server that does not offer it gets nothing but
    // EHLO), then AUTH: `connect` returns a session ready to send.
    let mut smtp = SmtpClient::builder(server.addr())
        .tls(Tls::StartTls)
        .tls_config(ca)
        .credentials("alice@example.org", "app-password")
        .connect()
        .await?;

    // The envelope, typed: the headers of the message are not consulted.
    let envelope = Envelope::new("alice@example.org".parse()?, [])
        .ret(Ret::Headers)
        .envid("report-2026-12")?
        .recipient(
            Recipient::new("bob@example.net".parse()?).notify(Notify::FAILURE | Notify::DELAY),
        )
        .recipient(Recipient::new("carol@example.net".parse()?).notify(Notify::NEVER));
    let message = MessageBuilder::new()
        .from(("Alice", "alice@example.org"))
        .to(vec!["bob@example.net", "carol@example.net"])
        .subject("December report")
        .text_body("The report is attached.\n")
        .attachment("text/csv", "report.csv", "month,sent\n2026-12,50\n");
    let result = smtp.send(&envelope, message).await?;
    smtp.quit().await?;

    if let Some((address, reply)) = result.refused().first() {
        return Err(format!("{address} refused: {reply}").into());
    }
    let received = server.wait_for_messages(1, Duration::from_secs(10));
    let Some(m) = received.first() else {
        return Err("the server received no message".into());
    };
    let data = String::from_utf8_lossy(&m.data);
    println!(
        "received over {}: MAIL FROM:{} from user {}",
        if m.tls { "TLS" } else { "plain text" },
        m.mail_from,
        m.auth_user.as_deref().unwrap_or("(none)"),
    );
    for rcpt in &m.rcpt_to {
        println!("  RCPT TO:{rcpt}");
    }
    println!(
        "  {} bytes, by {}",
        m.data.len(),
        if m.chunked { "BDAT" } else { "DATA" }
    );
    let expected_rcpt = [
        "<bob@example.net> NOTIFY=FAILURE,DELAY",
        "<carol@example.net> NOTIFY=NEVER",
    ];
    let ok = m.tls
        && m.auth_user.as_deref() == Some("alice@example.org")
        && m.mail_from.starts_with("<alice@example.org>")
        && m.mail_from.contains("RET=HDRS")
        && m.mail_from.contains("ENVID=report-2026-12")
        && m.rcpt_to == expected_rcpt
        && data.contains("Subject: December report")
        && data.contains("report.csv");
    if !ok {
        return Err("the message the server received is not the one sent".into());
    }
    println!("ok: 1 message over STARTTLS as alice@example.org, 2 recipients with DSN options");
    Ok(())
}
