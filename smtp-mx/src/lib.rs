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
//! * [`dane`]: DANE TLSA records (RFC 7672): usability, digest agility,
//!   the DANE state of an MX host, TLSA names, and which records a
//!   presented certificate chain matches.
//! * [`engine`]: [`Delivery`], the sans-IO state machine that ties the
//!   rest together for one message: it asks for lookups, policy fetches,
//!   connections and transactions, and reports each recipient's fate.
//! * [`dns`]: DNS answers with their response code and DNSSEC status.
//! * [`rng`]: the seeded SplitMix64 generator behind the MX shuffle.
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
//!
//! // The first connection's TLS plan: no DNSSEC, no MTA-STS policy.
//! use smtp_mx::plan::{DaneState, LocalPolicy, PlanInput, StsState, TlsPlan, plan_connection};
//! let plan = plan_connection(&PlanInput {
//!     host: &attempts[0].host,
//!     mx_secure: list.secure,
//!     dane: &DaneState::Insecure,
//!     sts: StsState::NoPolicy,
//!     requiretls: false,
//!     tls_required_no: false,
//!     local: LocalPolicy::default(),
//! })
//! .expect("opportunistic TLS is always possible");
//! assert_eq!(plan.tls, TlsPlan::Opportunistic);
//!
//! // Two recipients over two addresses: a 4xx on the first MX moves the
//! // recipient to the second, which accepts it.
//! use smtp_mx::classify::{RecipientOutcome, RecipientStatus, Tracker};
//! use smtp_sansio::Reply;
//! let mut tracker = Tracker::new(2, attempts.len(), 2);
//! let (_, rcpts) = tracker.next_attempt().expect("a first attempt");
//! assert_eq!(rcpts, [0, 1]);
//! tracker.session_ended(&[
//!     (0, RecipientOutcome::Accepted(None)),
//!     (1, RecipientOutcome::Refused(Reply::new(451, vec!["4.3.0 later".into()]))),
//! ]);
//! assert_eq!(tracker.next_attempt(), Some((1, vec![1])));
//! tracker.session_ended(&[(1, RecipientOutcome::Accepted(None))]);
//! assert!(matches!(tracker.statuses()[1], RecipientStatus::Delivered { attempt: 1, .. }));
//! ```
#![forbid(unsafe_code)]

pub mod classify;
pub mod dane;
pub mod dns;
pub mod engine;
mod failure;
pub mod name;
pub mod plan;
pub mod rng;
pub mod route;
pub mod sts;
#[cfg(feature = "tlsrpt")]
pub mod tlsrpt;

pub use engine::Delivery;
pub use failure::{Failure, Reason, TlsFailure, codes};
