//! DNS answers as the crate receives them: the records, the response code and
//! the DNSSEC status the resolver (or the adapter's own validator) gave them.

use serde::{Deserialize, Serialize};

/// The DNSSEC status of an answer (RFC 4035 section 4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Security {
    /// Validated: a chain of signatures from a trust anchor covers the answer
    /// (or its denial of existence).
    Secure,
    /// Provably unsigned: an insecure delegation lies above the name.
    Insecure,
    /// Signed, and the signatures did not validate (expired, wrong key, DS
    /// mismatch). Never used as an answer: treated as a lookup failure.
    Bogus,
    /// The validator could not tell (no trust anchor, a resolver that strips
    /// signatures). Treated as [`Security::Insecure`].
    Indeterminate,
}

impl Security {
    /// Whether the answer was validated ([`Security::Secure`]).
    #[must_use]
    pub fn is_secure(self) -> bool {
        self == Security::Secure
    }
}

/// The outcome of a query, apart from its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rcode {
    /// NOERROR. With no records this is NODATA: the name exists, the type does
    /// not.
    NoError,
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// SERVFAIL, REFUSED or any other failure of the resolver.
    ServFail,
    /// No answer before the adapter's deadline.
    Timeout,
}

/// One DNS answer: records of type `T`, with the response code and the
/// DNSSEC status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DnsAnswer<T> {
    /// The response code.
    pub rcode: Rcode,
    /// The records of the queried type (after any CNAME the resolver
    /// followed); empty unless `rcode` is [`Rcode::NoError`].
    pub records: Vec<T>,
    /// The DNSSEC status of the answer.
    pub security: Security,
}

impl<T> DnsAnswer<T> {
    /// A NOERROR answer with `records`.
    #[must_use]
    pub fn records(records: Vec<T>, security: Security) -> DnsAnswer<T> {
        DnsAnswer {
            rcode: Rcode::NoError,
            records,
            security,
        }
    }

    /// An answer with no records and the code `rcode` (NODATA when it is
    /// [`Rcode::NoError`]).
    #[must_use]
    pub fn empty(rcode: Rcode, security: Security) -> DnsAnswer<T> {
        DnsAnswer {
            rcode,
            records: Vec::new(),
            security,
        }
    }

    /// Whether the lookup failed (SERVFAIL, a timeout, or a bogus answer): the
    /// answer says nothing about the name, and a later lookup may succeed.
    #[must_use]
    pub fn failed(&self) -> bool {
        matches!(self.rcode, Rcode::ServFail | Rcode::Timeout) || self.security == Security::Bogus
    }

    /// Whether the name or the type does not exist (NXDOMAIN, or NODATA), as
    /// opposed to a failed lookup.
    #[must_use]
    pub fn is_absent(&self) -> bool {
        !self.failed()
            && (self.rcode == Rcode::NxDomain
                || (self.rcode == Rcode::NoError && self.records.is_empty()))
    }
}
