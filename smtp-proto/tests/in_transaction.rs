//! `Client::in_transaction`: whether a mail transaction may be open on the
//! server, so that a session handed to another caller (a pool's next
//! borrower) is reset first. Opened by MAIL (and a `docmd` of a transaction
//! verb); closed by a positive reply to RSET, EHLO or HELO, or by any reply
//! to the end of a message (RFC 5321 sections 4.1.1.4, 4.1.1.5 and 4.1.4).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use smtp_sansio::{
    Address, Client, Completion, Config, Domain, Error, Event, Op, Output, Transaction, Verb,
};

/// Drives `op` to its end, answering each wait with `reply` (once) and each
/// body request with `body`.
fn drive<T: Completion>(client: &mut Client, op: Op<T>, replies: &[&[u8]]) -> Result<T, Error> {
    let now = Instant::now();
    let mut replies = replies.iter();
    for _ in 0..100 {
        match client.drive(op) {
            Output::Event(Event::BodyWanted { .. }) => {
                client
                    .send_body(now, b"Subject: t\r\n\r\nbody\r\n", true)
                    .unwrap();
            }
            Output::Event(Event::Completed { result, .. }) => return result,
            Output::Wait(_) => match replies.next() {
                Some(r) => client.handle_input(now, r),
                None => client.handle_eof(now),
            },
            Output::Transmit(_) | Output::StartTls { .. } | Output::Trace(_) | Output::Closed => {}
        }
    }
    panic!("the operation never completed");
}

fn greeted() -> Client {
    let cfg = Config::new(Domain::new("client.example").unwrap());
    let mut c = Client::new(cfg, Instant::now());
    drive(&mut c, Op::GREETING, &[b"220 mx\r\n"]).unwrap();
    let ehlo = c.ehlo(Instant::now(), None);
    drive(&mut c, ehlo, &[b"250 mx\r\n"]).unwrap();
    assert!(!c.in_transaction());
    c
}

fn addr(a: &str) -> Address {
    Address::new(a).unwrap()
}

fn mail(c: &mut Client, reply: &[u8]) {
    let op = c.mail(Instant::now(), addr("a@example.org"), Vec::new());
    drive(c, op, &[reply]).unwrap();
}

#[test]
fn low_level_mail_opens_and_rset_closes() {
    let mut c = greeted();
    mail(&mut c, b"250 ok\r\n");
    assert!(c.in_transaction());
    let op = c.rcpt(Instant::now(), addr("b@example.org"), Vec::new());
    drive(&mut c, op, &[b"250 ok\r\n"]).unwrap();
    assert!(c.in_transaction());
    // A refused RSET leaves it open.
    let op = c.rset(Instant::now());
    drive(&mut c, op, &[b"500 no\r\n"]).unwrap();
    assert!(c.in_transaction());
    let op = c.rset(Instant::now());
    drive(&mut c, op, &[b"250 ok\r\n"]).unwrap();
    assert!(!c.in_transaction());
}

#[test]
fn the_reply_to_the_end_of_a_low_level_data_closes() {
    let mut c = greeted();
    mail(&mut c, b"250 ok\r\n");
    let op = c.rcpt(Instant::now(), addr("b@example.org"), Vec::new());
    drive(&mut c, op, &[b"250 ok\r\n"]).unwrap();
    // DATA refused: MAIL and RCPT still stand on the server.
    let op = c.data(Instant::now());
    assert!(drive(&mut c, op, &[b"554 no\r\n"]).is_err());
    assert!(c.in_transaction());
    let op = c.data(Instant::now());
    drive(&mut c, op, &[b"354 go\r\n", b"550 rejected\r\n"]).unwrap();
    assert!(!c.in_transaction(), "a refusal of the message ends it too");
}

#[test]
fn ehlo_closes_and_docmd_of_a_transaction_verb_opens() {
    let mut c = greeted();
    mail(&mut c, b"250 ok\r\n");
    let op = c.ehlo(Instant::now(), None);
    drive(&mut c, op, &[b"250 mx\r\n"]).unwrap();
    assert!(!c.in_transaction());

    let op = c.docmd(Instant::now(), Verb::new("noop").unwrap(), None);
    drive(&mut c, op, &[b"250 ok\r\n"]).unwrap();
    assert!(!c.in_transaction());
    let op = c.docmd(
        Instant::now(),
        Verb::new("mail").unwrap(),
        Some("FROM:<a@example.org>".parse().unwrap()),
    );
    drive(&mut c, op, &[b"250 ok\r\n"]).unwrap();
    assert!(c.in_transaction());
    let op = c.helo(Instant::now(), None);
    drive(&mut c, op, &[b"250 mx\r\n"]).unwrap();
    assert!(!c.in_transaction());
}

#[test]
fn a_whole_transaction_closes_itself() {
    let mut c = greeted();
    let tx = Transaction::new(addr("a@example.org"), [addr("b@example.org")]);
    let op = c.send(Instant::now(), tx);
    drive(
        &mut c,
        op,
        &[
            b"250 ok\r\n",
            b"250 ok\r\n",
            b"354 go\r\n",
            b"250 queued\r\n",
        ],
    )
    .unwrap();
    assert!(!c.in_transaction());

    // Every recipient refused: the transaction resets the server itself.
    let tx = Transaction::new(addr("a@example.org"), [addr("b@example.org")]);
    let op = c.send(Instant::now(), tx);
    let r = drive(
        &mut c,
        op,
        &[b"250 ok\r\n", b"550 no\r\n", b"250 reset\r\n"],
    );
    assert!(r.is_err());
    assert!(!c.in_transaction());
}
