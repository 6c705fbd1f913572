//! The DANE and DNSSEC scenarios (zones signed.test, expired.test,
//! bogus-ds.test, and a TLSA record in unsigned.test), and which of them
//! posttls-finger judges too.

use smtp_async::mx::Class::{Deferred, Delivered};

use crate::checks::{
    no_connection, no_message, over_tls, plan_dane, plan_dane_from_host, plan_dane_from_target,
    plan_encrypt, plan_opportunistic,
};
use crate::scenario::{Dns, Scenario};
use crate::servers::Mx;

/// The DANE scenarios; each with the name of its destination when
/// posttls-finger is to judge it too.
pub fn scenarios() -> Vec<(Scenario, Option<&'static str>)> {
    let mut list = delivered();
    list.extend(refused());
    list.extend(refused_by_servers());
    list
}

/// The DANE scenarios that end in a delivery.
fn delivered() -> Vec<(Scenario, Option<&'static str>)> {
    let ok = |name: &str, to: &'static str, host: &'static str| {
        Scenario::new(name, &[to])
            .mx(11, Mx::StartTls)
            .want(Delivered, Some("2.0.0"))
            .attempts(&[(host, 11)])
            .guarded()
            .check(over_tls)
    };
    vec![
        (
            ok(
                "DANE-EE 3 1 1 matching",
                "a@dane-ok.signed.test",
                "mx11.signed.test",
            )
            .check(plan_dane),
            Some("dane-ok.signed.test"),
        ),
        (
            ok(
                "DANE-EE 3 0 1 (whole certificate)",
                "a@dane-full.signed.test",
                "mx-full.signed.test",
            )
            .check(plan_dane),
            Some("dane-full.signed.test"),
        ),
        (
            ok(
                "DANE-EE 3 1 2 (SHA-512)",
                "a@dane-512.signed.test",
                "mx-512.signed.test",
            )
            .check(plan_dane),
            Some("dane-512.signed.test"),
        ),
        (
            ok(
                "DANE-TA 2 1 1 (the lab CA)",
                "a@dane-ta.signed.test",
                "mx-ta.signed.test",
            )
            .check(plan_dane),
            Some("dane-ta.signed.test"),
        ),
        (
            ok(
                "DANE-EE wrong, DANE-TA matching",
                "a@dane-mixta.signed.test",
                "mx-mixta.signed.test",
            )
            .check(plan_dane),
            Some("dane-mixta.signed.test"),
        ),
        (
            ok(
                "MX host an alias: TLSA at its target first",
                "a@dane-cname.signed.test",
                "mx-alias.signed.test",
            )
            .check(plan_dane_from_target),
            Some("dane-cname.signed.test"),
        ),
        (
            ok(
                "MX host an alias, no TLSA at its target: TLSA at the alias",
                "a@dane-cname-fallback.signed.test",
                "mx-alias2.signed.test",
            )
            .check(plan_dane_from_host),
            Some("dane-cname-fallback.signed.test"),
        ),
        (
            ok(
                "MX host an alias: DANE-TA names the alias, not its target",
                "a@dane-cname-ta.signed.test",
                "mx-ta-alias.signed.test",
            )
            .check(plan_dane_from_target),
            Some("dane-cname-ta.signed.test"),
        ),
        (
            ok(
                "TLSA records all unusable (PKIX-EE): encrypt",
                "a@dane-unusable.signed.test",
                "mx-unusable.signed.test",
            )
            .check(plan_encrypt),
            Some("dane-unusable.signed.test"),
        ),
        (
            ok(
                "signed host without TLSA (secure NXDOMAIN): opportunistic",
                "a@dane-notlsa.signed.test",
                "mx-notlsa.signed.test",
            )
            .check(plan_opportunistic),
            Some("dane-notlsa.signed.test"),
        ),
        (
            Scenario::new(
                "TLSA in an insecure zone: ignored",
                &["a@insecure-tlsa.unsigned.test"],
            )
            .mx(11, Mx::StartTls)
            .want(Delivered, Some("2.0.0"))
            .attempts(&[("mx11.unsigned.test", 11)])
            .check(over_tls)
            .check(plan_opportunistic),
            Some("insecure-tlsa.unsigned.test"),
        ),
    ]
}

