//! `smtp-send sendmail`: the `sendmail(1)` command line that cron, git
//! send-email, mutt, PHP's `mail()` and most Unix tools send mail through,
//! with msmtp's and Postfix's interface as the anchors. The message comes on
//! stdin, the server and the login from a config file ([`config`]), and the
//! exit status follows sysexits.h (see [`HELP`]).

mod config;
mod headers;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use smtp_blocking::smtp_sansio::{
    self, Address, Escaped, LineEndings, client::PreparedMessage, envelope::parse_address_list,
    sasl,
};
use smtp_blocking::{Delivery, Envelope, Error, SmtpClient, Tls};

use config::{Account, Config, ConfigError, Secret, TlsMode};
use headers::{complete_headers, scan};

/// Exit statuses of sysexits.h.
pub(crate) mod exit {
    /// EX_USAGE: the command line is wrong.
    pub(crate) const USAGE: u8 = 64;
    /// EX_DATAERR: the message cannot be sent as it is.
    pub(crate) const DATAERR: u8 = 65;
    /// EX_NOINPUT: the message could not be read.
    pub(crate) const NOINPUT: u8 = 66;
    /// EX_NOUSER: recipients refused for good.
    pub(crate) const NOUSER: u8 = 67;
    /// EX_UNAVAILABLE: the server refused for good.
    pub(crate) const UNAVAILABLE: u8 = 69;
    /// EX_SOFTWARE: a bug of ours.
    pub(crate) const SOFTWARE: u8 = 70;
    /// EX_IOERR: the end of the message went out and no reply came.
    pub(crate) const IOERR: u8 = 74;
    /// EX_TEMPFAIL: not delivered; trying again later may work.
    pub(crate) const TEMPFAIL: u8 = 75;
    /// EX_PROTOCOL: the server broke the protocol.
    pub(crate) const PROTOCOL: u8 = 76;
    /// EX_NOPERM: the login was refused, or a file open to others was.
    pub(crate) const NOPERM: u8 = 77;
    /// EX_CONFIG: the config file is missing or wrong.
    pub(crate) const CONFIG: u8 = 78;
}

/// `smtp-send sendmail --help`.
pub(crate) const HELP: &str = "\
usage: smtp-send sendmail [-t] [-i|-oi] [-f SENDER] [-F NAME] [-v]
                          [--config PATH] [--] [RECIPIENT...]
       sendmail ...       (the same, when smtp-send is invoked by that name)

Sends the message on stdin (read to its end: a line with a single dot does
not end it, with or without -i) through the account of a config file.

  -t           recipients also from the To, Cc and Bcc headers (or the one
               Resent-* block), added to those on the command line, as msmtp
               and Postfix do. Bcc and Resent-Bcc are never transmitted.
  -f SENDER    the envelope sender (also -r); -f '<>' for the null sender.
               Picks the account whose `from` is SENDER, else the default.
               Without -f: the default account's `from`, else the message's
               Sender or From address.
  -F NAME      the full name in the From header that is added when the
               message has none (From: NAME <SENDER>); Date and Message-ID
               are added when missing too.
  -v           the mail transaction's transcript (MAIL to QUIT) on stderr.
  --config P   the config file; else $SMTP_SEND_CONFIG, else
               $XDG_CONFIG_HOME/smtp-send/config.toml, else
               ~/.config/smtp-send/config.toml.
  Accepted and ignored: -i, -oi, -bm, -B7BIT, -B8BITMIME, -oem, -oee, -oep,
  -oeq, -oew, -om, -odi, -odb, -odq. Any other option: exit 64.

Config file (TOML):
  default = \"work\"                      # needed with more than one account
  [account.work]
  host = \"smtp.example.org\"
  port = 587                            # default by tls: 587, 465, else 25
  tls = \"starttls\"                      # starttls (required) | implicit |
                                        # opportunistic | none; default:
                                        # implicit on port 465, else starttls
  ca_file = \"ca.pem\"                    # trust this CA instead of the system's
  user = \"alice@example.org\"
  password_command = \"pass show mail\"   # or password_file = \"PATH\" (first
                                        # line), or password = \"...\"
  auth = \"PLAIN\"                        # default: the best offered
  from = \"alice@example.org\"            # default sender; -f picks by it
  allow_plaintext_auth = false          # a password in the clear to a
                                        # server that is not loopback
  timeout = 60                          # seconds, each wait for a reply
  helo = \"client.example.org\"
A config file that others can write to and that leads to a password, or that
others can read and holds a `password`, is refused (exit 77); so is a
password_file that others can read: chmod 600.

