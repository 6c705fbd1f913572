//! One scenario table for every adapter: the same servers, the same client
//! steps and the same expected results, so that a behaviour cannot differ
//! between runtimes without a test failing. An adapter implements [`Adapter`]
//! (one method per step) and calls [`run_all`].

use std::time::Duration;

use crate::{Fault, FaultAction, MockServer, Script, ServerConfig, ServerTls, Step};

mod batch;
mod smtplib;
mod table;

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
    /// `send_batch` of these messages, each `(from, to, message)`; the
    /// results rendered in order, joined by ` | ` ([`render_batch`]).
    SendBatch(&'static [Batched]),
    /// `send_batch_and_quit` of these messages, rendered as
    /// [`Act::SendBatch`]'s; the session ends with it.
    SendBatchAndQuit(&'static [Batched]),
    /// NOOP.
    Noop,
    /// VRFY.
    Verify(&'static str),
    /// QUIT.
    Quit,
}

/// One message of [`Act::SendBatch`]: sender, recipients, message.
pub type Batched = (&'static str, &'static [&'static str], &'static [u8]);

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

/// The envelopes of [`Act::SendBatch`]'s messages, in order, each paired
/// with its message as `send_batch` takes them.
///
/// # Panics
///
/// On an address of the table that does not parse (a broken table).
#[must_use]
#[allow(clippy::expect_used)]
pub fn batch_envelopes(batch: &[Batched]) -> Vec<(smtp_sansio::Envelope, &'static [u8])> {
    batch
        .iter()
        .map(|(from, to, m)| {
            let e = envelope(from, to, &[]).expect("the table's addresses parse");
            (e, *m)
        })
        .collect()
}

/// The results of a batch, each rendered ([`render_result`] or
/// [`render_error`]), in order, joined by ` | `.
#[must_use]
pub fn render_batch(results: impl IntoIterator<Item = String>) -> String {
    results.into_iter().collect::<Vec<_>>().join(" | ")
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
pub fn all(lmtp_path: &std::path::Path) -> Vec<Scenario> {
    [
        table::sending(),
        table::refusals(),
        table::tls_and_lmtp(lmtp_path),
        table::broken_sessions(),
        table::after_the_message(),
        table::resets(),
        batch::batches(),
        batch::batches_then_quit(),
        smtplib::smtplib_rows(),
    ]
    .concat()
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
