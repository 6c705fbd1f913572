//! The connection builder every adapter offers: where to connect, how much TLS,
//! who to log in as, and the session's options; `connect()` then runs the
//! greeting, EHLO, STARTTLS, EHLO again and AUTH as asked.
//!
//! ```
//! use std::time::Duration;
//! use smtp_adapter::{Builder, Tls};
//!
//! // What smtp_blocking::SmtpClient::builder("smtp.example.org") starts from:
//! let b = Builder::<()>::new("smtp.example.org")
//!     .tls(Tls::StartTls)
//!     .credentials("alice", "app-password")
//!     .timeout(Duration::from_secs(30));
//! assert_eq!(b.port(), 587);
//! ```

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::tls::ClientConfig;
use smtp_sansio::sasl::Credentials;
use smtp_sansio::{LineEndings, Mechanism, Protocol};

use crate::capability_cache::{CapabilityCache, EarlyOpen};
use crate::server_url::UrlTarget;
use crate::{Driver, IntoServerAddress, Options};

mod reading;

/// How much TLS a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Tls {
    /// Plain text only (a local relay, LMTP on a trusted socket). Port 25.
    None,
    /// STARTTLS when the server offers it, plain text otherwise. Port 25.
    ///
    /// It never downgrades a login: with [`Builder::credentials`] (or a
    /// [`Builder::mechanism`] that exposes a secret), a server that does not
    /// offer STARTTLS (or someone between who strips it) gets no AUTH and no
    /// MAIL; `connect` fails with
    /// [`SecurityError::PlaintextAuth`](smtp_sansio::SecurityError::PlaintextAuth),
    /// unless the peer is a loopback address or Unix socket, or
    /// [`Builder::allow_plaintext_auth`] is set. To log in, say
    /// [`Tls::StartTls`] or [`Tls::Implicit`].
    #[default]
    Opportunistic,
    /// STARTTLS, required: a server that does not offer it gets nothing but
    /// EHLO (RFC 3207's defence against stripping). Port 587 (submission).
    StartTls,
    /// TLS from the first byte (RFC 8314). Port 465 (submissions).
    Implicit,
}

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A host name or IP address, and a port (`None`: the default for the
    /// protocol and TLS mode).
    Tcp {
        /// Host name or IP address (the name certificates are checked against).
        host: String,
        /// The port, when not the default.
        port: Option<u16>,
    },
    /// A Unix socket (LMTP to a local delivery agent, usually).
    Unix(PathBuf),
}

/// Makes a fresh mechanism for each connection (a pool connects many times).
pub type MechanismFactory = Arc<dyn Fn() -> Box<dyn Mechanism> + Send + Sync>;

/// How a new session authenticates.
#[derive(Clone)]
enum Auth {
    Login(Credentials),
    Mechanism(MechanismFactory),
}

/// A connection's settings; `C` is the client type it connects
/// (`smtp_blocking::SmtpClient`, `smtp_tokio::SmtpClient`, ...), whose
/// `builder(host)` makes one and which implements [`Connect`] so that
/// `connect()` is available.
pub struct Builder<C> {
    target: Target,
    tls: Tls,
    tls_config: Option<Arc<ClientConfig>>,
    tls_server_name: Option<String>,
    auth: Option<Auth>,
    initial_response: bool,
    greeting_only: bool,
    /// Early pipelining when the cache says the server offers it.
    early_pipelining: bool,
    /// What servers advertised on earlier connections.
    capability_cache: Option<Arc<CapabilityCache>>,
    /// Why the address given could not be read, reported by `connect`.
    address_error: Option<smtp_sansio::UsageError>,
    options: Options,
    /// Where every session it connects writes its transcript.
    transcript: Option<crate::transcript::SharedWriter>,
    _client: PhantomData<fn() -> C>,
}

impl<C> Clone for Builder<C> {
    fn clone(&self) -> Self {
        Builder {
            target: self.target.clone(),
            tls: self.tls,
            tls_config: self.tls_config.clone(),
            tls_server_name: self.tls_server_name.clone(),
            auth: self.auth.clone(),
            initial_response: self.initial_response,
            greeting_only: self.greeting_only,
            early_pipelining: self.early_pipelining,
            capability_cache: self.capability_cache.clone(),
            address_error: self.address_error.clone(),
            options: self.options.clone(),
            transcript: self.transcript.clone(),
            _client: PhantomData,
        }
    }
}

