//! `Client::drive`: the loop helper of a driver that runs one operation at a
//! time yields the actions of `poll_output` for that operation and ends with its
//! result, typed by the operation's handle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use smtp_sansio::{
    Address, Client, Completion, Config, Domain, Error, Event, Op, Output, Protocol, Reply,
    Transaction, TransactionResult,
};

/// Drives `op` to its end, answering each wait with the next server block (end
/// of stream when there is none) and each body request with `body`; returns the
/// actions seen, in the vocabulary of `Output`, and the typed result.
fn drive<T: Completion>(
    client: &mut Client,
    op: Op<T>,
    server: &mut std::slice::Iter<'_, &[u8]>,
    body: &[u8],
) -> (Vec<&'static str>, Result<T, Error>) {
    let now = Instant::now();
    let mut seen = Vec::new();
    for _ in 0..100 {
        match client.drive(op) {
            Output::Transmit(_) => seen.push("transmit"),
            Output::Event(Event::BodyWanted { id }) => {
                assert_eq!(id, op.id());
                seen.push("body");
                client.send_body(now, body, true).unwrap();
            }
            Output::Event(Event::Completed { id, result }) => {
                assert_eq!(id, op.id());
                return (seen, result);
            }
            Output::StartTls { .. } => seen.push("starttls"),
            Output::Trace(_) => seen.push("trace"),
            Output::Wait(deadline) => {
                assert!(deadline.is_some(), "drive never waits without a deadline");
                seen.push("wait");
                match server.next() {
                    Some(b) => client.handle_input(now, b),
                    None => client.handle_eof(now),
                }
            }
            Output::Closed => seen.push("closed"),
        }
    }
    panic!("the operation never completed: {seen:?}");
}

fn client(protocol: Protocol) -> Client {
    let mut cfg = Config::new(Domain::new("client.example").unwrap());
    cfg.protocol = protocol;
    Client::new(cfg, Instant::now())
}

fn addr(a: &str) -> Address {
    Address::new(a).unwrap()
}

#[test]
fn each_operation_completes_with_its_own_type() {
    let mut c = client(Protocol::Smtp);
    let blocks: &[&[u8]] = &[
        b"220 mx\r\n",
        b"250-mx\r\n250 PIPELINING\r\n",
        b"250 ok\r\n250 ok\r\n354 go\r\n",
        b"250 queued\r\n",
        b"250 ok\r\n",
        b"354 go\r\n",
        b"250 queued again\r\n",
        b"221 bye\r\n",
    ];
    let mut server = blocks.iter();
    let (_, greeting) = drive(&mut c, Op::GREETING, &mut server, b"");
    let greeting: Reply = greeting.unwrap();
    assert_eq!(greeting.code(), 220);

    let tx = Transaction::new(addr("a@example.org"), [addr("b@example.org")]);
    let send = c.send(Instant::now(), tx);
    let (seen, result) = drive(&mut c, send, &mut server, b"hi\r\n");
    let result: TransactionResult = result.unwrap();
    assert_eq!(result.final_reply.map(|r| r.code()), Some(250));
    assert_eq!(
        seen,
        [
            "transmit", "wait", "transmit", "wait", "body", "transmit", "wait"
        ],
        "EHLO; MAIL RCPT DATA in one write; the body after 354"
    );

    let mail = c.mail(Instant::now(), addr("a@example.org"), Vec::new());
    let (_, reply) = drive(&mut c, mail, &mut server, b"");
    assert_eq!(reply.unwrap().code(), 250);

    let data = c.data(Instant::now());
    let (_, replies) = drive(&mut c, data, &mut server, b"x\r\n");
    let replies: Vec<Reply> = replies.unwrap();
    assert_eq!(replies.len(), 1, "one final reply over SMTP");

    let quit = c.quit(Instant::now());
    let (seen, bye) = drive(&mut c, quit, &mut server, b"");
    assert_eq!(bye.unwrap().code(), 221);
    assert_eq!(
        seen,
        ["transmit", "wait", "closed"],
        "the transport is closed once, before the result"
    );
}

#[test]
fn lmtp_data_completes_with_one_reply_per_recipient() {
    let mut c = client(Protocol::Lmtp);
    let blocks: &[&[u8]] = &[
        b"220 lmtp\r\n",
        b"250 ok\r\n",
        b"250-lmtp\r\n250 PIPELINING\r\n",
        b"250 ok\r\n",
        b"250 ok\r\n",
        b"354 go\r\n",
        b"250 one\r\n452 two\r\n",
    ];
    let mut server = blocks.iter();
    drive(&mut c, Op::GREETING, &mut server, b"").1.unwrap();
    let mail = c.mail(Instant::now(), addr("a@example.org"), Vec::new());
    // LHLO was not sent: MAIL goes as given, before any greeting.
    assert_eq!(drive(&mut c, mail, &mut server, b"").1.unwrap().code(), 250);
    let lhlo = c.ehlo(Instant::now(), None);
    assert_eq!(drive(&mut c, lhlo, &mut server, b"").1.unwrap().code(), 250);
    for to in ["b@example.org", "c@example.org"] {
        let rcpt = c.rcpt(Instant::now(), addr(to), Vec::new());
        assert_eq!(drive(&mut c, rcpt, &mut server, b"").1.unwrap().code(), 250);
    }
    let data = c.data(Instant::now());
    let replies = drive(&mut c, data, &mut server, b"x\r\n").1.unwrap();
    let codes: Vec<u16> = replies.iter().map(Reply::code).collect();
    assert_eq!(codes, [250, 452]);
}

