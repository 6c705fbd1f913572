//! The scenarios' own checks, over an [`Outcome`]: where the message went
//! and how, the TLS plan, the MTA-STS mode and fetches, the notices, and
//! the fallback time bounds.

use std::time::Duration;

use smtp_async::mx::FinalStatus;
use smtp_mx::engine::Notice;
use smtp_mx::plan::TlsPlan;
use smtp_mx::sts::Mode;

use crate::scenario::Outcome;

/// The domain of the first recipient.
fn first_domain<'a>(o: &'a Outcome<'_>) -> &'a str {
    o.scenario
        .to
        .first()
        .and_then(|a| a.split_once('@'))
        .map_or("", |(_, d)| d)
}

/// The last octet of the address the first recipient was delivered to.
fn delivered_at(o: &Outcome<'_>) -> Result<u8, String> {
    match &o.report.recipients.first().map(|r| &r.status) {
        Some(FinalStatus::Delivered {
            ip: std::net::IpAddr::V4(v4),
            ..
        }) => Ok(v4.octets()[3]),
        other => Err(format!("not delivered: {other:?}")),
    }
}

/// Whether the message that reached the first recipient's server came
/// over TLS.
fn message_tls(o: &Outcome<'_>) -> Result<bool, String> {
    let last = delivered_at(o)?;
    let got = o.server(last)?.wait_for_messages(1, Duration::from_secs(2));
    match got.as_slice() {
        [m] => Ok(m.tls),
        other => Err(format!(
            "127.0.0.{last} has {} messages, 1 wanted",
            other.len()
        )),
    }
}

/// The message came over TLS.
pub fn over_tls(o: &Outcome<'_>) -> Result<(), String> {
    if message_tls(o)? {
        Ok(())
    } else {
        Err("the message came in plaintext".into())
    }
}

/// The message came in plaintext.
pub fn in_plaintext(o: &Outcome<'_>) -> Result<(), String> {
    if message_tls(o)? {
        Err("the message came over TLS".into())
    } else {
        Ok(())
    }
}

/// No server has a message.
pub fn no_message(o: &Outcome<'_>) -> Result<(), String> {
    for r in &o.mxs {
        if let Some(s) = &r.server
            && !s.messages().is_empty()
        {
            return Err(format!("127.0.0.{} has a message", r.last));
        }
    }
    Ok(())
}

/// No server was connected to.
pub fn no_connection(o: &Outcome<'_>) -> Result<(), String> {
    for r in &o.mxs {
        if let Some(s) = &r.server
            && s.connections() != 0
        {
            return Err(format!("127.0.0.{} was connected to", r.last));
        }
    }
    Ok(())
}

/// The plan of the first destination's last connection.
fn last_plan<'a>(o: &'a Outcome<'_>) -> Result<&'a TlsPlan, String> {
    o.report
        .domains
        .first()
        .and_then(|d| d.connections.last())
        .map(|c| &c.tls)
        .ok_or_else(|| "no connection".to_owned())
}

/// The last connection was planned with DANE.
pub fn plan_dane(o: &Outcome<'_>) -> Result<(), String> {
    match last_plan(o)? {
        TlsPlan::Dane { .. } => Ok(()),
        other => Err(format!("plan {other:?}, DANE wanted")),
    }
}

/// The DANE reference names of the last connection, and its MX host.
fn dane_names<'a>(o: &'a Outcome<'_>) -> Result<(&'a [String], &'a str), String> {
    let last = o.report.domains.first().and_then(|d| d.connections.last());
    match last {
        Some(c) => match &c.tls {
            TlsPlan::Dane { names, .. } => Ok((names, &c.host)),
            other => Err(format!("plan {other:?}, DANE wanted")),
        },
        None => Err("no connection".to_owned()),
    }
}

