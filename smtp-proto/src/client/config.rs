//! Session configuration: protocol, local name, per-command timeouts (RFC 5321
//! section 4.5.3.2), reply limits and policy switches.

use std::time::Duration;

use crate::body::LineEndings;
use crate::command::Domain;
use crate::reply::ReplyLimits;

/// SMTP (RFC 5321) or LMTP (RFC 2033).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// SMTP: EHLO, with HELO as fallback; one reply after the body.
    #[default]
    Smtp,
    /// LMTP: LHLO; one reply per accepted recipient after the body.
    Lmtp,
}

/// How long each wait may last (RFC 5321 section 4.5.3.2). The defaults are the
/// RFC's minimums; [`Timeouts::uniform`] uses one value for every wait, like
/// smtplib's single `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Waiting for the 220 greeting (5 minutes).
    pub greeting: Duration,
    /// Waiting for the reply to EHLO, HELO, AUTH, STARTTLS, RSET, NOOP, QUIT and
    /// the other short commands (5 minutes).
    pub command: Duration,
    /// Waiting for the reply to MAIL (5 minutes).
    pub mail: Duration,
    /// Waiting for the reply to RCPT (5 minutes).
    pub rcpt: Duration,
    /// Waiting for the 354 reply to DATA (2 minutes).
    pub data_init: Duration,
    /// Writing each block of the body, and waiting for the reply to each BDAT chunk
    /// that is not the last (3 minutes).
    pub data_block: Duration,
    /// Waiting for the reply to the final dot or to `BDAT LAST` (10 minutes).
    pub data_term: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            mail: Duration::from_secs(300),
            rcpt: Duration::from_secs(300),
            data_init: Duration::from_secs(120),
            data_block: Duration::from_secs(180),
            data_term: Duration::from_secs(600),
        }
    }
}

impl Timeouts {
    /// The same timeout for every wait.
    #[must_use]
    pub fn uniform(timeout: Duration) -> Timeouts {
        Timeouts {
            greeting: timeout,
            command: timeout,
            mail: timeout,
            rcpt: timeout,
            data_init: timeout,
            data_block: timeout,
            data_term: timeout,
        }
    }
}

/// Everything a [`Client`](super::Client) is configured with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// The name sent with EHLO, HELO and LHLO. Adapters default it to the
    /// machine's fully qualified name, or an address literal.
    pub local_name: Domain,
    /// Per-wait timeouts.
    pub timeouts: Timeouts,
    /// Bounds on each reply.
    pub reply_limits: ReplyLimits,
    /// Use PIPELINING when the server offers it (default true).
    pub pipelining: bool,
    /// Use CHUNKING (BDAT) when the server offers it (default true).
    pub chunking: bool,
    /// What the body encoder does with bare CR and LF (default: normalise).
    pub line_endings: LineEndings,
    /// Refuse to authenticate or send an envelope on an unencrypted session, and
    /// end the session when STARTTLS is not offered or is refused.
    pub require_tls: bool,
    /// The transport is already encrypted (implicit TLS, port 465).
    pub tls_on_connect: bool,
    /// Most 334 challenges answered in one AUTH exchange before cancelling.
    pub max_auth_rounds: u32,
    /// Most BDAT chunks in flight at once when pipelining (bounds what the server
    /// must buffer in replies while the client writes).
    pub max_bdat_in_flight: usize,
    /// Emit [`Output::Trace`](super::Output::Trace) lines (smtplib's
    /// `set_debuglevel`); secrets are always redacted.
    pub trace: bool,
}

