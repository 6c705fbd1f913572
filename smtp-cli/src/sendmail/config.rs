//! The sendmail mode's accounts: a TOML file, read through serde.
//!
//! ```toml
//! default = "work"            # needed with more than one account
//!
//! [account.work]
//! host = "smtp.example.org"
//! port = 587                  # default: 587 for starttls, 465 for implicit, 25 otherwise
//! tls = "starttls"            # starttls (required) | implicit | opportunistic | none;
//!                             # default: implicit on port 465, else starttls
//! ca_file = "work-ca.pem"     # trust this CA (PEM) instead of the system's roots
//! user = "alice@example.org"
//! password_command = "pass show mail/work"   # or password_file, or password
//! from = "alice@example.org"  # the default sender; picks this account for -f
//! ```
//!
//! Rules a file must meet, each refused with a message naming the file (and
//! the line for a syntax error, never the text of the line, which may hold a
//! password): unknown keys are errors; a password needs `user` and comes from
//! exactly one of `password`, `password_file` and `password_command`. On Unix,
//! a file that others can write to (`mode & 0o022`) is refused, and so is one
//! that holds a `password` and that others can read (`mode & 0o077`, as
//! msmtp does); a `password_file` that others can read is refused too.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use smtp_blocking::smtp_sansio::{Address, Escaped};

use super::exit;
#[cfg(test)]
use password::first_line;

mod password;

/// The environment variable that names the config file when `--config` does
/// not.
pub(crate) const CONFIG_VARIABLE: &str = "SMTP_SEND_CONFIG";

/// The most bytes read from a config file, a password file or a password
/// command's output.
const MAX_FILE: u64 = 1024 * 1024;

/// What went wrong with the configuration, by kind: each has its exit status.
#[derive(Debug)]
pub(crate) enum ConfigError {
    /// No file to read: `path` is where it was looked for.
    Missing {
        /// Where the file was looked for.
        path: PathBuf,
        /// Why it could not be opened.
        error: std::io::Error,
    },
    /// Neither `--config`, `$SMTP_SEND_CONFIG`, `$XDG_CONFIG_HOME` nor `$HOME`.
    NoPath,
    /// The file is not valid TOML or does not fit the format.
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// What the parser said (without the line's text).
        message: String,
    },
    /// A value is wrong or missing.
    Invalid {
        /// The file.
        path: PathBuf,
        /// The account, when the error is in one.
        account: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A file that holds (or leads to) a secret is open to other users.
    Insecure {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// What makes it dangerous.
        why: &'static str,
    },
    /// The password could not be had from its file or command.
    Password {
        /// The account.
        account: String,
        /// What failed.
        message: String,
    },
}

impl ConfigError {
    /// The sysexits.h status: EX_NOPERM for a file open to others, EX_CONFIG
    /// for everything else.
    pub(crate) fn status(&self) -> u8 {
        match self {
            ConfigError::Insecure { .. } => exit::NOPERM,
            _ => exit::CONFIG,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing { path, error } => write!(
                f,
                "{}: {error} (the sendmail mode reads its accounts from this file: \
                 see smtp-send sendmail --help)",
                path.display()
            ),
            ConfigError::NoPath => write!(
                f,
                "no config file: give --config PATH or set {CONFIG_VARIABLE}, \
                 XDG_CONFIG_HOME or HOME"
            ),
            ConfigError::Syntax {
                path,
                line: Some(line),
                message,
            } => write!(f, "{} line {line}: {}", path.display(), Escaped(message)),
            ConfigError::Syntax {
                path,
                line: None,
                message,
            } => write!(f, "{}: {}", path.display(), Escaped(message)),
            ConfigError::Invalid {
                path,
                account: Some(account),
                message,
            } => write!(
                f,
                "{}: account {:?}: {message}",
                path.display(),
                Escaped(account).to_string()
            ),
            ConfigError::Invalid {
                path,
                account: None,
                message,
            } => write!(f, "{}: {message}", path.display()),
            ConfigError::Insecure { path, mode, why } => write!(
                f,
                "{}: {why}, and its permissions ({:04o}) let other users {}: \
                 refused (chmod 600 {})",
                path.display(),
                mode & 0o7777,
                if mode & 0o022 != 0 {
                    "change it"
                } else {
                    "read it"
                },
                path.display()
            ),
            ConfigError::Password { account, message } => {
                write!(f, "account {:?}: {message}", Escaped(account).to_string())
            }
        }
    }
}

/// How much TLS an account uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TlsMode {
    /// STARTTLS, required.
    StartTls,
    /// TLS from the first byte.
    Implicit,
    /// STARTTLS when offered (never for a login in the clear).
    Opportunistic,
    /// Plain text.
    None,
}

