//! The cases, each written once over [`Session`], and the checks of what the
//! server answered and what it kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use smtp_adapter::Options;
use smtp_sansio::mail::{Envelope, Notify, Recipient, Ret};
use smtp_sansio::sasl::{CramMd5, Credentials, Login, Plain, ScramSha256};
use smtp_sansio::{Mechanism, TransactionResult};

use crate::adapters::{Connect, Failure, Outgoing, Pooling, Session};
use crate::capture::Lines;
use crate::store::{Kept, Store};

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

/// What the server must have kept.
struct Expect {
    sender: String,
    recipients: Vec<String>,
    message: Vec<u8>,
    protocol: Option<String>,
    tls: bool,
    auth: bool,
    mail_params: Vec<String>,
    rcpt_params: Vec<String>,
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

fn mechanism(name: &str, account: &Account, password: &str) -> Box<dyn Mechanism> {
    let c = Credentials::new(account.user.as_str(), password);
    match name {
        "LOGIN" => Box::new(Login::new(c)),
        "CRAM-MD5" => Box::new(CramMd5::new(c)),
        SCRAM => Box::new(ScramSha256::new(c)),
        _ => Box::new(Plain::new(c)),
    }
}

const SCRAM: &str = "SCRAM-SHA-256";

/// SCRAM-SHA-256 that records whether the server's signature was verified, so
/// a 235 that skipped the server's final message does not pass.
#[derive(Debug)]
struct WatchedScram {
    inner: ScramSha256,
    verified: Arc<AtomicBool>,
}

impl Mechanism for WatchedScram {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, smtp_sansio::sasl::SaslError> {
        self.inner.initial_response()
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, smtp_sansio::sasl::SaslError> {
        let answer = self.inner.step(challenge);
        self.verified
            .store(self.inner.server_verified(), Ordering::SeqCst);
        answer
    }
}

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
    let outcome = if case == Case::Pool {
        run_pool::<S>(ctx, server, &token)
    } else {
        run_inner::<S>(ctx, server, case, &token)
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

#[allow(clippy::too_many_lines)]
fn run_inner<S: Session>(
    ctx: &Context,
    server: &Server,
    case: Case,
    token: &str,
) -> Result<String, String> {
    let mut options = Options::default();
    options.timeout = Some(Duration::from_secs(20));
    // The plain and IPv6 rows use the adapters' default EHLO name (the
    // machine's name or an address literal); Postfix refuses invalid ones.
    if !matches!(case, Case::Plain | Case::Ipv6) {
        options.local_name = Some("client.interop.test".into());
    }
    if matches!(case, Case::Plain | Case::LargeData) {
        options.chunking = false;
    }
    // A submission-style session: neither the password nor the message
    // may go out unencrypted.
    options.require_tls = wants_tls(server, case) || case == Case::ImplicitTls;
    let how = match case {
        Case::ImplicitTls => Connect::SmtpTls(server.smtps.as_deref().unwrap_or_default()),
        Case::LmtpUnix => Connect::Lmtp(server.lmtp_unix.as_deref().unwrap_or_default()),
        Case::Ipv6 if server.is_lmtp() => Connect::Lmtp(server.ipv6.as_deref().unwrap_or_default()),
        Case::Ipv6 => Connect::Smtp(server.ipv6.as_deref().unwrap_or_default()),
        _ if server.is_lmtp() => Connect::Lmtp(server.lmtp_tcp.as_deref().unwrap_or_default()),
        _ => Connect::Smtp(server.smtp.as_deref().unwrap_or_default()),
    };
    ctx.lines.clear();
    let mut s = S::connect(how, options, &ctx.tls).map_err(|e| fail("connect", &e))?;
    let mut tls = case == Case::ImplicitTls;
    if tls != s.is_tls() {
        return Err("implicit TLS session not encrypted".into());
    }
    let r = s.ehlo().map_err(|e| fail("EHLO", &e))?;
    if r.code() != 250 {
        return Err(format!("EHLO answered {}", r.code()));
    }

    let wants_tls = wants_tls(server, case);
    if wants_tls {
        if !s
            .capabilities()
            .is_some_and(smtp_sansio::Capabilities::starttls)
        {
            return Err("STARTTLS not advertised".into());
        }
        let r = s.starttls().map_err(|e| fail("STARTTLS", &e))?;
        if r.code() != 220 || !s.is_tls() {
            return Err(format!(
                "STARTTLS answered {} but session TLS={}",
                r.code(),
                s.is_tls()
            ));
        }
        tls = true;
    }
    if let Some(ext) = needs(case) {
        if !s.capabilities().is_some_and(|c| c.has(ext)) {
            return Err(format!("{ext} not advertised"));
        }
    }

    let mut auth = false;
    let mut first_note = String::new();
    if needs(case) == Some("AUTH") {
        // Every mechanism the server offers has its row.
        let mut offered = s
            .capabilities()
            .map(smtp_sansio::Capabilities::auth_mechanisms)
            .unwrap_or_default();
        offered.sort();
        let mut declared: Vec<String> =
            server.offers.auth.iter().map(|m| (*m).to_owned()).collect();
        declared.sort();
        if offered != declared {
            return Err(format!(
                "AUTH offers {offered:?}, the table covers {declared:?}"
            ));
        }
    }
    match case {
        Case::Login => {
            let r = s
                .login(&ctx.account.user, &ctx.account.password)
                .map_err(|e| fail("login", &e))?;
            if r.code() != 235 {
                return Err(format!("AUTH answered {}", r.code()));
            }
            auth = true;
        }
        Case::Auth(SCRAM) => {
            let verified = Arc::new(AtomicBool::new(false));
            let watched = WatchedScram {
                inner: ScramSha256::new(Credentials::new(
                    ctx.account.user.as_str(),
                    ctx.account.password.as_str(),
                )),
                verified: Arc::clone(&verified),
            };
            let r = s.auth(Box::new(watched)).map_err(|e| fail("AUTH", &e))?;
            if r.code() != 235 {
                return Err(format!("AUTH answered {}", r.code()));
            }
            if !verified.load(Ordering::SeqCst) {
                return Err("235 without a verified server signature".into());
            }
            first_note.push_str("server signature verified, ");
            auth = true;
        }
        Case::Auth(m) => {
            let r = s
                .auth(mechanism(m, &ctx.account, &ctx.account.password))
                .map_err(|e| fail("AUTH", &e))?;
            if r.code() != 235 {
                return Err(format!("AUTH answered {}", r.code()));
            }
            auth = true;
        }
        Case::BadPassword | Case::ScramBadPassword => {
            let wrong = format!("{}-wrong", ctx.account.password);
            let name = if case == Case::ScramBadPassword {
                SCRAM
            } else {
                "PLAIN"
            };
            return match s.auth(mechanism(name, &ctx.account, &wrong)) {
                Ok(r) => Err(format!("a wrong password was accepted ({})", r.code())),
                Err(e) if matches!(e.smtp, Some(smtp_sansio::Error::AuthFailed(_))) => {
                    let code = e.code().unwrap_or_default();
                    if code != 535 {
                        return Err(format!("AUTH refused with {code}, expected 535"));
                    }
                    quit(s)?;
                    Ok("refused 535".into())
                }
                Err(e) => Err(fail("AUTH", &e)),
            };
        }
        _ => {}
    }

    // The transaction.
    let [r0, r1, r2] = server.recipients;
    let sender = server.sender.to_owned();
    let mut expect = Expect {
        sender: sender.clone(),
        recipients: vec![r0.to_owned()],
        message: Vec::new(),
        protocol: None,
        tls,
        auth,
        mail_params: Vec::new(),
        rcpt_params: Vec::new(),
    };
    let result = match case {
        Case::SendMessageBcc => {
            let hidden = r2;
            let visible =
                format!("From: <{sender}>\r\nTo: <{r0}>\r\nCc: <{r1}>\r\nSubject: {token}\r\n");
            let body = "\r\nBcc'd to a third recipient.\r\n.\r\n";
            let with_bcc = format!("{visible}Bcc: <{hidden}>\r\n{body}");
            expect.message = format!("{visible}{body}").into_bytes();
            expect.recipients = vec![r0.to_owned(), r1.to_owned(), hidden.to_owned()];
            s.send_message(with_bcc.as_bytes())
        }
        Case::Smtputf8 => {
            let from = "ålice@interop.test";
            let to = server.utf8_recipient;
            let m = format!(
                "From: Ålice <{from}>\r\nTo: <{to}>\r\nSubject: Grüße {token}\r\n\r\nÜnïcödé body\r\n"
            )
            .into_bytes();
            expect.sender = from.to_owned();
            expect.recipients = vec![to.to_owned()];
            expect.mail_params = vec!["SMTPUTF8".into()];
            expect.message.clone_from(&m);
            s.sendmail(from, &[to], &m)
        }
        Case::Pipelining => {
            let m = message(&sender, r0, token, 3);
            expect.message.clone_from(&m);
            expect.recipients = vec![r0.to_owned(), r1.to_owned(), r2.to_owned()];
            s.sendmail(&sender, &[r0, r1, r2], &m)
        }
        Case::LmtpUnix | Case::LmtpTcp => {
            let m = message(&sender, r0, token, 3);
            expect.message.clone_from(&m);
            expect.recipients = vec![r0.to_owned(), r1.to_owned()];
            s.sendmail(&sender, &[r0, server.unknown, r1], &m)
        }
        Case::LmtpAfterData => {
            let m = message(&sender, r0, token, 3);
            expect.message.clone_from(&m);
            s.sendmail(&sender, &[r0, server.fails_after_data], &m)
        }
        Case::Bdat | Case::LargeData => {
            let m = message(&sender, r0, token, 6000);
            expect.message.clone_from(&m);
            s.sendmail(&sender, &[r0], &m)
        }
        Case::BareLf => {
            let m = format!("Subject: {token}\n\nline\n.\n..two\nend");
            expect.message =
                format!("Subject: {token}\r\n\r\nline\r\n.\r\n..two\r\nend\r\n").into_bytes();
            s.sendmail(&sender, &[r0], m.as_bytes())
        }
        Case::AllRefusedThenSent => {
            let nobody = if server.is_lmtp() {
                server.unknown
            } else {
                server.refused
            };
            let first = message(&sender, nobody, &format!("{token}-first"), 3);
            match s.sendmail(&sender, &[nobody], &first) {
                Err(Failure {
                    smtp: Some(smtp_sansio::Error::RecipientsRefused(v)),
                    ..
                }) if v.len() == 1 && v[0].0 == nobody && v[0].1.code() >= 500 => {}
                Err(e) => return Err(fail("first sendmail", &e)),
                Ok(_) => return Err(format!("{nobody} was accepted")),
            }
            let m = message(&sender, r0, token, 3);
            expect.message.clone_from(&m);
            s.sendmail(&sender, &[r0], &m)
        }
        Case::RcptRefused => {
            let m = message(&sender, r0, token, 3);
            expect.message.clone_from(&m);
            expect.recipients = vec![r0.to_owned(), r1.to_owned()];
            s.sendmail(&sender, &[r0, server.refused, r1], &m)
        }
        Case::SizeLimit => {
            // Over the advertised SIZE the client refuses before MAIL; the
            // session stays usable for the next message.
            let limit = server.offers.size.unwrap_or_default();
            let lines = usize::try_from(limit / 52 + 100).unwrap_or(usize::MAX);
            let big = message(&sender, r0, token, lines);
            match s.sendmail(&sender, &[r0], &big) {
                Ok(_) => {
                    return Err(format!(
                        "a {} byte message was accepted over SIZE {limit}",
                        big.len()
                    ));
                }
                Err(Failure {
                    smtp:
                        Some(smtp_sansio::Error::Usage(smtp_sansio::UsageError::MessageTooLarge {
                            limit: l,
                            ..
                        })),
                    ..
                }) if l == limit => {}
                Err(e) => return Err(fail("sendmail over SIZE", &e)),
            }
            if ctx.lines.take().iter().any(|l| l.starts_with("C: MAIL")) {
                return Err("MAIL was sent for a message over SIZE".into());
            }
            first_note = format!(
                "{} bytes refused before MAIL (SIZE {limit}), then ",
                big.len()
            );
            let m = message(&sender, r0, token, 3);
            expect.message.clone_from(&m);
            s.sendmail(&sender, &[r0], &m)
        }
        Case::Dsn => {
            let m = message(&sender, r0, token, 3);
            expect.message.clone_from(&m);
            let envid = format!("ENVID={token}");
            let orcpt = format!("ORCPT=rfc822;{r0}");
            expect.mail_params = vec!["RET=HDRS".into(), envid.clone()];
            expect.rcpt_params = vec!["NOTIFY=FAILURE,DELAY".into(), orcpt.clone()];
            // The typed DSN options, as a caller writes them.
            let typed = || -> Result<Envelope, smtp_sansio::UsageError> {
                let to = Recipient::new(r0.parse()?)
                    .notify(Notify::FAILURE | Notify::DELAY)
                    .orcpt(r0)?;
                Ok(Envelope::new(sender.parse()?, [])
                    .ret(Ret::Headers)
                    .envid(token)?
                    .recipient(to))
            };
            match typed() {
                Ok(envelope) => s.send(&envelope, &m),
                Err(e) => Err(Failure::from(smtp_adapter::Error::from(e))),
            }
        }
        _ => {
            let m = message(&sender, r0, token, 3);
            expect.message.clone_from(&m);
            s.sendmail(&sender, &[r0], &m)
        }
    };

    if case == Case::Plain && server.mail_requires_tls {
        // The server refuses MAIL before STARTTLS: the refusal must surface.
        return match result {
            Err(e) if matches!(e.smtp, Some(smtp_sansio::Error::SenderRefused { .. })) => {
                let code = e.code().unwrap_or_default();
                if code != 530 {
                    return Err(format!("MAIL refused with {code}, expected 530"));
                }
                quit(s)?;
                nothing_kept(server, token)?;
                Ok("MAIL refused 530 before STARTTLS, as configured".into())
            }
            Err(e) => Err(fail("sendmail", &e)),
            Ok(_) => Err("MAIL accepted before STARTTLS".into()),
        };
    }

    let result = result.map_err(|e| fail("send", &e))?;
    let trace = ctx.lines.take();
    let refusals = check_result(server, case, &result, &expect)?;
    if case == Case::Pipelining {
        check_pipelined(&trace, 3)?;
    }
    quit(s)?;

    expect.protocol = match &server.store {
        Store::Postfix { .. } => {
            let mut p = String::from(if case == Case::Smtputf8 {
                "UTF8SMTP"
            } else {
                "ESMTP"
            });
            if tls {
                p.push('S');
            }
            if auth {
                p.push('A');
            }
            Some(p)
        }
        Store::Dovecot(_) => Some("LMTP".into()),
        Store::Aiosmtpd(_) => None,
    };
    let kept = wait_kept(ctx, server, token, &expect)?;
    if case == Case::Ipv6 && !kept.received.as_deref().is_some_and(|r| r.contains("::1")) {
        return Err(format!("not received over ::1: {:?}", kept.received));
    }
    let mut note = format!("{first_note}{} bytes kept", kept.message.len());
    if case == Case::Ipv6 {
        // What the server recorded of the client: EHLO name and address.
        if let Some(from) = kept
            .received
            .as_deref()
            .and_then(|r| r.strip_prefix("from "))
        {
            note.push_str(&format!(
                ", from {}",
                from.split(" by ").next().unwrap_or(from)
            ));
        }
    }
    if !refusals.is_empty() {
        note.push_str(&format!(", {refusals}"));
    }
    if result.chunked {
        note.push_str(", BDAT");
    }
    if let Some(p) = &kept.protocol {
        note.push_str(&format!(", {p}"));
    }
    match (kept.tls, kept.auth) {
        (Some(true), Some(true)) => note.push_str(", server saw TLS+AUTH"),
        (Some(true), _) => note.push_str(", server saw TLS"),
        _ => {}
    }
    // The mechanism the client chose (the payload is redacted in the trace).
    if let Some(m) = trace
        .iter()
        .find_map(|l| l.strip_prefix("C: AUTH "))
        .and_then(|rest| rest.split(' ').next())
    {
        note.push_str(&format!(", mechanism {m}"));
    }
    Ok(note)
}

/// Three messages through the adapter's pool, each checked where it is kept.
fn run_pool<S: Session>(ctx: &Context, server: &Server, token: &str) -> Result<String, String> {
    let mut options = Options::default();
    options.timeout = Some(Duration::from_secs(20));
    options.local_name = Some("client.interop.test".into());
    let how = Pooling {
        address: server
            .smtp
            .clone()
            .or_else(|| server.lmtp_tcp.clone())
            .unwrap_or_default(),
        lmtp: server.is_lmtp(),
        starttls: server.mail_requires_tls,
        options,
    };
    let r0 = server.recipients[0];
    let sends: Vec<Outgoing> = (1..=3)
        .map(|i| {
            let t = format!("{token}-{i}");
            (
                server.sender.to_owned(),
                vec![r0.to_owned()],
                message(server.sender, r0, &t, 3),
            )
        })
        .collect();
    ctx.lines.clear();
    let Some(outcome) = S::through_pool(how, &ctx.tls, &sends) else {
        return Err(format!("{} has no pool", S::NAME));
    };
    let (opened, results) = outcome.map_err(|e| fail("pool", &e))?;
    if opened != 1 {
        return Err(format!(
            "{opened} sessions opened for 3 messages, expected 1"
        ));
    }
    let noops = ctx.lines.take().iter().filter(|l| *l == "C: NOOP").count();
    if noops != 2 {
        return Err(format!("{noops} NOOP health checks before 2 reuses"));
    }
    for (i, (result, (_, _, m))) in results.iter().zip(&sends).enumerate() {
        let expect = Expect {
            sender: server.sender.to_owned(),
            recipients: vec![r0.to_owned()],
            message: m.clone(),
            protocol: None,
            tls: server.mail_requires_tls,
            auth: false,
            mail_params: Vec::new(),
            rcpt_params: Vec::new(),
        };
        check_result(server, Case::Pool, result, &expect)?;
        // The token of message 1 is a prefix of no other (1, 2, 3).
        wait_kept(ctx, server, &format!("{token}-{}", i + 1), &expect)?;
    }
    if results.len() != 3 {
        return Err(format!("{} results for 3 messages", results.len()));
    }
    Ok("3 messages kept, 1 session, NOOP before each reuse".into())
}

fn quit<S: Session>(s: S) -> Result<(), String> {
    let r = s.quit().map_err(|e| fail("QUIT", &e))?;
    if r.code() == 221 {
        Ok(())
    } else {
        Err(format!("QUIT answered {}", r.code()))
    }
}

fn check_result(
    server: &Server,
    case: Case,
    result: &TransactionResult,
    expect: &Expect,
) -> Result<String, String> {
    let wants_bdat = server.offers.chunking && !matches!(case, Case::Plain | Case::LargeData);
    if result.chunked != wants_bdat {
        return Err(format!(
            "chunked={} but BDAT expected={wants_bdat}",
            result.chunked
        ));
    }
    if server.is_lmtp() {
        // One final reply per accepted recipient: the unknown one refused at
        // RCPT, the broken one refused after the body, the others 250.
        let mut want_refused = Vec::new();
        let mut notes = Vec::new();
        for r in &result.recipients {
            let address = r.address.to_string();
            let rcpt = r.rcpt_reply.code();
            let fin = r.final_reply.as_ref().map(smtp_sansio::Reply::code);
            let ok = if address == server.unknown {
                rcpt == 550 && fin.is_none()
            } else if address == server.fails_after_data {
                rcpt == 250 && fin.is_some_and(|c| c >= 400)
            } else {
                rcpt == 250 && fin == Some(250)
            };
            if !ok {
                return Err(format!("{address}: RCPT {rcpt}, final {fin:?}"));
            }
            if address == server.unknown {
                notes.push(format!("{address} {rcpt} at RCPT"));
                want_refused.push(address);
            } else if address == server.fails_after_data {
                notes.push(format!("{address} {} after DATA", fin.unwrap_or_default()));
                want_refused.push(address);
            }
        }
        let refused: Vec<String> = result
            .refused()
            .iter()
            .map(|(a, _)| a.to_string())
            .collect();
        if refused != want_refused {
            return Err(format!("refused {refused:?}, expected {want_refused:?}"));
        }
        let expected_refusals = match case {
            Case::LmtpUnix | Case::LmtpTcp | Case::LmtpAfterData => 1,
            _ => 0,
        };
        if want_refused.len() != expected_refusals {
            return Err(format!(
                "{} refused recipients in the result, expected {expected_refusals}",
                want_refused.len()
            ));
        }
        return Ok(notes.join(", "));
    }
    let fin = result.final_reply.as_ref().map(smtp_sansio::Reply::code);
    if fin != Some(250) {
        return Err(format!("final reply {fin:?}"));
    }
    let refused = result.refused();
    let mut note = String::new();
    if case == Case::RcptRefused {
        match refused.as_slice() {
            [(a, r)] if a.to_string() == server.refused && r.code() >= 500 => {
                note = format!("{a} {} at RCPT", r.code());
            }
            _ => {
                let v: Vec<String> = refused
                    .iter()
                    .map(|(a, r)| format!("{a} {}", r.code()))
                    .collect();
                return Err(format!(
                    "refused {v:?}, expected {} with 5xx",
                    server.refused
                ));
            }
        }
    } else if !refused.is_empty() {
        return Err(format!("{} recipients refused", refused.len()));
    }
    let accepted = result.recipients.len() - refused.len();
    if accepted != expect.recipients.len() {
        return Err(format!(
            "{accepted} recipients accepted, {} expected",
            expect.recipients.len()
        ));
    }
    Ok(note)
}

/// Every RCPT was written before the first reply after MAIL was read.
fn check_pipelined(trace: &[String], rcpts: usize) -> Result<(), String> {
    let mail = trace
        .iter()
        .position(|l| l.starts_with("C: MAIL FROM:"))
        .ok_or("no MAIL in the trace")?;
    let first_reply = trace[mail..]
        .iter()
        .position(|l| l.starts_with("S: "))
        .map_or(trace.len(), |i| i + mail);
    let sent = trace[mail..first_reply]
        .iter()
        .filter(|l| l.starts_with("C: RCPT TO:"))
        .count();
    if sent == rcpts {
        Ok(())
    } else {
        Err(format!(
            "{sent} of {rcpts} RCPT written before the reply to MAIL was read"
        ))
    }
}

fn normalise(store: &Store, m: &[u8]) -> Vec<u8> {
    if store.stores_lf() {
        let mut out = Vec::with_capacity(m.len());
        let mut i = 0;
        while i < m.len() {
            if m[i] == b'\r' && m.get(i + 1) == Some(&b'\n') {
                i += 1;
                continue;
            }
            out.push(m[i]);
            i += 1;
        }
        out
    } else {
        m.to_vec()
    }
}

fn compare(store: &Store, kept: &Kept, expect: &Expect) -> Result<(), String> {
    let want = normalise(store, &expect.message);
    if kept.message != want {
        let at = kept
            .message
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(kept.message.len().min(want.len()));
        return Err(format!(
            "message differs at byte {at} (kept {} bytes, sent {} after line-ending normalisation)",
            kept.message.len(),
            want.len()
        ));
    }
    if kept.sender != expect.sender {
        return Err(format!(
            "sender {:?}, sent {:?}",
            kept.sender, expect.sender
        ));
    }
    let mut want_rcpts = expect.recipients.clone();
    want_rcpts.sort();
    if kept.recipients != want_rcpts {
        return Err(format!(
            "recipients {:?}, sent {want_rcpts:?}",
            kept.recipients
        ));
    }
    if expect.protocol.is_some() && kept.protocol != expect.protocol {
        return Err(format!(
            "protocol {:?}, expected {:?}",
            kept.protocol, expect.protocol
        ));
    }
    if kept.tls.is_some_and(|t| t != expect.tls) || kept.auth.is_some_and(|a| a != expect.auth) {
        return Err(format!(
            "server saw tls={:?} auth={:?}, expected {} {}",
            kept.tls, kept.auth, expect.tls, expect.auth
        ));
    }
    for p in &expect.mail_params {
        // Postfix's pipe does not record MAIL parameters; the protocol
        // (UTF8SMTP...) stands for SMTPUTF8 there.
        let recorded = !matches!(store, Store::Postfix { .. }) || p != "SMTPUTF8";
        if recorded && !kept.mail_params.contains(p) {
            return Err(format!(
                "MAIL parameter {p} not seen (saw {:?})",
                kept.mail_params
            ));
        }
    }
    for p in &expect.rcpt_params {
        if !kept
            .rcpt_params
            .iter()
            .all(|r| r.split(' ').any(|x| x == p))
        {
            return Err(format!(
                "RCPT parameter {p} not seen (saw {:?})",
                kept.rcpt_params
            ));
        }
    }
    Ok(())
}

/// Waits until the server kept exactly one message with `token` and it is
/// what was sent.
fn wait_kept(ctx: &Context, server: &Server, token: &str, expect: &Expect) -> Result<Kept, String> {
    let deadline = Instant::now() + ctx.wait;
    loop {
        let last = match server.store.find(token.as_bytes()) {
            Ok(kept) if kept.len() == 1 => match compare(&server.store, &kept[0], expect) {
                Ok(()) => return Ok(kept[0].clone()),
                Err(e) => e,
            },
            Ok(kept) if kept.is_empty() => "nothing kept".to_owned(),
            Ok(kept) => format!("{} different messages kept", kept.len()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!("after {:?}: {last}", ctx.wait));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A refused message must not have been kept (checked after a short delay, as
/// Postfix delivers asynchronously).
fn nothing_kept(server: &Server, token: &str) -> Result<(), String> {
    std::thread::sleep(Duration::from_millis(200));
    match server.store.find(token.as_bytes()) {
        Ok(k) if k.is_empty() => Ok(()),
        Ok(_) => Err("a refused message was kept".into()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_trace() {
        let t: Vec<String> = [
            "C: MAIL FROM:<a>",
            "C: RCPT TO:<b>",
            "C: RCPT TO:<c>",
            "S: 250 ok",
            "S: 250 ok",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert!(check_pipelined(&t, 2).is_ok());
        let t: Vec<String> = [
            "C: MAIL FROM:<a>",
            "S: 250 ok",
            "C: RCPT TO:<b>",
            "S: 250 ok",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert!(check_pipelined(&t, 1).is_err());
    }

    #[test]
    fn line_endings() {
        let s = Store::Dovecot("/nonexistent".into());
        assert_eq!(normalise(&s, b"a\r\nb\r\n"), b"a\nb\n");
        let s = Store::Aiosmtpd("/nonexistent".into());
        assert_eq!(normalise(&s, b"a\r\nb\r\n"), b"a\r\nb\r\n");
    }
}
