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
    /// the handshake (or the certificate's verification) failed, the cause
    /// not told. The engine gives [`Reason::Tls`] instead, which says why;
    /// [`Reason::is_tls_failure`] is true for both.
    TlsFailed,
    /// STARTTLS was required and failed with `host`, for this cause.
    Tls {
        /// The MX host.
        host: String,
        /// Why.
        failure: TlsFailure,
    },
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
            Reason::Tls { host, failure } => failure.describe(host, f),
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

impl Reason {
    /// Whether required TLS failed: [`Reason::TlsFailed`] or
    /// [`Reason::Tls`].
    #[must_use]
    pub fn is_tls_failure(&self) -> bool {
        matches!(self, Reason::TlsFailed | Reason::Tls { .. })
    }

    /// Why required TLS failed, when the reason says.
    #[must_use]
    pub fn tls_failure(&self) -> Option<&TlsFailure> {
        match self {
            Reason::Tls { failure, .. } => Some(failure),
            _ => None,
        }
    }
}

/// Why TLS failed on a connection whose plan required it (or, under
/// opportunistic TLS, why the plaintext retry came): what the driver tells
/// the engine in [`Opening::TlsFailed`](crate::engine::Opening::TlsFailed).
/// TLS-RPT (feature `tlsrpt`) reads its result type from it (RFC 8460
/// section 4.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server did not offer STARTTLS (or someone between stripped it).
    StartTlsNotOffered,
    /// The server answered STARTTLS with this reply instead of 220.
    StartTlsRefused(Reply),
    /// The TLS handshake failed apart from the certificate: no common
    /// version or cipher suite, an alert from the server, a malformed
    /// message.
    Handshake,
    /// The certificate (or one in its chain) has expired.
    CertificateExpired,
    /// The certificate (or one in its chain) is not valid yet.
    CertificateNotYetValid,
    /// The certificate is not valid for the names the plan asked for (the
    /// MX host's, or DANE-TA's reference names).
    HostMismatch,
    /// The chain leads to no trusted root (for PKIX) or to no DANE-TA
    /// anchor, or a signature in it does not verify, or it is revoked.
    NotTrusted,
    /// DANE: no usable TLSA record matches the chain the server presented.
    TlsaMismatch,
    /// Another certificate error: a malformed certificate, an unsupported
    /// algorithm, a certificate not for server authentication.
    CertificateInvalid,
    /// The TLS configuration the plan needs could not be built here (no
    /// crypto provider, no roots, a name that cannot be verified): a local
    /// fault, no connection was made.
    Config,
}

impl TlsFailure {
    /// The TLS cause a core error stands for, if it stands for one: the
    /// core's refused STARTTLS (a reply other than 220) and STARTTLS not
    /// offered where TLS was required. The one reading of core errors as TLS
    /// failures, used by [`Opening::tls_failure`](crate::engine::Opening::tls_failure)
    /// and by the drivers that tell the engine an [`Opening`](crate::engine::Opening).
    #[must_use]
    pub fn of_core(error: &smtp_sansio::Error) -> Option<TlsFailure> {
        use smtp_sansio::{Error, SecurityError};
        match error {
            Error::StartTlsRefused(reply) => Some(TlsFailure::StartTlsRefused(reply.clone())),
            Error::Security(SecurityError::StartTlsNotOffered) => {
                Some(TlsFailure::StartTlsNotOffered)
            }
            _ => None,
        }
    }

    /// Whether the cause is the server's certificate (its dates, names,
    /// chain, or the TLSA records it must match).
    #[must_use]
    pub fn is_certificate(&self) -> bool {
        matches!(
            self,
            TlsFailure::CertificateExpired
                | TlsFailure::CertificateNotYetValid
                | TlsFailure::HostMismatch
                | TlsFailure::NotTrusted
                | TlsFailure::TlsaMismatch
                | TlsFailure::CertificateInvalid
        )
    }

    /// Whether STARTTLS itself failed (not offered, or refused).
    #[must_use]
    pub fn is_starttls(&self) -> bool {
        matches!(
            self,
            TlsFailure::StartTlsNotOffered | TlsFailure::StartTlsRefused(_)
        )
    }

    /// The cause told of `host`, as [`Reason::Tls`] shows it.
    fn describe(&self, host: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::StartTlsNotOffered => {
                write!(f, "{host} does not offer STARTTLS, which is required")
            }
            TlsFailure::StartTlsRefused(reply) => {
                write!(f, "{host} refused STARTTLS, which is required: {reply}")
            }
            TlsFailure::Handshake => write!(f, "the TLS handshake with {host} failed"),
            TlsFailure::CertificateExpired => write!(f, "the certificate of {host} has expired"),
            TlsFailure::CertificateNotYetValid => {
                write!(f, "the certificate of {host} is not valid yet")
            }
            TlsFailure::HostMismatch => {
                write!(f, "the certificate of {host} is not valid for its name")
            }
            TlsFailure::NotTrusted => write!(f, "the certificate of {host} is not trusted"),
            TlsFailure::TlsaMismatch => {
                write!(f, "no TLSA record of {host} matches its certificate")
            }
            TlsFailure::CertificateInvalid => write!(f, "the certificate of {host} is invalid"),
            TlsFailure::Config => write!(
                f,
                "no TLS configuration could be built here for {host} (a local fault)"
            ),
        }
    }
}

impl fmt::Display for TlsFailure {
    /// The cause without the host: "the certificate has expired".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::StartTlsNotOffered => f.write_str("STARTTLS is not offered"),
            TlsFailure::StartTlsRefused(reply) => write!(f, "STARTTLS was refused: {reply}"),
            TlsFailure::Handshake => f.write_str("the TLS handshake failed"),
            TlsFailure::CertificateExpired => f.write_str("the certificate has expired"),
            TlsFailure::CertificateNotYetValid => f.write_str("the certificate is not valid yet"),
            TlsFailure::HostMismatch => f.write_str("the certificate is not valid for the name"),
            TlsFailure::NotTrusted => f.write_str("the certificate is not trusted"),
            TlsFailure::TlsaMismatch => f.write_str("no TLSA record matches the certificate"),
            TlsFailure::CertificateInvalid => f.write_str("the certificate is invalid"),
            TlsFailure::Config => f.write_str("no TLS configuration could be built"),
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
