//! The fault sweep over the core: representative sessions run against a small
//! model server on a virtual clock, once for every fault: the connection cut
//! after each byte offset the server has received, and after each byte offset
//! it has sent, and the server stalling at each of those offsets (the client's
//! deadline passes), and the server answering 421 in place of each of its
//! replies, and the client's writes failing once each byte offset was
//! accepted (the write crossing it partial, `Client::handle_write_error`). A
//! cut by close and one by reset are the same input to the core (the end of
//! the stream); the adapters' sweep tells them apart.
//!
//! Every run must end (a bounded number of steps, within one deadline of
//! virtual time) without a panic, and every message must end as the server
//! saw it:
//!
//! - a success only when the server stored the message and its final 2xx
//!   reached the client, with exactly the recipients the server accepted;
//! - [`Delivery::Unknown`] exactly when the client wrote the end of the
//!   message, the server did not close before taking it (a 421 to a command
//!   pipelined before it), and its final reply did not reach the client (a
//!   421 in place of that reply is one: the message was refused; under LMTP,
//!   in place of the last recipient's reply);
//! - [`Delivery::NotSent`] only when the server did not store it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use smtp_sansio::{
    Address, Client, Completion, Config, Credentials, Delivery, Domain, Error, Event, Op, Output,
    Protocol, Reply, Timeouts, Transaction, TransactionResult, client::PartsCursor, sasl::Plain,
};

/// The deadline of every wait.
const TIMEOUT: Duration = Duration::from_secs(10);

// ----- the model server -----

/// What the model server offers.
#[derive(Debug, Clone, Copy)]
struct Profile {
    lmtp: bool,
    pipelining: bool,
    chunking: bool,
    starttls: bool,
    auth: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Command,
    Data,
    Bdat { left: usize, last: bool },
}

/// A message the server took: each recipient with its final reply code and
/// the offset in the server's output where that reply ends.
#[derive(Debug, Clone)]
struct Stored {
    replies: Vec<(String, u16, usize)>,
    /// Every recipient got its reply (no 421 cut the LMTP replies short).
    complete: bool,
}

/// A pure SMTP/LMTP server: commands in, replies out, every message it takes
/// recorded. Recipients named `refused...` are refused at RCPT; under LMTP
/// those named `full...` get 452 after the message.
#[derive(Debug)]
struct Model {
    p: Profile,
    input: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
    tls: bool,
    mode: Mode,
    rcpts: Vec<String>,
    ends: usize,
    stored: Vec<Stored>,
    closed: bool,
    /// Replies sent so far (a multiline reply counts once).
    replies: usize,
    /// Answer 421 and close in place of this reply.
    fail_at: Option<usize>,
    /// The 421 went in place of a reply to the end of a message: that
    /// message's number, where the 421 ends in the output, and whether it
    /// stood for the last reply awaited (under LMTP, the last recipient's).
    end_closed: Option<(usize, usize, bool)>,
}

impl Model {
    fn new(p: Profile, fail_at: Option<usize>) -> Model {
        let mut m = Model {
            p,
            input: Vec::new(),
            pos: 0,
            out: Vec::new(),
            tls: false,
            mode: Mode::Command,
            rcpts: Vec::new(),
            ends: 0,
            stored: Vec::new(),
            closed: false,
            replies: 0,
            fail_at,
            end_closed: None,
        };
        m.reply("220 model ready");
        m
    }