impl<C> std::fmt::Debug for Builder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            None => "none",
            Some(Auth::Login(_)) => "login",
            Some(Auth::Mechanism(_)) => "mechanism",
        };
        f.debug_struct("Builder")
            .field("target", &self.target)
            .field("tls", &self.tls)
            .field("auth", &auth)
            .field("options", &self.options)
            .field("transcript", &self.transcript.is_some())
            .finish_non_exhaustive()
    }
}

impl<C> Builder<C> {
    /// A connection to `host`, with opportunistic STARTTLS and no login:
    /// a name or an IP address, `"host:port"` or `"[v6]:port"`, a
    /// `SocketAddr`, an `IpAddr` or a `(host, port)` pair (see
    /// [`IntoServerAddress`]). An address that does not parse is refused by
    /// `connect`.
    #[must_use]
    pub fn new(host: impl IntoServerAddress) -> Builder<C> {
        let (target, address_error) = match host.into_host_port() {
            Ok((host, port)) => (Target::Tcp { host, port }, None),
            // Not an address form: refused when connecting.
            Err(e) => {
                let host = String::new();
                (Target::Tcp { host, port: None }, Some(e))
            }
        };
        Builder {
            target,
            tls: Tls::default(),
            tls_config: None,
            tls_server_name: None,
            auth: None,
            initial_response: true,
            greeting_only: false,
            early_pipelining: false,
            capability_cache: None,
            address_error,
            options: Options::default(),
            transcript: None,
            _client: PhantomData,
        }
    }

    /// An LMTP connection (RFC 2033) to `address` as [`Builder::new`] takes
    /// it (port 2003 by default) or, for a string starting with `/`, to the
    /// Unix socket at that path; no TLS unless asked.
    #[must_use]
    pub fn lmtp(address: impl IntoServerAddress) -> Builder<C> {
        let mut b = match address.unix_path().map(Path::to_path_buf) {
            Some(path) => {
                let mut b = Builder::new("localhost");
                b.target = Target::Unix(path);
                b
            }
            None => Builder::new(address),
        };
        b.tls = Tls::None;
        b.options.protocol = Protocol::Lmtp;
        b
    }

