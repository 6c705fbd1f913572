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
    /// CNAME records: alias -> (target, the record's DNSSEC status).
    aliases: HashMap<String, (String, Security)>,
}

/// The most aliases followed in one lookup, as a resolver bounds a chain.
const MAX_ALIASES: usize = 8;

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

    /// `name` as an alias (a CNAME record) of `target`, with the record's
    /// DNSSEC status: a lookup of `name` gets `target`'s answer, with
    /// `target` as its canonical name and the weaker status of the two
    /// (chains are followed, up to 8 aliases; a longer one or a loop is
    /// SERVFAIL).
    ///
    /// ```
    /// use smtp_adapter::mx::{Answer, Query, Security, StaticResolver};
    ///
    /// let resolver = StaticResolver::new()
    ///     .cname("mx.example.com", "mx1.provider.example", Security::Secure)
    ///     .address("mx1.provider.example", &["192.0.2.1".parse()?], Security::Secure);
    /// let Answer::Address(a) = resolver.get("mx.example.com", Query::A) else { unreachable!() };
    /// assert_eq!(a.canonical.as_deref(), Some("mx1.provider.example"));
    /// assert!(a.security.is_secure());
    /// # Ok::<(), std::net::AddrParseError>(())
    /// ```
    #[must_use]
    pub fn cname(mut self, name: &str, target: &str, security: Security) -> StaticResolver {
        self.aliases.insert(key(name), (key(target), security));
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
        let mut name = key(name);
        let mut chain: Option<Security> = None;
        for _ in 0..=MAX_ALIASES {
            let Some((target, security)) = self.aliases.get(&name) else {
                let mut answer = self.at(&name, query);
                if let Some(security) = chain {
                    let weaker = security.weaker(security_of(&answer));
                    set_security(&mut answer, weaker);
                    set_canonical(&mut answer, &name);
                }
                return answer;
            };
            chain = Some(chain.map_or(*security, |s| s.weaker(*security)));
            name.clone_from(target);
        }
        let mut answer = empty_answer(query, Rcode::ServFail);
        set_security(&mut answer, Security::Indeterminate);
        answer
    }

    /// The answer at `name` itself (no alias followed).
    fn at(&self, name: &str, query: Query) -> Answer {
        let name = name.to_owned();
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

/// Marks an answer as reached through aliases ending at `name`.
fn set_canonical(answer: &mut Answer, name: &str) {
    let name = Some(name.to_owned());
    match answer {
        Answer::Mx(a) => a.canonical = name,
        Answer::Address(a) => a.canonical = name,
        Answer::Tlsa(a) => a.canonical = name,
        Answer::Txt(a) => a.canonical = name,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn address(answer: Answer) -> DnsAnswer<IpAddr> {
        match answer {
            Answer::Address(a) => a,
            other => panic!("not an address answer: {other:?}"),
        }
    }

    #[test]
    fn aliases_are_followed_with_the_weakest_status_and_bounded() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let r = StaticResolver::new()
            .cname("a.example", "B.example.", Security::Secure)
            .cname("b.example", "c.example", Security::Insecure)
            .address("c.example", &[ip], Security::Secure)
            .cname("loop1.example", "loop2.example", Security::Secure)
            .cname("loop2.example", "loop1.example", Security::Secure);
        let a = address(r.get("A.example.", Query::A));
        assert_eq!(a.records, [ip]);
        assert_eq!(a.canonical.as_deref(), Some("c.example"));
        assert_eq!(a.security, Security::Insecure);
        // No alias: no canonical name.
        assert_eq!(address(r.get("c.example", Query::A)).canonical, None);
        let looped = address(r.get("loop1.example", Query::A));
        assert_eq!(looped.rcode, Rcode::ServFail);
        assert!(looped.failed());
    }
}
