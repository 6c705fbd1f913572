//! Why a recipient, a destination or one connection failed: an enhanced
//! status code (RFC 3463), whether the next MX may be tried, and the reason.

use std::fmt;

use smtp_sansio::{EnhancedStatus, Reply};

/// Enhanced status codes this crate gives its own failures (RFC 3463, RFC
/// 7505, RFC 8689).
pub mod codes {
    use smtp_sansio::EnhancedStatus;

    const fn status(class: u8, subject: u16, detail: u16) -> EnhancedStatus {
        EnhancedStatus {
            class,
            subject,
            detail,
        }
    }

    /// 5.1.2: the recipient's domain is not a valid domain name.
    pub const BAD_DESTINATION: EnhancedStatus = status(5, 1, 2);
    /// 5.1.10: the domain publishes a null MX (RFC 7505 section 4.2).
    pub const NULL_MX: EnhancedStatus = status(5, 1, 10);
    /// 4.4.1: no answer from the host (connection refused or timed out).
    pub const NO_ANSWER: EnhancedStatus = status(4, 4, 1);
    /// 4.4.2: the connection was lost before the message went.
    pub const CONNECTION_DROPPED: EnhancedStatus = status(4, 4, 2);
    /// 4.4.3: a DNS lookup failed (SERVFAIL, timeout, bogus).
    pub const DNS_TEMPORARY: EnhancedStatus = status(4, 4, 3);
    /// 5.4.4: the domain, or every one of its mail exchangers, has no address.
    pub const UNROUTABLE: EnhancedStatus = status(5, 4, 4);
    /// 4.7.5: a transport-security policy (DANE, MTA-STS, the local one) could
    /// not be met for this host.
    pub const SECURITY_POLICY: EnhancedStatus = status(4, 7, 5);
    /// 5.7.10: the message requires TLS (REQUIRETLS) and this host cannot be
    /// reached with authenticated TLS.
    pub const ENCRYPTION_NEEDED: EnhancedStatus = status(5, 7, 10);
    /// 5.7.30: the message requires TLS and the server did not offer
    /// REQUIRETLS after STARTTLS (RFC 8689 section 6).
    pub const REQUIRETLS_NEEDED: EnhancedStatus = status(5, 7, 30);
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The recipient's domain is not a valid domain name (or not a valid
    /// address literal).
    BadDomain,
    /// A DNS lookup failed (SERVFAIL, a timeout, or a bogus answer).
    DnsFailure,
    /// The domain does not exist, or neither it nor any of its mail
    /// exchangers has an address.
    NoAddress,
    /// The domain publishes a null MX: it accepts no mail (RFC 7505).
    NullMx,
    /// The connection could not be made (refused, unreachable, timed out).
    Connect,
    /// The connection ended (or failed) before the message went.
    ConnectionLost,
    /// The server's greeting, or its answer to EHLO, was not a success.
    Rejected(Reply),
    /// STARTTLS was required and the server did not offer it, refused it, or
    /// the handshake (or the certificate's verification) failed.
    TlsFailed,
    /// The TLSA lookup of a DNSSEC-signed host failed: delivery waits rather
    /// than going without DANE (RFC 7672 section 2.2).
    TlsaLookupFailed,
    /// The local policy requires DANE and the host has no usable TLSA record.
    DaneRequired,
    /// The domain's MTA-STS policy is `enforce` and this MX host does not
    /// match its `mx` patterns (RFC 8461 section 4.1).
    StsMxMismatch,
    /// The message carries REQUIRETLS and the MX host was found neither
    /// through DNSSEC nor through a matching MTA-STS policy (RFC 8689
    /// section 4.2.1).
    RequireTlsUnverifiedMx,
    /// The message carries REQUIRETLS and the local policy is plaintext.
    RequireTlsLocalPlaintext,
    /// The message carries REQUIRETLS and the server did not offer it after
    /// STARTTLS.
    RequireTlsNotOffered,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::BadDomain => f.write_str("the recipient's domain is not a valid domain name"),
            Reason::DnsFailure => f.write_str("a DNS lookup failed"),
            Reason::NoAddress => f.write_str("no address for the domain or its mail exchangers"),
            Reason::NullMx => f.write_str("the domain accepts no mail (null MX)"),
            Reason::Connect => f.write_str("the connection could not be made"),
            Reason::ConnectionLost => f.write_str("the connection ended before the message went"),
            Reason::Rejected(reply) => write!(f, "the server refused the session: {reply}"),
            Reason::TlsFailed => f.write_str("required TLS could not be established or verified"),
            Reason::TlsaLookupFailed => f.write_str("the TLSA lookup of a signed host failed"),
            Reason::DaneRequired => {
                f.write_str("the local policy requires DANE and it is not available")
            }
            Reason::StsMxMismatch => {
                f.write_str("the MX host does not match the domain's MTA-STS policy")
            }
            Reason::RequireTlsUnverifiedMx => {
                f.write_str("REQUIRETLS: the MX host is verified neither by DNSSEC nor by MTA-STS")
            }
            Reason::RequireTlsLocalPlaintext => {
                f.write_str("REQUIRETLS: the local policy forbids TLS")
            }
            Reason::RequireTlsNotOffered => {
                f.write_str("REQUIRETLS: the server did not offer REQUIRETLS after STARTTLS")
            }
        }
    }
}

/// A failure: its enhanced status, whether the next mail exchanger may be
/// tried, and why.
///
/// The classification rule (Postfix's, see [`crate::classify`]): a class 4
/// status moves the recipients to the next MX when there is one and defers
/// them after the last; a class 5 status with `next_mx` does the same but
/// bounces after the last; a class 5 status without `next_mx` bounces at
/// once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The enhanced status code (class 4 or 5).
    pub status: EnhancedStatus,
    /// Whether another mail exchanger may be tried.
    pub next_mx: bool,
    /// Why.
    pub reason: Reason,
}

impl Failure {
    /// A failure with `status`, `next_mx` and `reason`.
    #[must_use]
    pub fn new(status: EnhancedStatus, next_mx: bool, reason: Reason) -> Failure {
        Failure {
            status,
            next_mx,
            reason,
        }
    }

    /// Whether the status is permanent (class 5).
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        self.status.class == 5
    }

    /// A failure of a whole connection attempt, before any recipient was
    /// answered: a connection refused or timed out (4.4.1).
    #[must_use]
    pub fn connect() -> Failure {
        Failure::new(codes::NO_ANSWER, true, Reason::Connect)
    }

    /// A greeting or EHLO refusal: the next MX is tried whatever the class
    /// (Postfix skips a server that greets with 4xx or 5xx); after the last,
    /// the reply's class decides. The status is the reply's enhanced code, or
    /// `X.0.0` of its class.
    #[must_use]
    pub fn rejected(reply: Reply) -> Failure {
        let class = if reply.is_permanent() { 5 } else { 4 };
        let status = reply.enhanced().unwrap_or(EnhancedStatus {
            class,
            subject: 0,
            detail: 0,
        });
        Failure::new(status, true, Reason::Rejected(reply))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}
