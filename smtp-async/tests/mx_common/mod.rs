//! What the direct-delivery scenarios share, whichever driver runs them:
//! the [`Driver`] a test file implements (`smtp_async::mx::deliver` on
//! Tokio and on async-std in smtp-async's `tests/mx.rs`,
//! `smtp_blocking::mx::deliver` in smtp-blocking's, which takes this module
//! by its path), the [`Setup`] every driver takes, loopback servers, the
//! [`scenarios`], and [`mx_scenarios!`], the table that makes a test of
//! each scenario for a driver.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod scenarios;
pub mod tls_causes;

use std::collections::HashMap;
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use smtp_adapter::mx::{FinalStatus, MxTimeouts, Report, StaticPolicyFetcher, StaticResolver};
use smtp_adapter::sansio::Envelope;
use smtp_testkit::{MockServer, ServerConfig};

/// A delivery's configuration, over answers given in advance, which every
/// driver can take (its own configuration is
/// [`with_handles`](smtp_adapter::mx::MxConfig::with_handles) of this).
pub type Setup = smtp_adapter::mx::MxConfig<StaticResolver, StaticPolicyFetcher>;

/// A delivery driver as the scenarios run it.
pub trait Driver: Copy + Send + std::fmt::Debug + 'static {
    /// The delivery of `message` to `envelope`'s recipients as `setup`
    /// says, to its end.
    fn deliver(self, setup: &Setup, envelope: &Envelope, message: &[u8]) -> Report;
}

/// The scenario table: a test of each scenario through `driver` (a
/// [`Driver`] value), in the module where it is called.
macro_rules! mx_scenarios {
    ($driver:expr) => {
        mx_scenarios!($driver;
            a_refusing_mx_moves_the_message_to_the_next => refused_then_next,
            a_554_greeting_moves_the_message_to_the_next_mx => greeting_554_then_next,
            a_silent_mx_moves_the_message_to_the_next_after_the_timeout => silent_then_next,
            a_matching_dane_ee_record_delivers_over_tls => dane_matches,
            a_wrong_tlsa_record_defers_before_mail_from => dane_wrong,
            mta_sts_enforce_delivers_over_verified_tls => sts_enforce_tls,
            mta_sts_enforce_without_starttls_defers_before_mail_from => sts_enforce_no_starttls,
            mta_sts_enforce_with_an_untrusted_certificate_defers_before_mail_from =>
                sts_enforce_untrusted,
            mixed_recipient_replies_are_delivered_deferred_and_bounced => mixed_recipients,
            a_slow_domain_does_not_hold_the_others => slow_domain_does_not_hold_the_others,
            an_expired_certificate_under_mta_sts_is_told => sts_expired,
            a_certificate_not_valid_yet_under_mta_sts_is_told => sts_not_yet_valid,
            a_certificate_for_another_name_under_mta_sts_is_told => sts_wrong_name,
            an_untrusted_ca_under_mta_sts_is_told => sts_untrusted_ca,
            a_454_to_starttls_under_mta_sts_is_told => sts_starttls_454,
            no_starttls_under_dane_is_told => dane_no_starttls,
            no_matching_tlsa_record_is_told => dane_tlsa_mismatch,
            failed_policy_fetches_are_reported_by_their_sessions =>
                sts_policy_fetch_failures,
        );
    };
    ($driver:expr; $($test:ident => $case:ident,)*) => {
        $(
            #[test]
            fn $test() {
                $crate::mx_common::scenarios::$case($driver);
            }
        )*
    };
}

/// The message of every scenario.
pub const MSG: &[u8] = b"From: a@sender.test\r\nTo: b@example.test\r\nSubject: mx\r\n\r\nhello\r\n";

/// 127.0.0.`last`, which Linux routes to `lo` without configuration.
pub fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A server listening on `ip`.
pub fn server_on(ip: IpAddr, config: ServerConfig) -> MockServer {
    MockServer::start(config.tcp_on(ip)).unwrap()
}

/// A port on `ip` where nothing listens (bound, then released).
pub fn closed_port(ip: IpAddr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A setup with `resolver` and `fetcher`, the servers' ports, EHLO
/// `client.sender.test` and short timeouts.
pub fn setup(
    resolver: StaticResolver,
    fetcher: StaticPolicyFetcher,
    ports: &[(IpAddr, u16)],
) -> Setup {
    let mut c = Setup::new(Arc::new(resolver), Arc::new(fetcher));
    c.local_name = Some("client.sender.test".to_owned());
    c.timeouts = MxTimeouts {
        dns: Duration::from_secs(5),
        policy_fetch: Duration::from_secs(5),
        session: Duration::from_secs(10),
    };
    c.ports = ports.iter().copied().collect::<HashMap<_, _>>();
    c
}

/// An envelope from `a@sender.test` to `to`.
pub fn envelope(to: &[&str]) -> Envelope {
    Envelope::parse("a@sender.test", to).unwrap()
}

/// An outcome's enhanced status as text.
pub fn code(s: &FinalStatus) -> Option<String> {
    s.status().map(|e| e.to_string())
}

/// Whether any connection to `server` sent MAIL FROM.
pub fn saw_mail_from(server: &MockServer) -> bool {
    server
        .transcript()
        .iter()
        .any(|l| l.to_ascii_uppercase().contains("MAIL FROM"))
}

/// The MX host and address recipient `i` was delivered to.
pub fn delivered_to(report: &Report, i: usize) -> (String, IpAddr) {
    match &report.recipients[i].status {
        FinalStatus::Delivered { host, ip, .. } => (host.clone(), *ip),
        other => panic!("not delivered: {other:?}"),
    }
}
