//! The cases, each written once over [`Session`], and the checks of what the
//! server answered and what it kept.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use crate::adapters::{Failure, Session};
use crate::capture::Lines;
use crate::store::Store;
use early::run_early;
use session::{run_inner, run_pool};

mod check;
mod early;
mod session;

/// One row of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// No TLS, no AUTH; DATA (CHUNKING switched off) with dot-stuffing.
    Plain,
    /// Over IPv6 loopback, with the default EHLO name (the machine's name or
    /// the `[IPv6:::1]` address literal, which Postfix checks).
    Ipv6,
    /// STARTTLS, then a message.
    StartTls,
    /// TLS from the first byte, then a message.
    ImplicitTls,
    /// STARTTLS, AUTH with this mechanism, then a message.
    Auth(&'static str),
    /// STARTTLS, `login` without initial response: the client picks the
    /// mechanism (CRAM-MD5, then PLAIN, then LOGIN) and answers challenges.
    Login,
    /// STARTTLS, AUTH PLAIN with a wrong password: refused with 535.
    BadPassword,
    /// STARTTLS, AUTH SCRAM-SHA-256 with a wrong password: the server finds the
    /// proof wrong and refuses with 535.
    ScramBadPassword,
    /// UTF-8 addresses and header (SMTPUTF8).
    Smtputf8,
    /// Three recipients with PIPELINING: every RCPT is written before the first
    /// reply is read.
    Pipelining,
    /// A 300 KB message by BDAT.
    Bdat,
    /// A 300 KB message by DATA (CHUNKING switched off), dot-stuffed.
    LargeData,
    /// A message with bare LF line endings and no final line break: sent
    /// normalised to CRLF.
    BareLf,
    /// Three recipients, the second refused at RCPT: the message goes to the
    /// other two and the refusal is reported.
    RcptRefused,
    /// One session, two transactions: every recipient of the first refused
    /// (reported as such), then the second delivered.
    AllRefusedThenSent,
    /// A message over the server's SIZE limit: refused at MAIL with 552.
    SizeLimit,
    /// DSN parameters (RET, ENVID, NOTIFY, ORCPT) as the server passes them on.
    Dsn,
    /// Three messages through the adapter's pool of one session: one
    /// connection, reused after a NOOP health check.
    Pool,
    /// Early pipelining (PIPE_CONNECT): a first connection through the
    /// builder learns PIPECONNECT into a capability cache, a second one with
    /// the same cache writes EHLO before the greeting; the server's log
    /// must say the second message came over an early-pipelined connection.
    EarlyPipelining,
    /// `send_message` with To, Cc and Bcc: the Bcc recipient gets the message,
    /// the Bcc header is not transmitted.
    SendMessageBcc,
    /// LMTP over the Unix socket, one of three recipients unknown.
    LmtpUnix,
    /// LMTP over TCP, one of three recipients unknown.
    LmtpTcp,
    /// LMTP, one of two recipients accepted at RCPT but failing in its own
    /// reply after the body (its mailbox cannot be created).
    LmtpAfterData,
}

impl Case {
    /// Every case, in table order.
    pub const ALL: &'static [Case] = &[
        Case::Plain,
        Case::Ipv6,
        Case::StartTls,
        Case::ImplicitTls,
        Case::Auth("PLAIN"),
        Case::Auth("LOGIN"),
        Case::Auth("CRAM-MD5"),
        Case::Auth("SCRAM-SHA-256"),
        Case::Login,
        Case::BadPassword,
        Case::ScramBadPassword,
        Case::Smtputf8,
        Case::Pipelining,
        Case::Bdat,
        Case::LargeData,
        Case::BareLf,
        Case::RcptRefused,
        Case::AllRefusedThenSent,
        Case::SizeLimit,
        Case::Dsn,
        Case::Pool,
        Case::EarlyPipelining,
        Case::SendMessageBcc,
        Case::LmtpUnix,
        Case::LmtpTcp,
        Case::LmtpAfterData,
    ];

    /// The name in the table.
    pub fn name(self) -> String {
        match self {
            Case::Plain => "plain (DATA)".into(),
            Case::Ipv6 => "ipv6 ::1, default EHLO".into(),
            Case::StartTls => "starttls".into(),
            Case::ImplicitTls => "implicit tls".into(),
            Case::Auth(m) => format!("auth {m}"),
            Case::Login => "login, no initial resp.".into(),
            Case::BadPassword => "auth wrong password".into(),
            Case::ScramBadPassword => "scram wrong password".into(),
            Case::Smtputf8 => "smtputf8".into(),
            Case::Pipelining => "pipelining".into(),
            Case::Bdat => "bdat".into(),
            Case::LargeData => "300 KB by DATA".into(),
            Case::BareLf => "bare LF normalised".into(),
            Case::RcptRefused => "1 of 3 RCPT refused".into(),
            Case::AllRefusedThenSent => "all refused, then next".into(),
            Case::SizeLimit => "size limit".into(),
            Case::Dsn => "dsn".into(),
            Case::Pool => "pool: 3 messages".into(),
            Case::EarlyPipelining => "early pipelining".into(),
            Case::SendMessageBcc => "send_message bcc".into(),
            Case::LmtpUnix => "lmtp unix, 1 unknown".into(),
            Case::LmtpTcp => "lmtp tcp, 1 unknown".into(),
            Case::LmtpAfterData => "lmtp, 1 fails after DATA".into(),
        }
    }
}

