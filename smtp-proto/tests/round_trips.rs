//! Round trips of a whole new-connection send, as the core decides them:
//! `Client::open`, one transaction and QUIT, driven one operation at a time
//! as a facade does, against a scripted server that answers each flight of
//! the client (the bytes it writes before it next waits for input) with one
//! turn. Every case asserts each flight byte for byte, so a command that
//! waits when it could have gone with the one before it shows as a flight
//! more. One fixed `Instant`; the server's bytes fed in every chunk size.
//!
//! The minimum after the greeting, what the extensions allow:
//!
//! - PIPELINING + CHUNKING: EHLO; MAIL, RCPT, `BDAT ... LAST` and QUIT
//!   (`send_and_quit`): 2 flights, 3 round trips with the greeting.
//! - with STARTTLS and AUTH PLAIN (initial response): EHLO; STARTTLS; the
//!   handshake; EHLO; AUTH; the envelope, body and QUIT: 5 flights and the
//!   handshake. AUTH ends its group: RFC 4954 section 4 would let AUTH PLAIN
//!   with an initial response be followed by MAIL in one group, but the
//!   message would then be on the wire before AUTH's answer (delivered
//!   unauthenticated by a server that takes local mail without AUTH, while
//!   the caller is told AUTH failed); and the safe form (MAIL, RCPT and DATA
//!   behind AUTH, the body only after 354) needs as many flights as
//!   `BDAT ... LAST` after AUTH's answer.
//! - early pipelining (PIPE_CONNECT, on a server that advertised it
//!   before): EHLO goes before the greeting, so the greeting's round trip
//!   is gone: 2 flights, 2 round trips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::time::Instant;

use smtp_sansio::{
    Client, Completion, Config, Credentials, Domain, Error, Event, Op, OpenPlan, Opened, Output,
    Reply, StartTlsPolicy, Transaction, TransactionResult,
};

const BODY: &[u8] = b"Subject: hi\r\n\r\nhello\r\n";

/// A remote peer, SMTP, plain text.
fn config() -> Config {
    Config::new(Domain::new("client.example").unwrap())
}

fn transaction() -> Transaction {
    Transaction::from_strs::<_, &str, &str>("a@example.org", &["b@example.org"], &[], &[]).unwrap()
}

/// What one whole session did.
#[derive(Debug, PartialEq)]
struct Session {
    /// Each flight the client wrote, `<tls>` where the handshake ran.
    flights: Vec<String>,
    opened: Result<Opened, Error>,
    sent: Option<Result<TransactionResult, Error>>,
    quit: Option<Result<Reply, Error>>,
}

/// The client's side of the wire: the flight being written and the server's
/// turns, one per flight, fed `chunk` bytes at a time.
struct Wire {
    now: Instant,
    chunk: usize,
    turns: VecDeque<&'static [u8]>,
    current: &'static [u8],
    pending: Vec<u8>,
    flights: Vec<String>,
}

impl Wire {
    /// The client waits: what it wrote since it last waited is a flight, and
    /// the server's next bytes arrive (its next turn once this one is read).
    fn wait(&mut self, client: &mut Client) {
        if !self.pending.is_empty() {
            let flight = std::mem::take(&mut self.pending);
            self.flights.push(String::from_utf8(flight).unwrap());
        }
        if self.current.is_empty() {
            match self.turns.pop_front() {
                Some(t) => self.current = t,
                None => {
                    client.handle_eof(self.now);
                    return;
                }
            }
        }
        let n = self.chunk.min(self.current.len());
        client.handle_input(self.now, &self.current[..n]);
        self.current = &self.current[n..];
    }

