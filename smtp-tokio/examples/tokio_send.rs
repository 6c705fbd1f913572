//! Sends forty messages from four tasks through a pool of sessions made by the
//! connection builder: `cargo run -p smtp-tokio --example tokio_send`. Starts
//! the embedded test server with STARTTLS and AUTH.

use smtp_testkit::{MockServer, ServerConfig};
use smtp_tokio::{Pool, PoolConfig, SmtpClient, Tls};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = ServerConfig::default()
        .tls(smtp_testkit::ServerTls::StartTls)
        .user("alice", "secret");
    let server = MockServer::start(config)?;
    let builder = SmtpClient::builder(server.addr())
        .tls(Tls::StartTls)
        .tls_config(server.pki().client_config())
        .tls_server_name("localhost")
        .credentials("alice", "secret");
    let pool = Pool::new(PoolConfig::default(), move || builder.clone().connect());
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
