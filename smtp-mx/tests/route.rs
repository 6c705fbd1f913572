//! MX routing: names, grouping, MX order, implicit and null MX, addresses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use smtp_mx::codes;
use smtp_mx::dns::{DnsAnswer, Rcode, Security};
use smtp_mx::name::{Destination, NameError, a_label, group_recipients};
use smtp_mx::route::{
    AddressPolicy, Family, HostAddresses, MxList, MxRecord, order_mx, plan_attempts,
};
use smtp_mx::{Failure, Reason};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn mx(records: &[(u16, &str)]) -> DnsAnswer<MxRecord> {
    DnsAnswer::records(
        records.iter().map(|(p, h)| MxRecord::new(*p, h)).collect(),
        Security::Insecure,
    )
}

fn names(list: &MxList) -> Vec<&str> {
    list.hosts.iter().map(|h| h.name.as_str()).collect()
}

#[test]
fn a_labels() {
    let cases: &[(&str, Result<&str, NameError>)] = &[
        ("example.com", Ok("example.com")),
        ("Example.COM", Ok("example.com")),
        ("example.com.", Ok("example.com")),
        ("bücher.example", Ok("xn--bcher-kva.example")),
        ("BÜCHER.example", Ok("xn--bcher-kva.example")),
        ("xn--bcher-kva.example", Ok("xn--bcher-kva.example")),
        ("мойдомен.рф", Ok("xn--d1acklchcc.xn--p1ai")),
        ("a-b.example", Ok("a-b.example")),
        ("", Err(NameError::InvalidDomain)),
        (".", Err(NameError::InvalidDomain)),
        ("a..example", Err(NameError::InvalidDomain)),
        ("under_score.example", Err(NameError::InvalidDomain)),
        ("sp ace.example", Err(NameError::InvalidDomain)),
        ("semi;colon.example", Err(NameError::InvalidDomain)),
    ];
    for (input, want) in cases {
        assert_eq!(a_label(input).as_deref().map_err(|e| *e), *want, "{input}");
    }
    let long_label = format!("{}.example", "a".repeat(64));
    assert_eq!(a_label(&long_label), Err(NameError::InvalidDomain));
    let ok_label = format!("{}.example", "a".repeat(63));
    assert_eq!(a_label(&ok_label).as_deref(), Ok(ok_label.as_str()));
    let long_name = vec!["abcdefghi"; 26].join(".");
    assert_eq!(long_name.len(), 259);
    assert_eq!(a_label(&long_name), Err(NameError::InvalidDomain));
}

#[test]
fn recipients_are_grouped_by_a_label_domain() {
    let rcpts = [
        "a@Bücher.example",
        "b@example.com",
        "c@xn--bcher-kva.example",
        "\"x@y\"@EXAMPLE.com.",
        "nodomain",
        "d@",
        "e@[192.0.2.7]",
        "f@[IPv6:2001:db8::1]",
        "g@[ipv6:2001:DB8::1]",
        "h@[300.1.1.1]",
        "i@bad_domain.example",
    ];
    let g = group_recipients(&rcpts);
    let groups: Vec<(String, Vec<usize>)> = g
        .groups
        .iter()
        .map(|g| (g.destination.to_string(), g.recipients.clone()))
        .collect();
    assert_eq!(
        groups,
        vec![
            ("xn--bcher-kva.example".to_owned(), vec![0, 2]),
            ("example.com".to_owned(), vec![1, 3]),
            ("[192.0.2.7]".to_owned(), vec![6]),
            ("[IPv6:2001:db8::1]".to_owned(), vec![7, 8]),
        ]
    );
    assert_eq!(
        g.invalid,
        vec![
            (4, NameError::NoDomain),
            (5, NameError::NoDomain),
            (9, NameError::InvalidLiteral),
            (10, NameError::InvalidDomain),
        ]
    );
    assert_eq!(
        Destination::parse("[192.0.2.1"),
        Err(NameError::InvalidLiteral)
    );
}

#[test]
fn mx_hosts_sorted_by_preference_and_normalised() {
    let list = order_mx(
        "example.com",
        &mx(&[
            (30, "C.example.net."),
            (10, "a.example.net"),
            (20, "b.example.net"),
        ]),
        1,
    )
    .unwrap();
    assert_eq!(
        names(&list),
        ["a.example.net", "b.example.net", "c.example.net"]
    );
    assert_eq!(
        list.hosts.iter().map(|h| h.preference).collect::<Vec<_>>(),
        [10, 20, 30]
    );
    assert!(!list.implicit);
    assert!(!list.secure);
}

