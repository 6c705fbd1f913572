//! The client fed arbitrary operations interleaved with arbitrary server bytes,
//! EOFs, timeouts and TLS completions. Asserts: no panic; the pending output
//! stays bounded; no bare CR or LF ever reaches the wire (so no command can be
//! split or injected); a closed session stays closed.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smtp_sansio::sasl::{Credentials, Plain};
use smtp_sansio::{Address, Client, Config, Domain, Event, Output, Protocol, Text, Transaction, Verb};

#[derive(Debug, Arbitrary)]
enum Action {
    Server(Vec<u8>),
    ServerReply(u16, bool, String),
    Eof,
    Advance(u16),
    TlsDone,
    Ehlo,
    Helo,
    Hello,
    StartTls,
    Login(String, String, bool),
    Auth(bool),
    Send(String, Vec<String>, Vec<String>, Option<u32>),
    Body(Vec<u8>, bool),
    Mail(String),
    Rcpt(String),
    Data,
    Rset,
    Noop,
    Vrfy(String),
    Docmd(String, String),
    Quit,
}

#[derive(Debug, Arbitrary)]
struct Session {
    lmtp: bool,
    pipelining: bool,
    chunking: bool,
    require_tls: bool,
    actions: Vec<Action>,
}

struct Wire {
    last: u8,
    total: usize,
}

impl Wire {
    fn check(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.last == b'\r' {
                assert_eq!(b, b'\n', "bare CR on the wire");
            } else {
                assert_ne!(b, b'\n', "bare LF on the wire");
            }
            self.last = b;
        }
        self.total += bytes.len();
    }
}

fn drain(client: &mut Client, wire: &mut Wire, closed: &mut bool) {
    for _ in 0..10_000 {
        match client.poll_output() {
            Output::Transmit(b) => {
                assert!(b.len() <= 1 << 20, "unbounded pending output");
                wire.check(&b);
            }
            Output::Event(Event::BodyWanted { .. }) | Output::Event(Event::Completed { .. }) => {}
            Output::StartTls { .. } | Output::Trace(_) => {}
            Output::Wait(_) => {
                assert!(!*closed || client.is_closed());
                return;
            }
            Output::Closed => {
                *closed = true;
                return;
            }
        }
    }
    panic!("poll_output never said wait");
}

fuzz_target!(|s: Session| {
    let mut config = Config::new(Domain::new("fuzz.example").unwrap());
    config.protocol = if s.lmtp { Protocol::Lmtp } else { Protocol::Smtp };
    config.pipelining = s.pipelining;
    config.chunking = s.chunking;
    config.require_tls = s.require_tls;
    config.trace = true;
    // As to a local peer, so that AUTH exchanges start in plaintext and get fuzzed.
    config.loopback_peer = true;
    let mut now = Instant::now();
    let mut client = Client::new(config, now);
    let mut wire = Wire { last: 0, total: 0 };
    let mut closed = false;
    for action in s.actions.into_iter().take(200) {
        match action {
            Action::Server(bytes) => client.handle_input(now, &bytes),
            Action::ServerReply(code, more, text) => {
                let code = 200 + code % 400;
                let line = format!("{code}{}{}\r\n", if more { '-' } else { ' ' }, text.replace(['\r', '\n'], ""));
                client.handle_input(now, line.as_bytes());
            }
            Action::Eof => client.handle_eof(now),
            Action::Advance(secs) => {
                now += Duration::from_secs(u64::from(secs));
                client.handle_timeout(now);
            }
            Action::TlsDone => client.tls_established(now),
            Action::Ehlo => {
                let _ = client.ehlo(now, None);
            }
            Action::Helo => {
                let _ = client.helo(now, None);
            }
            Action::Hello => {
                let _ = client.ehlo_or_helo_if_needed(now);
            }
            Action::StartTls => {
                let _ = client.starttls(now);
            }
            Action::Login(u, p, ir) => {
                let _ = client.login(now, Credentials::new(u, p), ir);
            }
            Action::Auth(ir) => {
                let _ = client.auth(now, Box::new(Plain::new(Credentials::new("u", "p"))), ir);
            }
            Action::Send(from, to, opts, size) => {
                if let Ok(mut tx) = Transaction::from_strs(&from, &to, &opts, &[] as &[&str]) {
                    if let Some(n) = size {
                        tx = tx.size(u64::from(n));
                    }
                    let _ = client.send(now, tx);
                }
            }
            Action::Body(chunk, last) => {
                let _ = client.send_body(now, &chunk, last);
            }
            Action::Mail(a) => {
                if let Ok(a) = Address::new(&a) {
                    let _ = client.mail(now, a, Vec::new());
                }
            }
            Action::Rcpt(a) => {
                if let Ok(a) = Address::new(&a) {
                    let _ = client.rcpt(now, a, Vec::new());
                }
            }
            Action::Data => {
                let _ = client.data(now);
            }
            Action::Rset => {
                let _ = client.rset(now);
            }
            Action::Noop => {
                let _ = client.noop(now);
            }
            Action::Vrfy(t) => {
                if let Ok(t) = Text::new(t) {
                    let _ = client.verify(now, t);
                }
            }
            Action::Docmd(v, a) => {
                if let (Ok(v), Ok(a)) = (Verb::new(&v), Text::new(a)) {
                    let _ = client.docmd(now, v, Some(a));
                }
            }
            Action::Quit => {
                let _ = client.quit(now);
            }
        }
        drain(&mut client, &mut wire, &mut closed);
    }
});
