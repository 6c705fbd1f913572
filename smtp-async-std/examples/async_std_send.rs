//! Sends one message on async-std with the connection builder, then one on smol
//! over a stream the caller connected:
//! `cargo run -p smtp-async-std --example async_std_send`. Starts the embedded
//! test server with STARTTLS and AUTH.

use smtp_async_std::{Options, SmtpClient, Tls};
use smtp_testkit::{MockServer, ServerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = ServerConfig::default()
        .tls(smtp_testkit::ServerTls::StartTls)
        .user("alice", "secret");
    let server = MockServer::start(config)?;
    let message = b"Subject: hello\r\n\r\nhello\r\n";
    async_std::task::block_on(async {
        let mut smtp = SmtpClient::builder(server.addr())
            .tls(Tls::StartTls)
            .tls_config(server.pki().client_config())
            .tls_server_name("localhost")
            .credentials("alice", "secret")
            .connect()
            .await?;
        let r = smtp
            .sendmail("alice@example.org", &["bob@example.net"], message)
            .await?;
        println!(
            "async-std: TLS {}, accepted {:?}",
            smtp.is_tls(),
            r.accepted()
        );
        smtp.quit().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    smol::block_on(async {
        let stream = smol::net::TcpStream::connect(server.addr()).await?;
        let mut smtp = SmtpClient::from_stream(stream, "localhost", Options::default()).await?;
        smtp.set_tls_config(server.pki().client_config());
        smtp.starttls().await?;
        smtp.login("alice", "secret").await?;
        let r = smtp
            .sendmail("alice@example.org", &["bob@example.net"], message)
            .await?;
        println!("smol: TLS {}, accepted {:?}", smtp.is_tls(), r.accepted());
        smtp.quit().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