#[test]
fn a_host_named_twice_keeps_its_most_preferred_place() {
    let list = order_mx(
        "example.com",
        &mx(&[
            (20, "a.example.net"),
            (10, "A.example.net."),
            (15, "b.example.net"),
        ]),
        7,
    )
    .unwrap();
    assert_eq!(names(&list), ["a.example.net", "b.example.net"]);
    assert_eq!(list.hosts[0].preference, 10);
}

#[test]
fn invalid_exchanges_are_dropped_and_none_left_is_unroutable() {
    let list = order_mx(
        "example.com",
        &mx(&[(10, "bad_host"), (20, "ok.example")]),
        0,
    )
    .unwrap();
    assert_eq!(names(&list), ["ok.example"]);
    let err = order_mx("example.com", &mx(&[(10, "bad_host"), (20, "a..b")]), 0).unwrap_err();
    assert_eq!(
        err,
        Failure::new(codes::UNROUTABLE, false, Reason::NoAddress)
    );
}

#[test]
fn null_mx_is_a_permanent_failure() {
    let want = Failure::new(codes::NULL_MX, false, Reason::NullMx);
    assert_eq!(
        order_mx("example.com", &mx(&[(0, ".")]), 0),
        Err(want.clone())
    );
    assert_eq!(
        order_mx("example.com", &mx(&[(0, "")]), 0),
        Err(want.clone())
    );
    // Forbidden by RFC 7505 section 3, refused as Postfix does.
    assert_eq!(
        order_mx("example.com", &mx(&[(10, "mx.example.com"), (0, ".")]), 0),
        Err(want)
    );
    assert_eq!(codes::NULL_MX.to_string(), "5.1.10");
}

#[test]
fn no_mx_record_means_the_implicit_mx() {
    for rcode in [Rcode::NoError, Rcode::NxDomain] {
        for security in [Security::Secure, Security::Insecure] {
            let list = order_mx("example.org", &DnsAnswer::empty(rcode, security), 0).unwrap();
            assert_eq!(names(&list), ["example.org"]);
            assert_eq!(list.hosts[0].preference, 0);
            assert!(list.implicit);
            assert_eq!(list.secure, security == Security::Secure);
        }
    }
}

#[test]
fn a_failed_mx_lookup_defers() {
    let want = Err(Failure::new(
        codes::DNS_TEMPORARY,
        false,
        Reason::DnsFailure,
    ));
    for rcode in [Rcode::ServFail, Rcode::Timeout] {
        assert_eq!(
            order_mx(
                "example.org",
                &DnsAnswer::empty(rcode, Security::Insecure),
                0
            ),
            want
        );
    }
    // A bogus answer is never used, whatever it holds.
    let mut bogus = mx(&[(10, "mx.example.org")]);
    bogus.security = Security::Bogus;
    assert_eq!(order_mx("example.org", &bogus, 0), want);
    assert_eq!(codes::DNS_TEMPORARY.to_string(), "4.4.3");
}

#[test]
fn the_shuffle_is_a_function_of_seed_domain_and_record_set() {
    let recs = [
        (10, "a.example"),
        (10, "b.example"),
        (10, "c.example"),
        (10, "d.example"),
    ];
    let mut rev = recs;
    rev.reverse();
    for seed in 0..200 {
        let one = order_mx("example.com", &mx(&recs), seed).unwrap();
        let two = order_mx("example.com", &mx(&rev), seed).unwrap();
        assert_eq!(one, two, "seed {seed}");
    }
    // Over 500 seeds, every one of the 4! orders appears.
    let orders: std::collections::HashSet<Vec<String>> = (0..500)
        .map(|s| {
            order_mx("example.com", &mx(&recs), s)
                .unwrap()
                .hosts
                .into_iter()
                .map(|h| h.name)
                .collect()
        })
        .collect();
    assert_eq!(orders.len(), 24);
}

