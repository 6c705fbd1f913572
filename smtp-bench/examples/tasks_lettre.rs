//! The tasks of `tasks_ours.rs` with lettre 0.11, as `docs/comparison.md`
//! shows them. Compiled, not run. Each task sits between `// task:` and
//! `// end` markers, which `scripts/count-tasks` counts.

#![allow(dead_code)]

use std::error::Error;

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, SmtpTransport, Tokio1Executor, Transport};

const MESSAGE: &[u8] =
    b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHi\r\n";

// task: starttls
fn starttls_login_send() -> Result<(), Box<dyn Error>> {
    let mailer = SmtpTransport::starttls_relay("smtp.example.org")?
        .credentials(Credentials::new(
            "alice@example.org".into(),
            "app-password".into(),
        ))
        .build();
    let to = vec!["bob@example.net".parse()?];
    let envelope = Envelope::new(Some("alice@example.org".parse()?), to)?;
    mailer.send_raw(&envelope, MESSAGE)?;
    Ok(())
}
// end

// task: pool
async fn pooled_bulk(recipients: Vec<String>) -> Result<(), Box<dyn Error + Send + Sync>> {
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::starttls_relay("smtp.example.org")?
        .credentials(Credentials::new(
            "alice@example.org".into(),
            "app-password".into(),
        ))
        .pool_config(PoolConfig::new().max_size(8))
        .build();
    let mut tasks = tokio::task::JoinSet::new();
    for to in recipients {
        let mailer = mailer.clone();
        tasks.spawn(async move {
            let to = vec![to.parse()?];
            let envelope = Envelope::new(Some("alice@example.org".parse()?), to)?;
            mailer.send_raw(&envelope, MESSAGE).await?;
            Ok::<(), Box<dyn Error + Send + Sync>>(())
        });
    }
    for result in tasks.join_all().await {
        result?;
    }
    Ok(())
}
// end

// task: lmtp
// lettre has no LMTP (no LHLO, no reply per recipient after the data).
// end

// task: refused
fn refused_recipients() -> Result<(), Box<dyn Error>> {
    let mailer = SmtpTransport::builder_dangerous("mx.example.org").build();
    let to = vec!["bob@example.net".parse()?, "nobody@example.net".parse()?];
    let envelope = Envelope::new(Some("alice@example.org".parse()?), to)?;
    // The first refused RCPT fails the whole send: which recipients were
    // accepted is not reported.
    if let Err(e) = mailer.send_raw(&envelope, MESSAGE) {
        eprintln!("refused: {e}");
    }
    Ok(())
}
// end

// task: mechanism
// lettre's mechanisms are a closed enum (PLAIN, LOGIN, XOAUTH2): no custom one.
// end

fn main() {}