    /// The connection a URL describes (see [`crate::UrlError`] and the table
    /// below): `smtp://host[:port]` (STARTTLS when offered; required when
    /// the URL holds a login), `smtps://host[:port]` (implicit TLS),
    /// `smtp://host?tls=starttls|opportunistic|none`, `lmtp://host[:port]`,
    /// `lmtp:///path/to/socket` (a Unix socket: no host, three slashes), with
    /// the login from the user information (`smtps://user:password@host`,
    /// percent-decoded). The other settings keep their defaults and can be
    /// set on the builder returned, as on any other.
    ///
    /// | URL | protocol, TLS | port |
    /// |---|---|---|
    /// | `smtp://host` | SMTP, [`Tls::Opportunistic`] | 25 |
    /// | `smtp://user:password@host` | SMTP, [`Tls::StartTls`] (required) | 587 |
    /// | `smtp://host?tls=starttls` (or lettre's `tls=required`) | SMTP, [`Tls::StartTls`] | 587 |
    /// | `smtp://host?tls=opportunistic` | SMTP, [`Tls::Opportunistic`] | 25 |
    /// | `smtp://host?tls=none` | SMTP, [`Tls::None`] | 25 |
    /// | `smtps://host` | SMTP, [`Tls::Implicit`] | 465 |
    /// | `lmtp://host` | LMTP, [`Tls::None`] ([`Tls::StartTls`] with a login) | 2003 |
    /// | `lmtp:///run/dovecot/lmtp`, `smtp:///run/smtp.sock` | LMTP or SMTP over a Unix socket | |
    ///
    /// A port in the URL (`smtp://host:2525`) replaces the default. The host
    /// is a name (ASCII letters, digits, `-`, `.` and `_`: an
    /// internationalised name in its `xn--` form), an IPv4 address or a
    /// bracketed IPv6 address (`smtp://[::1]:2525`). The user and the
    /// password are percent-decoded (`smtp://alice%40example.org:p%2Fss@host`
    /// logs in as `alice@example.org` with `p/ss`), and a user needs a
    /// password. The scheme is case-insensitive; nothing else may follow: no
    /// fragment, no other parameter, no path after a host.
    ///
    /// A login from a URL is a login as [`Builder::credentials`] makes it,
    /// under the same rule: never over a connection that is neither TLS
    /// with a verified certificate nor loopback or a Unix socket, unless
    /// [`Builder::allow_plaintext_auth`]. Without `tls=`, a URL with a
    /// login asks for STARTTLS, required, so that a server (or someone in
    /// the path) that does not offer it ends the session before EHLO is
    /// followed by anything; `tls=opportunistic` or `tls=none` says
    /// otherwise, and the rule still holds. Neither the builder's `Debug`
    /// nor a [`crate::UrlError`] shows the password.
    ///
    /// ```
    /// use smtp_adapter::{Builder, Tls, UrlError};
    ///
    /// let b = Builder::<()>::from_url("smtps://alice%40example.org:app%2Fpassword@smtp.example.org")?;
    /// assert_eq!((b.tls_mode(), b.port()), (Tls::Implicit, 465));
    /// assert!(!format!("{b:?}").contains("app"));
    ///
    /// let b = Builder::<()>::from_url("smtp://[::1]:2525?tls=none")?;
    /// assert_eq!(b.address(), "[::1]:2525");
    ///
    /// assert_eq!(Builder::<()>::from_url("http://example.org").unwrap_err(), UrlError::Scheme("http".into()));
    /// # Ok::<(), UrlError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`crate::UrlError`] saying what does not parse.
    pub fn from_url(url: &str) -> Result<Builder<C>, crate::UrlError> {
        let u = crate::server_url::parse(url)?;
        let mut b = match u.target {
            UrlTarget::Tcp { host, port } => Builder::new("localhost").with_target(host, port),
            UrlTarget::Unix(path) => Builder::unix(path),
        };
        if u.lmtp {
            b.options.protocol = Protocol::Lmtp;
        }
        b.tls = u.tls;
        if let Some((user, password)) = u.credentials {
            b = b.credentials(&user, &password);
        }
        Ok(b)
    }

    /// The builder connecting to `host` and `port` (the default when `None`).
    fn with_target(mut self, host: String, port: Option<u16>) -> Builder<C> {
        self.target = Target::Tcp { host, port };
        self.address_error = None;
        self
    }

    /// A connection to the Unix socket at `path` (SMTP unless the options say
    /// LMTP); no TLS unless asked.
    #[must_use]
    pub fn unix(path: impl Into<PathBuf>) -> Builder<C> {
        let mut b = Builder::new("localhost");
        b.target = Target::Unix(path.into());
        b.tls = Tls::None;
        b
    }

    /// The port (default: 25, 587 with [`Tls::StartTls`], 465 with
    /// [`Tls::Implicit`], 2003 for LMTP).
    #[must_use]
    pub fn port(&self) -> u16 {
        match (&self.target, self.options.protocol, self.tls) {
            (Target::Tcp { port: Some(p), .. }, _, _) => *p,
            (_, Protocol::Lmtp, _) => crate::LMTP_PORT,
            (_, _, Tls::StartTls) => 587,
            (_, _, Tls::Implicit) => crate::SMTPS_PORT,
            _ => crate::SMTP_PORT,
        }
    }

    /// Connects to `port` instead of the default.
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Builder<C> {
        if let Target::Tcp { port: p, .. } = &mut self.target {
            *p = Some(port);
        }
        self
    }

    /// How much TLS (default: [`Tls::Opportunistic`]; [`Tls::None`] for LMTP).
    #[must_use]
    pub fn tls(mut self, tls: Tls) -> Builder<C> {
        self.tls = tls;
        self
    }

    /// The rustls configuration (default: the platform's roots, built once per
    /// process so that sessions resume).
    #[must_use]
    pub fn tls_config(mut self, config: Arc<ClientConfig>) -> Builder<C> {
        self.tls_config = Some(config);
        self
    }

