//! What a [`MockServer`](crate::MockServer) listens on and how it behaves.

use std::path::PathBuf;
use std::time::Duration;

use crate::fault::Fault;
use crate::script::Script;

/// The host name the server uses in its greeting and replies.
pub const HOSTNAME: &str = "testkit.example";

/// The EHLO keywords a default SMTP server offers.
pub const DEFAULT_EXTENSIONS: &[&str] = &[
    "PIPELINING",
    "8BITMIME",
    "SIZE 10485760",
    "ENHANCEDSTATUSCODES",
    "SMTPUTF8",
    "CHUNKING",
    "DSN",
];

/// The LHLO keywords a default LMTP server offers.
pub const DEFAULT_LMTP_EXTENSIONS: &[&str] =
    &["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "CHUNKING"];

/// The AUTH mechanisms offered when users are configured. The server also
/// knows SCRAM-SHA-256 (RFC 7677), offered when listed in
/// [`ServerConfig::auth_mechanisms`].
pub const DEFAULT_AUTH_MECHANISMS: &[&str] =
    &["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"];

/// The default limit on the message size (the `SIZE` keyword's value).
pub const DEFAULT_SIZE_LIMIT: u64 = 10_485_760;

/// How long a connection may stay silent before the server gives up on it.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// TCP on 127.0.0.1, on a free port chosen by the system.
    Tcp,
    /// TCP on this address, on a free port chosen by the system: a peer that
    /// is not loopback, for a test of what a client does differently there
    /// (the address must be configured on an interface, say `192.0.2.10/32`
    /// on `lo` in a private network namespace).
    TcpOn(std::net::IpAddr),
    /// TCP at this exact address and port (a mail exchanger on port 25 of
    /// a loopback address, in a private network namespace where the
    /// process may bind it).
    TcpAt(std::net::SocketAddr),
    /// A Unix socket at this path (a stale socket file there is removed first).
    /// On a system without Unix sockets, [`MockServer::start`](crate::MockServer::start)
    /// fails with [`std::io::ErrorKind::Unsupported`].
    Unix(PathBuf),
}

/// TLS on the server side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTls {
    /// Plain text only.
    None,
    /// STARTTLS offered in the EHLO answer (not again once TLS is active).
    StartTls,
    /// TLS from the first byte (as on port 465).
    Implicit,
}

/// The behaviour of a [`MockServer`](crate::MockServer).
///
/// Build it with [`ServerConfig::default`] (an SMTP server on TCP),
/// [`ServerConfig::lmtp_unix`], [`ServerConfig::lmtp_tcp`] or
/// [`ServerConfig::scripted`], then the builder-style setters; the fields can
/// also be assigned directly.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: Listen,
    /// TLS mode.
    pub tls: ServerTls,
    /// Speak LMTP: LHLO instead of EHLO (EHLO and HELO are refused), and one
    /// reply per accepted recipient after the message.
    pub lmtp: bool,
    /// The greeting, code included. Several lines may be separated by `\n`
    /// (each must carry its own `220-` / `220 ` prefix). A greeting that does
    /// not start with `220` refuses the session: `421` closes at once, any other
    /// code answers `503` to everything but `QUIT`.
    pub greeting: String,
    /// The EHLO (LHLO) keywords with their parameters. `STARTTLS` and `AUTH` are
    /// added by the server as [`ServerConfig::tls`] and
    /// [`ServerConfig::users`] say.
    pub extensions: Vec<String>,
    /// Answer EHLO with 502, so that clients fall back to HELO.
    pub refuse_ehlo: bool,
    /// Users and their passwords (the bearer token for XOAUTH2 and
    /// OAUTHBEARER). When not empty, AUTH is offered and the credentials must
    /// match one of them; MAIL does not require AUTH.
    pub users: Vec<(String, String)>,
    /// The AUTH mechanisms offered when users are configured.
    pub auth_mechanisms: Vec<String>,
    /// A reply refusing STARTTLS (still offered), such as `454 4.7.0 TLS not
    /// available`: the session goes on in plaintext.
    pub starttls_reply: Option<String>,
    /// Reverse paths (without angle brackets) whose MAIL is answered 553.
    pub refuse_senders: Vec<String>,
    /// Forward paths (without angle brackets) whose RCPT is answered 550.
    pub refuse_recipients: Vec<String>,
    /// LMTP: recipients accepted at RCPT that fail after the message with
    /// `452 4.2.2 mailbox full`.
    pub fail_after_data: Vec<String>,
    /// The largest message accepted, checked against the `SIZE=` parameter of
    /// MAIL and against the received message (552). 0: no limit.
    pub size_limit: u64,
    /// A reply line that replaces the success reply to every message (under
    /// LMTP: the reply for every recipient). A message answered with a code
    /// other than 2xx is not recorded; after a 421 the server closes.
    pub data_reply: Option<String>,
    /// Answer `421` and close instead of processing the command that comes
    /// after this many commands.
    pub reply_421_after: Option<usize>,
    /// Answer `421` and close when the client stays idle this long between
    /// commands.
    pub idle_close: Option<Duration>,
    /// Read (and write) timeout of each connection: a client silent this long
    /// is dropped, so that no test can hang on the server.
    pub read_timeout: Duration,
    /// Play this script on every connection instead of behaving as a server.
    pub script: Option<Script>,
    /// Cut, reset or stall every connection at this point (behavioural mode).
    pub fault: Option<Fault>,
    /// A fault for each connection by its number (the first accepted is 0),
    /// in place of [`ServerConfig::fault`] for the connections it lists: a
    /// schedule, so that a retry on a new connection meets another fate.
    pub faults: Vec<Option<Fault>>,
    /// What the server does with a client that talks before the greeting
    /// (default: [`EarlyTalk::Ignore`]).
    pub early_talk: EarlyTalk,
}

