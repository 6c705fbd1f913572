//! One scenario table for every adapter: the same servers, the same client
//! steps and the same expected results, so that a behaviour cannot differ
//! between runtimes without a test failing. An adapter implements [`Adapter`]
//! (one method per step) and calls [`run_all`].

use std::time::Duration;

use crate::{Fault, FaultAction, MockServer, Script, ServerConfig, ServerTls, Step};

/// How a scenario connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    /// TCP, SMTP.
    Plain,
    /// TCP with TLS from the first byte, trusting the server's test CA.
    ImplicitTls,
    /// LMTP over the server's Unix socket.
    LmtpUnix,
}

/// One client step.
#[derive(Debug, Clone)]
pub enum Act {
    /// Connect with these options changes applied.
    Connect(Connect, Tweak),
    /// STARTTLS, trusting the server's test CA for `localhost`.
    StartTls,
    /// `login(user, password)`.
    Login(&'static str, &'static str),
    /// `sendmail(from, to, message, mail_options, [])`.
    Sendmail(
        &'static str,
        &'static [&'static str],
        &'static [u8],
        &'static [&'static str],
    ),
    /// `send_message(message)` with the envelope from the headers.
    SendMessage(&'static [u8]),
    /// NOOP.
    Noop,
    /// VRFY.
    Verify(&'static str),
    /// QUIT.
    Quit,
}

/// Option changes for [`Act::Connect`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tweak {
    /// `Options::require_tls`.
    pub require_tls: bool,
    /// the opposite of `Options::chunking`.
    pub no_chunking: bool,
    /// the opposite of `Options::pipelining`.
    pub no_pipelining: bool,
    /// `Options::timeout` in milliseconds (default 10 s).
    pub timeout_ms: Option<u64>,
}

impl Tweak {
    /// The options for a connection.
    #[must_use]
    pub fn options(&self) -> smtp_adapter::Options {
        let mut o = smtp_adapter::Options::default();
        o.require_tls = self.require_tls;
        o.chunking = !self.no_chunking;
        o.pipelining = !self.no_pipelining;
        o.timeout = Some(Duration::from_millis(self.timeout_ms.unwrap_or(10_000)));
        o
    }
}

/// What an adapter does for each step; every method returns the rendered
/// outcome ([`render_error`], [`render_reply`], [`render_result`]).
pub trait Adapter {
    /// Runs one step against `server`.
    fn step(&mut self, server: &MockServer, act: &Act) -> String;
}

/// A scenario: a server, the steps, the outcome of each step, and the messages
/// the server must have received (exact bytes).
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its name.
    pub name: &'static str,
    /// The server.
    pub server: ServerConfig,
    /// Steps and their expected outcomes.
    pub steps: Vec<(Act, &'static str)>,
    /// The bytes of each message the server must have received, in order.
    pub received: Vec<&'static [u8]>,
}

impl Scenario {
    /// Whether a step asks for TLS (STARTTLS or implicit TLS): an adapter
    /// built without TLS skips it ([`run_selected`]).
    #[must_use]
    pub fn needs_tls(&self) -> bool {
        self.steps
            .iter()
            .any(|(act, _)| matches!(act, Act::StartTls | Act::Connect(Connect::ImplicitTls, _)))
    }

    /// Whether a step connects to a Unix socket.
    #[must_use]
    pub fn needs_unix(&self) -> bool {
        self.steps
            .iter()
            .any(|(act, _)| matches!(act, Act::Connect(Connect::LmtpUnix, _)))
    }
}