    /// Sends one reply (lines joined by `\n`); false when a 421 went in its
    /// place and the server closed.
    fn reply(&mut self, text: &str) -> bool {
        let n = self.replies;
        self.replies += 1;
        if self.fail_at == Some(n) {
            self.out.extend_from_slice(b"421 4.3.2 closing\r\n");
            self.closed = true;
            return false;
        }
        for line in text.split('\n') {
            self.out.extend_from_slice(line.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
        true
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        while !self.closed {
            match self.mode {
                Mode::Bdat { left, last } => {
                    let take = left.min(self.input.len() - self.pos);
                    self.pos += take;
                    let left = left - take;
                    self.mode = Mode::Bdat { left, last };
                    if left > 0 {
                        return;
                    }
                    self.mode = Mode::Command;
                    if last {
                        self.end_message();
                    } else {
                        self.reply("250 chunk ok");
                    }
                }
                Mode::Command | Mode::Data => {
                    let rest = &self.input[self.pos..];
                    let Some(i) = rest.windows(2).position(|w| w == b"\r\n") else {
                        return;
                    };
                    let line = String::from_utf8_lossy(&rest[..i]).into_owned();
                    self.pos += i + 2;
                    if self.mode == Mode::Data {
                        if line == "." {
                            self.mode = Mode::Command;
                            self.end_message();
                        }
                    } else {
                        self.command(&line);
                    }
                }
            }
        }
    }

    fn command(&mut self, line: &str) {
        let upper = line.to_ascii_uppercase();
        let verb = upper.split(' ').next().unwrap_or("");
        match verb {
            "EHLO" | "LHLO" => {
                let mut caps = vec!["250-model".to_owned()];
                if self.p.starttls && !self.tls {
                    caps.push("250-STARTTLS".into());
                }
                if self.p.pipelining {
                    caps.push("250-PIPELINING".into());
                }
                if self.p.chunking {
                    caps.push("250-CHUNKING".into());
                }
                if self.p.auth {
                    caps.push("250-AUTH PLAIN".into());
                }
                caps.push("250 8BITMIME".into());
                self.reply(&caps.join("\n"));
            }
            "STARTTLS" => {
                self.tls = self.reply("220 go ahead");
            }
            "AUTH" => {
                self.reply("235 2.7.0 ok");
            }
            "MAIL" => {
                self.rcpts.clear();
                self.reply("250 sender ok");
            }
            "RCPT" => {
                let addr = line.split(['<', '>']).nth(1).unwrap_or_default().to_owned();
                if addr.starts_with("refused") {
                    self.reply("550 5.1.1 no such user");
                } else if self.reply("250 recipient ok") {
                    self.rcpts.push(addr);
                }
            }
            "DATA" => {
                if self.rcpts.is_empty() {
                    self.reply("554 no valid recipients");
                } else if self.reply("354 go ahead") {
                    self.mode = Mode::Data;
                }
            }
            "BDAT" => {
                let mut words = upper.split(' ').skip(1);
                let n = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let last = words.next() == Some("LAST");
                self.mode = Mode::Bdat { left: n, last };
            }
            "RSET" | "NOOP" => {
                self.reply("250 ok");
            }
            "QUIT" => {
                self.reply("221 bye");
                self.closed = true;
            }
            _ => {
                self.reply("500 unknown command");
            }
        }
    }

    fn end_message(&mut self) {
        self.ends += 1;
        let rcpts = std::mem::take(&mut self.rcpts);
        let expected = rcpts.len();
        let mut replies = Vec::new();
        if self.p.lmtp {
            // Each recipient's delivery is done when its reply goes out.
            for (k, r) in rcpts.into_iter().enumerate() {
                let code = if r.starts_with("full") { 452 } else { 250 };
                if !self.reply(&format!("{code} <{r}> done")) {
                    self.end_closed = Some((self.ends - 1, self.out.len(), k + 1 == expected));
                    break;
                }
                replies.push((r, code, self.out.len()));
            }
        } else if self.reply("250 2.0.0 queued") {
            let end = self.out.len();
            replies = rcpts.into_iter().map(|r| (r, 250, end)).collect();
        } else {
            self.end_closed = Some((self.ends - 1, self.out.len(), true));
        }
        if !replies.is_empty() {
            let complete = replies.len() == expected;
            self.stored.push(Stored { replies, complete });
        }
    }
}

// ----- sessions -----

/// A representative session: what the server offers, what the client does.
struct Session {
    name: &'static str,
    profile: Profile,
    config: Config,
    starttls: bool,
    auth: bool,
    /// Each message: recipients and the body, handed over in chunks of `chunk`.
    messages: Vec<(Vec<&'static str>, &'static [u8])>,
    chunk: usize,
    /// QUIT is enqueued right behind the last message (it then leaves in the
    /// same write as the message's end when the server pipelines).
    quit_behind: bool,
}

fn config(lmtp: bool) -> Config {
    let mut c = Config::new(Domain::new("client.example").unwrap());
    c.timeouts = Timeouts::uniform(TIMEOUT);
    if lmtp {
        c.protocol = Protocol::Lmtp;
    }
    c
}

const BODY: &[u8] = b"Subject: sweep\r\n\r\n.a dot\r\nline two\r\n";

fn sessions() -> Vec<Session> {
    let p = Profile {
        lmtp: false,
        pipelining: true,
        chunking: false,
        starttls: false,
        auth: false,
    };
    vec![
        Session {
            name: "pipelined DATA",
            profile: p,
            config: config(false),
            starttls: false,
            auth: false,
            messages: vec![(vec!["b@x.org", "refused@x.org"], BODY)],
            chunk: 16,
            quit_behind: false,
        },
        Session {
            name: "DATA without pipelining",
            profile: Profile {
                pipelining: false,
                ..p
            },
            config: config(false),
            starttls: false,
            auth: false,
            messages: vec![(vec!["b@x.org"], BODY)],
            chunk: 64,
            quit_behind: false,
        },
        Session {
            name: "BDAT in several chunks",
            profile: Profile {
                chunking: true,
                ..p
            },
            config: config(false),
            starttls: false,
            auth: false,
            messages: vec![(vec!["b@x.org"], BODY)],
            chunk: 12,
            quit_behind: false,
        },
        Session {
            name: "STARTTLS, AUTH and one message",
            profile: Profile {
                starttls: true,
                auth: true,
                ..p
            },
            config: config(false),
            starttls: true,
            auth: true,
            messages: vec![(vec!["b@x.org"], BODY)],
            chunk: 64,
            quit_behind: false,
        },
        Session {
            name: "LMTP with three recipients",
            profile: Profile { lmtp: true, ..p },
            config: config(true),
            starttls: false,
            auth: false,
            messages: vec![(vec!["b@x.org", "full@x.org", "d@x.org"], BODY)],
            chunk: 64,
            quit_behind: false,
        },
        Session {
            name: "two messages on one connection",
            profile: p,
            config: config(false),
            starttls: false,
            auth: false,
            messages: vec![(vec!["b@x.org"], BODY), (vec!["c@x.org"], BODY)],
            chunk: 64,
            quit_behind: false,
        },
        Session {
            name: "pipelined DATA, QUIT behind the message",
            profile: p,
            config: config(false),
            starttls: false,
            auth: false,
            messages: vec![(vec!["b@x.org", "refused@x.org"], BODY)],
            chunk: 16,
            quit_behind: true,
        },
        Session {
            name: "BDAT LAST and QUIT with the envelope",
            profile: Profile {
                chunking: true,
                ..p
            },
            config: config(false),
            starttls: false,
            auth: false,
            messages: vec![(vec!["b@x.org"], BODY)],
            chunk: 64,
            quit_behind: true,
        },
        Session {
            name: "LMTP, QUIT behind the message",
            profile: Profile { lmtp: true, ..p },
            config: config(true),
            starttls: false,
            auth: false,
            messages: vec![(vec!["b@x.org", "full@x.org"], BODY)],
            chunk: 64,
            quit_behind: true,
        },
    ]
}

// ----- one run -----

/// Where the server fails.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// No fault.
    None,
    /// After the server received this many bytes (and sent its replies to
    /// them), the connection is cut, or (`stall`) the server goes silent.
    Received { at: usize, stall: bool },
    /// After the server sent this many bytes.
    Sent { at: usize, stall: bool },
    /// The server answers 421 in place of its reply with this index (the
    /// greeting is 0) and closes.
    Reply421(usize),
    /// The client's writes fail once this many bytes were accepted (the
    /// write crossing it is partial): the facade calls
    /// `Client::handle_write_error` with what it got written.
    Written(usize),
}

/// The virtual connection between the client and the model server.
struct Wire {
    client: Client,
    model: Model,
    fault: Fault,
    now: Instant,
    start: Instant,
    /// Everything the client transmitted.
    sent: Vec<u8>,
    /// How much of `sent` the model was fed.
    fed: usize,
    /// How much of the model's output the client received.
    delivered: usize,
    steps: usize,
    /// The client's last write.
    last_write: Vec<u8>,
}

impl Wire {
    fn rx_limit(&self) -> usize {
        match self.fault {
            Fault::Received { at, .. } => at,
            _ => usize::MAX,
        }
    }