/// How a server meets a client that writes before the greeting (early
/// pipelining, PIPE_CONNECT, draft-harris-early-pipe). Offering it is a
/// matter of [`ServerConfig::extensions`] (`PIPECONNECT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EarlyTalk {
    /// The greeting goes at once; whatever came before is read after it.
    #[default]
    Ignore,
    /// The greeting is held until the client writes or this long passed,
    /// then the session goes on; the log says whether the client wrote
    /// first ([`ConnectionLog::talked_first`](crate::ConnectionLog::talked_first)).
    Watch(Duration),
    /// As [`EarlyTalk::Watch`], but a client that wrote first gets
    /// `554 SMTP synchronization error` and the connection is closed (as
    /// Exim answers early talk when it did not offer PIPECONNECT).
    Refuse(Duration),
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Listen::Tcp,
            tls: ServerTls::None,
            lmtp: false,
            greeting: format!("220 {HOSTNAME} ESMTP ready"),
            extensions: to_strings(DEFAULT_EXTENSIONS),
            refuse_ehlo: false,
            users: Vec::new(),
            auth_mechanisms: to_strings(DEFAULT_AUTH_MECHANISMS),
            starttls_reply: None,
            refuse_senders: Vec::new(),
            refuse_recipients: Vec::new(),
            fail_after_data: Vec::new(),
            size_limit: DEFAULT_SIZE_LIMIT,
            data_reply: None,
            reply_421_after: None,
            idle_close: None,
            read_timeout: DEFAULT_READ_TIMEOUT,
            script: None,
            fault: None,
            faults: Vec::new(),
            early_talk: EarlyTalk::Ignore,
        }
    }
}

fn to_strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The value of a `SIZE n` keyword, if `keyword` is one.
fn size_keyword(keyword: &str) -> Option<u64> {
    let mut words = keyword.split_whitespace();
    let name = words.next()?;
    if !name.eq_ignore_ascii_case("SIZE") {
        return None;
    }
    Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0))
}

