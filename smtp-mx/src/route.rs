//! MX routing: from the MX answer of a domain to the ordered list of
//! (host, address) attempts.
//!
//! * Order (RFC 5321 section 5.1): ascending preference; hosts of equal
//!   preference in an order shuffled by the caller's seed (mixed with the
//!   domain, so one seed shuffles each domain independently); a host named
//!   twice is kept at its most preferred place.
//! * Implicit MX: when the domain has no MX record (NODATA) or does not exist
//!   (NXDOMAIN), the domain itself is the only host, at preference 0; its
//!   address lookups then decide (an NXDOMAIN there is 5.4.4). This is
//!   Postfix's behaviour.
//! * Null MX (RFC 7505): a record whose exchange is the root (`.`) means the
//!   domain accepts no mail: permanent 5.1.10. Like Postfix, one such record
//!   is enough, even beside others (a set RFC 7505 section 3 forbids).
//! * A failed MX lookup (SERVFAIL, timeout, bogus) defers: 4.4.3.
//! * Addresses: each host's addresses, the two families interleaved starting
//!   with the caller's preferred one (so that the address limit never
//!   starves a family, as Postfix's `smtp_balance_inet_protocols`), cut at
//!   [`AddressPolicy::max_addresses`] in all (Postfix's
//!   `smtp_mx_address_limit`, 5). Unspecified, multicast and broadcast
//!   addresses are dropped. To rotate families between attempts (mox), the
//!   caller passes the family it did not use last time as
//!   [`AddressPolicy::first`].

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::dns::DnsAnswer;
use crate::failure::{Failure, Reason, codes};
use crate::name::a_label;
use crate::rng::{SplitMix64, fnv1a};

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MxRecord {
    /// The preference: lower is tried first.
    pub preference: u16,
    /// The exchange's host name, as the answer gave it (`.` for a null MX).
    pub exchange: String,
}

impl MxRecord {
    /// A record of `preference` naming `exchange`.
    #[must_use]
    pub fn new(preference: u16, exchange: &str) -> MxRecord {
        MxRecord {
            preference,
            exchange: exchange.to_owned(),
        }
    }
}

/// One mail exchanger to try.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MxHost {
    /// Its name in A-label form.
    pub name: String,
    /// Its preference (0 for the implicit MX).
    pub preference: u16,
}

/// A domain's mail exchangers in the order to try them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxList {
    /// The hosts, in order.
    pub hosts: Vec<MxHost>,
    /// Whether the MX answer (or, for the implicit MX, its denial) was
    /// DNSSEC-validated: the condition for DANE (RFC 7672 section 2.2.1) and
    /// one way to meet REQUIRETLS (RFC 8689 section 4.2.1).
    pub secure: bool,
    /// Whether the list is the implicit MX (the domain itself).
    pub implicit: bool,
}

/// Orders the mail exchangers of `domain` (in A-label form) from its MX
/// `answer`, shuffling equal preferences with `seed`.
///
/// # Errors
///
/// A [`Failure`] that ends the delivery to the domain: 4.4.3 for a failed
/// lookup, 5.1.10 for a null MX, 5.4.4 when no record names a valid host.
pub fn order_mx(domain: &str, answer: &DnsAnswer<MxRecord>, seed: u64) -> Result<MxList, Failure> {
    if answer.failed() {
        return Err(Failure::new(
            codes::DNS_TEMPORARY,
            false,
            Reason::DnsFailure,
        ));
    }
    let secure = answer.security.is_secure();
    if answer.records.is_empty() {
        return Ok(MxList {
            hosts: vec![MxHost {
                name: domain.to_owned(),
                preference: 0,
            }],
            secure,
            implicit: true,
        });
    }
    if answer
        .records
        .iter()
        .any(|r| r.exchange.is_empty() || r.exchange == ".")
    {
        return Err(Failure::new(codes::NULL_MX, false, Reason::NullMx));
    }
    let mut hosts: Vec<MxHost> = answer
        .records
        .iter()
        .filter_map(|r| {
            a_label(&r.exchange).ok().map(|name| MxHost {
                name,
                preference: r.preference,
            })
        })
        .collect();
    if hosts.is_empty() {
        return Err(Failure::new(codes::UNROUTABLE, false, Reason::NoAddress));
    }
    // Sort by name first so that the shuffle does not depend on the order
    // the resolver returned; then shuffle each run of equal preference.
    hosts.sort_by(|a, b| (a.preference, &a.name).cmp(&(b.preference, &b.name)));
    let mut rng = SplitMix64::new(seed ^ fnv1a(domain.as_bytes()));
    let mut start = 0;
    while start < hosts.len() {
        let pref = hosts[start].preference;
        let end = start
            + hosts[start..]
                .iter()
                .take_while(|h| h.preference == pref)
                .count();
        rng.shuffle(&mut hosts[start..end]);
        start = end;
    }
    let mut seen: Vec<String> = Vec::with_capacity(hosts.len());
    hosts.retain(|h| {
        if seen.contains(&h.name) {
            false
        } else {
            seen.push(h.name.clone());
            true
        }
    });
    Ok(MxList {
        hosts,
        secure,
        implicit: false,
    })
}

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Family {
    /// IPv4 (A records).
    V4,
    /// IPv6 (AAAA records).
    V6,
}