    /// Drives `op` to its result as a facade does.
    fn drive<T: Completion>(&mut self, client: &mut Client, op: Op<T>) -> Result<T, Error> {
        for _ in 0..100_000 {
            match client.drive(op) {
                Output::Transmit(b) => self.pending.extend_from_slice(&b),
                Output::StartTls { .. } => {
                    assert!(self.current.is_empty(), "bytes after the 220 to STARTTLS");
                    assert!(self.pending.is_empty(), "bytes before the handshake");
                    self.flights.push("<tls>".into());
                    client.tls_established(self.now);
                }
                Output::Wait(_) => self.wait(client),
                Output::Closed | Output::Trace(_) => {}
                Output::Event(Event::BodyWanted { .. }) => {
                    client.send_body(self.now, BODY, true).unwrap();
                }
                Output::Event(Event::Completed { result, .. }) => return result,
            }
        }
        panic!("the operation never completed");
    }
}

/// Open by `plan`, then (when the open succeeded) one transaction, with QUIT
/// enqueued behind it (`send_and_quit`) or driven after it.
fn session(
    config: Config,
    plan: OpenPlan,
    server: &[&'static str],
    chunk: usize,
    quit_behind: bool,
) -> Session {
    let now = Instant::now();
    let mut client = Client::new(config, now);
    let mut wire = Wire {
        now,
        chunk,
        turns: server.iter().map(|s| s.as_bytes()).collect(),
        current: &[],
        pending: Vec::new(),
        flights: Vec::new(),
    };
    let open = client.open(now, plan);
    let opened = wire.drive(&mut client, open);
    let (mut sent, mut quit) = (None, None);
    if opened.is_ok() {
        let tx = client.send(now, transaction());
        let q = quit_behind.then(|| client.quit(now));
        sent = Some(wire.drive(&mut client, tx));
        let q = q.unwrap_or_else(|| client.quit(now));
        quit = Some(wire.drive(&mut client, q));
    }
    // Whatever the client wrote last, after its last wait.
    if !wire.pending.is_empty() {
        let flight = std::mem::take(&mut wire.pending);
        wire.flights.push(String::from_utf8(flight).unwrap());
    }
    if opened.is_ok() {
        assert!(
            wire.current.is_empty() && wire.turns.is_empty(),
            "server bytes left unread"
        );
    }
    Session {
        flights: wire.flights,
        opened,
        sent,
        quit,
    }
}

/// `session` in every chunk size from 1 to the longest turn, each giving the
/// same flights and results; the last one is returned.
fn run(
    config: &Config,
    plan: impl Fn() -> OpenPlan,
    server: &[&'static str],
    quit_behind: bool,
) -> Session {
    let longest = server.iter().map(|s| s.len()).max().unwrap_or(1);
    let mut last: Option<Session> = None;
    for chunk in 1..=longest {
        let s = session(config.clone(), plan(), server, chunk, quit_behind);
        if let Some(l) = &last {
            assert_eq!(&s, l, "chunk {chunk}");
        }
        last = Some(s);
    }
    last.unwrap()
}

const GREETING: &str = "220 mx.example ESMTP\r\n";
const EHLO: &str = "EHLO client.example\r\n";
const ENVELOPE: &str = "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n";
const BDAT_LAST: &str = "BDAT 22 LAST\r\nSubject: hi\r\n\r\nhello\r\n";
const PLAIN_IR: &str = "AUTH PLAIN AHVzZXIAcGFzcw==\r\n";
const SENT: &str = "250 ok\r\n250 ok\r\n250 2.0.0 queued as Q1\r\n";
const BYE: &str = "221 bye\r\n";

/// The session came through: open, message accepted, QUIT answered.
fn assert_delivered(s: &Session) {
    assert!(s.opened.is_ok(), "{:?}", s.opened);
    let sent = s.sent.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(sent.queue_id(), Some("Q1"));
    assert_eq!(s.quit.as_ref().unwrap().as_ref().unwrap().code(), 221);
}

#[test]
fn pipelining_and_chunking_send_and_quit_is_two_flights() {
    let caps = "250-mx.example\r\n250-PIPELINING\r\n250 CHUNKING\r\n";
    let sent_and_bye = "250 ok\r\n250 ok\r\n250 2.0.0 queued as Q1\r\n221 bye\r\n";
    let s = run(
        &config(),
        OpenPlan::new,
        &[GREETING, caps, sent_and_bye],
        true,
    );
    assert_eq!(
        s.flights,
        [EHLO.to_owned(), format!("{ENVELOPE}{BDAT_LAST}QUIT\r\n")]
    );
    assert_delivered(&s);
}

#[test]
fn without_send_and_quit_quit_is_a_flight_of_its_own() {
    let caps = "250-mx.example\r\n250-PIPELINING\r\n250 CHUNKING\r\n";
    let s = run(
        &config(),
        OpenPlan::new,
        &[GREETING, caps, SENT, BYE],
        false,
    );
    assert_eq!(
        s.flights,
        [
            EHLO.to_owned(),
            format!("{ENVELOPE}{BDAT_LAST}"),
            "QUIT\r\n".to_owned()
        ]
    );
    assert_delivered(&s);
}

#[test]
fn pipelining_without_chunking_waits_for_354_only() {
    let caps = "250-mx.example\r\n250 PIPELINING\r\n";
    let s = run(
        &config(),
        OpenPlan::new,
        &[
            GREETING,
            caps,
            "250 ok\r\n250 ok\r\n354 go\r\n",
            "250 2.0.0 queued as Q1\r\n221 bye\r\n",
        ],
        true,
    );
    assert_eq!(
        s.flights,
        [
            EHLO.to_owned(),
            format!("{ENVELOPE}DATA\r\n"),
            "Subject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n".to_owned()
        ]
    );
    assert_delivered(&s);
}

#[test]
fn starttls_and_auth_plain_is_five_flights_and_the_handshake() {
    let plan = || {
        OpenPlan::new()
            .starttls(StartTlsPolicy::Required)
            .login(Credentials::new("user", "pass"))
    };
    let s = run(
        &config(),
        plan,
        &[
            GREETING,
            "250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 STARTTLS\r\n",
            "220 go ahead\r\n",
            "250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 AUTH PLAIN LOGIN\r\n",
            "235 2.7.0 ok\r\n",
            "250 ok\r\n250 ok\r\n250 2.0.0 queued as Q1\r\n221 bye\r\n",
        ],
        true,
    );
    assert_eq!(
        s.flights,
        [
            EHLO.to_owned(),
            "STARTTLS\r\n".to_owned(),
            "<tls>".to_owned(),
            EHLO.to_owned(),
            PLAIN_IR.to_owned(),
            format!("{ENVELOPE}{BDAT_LAST}QUIT\r\n"),
        ]
    );
    assert_delivered(&s);
    let opened = s.opened.unwrap();
    assert!(opened.tls);
    assert_eq!(opened.auth.unwrap().code(), 235);
}

// ----- early pipelining (PIPE_CONNECT) -----

/// The reply to EHLO of a server with early pipelining (Exim 4.96's keyword).
const CAPS_EARLY: &str = "250-mx.example\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 CHUNKING\r\n";

fn early() -> OpenPlan {
    OpenPlan::new().early_pipelining(true)
}

#[test]
fn early_pipelining_writes_ehlo_before_the_greeting() {
    let s = run(
        &config(),
        early,
        &[
            // The greeting and the reply to EHLO answer the first flight.
            "220 mx.example ESMTP\r\n250-mx.example\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 CHUNKING\r\n",
            "250 ok\r\n250 ok\r\n250 2.0.0 queued as Q1\r\n221 bye\r\n",
        ],
        true,
    );
    assert_eq!(
        s.flights,
        [EHLO.to_owned(), format!("{ENVELOPE}{BDAT_LAST}QUIT\r\n")]
    );
    assert_delivered(&s);
    let opened = s.opened.unwrap();
    assert!(opened.early_pipelining && opened.pipe_connect);
    assert_eq!(opened.greeting.text(), "mx.example ESMTP");
    assert_eq!(
        opened.hello.text(),
        "mx.example\nPIPELINING\nPIPECONNECT\nCHUNKING"
    );
}

#[test]
fn early_pipelining_with_required_starttls_and_auth_is_four_flights_and_the_handshake() {
    let plan = || {
        early()
            .starttls(StartTlsPolicy::Required)
            .login(Credentials::new("user", "pass"))
    };
    let s = run(
        &config(),
        plan,
        &[
            "220 mx.example ESMTP\r\n250-mx.example\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 STARTTLS\r\n220 go ahead\r\n",
            "250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 AUTH PLAIN\r\n",
            "235 2.7.0 ok\r\n",
            "250 ok\r\n250 ok\r\n250 2.0.0 queued as Q1\r\n221 bye\r\n",
        ],
        true,
    );
    assert_eq!(
        s.flights,
        [
            format!("{EHLO}STARTTLS\r\n"),
            "<tls>".to_owned(),
            EHLO.to_owned(),
            PLAIN_IR.to_owned(),
            format!("{ENVELOPE}{BDAT_LAST}QUIT\r\n"),
        ]
    );
    assert_delivered(&s);
    let opened = s.opened.unwrap();
    assert!(opened.tls && opened.early_pipelining && opened.pipe_connect);
    assert_eq!(opened.starttls.unwrap().code(), 220);
    // The last reply to EHLO is the one over TLS, which need not advertise it.
    assert_eq!(
        opened.hello.text(),
        "mx.example\nPIPELINING\nCHUNKING\nAUTH PLAIN"
    );
}

#[test]
fn early_pipelining_with_opportunistic_starttls_sends_ehlo_alone() {
    let s = run(
        &config(),
        early,
        &[
            "220 mx.example\r\n250-mx.example\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250-CHUNKING\r\n250 STARTTLS\r\n",
            "220 go ahead\r\n",
            "250-mx.example\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
            "250 ok\r\n250 ok\r\n250 2.0.0 queued as Q1\r\n221 bye\r\n",
        ],
        true,
    );
    assert_eq!(
        s.flights,
        [
            EHLO.to_owned(),
            "STARTTLS\r\n".to_owned(),
            "<tls>".to_owned(),
            EHLO.to_owned(),
            format!("{ENVELOPE}{BDAT_LAST}QUIT\r\n"),
        ]
    );
    assert_delivered(&s);
}

#[test]
fn early_opportunistic_starttls_refused_goes_on_in_plain_text() {
    // STARTTLS went behind the early EHLO (the server ran it last time);
    // refused now, the session goes on in plain text, as an opportunistic
    // STARTTLS sent alone would.
    let s = run(
        &config(),
        || early().early_starttls(true),
        &[
            "220 mx.example\r\n250-mx.example\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250-CHUNKING\r\n250 STARTTLS\r\n454 4.7.0 TLS not available\r\n",
            "250 ok\r\n250 ok\r\n250 2.0.0 queued as Q1\r\n221 bye\r\n",
        ],
        true,
    );
    assert_eq!(
        s.flights,
        [
            format!("{EHLO}STARTTLS\r\n"),
            format!("{ENVELOPE}{BDAT_LAST}QUIT\r\n"),
        ]
    );
    assert_delivered(&s);
    let opened = s.opened.unwrap();
    assert!(!opened.tls && opened.early_pipelining);
}

/// An early open the server did not confirm: the flights, and the error.
fn refused(plan: impl Fn() -> OpenPlan, server: &[&'static str]) -> (Vec<String>, Error) {
    let s = run(&config(), plan, server, true);
    assert!(s.sent.is_none() && s.quit.is_none());
    (s.flights, s.opened.unwrap_err())
}

fn early_refused(reply: &str) -> Error {
    let r = smtp_sansio::ReplyParser::new(smtp_sansio::ReplyLimits::default())
        .parse(reply.as_bytes())
        .unwrap()
        .1
        .unwrap();
    Error::EarlyPipeliningRefused(r)
}

#[test]
fn a_greeting_other_than_220_refuses_early_pipelining() {
    for greeting in [
        "554 5.5.1 SMTP synchronization error\r\n",
        "421 4.3.2 busy\r\n",
    ] {
        let (flights, err) = refused(early, &[greeting]);
        assert_eq!(flights, [EHLO]);
        assert_eq!(err, early_refused(greeting));
        assert!(err.is_fatal() && err.safe_to_resend(), "{err}");
        assert_eq!(err.reply().unwrap().code(), greeting[..3].parse().unwrap());
    }
}

#[test]
fn a_reply_to_ehlo_without_pipe_connect_ends_the_session_before_mail() {
    let (flights, err) = refused(
        early,
        &["220 mx\r\n250-mx.example\r\n250-PIPELINING\r\n250 CHUNKING\r\n"],
    );
    assert_eq!(flights, [EHLO]);
    assert_eq!(
        err,
        early_refused("250-mx.example\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
    );
}

#[test]
fn exims_keywords_before_4_96_are_no_confirmation() {
    // X_PIPE_CONNECT (4.92 to 4.94) and PIPE_CONNECT (4.95) break the
    // ehlo-keyword grammar: not taken as an advertisement.
    for old in ["X_PIPE_CONNECT", "PIPE_CONNECT"] {
        let caps = format!("250-mx.example\r\n250-PIPELINING\r\n250 {old}\r\n");
        let server: &'static str = format!("220 mx\r\n{caps}").leak();
        let (flights, err) = refused(early, &[server]);
        assert_eq!(flights, [EHLO]);
        assert_eq!(err, early_refused(&caps));
    }
}

#[test]
fn pipe_connect_without_pipelining_is_no_confirmation() {
    let (flights, err) = refused(early, &["220 mx\r\n250-mx.example\r\n250 PIPECONNECT\r\n"]);
    assert_eq!(flights, [EHLO]);
    assert_eq!(err, early_refused("250-mx.example\r\n250 PIPECONNECT\r\n"));
}

#[test]
fn a_refused_early_ehlo_sends_no_helo() {
    let (flights, err) = refused(early, &["220 mx\r\n500 what\r\n"]);
    assert_eq!(flights, [EHLO]);
    assert_eq!(err, early_refused("500 what\r\n"));
}

#[test]
fn an_early_starttls_refused_at_the_greeting_sends_nothing_more() {
    let plan = || early().starttls(StartTlsPolicy::Required);
    let (flights, err) = refused(plan, &["554 go away\r\n"]);
    assert_eq!(flights, [format!("{EHLO}STARTTLS\r\n")]);
    assert_eq!(err, early_refused("554 go away\r\n"));
}

#[test]
fn an_early_starttls_not_offered_any_more_ends_the_session() {
    let plan = || early().starttls(StartTlsPolicy::Required);
    let (flights, err) = refused(
        plan,
        &["220 mx\r\n250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n502 no\r\n"],
    );
    assert_eq!(flights, [format!("{EHLO}STARTTLS\r\n")]);
    assert_eq!(
        err,
        Error::Security(smtp_sansio::SecurityError::StartTlsNotOffered)
    );
}

#[test]
fn a_server_that_closes_on_an_early_talker_is_disconnected() {
    let (flights, err) = refused(early, &[]);
    assert_eq!(flights, [EHLO]);
    assert_eq!(err, Error::Disconnected);
    assert!(err.safe_to_resend());
}

#[test]
fn early_pipelining_after_the_greeting_arrived_is_the_usual_open() {
    let now = Instant::now();
    let mut client = Client::new(config(), now);
    client.handle_input(now, b"220 mx.example ESMTP\r\n");
    let op = client.open(now, early());
    let Output::Transmit(b) = client.drive(op) else {
        panic!("EHLO expected")
    };
    assert_eq!(b, EHLO.as_bytes());
    client.handle_input(now, CAPS_EARLY.as_bytes());
    let opened = match client.drive(op) {
        Output::Event(Event::Completed { result, .. }) => result.unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(!opened.early_pipelining && opened.pipe_connect);
}

#[test]
fn early_pipelining_waits_while_part_of_the_greeting_was_read() {
    let now = Instant::now();
    let mut client = Client::new(config(), now);
    client.handle_input(now, b"220 mx.exa");
    let op = client.open(now, early());
    assert!(matches!(client.drive(op), Output::Wait(Some(_))));
}

#[test]
fn a_server_without_pipe_connect_is_recorded_as_such() {
    let s = run(
        &config(),
        OpenPlan::new,
        &[
            GREETING,
            "250-mx.example\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
            "250 ok\r\n250 ok\r\n250 2.0.0 queued as Q1\r\n221 bye\r\n",
        ],
        true,
    );
    let opened = s.opened.unwrap();
    assert!(!opened.early_pipelining && !opened.pipe_connect);
}

/// An early open with a required STARTTLS and AUTH, the connection cut at
/// every byte offset of what the server says: the open fails with
/// `Disconnected` (a clean end of stream) or `Transport` (an error), nothing
/// past the flight it was in is written, and it goes through only when
/// every byte arrived.
#[test]
fn a_cut_at_every_offset_of_an_early_open_fails_it() {
    let turns: [&[u8]; 3] = [
        b"220 mx\r\n250-mx\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 STARTTLS\r\n220 go\r\n",
        b"250-mx\r\n250 AUTH PLAIN\r\n",
        b"235 ok\r\n",
    ];
    let flights = [
        format!("{EHLO}STARTTLS\r\n"),
        EHLO.to_owned(),
        PLAIN_IR.to_owned(),
    ];
    let total: usize = turns.iter().map(|t| t.len()).sum();
    for cut in 0..=total {
        for transport in [false, true] {
            let now = Instant::now();
            let mut c = Client::new(config(), now);
            let plan = early()
                .starttls(StartTlsPolicy::Required)
                .login(Credentials::new("user", "pass"));
            let op = c.open(now, plan);
            let mut left = cut;
            let mut pending: VecDeque<&[u8]> = turns.iter().copied().collect();
            let mut sent = Vec::new();
            let result = loop {
                match c.drive(op) {
                    Output::StartTls { .. } => c.tls_established(now),
                    Output::Transmit(b) => sent.extend_from_slice(&b),
                    Output::Wait(_) => match pending.pop_front() {
                        Some(t) if left > 0 => {
                            let n = left.min(t.len());
                            c.handle_input(now, &t[..n]);
                            left -= n;
                        }
                        _ if transport => c.handle_transport_error(now),
                        _ => c.handle_eof(now),
                    },
                    Output::Event(Event::Completed { result, .. }) => break result,
                    Output::Trace(_) | Output::Closed => {}
                    other => panic!("{other:?}"),
                }
            };
            // The flights the bytes before the cut allowed, and no more.
            let mut answered = 0;
            let mut through = 0;
            for t in &turns {
                through += t.len();
                if cut >= through {
                    answered += 1;
                }
            }
            let expected = flights[..(answered + 1).min(flights.len())].concat();
            assert_eq!(String::from_utf8(sent).unwrap(), expected, "cut at {cut}");
            match (cut == total, result) {
                (true, Ok(opened)) => {
                    assert!(opened.tls && opened.early_pipelining && opened.auth.is_some());
                }
                (false, Err(e)) => {
                    let want = if transport {
                        Error::Transport
                    } else {
                        Error::Disconnected
                    };
                    assert_eq!(e, want, "cut at {cut}");
                    assert!(c.is_closed());
                }
                (_, other) => panic!("cut at {cut}: {other:?}"),
            }
        }
    }
}

/// While the greeting is awaited with EHLO already out, the greeting's
/// deadline holds; once it came, the reply to EHLO has the command timeout
/// from then.
#[test]
fn an_early_open_keeps_the_greetings_deadline() {
    let t0 = Instant::now();
    let cfg = config();
    let timeouts = cfg.timeouts;
    let mut c = Client::new(cfg.clone(), t0);
    let op = c.open(t0, early());
    assert!(matches!(c.drive(op), Output::Transmit(_)));
    assert_eq!(c.drive(op).unwrap_wait(), t0 + timeouts.greeting);
    let t1 = t0 + std::time::Duration::from_secs(1);
    c.handle_input(t1, GREETING.as_bytes());
    assert_eq!(c.drive(op).unwrap_wait(), t1 + timeouts.command);
    c.handle_timeout(t1 + timeouts.command);
    match c.drive(op) {
        Output::Closed => {}
        other => panic!("{other:?}"),
    }
    match c.drive(op) {
        Output::Event(Event::Completed { result, .. }) => {
            assert_eq!(
                result.unwrap_err(),
                Error::Timeout("the reply to EHLO/HELO")
            );
        }
        other => panic!("{other:?}"),
    }

    // No greeting at all: its own timeout.
    let mut c = Client::new(cfg, t0);
    let op = c.open(t0, early());
    assert!(matches!(c.drive(op), Output::Transmit(_)));
    c.handle_timeout(t0 + timeouts.greeting);
    assert!(matches!(c.drive(op), Output::Closed));
    match c.drive(op) {
        Output::Event(Event::Completed { result, .. }) => {
            assert_eq!(result.unwrap_err(), Error::Timeout("the greeting"));
        }
        other => panic!("{other:?}"),
    }
}

trait UnwrapWait {
    fn unwrap_wait(self) -> Instant;
}

impl<T: std::fmt::Debug> UnwrapWait for Output<T> {
    fn unwrap_wait(self) -> Instant {
        match self {
            Output::Wait(Some(d)) => d,
            other => panic!("a wait expected, got {other:?}"),
        }
    }
}

#[test]
fn early_starttls_with_opportunistic_tls_goes_behind_the_early_ehlo() {
    let plan = || early().early_starttls(true);
    let s = run(
        &config(),
        plan,
        &[
            "220 mx\r\n250-mx\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 STARTTLS\r\n220 go\r\n",
            "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
            "250 ok\r\n250 ok\r\n250 2.0.0 queued as Q1\r\n221 bye\r\n",
        ],
        true,
    );
    assert_eq!(
        s.flights,
        [
            format!("{EHLO}STARTTLS\r\n"),
            "<tls>".to_owned(),
            EHLO.to_owned(),
            format!("{ENVELOPE}{BDAT_LAST}QUIT\r\n"),
        ]
    );
    assert_delivered(&s);
    let opened = s.opened.unwrap();
    assert!(opened.tls && opened.early_pipelining && opened.starttls.is_some());
}

#[test]
fn early_starttls_no_longer_offered_is_a_mismatch() {
    let plan = || early().early_starttls(true);
    let (flights, err) = refused(
        plan,
        &["220 mx\r\n250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n502 no\r\n"],
    );
    assert_eq!(flights, [format!("{EHLO}STARTTLS\r\n")]);
    assert_eq!(
        err,
        early_refused("250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n")
    );
}

#[test]
fn early_starttls_without_early_pipelining_or_tls_does_nothing() {
    let caps = "250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
    // Not early: the usual open, STARTTLS after the reply to EHLO.
    let s = run(
        &config(),
        || OpenPlan::new().early_starttls(true),
        &[GREETING, caps, "454 not now\r\n"],
        true,
    );
    // (The 454 leaves the session in plain text: the transaction follows.)
    assert_eq!(s.flights[..2], [EHLO, "STARTTLS\r\n"]);
    assert!(s.flights[2].starts_with("MAIL FROM:"));
    // Early, but no TLS to run: EHLO alone, and no STARTTLS after it.
    let s = run(
        &config(),
        || early().early_starttls(true).tls_available(false),
        &[
            "220 mx\r\n250-mx\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 STARTTLS\r\n",
            "250 ok\r\n250 ok\r\n354 go\r\n",
            "250 2.0.0 queued as Q1\r\n221 bye\r\n",
        ],
        true,
    );
    assert_eq!(s.flights[0], EHLO);
    assert!(!s.opened.unwrap().tls);
}
