//! Sans-IO decisions for delivering mail directly to a domain's mail
//! exchangers.
//!
//! This crate opens no socket, reads no clock and draws no random number:
//! DNS answers (with their DNSSEC status), policy bodies, the current time
//! (`now`, seconds since the Unix epoch) and a seed are inputs, and every
//! decision is a plain function of them, so a delivery can be replayed and
//! tested without a network. An adapter does the lookups and the
//! connections, and drives one `smtp_sansio` client per connection.
//!
//! * [`name`]: A-label domains, and recipients grouped by destination.
//! * [`route`]: MX order with a seeded shuffle of equal preferences,
//!   implicit MX, null MX (RFC 7505), the address limit and the family
//!   order.
//! * [`sts`]: MTA-STS (RFC 8461): the TXT record, the policy body, MX
//!   pattern matching and a serialisable policy cache.
//! * [`plan`]: the TLS plan of one connection, from DANE, MTA-STS,
//!   REQUIRETLS (RFC 8689), `TLS-Required: No` and the local policy.
//! * [`classify`]: Postfix's failure classification, per recipient.
//!
//! # Example
//!
//! ```
//! use smtp_mx::dns::{DnsAnswer, Security};
//! use smtp_mx::name::{Destination, group_recipients};
//! use smtp_mx::route::{AddressPolicy, HostAddresses, MxRecord, order_mx, plan_attempts};
//!
//! let grouping = group_recipients(&["a@Example.COM", "b@example.com."]);
//! assert_eq!(grouping.groups.len(), 1);
//! let Destination::Domain(domain) = &grouping.groups[0].destination else {
//!     unreachable!()
//! };
//!
//! let mx = DnsAnswer::records(
//!     vec![MxRecord::new(20, "backup.example.com."), MxRecord::new(10, "mx.example.com.")],
//!     Security::Insecure,
//! );
//! let list = order_mx(domain, &mx, 42).expect("two valid hosts");
//! assert_eq!(list.hosts[0].name, "mx.example.com");
//!
//! let a = |ip: &str| HostAddresses {
//!     ipv4: Some(DnsAnswer::records(vec![ip.parse().unwrap()], Security::Insecure)),
//!     ipv6: None,
//! };
//! let attempts = plan_attempts(&list, &[a("192.0.2.1"), a("192.0.2.2")], &AddressPolicy::default())
//!     .expect("two addresses");
//! assert_eq!(attempts[1].host, "backup.example.com");
//! ```
#![forbid(unsafe_code)]

pub mod dns;
mod failure;
pub mod name;
pub mod rng;
pub mod route;
pub mod sts;

pub use failure::{Failure, Reason, codes};
