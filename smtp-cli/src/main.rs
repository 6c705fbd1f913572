//! `smtp-send`: sends one message over SMTP or LMTP. See `--help`.
//!
//! Features: TLS as smtp-blocking's (default `ring`, `rustls-platform-verifier`);
//! `demo`, the `demo` command (the embedded test server, smtp-testkit); `dkim`,
//! `--dkim-key` (mail-auth, with a DNS resolver; needs Rust 1.88). The default
//! build needs Rust 1.85.

#![forbid(unsafe_code)]

#[cfg(feature = "demo")]
mod demo;
mod failure;
mod json;
#[cfg(feature = "mx")]
mod mx;
mod sendmail;
#[cfg(feature = "tls")]
mod tls;

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use smtp_blocking::smtp_adapter::Report;
use smtp_blocking::smtp_sansio::{self, Escaped, Transaction, client::PreparedMessage, sasl};
use smtp_blocking::{InitialResponse, Options, SmtpClient, TransactionResult};

use failure::{Failure, failure, report_failure};

const USAGE: &str = "\
usage: smtp-send [--server HOST[:PORT] | --unix PATH] [--lmtp]
                 [--tls none|starttls|implicit] [--ca-file PEM] [--insecure]
                 [--helo NAME] [--source ADDR] [--timeout SECS]
                 [--user U [--password-file FILE | --password P]] [--auth MECH]
                 [--allow-plaintext-auth]
                 [--from ADDR] [--to ADDR]... [--header-envelope]
                 [--mail-option OPT]... [--rcpt-option OPT]...
                 [--no-pipelining] [--no-chunking] [-v|-vv] [--json]
                 [--dkim-key PEM --dkim-selector S --dkim-domain D] [MESSAGE_FILE|-]
       smtp-send --mx [--mx-policy plaintext|may|encrypt|verify|dane-only]
                 [--helo NAME] [--timeout SECS] [--ca-file PEM] [--from ADDR]
                 [--to ADDR]... [--mail-option OPT]... [-v] [--json] [MESSAGE_FILE|-]
       smtp-send demo   (a build with the demo feature)
       smtp-send sendmail [-t] [-i] [-f SENDER] [-F NAME] [RECIPIENT...]
                 (sendmail(1) with a config file: smtp-send sendmail --help)

--tls starttls requires STARTTLS: the message is not sent when it is not offered.

--user sends the password only over TLS with a verified certificate, or to a
loopback address or Unix socket: in plaintext to another server, or over
--insecure TLS, smtp-send exits 3 and sends nothing (no AUTH, no MAIL) unless
--allow-plaintext-auth is given (the one opt-in for both).
Without --from and --to (or with --header-envelope) the envelope comes from the
message headers (Sender/From; To, Cc, Bcc; or one Resent-* block) and Bcc is
not transmitted. --auth is one of PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256,
XOAUTH2, OAUTHBEARER (the password is the token for the last two); without it
the best offered of CRAM-MD5, PLAIN, LOGIN is used.

--dkim-key (a build with the dkim feature) signs the message with DKIM
(RFC 6376) before sending it: the key is a PEM file (RSA, rsa-sha256; or
Ed25519, ed25519-sha256), published as S._domainkey.D. Bare CR and LF are
turned into CRLF before signing, so that the signature holds for the message
as the server stores it.

The password for --user comes from --password-file FILE (its first line), else
the SMTP_PASSWORD environment variable. --password P works too, but every user
of the machine can read a command line (ps, /proc): prefer the other two.

