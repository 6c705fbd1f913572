//! `HickoryResolver` against a fake DNS server on a loopback port: the AD
//! bit's mapping, each record type, the codes, CNAME chains, TCP after a
//! truncated answer, a silent server, and garbage; through the async entry
//! point on Tokio and on async-std, and through the blocking one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use common::{FakeDns, Reply, a, aaaa, cname, mx, on_both, tlsa, txt};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RecordType;
use smtp_adapter::mx::{
    Answer, BlockingResolver, DnsAnswer, MxRecord, Query, Rcode, Resolver, Security, Tlsa,
};
use smtp_mx_hickory::{Error, HickoryResolver, Mode, TrustAnchor};

/// A resolver trusting the fake server's AD bit, quick to give up.
fn trusting(dns: &FakeDns) -> HickoryResolver {
    HickoryResolver::builder()
        .timeout(Duration::from_secs(2))
        .attempts(1)
        .trusting_ad(dns.addr)
        .unwrap()
}

/// The answer through the async entry point.
async fn ask(r: &HickoryResolver, name: &str, query: Query) -> Answer {
    Resolver::lookup(r, name, query).await
}

fn mx_of(answer: Answer) -> DnsAnswer<MxRecord> {
    match answer {
        Answer::Mx(a) => a,
        other => panic!("an MX answer, not {other:?}"),
    }
}

fn addresses_of(answer: Answer) -> DnsAnswer<IpAddr> {
    match answer {
        Answer::Address(a) => a,
        other => panic!("an address answer, not {other:?}"),
    }
}

fn tlsa_of(answer: Answer) -> DnsAnswer<Tlsa> {
    match answer {
        Answer::Tlsa(a) => a,
        other => panic!("a TLSA answer, not {other:?}"),
    }
}

fn txt_of(answer: Answer) -> DnsAnswer<String> {
    match answer {
        Answer::Txt(a) => a,
        other => panic!("a TXT answer, not {other:?}"),
    }
}

#[test]
fn the_ad_bit_is_trusted_only_from_a_loopback_address() {
    let far: SocketAddr = "192.0.2.53:53".parse().unwrap();
    assert!(matches!(HickoryResolver::trusting_ad(far), Err(Error::NotLoopback(a)) if a == far));
    let near = "127.0.0.1:53".parse().unwrap();
    let mixed = HickoryResolver::builder().trusting_ad_all(&[near, far]);
    assert!(matches!(mixed, Err(Error::NotLoopback(a)) if a == far));
    let lan: SocketAddr = "[fe80::1]:53".parse().unwrap();
    assert!(matches!(
        HickoryResolver::trusting_ad(lan),
        Err(Error::NotLoopback(_))
    ));
    assert!(matches!(
        HickoryResolver::builder().trusting_ad_all(&[]),
        Err(Error::NoUpstream)
    ));
    assert!(matches!(
        HickoryResolver::validating(&[], TrustAnchor::iana_root()),
        Err(Error::NoUpstream)
    ));
    for ok in [
        "127.0.0.1:53",
        "127.0.0.53:53",
        "[::1]:5353",
        "[::ffff:127.0.0.1]:53",
    ] {
        let r = HickoryResolver::trusting_ad(ok.parse().unwrap()).unwrap();
        assert_eq!(r.mode(), Mode::TrustingAd);
        assert_eq!(r.upstreams(), &[ok.parse::<SocketAddr>().unwrap()]);
    }
    // Validating from a far upstream is allowed: nothing is trusted there.
    let v = HickoryResolver::validating(&[far], TrustAnchor::iana_root()).unwrap();
    assert_eq!(v.mode(), Mode::Validating);
}

#[test]
fn the_ad_bit_maps_to_secure_and_its_absence_to_insecure() {
    let dns = FakeDns::start(|name, rtype| match (name, rtype) {
        ("signed.example.", RecordType::MX) => {
            Reply::records(vec![mx("signed.example.", 10, "mx.signed.example.")], true)
        }
        ("unsigned.example.", RecordType::MX) => Reply::records(
            vec![mx("unsigned.example.", 10, "mx.unsigned.example.")],
            false,
        ),
        _ => Reply::code(ResponseCode::NXDomain, false),
    });
    let r = trusting(&dns);
    on_both(|| async {
        let signed = mx_of(ask(&r, "signed.example", Query::Mx).await);
        assert_eq!(
            signed,
            DnsAnswer::records(
                vec![MxRecord::new(10, "mx.signed.example")],
                Security::Secure
            )
        );
        let unsigned = mx_of(ask(&r, "Unsigned.Example.", Query::Mx).await);
        assert_eq!(
            unsigned,
            DnsAnswer::records(
                vec![MxRecord::new(10, "mx.unsigned.example")],
                Security::Insecure
            )
        );
    });
    // Every query asked for the AD bit, with DO set, over UDP.
    let seen = dns.seen();
    assert_eq!(seen.len(), 4);
    assert!(
        seen.iter().all(|s| s.ad && s.dnssec_ok && !s.tcp),
        "{seen:?}"
    );
}