Exit status (sysexits.h):
   0  every recipient accepted
  64  EX_USAGE: bad option, no recipient, no sender
  65  EX_DATAERR: the message cannot be sent as it is (with -t: no recipient
      in it; a bad address in its headers)
  66  EX_NOINPUT: stdin could not be read
  67  EX_NOUSER: every recipient refused with 5xx; or some accepted and the
      others refused with 5xx (the message went to those accepted)
  69  EX_UNAVAILABLE: refused for good (5xx, a required STARTTLS not offered,
      message over the server's SIZE); or some recipients accepted and others
      refused with a 4xx (the message went to those accepted: not 75, so that
      a caller that retries does not send it to them twice)
  74  EX_IOERR: the end of the message went out and no reply came: the server
      may have it; sending it again may deliver it twice (not 75, on purpose)
  75  EX_TEMPFAIL: not delivered, try later: a 4xx or 421 reply, every
      recipient refused and one of them with 4xx, connection, TLS or timeout
      failure before the end of the message went out
  76  EX_PROTOCOL: the server broke the protocol before the end went out
  77  EX_NOPERM: the login was refused (5xx); a config or password file open
      to others
  78  EX_CONFIG: no config file, a bad one, a password_command that failed, a
      password that would go in the clear (set tls, or allow_plaintext_auth)";

/// The mechanisms `auth` may name.
pub(crate) const MECHANISMS: &[&str] = &[
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "SCRAM-SHA-256",
    "XOAUTH2",
    "OAUTHBEARER",
];

/// The `-o` options accepted and ignored: `-oi` (the input is read to its end
/// anyway), error reporting (`-oe?`: the exit status and stderr say it),
/// delivery mode (`-od?`: always at once) and `-om`.
const IGNORED_O: &[&str] = &["i", "em", "ee", "ep", "eq", "ew", "m", "di", "db", "dq"];

/// The arguments after `sendmail` when the command line asks for the sendmail
/// mode: `smtp-send sendmail ...`, or the binary invoked as `sendmail`.
pub(crate) fn invoked() -> Option<Vec<OsString>> {
    let mut all = std::env::args_os();
    let argv0 = all.next().unwrap_or_default();
    let rest: Vec<OsString> = all.collect();
    let name = Path::new(&argv0);
    let exe = name
        .extension()
        .is_none_or(|e| e.eq_ignore_ascii_case("exe"));
    if exe && name.file_stem().is_some_and(|s| s == "sendmail") {
        return Some(rest);
    }
    match rest.split_first() {
        Some((first, tail)) if first == "sendmail" => Some(tail.to_vec()),
        _ => None,
    }
}

/// Why the mode stopped, with its exit status.
#[derive(Debug)]
struct Fail {
    status: u8,
    message: String,
}

impl Fail {
    fn new(status: u8, message: impl Into<String>) -> Fail {
        Fail {
            status,
            message: message.into(),
        }
    }
}

impl From<ConfigError> for Fail {
    fn from(e: ConfigError) -> Fail {
        Fail::new(e.status(), e.to_string())
    }
}

/// The command line.
#[derive(Debug, Default)]
struct Args {
    read_recipients: bool,
    sender: Option<String>,
    full_name: Option<String>,
    recipients: Vec<String>,
    config: Option<PathBuf>,
    verbose: u8,
}

/// Runs the mode on `args` (what follows `sendmail`).
pub(crate) fn main(args: Vec<OsString>) -> ExitCode {
    let outcome = parse_args(args).and_then(|a| match a {
        Some(a) => run(&a),
        None => Ok(()),
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("smtp-send: {}", Escaped(&f.message));
            ExitCode::from(f.status)
        }
    }
}

/// The command line, or `None` after `--help`.
fn parse_args(args: Vec<OsString>) -> Result<Option<Args>, Fail> {
    use lexopt::prelude::*;
    let usage = |m: String| Fail::new(exit::USAGE, m);
    let bad = |e: lexopt::Error| Fail::new(exit::USAGE, e.to_string());
    let text = |v: OsString| {
        v.into_string()
            .map_err(|v| usage(format!("not valid UTF-8: {v:?}")))
    };
    let mut a = Args::default();
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next().map_err(bad)? {
        match arg {
            Short('t') => a.read_recipients = true,
            Short('i') => {}
            Short('f' | 'r') => a.sender = Some(text(p.value().map_err(bad)?)?),
            Short('F') => a.full_name = Some(text(p.value().map_err(bad)?)?),
            Short('v') => a.verbose = a.verbose.saturating_add(1),
            Short('o') => {
                let v = text(p.value().map_err(bad)?)?;
                if !IGNORED_O.contains(&v.as_str()) {
                    return Err(usage(format!("-o{v}: not supported")));
                }
            }
            Short('b') => {
                let v = text(p.value().map_err(bad)?)?;
                if v != "m" {
                    return Err(usage(format!(
                        "-b{v}: not supported (only -bm, sending a message: \
                         smtp-send has no queue and no daemon)"
                    )));
                }
            }
            Short('B') => {
                let v = text(p.value().map_err(bad)?)?;
                if !v.eq_ignore_ascii_case("7BIT") && !v.eq_ignore_ascii_case("8BITMIME") {
                    return Err(usage(format!("-B{v}: not a body type")));
                }
            }
            Long("config") => a.config = Some(PathBuf::from(p.value().map_err(bad)?)),
            Long("help") => {
                // A closed stdout (`| head`) is no error worth a panic.
                let _ = writeln!(std::io::stdout(), "{HELP}");
                return Ok(None);
            }
            Value(v) => a.recipients.push(text(v)?),
            other => {
                return Err(usage(format!(
                    "{} (see smtp-send sendmail --help)",
                    other.unexpected()
                )));
            }
        }
    }
    Ok(Some(a))
}

fn run(args: &Args) -> Result<(), Fail> {
    let config = config::load(&config::path(args.config.as_deref())?)?;
    let mut message = Vec::new();
    std::io::stdin().read_to_end(&mut message).map_err(|e| {
        Fail::new(
            exit::NOINPUT,
            format!("reading the message from stdin: {e}"),
        )
    })?;
    let (sender, account) = sender_and_account(&config, args, &message)?;
    let message = complete_headers(message, &sender, args.full_name.as_deref())?;
    let recipients = recipients(args, &sender, &message)?;
    // Address::new accepted each: Envelope::parse cannot fail on them.
    let envelope =
        Envelope::parse(&sender, &recipients).map_err(|e| Fail::new(exit::USAGE, e.to_string()))?;
    let tls_config = ca_config(&config, account)?;
    let password = account.password()?;
    let mut smtp =
        connect(account, tls_config, password, args.verbose).map_err(|e| failure(&e, account))?;
    let result = smtp.send_message_to(&envelope, message.as_slice());
    let _ = smtp.quit();
    let result = result.map_err(|e| failure(&e, account))?;
    let refused = result.refused();
    if refused.is_empty() {
        return Ok(());
    }
    for (address, reply) in &refused {
        eprintln!("smtp-send: refused {}: {reply}", Escaped(address.as_str()));
    }
    let status = if refused.iter().all(|(_, r)| r.is_permanent()) {
        exit::NOUSER
    } else {
        exit::UNAVAILABLE
    };
    let accepted = result.recipients.len() - refused.len();
    Err(Fail::new(
        status,
        format!(
            "{} of {} recipients refused; the message went to the other {accepted} \
             (do not send it again to them)",
            refused.len(),
            result.recipients.len()
        ),
    ))
}

/// The envelope sender and the account to send with: `-f` and the account
/// whose `from` it is (else the default); else the default account and its
/// `from`; else the Sender or From address of the message and the account
/// whose `from` that is.
fn sender_and_account<'c>(
    config: &'c Config,
    args: &Args,
    message: &[u8],
) -> Result<(String, &'c Account), Fail> {
    if let Some(f) = &args.sender {
        let address = Address::new(f)
            .map_err(|e| Fail::new(exit::USAGE, format!("-f {}: {e}", Escaped(f))))?;
        let sender = address.as_str().to_owned();
        let account = if sender.is_empty() {
            config.default_account()
        } else {
            config.for_sender(&sender)
        };
        return Ok((sender, account));
    }
    let default = config.default_account();
    if let Some(from) = &default.from {
        return Ok((from.clone(), default));
    }
    let headers = scan(message);
    let from_header = headers
        .field("Sender")
        .or_else(|| headers.field("From"))
        .and_then(|v| parse_address_list(v).into_iter().next());
    if let Some(s) = from_header {
        let address = Address::new(&s).map_err(|e| {
            Fail::new(
                exit::DATAERR,
                format!("the message's sender {}: {e}", Escaped(&s)),
            )
        })?;
        let sender = address.as_str().to_owned();
        let account = config.for_sender(&sender);
        return Ok((sender, account));
    }
    Err(Fail::new(
        exit::USAGE,
        format!(
            "no sender: give -f ADDRESS, set `from` in account {:?} of {}, or send a \
             message with a From header",
            default.name,
            config.path.display()
        ),
    ))
}