/// `err Kind [code]` for a core error; adapters render their I/O and TLS errors
/// as `err Io` and `err Tls`.
#[must_use]
pub fn render_error(e: &smtp_sansio::Error) -> String {
    use smtp_sansio::Error as E;
    match e {
        E::Protocol(p) => {
            let n = format!("{p:?}");
            format!(
                "err Protocol {}",
                n.split(['(', ' ', '{']).next().unwrap_or("")
            )
        }
        E::Usage(u) => {
            let n = format!("{u:?}");
            format!(
                "err Usage {}",
                n.split(['(', ' ', '{']).next().unwrap_or("")
            )
        }
        E::Security(sec) => {
            let n = format!("{sec:?}");
            format!(
                "err Security {}",
                n.split(['(', ' ', '{']).next().unwrap_or("")
            )
        }
        E::Disconnected => "err Disconnected".into(),
        E::Timeout(_) => "err Timeout".into(),
        E::ServiceClosing {
            reply,
            end_of_message,
            ..
        } => {
            // A 421 to the end of the message refuses it.
            let end = if *end_of_message { " end" } else { "" };
            format!("err ServiceClosing {}{end}", reply.code())
        }
        E::ConnectRefused(r) => format!("err ConnectRefused {}", r.code()),
        E::HeloRefused(r) => format!("err HeloRefused {}", r.code()),
        E::AuthFailed(r) => format!("err AuthFailed {}", r.code()),
        E::StartTlsRefused(r) => format!("err StartTlsRefused {}", r.code()),
        E::SenderRefused { reply, .. } => format!("err SenderRefused {}", reply.code()),
        E::RecipientsRefused(m) => {
            let v: Vec<String> = m.iter().map(|(a, r)| format!("{a}:{}", r.code())).collect();
            format!("err RecipientsRefused {}", v.join(","))
        }
        E::DataRefused(r) => format!("err DataRefused {}", r.code()),
        E::Uncertain { cause, .. } => {
            format!(
                "err Uncertain ({})",
                render_error(cause).trim_start_matches("err ")
            )
        }
        other => format!("err {other:?}"),
    }
}

/// `ok CODE`.
#[must_use]
pub fn render_reply(r: &smtp_sansio::Reply) -> String {
    format!("ok {}", r.code())
}