/// The fake zone of the record-type tests.
fn records_zone(name: &str, rtype: RecordType) -> Reply {
    let v4 = Ipv4Addr::new(192, 0, 2, 1);
    let v6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    match (name, rtype) {
        ("example.", RecordType::MX) => Reply::records(
            vec![
                mx("example.", 20, "b.example."),
                mx("example.", 10, "a.example."),
            ],
            true,
        ),
        ("null.example.", RecordType::MX) => {
            Reply::records(vec![mx("null.example.", 0, ".")], true)
        }
        // The A answer also holds an AAAA record and another name's A
        // record: neither is returned.
        ("a.example.", RecordType::A) => Reply::records(
            vec![
                a("a.example.", v4),
                aaaa("a.example.", v6),
                a("other.example.", Ipv4Addr::new(192, 0, 2, 99)),
            ],
            true,
        ),
        ("a.example.", RecordType::AAAA) => Reply::records(vec![aaaa("a.example.", v6)], true),
        ("_25._tcp.a.example.", RecordType::TLSA) => Reply::records(
            vec![
                tlsa("_25._tcp.a.example.", 3, 1, 1, &[0xab; 32]),
                tlsa("_25._tcp.a.example.", 2, 0, 2, &[0x01; 64]),
            ],
            true,
        ),
        ("_mta-sts.example.", RecordType::TXT) => Reply::records(
            vec![
                txt("_mta-sts.example.", &["v=STSv1; ", "id=2024"]),
                txt("_mta-sts.example.", &["other"]),
            ],
            false,
        ),
        // Asked for MX, answered with A only: no MX.
        ("wrong.example.", RecordType::MX) => Reply::records(vec![a("wrong.example.", v4)], true),
        _ => Reply::code(ResponseCode::NXDomain, false),
    }
}

#[test]
fn each_record_type_is_read_into_the_engine_types() {
    let dns = FakeDns::start(records_zone);
    let r = trusting(&dns);
    on_both(|| async {
        let got = mx_of(ask(&r, "example", Query::Mx).await);
        assert_eq!(
            got.records,
            vec![
                MxRecord::new(20, "b.example"),
                MxRecord::new(10, "a.example")
            ]
        );
        let null = mx_of(ask(&r, "null.example", Query::Mx).await);
        assert_eq!(null.records, vec![MxRecord::new(0, ".")]);
        let v4 = addresses_of(ask(&r, "a.example", Query::A).await);
        assert_eq!(v4.records, vec![IpAddr::from([192, 0, 2, 1])]);
        let v6 = addresses_of(ask(&r, "a.example", Query::Aaaa).await);
        assert_eq!(v6.records, vec!["2001:db8::1".parse::<IpAddr>().unwrap()]);
        let t = tlsa_of(ask(&r, "_25._tcp.a.example", Query::Tlsa).await);
        assert_eq!(
            t,
            DnsAnswer::records(
                vec![
                    Tlsa {
                        usage: 3,
                        selector: 1,
                        matching: 1,
                        data: vec![0xab; 32]
                    },
                    Tlsa {
                        usage: 2,
                        selector: 0,
                        matching: 2,
                        data: vec![0x01; 64]
                    },
                ],
                Security::Secure
            )
        );
        let sts = txt_of(ask(&r, "_mta-sts.example", Query::Txt).await);
        assert_eq!(
            sts,
            DnsAnswer::records(
                vec!["v=STSv1; id=2024".to_owned(), "other".to_owned()],
                Security::Insecure
            )
        );
        let wrong = mx_of(ask(&r, "wrong.example", Query::Mx).await);
        assert_eq!(wrong, DnsAnswer::records(vec![], Security::Secure));
    });
}

