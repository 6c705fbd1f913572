//! Answers and policies given in advance: a [`Resolver`] and a
//! [`PolicyFetcher`] over maps, for tests and for callers who resolve and
//! fetch elsewhere.

use super::parts::empty_answer;
use super::*;

/// A [`Resolver`] answering from a map: for tests, and for callers who
/// resolve elsewhere. A name with no answer for a type gets NODATA with
/// the security of the name's other answers when it has some, NXDOMAIN
/// (insecure) when it has none. Names are compared without case and
/// without a final dot.
///
/// ```
/// use smtp_adapter::mx::{MxRecord, Security, StaticResolver};
///
/// let resolver = StaticResolver::new()
///     .mx("example.com", &[MxRecord::new(10, "mx.example.com")], Security::Secure)
///     .address("mx.example.com", &["192.0.2.1".parse()?], Security::Secure);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    answers: HashMap<(String, Query), Answer>,
}

/// A name as the map keys it.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl StaticResolver {
    /// A resolver with no answers (every name NXDOMAIN).
    #[must_use]
    pub fn new() -> StaticResolver {
        StaticResolver::default()
    }

    /// Sets the answer to `query` for `name`.
    #[must_use]
    pub fn answer(mut self, name: &str, query: Query, answer: Answer) -> StaticResolver {
        self.answers.insert((key(name), query), answer);
        self
    }

    /// The MX records of `name`.
    #[must_use]
    pub fn mx(self, name: &str, records: &[MxRecord], security: Security) -> StaticResolver {
        let answer = Answer::Mx(DnsAnswer::records(records.to_vec(), security));
        self.answer(name, Query::Mx, answer)
    }

    /// The addresses of `name`: the IPv4 ones as its A answer, the IPv6
    /// ones as its AAAA answer (each only when there are some).
    #[must_use]
    pub fn address(mut self, name: &str, ips: &[IpAddr], security: Security) -> StaticResolver {
        let (v6, v4): (Vec<IpAddr>, Vec<IpAddr>) = ips.iter().partition(|ip| ip.is_ipv6());
        for (query, list) in [(Query::A, v4), (Query::Aaaa, v6)] {
            if !list.is_empty() {
                let answer = Answer::Address(DnsAnswer::records(list, security));
                self = self.answer(name, query, answer);
            }
        }
        self
    }

    /// The TLSA records at `name` (`_25._tcp.<host>`).
    #[must_use]
    pub fn tlsa(self, name: &str, records: &[Tlsa], security: Security) -> StaticResolver {
        let answer = Answer::Tlsa(DnsAnswer::records(records.to_vec(), security));
        self.answer(name, Query::Tlsa, answer)
    }

    /// The TXT records at `name` (each record's strings joined).
    #[must_use]
    pub fn txt(self, name: &str, records: &[&str], security: Security) -> StaticResolver {
        let records = records.iter().map(|r| (*r).to_owned()).collect();
        let answer = Answer::Txt(DnsAnswer::records(records, security));
        self.answer(name, Query::Txt, answer)
    }

    /// The answer to `query` for `name`, as [`Resolver::lookup`] gives it.
    #[must_use]
    pub fn get(&self, name: &str, query: Query) -> Answer {
        let name = key(name);
        if let Some(a) = self.answers.get(&(name.clone(), query)) {
            return a.clone();
        }
        let other = self
            .answers
            .iter()
            .find(|((n, _), _)| *n == name)
            .map(|(_, a)| security_of(a));
        let (rcode, security) = match other {
            Some(security) => (Rcode::NoError, security),
            None => (Rcode::NxDomain, Security::Insecure),
        };
        let mut answer = empty_answer(query, rcode);
        set_security(&mut answer, security);
        answer
    }
}

/// An answer's DNSSEC status.
fn security_of(answer: &Answer) -> Security {
    match answer {
        Answer::Mx(a) => a.security,
        Answer::Address(a) => a.security,
        Answer::Tlsa(a) => a.security,
        Answer::Txt(a) => a.security,
    }
}

/// Sets an answer's DNSSEC status.
fn set_security(answer: &mut Answer, security: Security) {
    match answer {
        Answer::Mx(a) => a.security = security,
        Answer::Address(a) => a.security = security,
        Answer::Tlsa(a) => a.security = security,
        Answer::Txt(a) => a.security = security,
    }
}

impl Resolver for StaticResolver {
    fn lookup<'a>(&'a self, name: &'a str, query: Query) -> BoxFuture<'a, Answer> {
        let answer = self.get(name, query);
        Box::pin(async move { answer })
    }
}

/// A [`PolicyFetcher`] answering from a map of URLs to responses (for
/// tests, and for callers who fetch elsewhere); an unknown URL fails, as
/// an unreachable policy server does.
#[derive(Debug, Clone, Default)]
pub struct StaticPolicyFetcher {
    responses: HashMap<String, PolicyFetch>,
}

impl StaticPolicyFetcher {
    /// A fetcher with no responses (every fetch fails).
    #[must_use]
    pub fn new() -> StaticPolicyFetcher {
        StaticPolicyFetcher::default()
    }

    /// The response at `url`.
    #[must_use]
    pub fn response(mut self, url: &str, response: PolicyFetch) -> StaticPolicyFetcher {
        self.responses.insert(url.to_owned(), response);
        self
    }

    /// A `200 text/plain` response with `policy` as the body, at the policy
    /// URL of `domain`.
    #[must_use]
    pub fn policy(self, domain: &str, policy: &str) -> StaticPolicyFetcher {
        let response = PolicyFetch::Response {
            status: 200,
            content_type: Some("text/plain".to_owned()),
            body: policy.as_bytes().to_vec(),
        };
        self.response(&smtp_mx::sts::policy_url(domain), response)
    }
}

impl PolicyFetcher for StaticPolicyFetcher {
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, PolicyFetch> {
        let response = self
            .responses
            .get(url)
            .cloned()
            .unwrap_or(PolicyFetch::Failed);
        Box::pin(async move { response })
    }
}

impl BlockingResolver for StaticResolver {
    fn lookup_blocking(&self, name: &str, query: Query, _timeout: Duration) -> Answer {
        self.get(name, query)
    }
}

impl BlockingPolicyFetcher for StaticPolicyFetcher {
    fn fetch_blocking(&self, url: &str, _timeout: Duration) -> PolicyFetch {
        self.responses
            .get(url)
            .cloned()
            .unwrap_or(PolicyFetch::Failed)
    }
}