/// What a server offers, as configured in `interop/`. A case the server is not
/// configured for is n/a; a case it is configured for fails when the server
/// does not advertise what it needs.
#[derive(Debug, Clone, Default)]
pub struct Offers {
    /// STARTTLS.
    pub starttls: bool,
    /// AUTH mechanisms (after STARTTLS).
    pub auth: Vec<&'static str>,
    /// SMTPUTF8.
    pub smtputf8: bool,
    /// PIPELINING.
    pub pipelining: bool,
    /// CHUNKING.
    pub chunking: bool,
    /// SIZE with this limit.
    pub size: Option<u64>,
    /// DSN.
    pub dsn: bool,
    /// PIPECONNECT (early pipelining), with PIPELINING.
    pub pipe_connect: bool,
}

/// A server under test.
#[derive(Debug, Clone)]
pub struct Server {
    /// Its name in the table.
    pub name: &'static str,
    /// SMTP endpoint (plain, STARTTLS offered), `host:port`.
    pub smtp: Option<String>,
    /// The SMTP or LMTP endpoint on `[::1]`, when the machine has IPv6.
    pub ipv6: Option<String>,
    /// Implicit TLS endpoint.
    pub smtps: Option<String>,
    /// The SMTP endpoint of the early-pipelining case, when not `smtp`: one
    /// whose greeting the server holds back, so that an EHLO the client
    /// wrote before reading the greeting has certainly arrived when the
    /// server looks for early input (on loopback the two race otherwise).
    pub held_smtp: Option<String>,
    /// LMTP over a Unix socket (path).
    pub lmtp_unix: Option<String>,
    /// LMTP over TCP.
    pub lmtp_tcp: Option<String>,
    /// What it offers.
    pub offers: Offers,
    /// MAIL is refused with 530 until STARTTLS (aiosmtpd's `require_starttls`).
    pub mail_requires_tls: bool,
    /// Where it keeps messages.
    pub store: Store,
    /// The sender used.
    pub sender: &'static str,
    /// Recipients that are accepted (at least three).
    pub recipients: [&'static str; 3],
    /// A recipient the server does not know (LMTP).
    pub unknown: &'static str,
    /// A recipient the server refuses at RCPT (SMTP), or "".
    pub refused: &'static str,
    /// A recipient whose delivery fails after the body (LMTP), or "".
    pub fails_after_data: &'static str,
    /// A UTF-8 recipient that the server (or the relay after it) accepts.
    pub utf8_recipient: &'static str,
}

impl Server {
    fn is_lmtp(&self) -> bool {
        self.smtp.is_none()
    }
}

/// The account the AUTH cases use.
#[derive(Clone)]
pub struct Account {
    /// User name.
    pub user: String,
    /// Password (never printed).
    pub password: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// What a run needs besides the server.
#[derive(Debug, Clone)]
pub struct Context {
    /// Trusts the run's CA.
    pub tls: Arc<ClientConfig>,
    /// The AUTH account.
    pub account: Account,
    /// The trace capture.
    pub lines: Lines,
    /// Makes every message unique to its run.
    pub run_id: String,
    /// How long to wait for a message to be kept.
    pub wait: Duration,
}

/// The outcome of one cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Passed; the note says what was checked.
    Pass(String),
    /// Failed, with the reason.
    Fail(String),
    /// The server is not configured for this case.
    NotApplicable(String),
}

fn applicable(server: &Server, case: Case) -> Result<(), String> {
    let o = &server.offers;
    let ok = match case {
        Case::Plain | Case::SendMessageBcc | Case::LargeData | Case::BareLf | Case::Pool => true,
        Case::RcptRefused => !server.refused.is_empty(),
        Case::AllRefusedThenSent => true,
        Case::Ipv6 => server.ipv6.is_some(),
        Case::StartTls => o.starttls,
        Case::ImplicitTls => server.smtps.is_some(),
        Case::Auth(m) => o.auth.contains(&m),
        Case::BadPassword | Case::Login => !o.auth.is_empty(),
        Case::ScramBadPassword => o.auth.contains(&SCRAM),
        Case::Smtputf8 => o.smtputf8,
        Case::Pipelining => o.pipelining,
        Case::Bdat => o.chunking,
        Case::SizeLimit => o.size.is_some(),
        Case::Dsn => o.dsn,
        Case::EarlyPipelining => o.pipe_connect,
        Case::LmtpUnix => server.lmtp_unix.is_some(),
        Case::LmtpTcp => server.lmtp_tcp.is_some(),
        Case::LmtpAfterData => !server.fails_after_data.is_empty(),
    };
    if ok {
        Ok(())
    } else {
        Err(match case {
            Case::ImplicitTls => "no implicit-TLS listener".into(),
            Case::Ipv6 => "no [::1] listener".into(),
            Case::LmtpUnix | Case::LmtpTcp | Case::LmtpAfterData => "not an LMTP server".into(),
            Case::BadPassword | Case::Login => "no AUTH".into(),
            Case::RcptRefused => "LMTP: see the unknown-recipient rows".into(),
            Case::Auth(m) => format!("{m} not offered"),
            Case::ScramBadPassword => format!("{SCRAM} not offered"),
            Case::Smtputf8 => "SMTPUTF8 not offered".into(),
            Case::Pipelining => "PIPELINING not offered".into(),
            Case::Bdat => "CHUNKING not offered".into(),
            Case::SizeLimit => "SIZE not offered".into(),
            Case::Dsn => "DSN not offered".into(),
            Case::EarlyPipelining => "PIPECONNECT not offered".into(),
            _ => "not offered".into(),
        })
    }
}

/// The extension keyword a case needs to see advertised.
fn needs(case: Case) -> Option<&'static str> {
    match case {
        Case::Smtputf8 => Some("SMTPUTF8"),
        Case::Pipelining => Some("PIPELINING"),
        Case::Bdat => Some("CHUNKING"),
        Case::SizeLimit => Some("SIZE"),
        Case::Dsn => Some("DSN"),
        Case::Auth(_) | Case::BadPassword | Case::ScramBadPassword | Case::Login => Some("AUTH"),
        _ => None,
    }
}