/// The recipients: those of the command line (each argument an address or an
/// address list, as in a To header), then with `-t` those of the headers,
/// without duplicates.
fn recipients(args: &Args, sender: &str, message: &[u8]) -> Result<Vec<String>, Fail> {
    let mut all: Vec<String> = Vec::new();
    for arg in &args.recipients {
        let list = parse_address_list(arg);
        if list.is_empty() {
            return Err(Fail::new(
                exit::USAGE,
                format!("not an address: {:?}", Escaped(arg).to_string()),
            ));
        }
        for a in list {
            let address = Address::new(&a)
                .map_err(|e| Fail::new(exit::USAGE, format!("recipient {}: {e}", Escaped(&a))))?;
            all.push(address.as_str().to_owned());
        }
    }
    if args.read_recipients {
        let le = LineEndings::Normalize;
        let none: &[&str] = &[];
        let data = |e: smtp_sansio::UsageError| Fail::new(exit::DATAERR, e.to_string());
        let from_headers: Vec<String> =
            match PreparedMessage::new(message, Some(sender), None::<&[&str]>, none, none, le) {
                Ok(p) => p
                    .transaction
                    .to
                    .into_iter()
                    .map(|r| r.address.as_str().to_owned())
                    .collect(),
                // Headers without a recipient are fine beside the command
                // line's; any other fault of the headers is not.
                Err(_) if !all.is_empty() => {
                    PreparedMessage::new(message, Some(sender), Some(&all), none, none, le)
                        .map_err(data)?;
                    Vec::new()
                }
                Err(e) => return Err(data(e)),
            };
        all.extend(from_headers);
    }
    let mut seen = std::collections::HashSet::new();
    all.retain(|a| seen.insert(a.clone()));
    if all.is_empty() {
        return Err(Fail::new(
            exit::USAGE,
            "no recipients: name them on the command line, or use -t",
        ));
    }
    Ok(all)
}

