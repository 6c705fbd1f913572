//! The MTA-STS scenarios (zone unsigned.test, policies from the lab's
//! policy server on 127.0.0.20; nothing listens on 127.0.0.21, where the
//! `mta-sts` hosts of the "down" domains point).

use smtp_async::mx::Class::{Deferred, Delivered};

use crate::checks::{
    again_from_cache, fetch_failed, fetched_once, in_plaintext, no_connection, no_message,
    over_tls, plan_pkix, sts_enforce, sts_none, sts_testing, testing_failure_noticed,
    thousand_from_cache,
};
use crate::policy::Answer;
use crate::scenario::Scenario;
use crate::servers::Mx;

fn enforce(mx: &str) -> String {
    format!("version: STSv1\nmode: enforce\nmx: {mx}\nmax_age: 86400\n")
}

/// A policy that would refuse mx15 (plaintext), were it applied.
const ENFORCE_MX11: &str =
    "version: STSv1\nmode: enforce\nmx: mx11.unsigned.test\nmax_age: 86400\n";
/// The same in `testing` mode.
const TESTING_MX11: &str =
    "version: STSv1\nmode: testing\nmx: mx11.unsigned.test\nmax_age: 86400\n";

/// A failed fetch without a cached policy: delivery as if the domain had
/// none, in plaintext to mx15 (which the served policy would refuse).
fn fault(name: &str, domain: &'static str, to: &'static str, answer: Answer) -> Scenario {
    Scenario::new(name, &[to])
        .policy(domain, answer)
        .mx(15, Mx::Plain)
        .want(Delivered, Some("2.0.0"))
        .attempts(&[("mx15.unsigned.test", 15)])
        .check(in_plaintext)
        .check(sts_none)
        .check(fetch_failed)
}

/// The MTA-STS scenarios.
pub fn scenarios() -> Vec<Scenario> {
    let mut list = applied();
    list.extend(fetches());
    list
}

/// The policies applied: enforce and testing against each kind of MX.
fn applied() -> Vec<Scenario> {
    vec![
        Scenario::new(
            "STS enforce: verified TLS",
            &["a@sts-enforce.unsigned.test"],
        )
        .policy(
            "sts-enforce.unsigned.test",
            Answer::Policy(enforce("mx11.unsigned.test")),
        )
        .mx(11, Mx::StartTls)
        .want(Delivered, Some("2.0.0"))
        .attempts(&[("mx11.unsigned.test", 11)])
        .guarded()
        .check(over_tls)
        .check(plan_pkix)
        .check(sts_enforce)
        .check(fetched_once)
        .check(thousand_from_cache)
        .check(fetched_once),
        Scenario::new(
            "STS enforce: MX1 not in the policy, MX2 in it",
            &["a@sts-partial.unsigned.test"],
        )
        .policy(
            "sts-partial.unsigned.test",
            Answer::Policy(enforce("mx18.unsigned.test")),
        )
        .mx(11, Mx::StartTls)
        .mx(18, Mx::StartTls)
        .want(Delivered, Some("2.0.0"))
        .attempts(&[("mx18.unsigned.test", 18)])
        .guarded()
        .check(over_tls)
        .check(plan_pkix)
        .check(sts_enforce),
        Scenario::new("STS enforce, no STARTTLS", &["a@sts-notls.unsigned.test"])
            .policy(
                "sts-notls.unsigned.test",
                Answer::Policy(enforce("mx15.unsigned.test")),
            )
            .mx(15, Mx::Plain)
            .want(Deferred, Some("4.7.5"))
            .attempts(&[("mx15.unsigned.test", 15)])
            .guarded()
            .check(no_message),
        Scenario::new(
            "STS enforce, STARTTLS answered 454",
            &["a@sts-454.unsigned.test"],
        )
        .policy(
            "sts-454.unsigned.test",
            Answer::Policy(enforce("mx16.unsigned.test")),
        )
        .mx(16, Mx::StartTls454)
        .want(Deferred, Some("4.7.5"))
        .attempts(&[("mx16.unsigned.test", 16)])
        .guarded()
        .check(no_message),
        Scenario::new(
            "STS enforce, failed handshake",
            &["a@sts-handshake.unsigned.test"],
        )
        .policy(
            "sts-handshake.unsigned.test",
            Answer::Policy(enforce("mx17.unsigned.test")),
        )
        .mx(17, Mx::HandshakeFails)
        .want(Deferred, Some("4.7.5"))
        .attempts(&[("mx17.unsigned.test", 17)])
        .guarded()
        .check(no_message),
        Scenario::new(
            "STS testing: delivered anyway",
            &["a@sts-testing.unsigned.test"],
        )
        .policy(
            "sts-testing.unsigned.test",
            Answer::Policy(TESTING_MX11.to_owned()),
        )
        .mx(15, Mx::Plain)
        .want(Delivered, Some("2.0.0"))
        .attempts(&[("mx15.unsigned.test", 15)])
        .check(in_plaintext)
        .check(sts_testing)
        .check(testing_failure_noticed),
        Scenario::new(
            "STS enforce, MX mismatch",
            &["a@sts-mismatch.unsigned.test"],
        )
        .policy(
            "sts-mismatch.unsigned.test",
            Answer::Policy(enforce("mx.elsewhere.test")),
        )
        .mx(11, Mx::StartTls)
        .want(Deferred, Some("4.7.5"))
        .attempts(&[])
        .guarded()
        .check(no_connection)
        .check(sts_enforce),
    ]
}