/// A password, kept out of `Debug`.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where an account's password comes from.
#[derive(Debug, Clone)]
pub(crate) enum PasswordSource {
    /// Written in the config file.
    Inline(Secret),
    /// The first line of this file.
    File(PathBuf),
    /// The first line of this command's output (`sh -c`).
    Command(String),
}

/// One account, checked.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    /// Its name in the file.
    pub(crate) name: String,
    /// The server's host name or address.
    pub(crate) host: String,
    /// The port (defaulted by the TLS mode).
    pub(crate) port: u16,
    /// The TLS mode (defaulted by the port).
    pub(crate) tls: TlsMode,
    /// A CA certificate file (PEM) to trust instead of the system's roots.
    pub(crate) ca_file: Option<PathBuf>,
    /// The login name.
    pub(crate) user: Option<String>,
    /// Where the password comes from (set when `user` is).
    pub(crate) password: Option<PasswordSource>,
    /// The SASL mechanism, when not the best offered.
    pub(crate) auth: Option<String>,
    /// The default sender, and the address that picks this account.
    pub(crate) from: Option<String>,
    /// The opt-in to a password over a channel that is not safe.
    pub(crate) allow_plaintext_auth: bool,
    /// One overall timeout per command.
    pub(crate) timeout: Option<Duration>,
    /// The EHLO name.
    pub(crate) helo: Option<String>,
}

/// The accounts of a config file.
#[derive(Debug)]
pub(crate) struct Config {
    /// Where it was read from.
    pub(crate) path: PathBuf,
    /// The accounts, by name.
    pub(crate) accounts: Vec<Account>,
    /// Index of the default account.
    default: usize,
}

impl Config {
    /// The default account.
    pub(crate) fn default_account(&self) -> &Account {
        // `load` checked the index.
        &self.accounts[self.default]
    }

    /// The account whose `from` is `sender` (compared without regard to
    /// case), else the default one.
    pub(crate) fn for_sender(&self, sender: &str) -> &Account {
        self.accounts
            .iter()
            .find(|a| {
                a.from
                    .as_deref()
                    .is_some_and(|f| f.eq_ignore_ascii_case(sender))
            })
            .unwrap_or_else(|| self.default_account())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    default: Option<String>,
    #[serde(default)]
    account: BTreeMap<String, RawAccount>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    host: String,
    port: Option<u16>,
    tls: Option<TlsMode>,
    ca_file: Option<PathBuf>,
    user: Option<String>,
    /// Not a `String`: serde's message for a value of the wrong type quotes
    /// the value (a numeric password would be printed).
    password: Option<toml::Value>,
    password_file: Option<PathBuf>,
    password_command: Option<String>,
    auth: Option<String>,
    from: Option<String>,
    #[serde(default)]
    allow_plaintext_auth: bool,
    timeout: Option<f64>,
    helo: Option<String>,
}

/// Where the config file is: `--config`, else `$SMTP_SEND_CONFIG`, else
/// `$XDG_CONFIG_HOME/smtp-send/config.toml` (when absolute, as the XDG base
/// directory spec says), else `~/.config/smtp-send/config.toml`.
pub(crate) fn path(given: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(p) = given {
        return Ok(p.to_owned());
    }
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(p) = var(CONFIG_VARIABLE) {
        return Ok(PathBuf::from(p));
    }
    let base = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or(ConfigError::NoPath)?;
    Ok(base.join("smtp-send").join("config.toml"))
}

/// Reads, checks and returns the accounts of the file at `path`.
pub(crate) fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = std::fs::File::open(path).map_err(|error| ConfigError::Missing {
        path: path.to_owned(),
        error,
    })?;
    let mode = file_mode(&file);
    let mut text = String::new();
    file.take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| invalid(path, None, format!("cannot read it: {e}")))?;
    if text.len() as u64 > MAX_FILE {
        return Err(invalid(path, None, format!("larger than {MAX_FILE} bytes")));
    }
    let raw: RawFile = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        line: e.span().map(|s| {
            1 + text.as_bytes()[..s.start.min(text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
        }),
        // `message()`, not `Display`: that one quotes the line, which may
        // hold a password.
        message: e.message().to_owned(),
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut accounts = Vec::with_capacity(raw.account.len());
    for (name, a) in raw.account {
        accounts.push(account(path, dir, name, a)?);
    }
    if let Some(mode) = mode {
        check_mode(
            path,
            mode,
            accounts.iter().any(|a| a.password.is_some()),
            accounts
                .iter()
                .any(|a| matches!(a.password, Some(PasswordSource::Inline(_)))),
        )?;
    }
    let default = match &raw.default {
        Some(name) => accounts
            .iter()
            .position(|a| &a.name == name)
            .ok_or_else(|| {
                invalid(
                    path,
                    None,
                    format!("default = {:?}: no such account", Escaped(name).to_string()),
                )
            })?,
        None if accounts.len() == 1 => 0,
        None if accounts.is_empty() => {
            return Err(invalid(
                path,
                None,
                "no account: add an [account.NAME] table with at least `host`".into(),
            ));
        }
        None => {
            return Err(invalid(
                path,
                None,
                "several accounts and no `default = \"NAME\"` saying which one to use".into(),
            ));
        }
    };
    Ok(Config {
        path: path.to_owned(),
        accounts,
        default,
    })
}

fn invalid(path: &Path, account: Option<&str>, message: String) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_owned(),
        account: account.map(str::to_owned),
        message,
    }
}

