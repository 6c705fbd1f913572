//! The envelope of one transaction (`TransactionRequest::envelope`) and a
//! message's own demands (`MessageSecurity::of_envelope`): REQUIRETLS goes
//! only to the hops the engine says can honour it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use smtp_mx::engine::{MessageSecurity, RequestId, TransactionRequest};
use smtp_sansio::{Address, Envelope, Parameter};

fn addr(s: &str) -> Address {
    s.parse().unwrap()
}

fn envelope(requiretls: bool) -> Envelope {
    let mut e = Envelope::new(
        addr("a@example.org"),
        [
            addr("b@one.example"),
            addr("c@two.example"),
            addr("d@one.example"),
        ],
    )
    .mail_param(Parameter::new("ENVID", Some("q1")).unwrap())
    .size(1234);
    if requiretls {
        e = e.mail_param(Parameter::new("REQUIRETLS", None).unwrap());
    }
    e
}

fn request(recipients: Vec<usize>, requiretls: bool) -> TransactionRequest {
    TransactionRequest {
        id: RequestId(7),
        recipients,
        addresses: Vec::new(),
        requiretls,
    }
}

fn keywords(e: &Envelope) -> Vec<String> {
    e.mail_params()
        .iter()
        .map(|p| p.keyword().to_owned())
        .collect()
}

#[test]
fn a_transaction_takes_its_recipients_and_requiretls_only_where_asked() {
    let e = envelope(true);
    let sub = request(vec![2, 0], false).envelope(&e).unwrap();
    let to: Vec<String> = sub
        .recipients()
        .iter()
        .map(|r| r.address.to_string())
        .collect();
    assert_eq!(to, ["d@one.example", "b@one.example"]);
    assert_eq!(sub.from(), e.from());
    assert_eq!(keywords(&sub), ["ENVID"]);
    assert_eq!(sub.known_size(), Some(1234));

    let sub = request(vec![1], true).envelope(&envelope(false)).unwrap();
    assert_eq!(keywords(&sub), ["ENVID", "REQUIRETLS"]);

    assert!(request(vec![3], false).envelope(&e).is_none());
}

#[test]
fn the_message_security_reads_requiretls_from_the_envelope() {
    let header = b"Subject: x\r\nTLS-Required: No\r\n\r\nbody\r\n";
    let plain = b"Subject: x\r\n\r\nbody\r\n";
    let s = MessageSecurity::of_envelope(&envelope(true), plain);
    assert!(s.requiretls && !s.tls_required_no);
    let s = MessageSecurity::of_envelope(&envelope(false), header);
    assert!(!s.requiretls && s.tls_required_no);
}

/// A delivery stopped before its end reports every recipient without a
/// final status as deferred, no answer (4.4.1), with its domains.
#[test]
fn a_report_as_it_stands_defers_the_recipients_still_pending() {
    use smtp_mx::Delivery;
    use smtp_mx::engine::{Config, FinalStatus};
    use smtp_mx::sts::StsCache;

    let mut d = Delivery::new(
        &["b@one.example", "c@two.example"],
        MessageSecurity::default(),
        Config::default(),
        StsCache::new(),
        1_800_000_000,
        1,
    );
    assert!(d.next_request().is_some());
    assert!(d.report().is_none());
    let report = d.report_as_is();
    assert_eq!(report.domains.len(), 2);
    for r in &report.recipients {
        let FinalStatus::Deferred(p) = &r.status else {
            panic!("{r:?}")
        };
        assert_eq!(p.status.to_string(), "4.4.1", "{}", r.address);
    }
}
