//! Five common tasks with smtp-rs, as `docs/comparison.md` shows them next to
//! lettre (`tasks_lettre.rs`). Compiled, not run: the servers are examples.
//! Each task sits between `// task:` and `// end` markers, which
//! `scripts/count-tasks` counts.

#![allow(dead_code)]

use smtp_blocking::smtp_sansio::sasl::{Mechanism, SaslError};
use smtp_tokio::{Pool, PoolConfig};

const MESSAGE: &[u8] =
    b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHi\r\n";

// task: starttls
fn starttls_login_send() -> Result<(), smtp_blocking::Error> {
    let mut smtp = smtp_blocking::SmtpClient::builder("smtp.example.org")
        .tls(smtp_blocking::Tls::StartTls)
        .credentials("alice@example.org", "app-password")
        .connect()?;
    smtp.sendmail("alice@example.org", &["bob@example.net"], MESSAGE)?;
    smtp.quit()?;
    Ok(())
}
// end

// task: pool
async fn pooled_bulk(recipients: Vec<String>) -> Result<(), smtp_tokio::Error> {
    let builder = smtp_tokio::SmtpClient::builder("smtp.example.org")
        .tls(smtp_tokio::Tls::StartTls)
        .credentials("alice@example.org", "app-password");
    let mut config = PoolConfig::default();
    config.max_size = 8;
    let pool = Pool::new(config, move || builder.clone().connect());
    let mut tasks = tokio::task::JoinSet::new();
    for to in recipients {
        let pool = pool.clone();
        tasks.spawn(async move {
            let mut smtp = pool.get().await?;
            smtp.sendmail("alice@example.org", &[to], MESSAGE).await
        });
    }
    for result in tasks.join_all().await {
        result?;
    }
    Ok(())
}
// end

// task: lmtp
fn lmtp_per_recipient() -> Result<(), smtp_blocking::Error> {
    let mut lmtp = smtp_blocking::SmtpClient::lmtp_builder("/run/dovecot/lmtp").connect()?;
    let result = lmtp.sendmail("alice@example.org", &["bob", "carol"], MESSAGE)?;
    for r in &result.recipients {
        println!("{}: {:?}", r.address, r.final_reply);
    }
    Ok(())
}
// end

// task: refused
fn refused_recipients() -> Result<(), smtp_blocking::Error> {
    let mut smtp = smtp_blocking::SmtpClient::builder("mx.example.org").connect()?;
    let to = ["bob@example.net", "nobody@example.net"];
    let result = smtp.sendmail("alice@example.org", &to, MESSAGE)?;
    for (address, reply) in result.refused() {
        eprintln!("{address} refused: {} {}", reply.code(), reply.text());
    }
    Ok(())
}
// end

// task: mechanism
#[derive(Debug)]
struct Token(String);

impl Mechanism for Token {
    fn name(&self) -> &str {
        "X-TOKEN"
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Ok(Some(self.0.clone().into_bytes()))
    }
    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        Err(SaslError("X-TOKEN has one step".into()))
    }
}

fn custom_mechanism() -> Result<(), smtp_blocking::Error> {
    let mut smtp = smtp_blocking::SmtpClient::builder("smtp.example.org")
        .tls(smtp_blocking::Tls::StartTls)
        .mechanism(|| Box::new(Token("secret-token".into())))
        .connect()?;
    smtp.sendmail("alice@example.org", &["bob@example.net"], MESSAGE)?;
    Ok(())
}
// end

fn main() {}