    fn tx_limit(&self) -> usize {
        match self.fault {
            Fault::Sent { at, .. } => at,
            _ => usize::MAX,
        }
    }

    fn stall(&self) -> bool {
        matches!(
            self.fault,
            Fault::Received { stall: true, .. } | Fault::Sent { stall: true, .. }
        )
    }

    /// Feeds the model what it may receive of what the client sent.
    fn pump(&mut self) {
        let upto = self.sent.len().min(self.rx_limit());
        if upto > self.fed {
            self.model.feed(&self.sent[self.fed..upto]);
            self.fed = upto;
        }
    }

    /// The client waits: the server's next bytes, or the fault.
    fn wait(&mut self, deadline: Instant) {
        self.pump();
        let avail = self.model.out.len().min(self.tx_limit());
        if self.delivered < avail {
            // In two pieces, so that replies also arrive split.
            let mid = self.delivered + (avail - self.delivered).div_ceil(2);
            for (a, b) in [(self.delivered, mid), (mid, avail)] {
                if a < b {
                    self.client.handle_input(self.now, &self.model.out[a..b]);
                }
            }
            self.delivered = avail;
            return;
        }
        let cut_rx = matches!(self.fault, Fault::Received { at, .. } if self.sent.len() >= at);
        let cut_tx = matches!(self.fault, Fault::Sent { at, .. } if self.delivered >= at);
        if (cut_rx || cut_tx) && self.stall() {
            self.now = deadline;
            self.client.handle_timeout(self.now);
        } else if cut_rx || cut_tx || self.model.closed {
            self.client.handle_eof(self.now);
        } else {
            panic!(
                "the client waits for a reply the model server never sends: {:?}",
                String::from_utf8_lossy(&self.sent)
            );
        }
    }

