//! What a person reads: transcript lines and error messages with the
//! server's control characters escaped, "all recipients refused" saying who
//! and why, one rule for `Display` and `source()`, and a `Debug` of the
//! session that never shows a buffered AUTH payload.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error as _;
use std::time::Instant;

use base64::Engine as _;
use smtp_sansio::{
    Client, Completion, Config, Credentials, Delivery, Domain, Error, Event, Op, Output,
    ProtocolError, RecipientDelivery, Reply, Trace, UsageError,
};

/// The bytes a terminal acts on that a server could send: ESC (a CSI that
/// clears the screen), BEL, a bare CR, NUL, DEL and a C1 CSI.
const HOSTILE: &str = "\u{1b}[2J\u{7}\r\0\u{7f}\u{9b}";

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Drives `op`, answering each wait with the next block (end of stream when
/// there is none); returns the trace lines and the result.
fn drive<T: Completion>(
    client: &mut Client,
    op: Op<T>,
    server: &mut std::slice::Iter<'_, &[u8]>,
) -> (Vec<Trace>, Result<T, Error>) {
    let now = Instant::now();
    let mut trace = Vec::new();
    for _ in 0..100 {
        match client.drive(op) {
            Output::Event(Event::Completed { result, .. }) => return (trace, result),
            Output::Trace(t) => trace.push(t),
            Output::Wait(_) => match server.next() {
                Some(b) => client.handle_input(now, b),
                None => client.handle_eof(now),
            },
            _ => {}
        }
    }
    panic!("the operation never completed");
}

fn client(trace: bool) -> Client {
    let mut cfg = Config::new(Domain::new("client.example").unwrap());
    cfg.trace = trace;
    // An encrypted session (implicit TLS), where AUTH PLAIN may go.
    cfg.tls_on_connect = true;
    Client::new(cfg, Instant::now())
}

#[test]
fn transcript_lines_escape_what_the_server_sent() {
    let greeting = format!("220 mx{HOSTILE} ready\r\n");
    let ehlo = format!("250-mx{HOSTILE}\r\n250 HELP{HOSTILE}\r\n");
    let noop = format!("250 ok{HOSTILE}\r\n");
    let blocks: Vec<&[u8]> = vec![greeting.as_bytes(), ehlo.as_bytes(), noop.as_bytes()];
    let mut server = blocks.iter();
    let mut c = client(true);
    let (mut lines, r) = drive(&mut c, Op::GREETING, &mut server);
    // The reply itself keeps what was sent.
    assert_eq!(r.unwrap().text(), format!("mx{HOSTILE} ready"));
    let now = Instant::now();
    let op = c.ehlo(now, None);
    lines.extend(drive(&mut c, op, &mut server).0);
    let op = c.noop(now);
    lines.extend(drive(&mut c, op, &mut server).0);
    let escaped = r"\x1b[2J\x07\x0d\x00\x7f\u{9b}";
    assert_eq!(
        lines,
        [
            Trace::Received(format!("220 mx{escaped} ready")),
            Trace::Sent("EHLO client.example".into()),
            Trace::Received(format!("250-mx{escaped}")),
            Trace::Received(format!("250 HELP{escaped}")),
            Trace::Sent("NOOP".into()),
            Trace::Received(format!("250 ok{escaped}")),
        ]
    );
}

#[test]
fn error_messages_escape_server_text() {
    let reply = Reply::new(550, vec![format!("no{HOSTILE}"), "second".into()]);
    assert_eq!(
        reply.to_string(),
        r"550 no\x1b[2J\x07\x0d\x00\x7f\u{9b} / second"
    );
    let errors = [
        Error::DataRefused(reply.clone()),
        Error::ConnectRefused(reply.clone()),
        ProtocolError::MalformedReply(format!("xyz{HOSTILE}")).into(),
        ProtocolError::UnsolicitedReply(reply.clone()).into(),
        Error::NoAuthMechanism(format!("X-{HOSTILE}")),
        Error::Mechanism(format!("bad challenge {HOSTILE}")),
        UsageError::NotSupported(format!("X{HOSTILE}")).into(),
        UsageError::Envelope(format!("From: {HOSTILE}")).into(),
        Error::SenderRefused {
            reply: reply.clone(),
            sender: "a@example.org".into(),
        },
        Error::RecipientsRefused(vec![("b@example.org".into(), reply.clone())]),
        Error::Uncertain {
            cause: Box::new(ProtocolError::UnsolicitedReply(reply.clone()).into()),
            recipients: Vec::new(),
        },
    ];
    for e in errors {
        let shown = e.to_string();
        assert!(!has_control(&shown), "{shown:?}");
        assert!(shown.contains(r"\x1b[2J\x07"), "{shown:?}");
    }
}

#[test]
fn all_recipients_refused_says_who_and_why() {
    let refused = |n: usize| -> Vec<(String, Reply)> {
        (0..n)
            .map(|i| {
                let reply = Reply::new(550, vec![format!("5.1.1 <r{i}@example.org> unknown")]);
                (format!("r{i}@example.org"), reply)
            })
            .collect()
    };
    assert_eq!(
        Error::RecipientsRefused(refused(2)).to_string(),
        "all recipients refused: r0@example.org: 550 5.1.1 <r0@example.org> unknown; \
         r1@example.org: 550 5.1.1 <r1@example.org> unknown"
    );
    // Bounded: the first five, then how many more.
    let many = Error::RecipientsRefused(refused(1000)).to_string();
    assert!(many.ends_with("r4@example.org: 550 5.1.1 <r4@example.org> unknown; and 995 more"));
    assert!(!many.contains("r5@"), "{many}");
    // A long reply is cut.
    let long = Reply::new(452, vec!["x".repeat(100_000)]);
    let one = Error::RecipientsRefused(vec![("b@example.org".into(), long)]).to_string();
    assert_eq!(
        one,
        format!(
            "all recipients refused: b@example.org: 452 {}...",
            "x".repeat(Error::LISTED_REPLY_CHARS - 4)
        )
    );
    // The server's text escaped.
    let bad = Reply::new(550, vec![format!("no{HOSTILE}")]);
    let shown = Error::RecipientsRefused(vec![("b@example.org".into(), bad)]).to_string();
    assert!(!has_control(&shown), "{shown:?}");
    // The error keeps them all.
    let Error::RecipientsRefused(all) = Error::RecipientsRefused(refused(1000)) else {
        unreachable!()
    };
    assert_eq!(all.len(), 1000);
}

#[test]
fn display_shows_the_cause_and_source_returns_none() {
    let cause = Error::Timeout("the reply to the end of the message");
    let e = Error::Uncertain {
        cause: Box::new(cause.clone()),
        recipients: vec![RecipientDelivery {
            address: "b@example.org".into(),
            delivery: Delivery::Unknown,
            reply: None,
        }],
    };
    assert!(e.to_string().ends_with(&cause.to_string()), "{e}");
    assert!(e.source().is_none());
    for e in [
        Error::Disconnected,
        Error::Protocol(ProtocolError::InvalidChallenge),
        Error::Security(smtp_sansio::SecurityError::TlsRequired),
        Error::Usage(UsageError::WrongState("x")),
        Error::RecipientsRefused(Vec::new()),
    ] {
        assert!(e.source().is_none(), "{e:?}");
    }
}

#[test]
fn debug_never_shows_a_buffered_auth_payload() {
    let (user, password) = ("alice@example.org", "correct horse battery staple");
    let payload = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    let blocks: Vec<&[u8]> = vec![b"220 mx\r\n", b"250-mx\r\n250 AUTH PLAIN\r\n"];
    let mut server = blocks.iter();
    let mut c = client(false);
    drive(&mut c, Op::GREETING, &mut server).1.unwrap();
    let now = Instant::now();
    let op = c.ehlo(now, None);
    drive(&mut c, op, &mut server).1.unwrap();

    let login = c.login(now, Credentials::new(user, password), true);
    let shown = format!("{c:?} {c:#?}");
    // Neither as text nor as the list of its bytes that a derived Debug of a
    // Vec<u8> prints.
    let as_bytes = format!("{:?}", payload.as_bytes());
    let as_bytes = as_bytes.trim_start_matches('[').trim_end_matches(']');
    for secret in [payload.as_str(), password, as_bytes] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("output_bytes"), "{shown}");

    // The payload was in the buffer: it is the next thing written. Its
    // Output's Debug does not show it either.
    let out = c.drive(login);
    let shown = format!("{out:?}");
    let Output::Transmit(bytes) = out else {
        panic!("{shown}")
    };
    assert_eq!(bytes, format!("AUTH PLAIN {payload}\r\n").as_bytes());
    assert!(
        !shown.contains(&payload) && !shown.contains(as_bytes),
        "{shown}"
    );
    assert_eq!(shown, format!("Transmit(<{} bytes>)", bytes.len()));
}