    /// The name the certificate is checked against, when not the host name.
    #[must_use]
    pub fn tls_server_name(mut self, name: impl Into<String>) -> Builder<C> {
        self.tls_server_name = Some(name.into());
        self
    }

    /// Logs in as smtplib's `login` does (CRAM-MD5, PLAIN or LOGIN, whichever
    /// the server offers first in that order), after STARTTLS.
    ///
    /// Each of those puts the password (or, for CRAM-MD5, a cheaply guessed
    /// digest of it) on the wire, so the login happens only over TLS with a
    /// verified certificate, or to a loopback address or Unix socket, or with
    /// [`Builder::allow_plaintext_auth`]; otherwise `connect` fails with
    /// [`SecurityError::PlaintextAuth`](smtp_sansio::SecurityError::PlaintextAuth)
    /// before any AUTH or MAIL is sent.
    #[must_use]
    pub fn credentials(mut self, user: &str, password: &str) -> Builder<C> {
        self.auth = Some(Auth::Login(Credentials::new(user, password)));
        self
    }

    /// Authenticates with a mechanism of your choice (XOAUTH2, SCRAM-SHA-256, one
    /// of your own), made afresh for each connection. One that exposes a
    /// secret ([`Mechanism::exposes_secret`], the default for your own) runs
    /// under the same rule as [`Builder::credentials`].
    #[must_use]
    pub fn mechanism(
        mut self,
        make: impl Fn() -> Box<dyn Mechanism> + Send + Sync + 'static,
    ) -> Builder<C> {
        self.auth = Some(Auth::Mechanism(Arc::new(make)));
        self
    }

    /// Lets AUTH send a reusable secret (PLAIN, LOGIN, CRAM-MD5, XOAUTH2,
    /// OAUTHBEARER) over a connection that is neither TLS with a verified
    /// certificate nor to a loopback address or Unix socket: plaintext to a
    /// remote server, or TLS with
    /// [`tls::dangerous_accept_any_certificate`](crate::tls::dangerous_accept_any_certificate).
    /// Default: no (see [`Options::allow_plaintext_auth`]). Anyone on the
    /// path can then read the password.
    #[must_use]
    pub fn allow_plaintext_auth(mut self, on: bool) -> Builder<C> {
        self.options.allow_plaintext_auth = on;
        self
    }

    /// Whether AUTH may carry an initial response (default: yes).
    #[must_use]
    pub fn initial_response(mut self, on: bool) -> Builder<C> {
        self.initial_response = on;
        self
    }

