//! Transcript tests: each file in `tests/transcripts/` is a session written as the
//! protocol reads. The runner plays it against the core with a virtual clock, once
//! with every server block fed whole, once byte by byte and once in each of a few
//! chunk sizes; every run must produce exactly the bytes and events written.
//!
//! Syntax, one item a line:
//! - `config key=value ...` (first lines): protocol=lmtp, pipelining=false,
//!   chunking=false, require_tls=true, tls_on_connect=true, timeout=SECS,
//!   max_line=N, max_lines=N, trace=true, line_endings=reject, local=NAME,
//!   max_auth_rounds=N, max_bdat=N, loopback_peer=true, allow_plaintext_auth=true,
//!   tls_verified=false
//! - `S: text` a server line (CRLF appended); `S~ text` raw server bytes with
//!   escapes (`\r \n \t \\ \" \xNN`), no CRLF appended. Consecutive server lines
//!   are one block.
//! - `C: text` an expected client line (CRLF appended); `C~ raw` raw bytes.
//!   Consecutive client lines are compared, together, with everything transmitted
//!   since the previous comparison.
//! - `> op args` an operation or driver action (see `run_op`).
//! - `= text` the next expected event, as rendered by `render_event`.
//! - `? check` a query: `deadline SECS`, `deadline none`, `tls`, `not-tls`,
//!   `closed`, `open`, `has EXT`, `esmtp`, `no-esmtp`, `authenticated`,
//!   `not-authenticated`, `tls-verified`, `tls-unverified`, `may-send-secret`,
//!   `no-secret`, `in-transaction`, `not-in-transaction`, `delivery not-sent|accepted|refused|unknown` (what
//!   the last completed transaction, or failed operation, says of its message).
//!
//! At the end no transmitted byte and no event may be left unchecked.
//!
//! The AUTH exchanges (`auth_*`, `login_*`) run as over a loopback peer
//! (`config loopback_peer=true`), where a secret may go in plaintext; the rule
//! that keeps it off other plaintext connections has its own files
//! (`plaintext_auth_*`) and `tests/plaintext_auth.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use smtp_sansio::client::Outcome;
use smtp_sansio::sasl::{CramMd5, Login, OAuthBearer, Plain, ScramSha256, XOAuth2};
use smtp_sansio::{
    Address, Client, Config, Credentials, Delivery, Domain, Error, Event, LineEndings, Output,
    Parameter, Protocol, Recipient, Secret, Stage, Text, Timeouts, Trace, Transaction, Verb,
};

fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            i += 1;
            match b[i] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'0' => out.push(0),
                b'x' => {
                    let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(h, 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    out
}

/// Splits arguments on spaces, keeping "quoted strings" (with escapes) whole.
fn words(s: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut had_quote = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                cur.push('\\');
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => {
                quoted = !quoted;
                had_quote = true;
            }
            ' ' if !quoted => {
                if !cur.is_empty() || had_quote {
                    out.push(unescape(&cur));
                }
                cur.clear();
                had_quote = false;
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() || had_quote {
        out.push(unescape(&cur));
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn render_error(e: &Error) -> String {
    let code = |r: &smtp_sansio::Reply| r.code().to_string();
    // Each refusal names its stage.
    let stage = match e {
        Error::SenderRefused { .. } => Some(Stage::Mail),
        Error::RecipientsRefused(_) => Some(Stage::Rcpt),
        Error::DataRefused(_) => Some(Stage::Data),
        _ => e.stage(),
    };
    assert_eq!(e.stage(), stage, "stage of {e:?}");
    match e {
        Error::Protocol(p) => {
            let name = format!("{p:?}");
            let name = name.split(['(', ' ', '{']).next().unwrap_or("").to_owned();
            format!("Protocol {name}")
        }
        Error::Usage(u) => {
            let name = format!("{u:?}");
            let name = name.split(['(', ' ', '{']).next().unwrap_or("").to_owned();
            match u {
                smtp_sansio::UsageError::NotSupported(x) => format!("Usage NotSupported {x}"),
                _ => format!("Usage {name}"),
            }
        }
        Error::Security(smtp_sansio::SecurityError::PlaintextAuth { mechanism }) => {
            format!("Security PlaintextAuth {mechanism}")
        }
        Error::Security(s) => format!("Security {s:?}"),
        Error::Disconnected => "Disconnected".into(),
        Error::Timeout(_) => "Timeout".into(),
        Error::ServiceClosing {
            reply,
            recipients,
            final_replies,
            end_of_message,
            ..
        } => {
            let mut s = format!("ServiceClosing {}", code(reply));
            if let Some(stage) = e.stage() {
                s.push_str(&format!(" during={}", format!("{stage:?}").to_lowercase()));
            }
            if *end_of_message {
                s.push_str(" end");
            }
            let list = |v: &[(String, smtp_sansio::Reply)]| {
                let v: Vec<String> = v.iter().map(|(a, r)| format!("{a}:{}", r.code())).collect();
                v.join(",")
            };
            if !recipients.is_empty() {
                s.push_str(&format!(" rcpts={}", list(recipients)));
            }
            if !final_replies.is_empty() {
                s.push_str(&format!(" finals={}", list(final_replies)));
            }
            s
        }
        Error::ConnectRefused(r) => format!("ConnectRefused {}", code(r)),
        Error::HeloRefused(r) => format!("HeloRefused {}", code(r)),
        Error::AuthFailed(r) => format!("AuthFailed {}", code(r)),
        Error::NoAuthMechanism(_) => "NoAuthMechanism".into(),
        Error::Mechanism(_) => "Mechanism".into(),
        Error::StartTlsRefused(r) => format!("StartTlsRefused {}", code(r)),
        Error::SenderRefused { reply, sender } => format!("SenderRefused {sender} {}", code(reply)),
        Error::RecipientsRefused(map) => {
            let m: Vec<String> = map
                .iter()
                .map(|(a, r)| format!("{a}:{}", r.code()))
                .collect();
            format!("RecipientsRefused {}", m.join(","))
        }
        Error::DataRefused(r) => format!("DataRefused {}", code(r)),
        Error::Refused(r) => format!("Refused {}", code(r)),
        Error::Uncertain { cause, recipients } => {
            assert_eq!(e.delivery(), Delivery::Unknown);
            let mut s = format!("Uncertain ({})", render_error(cause));
            if !recipients.is_empty() {
                let v: Vec<String> = recipients
                    .iter()
                    .map(|r| {
                        let d = format!("{:?}", r.delivery).to_lowercase();
                        match &r.reply {
                            Some(reply) => format!("{}:{d}/{}", r.address, reply.code()),
                            None => format!("{}:{d}", r.address),
                        }
                    })
                    .collect();
                s.push_str(&format!(" {}", v.join(",")));
            }
            s
        }
        other => format!("{other:?}"),
    }
}

fn render_event(e: &Event) -> String {
    match e {
        Event::BodyWanted { id } => format!("#{} body", id_num(*id)),
        Event::Completed { id, result } => {
            let r = match result {
                Ok(Outcome::Reply(r)) => format!("ok {}", r.code()),
                Ok(Outcome::Replies(v)) => {
                    let codes: Vec<String> = v.iter().map(|r| r.code().to_string()).collect();
                    format!("ok [{}]", codes.join(" "))
                }
                Ok(Outcome::Transaction(t)) => {
                    let mut s = String::from("ok sent");
                    if t.chunked {
                        s.push_str(" bdat");
                    }
                    match &t.final_reply {
                        Some(r) => s.push_str(&format!(" {}", r.code())),
                        None => {
                            for r in &t.recipients {
                                let code = r.final_reply.as_ref().map_or(0, |x| x.code());
                                s.push_str(&format!(
                                    " {}:{}/{}",
                                    r.address,
                                    r.rcpt_reply.code(),
                                    code
                                ));
                            }
                        }
                    }
                    let refused: Vec<String> = t
                        .refused()
                        .iter()
                        .map(|(a, r)| format!("{a}:{}", r.code()))
                        .collect();
                    if !refused.is_empty() {
                        s.push_str(&format!(" refused={}", refused.join(",")));
                    }
                    s
                }
                Ok(other) => format!("ok {other:?}"),
                Err(e) => format!("err {}", render_error(e)),
            };
            format!("#{} {r}", id_num(*id))
        }
    }
}

fn id_num(id: smtp_sansio::OpId) -> String {
    let s = format!("{id:?}");
    s.trim_start_matches("OpId(")
        .trim_end_matches(')')
        .to_owned()
}

struct Run {
    client: Client,
    now: Instant,
    sent: Vec<u8>,
    events: VecDeque<String>,
    feed: usize,
    trace: bool,
    writes: usize,
    last_writes: usize,
    closed_seen: bool,
    /// The delivery said by the last completed transaction or failed operation.
    last_delivery: Option<Delivery>,
    /// The length of the last `Output::Transmit`.
    last_transmit: usize,
}

impl Run {
    fn drain(&mut self) {
        loop {
            match self.client.poll_output() {
                Output::Transmit(b) => {
                    self.sent.extend_from_slice(&b);
                    self.writes += 1;
                    self.last_transmit = b.len();
                }
                Output::Event(e) => {
                    match &e {
                        Event::Completed {
                            result: Ok(Outcome::Transaction(_)),
                            ..
                        } => self.last_delivery = Some(Delivery::Accepted),
                        Event::Completed { result: Err(e), .. } => {
                            self.last_delivery = Some(e.delivery());
                        }
                        _ => {}
                    }
                    let body = matches!(e, Event::BodyWanted { .. });
                    self.events.push_back(render_event(&e));
                    if body {
                        // A driver answers BodyWanted before polling on, so the
                        // body joins whatever is still unsent in one write.
                        return;
                    }
                }
                Output::StartTls { .. } => self.events.push_back("starttls".into()),
                Output::Trace(t) => {
                    if self.trace {
                        self.events.push_back(match t {
                            Trace::Sent(s) => format!("C: {s}"),
                            Trace::Received(s) => format!("S: {s}"),
                        });
                    }
                }
                Output::Wait(_) => return,
                Output::Closed => {
                    if !self.closed_seen {
                        self.closed_seen = true;
                        self.events.push_back("closed".into());
                    }
                    return;
                }
            }
        }
    }

    fn server(&mut self, bytes: &[u8]) {
        let step = if self.feed == 0 {
            bytes.len().max(1)
        } else {
            self.feed
        };
        for chunk in bytes.chunks(step) {
            self.client.handle_input(self.now, chunk);
            self.drain();
        }
    }
}

fn config_from(line: &str) -> (Config, bool) {
    let mut cfg = Config::new(Domain::new("client.example").unwrap());
    let mut trace = false;
    for kv in line.split_whitespace() {
        let (k, v) = kv.split_once('=').unwrap_or((kv, "true"));
        match k {
            "protocol" => {
                cfg.protocol = if v == "lmtp" {
                    Protocol::Lmtp
                } else {
                    Protocol::Smtp
                }
            }
            "pipelining" => cfg.pipelining = v == "true",
            "chunking" => cfg.chunking = v == "true",
            "require_tls" => cfg.require_tls = v == "true",
            "tls_on_connect" => cfg.tls_on_connect = v == "true",
            "tls_verified" => cfg.tls_verified = v == "true",
            "loopback_peer" => cfg.loopback_peer = v == "true",
            "allow_plaintext_auth" => cfg.allow_plaintext_auth = v == "true",
            "timeout" => cfg.timeouts = Timeouts::uniform(Duration::from_secs(v.parse().unwrap())),
            "max_line" => cfg.reply_limits.max_line_len = v.parse().unwrap(),
            "max_lines" => cfg.reply_limits.max_lines = v.parse().unwrap(),
            "max_total" => cfg.reply_limits.max_total = v.parse().unwrap(),
            "max_auth_rounds" => cfg.max_auth_rounds = v.parse().unwrap(),
            "max_bdat" => cfg.max_bdat_in_flight = v.parse().unwrap(),
            "line_endings" => {
                cfg.line_endings = match v {
                    "reject" => LineEndings::Reject,
                    "binary" => LineEndings::Binary,
                    _ => LineEndings::Normalize,
                }
            }
            "local" => cfg.local_name = Domain::new(v).unwrap(),
            "trace" => {
                cfg.trace = v == "true";
                trace = cfg.trace;
            }
            other => panic!("unknown config key {other}"),
        }
    }
    (cfg, trace)
}

fn s(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

fn run_op(r: &mut Run, args: &[Vec<u8>]) {
    let now = r.now;
    let c = &mut r.client;
    let name = s(&args[0]);
    let arg = |i: usize| args.get(i).map(|a| s(a).to_owned());
    let noir = args.iter().any(|a| a == b"noir");
    match name {
        "ehlo" => {
            let _ = c.ehlo(now, arg(1).map(|n| Domain::new(n).unwrap()));
        }
        "helo" => {
            let _ = c.helo(now, arg(1).map(|n| Domain::new(n).unwrap()));
        }
        "hello" => {
            let _ = c.ehlo_or_helo_if_needed(now);
        }
        "starttls" => {
            let _ = c.starttls(now);
        }
        "tls" => c.tls_established(now),
        "eof" => c.handle_eof(now),
        // write_error N | -N | all: the last write failed after N bytes, all
        // but N bytes, or all of them were accepted.
        "write_error" => {
            let n = arg(1).unwrap();
            let written = match (n.as_str(), n.strip_prefix('-')) {
                ("all", _) => r.last_transmit,
                (_, Some(k)) => r.last_transmit - k.parse::<usize>().unwrap(),
                (n, None) => n.parse().unwrap(),
            };
            c.handle_write_error(now, written);
        }
        "wait" => {
            r.now += Duration::from_secs(arg(1).unwrap().parse().unwrap());
            r.client.handle_timeout(r.now);
        }
        "login" => {
            let _ = c.login(
                now,
                Credentials::new(arg(1).unwrap(), arg(2).unwrap()),
                !noir,
            );
        }
        "auth" => {
            let creds = || Credentials::new(arg(2).unwrap(), arg(3).unwrap());
            let mech: Box<dyn smtp_sansio::Mechanism> = match arg(1).unwrap().as_str() {
                "plain" => Box::new(Plain::new(creds())),
                "login" => Box::new(Login::new(creds())),
                "cram-md5" => Box::new(CramMd5::new(creds())),
                "xoauth2" => Box::new(XOAuth2::new(arg(2).unwrap(), Secret::new(arg(3).unwrap()))),
                "oauthbearer" => Box::new(OAuthBearer::new(
                    arg(2).unwrap(),
                    Secret::new(arg(3).unwrap()),
                )),
                // auth scram-sha-256 USER PASSWORD CLIENT-NONCE
                "scram-sha-256" => Box::new(ScramSha256::with_nonce(creds(), arg(4).unwrap())),
                m => panic!("unknown mechanism {m}"),
            };
            let _ = c.auth(now, mech, !noir);
        }
        "send" => {
            let from = Address::new(arg(1).unwrap()).unwrap();
            let to: Vec<Address> = arg(2)
                .unwrap()
                .split(',')
                .map(|a| Address::new(a).unwrap())
                .collect();
            let mut tx = Transaction::new(from, to);
            for a in &args[3..] {
                let a = s(a);
                if let Some(p) = a.strip_prefix("mail=") {
                    tx = tx.mail_params([Parameter::parse(p).unwrap()]);
                } else if let Some(p) = a.strip_prefix("rcpt=") {
                    tx = tx.rcpt_params(&[Parameter::parse(p).unwrap()]);
                } else if let Some(n) = a.strip_prefix("size=") {
                    tx = tx.size(n.parse().unwrap());
                } else if let Some(p) = a.strip_prefix("rcpt0=") {
                    tx.to[0].params.push(Parameter::parse(p).unwrap());
                } else {
                    panic!("unknown send argument {a}");
                }
            }
            let _ = c.send(now, tx);
        }
        "send_raw_rcpts" => {
            // Recipients with per-recipient parameters: ADDR[&PARAM...] ...
            let from = Address::new(arg(1).unwrap()).unwrap();
            let mut tx = Transaction::new(from, []);
            for a in &args[2..] {
                let mut parts = s(a).split('&');
                let mut rc = Recipient::new(Address::new(parts.next().unwrap()).unwrap());
                rc.params = parts.map(|p| Parameter::parse(p).unwrap()).collect();
                tx.to.push(rc);
            }
            let _ = c.send(now, tx);
        }
        "body" => {
            let last = args.iter().skip(2).any(|a| a == b"last");
            let res = c.send_body(now, &args[1], last);
            if let Err(e) = res {
                r.events
                    .push_back(format!("send_body err {}", render_error(&Error::Usage(e))));
            }
        }
        "mail" | "rcpt" => {
            let addr = Address::new(arg(1).unwrap()).unwrap();
            let params = args[2..]
                .iter()
                .map(|p| Parameter::parse(s(p)).unwrap())
                .collect();
            let _ = if name == "mail" {
                c.mail(now, addr, params)
            } else {
                c.rcpt(now, addr, params)
            };
        }
        "data" => {
            let _ = c.data(now);
        }
        "rset" => {
            let _ = c.rset(now);
        }
        "noop" => {
            let _ = c.noop(now);
        }
        "vrfy" => {
            let _ = c.verify(now, Text::new(arg(1).unwrap()).unwrap());
        }
        "expn" => {
            let _ = c.expn(now, Text::new(arg(1).unwrap()).unwrap());
        }
        "help" => {
            let _ = c.help(now, arg(1).map(|t| Text::new(t).unwrap()));
        }
        "docmd" => {
            let rest: Vec<String> = args[2..].iter().map(|a| s(a).to_owned()).collect();
            let argtext = if rest.is_empty() {
                None
            } else {
                Some(Text::new(rest.join(" ")).unwrap())
            };
            let _ = c.docmd(now, Verb::new(&arg(1).unwrap()).unwrap(), argtext);
        }
        "quit" => {
            let _ = c.quit(now);
        }
        other => panic!("unknown op {other}"),
    }
    r.drain();
}

fn check(r: &mut Run, q: &str) {
    let c = &r.client;
    let mut it = q.split_whitespace();
    match (it.next().unwrap(), it.next()) {
        ("deadline", Some("none")) => assert_eq!(c.deadline(), None, "deadline"),
        ("deadline", Some(secs)) => assert_eq!(
            c.deadline(),
            Some(r.now + Duration::from_secs(secs.parse().unwrap())),
            "deadline"
        ),
        ("tls", None) => assert!(c.is_tls()),
        ("not-tls", None) => assert!(!c.is_tls()),
        ("closed", None) => assert!(c.is_closed()),
        ("open", None) => assert!(!c.is_closed()),
        ("esmtp", None) => assert!(c.does_esmtp()),
        ("delivery", Some(d)) => {
            let got = r.last_delivery.map(|d| format!("{d:?}").to_lowercase());
            assert_eq!(
                got.as_deref(),
                Some(d.replace('-', "").as_str()),
                "delivery"
            );
        }
        ("authenticated", None) => assert!(c.is_authenticated()),
        ("not-authenticated", None) => assert!(!c.is_authenticated()),
        ("tls-verified", None) => assert!(c.is_tls_verified()),
        ("tls-unverified", None) => assert!(c.is_tls() && !c.is_tls_verified()),
        ("may-send-secret", None) => assert!(c.may_send_secret()),
        ("no-secret", None) => assert!(!c.may_send_secret()),
        ("no-esmtp", None) => assert!(!c.does_esmtp()),
        ("in-transaction", None) => assert!(c.in_transaction(), "in transaction"),
        ("not-in-transaction", None) => assert!(!c.in_transaction(), "not in transaction"),
        ("writes", Some(n)) => assert_eq!(r.last_writes.to_string(), n, "writes"),
        ("has", Some(ext)) => assert!(c.has_extn(ext), "has {ext}"),
        ("hasnt", Some(ext)) => assert!(!c.has_extn(ext), "hasn't {ext}"),
        (other, _) => panic!("unknown check {other}"),
    }
}

fn run_file(name: &str, source: &str, feed: usize) {
    let lines: Vec<&str> = source.lines().collect();
    let mut cfg_line = String::new();
    for l in &lines {
        if let Some(rest) = l.strip_prefix("config ") {
            cfg_line.push_str(rest);
            cfg_line.push(' ');
        }
    }
    let (cfg, trace) = config_from(&cfg_line);
    let now = Instant::now();
    let mut r = Run {
        client: Client::new(cfg, now),
        now,
        sent: Vec::new(),
        events: VecDeque::new(),
        feed,
        trace,
        writes: 0,
        last_writes: 0,
        closed_seen: false,
        last_delivery: None,
        last_transmit: 0,
    };
    r.drain();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let line_no = i + 1;
        let ctx = || format!("{name} line {line_no} (feed {feed})");
        if line.starts_with("S:") || line.starts_with("S~") {
            let mut block = Vec::new();
            while i < lines.len() && (lines[i].starts_with("S:") || lines[i].starts_with("S~")) {
                let l = lines[i];
                if let Some(t) = l.strip_prefix("S: ").or_else(|| l.strip_prefix("S:")) {
                    block.extend_from_slice(&unescape(t));
                    block.extend_from_slice(b"\r\n");
                } else {
                    block.extend_from_slice(&unescape(l[2..].trim_start()));
                }
                i += 1;
            }
            r.server(&block);
            continue;
        }
        if line.starts_with("C:") || line.starts_with("C~") {
            let mut block = Vec::new();
            while i < lines.len() && (lines[i].starts_with("C:") || lines[i].starts_with("C~")) {
                let l = lines[i];
                if let Some(t) = l.strip_prefix("C: ").or_else(|| l.strip_prefix("C:")) {
                    block.extend_from_slice(&unescape(t));
                    block.extend_from_slice(b"\r\n");
                } else {
                    block.extend_from_slice(&unescape(l[2..].trim_start()));
                }
                i += 1;
            }
            assert_eq!(text(&r.sent), text(&block), "client bytes at {}", ctx());
            r.sent.clear();
            r.last_writes = r.writes;
            r.writes = 0;
            continue;
        }
        if let Some(op) = line.strip_prefix("> ") {
            // Bytes sent before an operation must have been checked already.
            assert!(
                r.sent.is_empty(),
                "unchecked client bytes {:?} before {}",
                text(&r.sent),
                ctx()
            );
            run_op(&mut r, &words(op));
        } else if let Some(ev) = line.strip_prefix("= ") {
            let got = r.events.pop_front();
            assert_eq!(
                got.as_deref().map(str::trim_end),
                Some(ev.trim_end()),
                "event at {}",
                ctx()
            );
        } else if let Some(q) = line.strip_prefix("? ") {
            check(&mut r, q);
        } else if !(line.trim().is_empty()
            || line.starts_with('#')
            || line.starts_with("config ")
            || line.trim() == "feeds whole")
        {
            panic!("cannot read {:?} at {}", line, ctx());
        }
        i += 1;
    }
    assert!(
        r.sent.is_empty(),
        "{name} (feed {feed}): unchecked client bytes {:?}",
        text(&r.sent)
    );
    assert!(
        r.events.is_empty(),
        "{name} (feed {feed}): unchecked events {:?}",
        r.events
    );
}

fn run_all_feeds(name: &str, source: &str) {
    let whole_only = source.lines().any(|l| l.trim() == "feeds whole");
    let feeds: &[usize] = if whole_only {
        &[0]
    } else {
        &[0, 1, 2, 3, 7, 64]
    };
    for &feed in feeds {
        run_file(name, source, feed);
    }
}

macro_rules! transcripts {
    ($($name:ident),* $(,)?) => {
        /// The transcripts run, by name.
        const LISTED: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                run_all_feeds(
                    stringify!($name),
                    include_str!(concat!("transcripts/", stringify!($name), ".txt")),
                );
            }
        )*
    };
}

/// A transcript file that is not in the list below would never run.
#[test]
fn every_transcript_file_is_listed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let unlisted: Vec<&String> = files
        .iter()
        .filter(|f| !LISTED.contains(&f.as_str()))
        .collect();
    let missing: Vec<&&str> = LISTED
        .iter()
        .filter(|n| !files.iter().any(|f| f == *n))
        .collect();
    assert!(
        unlisted.is_empty() && missing.is_empty(),
        "files not in the list: {unlisted:?}; listed without a file: {missing:?}"
    );
}

transcripts!(
    auth_bad_base64,
    auth_cram_md5,
    auth_login,
    auth_login_noir,
    auth_no_mechanism,
    auth_not_offered,
    auth_oauthbearer,
    auth_plain,
    auth_plain_noir,
    auth_scram_sha_256,
    auth_scram_sha_256_bad_signature,
    auth_scram_sha_256_low_iterations,
    auth_scram_sha_256_no_server_signature,
    auth_scram_sha_256_noir,
    auth_scram_sha_256_server_error,
    auth_too_many_rounds,
    auth_xoauth2_error,
    batch_421_after_end,
    batch_bdat,
    batch_eof_after_first,
    batch_final_refused,
    batch_lmtp,
    batch_one_ahead,
    batch_pipelined_data,
    batch_without_pipelining,
    bdat_failure_midstream,
    bdat_pipelined,
    bdat_stream,
    bdat_refused_while_body_wanted,
    bdat_empty_chunk_traced,
    bdat_window,
    binarymime,
    body_chunk_boundaries,
    body_reject_bare_lf,
    data_refused,
    data_refused_then_eof,
    delivery_bdat_chunks,
    delivery_bdat_last,
    delivery_bdat_pipelined_421_to_mail,
    delivery_bdat_pipelined_eof,
    delivery_envelope_eof,
    delivery_eof_after_dot,
    delivery_lmtp_eof_after_dot,
    delivery_low_level_data,
    delivery_malformed_after_dot,
    dsn,
    dsn_not_offered,
    enhanced_and_bare_lf_replies,
    eof_during_data,
    eof_idle,
    explicit_hello,
    final_refused,
    greeting_421,
    greeting_refused,
    helo_fallback,
    helo_refused,
    implicit_tls_required,
    lmtp_421_after_body,
    lmtp_421_before_last_reply,
    lmtp_421_in_the_middle,
    lmtp_low_level_421_first_of_two,
    lmtp_low_level_421_one_recipient,
    data_low_level_421_before_354,
    data_low_level_two_recipients,
    lmtp_low_level_one_recipient,
    lmtp_421_only_recipient,
    lmtp_all_fail_after_dot,
    lmtp_bdat,
    lmtp_lhlo_refused,
    lmtp_low_level,
    lmtp_per_recipient,
    login_order_and_fallback,
    low_level_421,
    low_level_commands,
    low_level_mail_rcpt_after_helo,
    low_level_mail_rcpt_checks,
    low_level_mail_rcpt_smtputf8,
    malformed_reply,
    ops_after_quit,
    plaintext_auth_after_starttls,
    plaintext_auth_allowed,
    plaintext_auth_allowed_unverified,
    plaintext_auth_implicit_tls,
    plaintext_auth_implicit_unverified,
    plaintext_auth_login_refused,
    plaintext_auth_loopback,
    plaintext_auth_mechanisms_refused,
    plaintext_auth_unverified_starttls,
    queued_before_greeting,
    quit_after_end_written,
    quit_behind_another_operation,
    quit_behind_without_pipelining,
    quit_pipelined_421,
    quit_pipelined_bdat,
    quit_pipelined_data,
    quit_pipelined_eof,
    quit_pipelined_eof_after_final,
    quit_pipelined_final_deferred,
    quit_pipelined_final_refused,
    quit_pipelined_lmtp,
    quit_pipelined_recipients_refused,
    quit_pipelined_sender_refused,
    quit_pipelined_timeout,
    recipients_partly_answered_then_eof,
    recipients_refused,
    recipients_refused_data_accepted,
    recipients_refused_pipelined,
    recipients_refused_pipelined_then_eof,
    recipients_refused_then_eof,
    reply_221_to_noop,
    reply_421_after_body,
    reply_421_midsession,
    reply_421_to_data,
    reply_421_to_mail,
    reply_421_to_rcpt,
    reply_421_to_rcpt_pipelined,
    reply_inconsistent_code,
    reply_line_too_long,
    reply_too_many_lines,
    require_tls_blocks_plaintext,
    require_tls_low_level,
    requiretls,
    requiretls_plaintext,
    send_pipelined,
    send_plain,
    sender_refused,
    sender_refused_pipelined,
    sender_refused_pipelined_then_eof,
    sender_refused_then_421,
    sender_refused_then_eof,
    sender_refused_then_timeout,
    size_too_large,
    smtputf8,
    smtputf8_not_offered,
    smuggling,
    starttls,
    starttls_data_before_handshake,
    starttls_injection,
    starttls_not_offered,
    starttls_refused,
    starttls_refused_required,
    starttls_required_not_offered,
    timeout_greeting,
    timeout_uniform,
    timeouts_per_command,
    unsolicited_421,
    unsolicited_reply,
    write_error_after_dot,
    write_error_bdat_last_partial,
    write_error_before_end,
    write_error_final_dot_partial,
    write_error_quit_behind_dot,
    write_error_rset_after_refusal,
);