impl Config {
    /// Defaults with the given local name.
    #[must_use]
    pub fn new(local_name: Domain) -> Config {
        Config {
            protocol: Protocol::Smtp,
            local_name,
            timeouts: Timeouts::default(),
            reply_limits: ReplyLimits::default(),
            pipelining: true,
            chunking: true,
            line_endings: LineEndings::Normalize,
            require_tls: false,
            tls_on_connect: false,
            max_auth_rounds: 8,
            max_bdat_in_flight: 16,
            trace: false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new(Domain::address_literal(core::net::IpAddr::V4(
            core::net::Ipv4Addr::LOCALHOST,
        )))
    }
}

/// What every adapter's `connect` takes, apart from the transport and TLS
/// settings: smtplib's `local_hostname`, `timeout` and `source_address`, plus
/// the policy switches of [`Config`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Options {
    /// The EHLO name. Default: the machine's name when it is fully qualified,
    /// else the address literal of the local end of the connection.
    pub local_hostname: Option<String>,
    /// One timeout for every wait, replacing the RFC 5321 defaults; also the
    /// connect timeout. Zero is refused.
    pub timeout: Option<Duration>,
    /// Bind to this local address before connecting.
    pub source_address: Option<core::net::SocketAddr>,
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// Do not use PIPELINING even when offered.
    pub no_pipelining: bool,
    /// Do not use CHUNKING even when offered.
    pub no_chunking: bool,
    /// See [`Config::require_tls`].
    pub require_tls: bool,
    /// See [`Config::line_endings`].
    pub line_endings: LineEndings,
    /// smtplib's `set_debuglevel`: 0 silent, 1 every line, 2 with timestamps.
    pub debug_level: u8,
    /// Bounds on replies.
    pub reply_limits: Option<ReplyLimits>,
}

impl Options {
    /// The connect timeout: the overall timeout, else the greeting timeout.
    /// Fails for a zero timeout, which would make every wait fail at once.
    pub fn connect_timeout(&self) -> Result<Duration, crate::error::UsageError> {
        match self.timeout {
            Some(t) if t.is_zero() => Err(crate::error::UsageError::InvalidArgument {
                what: "timeout",
                why: "zero would make every wait fail at once",
            }),
            Some(t) => Ok(t),
            None => Ok(Timeouts::default().greeting),
        }
    }

    /// The core configuration for a connection whose local end is `local_ip`;
    /// `machine_name` is the host name the adapter found, if any.
    pub fn to_config(
        &self,
        machine_name: Option<&str>,
        local_ip: Option<core::net::IpAddr>,
        tls_on_connect: bool,
    ) -> Result<Config, crate::error::UsageError> {
        let machine_name = machine_name.map(str::trim);
        let name = match (&self.local_hostname, machine_name) {
            (Some(n), _) => Domain::new(n.as_str())?,
            (None, Some(n)) if n.contains('.') && !n.ends_with('.') && n != "localhost" => {
                Domain::new(n).unwrap_or_else(|_| {
                    Domain::address_literal(
                        local_ip.unwrap_or(core::net::Ipv4Addr::LOCALHOST.into()),
                    )
                })
            }
            _ => Domain::address_literal(local_ip.unwrap_or(core::net::Ipv4Addr::LOCALHOST.into())),
        };
        let mut config = Config::new(name);
        self.connect_timeout()?;
        if let Some(t) = self.timeout {
            config.timeouts = Timeouts::uniform(t);
        }
        config.protocol = self.protocol;
        config.pipelining = !self.no_pipelining;
        config.chunking = !self.no_chunking;
        config.require_tls = self.require_tls;
        config.line_endings = self.line_endings;
        config.trace = self.debug_level > 0;
        config.tls_on_connect = tls_on_connect;
        if let Some(l) = self.reply_limits {
            config.reply_limits = l;
        }
        Ok(config)
    }
}

/// Whether a wake-up already armed to fire `armed` from now can serve a wait whose
/// deadline is `left` from now.
///
/// [`Client::handle_timeout`](crate::Client::handle_timeout) ignores a call before
/// the deadline, so a wake-up that comes early costs only another wait. An adapter
/// whose timer or socket timeout is costly to set (a system call, a reactor
/// wake-up) keeps one that fires no later than the deadline and no sooner than an
/// eighth of the wait: waits of about the same length, such as the RFC 5321
/// default that starts anew with every command, then reuse it.
#[must_use]
pub fn armed_wait_serves(armed: Duration, left: Duration) -> bool {
    armed <= left && armed >= left / 8
}

/// Splits `host:port`, `[v6]:port` or `host` (then `default_port`) into host and
/// port, as smtplib's `connect` does.
pub fn split_host_port(
    address: &str,
    default_port: u16,
) -> Result<(String, u16), crate::error::UsageError> {
    let bad = || crate::error::UsageError::InvalidArgument {
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
