//! Sends one message: `cargo run -p smtp-blocking --example send -- HOST[:PORT] FROM TO`.
//! Without arguments it starts the embedded test server and sends to it.

use smtp_blocking::{Options, SmtpClient};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let server;
    let (addr, from, to) = if let [a, f, t] = args.as_slice() {
        (a.clone(), f.clone(), t.clone())
    } else {
        server = smtp_testkit::MockServer::start(smtp_testkit::ServerConfig::default())?;
        (
            server.addr().to_string(),
            "alice@example.org".into(),
            "bob@example.net".into(),
        )
    };
    let message =
        format!("From: {from}\r\nTo: {to}\r\nSubject: example\r\n\r\nSent by smtp-blocking.\r\n");
    let mut smtp = SmtpClient::connect(&addr, Options::default())?;
    let result = smtp.sendmail(&from, &[&to], message.as_bytes())?;
    let said = result.final_reply.as_ref().map(ToString::to_string);
    println!("accepted: {:?}, server said: {said:?}", result.accepted());
    smtp.quit()?;
    Ok(())
}
