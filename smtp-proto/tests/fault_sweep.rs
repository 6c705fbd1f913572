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
//! virtual time) without a panic, and every message must end exactly as
//! the server's own record says: the model server logs every reply of each
//! mail transaction (what it answered, its code, where it ends in the
//! output), and the oracle ([`expected`]) works out from that log and from
//! how much of the output reached the client the one outcome the message
//! must have, which the client's result must equal:
//!
//! - a success when the final 2xx reached the client (under LMTP, every
//!   recipient's reply), with exactly the recipients the server accepted and
//!   exactly those it refused;
//! - [`Delivery::Refused`] when a refusal of the message reached the client;
//! - [`Delivery::NotSent`] when a 421 to a command before the end of the
//!   message reached the client (the server closed before taking it), or the
//!   client never transmitted the end;
//! - [`Delivery::Unknown`] when the client transmitted the end and its final
//!   reply did not reach it, with each recipient refused, accepted or
//!   unknown as far as its own replies came.

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

/// What a reply of a mail transaction answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum What {
    Mail,
    Rcpt(String),
    /// DATA's 354 (or its refusal).
    Data,
    /// A BDAT chunk that is not the last.
    Chunk,
    /// The end of the message: SMTP's one reply (`None`), or under LMTP the
    /// reply for this recipient.
    End(Option<String>),
}

/// A reply of a mail transaction as the server sent it: what it answered,
/// its code (421 when the server closed in its place), and the offset in
/// the server's output where it ends.
#[derive(Debug, Clone)]
struct Answer {
    what: What,
    code: u16,
    end: usize,
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
    /// The mail transactions (indexes into `transactions`) whose message the
    /// server took, for at least one recipient.
    stored: Vec<usize>,
    closed: bool,
    /// Replies sent so far (a multiline reply counts once).
    replies: usize,
    /// Answer 421 and close in place of this reply.
    fail_at: Option<usize>,
    /// Each mail transaction (from its MAIL) with every reply the server
    /// sent in it, in order.
    transactions: Vec<Vec<Answer>>,
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
            transactions: Vec::new(),
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

