//! `smtp-send sendmail`: the `sendmail(1)` command line that cron, git
//! send-email, mutt, PHP's `mail()` and most Unix tools send mail through,
//! with msmtp's and Postfix's interface as the anchors. The message comes on
//! stdin, the server and the login from a config file ([`config`]), and the
//! exit status follows sysexits.h (see [`HELP`]).

mod config;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use smtp_blocking::smtp_sansio::{
    self, Address, Escaped, LineEndings, client::PreparedMessage, envelope::parse_address_list,
    sasl,
};
use smtp_blocking::{Delivery, Envelope, Error, SmtpClient, Tls};

use config::{Account, Config, ConfigError, Secret, TlsMode};

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

/// What the sendmail mode reads of a message's header block.
struct Headers {
    /// Whether the message starts with a header block (a field, or the empty
    /// line of an empty block): one that starts with anything else is all
    /// body.
    present: bool,
    /// Each field's name and unfolded value, in order, up to the empty line
    /// or the first line that is neither a field nor a continuation.
    fields: Vec<(String, String)>,
    /// The first line's ending, for the lines added.
    eol: &'static str,
}

impl Headers {
    /// The first value of the field `name` (any case).
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the header block (RFC 5322 section 2.2: `name: value`, folded lines
/// starting with a space or a tab).
fn scan(message: &[u8]) -> Headers {
    let mut h = Headers {
        present: false,
        fields: Vec::new(),
        eol: "\r\n",
    };
    let mut pos = 0;
    let mut first = true;
    while pos < message.len() {
        let rest = message.get(pos..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |n| pos + n + 1);
        let line = message.get(pos..end).unwrap_or_default();
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if first && line.ends_with(b"\n") && !line.ends_with(b"\r\n") {
            h.eol = "\n";
        }
        if content.is_empty() {
            h.present |= first;
            break;
        }
        if matches!(content.first(), Some(b' ' | b'\t')) {
            match h.fields.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(String::from_utf8_lossy(content).trim());
                }
                None => break,
            }
        } else {
            let name_end = content.iter().position(|&b| b == b':');
            let name = name_end
                .and_then(|n| content.get(..n))
                .filter(|n| !n.is_empty() && n.iter().all(|b| (0x21..=0x7e).contains(b)));
            let (Some(name), Some(n)) = (name, name_end) else {
                break;
            };
            let value = String::from_utf8_lossy(content.get(n + 1..).unwrap_or_default());
            h.fields.push((
                String::from_utf8_lossy(name).into_owned(),
                value.trim().to_owned(),
            ));
            h.present = true;
        }
        first = false;
        pos = end;
    }
    h
}

/// The message with the From (with `full_name`), Date and Message-ID fields
/// it lacks added at its top, as Postfix and msmtp add them; a message that
/// does not start with a header block gets them as its header block.
fn complete_headers(
    message: Vec<u8>,
    sender: &str,
    full_name: Option<&str>,
) -> Result<Vec<u8>, Fail> {
    let h = scan(&message);
    let eol = h.eol;
    let mut top = String::new();
    if h.field("From").is_none() && !sender.is_empty() {
        top.push_str(&format!("From: {}{eol}", from_value(full_name, sender)?));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    if h.field("Date").is_none() {
        top.push_str(&format!("Date: {}{eol}", rfc5322_date(now.as_secs())));
    }
    if h.field("Message-ID").is_none() {
        top.push_str(&format!("Message-ID: {}{eol}", message_id(sender, now)));
    }
    if top.is_empty() {
        return Ok(message);
    }
    if !h.present {
        top.push_str(eol);
    }
    let mut out = top.into_bytes();
    out.extend_from_slice(&message);
    Ok(out)
}

/// `NAME <SENDER>` (the name as atoms, a quoted string, or RFC 2047 encoded
/// words when it is not ASCII), or the bare sender without a name.
fn from_value(full_name: Option<&str>, sender: &str) -> Result<String, Fail> {
    let Some(name) = full_name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(sender.to_owned());
    };
    if name.chars().any(char::is_control) || name.len() > 500 {
        return Err(Fail::new(
            exit::USAGE,
            "-F: a name of at most 500 bytes without control characters",
        ));
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~ ".contains(c);
    let phrase = if name.chars().all(atext) {
        name.to_owned()
    } else if name.is_ascii() {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        encoded_words(name)
    };
    Ok(format!("{phrase} <{sender}>"))
}

/// RFC 2047 `Q` encoded words for a phrase (section 5 (3)), each at most 75
/// characters, a character's bytes never split between two words.
fn encoded_words(text: &str) -> String {
    const OPEN: &str = "=?UTF-8?Q?";
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        let mut piece = String::new();
        let mut buf = [0u8; 4];
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            match b {
                b' ' => piece.push('_'),
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'!' | b'*' | b'+' | b'-' | b'/' => {
                    piece.push(char::from(b));
                }
                _ => piece.push_str(&format!("={b:02X}")),
            }
        }
        if OPEN.len() + word.len() + piece.len() + 2 > 75 {
            words.push(format!("{OPEN}{word}?="));
            word.clear();
        }
        word.push_str(&piece);
    }
    words.push(format!("{OPEN}{word}?="));
    words.join(" ")
}