/// Over 10,000 seeds, each of N equal-preference hosts comes first within 5%
/// of 10,000 / N, and a less preferred host never comes before them.
#[test]
fn equal_preferences_come_first_uniformly() {
    let mut worst: f64 = 0.0;
    for n in [2usize, 3, 4, 5, 7] {
        let hosts: Vec<String> = (0..n).map(|i| format!("mx{i}.example.net")).collect();
        let mut records: Vec<(u16, &str)> = hosts.iter().map(|h| (10, h.as_str())).collect();
        records.push((5, "primary.example.net"));
        records.push((20, "backup.example.net"));
        let mut first = vec![0u32; n];
        let seeds = 10_000u64;
        for seed in 0..seeds {
            let list = order_mx("example.com", &mx(&records), seed).unwrap();
            assert_eq!(list.hosts.len(), n + 2);
            assert_eq!(list.hosts[0].name, "primary.example.net");
            assert_eq!(list.hosts[n + 1].name, "backup.example.net");
            let i = hosts.iter().position(|h| *h == list.hosts[1].name).unwrap();
            first[i] += 1;
        }
        let expected = seeds as f64 / n as f64;
        for (i, count) in first.iter().enumerate() {
            let dev = (f64::from(*count) - expected).abs() / expected;
            worst = worst.max(dev);
            assert!(
                dev <= 0.05,
                "n={n} host {i}: {count} firsts, expected {expected}"
            );
        }
        eprintln!("n={n}: firsts {first:?}");
    }
    eprintln!("largest deviation from uniform: {:.2}%", worst * 100.0);
}

fn v4(ips: &[&str], security: Security) -> Option<DnsAnswer<IpAddr>> {
    Some(DnsAnswer::records(
        ips.iter().map(|s| ip(s)).collect(),
        security,
    ))
}

fn list(hosts: &[&str], secure: bool) -> MxList {
    MxList {
        hosts: hosts
            .iter()
            .enumerate()
            .map(|(i, h)| smtp_mx::route::MxHost {
                name: (*h).to_owned(),
                preference: i as u16 * 10,
            })
            .collect(),
        secure,
        implicit: false,
    }
}