#[test]
fn nxdomain_nodata_and_failures_keep_their_codes_and_security() {
    let dns = FakeDns::start(|name, _| match name {
        // A secure denial: the AD bit of an NXDOMAIN is kept.
        "gone.example." => Reply::code(ResponseCode::NXDomain, true),
        "gone-insecure.example." => Reply::code(ResponseCode::NXDomain, false),
        "empty.example." => Reply::code(ResponseCode::NoError, true),
        "bogus.example." => Reply::code(ResponseCode::ServFail, false),
        "refused.example." => Reply::code(ResponseCode::Refused, false),
        _ => Reply::Silent,
    });
    let r = trusting(&dns);
    let wait = Duration::from_secs(10);
    let cases = [
        (
            "gone.example",
            Query::Tlsa,
            Rcode::NxDomain,
            Security::Secure,
        ),
        (
            "gone-insecure.example",
            Query::Mx,
            Rcode::NxDomain,
            Security::Insecure,
        ),
        (
            "empty.example",
            Query::Aaaa,
            Rcode::NoError,
            Security::Secure,
        ),
        (
            "bogus.example",
            Query::Mx,
            Rcode::ServFail,
            Security::Indeterminate,
        ),
        (
            "refused.example",
            Query::A,
            Rcode::ServFail,
            Security::Indeterminate,
        ),
    ];
    for (name, query, rcode, security) in cases {
        let got = r.lookup_blocking(name, query, wait);
        let expected = smtp_adapter::mx::parts::empty_answer(query, rcode);
        let (got_rcode, got_security, empty) = parts(&got);
        assert_eq!(
            (got_rcode, got_security, empty),
            (rcode, security, true),
            "{name}"
        );
        assert_eq!(
            std::mem::discriminant(&got),
            std::mem::discriminant(&expected),
            "{name}"
        );
    }
    // The same through the async entry point.
    on_both(|| async {
        let got = tlsa_of(ask(&r, "gone.example", Query::Tlsa).await);
        assert_eq!(got, DnsAnswer::empty(Rcode::NxDomain, Security::Secure));
        let got = tlsa_of(ask(&r, "bogus.example", Query::Tlsa).await);
        assert!(got.failed());
    });
}

/// An answer's code, status, and whether it has no records.
fn parts(answer: &Answer) -> (Rcode, Security, bool) {
    match answer {
        Answer::Mx(a) => (a.rcode, a.security, a.records.is_empty()),
        Answer::Address(a) => (a.rcode, a.security, a.records.is_empty()),
        Answer::Tlsa(a) => (a.rcode, a.security, a.records.is_empty()),
        Answer::Txt(a) => (a.rcode, a.security, a.records.is_empty()),
    }
}

#[test]
fn a_silent_server_gives_a_timeout() {
    let dns = FakeDns::start(|_, _| Reply::Silent);
    let quick = HickoryResolver::builder()
        .timeout(Duration::from_millis(100))
        .attempts(2)
        .trusting_ad(dns.addr)
        .unwrap();
    on_both(|| async {
        let got = mx_of(ask(&quick, "example", Query::Mx).await);
        assert_eq!(
            got,
            DnsAnswer::empty(Rcode::Timeout, Security::Indeterminate)
        );
    });
    let got = quick.lookup_blocking("example", Query::Mx, Duration::from_secs(10));
    assert_eq!(parts(&got), (Rcode::Timeout, Security::Indeterminate, true));
    // Both tries were made (twice per entry point on both runtimes, and
    // the blocking one).
    assert_eq!(dns.seen_at_least(6).len(), 6);

    // The caller's deadline, shorter than the resolver's own waits.
    let slow = HickoryResolver::builder()
        .timeout(Duration::from_secs(30))
        .trusting_ad(dns.addr)
        .unwrap();
    let got = slow.lookup_blocking("example", Query::A, Duration::from_millis(100));
    assert_eq!(parts(&got), (Rcode::Timeout, Security::Indeterminate, true));
    // And the whole lookup's limit, through the async entry point.
    let limited = HickoryResolver::builder()
        .timeout(Duration::from_secs(30))
        .lookup_timeout(Duration::from_millis(100))
        .trusting_ad(dns.addr)
        .unwrap();
    on_both(|| async {
        let got = addresses_of(ask(&limited, "example", Query::A).await);
        assert_eq!(got.rcode, Rcode::Timeout);
    });
}