--mx (a build with the mx feature) delivers to each recipient's mail
exchangers instead of one server: MX order with fallback, DANE, MTA-STS and
REQUIRETLS (--mail-option REQUIRETLS), DNS from /etc/resolv.conf (the DNSSEC
AD bit trusted only from a loopback resolver, else validated here). The
policy: may (default: TLS when offered, unverified, unless DANE or MTA-STS
asks for more), encrypt (TLS required), verify (TLS verified: DANE, else the
MX name), dane-only, plaintext (never TLS; no DANE or MTA-STS). --ca-file
replaces the roots of verified TLS. One line per recipient on stdout:
delivered (MX, address, queue id), bounced (the reply), deferred (the reason
and enhanced code), or uncertain. Exit status: 0 all delivered; 1 some
delivered, others not; 3 all bounced; 4 none delivered, some deferred (safe
to try again later); 5 a recipient's outcome is unknown (a retry may deliver
twice); 2 bad arguments.

Exit status: 0 every recipient accepted; 1 some refused; 2 bad arguments or
message (nothing sent); 3 refused by the server (a 4xx or 5xx reply to the end
of the message, 421 included, too; also when the connection failed after the
refusal); 4 connection, TLS, timeout or protocol failure before the end of the
message went out (not sent: safe to retry); 5 the end of the message went out
and no final reply came (the server may have accepted it: a retry may deliver
it twice).";

/// Exit statuses of the contract.
const EXIT_PARTIAL: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_REFUSED: u8 = 3;
const EXIT_FAILURE: u8 = 4;
const EXIT_UNCERTAIN: u8 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    None,
    StartTls,
    Implicit,
}

#[derive(Debug)]
struct Args {
    server: Option<String>,
    unix: Option<PathBuf>,
    lmtp: bool,
    tls: TlsMode,
    ca_file: Option<PathBuf>,
    insecure: bool,
    helo: Option<String>,
    source: Option<SocketAddr>,
    timeout: Option<Duration>,
    user: Option<String>,
    password: Option<Password>,
    password_file: Option<PathBuf>,
    auth: Option<String>,
    allow_plaintext_auth: bool,
    from: Option<String>,
    to: Vec<String>,
    header_envelope: bool,
    mail_options: Vec<String>,
    rcpt_options: Vec<String>,
    no_pipelining: bool,
    no_chunking: bool,
    verbose: u8,
    json: bool,
    dkim_key: Option<PathBuf>,
    dkim_selector: Option<String>,
    dkim_domain: Option<String>,
    message: Option<String>,
    /// `--mx`: deliver to the recipients' mail exchangers.
    mx: bool,
    mx_policy: Option<String>,
    /// The hidden test hook of `--mx` (see `mx::TestAnswers`).
    mx_test_answers: Option<PathBuf>,
}

/// A password, kept out of `Debug`.
struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The most bytes read from a password file (an OAuth token fits many times).
const MAX_PASSWORD_FILE: u64 = 64 * 1024;

/// The environment variable a password is read from.
const PASSWORD_VARIABLE: &str = "SMTP_PASSWORD";

/// `--password-file`: the file's first line, without its line ending.
fn read_password_file(path: &std::path::Path) -> Result<Password, Failure> {
    let what = |e: &dyn std::fmt::Display| {
        Failure::usage(format!("--password-file {}: {e}", path.display()))
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PASSWORD_FILE + 1).read_to_string(&mut text))
        .map_err(|e| what(&e))?;
    if text.len() as u64 > MAX_PASSWORD_FILE {
        return Err(what(&"longer than 64 KiB"));
    }
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(what(&"the first line is empty"));
    }
    Ok(Password(line.to_owned()))
}

