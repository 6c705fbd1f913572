//! What a connection takes apart from the transport: the EHLO name (smtplib's
//! `local_hostname`), `timeout` and `source_address`, and the policy switches of the core's
//! [`Config`]; and the parsing of `host:port`. Socket matters stay out of the
//! core, which never connects anything.

use std::net::SocketAddr;
use std::time::Duration;

use crate::DebugLevel;
use smtp_sansio::{Config, Domain, LineEndings, Protocol, ReplyLimits, Timeouts, UsageError};

/// What every adapter's `connect` takes, apart from the transport and TLS
/// settings: the EHLO name (smtplib's `local_hostname`), `timeout` and
/// `source_address`, plus the policy switches of [`Config`], named as there.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The EHLO name (smtplib's `local_hostname`). Default: the machine's
    /// name ([`machine_name`](crate::machine_name)) when it is fully
    /// qualified, else the address literal of the local end of the
    /// connection.
    pub local_name: Option<String>,
    /// One timeout for every wait, replacing the RFC 5321 defaults (the TLS
    /// handshake's included); also the connect timeout, one budget for
    /// resolving the name and connecting to any of its addresses. Zero is
    /// refused.
    pub timeout: Option<Duration>,
    /// Bind to this local address before connecting.
    pub source_address: Option<std::net::SocketAddr>,
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// Whether PIPELINING is used when offered (default: yes).
    pub pipelining: bool,
    /// Whether CHUNKING (BDAT) is used when offered (default: yes).
    pub chunking: bool,
    /// See [`Config::require_tls`].
    pub require_tls: bool,
    /// Lets AUTH put a reusable secret (PLAIN, LOGIN, CRAM-MD5, XOAUTH2,
    /// OAUTHBEARER) on a connection that is neither TLS with a verified
    /// certificate nor to a loopback address or Unix socket: plaintext to a
    /// remote server, or TLS that accepts any certificate. Default false:
    /// such an AUTH fails with
    /// [`SecurityError::PlaintextAuth`](smtp_sansio::SecurityError::PlaintextAuth)
    /// before anything is sent (see [`Config::allow_plaintext_auth`]).
    pub allow_plaintext_auth: bool,
    /// For a session over a caller's stream (`from_stream`) only: the caller
    /// vouches that the stream reaches a loopback address or a Unix socket, so
    /// that AUTH may send a secret over it without TLS. Default false: the
    /// adapter cannot see where such a stream goes (a proxy, a tunnel), so it
    /// counts as remote. Connections the adapter makes itself ignore this and
    /// look at the connected socket's peer address.
    pub stream_is_loopback: bool,
    /// See [`Config::line_endings`].
    pub line_endings: LineEndings,
    /// The transcript's level (smtplib's `set_debuglevel`).
    pub debug_level: DebugLevel,
    /// Bounds on replies.
    pub reply_limits: Option<ReplyLimits>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            local_name: None,
            timeout: None,
            source_address: None,
            protocol: Protocol::default(),
            pipelining: true,
            chunking: true,
            require_tls: false,
            allow_plaintext_auth: false,
            stream_is_loopback: false,
            line_endings: LineEndings::default(),
            debug_level: DebugLevel::Off,
            reply_limits: None,
        }
    }
}

/// The longest timeout a session takes: one day. A longer one (smtplib's
/// `timeout=None`, "wait forever", is `Duration::MAX` here) is cut to it, since
/// every wait has a deadline.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

impl Options {
    /// The connect timeout, one budget for resolving the name and racing its
    /// addresses: the overall timeout, else the greeting timeout.
    /// Fails for a zero timeout, which would make every wait fail at once.
    pub fn connect_timeout(&self) -> Result<Duration, UsageError> {
        match self.timeout {
            Some(t) if t.is_zero() => Err(UsageError::InvalidArgument {
                what: "timeout",
                why: "zero would make every wait fail at once",
            }),
            Some(t) => Ok(t.min(MAX_TIMEOUT)),
            None => Ok(Timeouts::default().greeting),
        }
    }

    /// The core's timeouts for these options: [`Timeouts::uniform`] of the
    /// overall timeout (cut to [`MAX_TIMEOUT`]), else the RFC 5321 defaults.
    /// Their `tls_handshake` bounds an implicit-TLS handshake, which comes
    /// before the core's session. Fails for a zero timeout.
    pub fn timeouts(&self) -> Result<Timeouts, UsageError> {
        self.connect_timeout()?;
        Ok(self
            .timeout
            .map_or_else(Timeouts::default, |t| Timeouts::uniform(t.min(MAX_TIMEOUT))))
    }