/// `sent [bdat] ...`: per recipient `addr:rcpt/final` under LMTP, else the final
/// code, then the refused recipients.
#[must_use]
pub fn render_result(t: &smtp_sansio::TransactionResult) -> String {
    let mut s = String::from("sent");
    if t.chunked {
        s.push_str(" bdat");
    }
    match &t.final_reply {
        Some(r) => s.push_str(&format!(" {}", r.code())),
        None => {
            for r in &t.recipients {
                let f = r.final_reply.as_ref().map_or(0, smtp_sansio::Reply::code);
                s.push_str(&format!(" {}:{}/{f}", r.address, r.rcpt_reply.code()));
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

const MSG: &[u8] =
    b"From: a@example.org\r\nTo: b@example.org\r\nSubject: table\r\n\r\n.dot\r\nbody\r\n";
const BARE: &[u8] = b"Subject: bare\n\nline\n.\nend";
const BARE_NORMALISED: &[u8] = b"Subject: bare\r\n\r\nline\r\n.\r\nend\r\n";
const BCC: &[u8] =
    b"From: a@example.org\r\nTo: b@example.org\r\nBcc: hidden@example.org\r\n\r\nx\r\n";
const BCC_SENT: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\n\r\nx\r\n";

fn plain() -> Act {
    Act::Connect(Connect::Plain, Tweak::default())
}

fn tweak(t: Tweak) -> Act {
    Act::Connect(Connect::Plain, t)
}

fn refusing(recipients: &[&str], senders: &[&str]) -> ServerConfig {
    ServerConfig {
        refuse_recipients: recipients.iter().map(|s| (*s).to_owned()).collect(),
        refuse_senders: senders.iter().map(|s| (*s).to_owned()).collect(),
        ..ServerConfig::default()
    }
}

fn script(s: Script) -> ServerConfig {
    ServerConfig::scripted(s)
}

/// Every scenario. `lmtp_path` is a fresh Unix socket path for the LMTP ones.
#[must_use]
#[allow(clippy::too_many_lines)]
pub fn all(lmtp_path: &std::path::Path) -> Vec<Scenario> {
    let mut lmtp = ServerConfig::lmtp_unix(lmtp_path);
    lmtp.refuse_recipients = vec!["nobody@example.org".into()];
    lmtp.fail_after_data = vec!["full@example.org".into()];
    let data_refused = ServerConfig {
        data_reply: Some("554 5.7.1 spam".into()),
        ..ServerConfig::default()
    };
    let no_ehlo = ServerConfig {
        refuse_ehlo: true,
        ..ServerConfig::default()
    };
    let closing = ServerConfig {
        reply_421_after: Some(2),
        ..ServerConfig::default()
    };
    let greeting_554 = ServerConfig {
        greeting: "554 5.7.1 no".into(),
        ..ServerConfig::default()
    };
    vec![
        Scenario {
            name: "sendmail by BDAT, pipelined",
            server: ServerConfig::default(),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "sent bdat 250",
                ),
                (Act::Quit, "ok 221"),
            ],
            received: vec![MSG],
        },
        Scenario {
            name: "sendmail by DATA with dot-stuffing",
            server: ServerConfig::default(),
            steps: vec![
                (
                    tweak(Tweak {
                        no_chunking: true,
                        ..Tweak::default()
                    }),
                    "ok 220",
                ),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "sent 250",
                ),
            ],
            received: vec![MSG],
        },
        Scenario {
            name: "bare line endings normalised, no pipelining",
            server: ServerConfig::default().extensions(&["8BITMIME"]),
            steps: vec![
                (
                    tweak(Tweak {
                        no_pipelining: true,
                        ..Tweak::default()
                    }),
                    "ok 220",
                ),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], BARE, &[]),
                    "sent 250",
                ),
            ],
            received: vec![BARE_NORMALISED],
        },
        Scenario {
            name: "partial refusal",
            server: refusing(&["x@example.org"], &[]),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail(
                        "a@example.org",
                        &["b@example.org", "x@example.org"],
                        MSG,
                        &[],
                    ),
                    "sent bdat 250 refused=x@example.org:550",
                ),
            ],
            received: vec![MSG],
        },
        Scenario {
            name: "total refusal, then the session goes on",
            server: refusing(&["x@example.org", "y@example.org"], &[]),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail(
                        "a@example.org",
                        &["x@example.org", "y@example.org"],
                        MSG,
                        &[],
                    ),
                    "err RecipientsRefused x@example.org:550,y@example.org:550",
                ),
                (Act::Noop, "ok 250"),
            ],
            received: vec![],
        },
        Scenario {
            name: "sender refused",
            server: refusing(&[], &["bad@example.org"]),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("bad@example.org", &["b@example.org"], MSG, &[]),
                    "err SenderRefused 553",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "data refused",
            server: data_refused,
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err DataRefused 554",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "HELO fallback",
            server: no_ehlo,
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &["BODY=8BITMIME"]),
                    "sent 250",
                ),
            ],
            received: vec![MSG],
        },
        Scenario {
            name: "SIZE over the limit",
            server: ServerConfig::default().extensions(&["PIPELINING", "SIZE 10"]),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err Usage MessageTooLarge",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "SMTPUTF8 not offered",
            server: ServerConfig::default().extensions(&["PIPELINING"]),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("jörg@bücher.example", &["b@example.org"], MSG, &[]),
                    "err Usage NotSupported",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "send_message strips Bcc",
            server: ServerConfig::default(),
            steps: vec![
                (plain(), "ok 220"),
                (Act::SendMessage(BCC), "sent bdat 250"),
            ],
            received: vec![BCC_SENT],
        },
        Scenario {
            name: "STARTTLS and login",
            server: ServerConfig::default()
                .tls(ServerTls::StartTls)
                .user("alice", "pw"),
            steps: vec![
                (
                    Act::Connect(
                        Connect::Plain,
                        Tweak {
                            require_tls: true,
                            ..Tweak::default()
                        },
                    ),
                    "ok 220",
                ),
                (Act::StartTls, "ok 220"),
                (Act::Login("alice", "pw"), "ok 235"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "sent bdat 250",
                ),
                (Act::Quit, "ok 221"),
            ],
            received: vec![MSG],
        },
        Scenario {
            name: "login refused",
            server: ServerConfig::default().user("alice", "pw"),
            steps: vec![
                (plain(), "ok 220"),
                (Act::Login("alice", "nope"), "err AuthFailed 535"),
                (Act::Login("alice", "pw"), "ok 235"),
            ],
            received: vec![],
        },
        Scenario {
            name: "STARTTLS required but not offered",
            server: ServerConfig::default().user("alice", "pw"),
            steps: vec![
                (
                    Act::Connect(
                        Connect::Plain,
                        Tweak {
                            require_tls: true,
                            ..Tweak::default()
                        },
                    ),
                    "ok 220",
                ),
                (Act::StartTls, "err Security StartTlsNotOffered"),
                (Act::Login("alice", "pw"), "err Security StartTlsNotOffered"),
            ],
            received: vec![],
        },
        Scenario {
            name: "STARTTLS response injection",
            server: script(
                Script::default()
                    .send("220 mx")
                    .expect_line()
                    .send("250-mx\r\n250 STARTTLS")
                    .expect_line()
                    .then(Step::Send(b"220 go\r\n250 injected\r\n".to_vec())),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (Act::StartTls, "err Protocol DataAfterStartTls"),
            ],
            received: vec![],
        },
        Scenario {
            name: "STARTTLS refused",
            server: script(
                Script::default()
                    .send("220 mx")
                    .expect_line()
                    .send("250-mx\r\n250 STARTTLS")
                    .expect_line()
                    .send("454 4.7.0 no TLS"),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (Act::StartTls, "err StartTlsRefused 454"),
            ],
            received: vec![],
        },
        Scenario {
            name: "implicit TLS",
            server: ServerConfig::default().tls(ServerTls::Implicit),
            steps: vec![
                (
                    Act::Connect(Connect::ImplicitTls, Tweak::default()),
                    "ok 220",
                ),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "sent bdat 250",
                ),
            ],
            received: vec![MSG],
        },
        Scenario {
            name: "LMTP over a Unix socket, one result per recipient",
            server: lmtp,
            steps: vec![
                (Act::Connect(Connect::LmtpUnix, Tweak::default()), "ok 220"),
                (
                    Act::Sendmail(
                        "a@example.org",
                        &["b@example.org", "nobody@example.org", "full@example.org"],
                        MSG,
                        &[],
                    ),
                    "sent bdat b@example.org:250/250 nobody@example.org:550/0 full@example.org:250/452 refused=nobody@example.org:550,full@example.org:452",
                ),
            ],
            received: vec![MSG],
        },
        Scenario {
            name: "421 ends the session",
            server: closing,
            steps: vec![
                (plain(), "ok 220"),
                (Act::Noop, "ok 250"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err ServiceClosing 421",
                ),
                (Act::Noop, "err ServiceClosing 421"),
            ],
            received: vec![],
        },
        Scenario {
            name: "greeting refused",
            server: greeting_554,
            steps: vec![(plain(), "err ConnectRefused 554")],
            received: vec![],
        },
        Scenario {
            name: "silent server times out",
            server: script(
                Script::default()
                    .send("220 mx")
                    .then(Step::Silence(Duration::from_secs(20))),
            ),
            steps: vec![
                (
                    tweak(Tweak {
                        timeout_ms: Some(300),
                        ..Tweak::default()
                    }),
                    "ok 220",
                ),
                (Act::Noop, "err Timeout"),
            ],
            received: vec![],
        },
        Scenario {
            name: "one byte at a time",
            server: script(
                Script::default()
                    .then(Step::SendSlowly(
                        b"220-mx\r\n220 ready\r\n".to_vec(),
                        Duration::from_millis(1),
                    ))
                    .expect_line()
                    .then(Step::SendSlowly(
                        b"252 2.0.0 maybe\r\n".to_vec(),
                        Duration::from_millis(1),
                    )),
            ),
            steps: vec![(plain(), "ok 220"), (Act::Verify("postmaster"), "ok 252")],
            received: vec![],
        },
        Scenario {
            name: "endless reply is bounded",
            server: script(
                Script::default()
                    .send("220 mx")
                    .expect_line()
                    .then(Step::Flood(
                        b"250-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n".to_vec(),
                    )),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (Act::Noop, "err Protocol TooManyLines"),
            ],
            received: vec![],
        },
        Scenario {
            name: "disconnect after the final dot: delivery unknown",
            server: script(
                until_354()
                    .then(Step::ReadUntil(b"\r\n.\r\n".to_vec()))
                    .close(),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err Uncertain (Disconnected)",
                ),
                (Act::Noop, "err Disconnected"),
            ],
            received: vec![],
        },
        Scenario {
            name: "421 to the final dot: refused, not unknown",
            server: script(
                until_354()
                    .then(Step::ReadUntil(b"\r\n.\r\n".to_vec()))
                    .send("421 4.3.2 shutting down")
                    .close(),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err ServiceClosing 421 end",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "421 to the final dot, then a reset: refused",
            server: script(
                until_354()
                    .then(Step::ReadUntil(b"\r\n.\r\n".to_vec()))
                    .send("421 4.3.2 shutting down")
                    .reset(),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err ServiceClosing 421 end",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "sender refused, then a reset at RSET",
            server: refusing(&[], &["a@example.org"])
                .fault(Fault::AfterRefusal(FaultAction::Reset)),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err SenderRefused 553",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "every recipient refused, then a reset at RSET",
            server: refusing(&["x@example.org", "y@example.org"], &[])
                .fault(Fault::AfterRefusal(FaultAction::Reset)),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["x@example.org", "y@example.org"], MSG, &[]),
                    "err RecipientsRefused x@example.org:550,y@example.org:550",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "every recipient refused without pipelining, then a reset at RSET",
            server: refusing(&["x@example.org"], &[])
                .extensions(&["8BITMIME"])
                .fault(Fault::AfterRefusal(FaultAction::Reset)),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["x@example.org"], MSG, &[]),
                    "err RecipientsRefused x@example.org:550",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "554 to the message, then a reset at RSET",
            server: ServerConfig::default()
                .fail_data_with(554)
                .fault(Fault::AfterRefusal(FaultAction::Reset)),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err DataRefused 554",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "451 to the message over DATA, then a close",
            server: ServerConfig::default()
                .extensions(&["PIPELINING", "8BITMIME"])
                .fail_data_with(451)
                .fault(Fault::AfterRefusal(FaultAction::Close)),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err DataRefused 451",
                ),
                (Act::Noop, "err Disconnected"),
            ],
            received: vec![],
        },
        Scenario {
            name: "disconnect at 354: not sent",
            server: script(
                Script::default()
                    .send("220 mx")
                    .expect_line()
                    .send("250 mx")
                    .expect_line()
                    .send("250 ok")
                    .expect_line()
                    .send("250 ok")
                    .expect_line()
                    .close(),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err Disconnected",
                ),
            ],
            received: vec![],
        },
    ]
    .into_iter()
    .chain(smtplib_rows())
    .collect()
}