impl ServerConfig {
    /// An LMTP server on a Unix socket at `path`.
    #[must_use]
    pub fn lmtp_unix(path: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            listen: Listen::Unix(path.into()),
            ..ServerConfig::lmtp_tcp()
        }
    }

    /// An LMTP server on TCP.
    #[must_use]
    pub fn lmtp_tcp() -> ServerConfig {
        ServerConfig {
            lmtp: true,
            greeting: format!("220 {HOSTNAME} LMTP ready"),
            extensions: to_strings(DEFAULT_LMTP_EXTENSIONS),
            ..ServerConfig::default()
        }
    }

    /// A server that plays `script` on every connection.
    #[must_use]
    pub fn scripted(script: Script) -> ServerConfig {
        ServerConfig {
            script: Some(script),
            ..ServerConfig::default()
        }
    }

    /// Sets where to listen.
    #[must_use]
    pub fn listen(mut self, listen: Listen) -> ServerConfig {
        self.listen = listen;
        self
    }

    /// Listens on TCP at `ip`, on a free port ([`Listen::TcpOn`]).
    #[must_use]
    pub fn tcp_on(self, ip: std::net::IpAddr) -> ServerConfig {
        self.listen(Listen::TcpOn(ip))
    }

    /// Listens on TCP at exactly `addr` ([`Listen::TcpAt`]).
    #[must_use]
    pub fn tcp_at(self, addr: std::net::SocketAddr) -> ServerConfig {
        self.listen(Listen::TcpAt(addr))
    }

    /// Listens on a Unix socket at `path`.
    #[must_use]
    pub fn unix(self, path: impl Into<PathBuf>) -> ServerConfig {
        self.listen(Listen::Unix(path.into()))
    }

    /// Sets the TLS mode.
    #[must_use]
    pub fn tls(mut self, tls: ServerTls) -> ServerConfig {
        self.tls = tls;
        self
    }

    /// Speaks LMTP (`true`) or SMTP (`false`); the greeting and keywords stay
    /// as they are.
    #[must_use]
    pub fn lmtp(mut self, lmtp: bool) -> ServerConfig {
        self.lmtp = lmtp;
        self
    }

    /// Sets the greeting, code included (see [`ServerConfig::greeting`]).
    #[must_use]
    pub fn greeting(mut self, greeting: &str) -> ServerConfig {
        self.greeting = greeting.to_owned();
        self
    }

    /// Replaces the EHLO keywords. A `SIZE n` keyword also sets
    /// [`ServerConfig::size_limit`] to `n`, so that the server enforces what it
    /// announces.
    #[must_use]
    pub fn extensions(mut self, extensions: &[&str]) -> ServerConfig {
        self.extensions = to_strings(extensions);
        if let Some(n) = extensions.iter().find_map(|k| size_keyword(k)) {
            self.size_limit = n;
        }
        self
    }

    /// Answers EHLO with 502 (`true`), so that clients fall back to HELO.
    #[must_use]
    pub fn refuse_ehlo(mut self, refuse: bool) -> ServerConfig {
        self.refuse_ehlo = refuse;
        self
    }

    /// Adds a user; AUTH is offered once there is one. The password is also the
    /// bearer token for XOAUTH2 and OAUTHBEARER.
    #[must_use]
    pub fn user(mut self, name: &str, password: &str) -> ServerConfig {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Replaces the AUTH mechanisms offered (and accepted).
    #[must_use]
    pub fn auth_mechanisms(mut self, mechanisms: &[&str]) -> ServerConfig {
        self.auth_mechanisms = to_strings(mechanisms);
        self
    }

    /// Answers STARTTLS (offered under [`ServerTls::StartTls`]) with `reply`
    /// and goes on in plaintext (see [`ServerConfig::starttls_reply`]).
    #[must_use]
    pub fn refuse_starttls(mut self, reply: &str) -> ServerConfig {
        self.starttls_reply = Some(reply.to_owned());
        self
    }

    /// Answers MAIL from this reverse path with 553.
    #[must_use]
    pub fn refuse_sender(mut self, address: &str) -> ServerConfig {
        self.refuse_senders.push(address.to_owned());
        self
    }

    /// Answers RCPT to this forward path with 550.
    #[must_use]
    pub fn refuse_recipient(mut self, address: &str) -> ServerConfig {
        self.refuse_recipients.push(address.to_owned());
        self
    }

    /// LMTP: this recipient is accepted at RCPT and fails with 452 after the
    /// message.
    #[must_use]
    pub fn fail_after_data(mut self, address: &str) -> ServerConfig {
        self.fail_after_data.push(address.to_owned());
        self
    }

    /// Sets the message size limit (0: none) and the value of the `SIZE`
    /// keyword, when one is offered.
    #[must_use]
    pub fn size_limit(mut self, limit: u64) -> ServerConfig {
        self.size_limit = limit;
        for keyword in &mut self.extensions {
            if size_keyword(keyword).is_some() {
                *keyword = format!("SIZE {limit}");
            }
        }
        self
    }

    /// Replaces the reply to every message (see [`ServerConfig::data_reply`]).
    #[must_use]
    pub fn data_reply(mut self, reply: &str) -> ServerConfig {
        self.data_reply = Some(reply.to_owned());
        self
    }

    /// Answers every message with `code` and a short text; a code other than
    /// 2xx means the message is not recorded, and 421 closes the connection.
    #[must_use]
    pub fn fail_data_with(self, code: u16) -> ServerConfig {
        let text = match code / 100 {
            _ if code == 421 => "4.3.2 service shutting down, closing",
            2 => "2.0.0 accepted",
            4 => "4.3.0 temporary failure, try again later",
            _ => "5.7.1 message rejected",
        };
        self.data_reply(&format!("{code} {text}"))
    }

    /// Answers `421` and closes instead of processing command number `n + 1`.
    #[must_use]
    pub fn reply_421_after(mut self, n: usize) -> ServerConfig {
        self.reply_421_after = Some(n);
        self
    }

    /// Answers `421` and closes a connection idle for `idle`.
    #[must_use]
    pub fn idle_close(mut self, idle: Duration) -> ServerConfig {
        self.idle_close = Some(idle);
        self
    }

    /// Sets the per-connection read and write timeout.
    #[must_use]
    pub fn read_timeout(mut self, timeout: Duration) -> ServerConfig {
        self.read_timeout = timeout;
        self
    }

    /// Plays `script` on every connection instead of behaving as a server.
    #[must_use]
    pub fn script(mut self, script: Script) -> ServerConfig {
        self.script = Some(script);
        self
    }

    /// Injects `fault` into every connection (see [`Fault`]).
    #[must_use]
    pub fn fault(mut self, fault: Fault) -> ServerConfig {
        self.fault = Some(fault);
        self
    }

    /// Injects `faults[i]` into connection number `i` (see
    /// [`ServerConfig::faults`]).
    #[must_use]
    pub fn faults(mut self, faults: Vec<Option<Fault>>) -> ServerConfig {
        self.faults = faults;
        self
    }

    /// How a client that writes before the greeting is met (see
    /// [`EarlyTalk`]).
    #[must_use]
    pub fn early_talk(mut self, early_talk: EarlyTalk) -> ServerConfig {
        self.early_talk = early_talk;
        self
    }

    /// The fault of connection number `index`.
    #[must_use]
    pub fn fault_of(&self, index: usize) -> Option<Fault> {
        match self.faults.get(index) {
            Some(f) => *f,
            None => self.fault,
        }
    }
}