/// A message with a unique subject, dot lines (a lone dot, a leading dot, two
/// leading dots) and `lines` filler lines.
fn message(from: &str, to: &str, token: &str, lines: usize) -> Vec<u8> {
    let mut m = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {token}\r\nMessage-ID: <{token}@interop.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         First line.\r\n.\r\n.leading dot\r\n..two dots\r\n \r\n\ttab\r\n"
    )
    .into_bytes();
    for i in 0..lines {
        m.extend_from_slice(
            format!("{i:08} the quick brown fox jumps over the lazy dog\r\n").as_bytes(),
        );
    }
    m.extend_from_slice(b"Last line.\r\n");
    m
}

const SCRAM: &str = "SCRAM-SHA-256";

/// Runs one case through adapter `S` against `server`.
pub fn run<S: Session>(ctx: &Context, server: &Server, case: Case) -> Verdict {
    if let Err(why) = applicable(server, case) {
        return Verdict::NotApplicable(why);
    }
    if case == Case::Pool && !S::HAS_POOL {
        return Verdict::NotApplicable("the adapter has no pool".into());
    }
    let token = format!(
        "interop-{}-{}-{}-{}",
        ctx.run_id,
        server.name,
        S::NAME,
        case.name().replace([' ', ',', '(', ')'], "")
    );
    let outcome = match case {
        Case::Pool => run_pool::<S>(ctx, server, &token),
        Case::EarlyPipelining => run_early::<S>(ctx, server, &token),
        _ => run_inner::<S>(ctx, server, case, &token),
    };
    match outcome {
        Ok(note) => Verdict::Pass(note),
        Err(why) => Verdict::Fail(why),
    }
}

/// Whether the case runs STARTTLS first.
fn wants_tls(server: &Server, case: Case) -> bool {
    matches!(
        case,
        Case::StartTls | Case::Auth(_) | Case::BadPassword | Case::ScramBadPassword | Case::Login
    ) || (server.mail_requires_tls && !matches!(case, Case::Plain | Case::ImplicitTls))
}

fn fail(what: &str, e: &Failure) -> String {
    format!("{what}: {e}")
}
