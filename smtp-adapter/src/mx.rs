//! What every facade's delivery driver shares (feature `mx`): the DNS and
//! policy-fetch interfaces a delivery is given ([`Resolver`] and
//! [`PolicyFetcher`], and their blocking twins [`BlockingResolver`] and
//! [`BlockingPolicyFetcher`]), the waits' limits ([`MxTimeouts`]), answers
//! given in advance ([`StaticResolver`], [`StaticPolicyFetcher`]), the
//! configuration of a delivery ([`MxConfig`], generic over the resolver and
//! the fetcher), the request loop ([`run::Run`], which hands the I/O to a
//! driver as [`run::Job`]s, several at once, and
//! [`mx_job!`](crate::mx_job), which carries one out), and, in [`parts`],
//! the other pieces of a driver that are not I/O. The decisions
//! themselves are [`smtp_mx`]'s; the drivers are `smtp_async::mx::deliver`
//! and `smtp_blocking::mx::deliver`.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

pub use smtp_mx::dane::Tlsa;
pub use smtp_mx::dns::{DnsAnswer, Rcode, Security};
pub use smtp_mx::engine::{
    Answer, Class, Config as DeliveryConfig, FinalStatus, MessageSecurity, PolicyFetch, Query,
    Report,
};
pub use smtp_mx::plan::LocalPolicy;
pub use smtp_mx::route::MxRecord;
pub use smtp_mx::sts::StsCache;
pub use smtp_mx::{self, Delivery};

/// The most bytes of a policy body the engine is given: 64 KiB (RFC 8461
/// section 3.3 suggests this bound). A fetcher should stop reading at one
/// byte more; the driver cuts a longer body there, and the engine refuses
/// it.
pub const MAX_POLICY_BODY: usize = 64 * 1024;

/// A boxed future, as the traits of this module return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// DNS lookups for a delivery, with the DNSSEC status of each answer.
pub trait Resolver: Send + Sync {
    /// The answer to `query` for `name` (A-label form, no final dot): an
    /// [`Answer`] of the kind the query names ([`Answer::Mx`] for
    /// [`Query::Mx`], [`Answer::Address`] for A and AAAA, ...), with its
    /// response code and DNSSEC status. A resolver must say
    /// [`Security::Secure`] only for an answer validated by DNSSEC (by
    /// itself, or by a validating resolver it trusts on a loopback
    /// address). An answer of the wrong kind counts as a failed lookup.
    fn lookup<'a>(&'a self, name: &'a str, query: Query) -> BoxFuture<'a, Answer>;
}

/// The MTA-STS policy fetch (RFC 8461 section 3.3).
pub trait PolicyFetcher: Send + Sync {
    /// An HTTPS GET of `url` (`https://mta-sts.<domain>/.well-known/mta-sts.txt`),
    /// the server verified against the WebPKI roots for its host name:
    /// [`PolicyFetch::Response`] with the status, the `Content-Type` and
    /// at most [`MAX_POLICY_BODY`] bytes and one of the body; redirects
    /// not followed (a 3xx is returned as it is); [`PolicyFetch::Failed`]
    /// when no response came. The driver bounds the call by
    /// [`MxTimeouts::policy_fetch`].
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, PolicyFetch>;
}

/// DNS lookups for a delivery made by a blocking driver: the twin of
/// [`Resolver`].
pub trait BlockingResolver: Send + Sync {
    /// The answer to `query` for `name`, as [`Resolver::lookup`] gives it,
    /// within `timeout` (past it: an empty answer with [`Rcode::Timeout`]).
    fn lookup_blocking(&self, name: &str, query: Query, timeout: Duration) -> Answer;
}

/// The MTA-STS policy fetch of a blocking driver: the twin of
/// [`PolicyFetcher`].
pub trait BlockingPolicyFetcher: Send + Sync {
    /// The response at `url`, as [`PolicyFetcher::fetch`] gives it, within
    /// `timeout` (past it: [`PolicyFetch::Failed`]).
    fn fetch_blocking(&self, url: &str, timeout: Duration) -> PolicyFetch;
}

/// How long each wait of a delivery may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MxTimeouts {
    /// One DNS lookup (30 s).
    pub dns: Duration,
    /// One policy fetch, from the connection to the end of the body (60 s,
    /// as mox allows).
    pub policy_fetch: Duration,
    /// Every wait of an SMTP session: the connection, the greeting, each
    /// reply ([`Builder::timeout`](crate::Builder::timeout); five
    /// minutes).
    pub session: Duration,
}

impl Default for MxTimeouts {
    fn default() -> MxTimeouts {
        MxTimeouts {
            dns: Duration::from_secs(30),
            policy_fetch: Duration::from_secs(60),
            session: Duration::from_secs(300),
        }
    }
}

mod fixed;
pub use fixed::{StaticPolicyFetcher, StaticResolver};

mod config;
pub use config::{DEFAULT_CONCURRENCY, MxConfig};

pub mod parts;
pub mod run;

pub mod https;
pub use https::{HttpsFetchError, HttpsPolicyFetcher, HttpsPolicyOptions, PolicyFetchTimeouts};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_resolver_nodata_and_nxdomain() {
        let r = StaticResolver::new().address(
            "Mx.Example.",
            &["192.0.2.1".parse().unwrap()],
            Security::Secure,
        );
        let Answer::Address(a) = r.get("mx.example", Query::A) else {
            panic!("an address answer")
        };
        assert_eq!(a.records.len(), 1);
        let Answer::Address(a) = r.get("mx.example", Query::Aaaa) else {
            panic!("an address answer")
        };
        assert_eq!((a.rcode, a.security), (Rcode::NoError, Security::Secure));
        let Answer::Tlsa(a) = r.get("other.example", Query::Tlsa) else {
            panic!("a TLSA answer")
        };
        assert_eq!((a.rcode, a.security), (Rcode::NxDomain, Security::Insecure));
    }
}