    /// Sends one reply of the current mail transaction and records it.
    fn tx_reply(&mut self, what: What, code: u16, text: &str) -> bool {
        let sent = self.reply(&format!("{code} {text}"));
        let code = if sent { code } else { 421 };
        let end = self.out.len();
        if let Some(tx) = self.transactions.last_mut() {
            tx.push(Answer { what, code, end });
        }
        sent
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
                        self.tx_reply(What::Chunk, 250, "chunk ok");
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
                self.transactions.push(Vec::new());
                self.tx_reply(What::Mail, 250, "sender ok");
            }
            "RCPT" => {
                let addr = line.split(['<', '>']).nth(1).unwrap_or_default().to_owned();
                let what = What::Rcpt(addr.clone());
                if addr.starts_with("refused") {
                    self.tx_reply(what, 550, "5.1.1 no such user");
                } else if self.tx_reply(what, 250, "recipient ok") {
                    self.rcpts.push(addr);
                }
            }
            "DATA" => {
                if self.rcpts.is_empty() {
                    self.tx_reply(What::Data, 554, "no valid recipients");
                } else if self.tx_reply(What::Data, 354, "go ahead") {
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
        let mut delivered = false;
        if self.p.lmtp {
            // Each recipient's delivery is done when its reply goes out.
            for r in rcpts {
                let code = if r.starts_with("full") { 452 } else { 250 };
                if !self.tx_reply(What::End(Some(r.clone())), code, &format!("<{r}> done")) {
                    break;
                }
                delivered |= code == 250;
            }
        } else {
            delivered = self.tx_reply(What::End(None), 250, "2.0.0 queued");
        }
        if let Some(n) = self.transactions.len().checked_sub(1).filter(|_| delivered) {
            self.stored.push(n);
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
                Output::StartTls { .. } => self.client.tls_established(self.now),
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

/// The outcome a message must have, worked out from what the server did and
/// how much of its output reached the client.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    /// A success: the recipients delivered to, and those refused (at RCPT, or
    /// under LMTP by their own reply after the message).
    Sent {
        accepted: Vec<String>,
        refused: Vec<String>,
    },
    /// A failure with this [`Delivery`]; for [`Delivery::Unknown`] with each
    /// recipient's own fate.
    Failed {
        delivery: Delivery,
        recipients: Vec<(String, Delivery)>,
    },
}

/// The expected outcome of message `i` with recipients `to`.
///
/// The client learns the server's replies in order; those that reached it
/// decide:
///
/// - every reply through the end of the message's came: a 2xx to the end
///   (under LMTP, every recipient's reply) is a success with exactly the
///   recipients the server accepted; a refusal of the message is
///   [`Delivery::Refused`];
/// - a 421 to a command before the end came: the server closed before taking
///   the message, [`Delivery::NotSent`];
/// - a 421 to the end of the message (under LMTP to one recipient's): see
///   [`end_421`];
/// - otherwise a reply is missing: [`Delivery::Unknown`] when the client
///   transmitted the end of the message (each recipient: refused or
///   accepted as far as its replies came, else unknown), else
///   [`Delivery::NotSent`].
fn expected(ran: &Ran, i: usize, to: &[&str], end_transmitted: bool) -> Expected {
    let reached = |a: &Answer| ran.delivered >= a.end;
    let replies = ran.model.transactions.get(i).map_or(&[][..], Vec::as_slice);
    let mut rcpt = Vec::new();
    let mut last = Vec::new();
    let mut smtp_end = None;
    for a in replies.iter().take_while(|a| reached(a)) {
        match &a.what {
            What::Mail | What::Chunk | What::Data if a.code == 421 => {
                return not_sent();
            }
            What::Data if a.code >= 400 => return refused(),
            What::Mail | What::Chunk | What::Data => {}
            What::Rcpt(_) if a.code == 421 => return not_sent(),
            What::Rcpt(r) => rcpt.push((r.clone(), a.code)),
            What::End(None) => smtp_end = Some(a.code),
            What::End(Some(r)) => last.push((r.clone(), a.code)),
        }
    }
    let code_of =
        |list: &[(String, u16)], r: &str| list.iter().find(|(a, _)| a == r).map(|(_, c)| *c);
    let accepted_at_rcpt: Vec<&str> = to
        .iter()
        .copied()
        .filter(|r| code_of(&rcpt, r) == Some(250))
        .collect();
    let refused_at_rcpt = || {
        to.iter()
            .copied()
            .filter(|r| code_of(&rcpt, r).is_some_and(|c| c >= 400))
            .map(str::to_owned)
    };
    match smtp_end {
        Some(250) => {
            return Expected::Sent {
                accepted: accepted_at_rcpt.iter().map(|r| (*r).to_owned()).collect(),
                refused: refused_at_rcpt().collect(),
            };
        }
        Some(421) => return end_421(to, &[]),
        Some(_) => return refused(),
        None => {}
    }
    let lmtp_done = !accepted_at_rcpt.is_empty()
        && accepted_at_rcpt
            .iter()
            .all(|r| code_of(&last, r).is_some_and(|c| c != 421));
    if lmtp_done {
        return Expected::Sent {
            accepted: to
                .iter()
                .filter(|r| code_of(&last, r) == Some(250))
                .map(|r| (*r).to_owned())
                .collect(),
            refused: to
                .iter()
                .filter(|r| {
                    code_of(&rcpt, r).is_some_and(|c| c >= 400)
                        || code_of(&last, r).is_some_and(|c| c >= 400)
                })
                .map(|r| (*r).to_owned())
                .collect(),
        };
    }
    if last.iter().any(|(_, c)| *c == 421) {
        let all_answered = accepted_at_rcpt.iter().all(|r| code_of(&last, r).is_some());
        if all_answered {
            return end_421(to, &last);
        }
        return unknown(to, &rcpt, &last);
    }
    if !end_transmitted {
        return not_sent();
    }
    unknown(to, &rcpt, &last)
}

/// A 421 to the end of the message is a refusal (RFC 5321 section 4.1.1.4
/// and section 6.1: a reply came, and it refused). Under LMTP it answers one
/// recipient: those answered before keep their replies, and when it took the
/// place of the last reply awaited the transaction is answered; when other
/// recipients were still waiting, theirs never came, and the message is
/// [`Delivery::Unknown`] for them (the 421's recipient refused), which
/// [`expected`] works out before calling this.
///
/// The outcome when a 421 answered the end of the message (under LMTP, in
/// place of the last reply awaited).
fn end_421(to: &[&str], last: &[(String, u16)]) -> Expected {
    let code_of =
        |list: &[(String, u16)], r: &str| list.iter().find(|(a, _)| a == r).map(|(_, c)| *c);
    let accepted: Vec<String> = to
        .iter()
        .filter(|r| code_of(last, r) == Some(250))
        .map(|r| (*r).to_owned())
        .collect();
    if accepted.is_empty() {
        return refused();
    }
    Expected::Sent {
        refused: to
            .iter()
            .filter(|r| !accepted.iter().any(|a| a == *r))
            .map(|r| (*r).to_owned())
            .collect(),
        accepted,
    }
}

fn unknown(to: &[&str], rcpt: &[(String, u16)], last: &[(String, u16)]) -> Expected {
    let code_of =
        |list: &[(String, u16)], r: &str| list.iter().find(|(a, _)| a == r).map(|(_, c)| *c);
    let recipients = to
        .iter()
        .map(|r| {
            let fate = match (code_of(rcpt, r), code_of(last, r)) {
                (Some(c), _) if c >= 400 => Delivery::Refused,
                (Some(_), Some(250)) => Delivery::Accepted,
                (Some(_), Some(c)) if c >= 400 => Delivery::Refused,
                _ => Delivery::Unknown,
            };
            ((*r).to_owned(), fate)
        })
        .collect();
    Expected::Failed {
        delivery: Delivery::Unknown,
        recipients,
    }
}

fn not_sent() -> Expected {
    Expected::Failed {
        delivery: Delivery::NotSent,
        recipients: Vec::new(),
    }
}

fn refused() -> Expected {
    Expected::Failed {
        delivery: Delivery::Refused,
        recipients: Vec::new(),
    }
}

/// The outcome a message actually had, in the terms of [`Expected`].
fn actual(result: &Result<TransactionResult, Error>) -> Expected {
    match result {
        Ok(t) => Expected::Sent {
            accepted: t.accepted().iter().map(|a| a.as_str().to_owned()).collect(),
            refused: t
                .refused()
                .iter()
                .map(|(a, _)| a.as_str().to_owned())
                .collect(),
        },
        Err(e) => Expected::Failed {
            delivery: e.delivery(),
            recipients: match e {
                Error::Uncertain { recipients, .. } => recipients
                    .iter()
                    .map(|r| (r.address.clone(), r.delivery))
                    .collect(),
                _ => Vec::new(),
            },
        },
    }
}

/// Checks one run; `Err` says what broke.
fn check(s: &Session, ran: &Ran) -> Result<(), String> {
    if ran.elapsed > TIMEOUT {
        return Err(format!("took {:?} of virtual time", ran.elapsed));
    }
    // The ends of messages the client transmitted, as a server reading all of
    // it without a fault would count them.
    let mut full = Model::new(s.profile, None);
    full.feed(&ran.sent);
    let ends_transmitted = full.ends;
    for (i, result) in ran.results.iter().enumerate() {
        let (to, _) = &s.messages[i];
        let want = expected(ran, i, to, i < ends_transmitted);
        let got = actual(result);
        if got != want {
            return Err(format!(
                "message {i}: expected {want:?}, got {got:?}: {result:?}"
            ));
        }
        // What the oracle worked out agrees with what the server stored.
        let stored = ran.model.stored.contains(&i);
        if matches!(&want, Expected::Sent { .. }) && !stored {
            return Err(format!("message {i}: sent, but the server has nothing"));
        }
        if want == not_sent() && stored {
            return Err(format!("message {i}: not sent, but the server has it"));
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
        check(&s, &ran).unwrap();
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
                if let Err(why) = check(&s, &ran) {
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