/// `send_message` with one block of `Resent-` headers (CPython's
/// `testSendMessageResent`), as given and as sent.
const RESENT: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nBcc: hidden@example.org\r\n\
Resent-Date: Thu, 1 Jan 1970 17:42:00 +0000\r\nResent-From: c@example.org\r\nResent-To: d@example.org\r\nResent-Bcc: e@example.org\r\n\r\nx\r\n";
const RESENT_SENT: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\n\
Resent-Date: Thu, 1 Jan 1970 17:42:00 +0000\r\nResent-From: c@example.org\r\nResent-To: d@example.org\r\n\r\nx\r\n";
/// Two blocks of `Resent-` headers, counted by `Resent-Date` as smtplib does
/// (`testSendMessageMultipleResentRaises`).
const RESENT_TWICE: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\n\
Resent-Date: Thu, 1 Jan 1970 17:42:00 +0000\r\nResent-From: c@example.org\r\nResent-To: d@example.org\r\n\
Resent-Date: Fri, 2 Jan 1970 17:42:00 +0000\r\nResent-From: e@example.org\r\nResent-To: f@example.org\r\n\r\nx\r\n";

/// A server that greets, answers EHLO without extensions, and then answers
/// each of the next commands in turn with `answers` (an answer after DATA's
/// 354 comes after the message); it then reads until the client closes.
fn answering(answers: &[&str]) -> ServerConfig {
    let mut s = Script::default()
        .send("220 mx")
        .expect_line()
        .send("250 mx");
    let mut after_body = false;
    for answer in answers {
        if !after_body {
            s = s.expect_line();
        }
        s = s.send(answer);
        after_body = answer.starts_with("354");
        if after_body {
            s = s.read_until(b"\r\n.\r\n");
        }
    }
    script(s.expect_line())
}