    /// Drives `op` to its end as a facade does.
    fn run<T: Completion>(&mut self, op: Op<T>, body: &[u8], chunk: usize) -> Result<T, Error> {
        let parts = [body];
        let mut cursor = PartsCursor::new(&parts, chunk);
        loop {
            self.steps += 1;
            assert!(self.steps < 100_000, "the run does not end");
            match self.client.drive(op) {
                Output::Transmit(b) => {
                    let room = match self.fault {
                        Fault::Written(at) => at.saturating_sub(self.sent.len()),
                        _ => usize::MAX,
                    };
                    let written = b.len().min(room);
                    self.sent.extend_from_slice(&b[..written]);
                    self.pump();
                    if written < b.len() {
                        self.client.handle_write_error(self.now, written);
                    }
                    self.last_write = b;
                }
                Output::Event(Event::BodyWanted { .. }) => {
                    let (piece, last) = cursor.next_piece();
                    self.client.send_body(self.now, piece, last).unwrap();
                }
                Output::StartTls => self.client.tls_established(self.now),
                Output::Trace(_) | Output::Closed => {}
                Output::Wait(deadline) => {
                    self.wait(deadline.expect("drive always gives a deadline"));
                }
                Output::Event(Event::Completed { result, .. }) => return result,
            }
        }
    }
}

/// What a run ended with, per message.
struct Ran {
    results: Vec<Result<TransactionResult, Error>>,
    /// The client's whole output, for the ends it transmitted.
    sent: Vec<u8>,
    model: Model,
    delivered: usize,
    elapsed: Duration,
    last_write: Vec<u8>,
}

fn run(s: &Session, fault: Fault) -> Ran {
    let start = Instant::now();
    let mut w = Wire {
        client: Client::new(s.config.clone(), start),
        model: Model::new(s.profile, fail_at(fault)),
        fault,
        now: start,
        start,
        sent: Vec::new(),
        fed: 0,
        delivered: 0,
        steps: 0,
        last_write: Vec::new(),
    };
    let _: Result<Reply, Error> = w.run(Op::GREETING, b"", 1);
    if s.starttls {
        let op = w.client.starttls(w.now);
        let _ = w.run(op, b"", 1);
    }
    if s.auth {
        let mech = Box::new(Plain::new(Credentials::new("user", "secret")));
        let op = w.client.auth(w.now, mech, true);
        let _ = w.run(op, b"", 1);
    }
    let mut results = Vec::new();
    let mut quit = None;
    for (i, (to, body)) in s.messages.iter().enumerate() {
        let to = to.iter().map(|a| Address::new(*a).unwrap());
        let tx = Transaction::new(Address::new("a@x.org").unwrap(), to);
        let op = w.client.send(w.now, tx);
        if s.quit_behind && i + 1 == s.messages.len() {
            quit = Some(w.client.quit(w.now));
        }
        results.push(w.run(op, body, s.chunk));
    }
    let op = quit.unwrap_or_else(|| w.client.quit(w.now));
    let _ = w.run(op, b"", 1);
    Ran {
        results,
        sent: w.sent,
        model: w.model,
        delivered: w.delivered,
        elapsed: w.now - w.start,
        last_write: w.last_write,
    }
}

fn fail_at(fault: Fault) -> Option<usize> {
    match fault {
        Fault::Reply421(n) => Some(n),
        _ => None,
    }
}

// ----- the oracle -----

/// Checks one run; `Err` says what broke.
fn check(s: &Session, fault: Fault, ran: &Ran) -> Result<(), String> {
    if ran.elapsed > TIMEOUT {
        return Err(format!("took {:?} of virtual time", ran.elapsed));
    }
    // The ends of messages the client transmitted, as a server reading all of
    // it would count them.
    let mut full = Model::new(s.profile, fail_at(fault));
    full.feed(&ran.sent);
    let ends_sent = full.ends;
    for (i, result) in ran.results.iter().enumerate() {
        let stored = ran.model.stored.get(i);
        let end_sent = i < ends_sent;
        let got = |end: usize| ran.delivered >= end;
        let got_all =
            stored.is_some_and(|st| st.complete && st.replies.iter().all(|(_, _, e)| got(*e)));
        // A 421 in place of the (last) reply to the end of this message, and
        // it reached the client: the message's answer.
        let closed_answer = ran
            .model
            .end_closed
            .is_some_and(|(m, at, last)| m == i && last && got(at));
        match result {
            Ok(t) => {
                let Some(st) = stored else {
                    return Err(format!(
                        "message {i} reported sent, the server never took it"
                    ));
                };
                if !got_all && !closed_answer {
                    return Err(format!("message {i} reported sent before its reply came"));
                }
                let server: Vec<&str> = st
                    .replies
                    .iter()
                    .filter(|(_, code, _)| *code == 250)
                    .map(|(a, _, _)| a.as_str())
                    .collect();
                let client: Vec<&str> = t.accepted().iter().map(|a| a.as_str()).collect();
                if server != client {
                    return Err(format!(
                        "message {i}: accepted {client:?}, the server took {server:?}"
                    ));
                }
            }
            Err(e) => {
                let unknown = e.delivery() == Delivery::Unknown;
                if unknown != (end_sent && !got_all && !closed_answer) {
                    return Err(format!(
                        "message {i}: {e:?} (end sent: {end_sent}, final reply came: {got_all})"
                    ));
                }
                if e.delivery() == Delivery::NotSent && stored.is_some() {
                    return Err(format!(
                        "message {i}: not sent, but the server has it: {e:?}"
                    ));
                }
                if let (Error::Uncertain { recipients, .. }, Some(st)) = (e, stored) {
                    for r in recipients {
                        let server = st.replies.iter().find(|(a, _, _)| *a == r.address);
                        let ok = match (r.delivery, server) {
                            (Delivery::Accepted, Some((_, 250, end))) => got(*end),
                            (Delivery::Refused, _) => true,
                            (Delivery::Unknown, Some((_, _, end))) => !got(*end),
                            (Delivery::Unknown, None) => true,
                            _ => false,
                        };
                        if !ok {
                            return Err(format!("message {i}: recipient {r:?} vs {server:?}"));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[test]
fn every_session_completes_without_faults() {
    for s in sessions() {
        let ran = run(&s, Fault::None);
        for (i, r) in ran.results.iter().enumerate() {
            assert!(r.is_ok(), "{}: message {i}: {r:?}", s.name);
        }
        assert_eq!(ran.model.stored.len(), s.messages.len(), "{}", s.name);
        check(&s, Fault::None, &ran).unwrap();
        // QUIT behind the message leaves with the message's end (a line of
        // the body, or the whole BDAT LAST group).
        let last = String::from_utf8_lossy(&ran.last_write);
        if s.quit_behind {
            assert!(
                last.ends_with("\r\nQUIT\r\n") && last.contains("line two\r\n"),
                "{}: {last:?}",
                s.name
            );
        } else {
            assert_eq!(last, "QUIT\r\n", "{}", s.name);
        }
    }
}

#[test]
fn cut_or_stall_at_every_byte() {
    let mut total = 0;
    let mut report = Vec::new();
    for s in sessions() {
        let clean = run(&s, Fault::None);
        let (rx, tx) = (clean.sent.len(), clean.model.out.len());
        let mut runs = 0;
        let mut outcomes = [0usize; 4];
        for stall in [false, true] {
            let faults = (0..=rx)
                .map(|at| Fault::Received { at, stall })
                .chain((0..=tx).map(|at| Fault::Sent { at, stall }));
            let replies = if stall { 0 } else { clean.model.replies };
            let faults = faults.chain((0..replies).map(Fault::Reply421));
            let writes = if stall { 0 } else { rx + 1 };
            let faults = faults.chain((0..writes).map(Fault::Written));
            for fault in faults {
                let ran = run(&s, fault);
                if let Err(why) = check(&s, fault, &ran) {
                    panic!("{}: {fault:?}: {why}", s.name);
                }
                for r in &ran.results {
                    let k = match r {
                        Ok(_) => 0,
                        Err(e) => match e.delivery() {
                            Delivery::Unknown => 1,
                            Delivery::NotSent => 2,
                            _ => 3,
                        },
                    };
                    outcomes[k] += 1;
                }
                runs += 1;
            }
        }
        // Each kind of outcome is reached, so the sweep covers them all.
        assert!(
            outcomes[0] > 0 && outcomes[1] > 0 && outcomes[2] > 0,
            "{}: {outcomes:?}",
            s.name
        );
        report.push(format!(
            "{}: {runs} runs ({rx} bytes received, {tx} sent; accepted {}, unknown {}, not sent {}, refused {})",
            s.name, outcomes[0], outcomes[1], outcomes[2], outcomes[3]
        ));
        total += runs;
    }
    println!("core fault sweep: {total} runs\n{}", report.join("\n"));
}
