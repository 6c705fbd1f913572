//! Domain names in A-label form, and recipients grouped by destination.
//!
//! Every name this crate compares (a recipient's domain, an MX host, an
//! MTA-STS pattern) is first brought to one form: the A-label (RFC 5890)
//! of each label, lowercase ASCII, no trailing dot. Conversion uses the
//! `idna` crate's UTS #46 processing with the STD3 rules (letters, digits
//! and hyphens only) and the DNS length checks (labels of 1 to 63 octets,
//! 253 octets in all).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The address has no `@`, or nothing after it.
    NoDomain,
    /// The domain is empty, too long, has an empty label, or holds a
    /// character a host name cannot (IDNA processing failed).
    InvalidDomain,
    /// An address literal (`[...]`) that is not an IPv4 address or an
    /// `IPv6:` address.
    InvalidLiteral,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::NoDomain => "the address has no domain",
            NameError::InvalidDomain => "the domain is not a valid host name",
            NameError::InvalidLiteral => "the address literal is not a valid IP address",
        })
    }
}

impl std::error::Error for NameError {}

/// `name` as an A-label domain: lowercase ASCII, each internationalised
/// label in its `xn--` form, without the trailing dot.
///
/// # Errors
///
/// [`NameError::InvalidDomain`] for an empty name, an empty label, a label
/// over 63 octets, a name over 253, or a character outside letters, digits
/// and hyphens once mapped.
pub fn a_label(name: &str) -> Result<String, NameError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 1024 {
        return Err(NameError::InvalidDomain);
    }
    let ascii = Uts46::new()
        .to_ascii(
            name.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::Allow,
            DnsLength::Verify,
        )
        .map_err(|_| NameError::InvalidDomain)?;
    if ascii.is_empty()
        || ascii.len() > 253
        || ascii.split('.').any(|l| l.is_empty() || l.len() > 63)
    {
        return Err(NameError::InvalidDomain);
    }
    Ok(ascii.into_owned())
}

/// Where a recipient's mail goes: a domain (routed by its MX records) or an
/// address literal (delivered to that address, RFC 5321 section 4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// A domain in A-label form.
    Domain(String),
    /// An address literal: `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
    Literal(IpAddr),
}

impl Destination {
    /// The destination of the domain part of an address (what follows its
    /// last `@`).
    ///
    /// # Errors
    ///
    /// A [`NameError`] when there is no domain or it is not valid.
    pub fn of_address(address: &str) -> Result<Destination, NameError> {
        let (_, domain) = address.rsplit_once('@').ok_or(NameError::NoDomain)?;
        if domain.is_empty() {
            return Err(NameError::NoDomain);
        }
        Destination::parse(domain)
    }

    /// The destination named by `domain`: a domain name or an address
    /// literal.
    ///
    /// # Errors
    ///
    /// A [`NameError`] when it is neither.
    pub fn parse(domain: &str) -> Result<Destination, NameError> {
        if let Some(inner) = domain.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(NameError::InvalidLiteral)?;
            let ip = match inner.get(..5) {
                Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => inner[5..]
                    .parse::<Ipv6Addr>()
                    .map(IpAddr::V6)
                    .map_err(|_| NameError::InvalidLiteral)?,
                _ => inner
                    .parse::<std::net::Ipv4Addr>()
                    .map(IpAddr::V4)
                    .map_err(|_| NameError::InvalidLiteral)?,
            };
            return Ok(Destination::Literal(ip));
        }
        a_label(domain).map(Destination::Domain)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Domain(d) => f.write_str(d),
            Destination::Literal(IpAddr::V4(ip)) => write!(f, "[{ip}]"),
            Destination::Literal(IpAddr::V6(ip)) => write!(f, "[IPv6:{ip}]"),
        }
    }
}

/// The recipients that go to one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Where they go.
    pub destination: Destination,
    /// Their positions in the list given to [`group_recipients`], in order.
    pub recipients: Vec<usize>,
}

/// Recipients grouped by destination.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grouping {
    /// One group per destination, in the order each first appeared.
    pub groups: Vec<Group>,
    /// The recipients whose domain is not valid, with why, in order. Their
    /// status is [`codes::BAD_DESTINATION`](crate::codes::BAD_DESTINATION).
    pub invalid: Vec<(usize, NameError)>,
}

/// Groups `recipients` (addresses, `local@domain`) by destination: domains
/// that differ only in case, a trailing dot or their U-label and A-label
/// spellings form one group.
pub fn group_recipients<S: AsRef<str>>(recipients: &[S]) -> Grouping {
    let mut grouping = Grouping::default();
    for (i, address) in recipients.iter().enumerate() {
        match Destination::of_address(address.as_ref()) {
            Ok(destination) => {
                match grouping
                    .groups
                    .iter_mut()
                    .find(|g| g.destination == destination)
                {
                    Some(group) => group.recipients.push(i),
                    None => grouping.groups.push(Group {
                        destination,
                        recipients: vec![i],
                    }),
                }
            }
            Err(e) => grouping.invalid.push((i, e)),
        }
    }
    grouping
}
