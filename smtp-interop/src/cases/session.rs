//! One case through one adapter: the session opened as the case asks, the
//! login, the transaction of the case's row, and what the server kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use smtp_adapter::Options;
use smtp_sansio::mail::{Envelope, Notify, Recipient, Ret};
use smtp_sansio::sasl::{CramMd5, Credentials, Login, Plain, ScramSha256};
use smtp_sansio::{Mechanism, TransactionResult};

use super::check::{Expect, check_pipelined, check_result, nothing_kept, quit, wait_kept};
use super::{Account, Case, Context, SCRAM, Server, fail, message, needs, wants_tls};
use crate::adapters::{Connect, Failure, Outgoing, Pooling, Session};
use crate::store::Store;

fn mechanism(name: &str, account: &Account, password: &str) -> Box<dyn Mechanism> {
    let c = Credentials::new(account.user.as_str(), password);
    match name {
        "LOGIN" => Box::new(Login::new(c)),
        "CRAM-MD5" => Box::new(CramMd5::new(c)),
        SCRAM => Box::new(ScramSha256::new(c)),
        _ => Box::new(Plain::new(c)),
    }
}

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

/// One case other than the pool's: the session, the login, the transaction,
/// what the server kept.
pub(super) fn run_inner<S: Session>(
    ctx: &Context,
    server: &Server,
    case: Case,
    token: &str,
) -> Result<String, String> {
    let (mut s, tls) = open::<S>(ctx, server, case)?;
    let mut first_note = String::new();
    let auth = match authenticate(&mut s, ctx, server, case, &mut first_note)? {
        LoggedIn::None => false,
        LoggedIn::Done => true,
        LoggedIn::Refused(note) => {
            quit(s)?;
            return Ok(note.into());
        }
    };

    // The transaction.
    let mut expect = Expect {
        sender: server.sender.to_owned(),
        recipients: vec![server.recipients[0].to_owned()],
        message: Vec::new(),
        protocol: None,
        tls,
        auth,
        mail_params: Vec::new(),
        rcpt_params: Vec::new(),
    };
    let result = transaction(
        &mut s,
        ctx,
        server,
        case,
        token,
        &mut expect,
        &mut first_note,
    )?;

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
        Store::Exim { .. } => Some(format!(
            "{}esmtp{}{}",
            if case == Case::Smtputf8 { "utf8" } else { "" },
            if tls { "s" } else { "" },
            if auth { "a" } else { "" }
        )),
        Store::Aiosmtpd(_) => None,
    };
    let kept = wait_kept(ctx, server, token, &expect)?;
    if case == Case::Ipv6 && !kept.received.as_deref().is_some_and(|r| r.contains("::1")) {
        return Err(format!("not received over ::1: {:?}", kept.received));
    }
    Ok(note(case, &first_note, &kept, &refusals, &result, &trace))
}

/// Connects as the case asks (SMTP, LMTP, implicit TLS, IPv6), says EHLO,
/// runs STARTTLS when the case wants it and checks that the server
/// advertises what the case needs; returns the session and whether it is
/// encrypted.
fn open<S: Session>(ctx: &Context, server: &Server, case: Case) -> Result<(S, bool), String> {
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
    Ok((s, tls))
}

/// What the login step did.
enum LoggedIn {
    /// No login in this case.
    None,
    /// Logged in.
    Done,
    /// A wrong password refused as it must be: the case ends here, with this
    /// note, after QUIT.
    Refused(&'static str),
}

/// The login of the AUTH cases, after checking that the server offers every
/// mechanism the table covers.
fn authenticate<S: Session>(
    s: &mut S,
    ctx: &Context,
    server: &Server,
    case: Case,
    first_note: &mut String,
) -> Result<LoggedIn, String> {
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
            Ok(LoggedIn::Done)
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
            Ok(LoggedIn::Done)
        }
        Case::Auth(m) => {
            let r = s
                .auth(mechanism(m, &ctx.account, &ctx.account.password))
                .map_err(|e| fail("AUTH", &e))?;
            if r.code() != 235 {
                return Err(format!("AUTH answered {}", r.code()));
            }
            Ok(LoggedIn::Done)
        }
        Case::BadPassword | Case::ScramBadPassword => {
            let wrong = format!("{}-wrong", ctx.account.password);
            let name = if case == Case::ScramBadPassword {
                SCRAM
            } else {
                "PLAIN"
            };
            match s.auth(mechanism(name, &ctx.account, &wrong)) {
                Ok(r) => Err(format!("a wrong password was accepted ({})", r.code())),
                Err(e) if matches!(e.smtp, Some(smtp_sansio::Error::AuthFailed(_))) => {
                    let code = e.code().unwrap_or_default();
                    if code != 535 {
                        return Err(format!("AUTH refused with {code}, expected 535"));
                    }
                    Ok(LoggedIn::Refused("refused 535"))
                }
                Err(e) => Err(fail("AUTH", &e)),
            }
        }
        _ => Ok(LoggedIn::None),
    }
}