    /// The core configuration for a connection whose local end is `local_ip`;
    /// `machine_name` is the host name the adapter found, if any.
    pub fn to_config(
        &self,
        machine_name: Option<&str>,
        local_ip: Option<std::net::IpAddr>,
        tls_on_connect: bool,
    ) -> Result<Config, UsageError> {
        let machine_name = machine_name.map(str::trim);
        let name = match (&self.local_name, machine_name) {
            (Some(n), _) => Domain::new(n.as_str())?,
            (None, Some(n)) if n.contains('.') && !n.ends_with('.') && n != "localhost" => {
                Domain::new(n).unwrap_or_else(|_| {
                    Domain::address_literal(
                        local_ip.unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
                    )
                })
            }
            _ => Domain::address_literal(local_ip.unwrap_or(std::net::Ipv4Addr::LOCALHOST.into())),
        };
        let mut config = Config::new(name);
        config.timeouts = self.timeouts()?;
        config.protocol = self.protocol;
        config.pipelining = self.pipelining;
        config.chunking = self.chunking;
        config.require_tls = self.require_tls;
        config.allow_plaintext_auth = self.allow_plaintext_auth;
        config.line_endings = self.line_endings;
        config.trace = self.debug_level != DebugLevel::Off;
        config.tls_on_connect = tls_on_connect;
        if let Some(l) = self.reply_limits {
            config.reply_limits = l;
        }
        Ok(config)
    }
}

crate::setters! { Options;
    /// The EHLO name (smtplib's `local_hostname`).
    local_name(name: impl Into<String>) => local_name = Some(name.into());
    /// One timeout for every wait, and the connect timeout (smtplib's `timeout`).
    timeout(timeout: Duration) => timeout = Some(timeout);
    /// Binds to this local address before connecting (smtplib's `source_address`).
    source_address(address: SocketAddr) => source_address = Some(address);
    /// SMTP or LMTP.
    protocol(protocol: Protocol) => protocol = protocol;
    /// Whether PIPELINING is used when offered (default: yes).
    pipelining(on: bool) => pipelining = on;
    /// Whether CHUNKING (BDAT) is used when offered (default: yes).
    chunking(on: bool) => chunking = on;
    /// Whether TLS is required before anything but EHLO and STARTTLS is sent.
    require_tls(on: bool) => require_tls = on;
    /// Whether AUTH may put a reusable secret on a connection that is neither
    /// TLS with a verified certificate nor to a loopback address or Unix
    /// socket (default: no; see [`Options::allow_plaintext_auth`]).
    allow_plaintext_auth(on: bool) => allow_plaintext_auth = on;
    /// For `from_stream` only: the caller's stream reaches a loopback address
    /// or a Unix socket (default: no; see [`Options::stream_is_loopback`]).
    stream_is_loopback(on: bool) => stream_is_loopback = on;
    /// What to do with bare CR and LF in a message.
    line_endings(line_endings: LineEndings) => line_endings = line_endings;
    /// smtplib's `set_debuglevel`: 0 silent, 1 every line, 2 with timestamps.
    debug_level(level: impl Into<DebugLevel>) => debug_level = level.into();
    /// Bounds on replies.
    reply_limits(limits: ReplyLimits) => reply_limits = Some(limits);
}

/// Splits `host:port`, `[v6]:port` or `host` (then `default_port`) into host and
/// port, as smtplib's `connect` does.
pub fn split_host_port(address: &str, default_port: u16) -> Result<(String, u16), UsageError> {
    let bad = || UsageError::InvalidArgument {
        what: "server address",
        why: "expected HOST, HOST:PORT or [IPv6]:PORT",
    };
    if let Some(rest) = address.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').ok_or_else(bad)?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if tail.is_empty() => default_port,
            None => return Err(bad()),
        };
        return Ok((host.to_owned(), port));
    }
    match address.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((h.to_owned(), p.parse().map_err(|_| bad())?)),
        // A bare IPv6 address.
        Some(_) => Ok((address.to_owned(), default_port)),
        None if address.is_empty() => Err(bad()),
        None => Ok((address.to_owned(), default_port)),
    }
}