    /// One timeout for every wait and for connecting (default: RFC 5321's
    /// per-command minimums, five minutes and more).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Builder<C> {
        self.options.timeout = Some(timeout);
        self
    }

    /// The EHLO name (default: the machine's fully qualified name, else the
    /// address literal of the connection's local end).
    #[must_use]
    pub fn local_name(mut self, name: impl Into<String>) -> Builder<C> {
        self.options.local_name = Some(name.into());
        self
    }

    /// Binds to this local address before connecting.
    #[must_use]
    pub fn source_address(mut self, address: SocketAddr) -> Builder<C> {
        self.options.source_address = Some(address);
        self
    }

    /// Whether PIPELINING is used when offered (default: yes).
    #[must_use]
    pub fn pipelining(mut self, on: bool) -> Builder<C> {
        self.options.pipelining = on;
        self
    }

    /// Whether CHUNKING (BDAT) is used when offered (default: yes).
    #[must_use]
    pub fn chunking(mut self, on: bool) -> Builder<C> {
        self.options.chunking = on;
        self
    }

    /// What to do with bare CR and LF in messages (default: normalise to CRLF).
    #[must_use]
    pub fn line_endings(mut self, line_endings: LineEndings) -> Builder<C> {
        self.options.line_endings = line_endings;
        self
    }

    /// smtplib's debug level: 1 logs every line (to `tracing`, target `smtp`),
    /// 2 adds timestamps on a transcript writer.
    #[must_use]
    pub fn debug_level(mut self, level: impl Into<crate::DebugLevel>) -> Builder<C> {
        self.options.debug_level = level.into();
        self
    }

    /// Writes the session's transcript to `writer` from the first byte: the
    /// greeting, and the EHLO, STARTTLS and AUTH `connect` runs (AUTH
    /// payloads as `<redacted>`), then every later line, one `C: ` or `S: `
    /// line each, as [`set_transcript`](crate::Transcript::set_writer) does
    /// on a connected session. Raises the debug level to
    /// [`DebugLevel::Lines`](crate::DebugLevel::Lines) when it is off (a
    /// later [`Builder::debug_level`] or [`Builder::options`] sets it
    /// again). Every session this builder (or a clone of it, as a pool's
    /// connect function uses) connects writes to the same `writer`, one
    /// whole line at a time.
    ///
    /// ```
    /// use smtp_adapter::{Builder, DebugLevel};
    ///
    /// let b = Builder::<()>::new("smtp.example.org").transcript(std::io::stderr());
    /// assert_eq!(b.session_options().debug_level, DebugLevel::Lines);
    /// ```
    #[must_use]
    pub fn transcript(mut self, writer: impl std::io::Write + Send + 'static) -> Builder<C> {
        self.transcript = Some(crate::transcript::SharedWriter::new(Box::new(writer)));
        self.options.debug_level = self.options.debug_level.max(crate::DebugLevel::Lines);
        self
    }

    /// The transcript writer a new session writes to, if one was given.
    pub(crate) fn transcript_writer(&self) -> Option<crate::transcript::SharedWriter> {
        self.transcript.clone()
    }

    /// SMTP or LMTP.
    #[must_use]
    pub fn protocol(mut self, protocol: Protocol) -> Builder<C> {
        self.options.protocol = protocol;
        self
    }

    /// Stops after the greeting: no EHLO, STARTTLS or AUTH (smtplib's
    /// `SMTP(host)`, which leaves those to the caller).
    #[must_use]
    pub fn greeting_only(mut self) -> Builder<C> {
        self.greeting_only = true;
        self
    }

    /// Early pipelining (PIPE_CONNECT, draft-harris-early-pipe as Exim
    /// implements it; default: off): on a new connection to a server that
    /// advertised PIPELINING and PIPECONNECT on an earlier one (same address
    /// and port, same TLS mode, same EHLO name, within a day), EHLO (and a
    /// STARTTLS that will run) goes out before the greeting, in one write,
    /// which takes the greeting's round trip (and STARTTLS's) off every
    /// new connection. What servers advertised is kept in the
    /// [`Builder::capability_cache`], or in one this builder makes, shared
    /// by its clones (a pool's connections).
    ///
    /// Off by default because RFC 5321 section 3.1 has the client wait for
    /// the greeting, and servers that did not offer PIPECONNECT punish one
    /// that does not: Exim answers 554 and hangs up, Postfix's postscreen
    /// (pregreet test) lets the session go on and refuses its mail. A server
    /// is only ever sent early talk after it advertised PIPECONNECT itself,
    /// but a cache can be stale (a new server behind the address, a changed
    /// configuration): the connection then fails before anything but EHLO
    /// (and STARTTLS) went out, the server is forgotten and `connect`
    /// reconnects once, waiting for the greeting. Turn it on for servers you
    /// know (your submission server, a relay) where the cost of that rare
    /// second connection is worth a round trip saved on every other.
    #[must_use]
    pub fn early_pipelining(mut self, on: bool) -> Builder<C> {
        self.early_pipelining = on;
        if on && self.capability_cache.is_none() {
            self.capability_cache = Some(Arc::new(CapabilityCache::default()));
        }
        self
    }

    /// The cache of what servers advertised that [`Builder::early_pipelining`]
    /// reads and fills (default: one made by the builder when early
    /// pipelining is turned on). Pass the same one to every builder (a
    /// pool's connect closure, several pools) that should learn from the
    /// others' connections. Without early pipelining it is not used.
    #[must_use]
    pub fn capability_cache(mut self, cache: Arc<CapabilityCache>) -> Builder<C> {
        self.capability_cache = Some(cache);
        self
    }

    /// The early-pipelining bookkeeping of a connection `driver` has just
    /// made (before its greeting is read): `None` unless
    /// [`Builder::early_pipelining`] is on and an open will run (not
    /// [`Builder::greeting_only`]).
    #[must_use]
    pub fn early_open(&self, driver: &Driver) -> Option<EarlyOpen> {
        match (
            &self.capability_cache,
            self.early_pipelining,
            self.greeting_only,
        ) {
            (Some(cache), true, false) => Some(EarlyOpen::new(cache.clone(), driver)),
            _ => None,
        }
    }

    /// Replaces every session option at once.
    #[must_use]
    pub fn options(mut self, options: Options) -> Builder<C> {
        self.options = options;
        self
    }
}

