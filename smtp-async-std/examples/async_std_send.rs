//! Sends one message on smol over an `async-net` stream:
//! `cargo run -p smtp-async-std --example send`. Starts the embedded test server.

use smtp_async_std::{Options, SmtpClient};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = smtp_testkit::MockServer::start(smtp_testkit::ServerConfig::default())?;
    smol::block_on(async {
        let stream = smol::net::TcpStream::connect(server.addr()).await?;
        let mut smtp = SmtpClient::from_stream(stream, "localhost", Options::default()).await?;
        let r = smtp
            .sendmail(
                "alice@example.org",
                &["bob@example.net"],
                b"Subject: smol\r\n\r\nhello\r\n",
            )
            .await?;
        println!("accepted: {:?}", r.accepted());
        smtp.quit().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
