//! Session configuration: protocol, local name, per-command timeouts (RFC 5321
//! section 4.5.3.2), reply limits and policy switches.

use std::time::{Duration, Instant};

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
///
/// A timeout too long for the clock (`Duration::MAX`) is no error: its deadline
/// is then a far future ([`deadline_after`]).
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
    /// The whole TLS handshake, implicit TLS or after STARTTLS's 220, however
    /// the server paces its flight (5 minutes, Postfix's
    /// `smtp_starttls_timeout`). See [`Client::tls_handshake_deadline`](super::Client::tls_handshake_deadline).
    pub tls_handshake: Duration,
    /// How long a session ending on the client's side (dropped while open,
    /// or after `send_and_quit`'s message) waits for the reply to its QUIT
    /// before closing anyway (1 second: the outcome is known by then, and the
    /// wait is only courtesy to the server). See [`Client::quit_deadline`](super::Client::quit_deadline).
    pub quit_linger: Duration,
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
            tls_handshake: Duration::from_secs(300),
            quit_linger: DEFAULT_QUIT_LINGER,
        }
    }
}

/// The default [`Timeouts::quit_linger`].
const DEFAULT_QUIT_LINGER: Duration = Duration::from_secs(1);

impl Timeouts {
    /// The same timeout for every wait, the TLS handshake included; the QUIT
    /// linger is the default one second, or `timeout` when that is shorter.
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
            tls_handshake: timeout,
            quit_linger: timeout.min(DEFAULT_QUIT_LINGER),
        }
    }
}

/// How far ahead a deadline lies when `now + timeout` does not fit the clock:
/// about thirty years, as good as never for a session.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);

/// The deadline `timeout` after `now`, saturating: a timeout too long for the
/// clock (`Duration::MAX`, "wait forever") gives a far-future deadline instead
/// of the overflow panic of `now + timeout`. Every deadline of the core is
/// made by it, and adapters that add a timeout of the configuration to the
/// clock use it too.
#[must_use]
pub fn deadline_after(now: Instant, timeout: Duration) -> Instant {
    now.checked_add(timeout)
        .or_else(|| now.checked_add(FAR_FUTURE))
        // Thirty years after `now` cannot be represented either: the clock's
        // own limit is near, and `now` is as far as can be said.
        .unwrap_or(now)
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
    /// end the session when STARTTLS is not offered or is refused: in
    /// plaintext nothing but EHLO (HELO, LHLO), STARTTLS, RSET, NOOP, HELP and
    /// QUIT is sent; AUTH, the whole transaction, the low-level MAIL, RCPT,
    /// DATA, VRFY, EXPN and any command of `docmd` fail with
    /// [`SecurityError::TlsRequired`](crate::SecurityError::TlsRequired), and
    /// a missing STARTTLS ends the session with
    /// [`SecurityError::StartTlsNotOffered`](crate::SecurityError::StartTlsNotOffered).
    pub require_tls: bool,
    /// The transport is already encrypted (implicit TLS, port 465).
    pub tls_on_connect: bool,
    /// Whether the TLS the driver runs (the implicit TLS of
    /// [`Config::tls_on_connect`], or the STARTTLS handshake) verifies the
    /// server's certificate and name (default true). A driver whose TLS
    /// accepts any certificate sets it false; such TLS counts as plaintext for
    /// AUTH (an attacker in the path can present any certificate). Settable
    /// later with [`Client::set_tls_verified`](crate::Client::set_tls_verified);
    /// the value at the moment TLS is established is what counts.
    pub tls_verified: bool,
    /// The peer is a loopback address or a Unix socket: nothing said on the
    /// connection leaves the machine, so AUTH may send a reusable secret
    /// without TLS. Set by the adapters from the connected socket (default
    /// false: a caller's stream is not known to be local).
    pub loopback_peer: bool,
    /// Allow a mechanism that puts a reusable secret on the wire (PLAIN,
    /// LOGIN, XOAUTH2, OAUTHBEARER, CRAM-MD5, any mechanism that does not say
    /// otherwise: [`Mechanism::exposes_secret`](crate::Mechanism::exposes_secret))
    /// on a connection that is neither TLS with a verified certificate nor
    /// to a loopback address or Unix socket (default false: refused with
    /// [`SecurityError::PlaintextAuth`](crate::SecurityError::PlaintextAuth),
    /// RFC 4954 section 4).
    pub allow_plaintext_auth: bool,
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
            tls_verified: true,
            loopback_peer: false,
            allow_plaintext_auth: false,
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
