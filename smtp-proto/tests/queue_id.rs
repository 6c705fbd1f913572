//! The queue id of a delivered message: `queued as ID` or `id=ID` in the
//! reply to the end of the message (`reply::queue_id`, `Reply::queue_id`,
//! `TransactionResult::queue_id`), read from transcripts fed in every chunk
//! size.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use smtp_sansio::reply::queue_id;
use smtp_sansio::{
    Address, Client, Config, Domain, Event, Output, Protocol, Transaction, TransactionResult,
};

#[test]
fn queue_ids_from_the_usual_replies() {
    assert_eq!(queue_id("2.0.0 Ok: queued as 4Xyz12"), Some("4Xyz12"));
    assert_eq!(queue_id("OK id=1qAbCd-0004Xx-2B"), Some("1qAbCd-0004Xx-2B"));
    assert_eq!(queue_id("2.0.0 Ok: Queued as ABC (msg)"), Some("ABC"));
    assert_eq!(queue_id("2.0.0 OK QUEUED AS X1;"), Some("X1"));
    assert_eq!(queue_id("2.0.0 Ok <id=K9>"), Some("K9"));
    assert_eq!(queue_id("2.0.0 Ok"), None);
    assert_eq!(queue_id("queued as "), None);
    assert_eq!(queue_id("id="), None);
    assert_eq!(queue_id(""), None);
    // Text that is not ASCII around the marker keeps its bytes.
    assert_eq!(queue_id("é queued as Ü7 ok"), Some("Ü7"));
}

/// Runs one transaction after the greeting and EHLO, the server's turns fed
/// `chunk` bytes at a time.
fn deliver(protocol: Protocol, server: &[&str], chunk: usize) -> TransactionResult {
    let now = Instant::now();
    let mut cfg = Config::new(Domain::new("client.example").unwrap());
    cfg.protocol = protocol;
    let mut c = Client::new(cfg, now);
    let mut turns: Vec<&[u8]> = server.iter().rev().map(|s| s.as_bytes()).collect();
    let mut current: &[u8] = &[];
    let to = ["a@example.org", "b@example.org"].map(|a| Address::new(a).unwrap());
    let tx = Transaction::new(Address::new("s@example.org").unwrap(), to);
    let op = c.send(now, tx);
    for _ in 0..10_000 {
        match c.drive(op) {
            Output::Wait(_) => {
                if current.is_empty() {
                    current = turns.pop().expect("the server has said everything");
                }
                let n = chunk.min(current.len());
                c.handle_input(now, &current[..n]);
                current = &current[n..];
            }
            Output::Event(Event::BodyWanted { .. }) => {
                c.send_body(now, b"Subject: t\r\n\r\nbody\r\n", true)
                    .unwrap();
            }
            Output::Event(Event::Completed { result, .. }) => return result.unwrap(),
            Output::Transmit(_) | Output::Trace(_) => {}
            other => panic!("{other:?}"),
        }
    }
    panic!("the transaction never completed");
}

#[test]
fn an_smtp_result_names_its_queue_id() {
    let server = [
        "220 mx\r\n",
        "250 mx\r\n",
        "250 ok\r\n",
        "250 ok\r\n",
        "250 ok\r\n",
        "354 go\r\n",
        "250 2.0.0 Ok: queued as 4Xyz12\r\n",
    ];
    for chunk in 1..=32 {
        let r = deliver(Protocol::Smtp, &server, chunk);
        assert_eq!(r.queue_id(), Some("4Xyz12"), "chunk {chunk}");
    }
    let mut without = server;
    without[6] = "250 2.0.0 Ok\r\n";
    assert_eq!(deliver(Protocol::Smtp, &without, 7).queue_id(), None);
}

#[test]
fn an_lmtp_result_names_the_first_accepted_recipients_queue_id() {
    let server = [
        "220 mda\r\n",
        "250 mda\r\n",
        "250 ok\r\n",
        "250 ok\r\n",
        "250 ok\r\n",
        "354 go\r\n",
        "452 4.2.2 <a@example.org> over quota, id=NOTTHIS\r\n250 2.0.0 <b@example.org> id=B42 Saved\r\n",
    ];
    for chunk in 1..=40 {
        let r = deliver(Protocol::Lmtp, &server, chunk);
        assert_eq!(r.final_reply, None);
        assert_eq!(r.queue_id(), Some("B42"), "chunk {chunk}");
    }
}