/// A session with the account's server, logged in when it has a user.
fn connect(
    account: &Account,
    tls_config: Option<std::sync::Arc<smtp_blocking::ClientConfig>>,
    password: Option<Secret>,
    verbose: u8,
) -> Result<SmtpClient, Error> {
    let tls = match account.tls {
        TlsMode::StartTls => Tls::StartTls,
        TlsMode::Implicit => Tls::Implicit,
        TlsMode::Opportunistic => Tls::Opportunistic,
        TlsMode::None => Tls::None,
    };
    let mut b = SmtpClient::builder(&account.host)
        .with_port(account.port)
        .tls(tls)
        .allow_plaintext_auth(account.allow_plaintext_auth)
        .debug_level(verbose);
    if let Some(c) = tls_config {
        b = b.tls_config(c);
    }
    if let Some(t) = account.timeout {
        b = b.timeout(t);
    }
    if let Some(helo) = &account.helo {
        b = b.local_name(helo.clone());
    }
    if let (Some(user), Some(Secret(password))) = (&account.user, password) {
        b = match account.auth.clone() {
            None => b.credentials(user, &password),
            Some(name) => {
                let user = user.clone();
                b.mechanism(move || mechanism(&name, &user, &password))
            }
        };
    }
    let mut smtp = b.connect()?;
    if verbose > 0 {
        smtp.set_transcript(Box::new(std::io::stderr()));
    }
    Ok(smtp)
}

/// The TLS configuration trusting the account's `ca_file`, if it has one.
#[cfg(feature = "tls")]
fn ca_config(
    config: &Config,
    account: &Account,
) -> Result<Option<std::sync::Arc<smtp_blocking::ClientConfig>>, Fail> {
    let Some(ca) = &account.ca_file else {
        return Ok(None);
    };
    crate::tls::config(Some(ca), false).map_err(|f| {
        Fail::new(
            exit::CONFIG,
            format!(
                "{}: account {:?}: ca_file {}",
                config.path.display(),
                account.name,
                f.message.trim_start_matches("--ca-file ")
            ),
        )
    })
}

#[cfg(not(feature = "tls"))]
fn ca_config(
    config: &Config,
    account: &Account,
) -> Result<Option<std::sync::Arc<smtp_blocking::ClientConfig>>, Fail> {
    match &account.ca_file {
        None => Ok(None),
        Some(_) => Err(Fail::new(
            exit::CONFIG,
            format!(
                "{}: account {:?}: ca_file: this smtp-send was built without TLS \
                 (the tls feature)",
                config.path.display(),
                account.name
            ),
        )),
    }
}