/// The cases of CPython's `test_smtplib.py` that hold for every adapter.
fn smtplib_rows() -> Vec<Scenario> {
    let long_line = {
        let mut l = b"250 OK".to_vec();
        l.extend(std::iter::repeat_n(b'.', 16 * 1024));
        l.push(b'\n');
        l
    };
    let send = || {
        Act::Sendmail(
            "a@example.org",
            &["b@example.org", "c@example.org"],
            MSG,
            &[],
        )
    };
    vec![
        Scenario {
            name: "refused MAIL, then the server closes (bpo-17498)",
            server: script(
                Script::default()
                    .send("220 mx")
                    .expect_line()
                    .send("250 mx")
                    .expect_line()
                    .send("451 4.3.0 Requested action aborted")
                    .close(),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (send(), "err SenderRefused 451"),
                (Act::Noop, "err Disconnected"),
            ],
            received: vec![],
        },
        Scenario {
            name: "421 answering MAIL (bpo-5713)",
            server: answering(&["421 4.3.2 closing connection"]),
            steps: vec![
                (plain(), "ok 220"),
                (send(), "err ServiceClosing 421"),
                (Act::Noop, "err ServiceClosing 421"),
            ],
            received: vec![],
        },
        Scenario {
            name: "421 answering RCPT",
            server: answering(&["250 ok", "250 accepted", "421 4.3.2 closing"]),
            steps: vec![
                (plain(), "ok 220"),
                (send(), "err ServiceClosing 421"),
                (Act::Noop, "err ServiceClosing 421"),
            ],
            received: vec![],
        },
        Scenario {
            name: "421 answering the message",
            server: answering(&["250 ok", "250 ok", "250 ok", "354 go", "421 4.3.2 closing"]),
            steps: vec![
                (plain(), "ok 220"),
                (send(), "err ServiceClosing 421 end"),
                (Act::Noop, "err ServiceClosing 421"),
            ],
            received: vec![],
        },
        Scenario {
            name: "QUIT answered 421",
            server: script(
                Script::default()
                    .send("220 mx")
                    .expect_line()
                    .send("421 QUIT FAILED"),
            ),
            steps: vec![(plain(), "ok 220"), (Act::Quit, "ok 421")],
            received: vec![],
        },
        Scenario {
            name: "greeting code out of range",
            server: script(Script::default().send("199 no hello for you!")),
            steps: vec![(plain(), "err Protocol MalformedReply")],
            received: vec![],
        },
        Scenario {
            name: "greeting line too long",
            server: script(Script::default().send_bytes(&long_line).close()),
            steps: vec![(plain(), "err Protocol LineTooLong")],
            received: vec![],
        },
        Scenario {
            name: "send_message with Resent- headers",
            server: ServerConfig::default(),
            steps: vec![
                (plain(), "ok 220"),
                (Act::SendMessage(RESENT), "sent bdat 250"),
            ],
            received: vec![RESENT_SENT],
        },
        Scenario {
            name: "send_message with two Resent- blocks",
            server: ServerConfig::default(),
            steps: vec![
                (plain(), "ok 220"),
                (Act::SendMessage(RESENT_TWICE), "err Usage Envelope"),
                (Act::Noop, "ok 250"),
            ],
            received: vec![],
        },
    ]
}