/// The DANE scenarios with a failure of a record, a chain or an answer.
fn refused() -> Vec<(Scenario, Option<&'static str>)> {
    vec![
        (
            Scenario::new(
                "signed MX, host in an unsigned zone: no DANE",
                &["a@insecure-host.signed.test"],
            )
            .mx(11, Mx::StartTls)
            .want(Delivered, Some("2.0.0"))
            .attempts(&[("mx11.unsigned.test", 11)])
            .check(over_tls)
            .check(plan_opportunistic),
            Some("insecure-host.signed.test"),
        ),
        (
            Scenario::new("wrong TLSA", &["a@dane-wrong.signed.test"])
                .mx(11, Mx::StartTls)
                .want(Deferred, Some("4.7.5"))
                .attempts(&[("mx-wrong.signed.test", 11)])
                .guarded()
                .check(no_message),
            Some("dane-wrong.signed.test"),
        ),
        (
            Scenario::new(
                "MX host an alias: wrong TLSA at its target, right at the alias",
                &["a@dane-cname-wrong.signed.test"],
            )
            .mx(11, Mx::StartTls)
            .want(Deferred, Some("4.7.5"))
            .attempts(&[("mx-alias3.signed.test", 11)])
            .guarded()
            .check(no_message),
            Some("dane-cname-wrong.signed.test"),
        ),
        (
            Scenario::new(
                "DANE-TA chain for the wrong name",
                &["a@x.ta-name.signed.test"],
            )
            .mx(11, Mx::StartTls)
            .want(Deferred, Some("4.7.5"))
            .attempts(&[("mx.ta-name.signed.test", 11)])
            .guarded()
            .check(no_message),
            Some("x.ta-name.signed.test"),
        ),
        (
            Scenario::new(
                "DANE-TA: the genuine TA above a forged leaf",
                &["a@dane-forged.signed.test"],
            )
            .mx(12, Mx::StartTls)
            .want(Deferred, Some("4.7.5"))
            .attempts(&[("mx-forged.signed.test", 12)])
            .guarded()
            .check(no_message),
            Some("dane-forged.signed.test"),
        ),
        (
            Scenario::new(
                "TLSA SERVFAIL (bogus signature)",
                &["a@dane-servfail.signed.test"],
            )
            .mx(11, Mx::StartTls)
            .want(Deferred, Some("4.7.5"))
            .attempts(&[])
            .guarded()
            .check(no_connection),
            Some("dane-servfail.signed.test"),
        ),
        (
            Scenario::new("bogus: expired signatures", &["a@expired.test"])
                .mx(11, Mx::StartTls)
                .want(Deferred, Some("4.4.3"))
                .attempts(&[])
                .check(no_connection),
            Some("expired.test"),
        ),
        (
            Scenario::new("bogus: DS mismatch", &["a@bogus-ds.test"])
                .mx(11, Mx::StartTls)
                .want(Deferred, Some("4.4.3"))
                .attempts(&[])
                .check(no_connection),
            Some("bogus-ds.test"),
        ),
    ]
}

/// The DANE scenarios where a server does not pass (no STARTTLS, a 454, a
/// failed handshake), or MX1 does not and MX2 does.
fn refused_by_servers() -> Vec<(Scenario, Option<&'static str>)> {
    vec![
        (
            Scenario::new(
                "DANE: MX1 wrong TLSA, MX2 right",
                &["a@dane-mx1-wrong.signed.test"],
            )
            .mx(11, Mx::StartTls)
            .mx(18, Mx::StartTls)
            .want(Delivered, Some("2.0.0"))
            .attempts(&[("mx-wrong.signed.test", 11), ("mx18.signed.test", 18)])
            .guarded()
            .check(over_tls)
            .check(plan_dane),
            None,
        ),
        (
            Scenario::new(
                "signed MX, host in a bogus zone",
                &["a@bogus-host.signed.test"],
            )
            .mx(11, Mx::StartTls)
            .want(Deferred, Some("4.4.3"))
            .attempts(&[])
            .check(no_connection),
            Some("bogus-host.signed.test"),
        ),
        (
            Scenario::new("DANE, no STARTTLS", &["a@dane-notls.signed.test"])
                .mx(15, Mx::Plain)
                .want(Deferred, Some("4.7.5"))
                .attempts(&[("mx15.signed.test", 15)])
                .guarded()
                .check(no_message),
            None,
        ),
        (
            Scenario::new("DANE, STARTTLS answered 454", &["a@dane-454.signed.test"])
                .mx(16, Mx::StartTls454)
                .want(Deferred, Some("4.7.5"))
                .attempts(&[("mx16.signed.test", 16)])
                .guarded()
                .check(no_message),
            None,
        ),
        (
            Scenario::new("DANE, failed handshake", &["a@dane-handshake.signed.test"])
                .mx(17, Mx::HandshakeFails)
                .want(Deferred, Some("4.7.5"))
                .attempts(&[("mx17.signed.test", 17)])
                .guarded()
                .check(no_message),
            None,
        ),
        (
            Scenario::new(
                "DANE, no STARTTLS on MX1: MX2",
                &["a@dane-fallback.signed.test"],
            )
            .mx(15, Mx::Plain)
            .mx(18, Mx::StartTls)
            .want(Delivered, Some("2.0.0"))
            .attempts(&[("mx15.signed.test", 15), ("mx18.signed.test", 18)])
            .guarded()
            .check(over_tls)
            .check(plan_dane),
            None,
        ),
    ]
}

/// The scenarios run again with the resolver that validates in the
/// process (those whose checks hold on a second run).
pub fn validating(routes: &[Scenario]) -> Vec<Scenario> {
    let keep = [
        "DANE-EE 3 1 1 matching",
        "DANE-TA 2 1 1 (the lab CA)",
        "MX host an alias: TLSA at its target first",
        "MX host an alias, no TLSA at its target: TLSA at the alias",
        "wrong TLSA",
        "TLSA SERVFAIL (bogus signature)",
        "TLSA in an insecure zone: ignored",
        "signed host without TLSA (secure NXDOMAIN): opportunistic",
        "bogus: expired signatures",
        "bogus: DS mismatch",
        "null MX",
        "NXDOMAIN",
        "MX1 refusing: MX2 within 1 s",
    ];
    let dane = scenarios().into_iter().map(|(s, _)| s);
    let routes = routes.iter().cloned();
    dane.chain(routes)
        .filter(|s| keep.contains(&s.name.as_str()))
        .map(|mut s| {
            s.name = format!("validating: {}", s.name);
            s.dns(Dns::Validating)
        })
        .collect()
}