#[test]
fn after_the_end_every_operation_completes_with_the_sticky_error() {
    let mut c = client(Protocol::Smtp);
    let blocks: &[&[u8]] = &[b"220 mx\r\n"];
    let mut server = blocks.iter();
    drive(&mut c, Op::GREETING, &mut server, b"").1.unwrap();
    let noop = c.noop(Instant::now());
    let (seen, result) = drive(&mut c, noop, &mut server, b"");
    assert_eq!(seen, ["transmit", "wait", "closed"]);
    assert_eq!(result.unwrap_err(), Error::Disconnected);
    // Closed was reported once; the next operation just fails.
    let rset = c.rset(Instant::now());
    let (seen, result) = drive(&mut c, rset, &mut server, b"");
    assert!(seen.is_empty(), "{seen:?}");
    assert_eq!(result.unwrap_err(), Error::Disconnected);
}

#[test]
fn a_quit_behind_a_transaction_is_driven_after_it_without_another_write() {
    // Both drives as a facade's `send_and_quit` runs them: the transaction
    // ends at the reply to its dot, which came with the 221 (one block), or
    // alone with the 221 in the next block.
    for last in [
        &[&b"250 queued\r\n221 bye\r\n"[..]][..],
        &[&b"250 queued\r\n"[..], &b"221 bye\r\n"[..]][..],
    ] {
        let mut c = client(Protocol::Smtp);
        let mut blocks: Vec<&[u8]> = vec![
            b"220 mx\r\n",
            b"250-mx\r\n250 PIPELINING\r\n",
            b"250 ok\r\n250 ok\r\n354 go\r\n",
        ];
        blocks.extend_from_slice(last);
        let mut server = blocks.iter();
        drive(&mut c, Op::GREETING, &mut server, b"").1.unwrap();
        let tx = Transaction::new(addr("a@example.org"), [addr("b@example.org")]);
        let send = c.send(Instant::now(), tx);
        let quit = c.quit(Instant::now());
        let (seen, result) = drive(&mut c, send, &mut server, b"hi\r\n");
        assert_eq!(result.unwrap().final_reply.map(|r| r.code()), Some(250));
        let together = last.len() == 1;
        let mut expected = vec![
            "transmit", "wait", "transmit", "wait", "body", "transmit", "wait",
        ];
        if together {
            // The 221 came with the 250: the session ended with the message.
            expected.push("closed");
        }
        assert_eq!(seen, expected, "the dot and QUIT in one write");
        let (seen, bye) = drive(&mut c, quit, &mut server, b"");
        assert_eq!(bye.unwrap().code(), 221, "the QUIT's own result, kept");
        let expected: &[&str] = if together { &[] } else { &["wait", "closed"] };
        assert_eq!(seen, expected, "nothing more is written");
        assert!(c.is_closed());
    }
}

#[test]
fn the_next_transactions_body_waits_for_its_own_drive() {
    // Two transactions queued with PIPELINING: the second one's envelope went
    // out behind the first message, and the first message's reply arrives in
    // one read with the second's replies up to 354. Driving the first ends
    // with its result, not with the body request of the second, which its own
    // drive then gets.
    let mut c = client(Protocol::Smtp);
    let blocks: &[&[u8]] = &[
        b"220 mx\r\n",
        b"250-mx\r\n250 PIPELINING\r\n",
        b"250 ok\r\n250 ok\r\n354 go\r\n",
        b"250 first queued\r\n250 ok\r\n250 ok\r\n354 go\r\n",
        b"250 second queued\r\n",
    ];
    let mut server = blocks.iter();
    let (_, greeting) = drive(&mut c, Op::GREETING, &mut server, b"");
    assert_eq!(greeting.unwrap().code(), 220);
    let now = Instant::now();
    let first = c.send(now, Transaction::new(addr("a@x.org"), [addr("b@x.org")]));
    let second = c.send(now, Transaction::new(addr("a@x.org"), [addr("c@x.org")]));
    let (seen, r1) = drive(&mut c, first, &mut server, b"one\r\n");
    let r1: TransactionResult = r1.unwrap();
    assert_eq!(r1.final_reply.as_ref().map(Reply::code), Some(250));
    assert_eq!(
        seen.iter().filter(|s| **s == "body").count(),
        1,
        "the first drive asked for one body: {seen:?}"
    );
    let (seen, r2) = drive(&mut c, second, &mut server, b"two\r\n");
    let r2: TransactionResult = r2.unwrap();
    assert_eq!(
        r2.final_reply.unwrap().lines().next(),
        Some("second queued")
    );
    // Its body was asked for first, before any wait: its envelope was
    // answered in the first drive's last read.
    assert_eq!(seen.first(), Some(&"body"), "{seen:?}");
}
