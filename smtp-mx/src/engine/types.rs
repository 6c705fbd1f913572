//! What a [`Delivery`](super::Delivery) asks for, what it is answered with,
//! and how it is configured.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use smtp_sansio::{Envelope, OpenPlan, Parameter, StartTlsPolicy};

use crate::dane::Tlsa;
use crate::dns::DnsAnswer;
use crate::failure::TlsFailure;
use crate::plan::{ConnectionPlan, LocalPolicy, TlsPlan};
use crate::route::{AddressPolicy, MxRecord};

/// Identifies one request of a delivery; the answer names it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The record type of a DNS query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Query {
    /// MX: answer with [`Answer::Mx`].
    Mx,
    /// A: answer with [`Answer::Address`].
    A,
    /// AAAA: answer with [`Answer::Address`].
    Aaaa,
    /// TLSA: answer with [`Answer::Tlsa`].
    Tlsa,
    /// TXT: answer with [`Answer::Txt`].
    Txt,
}

/// A connection to open: TCP to `ip` on `port`, then the core's `open`
/// (greeting, EHLO, STARTTLS as the plan says, the certificate verified as
/// the plan says). Answer with [`Delivery::opened`](super::Delivery::opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The request's id, which also names the connection.
    pub id: RequestId,
    /// The MX host (A-label form; for an address literal, its text).
    pub host: String,
    /// The address.
    pub ip: IpAddr,
    /// The port (25 unless configured).
    pub port: u16,
    /// How TLS is used and verified; `plan.sni` is the name to send.
    pub plan: ConnectionPlan,
}

impl ConnectRequest {
    /// The core's STARTTLS policy for this plan: never for
    /// [`TlsPlan::Plain`], opportunistic for [`TlsPlan::Opportunistic`],
    /// required for every other plan (so the core ends the session before
    /// `MAIL FROM` when STARTTLS is missing or refused).
    #[must_use]
    pub fn starttls(&self) -> StartTlsPolicy {
        match self.plan.tls {
            TlsPlan::Plain => StartTlsPolicy::Never,
            TlsPlan::Opportunistic => StartTlsPolicy::Opportunistic,
            _ => StartTlsPolicy::Required,
        }
    }

    /// An [`OpenPlan`] with [`ConnectRequest::starttls`] and no AUTH. The
    /// verification the plan names (PKIX for its names, or the TLSA
    /// records) is the TLS adapter's to configure.
    #[must_use]
    pub fn open_plan(&self) -> OpenPlan {
        OpenPlan::new().starttls(self.starttls())
    }
}

/// A mail transaction to run on an opened connection, then QUIT. Answer
/// with [`Delivery::transaction_done`](super::Delivery::transaction_done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRequest {
    /// The connection's id (that of its [`ConnectRequest`]).
    pub id: RequestId,
    /// The recipients' positions in the list the delivery was made with.
    pub recipients: Vec<usize>,
    /// Their addresses, in the same order: the RCPT commands, in this order.
    pub addresses: Vec<String>,
    /// Whether `MAIL FROM` carries the `REQUIRETLS` parameter (RFC 8689).
    pub requiretls: bool,
}

impl TransactionRequest {
    /// The envelope of this transaction, cut from the message's `envelope`
    /// (the one the delivery was made for): its sender, its MAIL parameters
    /// but `REQUIRETLS`, which goes only where [`TransactionRequest::requiretls`]
    /// says (RFC 8689: never to a hop that cannot honour it), its declared
    /// size, and the recipients at [`TransactionRequest::recipients`].
    /// `None` when a position is out of range.
    #[must_use]
    pub fn envelope(&self, envelope: &Envelope) -> Option<Envelope> {
        let all = envelope.recipients();
        let mut sub = Envelope::new(envelope.from().clone(), []);
        for p in &self.recipients {
            sub = sub.recipient(all.get(*p)?.clone());
        }
        for param in envelope.mail_params() {
            if !param.keyword().eq_ignore_ascii_case("REQUIRETLS") {
                sub = sub.mail_param(param.clone());
            }
        }
        if self.requiretls {
            sub = sub.mail_param(Parameter::new("REQUIRETLS", None).ok()?);
        }
        if let Some(size) = envelope.known_size() {
            sub = sub.size(size);
        }
        Some(sub)
    }
}