/// The fetch: its faults, the cache with the server down, a new id, an
/// expired policy.
fn fetches() -> Vec<Scenario> {
    let refusing_policy = enforce("mx15.unsigned.test");
    vec![
        fault(
            "STS policy redirect (301): not followed",
            "sts-redirect.unsigned.test",
            "a@sts-redirect.unsigned.test",
            Answer::Redirect,
        ),
        fault(
            "STS policy as text/html",
            "sts-html.unsigned.test",
            "a@sts-html.unsigned.test",
            Answer::Html(refusing_policy.clone()),
        ),
        fault(
            "STS policy over 64 KiB",
            "sts-big.unsigned.test",
            "a@sts-big.unsigned.test",
            Answer::TooLarge,
        ),
        fault(
            "STS policy 404",
            "sts-404.unsigned.test",
            "a@sts-404.unsigned.test",
            Answer::NotFound,
        ),
        Scenario::new(
            "STS policy server down, no cache",
            &["a@sts-down.unsigned.test"],
        )
        .mx(15, Mx::Plain)
        .want(Delivered, Some("2.0.0"))
        .attempts(&[("mx15.unsigned.test", 15)])
        .check(in_plaintext)
        .check(sts_none)
        .check(fetch_failed),
        Scenario::new(
            "STS policy server down, cached policy",
            &["a@sts-cached.unsigned.test"],
        )
        .cached("sts-cached.unsigned.test", "1", ENFORCE_MX11, 60)
        .mx(15, Mx::Plain)
        .want(Deferred, Some("4.7.5"))
        .attempts(&[])
        .guarded()
        .check(no_connection)
        .check(sts_enforce)
        .check(fetch_failed),
        Scenario::new(
            "STS new policy id: one refetch",
            &["a@sts-newid.unsigned.test"],
        )
        .cached("sts-newid.unsigned.test", "1", TESTING_MX11, 60)
        .policy(
            "sts-newid.unsigned.test",
            Answer::Policy(ENFORCE_MX11.to_owned()),
        )
        .mx(11, Mx::StartTls)
        .want(Delivered, Some("2.0.0"))
        .attempts(&[("mx11.unsigned.test", 11)])
        .guarded()
        .check(over_tls)
        .check(sts_enforce)
        .check(fetched_once)
        .check(again_from_cache)
        .check(fetched_once),
        Scenario::new(
            "STS policy past max_age: not used",
            &["a@sts-expired.unsigned.test"],
        )
        .cached("sts-expired.unsigned.test", "1", ENFORCE_MX11, 86_400 + 60)
        .mx(15, Mx::Plain)
        .want(Delivered, Some("2.0.0"))
        .attempts(&[("mx15.unsigned.test", 15)])
        .check(in_plaintext)
        .check(sts_none)
        .check(fetch_failed),
    ]
}