/// `SMTP_PASSWORD`, for `--user` given without a password option.
fn password_from_env() -> Result<Password, Failure> {
    match std::env::var(PASSWORD_VARIABLE) {
        Ok(p) if !p.is_empty() => Ok(Password(p)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Err(Failure::usage(format!(
            "--user needs a password: --password-file FILE or {PASSWORD_VARIABLE} \
             (or --password, which other users can see)"
        ))),
        Err(std::env::VarError::NotUnicode(_)) => Err(Failure::usage(format!(
            "{PASSWORD_VARIABLE} is not valid UTF-8"
        ))),
    }
}

fn parse_args(mut parser: lexopt::Parser) -> Result<Args, Failure> {
    use lexopt::prelude::*;
    let mut a = Args {
        server: None,
        unix: None,
        lmtp: false,
        tls: TlsMode::None,
        ca_file: None,
        insecure: false,
        helo: None,
        source: None,
        timeout: None,
        user: None,
        password: None,
        password_file: None,
        auth: None,
        allow_plaintext_auth: false,
        from: None,
        to: Vec::new(),
        header_envelope: false,
        mail_options: Vec::new(),
        rcpt_options: Vec::new(),
        no_pipelining: false,
        no_chunking: false,
        verbose: 0,
        json: false,
        dkim_key: None,
        dkim_selector: None,
        dkim_domain: None,
        message: None,
        mx: false,
        mx_policy: None,
        mx_test_answers: None,
    };
    let bad = |e: lexopt::Error| Failure::usage(e.to_string());
    let text = |v: std::ffi::OsString| -> Result<String, Failure> {
        v.into_string()
            .map_err(|_| Failure::usage("argument is not valid UTF-8"))
    };
    while let Some(arg) = parser.next().map_err(bad)? {
        match arg {
            Long("server") => a.server = Some(text(parser.value().map_err(bad)?)?),
            Long("unix") => a.unix = Some(PathBuf::from(parser.value().map_err(bad)?)),
            Long("lmtp") => a.lmtp = true,
            Long("tls") => {
                a.tls = match text(parser.value().map_err(bad)?)?.as_str() {
                    "none" => TlsMode::None,
                    "starttls" => TlsMode::StartTls,
                    "implicit" => TlsMode::Implicit,
                    other => return Err(Failure::usage(format!("--tls: unknown mode {other:?}"))),
                }
            }
            Long("ca-file") => a.ca_file = Some(PathBuf::from(parser.value().map_err(bad)?)),
            Long("insecure") => a.insecure = true,
            Long("helo") => a.helo = Some(text(parser.value().map_err(bad)?)?),
            Long("source") => {
                let s = text(parser.value().map_err(bad)?)?;
                let addr = s
                    .parse::<SocketAddr>()
                    .or_else(|_| {
                        s.parse::<std::net::IpAddr>()
                            .map(|ip| SocketAddr::new(ip, 0))
                    })
                    .map_err(|_| Failure::usage(format!("--source: not an address: {s:?}")))?;
                a.source = Some(addr);
            }
            Long("timeout") => {
                let s = text(parser.value().map_err(bad)?)?;
                let secs: f64 = s
                    .parse()
                    .map_err(|_| Failure::usage(format!("--timeout: not a number: {s:?}")))?;
                if !(secs > 0.0 && secs.is_finite()) {
                    return Err(Failure::usage(
                        "--timeout must be a positive number of seconds",
                    ));
                }
                a.timeout = Some(Duration::from_secs_f64(secs));
            }
            Long("user") => a.user = Some(text(parser.value().map_err(bad)?)?),
            Long("password") => a.password = Some(Password(text(parser.value().map_err(bad)?)?)),
            Long("password-file") => {
                a.password_file = Some(PathBuf::from(parser.value().map_err(bad)?));
            }
            Long("auth") => a.auth = Some(text(parser.value().map_err(bad)?)?.to_ascii_uppercase()),
            Long("allow-plaintext-auth") => a.allow_plaintext_auth = true,
            Long("from") => a.from = Some(text(parser.value().map_err(bad)?)?),
            Long("to") => a.to.push(text(parser.value().map_err(bad)?)?),
            Long("header-envelope") => a.header_envelope = true,
            Long("mail-option") => a.mail_options.push(text(parser.value().map_err(bad)?)?),
            Long("rcpt-option") => a.rcpt_options.push(text(parser.value().map_err(bad)?)?),
            Long("no-pipelining") => a.no_pipelining = true,
            Long("no-chunking") => a.no_chunking = true,
            Short('v') => a.verbose = a.verbose.saturating_add(1),
            Long("verbose") => a.verbose = a.verbose.saturating_add(1),
            Long("json") => a.json = true,
            Long("dkim-key") => a.dkim_key = Some(PathBuf::from(parser.value().map_err(bad)?)),
            Long("dkim-selector") => a.dkim_selector = Some(text(parser.value().map_err(bad)?)?),
            Long("dkim-domain") => a.dkim_domain = Some(text(parser.value().map_err(bad)?)?),
            Long("mx") => a.mx = true,
            Long("mx-policy") => a.mx_policy = Some(text(parser.value().map_err(bad)?)?),
            Long("mx-test-answers") => {
                a.mx_test_answers = Some(PathBuf::from(parser.value().map_err(bad)?));
            }
            Long("help") | Short('h') => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            Value(v) if a.message.is_none() => a.message = Some(text(v)?),
            other => return Err(Failure::usage(other.unexpected().to_string())),
        }
    }
    if a.server.is_some() && a.unix.is_some() {
        return Err(Failure::usage("--server and --unix exclude each other"));
    }
    if a.password.is_some() && a.password_file.is_some() {
        return Err(Failure::usage(
            "--password and --password-file exclude each other",
        ));
    }
    if a.user.is_none() && (a.password.is_some() || a.password_file.is_some()) {
        return Err(Failure::usage("a password needs --user"));
    }
    if a.user.is_some() && a.password.is_none() {
        a.password = Some(match &a.password_file {
            Some(path) => read_password_file(path)?,
            None => password_from_env()?,
        });
    }
    if a.auth.is_some() && a.user.is_none() {
        return Err(Failure::usage("--auth needs --user and --password"));
    }
    let dkim = [
        a.dkim_key.is_some(),
        a.dkim_selector.is_some(),
        a.dkim_domain.is_some(),
    ];
    if dkim.contains(&true) && dkim.contains(&false) {
        return Err(Failure::usage(
            "--dkim-key, --dkim-selector and --dkim-domain go together",
        ));
    }
    if !a.mx && (a.mx_policy.is_some() || a.mx_test_answers.is_some()) {
        return Err(Failure::usage("--mx-policy needs --mx"));
    }
    if a.unix.is_some() && a.tls == TlsMode::Implicit {
        return Err(Failure::usage("--tls implicit needs --server"));
    }
    Ok(a)
}

fn main() -> ExitCode {
    if let Some(args) = sendmail::invoked() {
        return sendmail::main(args);
    }
    let mut raw = std::env::args_os().skip(1).peekable();
    if raw.peek().is_some_and(|a| a == "demo") {
        return run_demo();
    }
    let json = std::env::args_os().any(|a| a == "--json");
    let outcome = match parse_args(lexopt::Parser::from_env()) {
        Ok(args) if args.mx => return run_mx(&args, json),
        parsed => parsed.and_then(|args| run(&args)),
    };
    match outcome {
        Ok((result, status)) => {
            if json {
                println!("{}", json::line(&Report::from(&result)));
            } else {
                print_refused(result.refused());
            }
            ExitCode::from(status)
        }
        Err(f) => report_failure(f, json),
    }
}

/// `smtp-send --mx`.
#[cfg(feature = "mx")]
fn run_mx(args: &Args, json: bool) -> ExitCode {
    mx::main(args, json)
}

/// `smtp-send --mx` in a build without it.
#[cfg(not(feature = "mx"))]
fn run_mx(_: &Args, json: bool) -> ExitCode {
    report_failure(
        Failure::usage(
            "--mx: this smtp-send was built without the mx feature \
             (`cargo install smtp-cli --features mx`; needs Rust 1.88)",
        ),
        json,
    )
}

/// `smtp-send demo`: the session against the embedded server.
#[cfg(feature = "demo")]
fn run_demo() -> ExitCode {
    demo::run()
}

/// `smtp-send demo` in a build without the test server: how to get one.
#[cfg(not(feature = "demo"))]
fn run_demo() -> ExitCode {
    eprintln!(
        "smtp-send: demo: this smtp-send was built without the demo feature (the embedded \
         test server); install it with `cargo install smtp-cli --features demo`, or run \
         `cargo run -p smtp-cli --features demo -- demo` in the repository"
    );
    ExitCode::from(EXIT_USAGE)
}

/// Each refused recipient with the server's reply, one a line on stderr,
/// the server's text escaped.
fn print_refused<'a>(
    refused: impl IntoIterator<Item = (&'a smtp_sansio::Address, &'a smtp_sansio::Reply)>,
) {
    for (address, reply) in refused {
        eprintln!("smtp-send: refused {}: {reply}", Escaped(address.as_str()));
    }
}