/// A fresh SASL mechanism named by the account's `auth` (checked when the
/// config was read).
fn mechanism(name: &str, user: &str, password: &str) -> Box<dyn smtp_blocking::Mechanism> {
    let creds = sasl::Credentials::new(user, password);
    match name {
        "LOGIN" => Box::new(sasl::Login::new(creds)),
        "CRAM-MD5" => Box::new(sasl::CramMd5::new(creds)),
        "SCRAM-SHA-256" => Box::new(sasl::ScramSha256::new(creds)),
        "XOAUTH2" => Box::new(sasl::XOAuth2::new(user, sasl::Secret::new(password))),
        "OAUTHBEARER" => Box::new(sasl::OAuthBearer::new(user, sasl::Secret::new(password))),
        _ => Box::new(sasl::Plain::new(creds)),
    }
}

/// The sysexits.h status of a failed session, and its message.
fn failure(e: &Error, account: &Account) -> Fail {
    let status = status_of(e);
    let mut message = e.to_string();
    if let Error::Smtp(smtp_sansio::Error::Security(smtp_sansio::SecurityError::PlaintextAuth {
        ..
    })) = e.inner()
    {
        message.push_str(&format!(
            " (account {:?}: tls = \"starttls\" or \"implicit\", or allow_plaintext_auth = true)",
            account.name
        ));
    }
    if status == exit::IOERR {
        message.push_str(
            " (the server may have accepted the message: sending it again may deliver it twice)",
        );
    }
    Fail::new(status, message)
}

/// 75 for what may work later and was not delivered; 74 when the message may
/// have been delivered; the permanent ones apart (see [`HELP`]).
fn status_of(e: &Error) -> u8 {
    use smtp_sansio::{Error as E, SecurityError as S, UsageError as U};
    if e.delivery() == Delivery::Unknown {
        return exit::IOERR;
    }
    let by_code = |r: &smtp_blocking::Reply| {
        if r.is_transient() {
            exit::TEMPFAIL
        } else {
            exit::UNAVAILABLE
        }
    };
    match e.inner() {
        Error::Smtp(s) => match s {
            E::ServiceClosing { .. } | E::Timeout(_) | E::Disconnected => exit::TEMPFAIL,
            E::RecipientsRefused(list) => {
                if list.iter().all(|(_, r)| r.is_permanent()) {
                    exit::NOUSER
                } else {
                    exit::TEMPFAIL
                }
            }
            E::AuthFailed(r) if r.is_transient() => exit::TEMPFAIL,
            E::AuthFailed(_) => exit::NOPERM,
            E::ConnectRefused(r)
            | E::HeloRefused(r)
            | E::StartTlsRefused(r)
            | E::DataRefused(r)
            | E::Refused(r)
            | E::SenderRefused { reply: r, .. } => by_code(r),
            E::Protocol(_) => exit::PROTOCOL,
            E::Security(S::PlaintextAuth { .. }) => exit::CONFIG,
            E::Usage(U::InvalidArgument { .. } | U::BareLineEnding { .. } | U::Envelope(_)) => {
                exit::DATAERR
            }
            E::Usage(U::WrongState(_)) => exit::SOFTWARE,
            E::Uncertain { .. } => exit::IOERR,
            // A required STARTTLS not offered, SIZE exceeded, an extension
            // missing, no usable AUTH mechanism.
            _ => exit::UNAVAILABLE,
        },
        Error::Io(_) | Error::Tls(_) => exit::TEMPFAIL,
        Error::TlsUnavailable(_) | Error::InvalidServerName(_) | Error::NoRootCertificates(_) => {
            exit::CONFIG
        }
        _ => exit::UNAVAILABLE,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn options() {
        let p = |a: &[&str]| parse_args(a.iter().map(OsString::from).collect());
        let a = p(&[
            "-ti",
            "-oi",
            "-oem",
            "-odi",
            "-B8BITMIME",
            "-bm",
            "-fme@x",
            "-FCron",
            "b@x",
            "--",
            "-c@x",
        ])
        .unwrap()
        .unwrap();
        assert!(a.read_recipients);
        assert_eq!(a.sender.as_deref(), Some("me@x"));
        assert_eq!(a.full_name.as_deref(), Some("Cron"));
        assert_eq!(a.recipients, ["b@x", "-c@x"]);
        for bad in [
            &["-bp"][..],
            &["-oQ/tmp"],
            &["-q"],
            &["-x"],
            &["--password", "p"],
        ] {
            assert_eq!(p(bad).unwrap_err().status, exit::USAGE, "{bad:?}");
        }
    }
}