/// The last connection was planned with DANE from the TLSA records of its
/// MX host's alias target (RFC 7672 section 2.2.2): that target is the
/// first reference name, the host the second.
pub fn plan_dane_from_target(o: &Outcome<'_>) -> Result<(), String> {
    match dane_names(o)? {
        ([target, second], host) if second == host && target != host => Ok(()),
        (names, host) => Err(format!(
            "DANE names {names:?} for {host}, its target's first wanted"
        )),
    }
}

/// The last connection was planned with DANE from the TLSA records at its
/// MX host's own name: the host is the one reference name.
pub fn plan_dane_from_host(o: &Outcome<'_>) -> Result<(), String> {
    match dane_names(o)? {
        ([only], host) if only == host => Ok(()),
        (names, host) => Err(format!(
            "DANE names {names:?} for {host}, the host alone wanted"
        )),
    }
}

/// The last connection was planned with PKIX verification.
pub fn plan_pkix(o: &Outcome<'_>) -> Result<(), String> {
    match last_plan(o)? {
        TlsPlan::Pkix { .. } => Ok(()),
        other => Err(format!("plan {other:?}, PKIX wanted")),
    }
}

/// The last connection was planned opportunistic.
pub fn plan_opportunistic(o: &Outcome<'_>) -> Result<(), String> {
    match last_plan(o)? {
        TlsPlan::Opportunistic => Ok(()),
        other => Err(format!("plan {other:?}, opportunistic wanted")),
    }
}

/// The last connection was planned "encrypt" (TLS, unauthenticated).
pub fn plan_encrypt(o: &Outcome<'_>) -> Result<(), String> {
    match last_plan(o)? {
        TlsPlan::Encrypt => Ok(()),
        other => Err(format!("plan {other:?}, encrypt wanted")),
    }
}

fn sts_mode(o: &Outcome<'_>, want: Option<Mode>) -> Result<(), String> {
    let got = o.report.domains.first().and_then(|d| d.sts);
    if got == want {
        Ok(())
    } else {
        Err(format!("MTA-STS mode {got:?}, {want:?} wanted"))
    }
}

/// The MTA-STS policy applied was `enforce`.
pub fn sts_enforce(o: &Outcome<'_>) -> Result<(), String> {
    sts_mode(o, Some(Mode::Enforce))
}

/// The MTA-STS policy applied was `testing`.
pub fn sts_testing(o: &Outcome<'_>) -> Result<(), String> {
    sts_mode(o, Some(Mode::Testing))
}

/// No MTA-STS policy was applied.
pub fn sts_none(o: &Outcome<'_>) -> Result<(), String> {
    sts_mode(o, None)
}

fn served(o: &Outcome<'_>, want: usize) -> Result<(), String> {
    let domain = first_domain(o);
    let got = o.lab.policy.served(domain);
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "the policy server answered {got} requests for {domain}, {want} wanted"
        ))
    }
}

/// The policy server answered exactly one request for the domain.
pub fn fetched_once(o: &Outcome<'_>) -> Result<(), String> {
    served(o, 1)
}

/// A notice says the policy fetch failed.
pub fn fetch_failed(o: &Outcome<'_>) -> Result<(), String> {
    let notices = o
        .report
        .domains
        .first()
        .map(|d| d.notices.as_slice())
        .unwrap_or_default();
    if notices
        .iter()
        .any(|n| matches!(n, Notice::StsFetchFailed(_)))
    {
        Ok(())
    } else {
        Err(format!("no failed fetch among the notices {notices:?}"))
    }
}

/// A notice reports the testing policy's failure.
pub fn testing_failure_noticed(o: &Outcome<'_>) -> Result<(), String> {
    let notices = o
        .report
        .domains
        .first()
        .map(|d| d.notices.as_slice())
        .unwrap_or_default();
    if notices
        .iter()
        .any(|n| matches!(n, Notice::StsTestingFailure { .. }))
    {
        Ok(())
    } else {
        Err(format!("no testing failure among the notices {notices:?}"))
    }
}

