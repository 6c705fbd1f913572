//! The routing, REQUIRETLS and recipient scenarios: fallback from a
//! refusing, a silent and a 554-greeting MX, opportunistic TLS after a 454,
//! the local `verify` policy, null MX, NXDOMAIN, REQUIRETLS, and mixed
//! replies across three domains.

use std::time::Duration;

use smtp_async::mx::Class::{Bounced, Deferred, Delivered};
use smtp_async::mx::LocalPolicy;

use crate::checks::{
    in_plaintext, mail_from_requiretls, mixed_recipients, no_connection, no_message, over_tls,
    plan_dane, plan_pkix, sts_none, within_1s, within_greeting_timeout_plus_1s,
};
use crate::policy::Answer;
use crate::scenario::{Outcome, Scenario};
use crate::servers::Mx;

/// The 554 server never saw MAIL FROM.
fn mx14_no_mail(o: &Outcome<'_>) -> Result<(), String> {
    let s = o.server(14)?;
    let logs = s.connection_logs();
    if logs.len() != 1 {
        return Err(format!("127.0.0.14: {} connections, 1 wanted", logs.len()));
    }
    if logs.iter().any(|l| {
        l.received
            .to_ascii_uppercase()
            .windows(9)
            .any(|w| w == b"MAIL FROM")
    }) {
        return Err("127.0.0.14 saw MAIL FROM after its 554 greeting".into());
    }
    Ok(())
}

/// The 454 server got the message in plaintext on the same (first and
/// only) connection: a refused opportunistic STARTTLS goes on in plain
/// text, as Postfix's `may` does.
fn mx16_plaintext_same_session(o: &Outcome<'_>) -> Result<(), String> {
    let s = o.server(16)?;
    let got = s.messages();
    match got.as_slice() {
        [m] if !m.tls && m.connection == 0 && s.connections() == 1 => Ok(()),
        _ => Err(format!(
            "127.0.0.16: {} connections, messages {:?}",
            s.connections(),
            got.iter()
                .map(|m| (m.connection, m.tls))
                .collect::<Vec<_>>()
        )),
    }
}

/// The silent server was connected to once.
fn mx13_connected_once(o: &Outcome<'_>) -> Result<(), String> {
    match o.server(13)?.connections() {
        1 => Ok(()),
        n => Err(format!("127.0.0.13: {n} connections, 1 wanted")),
    }
}

/// The policy of sts-rt.unsigned.test.
const STS_RT: &str = "version: STSv1\nmode: enforce\nmx: mx18.unsigned.test\nmax_age: 86400\n";

