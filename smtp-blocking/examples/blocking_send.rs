//! Sends one message with the connection builder:
//! `cargo run -p smtp-blocking --example blocking_send -- HOST[:PORT] FROM TO`
//! (opportunistic STARTTLS). Without arguments it starts the embedded test
//! server with STARTTLS and AUTH, and sends to it with STARTTLS required and a
//! login.

use smtp_blocking::{SmtpClient, Tls};
use smtp_testkit::{MockServer, ServerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let server;
    let (builder, from, to) = if let [addr, from, to] = args.as_slice() {
        (SmtpClient::builder(addr), from.clone(), to.clone())
    } else {
        let config = ServerConfig::default()
            .tls(smtp_testkit::ServerTls::StartTls)
            .user("alice", "secret");
        server = MockServer::start(config)?;
        let builder = SmtpClient::builder(server.addr())
            .tls(Tls::StartTls)
            .tls_config(server.pki().client_config())
            .tls_server_name("localhost")
            .credentials("alice", "secret");
        (
            builder,
            "alice@example.org".into(),
            "bob@example.net".into(),
        )
    };
    let message =
        format!("From: {from}\r\nTo: {to}\r\nSubject: example\r\n\r\nSent by smtp-blocking.\r\n");
    let mut smtp = builder.connect()?;
    let result = smtp.sendmail(&from, &[&to], message.as_bytes())?;
    let said = result.final_reply.as_ref().map(ToString::to_string);
    println!(
        "TLS: {}, accepted: {:?}, server said: {said:?}",
        smtp.is_tls(),
        result.accepted()
    );
    smtp.quit()?;
    Ok(())
}