/// The transaction of the case's row; `Err` when the case fails before it,
/// `Ok` with what the send returned otherwise. `expect` is filled in with
/// what the server must keep.
fn transaction<S: Session>(
    s: &mut S,
    ctx: &Context,
    server: &Server,
    case: Case,
    token: &str,
    expect: &mut Expect,
    first_note: &mut String,
) -> Result<Result<TransactionResult, Failure>, String> {
    let [r0, r1, r2] = server.recipients;
    let sender = server.sender;
    Ok(match case {
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
        Case::BareLf => {
            let m = format!("Subject: {token}\n\nline\n.\n..two\nend");
            expect.message =
                format!("Subject: {token}\r\n\r\nline\r\n.\r\n..two\r\nend\r\n").into_bytes();
            s.sendmail(sender, &[r0], m.as_bytes())
        }
        Case::AllRefusedThenSent => {
            let nobody = if server.is_lmtp() {
                server.unknown
            } else {
                server.refused
            };
            let first = message(sender, nobody, &format!("{token}-first"), 3);
            match s.sendmail(sender, &[nobody], &first) {
                Err(Failure {
                    smtp: Some(smtp_sansio::Error::RecipientsRefused(v)),
                    ..
                }) if v.len() == 1 && v[0].0 == nobody && v[0].1.code() >= 500 => {}
                Err(e) => return Err(fail("first sendmail", &e)),
                Ok(_) => return Err(format!("{nobody} was accepted")),
            }
            send_row(s, server, token, expect, &[r0], &[r0], 3)
        }
        Case::SizeLimit => over_size(s, ctx, server, token, expect, first_note)?,
        Case::Dsn => dsn(s, server, token, expect),
        // The rows that differ only in their recipients and their length.
        Case::Pipelining => send_row(s, server, token, expect, &[r0, r1, r2], &[r0, r1, r2], 3),
        Case::LmtpUnix | Case::LmtpTcp => send_row(
            s,
            server,
            token,
            expect,
            &[r0, server.unknown, r1],
            &[r0, r1],
            3,
        ),
        Case::LmtpAfterData => send_row(
            s,
            server,
            token,
            expect,
            &[r0, server.fails_after_data],
            &[r0],
            3,
        ),
        Case::Bdat | Case::LargeData => send_row(s, server, token, expect, &[r0], &[r0], 6000),
        Case::RcptRefused => send_row(
            s,
            server,
            token,
            expect,
            &[r0, server.refused, r1],
            &[r0, r1],
            3,
        ),
        _ => send_row(s, server, token, expect, &[r0], &[r0], 3),
    })
}

/// The test message of `lines` filler lines to `to`, of which `kept` must
/// receive it.
fn send_row<S: Session>(
    s: &mut S,
    server: &Server,
    token: &str,
    expect: &mut Expect,
    to: &[&str],
    kept: &[&str],
    lines: usize,
) -> Result<TransactionResult, Failure> {
    let m = message(server.sender, server.recipients[0], token, lines);
    expect.message.clone_from(&m);
    expect.recipients = kept.iter().map(|r| (*r).to_owned()).collect();
    s.sendmail(server.sender, to, &m)
}

/// Over the advertised SIZE the client refuses before MAIL; the session
/// stays usable for the next message.
fn over_size<S: Session>(
    s: &mut S,
    ctx: &Context,
    server: &Server,
    token: &str,
    expect: &mut Expect,
    first_note: &mut String,
) -> Result<Result<TransactionResult, Failure>, String> {
    let (sender, r0) = (server.sender, server.recipients[0]);
    let limit = server.offers.size.unwrap_or_default();
    let lines = usize::try_from(limit / 52 + 100).unwrap_or(usize::MAX);
    let big = message(sender, r0, token, lines);
    match s.sendmail(sender, &[r0], &big) {
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
    *first_note = format!(
        "{} bytes refused before MAIL (SIZE {limit}), then ",
        big.len()
    );
    Ok(send_row(s, server, token, expect, &[r0], &[r0], 3))
}

/// The DSN parameters, given with the typed options as a caller writes them.
fn dsn<S: Session>(
    s: &mut S,
    server: &Server,
    token: &str,
    expect: &mut Expect,
) -> Result<TransactionResult, Failure> {
    let (sender, r0) = (server.sender, server.recipients[0]);
    let m = message(sender, r0, token, 3);
    expect.message.clone_from(&m);
    let envid = format!("ENVID={token}");
    let orcpt = format!("ORCPT=rfc822;{r0}");
    expect.mail_params = vec!["RET=HDRS".into(), envid.clone()];
    expect.rcpt_params = vec!["NOTIFY=FAILURE,DELAY".into(), orcpt.clone()];
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

/// The note of a passing cell: what was kept, and what the server and the
/// trace say about how.
fn note(
    case: Case,
    first_note: &str,
    kept: &crate::store::Kept,
    refusals: &str,
    result: &TransactionResult,
    trace: &[String],
) -> String {
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
    note
}

/// Three messages through the adapter's pool, each checked where it is kept.
pub(super) fn run_pool<S: Session>(
    ctx: &Context,
    server: &Server,
    token: &str,
) -> Result<String, String> {
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