/// What will be sent, checked before connecting.
enum Plan {
    Sendmail(Transaction),
    Message(PreparedMessage),
}

fn read_message(path: Option<&str>) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    match path {
        None | Some("-") => std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Failure::usage(format!("reading the message from stdin: {e}")))?,
        Some(p) => {
            buf = std::fs::read(p).map_err(|e| Failure::usage(format!("reading {p}: {e}")))?;
            buf.len()
        }
    };
    Ok(buf)
}

/// The message with its DKIM signature when asked for: the `DKIM-Signature`
/// header field (empty without signing) and the message, line endings
/// normalised when signed.
#[cfg(feature = "dkim")]
fn sign(args: &Args, message: Vec<u8>) -> Result<(Vec<u8>, Vec<u8>), Failure> {
    use smtp_blocking::{DkimKey, DkimSigner};
    let (Some(path), Some(selector), Some(domain)) =
        (&args.dkim_key, &args.dkim_selector, &args.dkim_domain)
    else {
        return Ok((Vec::new(), message));
    };
    let usage = |e: smtp_blocking::Error| Failure::usage(e.to_string());
    let key = DkimKey::from_pem_file(path).map_err(usage)?;
    let signer = DkimSigner::new(key, domain, selector).map_err(usage)?;
    let signed = signer
        .sign(message)
        .and_then(smtp_blocking::Message::render);
    let (prefix, message) = signed.map_err(usage)?.into_parts();
    Ok((prefix, message.into_owned()))
}