fn tried(attempts: &[smtp_mx::route::Attempt]) -> Vec<(String, String)> {
    attempts
        .iter()
        .map(|a| (a.host.clone(), a.ip.to_string()))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn families_interleave_from_the_first_and_rotate() {
    let hosts = list(&["mx1", "mx2"], false);
    let answers = [
        HostAddresses {
            ipv4: v4(&["192.0.2.1", "192.0.2.2"], Security::Insecure),
            ipv6: v4(&["2001:db8::1", "2001:db8::2"], Security::Insecure),
        },
        HostAddresses {
            ipv4: v4(&["192.0.2.9"], Security::Insecure),
            ipv6: None,
        },
    ];
    let policy = AddressPolicy::default();
    assert_eq!(
        tried(&plan_attempts(&hosts, &answers, &policy).unwrap()),
        pairs(&[
            ("mx1", "2001:db8::1"),
            ("mx1", "192.0.2.1"),
            ("mx1", "2001:db8::2"),
            ("mx1", "192.0.2.2"),
            ("mx2", "192.0.2.9"),
        ])
    );
    let rotated = policy.rotated(Family::V6);
    assert_eq!(rotated.first, Family::V4);
    let p = AddressPolicy {
        max_addresses: 3,
        ..rotated
    };
    assert_eq!(
        tried(&plan_attempts(&hosts, &answers, &p).unwrap()),
        pairs(&[
            ("mx1", "192.0.2.1"),
            ("mx1", "2001:db8::1"),
            ("mx1", "192.0.2.2")
        ])
    );
    let v4_only = AddressPolicy {
        ipv6: false,
        ..AddressPolicy::default()
    };
    assert_eq!(
        tried(&plan_attempts(&hosts, &answers, &v4_only).unwrap()),
        pairs(&[
            ("mx1", "192.0.2.1"),
            ("mx1", "192.0.2.2"),
            ("mx2", "192.0.2.9")
        ])
    );
}

#[test]
fn the_address_limit_is_five_in_all() {
    let hosts = list(&["mx1", "mx2", "mx3"], false);
    let answer = |a: &[&str]| HostAddresses {
        ipv4: v4(a, Security::Insecure),
        ipv6: None,
    };
    let answers = [
        answer(&["192.0.2.1", "192.0.2.2"]),
        answer(&["192.0.2.3", "192.0.2.4"]),
        answer(&["192.0.2.5", "192.0.2.6"]),
    ];
    let attempts = plan_attempts(&hosts, &answers, &AddressPolicy::default()).unwrap();
    assert_eq!(attempts.len(), 5);
    assert_eq!(attempts[4].ip, ip("192.0.2.5"));
}

#[test]
fn unusable_and_duplicate_addresses_are_dropped_and_security_kept() {
    let hosts = list(&["mx1", "mx2"], true);
    let answers = [
        HostAddresses {
            ipv4: v4(
                &[
                    "0.0.0.0",
                    "224.0.0.1",
                    "255.255.255.255",
                    "127.0.0.11",
                    "127.0.0.11",
                ],
                Security::Secure,
            ),
            ipv6: v4(&["::", "ff02::1", "192.0.2.50"], Security::Insecure),
        },
        HostAddresses {
            ipv4: v4(&["127.0.0.11", "127.0.0.12"], Security::Insecure),
            ipv6: None,
        },
    ];
    let attempts = plan_attempts(&hosts, &answers, &AddressPolicy::default()).unwrap();
    assert_eq!(
        tried(&attempts),
        pairs(&[("mx1", "127.0.0.11"), ("mx2", "127.0.0.12")])
    );
    assert!(attempts[0].mx_secure && attempts[0].address_secure);
    assert!(attempts[1].mx_secure && !attempts[1].address_secure);
}

#[test]
fn no_address_at_all_is_unroutable_or_deferred() {
    let hosts = list(&["mx1", "mx2"], false);
    let nx = HostAddresses {
        ipv4: Some(DnsAnswer::empty(Rcode::NxDomain, Security::Insecure)),
        ipv6: Some(DnsAnswer::empty(Rcode::NoError, Security::Insecure)),
    };
    assert_eq!(
        plan_attempts(&hosts, &[nx.clone(), nx.clone()], &AddressPolicy::default()),
        Err(Failure::new(codes::UNROUTABLE, false, Reason::NoAddress))
    );
    let fail = HostAddresses {
        ipv4: Some(DnsAnswer::empty(Rcode::ServFail, Security::Insecure)),
        ipv6: None,
    };
    assert_eq!(
        plan_attempts(
            &hosts,
            &[nx.clone(), fail.clone()],
            &AddressPolicy::default()
        ),
        Err(Failure::new(
            codes::DNS_TEMPORARY,
            false,
            Reason::DnsFailure
        ))
    );
    // One host failing does not stop the others.
    let ok = HostAddresses {
        ipv4: v4(&["192.0.2.1"], Security::Insecure),
        ipv6: None,
    };
    assert_eq!(
        tried(&plan_attempts(&hosts, &[fail, ok], &AddressPolicy::default()).unwrap()),
        pairs(&[("mx2", "192.0.2.1")])
    );
    // Hosts without answers are not used.
    assert_eq!(
        plan_attempts(&hosts, &[], &AddressPolicy::default()),
        Err(Failure::new(codes::UNROUTABLE, false, Reason::NoAddress))
    );
}

#[test]
fn an_alias_target_is_kept_only_from_a_validated_answer() {
    let hosts = list(&["mx1", "mx2", "mx3"], true);
    let aliased = |security, target: &str| HostAddresses {
        ipv4: v4(&[], security).map(|a| a.with_canonical(target)),
        ipv6: None,
    };
    let mut answers = [
        aliased(Security::Secure, "MX.Provider.example."),
        aliased(Security::Insecure, "mx.provider.example"),
        aliased(Security::Secure, "MX3"),
    ];
    for (k, a) in answers.iter_mut().enumerate() {
        if let Some(v) = a.ipv4.as_mut() {
            v.records = vec![ip(&format!("192.0.2.{}", k + 1))];
        }
    }
    let attempts = plan_attempts(&hosts, &answers, &AddressPolicy::default()).unwrap();
    let canonical: Vec<Option<&str>> = attempts.iter().map(|a| a.canonical.as_deref()).collect();
    // Validated: lowercase, no final dot. Not validated: dropped. The host's
    // own name (in any case): no alias.
    assert_eq!(canonical, [Some("mx.provider.example"), None, None]);
}