fn within(o: &Outcome<'_>, bound: Duration) -> Result<(), String> {
    // The delivery returns after the second MX has the message, so the
    // delivery's time bounds when the message arrived there.
    if o.elapsed <= bound {
        Ok(())
    } else {
        Err(format!(
            "the next MX had the message after {:?} at most, bound {bound:?}",
            o.elapsed
        ))
    }
}

/// The delivery (to the next MX) ended within 1 s.
pub fn within_1s(o: &Outcome<'_>) -> Result<(), String> {
    within(o, Duration::from_secs(1))
}

/// The delivery (to the next MX) ended within the greeting timeout plus
/// 1 s.
pub fn within_greeting_timeout_plus_1s(o: &Outcome<'_>) -> Result<(), String> {
    within(o, o.scenario.session_timeout + Duration::from_secs(1))
}

/// The message carried REQUIRETLS in its MAIL FROM.
pub fn mail_from_requiretls(o: &Outcome<'_>) -> Result<(), String> {
    let last = delivered_at(o)?;
    let got = o.server(last)?.messages();
    match got.first() {
        Some(m) if m.mail_from.to_ascii_uppercase().contains("REQUIRETLS") => Ok(()),
        Some(m) => Err(format!("MAIL FROM:{} has no REQUIRETLS", m.mail_from)),
        None => Err("no message".into()),
    }
}

/// The mixed scenario: the second MX of mixed-b (127.0.0.18) got exactly
/// one message, for the one recipient the first refused with 450; the
/// first MX of each domain got its message with the right recipients.
pub fn mixed_recipients(o: &Outcome<'_>) -> Result<(), String> {
    let at18 = o.server(18)?.wait_for_messages(1, Duration::from_secs(2));
    let rcpts: Vec<_> = at18.iter().map(|m| m.rcpt_to.clone()).collect();
    if rcpts != [vec!["<later@mixed-b.unsigned.test>".to_owned()]] {
        return Err(format!("127.0.0.18 got {rcpts:?}"));
    }
    let at11 = o.server(11)?.messages();
    let rcpts: Vec<_> = at11.iter().map(|m| m.rcpt_to.clone()).collect();
    if rcpts != [vec!["<ok@mixed-a.signed.test>".to_owned()]] || !at11.iter().all(|m| m.tls) {
        return Err(format!("127.0.0.11 got {rcpts:?}"));
    }
    if !o.server(14)?.messages().is_empty() {
        return Err("127.0.0.14 kept a message it answered 451".into());
    }
    Ok(())
}

/// `n` more deliveries, each from the cache the one before left, ask for
/// no fetch and end as the first did.
fn again_from_cache_n(o: &Outcome<'_>, n: usize) -> Result<(), String> {
    let domain = first_domain(o);
    let before = o.lab.policy.served(domain);
    let first: Vec<_> = o
        .report
        .recipients
        .iter()
        .map(|r| r.status.class())
        .collect();
    let mut cache = o.cache.clone();
    for i in 0..n {
        let (report, next) = o.again_from(cache)?;
        cache = next;
        let classes: Vec<_> = report.recipients.iter().map(|r| r.status.class()).collect();
        if classes != first {
            return Err(format!("delivery {}: {classes:?}, first {first:?}", i + 2));
        }
    }
    let after = o.lab.policy.served(domain);
    if after == before {
        Ok(())
    } else {
        Err(format!(
            "{} more fetches in {n} deliveries from the cache",
            after - before
        ))
    }
}

/// Five more deliveries from the cache: no fetch.
pub fn again_from_cache(o: &Outcome<'_>) -> Result<(), String> {
    again_from_cache_n(o, 5)
}

/// 999 more deliveries from the cache (1,000 in all): no fetch.
pub fn thousand_from_cache(o: &Outcome<'_>) -> Result<(), String> {
    again_from_cache_n(o, 999)
}