#[cfg(not(feature = "dkim"))]
fn sign(args: &Args, message: Vec<u8>) -> Result<(Vec<u8>, Vec<u8>), Failure> {
    if args.dkim_key.is_some() {
        return Err(Failure::usage(
            "--dkim-key: this smtp-send was built without the dkim feature \
             (`cargo install smtp-cli --features dkim`)",
        ));
    }
    Ok((Vec::new(), message))
}

fn plan(args: &Args, message: &[u8], prefix: &[u8]) -> Result<Plan, Failure> {
    let usage = |e: smtp_sansio::UsageError| Failure::usage(e.to_string());
    let le = smtp_blocking::LineEndings::Normalize;
    let from_headers = args.header_envelope || (args.from.is_none() && args.to.is_empty());
    if from_headers || args.from.is_none() || args.to.is_empty() {
        let to = (!from_headers && !args.to.is_empty()).then_some(args.to.as_slice());
        let from = if from_headers {
            None
        } else {
            args.from.as_deref()
        };
        let p = PreparedMessage::new(
            message,
            from,
            to,
            &args.mail_options,
            &args.rcpt_options,
            le,
        )
        .map_err(usage)?;
        let mut p = p;
        if let Some(size) = p.transaction.size.as_mut() {
            *size += prefix.len() as u64;
        }
        return Ok(Plan::Message(p));
    }
    let from = args.from.as_deref().unwrap_or_default();
    let size = smtp_sansio::body::message_size(message, le).map_err(usage)? + prefix.len() as u64;
    let tx = Transaction::from_strs(from, &args.to, &args.mail_options, &args.rcpt_options)
        .map_err(usage)?
        .size(size);
    Ok(Plan::Sendmail(tx))
}