#[test]
fn cname_chains_are_followed_with_the_weakest_security() {
    let v4 = Ipv4Addr::new(192, 0, 2, 7);
    let dns = FakeDns::start(move |name, rtype| match (name, rtype) {
        // The whole chain in one answer.
        ("alias.example.", RecordType::A) => Reply::records(
            vec![
                cname("alias.example.", "mid.example."),
                cname("mid.example.", "host.example."),
                a("host.example.", v4),
            ],
            true,
        ),
        // Only the first link: the end is asked for, and is insecure.
        ("short.example.", RecordType::A) => {
            Reply::records(vec![cname("short.example.", "far.example.")], true)
        }
        ("far.example.", RecordType::A) => Reply::records(vec![a("far.example.", v4)], false),
        // A chain to a name that does not exist.
        ("dangling.example.", RecordType::MX) => Reply::Answer {
            rcode: ResponseCode::NXDomain,
            answers: vec![cname("dangling.example.", "nowhere.example.")],
            ad: true,
            truncate: false,
        },
        // A loop.
        ("loop1.example.", _) => {
            Reply::records(vec![cname("loop1.example.", "loop2.example.")], true)
        }
        ("loop2.example.", _) => {
            Reply::records(vec![cname("loop2.example.", "loop1.example.")], true)
        }
        _ => Reply::code(ResponseCode::NXDomain, false),
    });
    let r = trusting(&dns);
    on_both(|| async {
        // The chain's end is the answer's canonical name (the first TLSA
        // base domain of an MX host, RFC 7672 section 2.2.2).
        let got = addresses_of(ask(&r, "alias.example", Query::A).await);
        assert_eq!(
            got,
            DnsAnswer::records(vec![IpAddr::V4(v4)], Security::Secure)
                .with_canonical("host.example")
        );
        let got = addresses_of(ask(&r, "short.example", Query::A).await);
        assert_eq!(
            got,
            DnsAnswer::records(vec![IpAddr::V4(v4)], Security::Insecure)
                .with_canonical("far.example")
        );
        let got = mx_of(ask(&r, "dangling.example", Query::Mx).await);
        assert_eq!(got, DnsAnswer::empty(Rcode::NxDomain, Security::Secure));
        let got = txt_of(ask(&r, "loop1.example", Query::Txt).await);
        assert_eq!(got.rcode, Rcode::ServFail);
    });
}

#[test]
fn a_truncated_answer_is_asked_again_over_tcp() {
    let dns = FakeDns::start(|name, rtype| match (name, rtype) {
        ("big.example.", RecordType::TXT) => Reply::Answer {
            rcode: ResponseCode::NoError,
            answers: vec![txt("big.example.", &["over tcp"])],
            ad: true,
            truncate: true,
        },
        _ => Reply::Silent,
    });
    let r = trusting(&dns);
    let got = r.lookup_blocking("big.example", Query::Txt, Duration::from_secs(10));
    assert_eq!(
        txt_of(got),
        DnsAnswer::records(vec!["over tcp".to_owned()], Security::Secure)
    );
    let tcp: Vec<bool> = dns.seen().iter().map(|s| s.tcp).collect();
    assert_eq!(tcp, vec![false, true]);
}

#[test]
fn garbage_answers_fail_without_a_panic() {
    let dns = FakeDns::start(|name, _| match name {
        // Our id, then nothing.
        "short.example." => Reply::Raw(vec![0, 0]),
        // A header claiming records that are not there.
        "lying.example." => Reply::Raw(vec![0, 0, 0x81, 0x80, 0, 1, 0, 5, 0, 0, 0, 0]),
        _ => Reply::Silent,
    });
    let r = HickoryResolver::builder()
        .timeout(Duration::from_millis(300))
        .attempts(1)
        .trusting_ad(dns.addr)
        .unwrap();
    for name in ["short.example", "lying.example"] {
        for query in [Query::Mx, Query::A, Query::Aaaa, Query::Tlsa, Query::Txt] {
            let got = r.lookup_blocking(name, query, Duration::from_secs(10));
            let (rcode, _, empty) = parts(&got);
            assert!(empty, "{name} {query:?}");
            assert!(
                matches!(rcode, Rcode::ServFail | Rcode::Timeout),
                "{name} {query:?}: {rcode:?}"
            );
        }
    }
    // A name that is not a DNS name.
    let got = r.lookup_blocking("a..b", Query::Mx, Duration::from_secs(10));
    assert_eq!(parts(&got).0, Rcode::ServFail);
}

#[test]
fn validating_never_takes_an_unsigned_answer_as_secure() {
    // The fake server signs nothing and sets AD: validating from the IANA
    // root, the answer cannot be shown secure, nor insecure (no signed
    // proof that the zone is unsigned): it is bogus, a failure.
    let dns = FakeDns::start(|name, rtype| match (name, rtype) {
        ("example.", RecordType::MX) => {
            Reply::records(vec![mx("example.", 10, "mx.example.")], true)
        }
        _ => Reply::code(ResponseCode::NXDomain, true),
    });
    let r = HickoryResolver::builder()
        .timeout(Duration::from_secs(2))
        .attempts(1)
        .validating(&[dns.addr], TrustAnchor::iana_root())
        .unwrap();
    on_both(|| async {
        let got = mx_of(ask(&r, "example", Query::Mx).await);
        assert_eq!(got, DnsAnswer::empty(Rcode::ServFail, Security::Bogus));
        assert!(got.failed());
    });
}
