//! A timeout too long for the clock (`Duration::MAX`, smtplib's "wait
//! forever") gives far-future deadlines, never an overflow panic: a whole
//! session through the core, SMTP with STARTTLS and LMTP with several
//! recipients (whose per-recipient final replies arm their own deadlines).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use smtp_sansio::{
    Address, Client, Completion, Config, Domain, Error, Event, Op, Output, Protocol, Timeouts,
    Transaction,
};

const YEAR: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Drives `op`, answering each wait with the next server block; checks that
/// every deadline given is at least a year away and that a timeout call a
/// day later is ignored.
fn drive<T: Completion>(
    client: &mut Client,
    op: Op<T>,
    server: &mut std::slice::Iter<'_, &[u8]>,
    now: Instant,
) -> Result<T, Error> {
    for _ in 0..100 {
        match client.drive(op) {
            Output::Event(Event::BodyWanted { .. }) => {
                client
                    .send_body(now, b"Subject: x\r\n\r\nbody\r\n", true)
                    .unwrap();
            }
            Output::Event(Event::Completed { result, .. }) => return result,
            Output::StartTls { .. } => client.tls_established(now),
            Output::Wait(deadline) => {
                let deadline = deadline.expect("drive always waits with a deadline");
                assert!(
                    deadline >= now + YEAR,
                    "a deadline that is not far: {deadline:?}"
                );
                client.handle_timeout(now + Duration::from_secs(24 * 60 * 60));
                assert!(client.fatal_error().is_none(), "{:?}", client.fatal_error());
                match server.next() {
                    Some(b) => client.handle_input(now, b),
                    None => client.handle_eof(now),
                }
            }
            Output::Transmit(_) | Output::Trace(_) | Output::Closed => {}
        }
    }
    panic!("the operation never completed");
}

fn client(protocol: Protocol, now: Instant) -> Client {
    let mut cfg = Config::new(Domain::new("client.example").unwrap());
    cfg.protocol = protocol;
    cfg.timeouts = Timeouts::uniform(Duration::MAX);
    Client::new(cfg, now)
}

fn tx(to: &[&str]) -> Transaction {
    let to = to.iter().map(|a| Address::new(*a).unwrap());
    Transaction::new(Address::new("a@example.org").unwrap(), to)
}

#[test]
fn an_smtp_session_with_starttls_waits_forever_without_overflow() {
    let now = Instant::now();
    let mut c = client(Protocol::Smtp, now);
    assert!(c.deadline().unwrap() >= now + YEAR);
    let blocks: &[&[u8]] = &[
        b"220 mx\r\n",
        b"250-mx\r\n250 STARTTLS\r\n",
        b"220 go ahead\r\n",
        b"250-mx\r\n250 PIPELINING\r\n",
        b"250 ok\r\n250 ok\r\n354 go\r\n",
        b"250 queued\r\n",
        b"221 bye\r\n",
    ];
    let mut server = blocks.iter();
    drive(&mut c, Op::GREETING, &mut server, now).unwrap();
    let op = c.starttls(now);
    assert_eq!(drive(&mut c, op, &mut server, now).unwrap().code(), 220);
    assert!(c.is_tls());
    let op = c.send(now, tx(&["b@example.org"]));
    let r = drive(&mut c, op, &mut server, now).unwrap();
    assert!(r.refused().is_empty());
    let op = c.quit(now);
    assert_eq!(drive(&mut c, op, &mut server, now).unwrap().code(), 221);
}

#[test]
fn an_lmtp_session_with_replies_per_recipient_waits_forever_without_overflow() {
    let now = Instant::now();
    let mut c = client(Protocol::Lmtp, now);
    let blocks: &[&[u8]] = &[
        b"220 lmtp\r\n",
        b"250-lmtp\r\n250 PIPELINING\r\n",
        b"250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n",
        b"250 one\r\n",
        b"250 two\r\n",
        b"250 three\r\n",
        b"250 ok\r\n",
        b"250 ok\r\n",
        b"250 ok\r\n",
        b"354 go\r\n",
        b"250 a\r\n",
        b"250 b\r\n",
    ];
    let mut server = blocks.iter();
    drive(&mut c, Op::GREETING, &mut server, now).unwrap();
    let op = c.send(
        now,
        tx(&["b@example.org", "c@example.org", "d@example.org"]),
    );
    let r = drive(&mut c, op, &mut server, now).unwrap();
    assert!(r.refused().is_empty());
    // Low-level DATA after two accepted recipients: two final replies.
    let op = c.mail(now, Address::new("a@example.org").unwrap(), vec![]);
    drive(&mut c, op, &mut server, now).unwrap();
    for to in ["b@example.org", "c@example.org"] {
        let op = c.rcpt(now, Address::new(to).unwrap(), vec![]);
        assert_eq!(drive(&mut c, op, &mut server, now).unwrap().code(), 250);
    }
    let op = c.data(now);
    let finals = drive(&mut c, op, &mut server, now).unwrap();
    assert_eq!(finals.len(), 2);
}