/// A client type that a [`Builder`] can connect: `Output` is the client, or a
/// future of it for the async facades.
pub trait Connect: Sized {
    /// What `connect()` returns.
    type Output;
    /// Connects as `builder` says.
    fn connect(builder: Builder<Self>) -> Self::Output;
}

impl<C: Connect> Builder<C> {
    /// Connects, reads the greeting, says EHLO, runs STARTTLS and AUTH as set.
    pub fn connect(self) -> C::Output {
        C::connect(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    type B = Builder<()>;

    #[test]
    fn default_ports_follow_the_tls_mode_and_protocol() {
        assert_eq!(B::new("mx.example.org").port(), 25);
        assert_eq!(B::new("mx.example.org").tls(Tls::None).port(), 25);
        assert_eq!(B::new("mx.example.org").tls(Tls::StartTls).port(), 587);
        assert_eq!(B::new("mx.example.org").tls(Tls::Implicit).port(), 465);
        assert_eq!(B::lmtp("mda.example.org").port(), 2003);
        assert_eq!(
            B::new("mx.example.org:2525").tls(Tls::Implicit).port(),
            2525
        );
        assert_eq!(B::new("mx.example.org").with_port(26).port(), 26);
        assert_eq!(B::new("[::1]:2525").address(), "[::1]:2525");
        assert_eq!(B::new("::1").tls(Tls::StartTls).address(), "[::1]:587");
        assert_eq!(B::lmtp("/run/lmtp").address(), "/run/lmtp");
        assert_eq!(B::lmtp("/run/lmtp").tls_mode(), Tls::None);
    }

    #[test]
    fn tls_modes_that_need_tls_require_it() {
        assert!(!B::new("h").session_options().require_tls);
        assert!(B::new("h").tls(Tls::StartTls).session_options().require_tls);
        assert!(B::new("h").tls(Tls::Implicit).session_options().require_tls);
    }

    #[test]
    fn the_open_plan_follows_the_tls_mode_and_login() {
        use smtp_sansio::{OpenAuth, StartTlsPolicy as P};
        let plan = |b: B| b.open_plan().unwrap().unwrap();
        assert!(B::new("h").greeting_only().open_plan().unwrap().is_none());
        let p = plan(B::new("h").tls(Tls::None));
        assert_eq!((p.starttls, p.tls_available), (P::Never, false));
        assert!(p.auth.is_none() && p.initial_response);
        assert_eq!(plan(B::new("h")).starttls, P::Opportunistic);
        let p = plan(B::new("h").tls(Tls::Implicit).initial_response(false));
        assert_eq!(p.starttls, P::Required);
        assert!(!p.initial_response);
        let p = plan(B::new("h").tls(Tls::None).credentials("alice", "hunter2"));
        assert!(matches!(&p.auth, Some(OpenAuth::Login(c)) if c.user == "alice"));
        assert!(!format!("{p:?}").contains("hunter2"));
        let p = plan(
            B::new("h")
                .tls(Tls::None)
                .mechanism(|| Box::new(smtp_sansio::sasl::Plain::new(Credentials::new("a", "b")))),
        );
        assert!(matches!(&p.auth, Some(OpenAuth::Mechanism(m)) if m.name() == "PLAIN"));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let b = B::new("h").credentials("alice", "hunter2");
        let shown = format!("{b:?}");
        assert!(
            shown.contains("login") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn split_host_port_forms() {
        let s = |a| crate::split_host_port(a, 25);
        assert_eq!(s("h").unwrap(), ("h".into(), 25));
        assert_eq!(s("h:26").unwrap(), ("h".into(), 26));
        assert_eq!(s("[::1]:27").unwrap(), ("::1".into(), 27));
        assert_eq!(s("::1").unwrap(), ("::1".into(), 25));
        assert!(s("").is_err() && s("h:x").is_err() && s("[::1]x").is_err());
    }
}