/// One account from its table, checked, with its defaults filled in.
fn account(path: &Path, dir: &Path, name: String, a: RawAccount) -> Result<Account, ConfigError> {
    let bad = |message: String| invalid(path, Some(&name), message);
    if a.host.trim().is_empty() || a.host.chars().any(char::is_control) {
        return Err(bad("`host` must be a host name or an address".into()));
    }
    if a.port == Some(0) {
        return Err(bad("`port` must be between 1 and 65535".into()));
    }
    // Secure by default: required STARTTLS on the submission port, implicit
    // TLS on 465.
    let tls = a.tls.unwrap_or(if a.port == Some(465) {
        TlsMode::Implicit
    } else {
        TlsMode::StartTls
    });
    let port = a.port.unwrap_or(match tls {
        TlsMode::StartTls => 587,
        TlsMode::Implicit => 465,
        TlsMode::Opportunistic | TlsMode::None => 25,
    });
    let mut sources = Vec::new();
    if let Some(v) = a.password {
        let Some(s) = v.as_str() else {
            return Err(bad("`password` must be a string".into()));
        };
        sources.push(PasswordSource::Inline(Secret(s.to_owned())));
    }
    if let Some(p) = a.password_file {
        sources.push(PasswordSource::File(resolve(dir, &p)));
    }
    if let Some(c) = a.password_command {
        if c.trim().is_empty() {
            return Err(bad("`password_command` is empty".into()));
        }
        sources.push(PasswordSource::Command(c));
    }
    if sources.len() > 1 {
        return Err(bad(
            "`password`, `password_file` and `password_command` exclude each other".into(),
        ));
    }
    let password = sources.pop();
    match (&a.user, &password) {
        (Some(_), None) => {
            return Err(bad(
                "`user` needs one of `password`, `password_file` or `password_command`".into(),
            ));
        }
        (None, Some(_)) => return Err(bad("a password needs `user`".into())),
        _ => {}
    }
    if a.auth.is_some() && a.user.is_none() {
        return Err(bad("`auth` needs `user`".into()));
    }
    let auth = a.auth.map(|m| m.to_ascii_uppercase());
    if let Some(m) = &auth {
        if !super::MECHANISMS.contains(&m.as_str()) {
            return Err(bad(format!(
                "auth = {:?}: one of {}",
                Escaped(m).to_string(),
                super::MECHANISMS.join(", ")
            )));
        }
    }
    let from = match a.from {
        Some(f) => Some(
            Address::new(&f)
                .map_err(|e| bad(format!("from: {e}")))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let timeout = match a.timeout {
        Some(t) if t > 0.0 && t.is_finite() && t < 1e9 => Some(Duration::from_secs_f64(t)),
        Some(_) => return Err(bad("`timeout` must be a positive number of seconds".into())),
        None => None,
    };
    Ok(Account {
        host: a.host,
        port,
        tls,
        ca_file: a.ca_file.map(|p| resolve(dir, &p)),
        user: a.user,
        password,
        auth,
        from,
        allow_plaintext_auth: a.allow_plaintext_auth,
        timeout,
        helo: a.helo,
        name,
    })
}

/// `~/x` under `$HOME`; a relative path under the config file's directory.
fn resolve(dir: &Path, p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~") {
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            return PathBuf::from(home).join(rest);
        }
    }
    if p.is_relative() {
        dir.join(p)
    } else {
        p.to_owned()
    }
}

/// The permission bits of an open file (Unix).
#[cfg(unix)]
fn file_mode(file: &std::fs::File) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    file.metadata().ok().map(|m| m.permissions().mode())
}

#[cfg(not(unix))]
fn file_mode(_file: &std::fs::File) -> Option<u32> {
    None
}