/// What the delivery needs done next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Look `name` up for `query`; answer with
    /// [`Delivery::answer`](super::Delivery::answer), with the DNSSEC status.
    Resolve {
        /// The request's id.
        id: RequestId,
        /// The name to query (A-label form, no trailing dot).
        name: String,
        /// The record type.
        query: Query,
    },
    /// Fetch the MTA-STS policy at `url` (HTTPS, WebPKI, no redirects,
    /// at most 64 KiB read, a time limit); answer with
    /// [`Delivery::policy_fetched`](super::Delivery::policy_fetched).
    FetchPolicy {
        /// The request's id.
        id: RequestId,
        /// The policy domain.
        domain: String,
        /// `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
        url: String,
    },
    /// Open a connection.
    Connect(ConnectRequest),
    /// Run a transaction on an opened connection.
    Transaction(TransactionRequest),
    /// Send QUIT on an opened connection and close it, without a
    /// transaction (a policy check after the open failed). No answer.
    Close {
        /// The connection's id.
        id: RequestId,
    },
}

/// A DNS answer, of the type the [`Request::Resolve`] asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// To [`Query::Mx`].
    Mx(DnsAnswer<MxRecord>),
    /// To [`Query::A`] or [`Query::Aaaa`].
    Address(DnsAnswer<IpAddr>),
    /// To [`Query::Tlsa`].
    Tlsa(DnsAnswer<Tlsa>),
    /// To [`Query::Txt`]: each record's strings joined.
    Txt(DnsAnswer<String>),
}

/// The result of a policy fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyFetch {
    /// An HTTP response came: its status, its `Content-Type` and its body
    /// (at most 64 KiB and one byte: an adapter stops reading there).
    Response {
        /// The HTTP status.
        status: u16,
        /// The `Content-Type` header, if any.
        content_type: Option<String>,
        /// The body.
        body: Vec<u8>,
    },
    /// No response: the connection, the TLS handshake (WebPKI for
    /// `mta-sts.<domain>`), the exchange or the time limit failed.
    Failed,
    /// No response: the policy host's certificate did not verify (WebPKI
    /// for `mta-sts.<domain>`: untrusted, expired, not for that name). A
    /// fetcher that cannot tell says [`PolicyFetch::Failed`].
    CertificateInvalid,
}

/// How a [`ConnectRequest`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    /// The session is open and ready for a transaction.
    Opened {
        /// Whether it is TLS ([`smtp_sansio::Opened::tls`]).
        tls: bool,
        /// Whether the last EHLO advertised REQUIRETLS
        /// ([`smtp_sansio::Capabilities::requiretls`]).
        requiretls: bool,
    },
    /// The TCP connection was refused, or the address is unreachable.
    Refused,
    /// No connection, or no greeting, before the adapter's deadline.
    TimedOut,
    /// TLS failed, for this cause: STARTTLS not offered or refused, the
    /// handshake failed, the certificate did not verify as the plan asked,
    /// or the TLS configuration could not be built (then no connection was
    /// made).
    TlsFailed(TlsFailure),
    /// The core's `open` failed with this error (a greeting other than 220,
    /// EHLO and HELO refused, the connection lost). STARTTLS not offered or
    /// refused may come here too, as the core's
    /// [`SecurityError::StartTlsNotOffered`](smtp_sansio::SecurityError::StartTlsNotOffered)
    /// and [`Error::StartTlsRefused`](smtp_sansio::Error::StartTlsRefused):
    /// the engine reads them as [`Opening::TlsFailed`] with that cause.
    Failed(smtp_sansio::Error),
}