fn run(args: &Args) -> Result<(TransactionResult, u8), Failure> {
    let message = read_message(args.message.as_deref())?;
    let (prefix, message) = sign(args, message)?;
    let plan = plan(args, &message, &prefix)?;
    #[cfg(feature = "tls")]
    let tls_config = tls::config(args.ca_file.as_deref(), args.insecure)?;
    #[cfg(not(feature = "tls"))]
    let tls_config: Option<std::sync::Arc<smtp_blocking::ClientConfig>> = {
        if args.tls != TlsMode::None || args.ca_file.is_some() || args.insecure {
            return Err(Failure::usage(
                "this smtp-send was built without TLS (the tls feature)",
            ));
        }
        None
    };

    let mut options = Options::default();
    options.local_name.clone_from(&args.helo);
    options.source_address = args.source;
    options.timeout = args.timeout;
    options.pipelining = !args.no_pipelining;
    options.chunking = !args.no_chunking;
    options.require_tls = args.tls != TlsMode::None;
    options.allow_plaintext_auth = args.allow_plaintext_auth;
    options.debug_level = args.verbose.into();
    if args.lmtp {
        options.protocol = smtp_blocking::Protocol::Lmtp;
    }

    let connected = match (&args.unix, &args.server) {
        #[cfg(unix)]
        (Some(path), _) => SmtpClient::connect_unix(path, options),
        #[cfg(not(unix))]
        (Some(_), _) => {
            return Err(Failure::usage("--unix: this system has no Unix sockets"));
        }
        (None, server) => {
            let server = server.as_deref().unwrap_or("localhost");
            match args.tls {
                TlsMode::Implicit => SmtpClient::connect_tls(server, options, tls_config.clone()),
                _ if args.lmtp => SmtpClient::connect_lmtp(server, options),
                _ => SmtpClient::connect(server, options),
            }
        }
    };
    let mut smtp = connected.map_err(failure)?;
    if args.verbose > 0 {
        smtp.set_transcript(Box::new(std::io::stderr()));
    }
    if let Some(tls) = tls_config {
        smtp.set_tls_config(tls);
    }
    if args.tls == TlsMode::StartTls {
        smtp.starttls().map_err(failure)?;
    }
    if let (Some(user), Some(Password(password))) = (&args.user, &args.password) {
        let done = match args.auth.as_deref() {
            None => smtp.login(user, password),
            Some(mech) => {
                let creds = sasl::Credentials::new(user.as_str(), password.as_str());
                let m: Box<dyn smtp_blocking::Mechanism> = match mech {
                    "PLAIN" => Box::new(sasl::Plain::new(creds)),
                    "LOGIN" => Box::new(sasl::Login::new(creds)),
                    "CRAM-MD5" => Box::new(sasl::CramMd5::new(creds)),
                    "SCRAM-SHA-256" => Box::new(sasl::ScramSha256::new(creds)),
                    "XOAUTH2" => Box::new(sasl::XOAuth2::new(
                        user.as_str(),
                        sasl::Secret::new(password.as_str()),
                    )),
                    "OAUTHBEARER" => Box::new(sasl::OAuthBearer::new(
                        user.as_str(),
                        sasl::Secret::new(password.as_str()),
                    )),
                    other => {
                        return Err(Failure::usage(format!("--auth: unknown mechanism {other}")));
                    }
                };
                smtp.auth(m, InitialResponse::Send)
            }
        };
        done.map_err(failure)?;
    }
    let result = match plan {
        Plan::Sendmail(tx) => {
            let mut reader = (&prefix[..]).chain(&message[..]);
            smtp.send_from_reader(&tx.into(), &mut reader)
        }
        Plan::Message(p) => {
            let body = message.get(p.body_offset..).unwrap_or_default();
            let mut reader = (&prefix[..]).chain(&p.headers[..]).chain(body);
            smtp.send_from_reader(&p.transaction.into(), &mut reader)
        }
    }
    .map_err(failure)?;
    let _ = smtp.quit();
    let status = if result.refused().is_empty() {
        0
    } else {
        EXIT_PARTIAL
    };
    Ok((result, status))
}
