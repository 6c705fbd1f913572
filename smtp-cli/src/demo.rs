//! `smtp-send demo`: a whole session against the embedded loopback server.

use std::process::ExitCode;
use std::time::Duration;

use smtp_blocking::{Options, SmtpClient};
use smtp_testkit::{MockServer, ServerConfig, ServerTls};

const MESSAGE: &str = "From: Alice <alice@example.org>\r\n\
To: Bob <bob@example.net>\r\n\
Subject: Hello from smtp-send demo\r\n\
\r\n\
Hi Bob,\r\n\
.this line starts with a dot, so it travels as \"..this\" and arrives intact.\r\n\
Bye.\r\n";

pub(crate) fn run() -> ExitCode {
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::from(4)
        }
    }
}

fn demo() -> Result<(), Box<dyn std::error::Error>> {
    // A build without TLS shows the same session in plaintext.
    let tls = if cfg!(feature = "tls") {
        ServerTls::StartTls
    } else {
        ServerTls::None
    };
    let config = ServerConfig::default()
        .tls(tls)
        .user("alice", "correct horse battery staple")
        .extensions(&[
            "PIPELINING",
            "8BITMIME",
            "SIZE 10485760",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
        ]);
    let server = MockServer::start(config)?;
    let address = server.addr().to_string();
    let offered = if tls == ServerTls::StartTls {
        "STARTTLS, AUTH, PIPELINING"
    } else {
        "AUTH, PIPELINING; this build has no TLS"
    };
    println!("testkit server listening on {address} ({offered})\n");

    let mut smtp = SmtpClient::connect(&address, Options::default())?;
    #[cfg(feature = "tls")]
    {
        smtp.set_tls_config(server.pki().client_config());
        smtp.set_tls_server_name("localhost");
        smtp.starttls()?;
    }
    smtp.login("alice", "correct horse battery staple")?;
    let result = smtp.send_message(MESSAGE.as_bytes())?;
    smtp.quit()?;

    let received = server.wait_for_messages(1, Duration::from_secs(10));
    server.wait_for_closed(1, Duration::from_secs(10));
    println!("transcript (as the server saw it; AUTH payloads redacted):");
    for line in server.transcript() {
        println!("  {line}");
    }
    println!();
    let accepted: Vec<String> = result.accepted().iter().map(|a| a.to_string()).collect();
    println!("accepted: {}", accepted.join(", "));
    if let Some(reply) = &result.final_reply {
        println!("server's answer: {reply}");
    }
    let Some(message) = received.first() else {
        return Err("the server recorded no message".into());
    };
    println!(
        "\nmessage as the server received it (MAIL FROM:{}, TLS: {}, user: {}):",
        message.mail_from,
        message.tls,
        message.auth_user.as_deref().unwrap_or("-")
    );
    print!("{}", String::from_utf8_lossy(&message.data));
    if message.data != MESSAGE.as_bytes() {
        return Err("the received message differs from the one sent".into());
    }
    Ok(())
}