/// A server without PIPELINING or CHUNKING up to its 354 answer to DATA.
fn until_354() -> Script {
    Script::default()
        .send("220 mx")
        .expect_line()
        .send("250 mx")
        .expect_line()
        .send("250 ok")
        .expect_line()
        .send("250 ok")
        .expect_line()
        .send("354 go")
}

/// Runs every scenario through `make()`'s adapters (those over a Unix socket
/// only where there are Unix sockets); returns the number run and the failures
/// (`scenario / step: expected, got`).
pub fn run_all<A: Adapter>(make: impl FnMut() -> A) -> (usize, Vec<String>) {
    run_selected(make, |_| true)
}

/// [`run_all`] for the scenarios `select` keeps: `|s| !s.needs_tls()` for an
/// adapter built without TLS.
pub fn run_selected<A: Adapter>(
    mut make: impl FnMut() -> A,
    mut select: impl FnMut(&Scenario) -> bool,
) -> (usize, Vec<String>) {
    let path = crate::temp_socket_path("scenario");
    let mut scenarios = all(&path);
    scenarios.retain(|s| (cfg!(unix) || !s.needs_unix()) && select(s));
    let mut failures = Vec::new();
    for sc in &scenarios {
        let server = match MockServer::start(sc.server.clone()) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{}: server did not start: {e}", sc.name));
                continue;
            }
        };
        let mut adapter = make();
        for (i, (act, expected)) in sc.steps.iter().enumerate() {
            let got = adapter.step(&server, act);
            if got != *expected {
                failures.push(format!(
                    "{} / step {i} {act:?}: expected {expected:?}, got {got:?}",
                    sc.name
                ));
                break;
            }
        }
        drop(adapter);
        let got = server.wait_for_messages(sc.received.len(), Duration::from_secs(5));
        let data: Vec<&[u8]> = got.iter().map(|m| m.data.as_slice()).collect();
        if data != sc.received {
            failures.push(format!(
                "{}: server received {:?}",
                sc.name,
                data.iter()
                    .map(|d| String::from_utf8_lossy(d))
                    .collect::<Vec<_>>()
            ));
        }
    }
    (scenarios.len(), failures)
}

/// The envelope of an [`Act::Sendmail`]: sender, recipients and MAIL options.
pub fn envelope(
    from: &str,
    to: &[&str],
    mail_options: &[&str],
) -> Result<smtp_sansio::Envelope, smtp_sansio::UsageError> {
    let mut envelope = smtp_sansio::Envelope::parse(from, to)?;
    for option in mail_options {
        envelope = envelope.mail_param(option.parse()?);
    }
    Ok(envelope)
}