impl Family {
    /// The other family.
    #[must_use]
    pub fn other(self) -> Family {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }

    /// The family of `ip`.
    #[must_use]
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// Which addresses to try, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPolicy {
    /// Whether IPv4 addresses are used.
    pub ipv4: bool,
    /// Whether IPv6 addresses are used.
    pub ipv6: bool,
    /// The family tried first for each host. To rotate (mox), pass the
    /// family not used by the previous attempt on this domain.
    pub first: Family,
    /// The most addresses tried in all (Postfix's `smtp_mx_address_limit`).
    pub max_addresses: usize,
    /// The most SMTP sessions (connections that got past the greeting) per
    /// delivery (Postfix's `smtp_mx_session_limit`).
    pub max_sessions: usize,
}

impl Default for AddressPolicy {
    /// Both families, IPv6 first, 5 addresses, 2 sessions (Postfix's
    /// defaults).
    fn default() -> AddressPolicy {
        AddressPolicy {
            ipv4: true,
            ipv6: true,
            first: Family::V6,
            max_addresses: 5,
            max_sessions: 2,
        }
    }
}

impl AddressPolicy {
    /// This policy with `first` the family other than `last_used`, the
    /// family of the previous attempt (mox's rotation).
    #[must_use]
    pub fn rotated(self, last_used: Family) -> AddressPolicy {
        AddressPolicy {
            first: last_used.other(),
            ..self
        }
    }
}

/// The address answers of one host. `None` for a family the caller did not
/// look up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostAddresses {
    /// The A answer.
    pub ipv4: Option<DnsAnswer<IpAddr>>,
    /// The AAAA answer.
    pub ipv6: Option<DnsAnswer<IpAddr>>,
}

/// One connection to try.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attempt {
    /// The MX host.
    pub host: String,
    /// Its preference.
    pub preference: u16,
    /// The address.
    pub ip: IpAddr,
    /// Whether the MX answer was DNSSEC-validated.
    pub mx_secure: bool,
    /// Whether this address's answer was DNSSEC-validated. DANE applies only
    /// when both are (RFC 7672 section 2.2.2).
    pub address_secure: bool,
    /// The name this address's answer was reached at through a validated
    /// CNAME chain, when it differs from `host`: the first TLSA base domain
    /// to try, `host` the second (RFC 7672 section 2.2.2). `None` when the
    /// host is no alias or the chain was not validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical: Option<String>,
}

/// The addresses to try for `mx`, in order, from `answers` (one per host, in
/// the order of `mx.hosts`; hosts past the end of `answers` are not used).
///
/// # Errors
///
/// When no address results: 4.4.3 if any lookup failed, else 5.4.4.
pub fn plan_attempts(
    mx: &MxList,
    answers: &[HostAddresses],
    policy: &AddressPolicy,
) -> Result<Vec<Attempt>, Failure> {
    let mut attempts = Vec::new();
    let mut lookup_failed = false;
    for (host, answer) in mx.hosts.iter().zip(answers) {
        let mut families: Vec<(Vec<IpAddr>, bool, Option<String>)> = Vec::with_capacity(2);
        for family in [policy.first, policy.first.other()] {
            let (wanted, answer) = match family {
                Family::V4 => (policy.ipv4, &answer.ipv4),
                Family::V6 => (policy.ipv6, &answer.ipv6),
            };
            let Some(answer) = answer.as_ref().filter(|_| wanted) else {
                continue;
            };
            if answer.failed() {
                lookup_failed = true;
                continue;
            }
            let mut ips: Vec<IpAddr> = Vec::new();
            for ip in &answer.records {
                if Family::of(*ip) == family && usable(*ip) && !ips.contains(ip) {
                    ips.push(*ip);
                }
            }
            let secure = answer.security.is_secure();
            let canonical = answer
                .canonical
                .as_deref()
                .filter(|c| secure && !c.eq_ignore_ascii_case(host.name.trim_end_matches('.')))
                .map(str::to_ascii_lowercase);
            families.push((ips, secure, canonical));
        }
        let longest = families
            .iter()
            .map(|(ips, ..)| ips.len())
            .max()
            .unwrap_or(0);
        for i in 0..longest {
            for (ips, secure, canonical) in &families {
                if let Some(ip) = ips.get(i) {
                    if attempts.iter().any(|a: &Attempt| a.ip == *ip) {
                        continue;
                    }
                    attempts.push(Attempt {
                        host: host.name.clone(),
                        preference: host.preference,
                        ip: *ip,
                        mx_secure: mx.secure,
                        address_secure: *secure,
                        canonical: canonical.clone(),
                    });
                }
            }
        }
    }
    attempts.truncate(policy.max_addresses);
    if attempts.is_empty() {
        return Err(if lookup_failed {
            Failure::new(codes::DNS_TEMPORARY, false, Reason::DnsFailure)
        } else {
            Failure::new(codes::UNROUTABLE, false, Reason::NoAddress)
        });
    }
    Ok(attempts)
}

/// Whether `ip` can be connected to as a mail exchanger.
fn usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}