impl Opening {
    /// Why TLS failed, when it did: the cause of [`Opening::TlsFailed`], or
    /// STARTTLS not offered or refused in [`Opening::Failed`].
    #[must_use]
    pub fn tls_failure(&self) -> Option<TlsFailure> {
        match self {
            Opening::TlsFailed(cause) => Some(cause.clone()),
            Opening::Failed(e) => TlsFailure::of_core(e),
            _ => None,
        }
    }
}

/// The message's own transport-security demands (RFC 8689).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct MessageSecurity {
    /// The message carries REQUIRETLS.
    pub requiretls: bool,
    /// The message has the header `TLS-Required: No`.
    pub tls_required_no: bool,
}

impl MessageSecurity {
    /// The demands of `message` sent with `envelope`: REQUIRETLS from its
    /// MAIL parameters, `TLS-Required: No` as [`MessageSecurity::of`] reads
    /// it.
    #[must_use]
    pub fn of_envelope(envelope: &Envelope, message: &[u8]) -> MessageSecurity {
        let requiretls = envelope
            .mail_params()
            .iter()
            .any(|p| p.keyword().eq_ignore_ascii_case("REQUIRETLS"));
        MessageSecurity::of(requiretls, message)
    }

    /// The demands of `message` (its bytes, header block first) sent with
    /// or without REQUIRETLS: `TLS-Required: No` is read from the header
    /// block only (folded lines unfolded, names and value in any case).
    #[must_use]
    pub fn of(requiretls: bool, message: &[u8]) -> MessageSecurity {
        MessageSecurity {
            requiretls,
            tls_required_no: tls_required_no(message),
        }
    }
}

/// Whether the header block of `message` has `TLS-Required: No` (RFC 8689
/// section 5).
fn tls_required_no(message: &[u8]) -> bool {
    let header_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| message.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(message.len());
    let header = String::from_utf8_lossy(&message[..header_end]);
    let mut fields: Vec<String> = Vec::new();
    for line in header.lines() {
        let line = line.trim_end_matches('\r');
        match (line.starts_with([' ', '\t']), fields.last_mut()) {
            (true, Some(last)) => last.push_str(line),
            _ => fields.push(line.to_owned()),
        }
    }
    fields.iter().any(|f| {
        f.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("TLS-Required")
                && value.trim().eq_ignore_ascii_case("No")
        })
    })
}

/// How a delivery goes about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The local transport-security policy.
    pub local: LocalPolicy,
    /// Which addresses, how many, how many sessions.
    pub addresses: AddressPolicy,
    /// The SMTP port (25).
    pub port: u16,
}

impl Default for Config {
    /// Opportunistic TLS with DANE and MTA-STS, Postfix's address and
    /// session limits, port 25.
    fn default() -> Config {
        Config {
            local: LocalPolicy::default(),
            addresses: AddressPolicy::default(),
            port: 25,
        }
    }
}

/// An answer the delivery could not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputError {
    /// No request with this id is waiting for an answer.
    UnknownRequest(RequestId),
    /// The answer is not of the kind the request asked for.
    WrongKind(RequestId),
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::UnknownRequest(id) => write!(f, "no request {id} is waiting"),
            InputError::WrongKind(id) => {
                write!(f, "the answer to {id} is not of the kind it asked for")
            }
        }
    }
}

impl std::error::Error for InputError {}

#[cfg(test)]
mod tests {
    use super::MessageSecurity;

    fn tls_required_no(message: &[u8]) -> bool {
        MessageSecurity::of(false, message).tls_required_no
    }

    #[test]
    fn tls_required_no_is_read_from_the_header_only() {
        assert!(tls_required_no(
            b"Subject: x\r\nTLS-Required: No\r\n\r\nbody"
        ));
        assert!(tls_required_no(b"tls-required:\r\n  no\r\n\r\n"));
        assert!(!tls_required_no(b"Subject: x\r\n\r\nTLS-Required: No\r\n"));
        assert!(!tls_required_no(b"TLS-Required: Yes\r\n\r\n"));
    }
}
