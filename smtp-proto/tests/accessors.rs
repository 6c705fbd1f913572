//! The session's read-only accessors, pinned in the core (the adapters and
//! smtplib's attributes read them): the greeting, the EHLO and HELO replies,
//! the capabilities, the body's write timeout, whether an operation is
//! running or queued, and the reply an untyped outcome carries; and
//! `Transaction::from_strs`, smtplib's `sendmail` arguments as strings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use smtp_sansio::{Client, Config, Domain, Event, Outcome, Output, Transaction};

fn client() -> Client {
    let mut cfg = Config::new(Domain::new("client.example").unwrap());
    cfg.timeouts.data_block = Duration::from_secs(77);
    Client::new(cfg, Instant::now())
}

/// Feeds `server` after the client has written, and returns the outcome of
/// the first operation that completes, through the untyped output stream.
fn next_outcome(c: &mut Client, server: &[u8]) -> Outcome {
    let now = Instant::now();
    let mut fed = false;
    for _ in 0..100 {
        match c.poll_output() {
            Output::Event(Event::Completed { result, .. }) => return result.unwrap(),
            Output::Wait(_) if !fed => {
                c.handle_input(now, server);
                fed = true;
            }
            Output::Transmit(_) | Output::Trace(_) => {}
            other => panic!("{other:?}"),
        }
    }
    panic!("no operation completed");
}

#[test]
fn the_greeting_and_hello_replies_are_kept() {
    let now = Instant::now();
    let mut c = client();
    assert!(c.greeting().is_none() && c.ehlo_reply().is_none() && c.helo_reply().is_none());
    assert!(c.capabilities().is_none());
    assert_eq!(c.write_timeout(), Duration::from_secs(77));

    // The greeting is the session's first operation's outcome.
    let out = next_outcome(&mut c, b"220 mx.example ESMTP\r\n");
    assert_eq!(out.reply().map(|r| r.code()), Some(220));
    assert_eq!(c.greeting().map(|r| r.code()), Some(220));
    assert!(c.greeting().unwrap().text().contains("mx.example ESMTP"));
    assert!(c.ehlo_reply().is_none());

    let _ehlo = c.ehlo(now, None);
    let out = next_outcome(&mut c, b"250-mx.example\r\n250 SIZE 1000\r\n");
    assert_eq!(out.reply().map(|r| r.code()), Some(250));
    assert!(c.ehlo_reply().unwrap().text().contains("SIZE 1000"));
    assert!(c.helo_reply().is_none());
    let caps = c.capabilities().unwrap();
    assert!(caps.has("size") && !caps.has("pipelining"));

    // HELO: its reply is kept beside the EHLO's.
    let _helo = c.helo(now, None);
    let out = next_outcome(&mut c, b"250 mx.example hello\r\n");
    assert_eq!(out.reply().map(|r| r.code()), Some(250));
    assert!(c.helo_reply().unwrap().text().contains("hello"));
}

#[test]
fn busy_while_an_operation_runs_or_waits() {
    let now = Instant::now();
    let mut c = client();
    // A new session waits for its greeting.
    assert!(c.is_busy());
    let out = next_outcome(&mut c, b"220 mx\r\n");
    assert_eq!(out.reply().map(|r| r.code()), Some(220));
    assert!(!c.is_busy());
    // Two queued: busy until both are answered.
    let _noop = c.noop(now);
    let _rset = c.rset(now);
    assert!(c.is_busy());
    let out = next_outcome(&mut c, b"250 2.0.0 ok\r\n");
    assert_eq!(
        out.reply().map(|r| r.text().to_owned()).as_deref(),
        Some("2.0.0 ok")
    );
    assert!(c.is_busy());
    let out = next_outcome(&mut c, b"250 2.0.0 reset\r\n");
    assert_eq!(out.reply().map(|r| r.code()), Some(250));
    assert!(!c.is_busy());
}

#[test]
fn sendmail_string_arguments_become_parameters() {
    let tx = Transaction::from_strs(
        "a@x.org",
        &["b@x.org", "c@x.org"],
        &["BODY=8BITMIME", "RET=HDRS"],
        &["NOTIFY=SUCCESS,FAILURE"],
    )
    .unwrap();
    let mail: Vec<String> = tx.mail_params.iter().map(ToString::to_string).collect();
    assert_eq!(mail, ["BODY=8BITMIME", "RET=HDRS"]);
    for r in &tx.to {
        let rcpt: Vec<String> = r.params.iter().map(ToString::to_string).collect();
        assert_eq!(rcpt, ["NOTIFY=SUCCESS,FAILURE"]);
    }
    // Every string is checked: no line break gets through.
    assert!(
        Transaction::from_strs("a@x.org", &["b@x.org"], &["BODY=7BIT\r\nRSET"], &[""; 0]).is_err()
    );
    assert!(Transaction::from_strs("a@x.org", &["b@x.org"], &[""; 0], &["X\nY"]).is_err());
}
