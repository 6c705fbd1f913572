//! What a transport error means (`Client::handle_transport_error`: an I/O or
//! TLS failure, not a clean end of stream), and which errors make sending
//! again safe (`Error::safe_to_resend`). The pending operation fails with
//! `Error::Transport` ("the driver's own error is the answer") unless the
//! core knows more: a refusal already received stays the result, and an end
//! of message that went out without its reply is `Error::Uncertain`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use smtp_sansio::{
    Address, Client, Completion, Config, Delivery, Domain, Error, Event, Op, OpenPlan, Output,
    ProtocolError, Reply, SecurityError, Transaction, UsageError,
};

fn config() -> Config {
    Config::new(Domain::new("client.example").unwrap())
}

/// Drives `op`: the server's `turns` fed `chunk` bytes at a time; once they
/// are all read, the next wait (or the TLS handshake) meets a transport
/// error. What the client sent comes back with the result.
fn run<T: Completion>(
    c: &mut Client,
    op: Op<T>,
    turns: &[&'static str],
    chunk: usize,
) -> (Result<T, Error>, String) {
    let now = Instant::now();
    let mut turns: Vec<&[u8]> = turns.iter().rev().map(|s| s.as_bytes()).collect();
    let mut current: &[u8] = &[];
    let mut sent = Vec::new();
    for _ in 0..10_000 {
        match c.drive(op) {
            Output::Transmit(b) => sent.extend_from_slice(&b),
            Output::Wait(_) => {
                if current.is_empty() {
                    match turns.pop() {
                        Some(t) => current = t,
                        None => {
                            c.handle_transport_error(now);
                            continue;
                        }
                    }
                }
                let n = chunk.min(current.len());
                c.handle_input(now, &current[..n]);
                current = &current[n..];
            }
            Output::StartTls { .. } => {
                assert!(turns.is_empty() && current.is_empty());
                c.handle_transport_error(now);
            }
            Output::Event(Event::BodyWanted { .. }) => {
                c.send_body(now, b"Subject: t\r\n\r\nbody\r\n", true)
                    .unwrap();
            }
            Output::Event(Event::Completed { result, .. }) => {
                return (result, String::from_utf8(sent).unwrap());
            }
            Output::Trace(_) | Output::Closed => {}
        }
    }
    panic!("the operation never completed");
}

fn tx() -> Transaction {
    let to = ["a@example.org", "b@example.org"].map(|a| Address::new(a).unwrap());
    Transaction::new(Address::new("s@example.org").unwrap(), to)
}

/// Greeted, EHLO answered with `ehlo`; nothing sent so far is kept.
fn greeted(ehlo: &'static str) -> Client {
    let mut c = Client::new(config(), Instant::now());
    let op = c.ehlo(Instant::now(), None);
    let (r, _) = run(&mut c, op, &["220 mx\r\n", ehlo], 64);
    assert!(r.unwrap().is_positive());
    c
}

#[test]
fn a_transport_error_during_open_is_the_transports() {
    for chunk in 1..=24 {
        let mut c = Client::new(config(), Instant::now());
        let op = c.open(Instant::now(), OpenPlan::new());
        let (r, sent) = run(&mut c, op, &["220 mx.example ESMTP\r\n"], chunk);
        assert_eq!(sent, "EHLO client.example\r\n");
        let e = r.unwrap_err();
        assert_eq!(e, Error::Transport, "chunk {chunk}");
        assert_eq!(e.delivery(), Delivery::NotSent);
        assert!(e.is_fatal() && e.safe_to_resend());
        assert!(c.is_closed());
        assert_eq!(c.fatal_error(), Some(&Error::Transport));
        // Sticky: a later operation gets it too, and sends nothing.
        let noop = c.noop(Instant::now());
        let (r, sent) = run(&mut c, noop, &[], 1);
        assert_eq!((r.unwrap_err(), sent.as_str()), (Error::Transport, ""));
    }
}

#[test]
fn a_failed_handshake_is_the_transports() {
    let mut c = Client::new(config(), Instant::now());
    let op = c.open(Instant::now(), OpenPlan::new());
    let turns = [
        "220 mx\r\n",
        "250-mx\r\n250 STARTTLS\r\n",
        "220 go ahead\r\n",
    ];
    let (r, sent) = run(&mut c, op, &turns, 5);
    assert_eq!(sent, "EHLO client.example\r\nSTARTTLS\r\n");
    assert_eq!(r.unwrap_err(), Error::Transport);
    assert!(c.is_closed() && !c.is_tls());
}

#[test]
fn before_the_end_of_the_message_went_out_it_is_not_sent() {
    for chunk in 1..=16 {
        // No PIPELINING: MAIL goes alone, and its reply never comes.
        let mut c = greeted("250 mx\r\n");
        let op = c.send(Instant::now(), tx());
        let (r, sent) = run(&mut c, op, &[], chunk);
        assert_eq!(sent, "MAIL FROM:<s@example.org>\r\n");
        let e = r.unwrap_err();
        assert_eq!(e, Error::Transport);
        assert_eq!(e.delivery(), Delivery::NotSent);
        assert!(e.safe_to_resend());
    }
}

#[test]
fn after_the_end_of_the_message_went_out_it_is_unknown() {
    for chunk in 1..=16 {
        let mut c = greeted("250 mx\r\n");
        let op = c.send(Instant::now(), tx());
        let turns = ["250 ok\r\n", "250 ok\r\n", "250 ok\r\n", "354 go\r\n"];
        let (r, sent) = run(&mut c, op, &turns, chunk);
        assert!(sent.ends_with("body\r\n.\r\n"), "{sent}");
        let e = r.unwrap_err();
        let Error::Uncertain { cause, recipients } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(**cause, Error::Transport);
        assert_eq!(recipients.len(), 2);
        assert_eq!(e.delivery(), Delivery::Unknown);
        assert!(!e.safe_to_resend());
        assert_eq!(c.fatal_error(), Some(&Error::Transport));
    }
}

#[test]
fn a_refusal_received_before_the_failure_stays_the_result() {
    for chunk in 1..=24 {
        // PIPELINING: MAIL, both RCPTs and DATA in one write; the server
        // refuses the sender, then the transport fails.
        let mut c = greeted("250-mx\r\n250 PIPELINING\r\n");
        let op = c.send(Instant::now(), tx());
        let (r, _) = run(&mut c, op, &["550 5.7.1 no such sender\r\n"], chunk);
        let e = r.unwrap_err();
        assert!(matches!(e, Error::SenderRefused { ref reply, .. } if reply.code() == 550));
        assert_eq!(e.delivery(), Delivery::Refused);
        assert!(!e.safe_to_resend());
    }
}

#[test]
fn an_idle_session_ends_with_it() {
    let mut c = greeted("250 mx\r\n");
    c.handle_transport_error(Instant::now());
    assert!(c.is_closed());
    assert!(matches!(c.poll_output(), Output::Closed));
    // Once closed, a later end of stream changes nothing.
    c.handle_eof(Instant::now());
    assert_eq!(c.fatal_error(), Some(&Error::Transport));
}

#[test]
fn which_errors_are_safe_to_resend() {
    let reply = |s: &str| Reply::new(s[..3].parse().unwrap(), vec![s[4..].to_owned()]);
    // A 421 before the end of the message went out, or answering it.
    let closing = |end_of_message: bool| {
        let mut c = greeted("250 mx\r\n");
        let op = c.send(Instant::now(), tx());
        let turns: &[&'static str] = if end_of_message {
            &[
                "250 ok\r\n",
                "250 ok\r\n",
                "250 ok\r\n",
                "354 go\r\n",
                "421 bye\r\n",
            ]
        } else {
            &["421 bye\r\n"]
        };
        let e = run(&mut c, op, turns, 64).0.unwrap_err();
        assert!(
            matches!(e, Error::ServiceClosing { end_of_message: eom, .. } if eom == end_of_message)
        );
        e
    };
    let cases: Vec<(Error, bool)> = vec![
        (Error::Transport, true),
        (Error::Disconnected, true),
        (Error::Timeout("the reply to MAIL"), true),
        (closing(false), true),
        (closing(true), false),
        (
            Error::Uncertain {
                cause: Box::new(Error::Transport),
                recipients: Vec::new(),
            },
            false,
        ),
        (
            Error::SenderRefused {
                reply: reply("451 later"),
                sender: "s@example.org".into(),
            },
            false,
        ),
        (Error::DataRefused(reply("554 no")), false),
        (Error::RecipientsRefused(Vec::new()), false),
        (Error::ConnectRefused(reply("554 no")), false),
        (Error::AuthFailed(reply("535 no")), false),
        (
            Error::Protocol(ProtocolError::MalformedReply("x".into())),
            false,
        ),
        (Error::Usage(UsageError::WrongState("x")), false),
        (Error::Security(SecurityError::TlsRequired), false),
        (Error::Security(SecurityError::StartTlsNotOffered), false),
    ];
    for (e, safe) in cases {
        assert_eq!(e.safe_to_resend(), safe, "{e:?}");
    }
}

/// Which failed opens may have failed before the EHLO reply (so that an
/// early EHLO is suspect), and which of those connect again at once
/// without early pipelining: every class of error, one row each.
#[test]
fn early_open_failures_are_classified_by_the_core() {
    let reply = |code: u16| Reply::new(code, vec!["x".into()]);
    let rows: Vec<(Error, bool, bool)> = vec![
        (Error::EarlyPipeliningRefused(reply(554)), true, true),
        (Error::ConnectRefused(reply(554)), true, true),
        (Error::Disconnected, true, true),
        (Error::Transport, true, true),
        (Error::Timeout("greeting"), true, false),
        (Error::HeloRefused(reply(550)), false, false),
        (
            Error::Security(SecurityError::StartTlsNotOffered),
            false,
            false,
        ),
    ];
    for (e, precedes, retry) in rows {
        assert_eq!(e.may_precede_hello(), precedes, "{e}");
        assert_eq!(e.retry_without_early_pipelining(), retry, "{e}");
    }
    let protocol = Error::Protocol(ProtocolError::MalformedReply("x".into()));
    assert!(protocol.may_precede_hello() && protocol.retry_without_early_pipelining());
}
