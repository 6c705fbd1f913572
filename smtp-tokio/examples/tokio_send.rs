//! Sends one message through a pool: `cargo run -p smtp-tokio --example send`.
//! Starts the embedded test server and sends ten messages from four tasks.

use smtp_tokio::{Options, Pool, PoolConfig, SmtpClient};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = smtp_testkit::MockServer::start(smtp_testkit::ServerConfig::default())?;
    let addr = server.addr().to_string();
    let pool = Pool::new(PoolConfig::default(), move || {
        let addr = addr.clone();
        async move { SmtpClient::connect(&addr, Options::default()).await }
    });
    let mut tasks = Vec::new();
    for t in 0..4 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let msg = format!("Subject: task {t} message {i}\r\n\r\nhello\r\n");
                let mut smtp = pool.get().await?;
                smtp.sendmail("alice@example.org", &["bob@example.net"], msg.as_bytes())
                    .await?;
            }
            Ok::<(), smtp_tokio::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let n = server
        .wait_for_messages(40, std::time::Duration::from_secs(10))
        .len();
    println!(
        "{n} messages delivered over {} connections",
        server.connections()
    );
    Ok(())
}