/// The routing scenarios.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario::new("MX1 refusing: MX2 within 1 s", &["a@refuse.unsigned.test"])
            .mx(12, Mx::Refusing)
            .mx(18, Mx::StartTls)
            .want(Delivered, Some("2.0.0"))
            .attempts(&[("mx12.unsigned.test", 12), ("mx18.unsigned.test", 18)])
            .check(over_tls)
            .check(within_1s),
        Scenario::new(
            "MX1 silent: MX2 within the greeting timeout + 1 s",
            &["a@silent.unsigned.test"],
        )
        .session_timeout(Duration::from_secs(2))
        .mx(13, Mx::Silent)
        .mx(18, Mx::StartTls)
        .want(Delivered, Some("2.0.0"))
        .attempts(&[("mx13.unsigned.test", 13), ("mx18.unsigned.test", 18)])
        .check(over_tls)
        .check(mx13_connected_once)
        .check(within_greeting_timeout_plus_1s),
        Scenario::new("554 greeting: MX2", &["a@greet554.unsigned.test"])
            .mx(14, Mx::Greeting554)
            .mx(18, Mx::StartTls)
            .want(Delivered, Some("2.0.0"))
            .attempts(&[("mx14.unsigned.test", 14), ("mx18.unsigned.test", 18)])
            .check(over_tls)
            .check(mx14_no_mail),
        Scenario::new(
            "opportunistic, STARTTLS answered 454: plaintext",
            &["a@opp-454.unsigned.test"],
        )
        .mx(16, Mx::StartTls454)
        .want(Delivered, Some("2.0.0"))
        .attempts(&[("mx16.unsigned.test", 16)])
        .check(mx16_plaintext_same_session),
        Scenario::new(
            "local verify, no STARTTLS",
            &["a@verify-notls.unsigned.test"],
        )
        .local(LocalPolicy::Verify)
        .mx(15, Mx::Plain)
        .want(Deferred, Some("4.7.5"))
        .attempts(&[("mx15.unsigned.test", 15)])
        .guarded()
        .check(no_message),
        Scenario::new(
            "local dane-only, insecure MX",
            &["a@insecure-tlsa.unsigned.test"],
        )
        .local(LocalPolicy::DaneOnly)
        .mx(11, Mx::StartTls)
        .want(Deferred, Some("4.7.5"))
        .attempts(&[])
        .guarded()
        .check(no_connection),
        Scenario::new(
            "TLS-Required: No, DANE MX without STARTTLS",
            &["a@dane-notls.signed.test"],
        )
        .tls_required_no()
        .mx(15, Mx::Plain)
        .want(Delivered, Some("2.0.0"))
        .attempts(&[("mx15.signed.test", 15)])
        .check(in_plaintext),
        Scenario::new(
            "TLS-Required: No, STS enforce MX without STARTTLS",
            &["a@sts-notls.unsigned.test"],
        )
        .tls_required_no()
        .mx(15, Mx::Plain)
        .want(Delivered, Some("2.0.0"))
        .attempts(&[("mx15.unsigned.test", 15)])
        .check(in_plaintext)
        .check(sts_none),
        Scenario::new("REQUIRETLS over MTA-STS", &["a@sts-rt.unsigned.test"])
            .requiretls()
            .policy("sts-rt.unsigned.test", Answer::Policy(STS_RT.to_owned()))
            .mx(18, Mx::RequireTls)
            .want(Delivered, Some("2.0.0"))
            .attempts(&[("mx18.unsigned.test", 18)])
            .guarded()
            .check(over_tls)
            .check(plan_pkix)
            .check(mail_from_requiretls),
        Scenario::new("null MX", &["a@nullmx.unsigned.test"])
            .want(Bounced, Some("5.1.10"))
            .attempts(&[]),
        Scenario::new("NXDOMAIN", &["a@nxdomain.unsigned.test"])
            .want(Bounced, Some("5.4.4"))
            .attempts(&[]),
        Scenario::new(
            "REQUIRETLS to an insecure MX",
            &["a@rt-insecure.unsigned.test"],
        )
        .requiretls()
        .mx(11, Mx::RequireTls)
        .want(Bounced, Some("5.7.10"))
        .attempts(&[])
        .guarded()
        .check(no_connection),
        Scenario::new(
            "REQUIRETLS to a non-advertising MX",
            &["a@rt-noadv.signed.test"],
        )
        .requiretls()
        .mx(11, Mx::StartTls)
        .want(Bounced, Some("5.7.30"))
        .attempts(&[("mx11.signed.test", 11)])
        .guarded()
        .check(no_message),
        Scenario::new("REQUIRETLS over DANE", &["a@rt-ok.signed.test"])
            .requiretls()
            .mx(18, Mx::RequireTls)
            .want(Delivered, Some("2.0.0"))
            .attempts(&[("mx18.signed.test", 18)])
            .guarded()
            .check(over_tls)
            .check(plan_dane)
            .check(mail_from_requiretls),
        Scenario::new(
            "mixed 2xx/4xx/5xx recipients across 3 domains",
            &[
                "ok@mixed-a.signed.test",
                "bad@mixed-a.signed.test",
                "ok@mixed-b.unsigned.test",
                "later@mixed-b.unsigned.test",
                "x@mixed-c.unsigned.test",
            ],
        )
        .mx(11, Mx::RefuseRcpt(&["bad@mixed-a.signed.test"]))
        .mx(18, Mx::StartTls)
        .mx(19, Mx::SecondRcpt450)
        .mx(14, Mx::Data451)
        .want(Delivered, Some("2.0.0"))
        .want(Bounced, Some("5.1.1"))
        .want(Delivered, Some("2.0.0"))
        .want(Delivered, Some("2.0.0"))
        .want(Deferred, Some("4.3.0"))
        .attempts(&[("mx11.signed.test", 11)])
        .attempts(&[("mx19.unsigned.test", 19), ("mx18.unsigned.test", 18)])
        .attempts(&[("mx14.unsigned.test", 14)])
        .guarded_at(11)
        .check(mixed_recipients),
    ]
}