/// An RFC 5322 date (section 3.3) in UTC: `Sun, 06 Dec 2026 11:35:19 +0000`.
fn rfc5322_date(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A Message-ID (RFC 5322 section 3.6.4): the time, the process and 64
/// random bits, at the sender's domain (else this host's name).
fn message_id(sender: &str, now: std::time::Duration) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(now.as_nanos());
    hasher.write_u32(std::process::id());
    let random = hasher.finish();
    let usable = |d: &&str| {
        !d.is_empty()
            && d.chars()
                .all(|c| !c.is_control() && !c.is_whitespace() && !"<>\"\\@".contains(c))
    };
    let domain = sender
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(usable)
        .or(smtp_blocking::smtp_adapter::machine_name().filter(usable))
        .unwrap_or("localhost");
    format!(
        "<{}.{}.{random:016x}@{domain}>",
        now.as_secs(),
        std::process::id()
    )
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
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_796_556_919),
            "Sun, 06 Dec 2026 11:35:19 +0000"
        );
        assert_eq!(
            rfc5322_date(4_102_444_799),
            "Thu, 31 Dec 2099 23:59:59 +0000"
        );
    }

    #[test]
    fn from_values() {
        let f = |n: Option<&str>| from_value(n, "a@example.org").unwrap();
        assert_eq!(f(None), "a@example.org");
        assert_eq!(f(Some(" ")), "a@example.org");
        assert_eq!(f(Some("Cron Daemon")), "Cron Daemon <a@example.org>");
        assert_eq!(
            f(Some("Doe, J. \"x\"")),
            "\"Doe, J. \\\"x\\\"\" <a@example.org>"
        );
        assert_eq!(f(Some("Zoë A")), "=?UTF-8?Q?Zo=C3=AB_A?= <a@example.org>");
        assert!(from_value(Some("a\r\nBcc: x@y"), "a@b").is_err());
        let long = encoded_words(&"é".repeat(40));
        assert!(
            long.split(' ').all(|w| w.len() <= 75 && w.ends_with("?=")),
            "{long}"
        );
        assert_eq!(long.matches("=C3=A9").count(), 40);
    }

    #[test]
    fn headers_added_only_when_missing() {
        let m = complete_headers(
            b"Subject: x\nFrom: b@example.org\n\nhi\n".to_vec(),
            "a@example.org",
            Some("A"),
        )
        .unwrap();
        let t = String::from_utf8(m).unwrap();
        assert!(t.starts_with("Date: "), "{t}");
        assert!(
            t.contains("\nMessage-ID: <")
                && t.contains("@example.org>\nSubject: x\nFrom: b@example.org\n\nhi\n"),
            "{t}"
        );
        // The From given is kept: none is added for the sender (the random
        // part of the Message-ID may end in "a", so look for the field).
        assert_eq!(t.matches("From:").count(), 1, "{t}");
        assert!(!t.contains("<a@example.org>"), "{t}");
        // No header block: the input is the body.
        let m = complete_headers(
            b"just a line\r\nand another\r\n".to_vec(),
            "a@example.org",
            None,
        )
        .unwrap();
        let t = String::from_utf8(m).unwrap();
        assert!(t.starts_with("From: a@example.org\r\nDate: "), "{t}");
        assert!(
            t.ends_with(">\r\n\r\njust a line\r\nand another\r\n"),
            "{t}"
        );
        let full = "From: a@b\nDate: x\nMessage-Id: <1@b>\n\nbody\n";
        assert_eq!(
            complete_headers(full.as_bytes().to_vec(), "a@b", None).unwrap(),
            full.as_bytes()
        );
        // The null sender gets no From.
        let t = String::from_utf8(complete_headers(b"\nbody".to_vec(), "", None).unwrap()).unwrap();
        assert!(
            t.starts_with("Date: ") && !t.contains("From:") && t.ends_with(">\n\nbody"),
            "{t:?}"
        );
    }

    #[test]
    fn header_scan() {
        let h = scan(b"From: A\r\n <a@x>\r\nX:\r\n\r\nTo: not@header\r\n");
        assert!(h.present);
        assert_eq!(h.field("from"), Some("A <a@x>"));
        assert_eq!(h.field("To"), None);
        assert_eq!(h.eol, "\r\n");
        assert!(!scan(b"hello: world but\n").fields.is_empty());
        assert!(!scan(b"hello world\nFrom: x\n").present);
        assert!(!scan(b" folded\n").present);
        assert!(!scan(b"").present);
        assert!(scan(b"\nbody").present);
    }

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
