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

    /// The weaker of two statuses (bogus, then indeterminate, then insecure,
    /// then secure): the status of an answer reached through links of
    /// both, such as a CNAME chain.
    ///
    /// ```
    /// use smtp_mx::dns::Security;
    ///
    /// assert_eq!(Security::Secure.weaker(Security::Insecure), Security::Insecure);
    /// assert_eq!(Security::Bogus.weaker(Security::Secure), Security::Bogus);
    /// ```
    #[must_use]
    pub fn weaker(self, other: Security) -> Security {
        let rank = |s: Security| match s {
            Security::Bogus => 0,
            Security::Indeterminate => 1,
            Security::Insecure => 2,
            Security::Secure => 3,
        };
        if rank(self) <= rank(other) {
            self
        } else {
            other
        }
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
    /// The name a CNAME chain led the lookup to, when the resolver followed
    /// one from the queried name: lowercase, without a final dot. `None`
    /// when the records (or the denial) are at the queried name. For an MX
    /// host's address answer it is the first TLSA base domain to try (RFC
    /// 7672 section 2.2.2). Its DNSSEC status is `security`'s: the weakest
    /// of the chain's links and the records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical: Option<String>,
}

impl<T> DnsAnswer<T> {
    /// A NOERROR answer with `records`.
    #[must_use]
    pub fn records(records: Vec<T>, security: Security) -> DnsAnswer<T> {
        DnsAnswer {
            rcode: Rcode::NoError,
            records,
            security,
            canonical: None,
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
            canonical: None,
        }
    }

    /// The same answer, reached through a CNAME chain that ended at `name`
    /// (see [`DnsAnswer::canonical`]; a final dot is dropped, case folded).
    ///
    /// ```
    /// use smtp_mx::dns::{DnsAnswer, Security};
    ///
    /// let a = DnsAnswer::records(vec!["192.0.2.1".parse::<std::net::IpAddr>()?], Security::Secure)
    ///     .with_canonical("MX.Provider.example.");
    /// assert_eq!(a.canonical.as_deref(), Some("mx.provider.example"));
    /// # Ok::<(), std::net::AddrParseError>(())
    /// ```
    #[must_use]
    pub fn with_canonical(mut self, name: &str) -> DnsAnswer<T> {
        self.canonical = Some(name.trim_end_matches('.').to_ascii_lowercase());
        self
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