/// msmtp's rule and ssh's: a file others can change must not lead to a
/// password (they could point `host` at their own server, or
/// `password_command` at their own program), and a file others can read must
/// not hold one.
fn check_mode(
    path: &Path,
    mode: u32,
    has_credentials: bool,
    has_password: bool,
) -> Result<(), ConfigError> {
    let why = if mode & 0o022 != 0 && has_credentials {
        "it leads to a password"
    } else if mode & 0o077 != 0 && has_password {
        "it holds a password"
    } else {
        return Ok(());
    };
    Err(ConfigError::Insecure {
        path: path.to_owned(),
        mode,
        why,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("smtp-send-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{n}.toml"));
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let r = load(&path);
        let _ = std::fs::remove_file(&path);
        r
    }

    #[test]
    fn defaults_are_secure() {
        let c = parse("[account.a]\nhost = \"smtp.example.org\"\n").unwrap();
        let a = c.default_account();
        assert_eq!((a.port, a.tls), (587, TlsMode::StartTls));
        let c = parse("[account.a]\nhost = \"h\"\nport = 465\n").unwrap();
        let a = c.default_account();
        assert_eq!((a.port, a.tls), (465, TlsMode::Implicit));
        let c = parse("[account.a]\nhost = \"h\"\ntls = \"implicit\"\n").unwrap();
        assert_eq!(c.default_account().port, 465);
        let c = parse("[account.a]\nhost = \"h\"\ntls = \"none\"\n").unwrap();
        assert_eq!(c.default_account().port, 25);
        assert!(!c.default_account().allow_plaintext_auth);
    }

    #[test]
    fn account_by_sender_else_default() {
        let c = parse(
            "default = \"b\"\n[account.a]\nhost = \"a\"\nfrom = \"A@Example.org\"\n\
             [account.b]\nhost = \"b\"\nfrom = \"b@example.org\"\n",
        )
        .unwrap();
        assert_eq!(c.default_account().name, "b");
        assert_eq!(c.for_sender("a@example.ORG").name, "a");
        assert_eq!(c.for_sender("c@example.org").name, "b");
    }

    #[test]
    fn bad_files_say_why_without_quoting_secrets() {
        let e =
            parse("[account.a]\nhost = \"h\"\nuser = \"u\"\npassword = \"s3cret\n").unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, ConfigError::Syntax { line: Some(4), .. }),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
        let e = parse("[account.a]\nhost = \"h\"\nuser = \"u\"\npassword = 271828\n").unwrap_err();
        assert!(!e.to_string().contains("271828"), "{e}");
        assert_eq!(e.status(), exit::CONFIG);
        let e = parse("[account.a]\nhost = \"h\"\npasword = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `pasword`"), "{e}");
        assert!(!e.to_string().contains("\"x\""), "{e}");
        let e = parse("[account.a]\nhost = \"h\"\nuser = \"u\"\n").unwrap_err();
        assert!(e.to_string().contains("`user` needs one of"), "{e}");
        let e = parse("[account.a]\nhost = \"h\"\n[account.b]\nhost = \"h\"\n").unwrap_err();
        assert!(e.to_string().contains("several accounts"), "{e}");
        let e = parse("default = \"c\"\n[account.a]\nhost = \"h\"\n").unwrap_err();
        assert!(e.to_string().contains("no such account"), "{e}");
        let e = parse("[account.a]\nhost = \"h\"\ntls = \"maybe\"\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = parse(
            "[account.a]\nhost = \"h\"\nuser = \"u\"\npassword = \"p\"\npassword_command = \"c\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("exclude each other"), "{e}");
        let e =
            parse("[account.a]\nhost = \"h\"\nauth = \"GSSAPI\"\nuser = \"u\"\npassword = \"p\"\n")
                .unwrap_err();
        assert!(e.to_string().contains("auth = \"GSSAPI\""), "{e}");
    }

    #[test]
    fn modes() {
        let ok = |mode, creds, pw| check_mode(Path::new("c"), mode, creds, pw).is_ok();
        assert!(ok(0o600, true, true));
        assert!(ok(0o400, true, true));
        assert!(!ok(0o640, true, true));
        assert!(!ok(0o604, true, true));
        assert!(
            ok(0o644, true, false),
            "a command or a file name is no secret"
        );
        assert!(
            !ok(0o664, true, false),
            "others could change where the password goes"
        );
        assert!(ok(0o666, false, false), "no credentials");
        let e = check_mode(Path::new("/x/c.toml"), 0o100644, true, true).unwrap_err();
        assert_eq!(e.status(), exit::NOPERM);
        assert_eq!(
            e.to_string(),
            "/x/c.toml: it holds a password, and its permissions (0644) let other users \
             read it: refused (chmod 600 /x/c.toml)"
        );
    }

    #[test]
    fn first_line_of_output() {
        assert_eq!(first_line(b"pw\r\nrest\n").unwrap().0, "pw");
        assert_eq!(first_line(b"pw").unwrap().0, "pw");
        assert!(first_line(b"\nx").is_none());
        assert_eq!(format!("{:?}", Secret("pw".into())), "Secret(<redacted>)");
    }
}
