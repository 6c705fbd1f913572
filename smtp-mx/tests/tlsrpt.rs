//! TLS-RPT (feature `tlsrpt`): the `_smtp._tls` record, the JSON of
//! published reports (mail-auth's fixtures, see `data/tlsrpt/README.md`)
//! through a parse, a serialisation and a second parse, a report built
//! from a scripted delivery whose counts match the sessions it had, and
//! the result types of TLS failures and failed policy fetches.
#![cfg(feature = "tlsrpt")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::Value;
use smtp_mx::Delivery;
use smtp_mx::TlsFailure;
use smtp_mx::dane::Tlsa;
use smtp_mx::dns::{DnsAnswer, Rcode, Security};
use smtp_mx::engine::{
    Answer, Class, Config, Connection, DomainReport, MessageSecurity, Notice, Opening, PolicyFetch,
    Query, Report, Request, TlsOutcome,
};
use smtp_mx::plan::TlsPlan;
use smtp_mx::route::MxRecord;
use smtp_mx::sts::{FetchError, StsCache, parse_policy};
use smtp_mx::tlsrpt::{
    Aggregator, PolicyType, RecordError, ReportMeta, ReportUri, ResultType, TlsReport,
    parse_record, rfc3339, select_record,
};
use smtp_sansio::{Address, Reply, TransactionResult};

#[test]
fn records() {
    let r = parse_record("v=TLSRPTv1; rua=mailto:reports@example.com").unwrap();
    assert_eq!(r.rua, [ReportUri::Mailto("reports@example.com".into())]);
    let r =
        parse_record("v=TLSRPTv1;rua=https://reporting.example.com/v1/tlsrpt,mailto:a@b.example;")
            .unwrap();
    assert_eq!(
        r.rua,
        [
            ReportUri::Https("https://reporting.example.com/v1/tlsrpt".into()),
            ReportUri::Mailto("a@b.example".into())
        ]
    );
    // Unknown fields and schemes are skipped.
    let r = parse_record("v=TLSRPTv1 ; ext=1 ; rua=ftp://x,mailto:r@example.org").unwrap();
    assert_eq!(r.rua, [ReportUri::Mailto("r@example.org".into())]);
    let bad: &[(&str, RecordError)] = &[
        ("v=TLSRPTv2; rua=mailto:a@b", RecordError::Version),
        ("rua=mailto:a@b; v=TLSRPTv1", RecordError::Version),
        ("v=tlsrptv1; rua=mailto:a@b", RecordError::Version),
        ("v=TLSRPTv1", RecordError::Rua),
        (
            "v=TLSRPTv1; rua=mailto:a@b; rua=mailto:c@d",
            RecordError::Rua,
        ),
        ("v=TLSRPTv1; rua=ftp://x", RecordError::Uri),
        ("v=TLSRPTv1; rua=mailto:nobody", RecordError::Uri),
        ("v=TLSRPTv1; rua=https:x", RecordError::Uri),
        ("v=TLSRPTv1; rua=", RecordError::Uri),
        ("v=TLSRPTv1; ; rua=mailto:a@b", RecordError::Field),
        ("v=TLSRPTv1; rua", RecordError::Field),
        ("v=TLSRPTv1; =x; rua=mailto:a@b", RecordError::Field),
        ("v=TLSRPTv1; rua=mailto:a@b c", RecordError::Field),
    ];
    for (txt, e) in bad {
        assert_eq!(parse_record(txt), Err(e.clone()), "{txt}");
    }
    let one = select_record(&["v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@b.example"]).unwrap();
    assert_eq!(one.rua.len(), 1);
    assert_eq!(
        select_record(&["v=TLSRPTv1; rua=mailto:a@b", "v=TLSRPTv1;rua=mailto:c@d"]),
        Err(RecordError::Count(2))
    );
    assert_eq!(select_record::<&str>(&[]), Err(RecordError::Count(0)));
    assert_eq!(
        smtp_mx::tlsrpt::record_name("example.com"),
        "_smtp._tls.example.com"
    );
}

/// Every key and value of `original` is in `written` (which may add
/// counts a report left out as zero).
fn contained(original: &Value, written: &Value, path: &str) {
    match (original, written) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let w = b.get(k).unwrap_or_else(|| panic!("{path}/{k} lost"));
                contained(v, w, &format!("{path}/{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                contained(x, y, &format!("{path}/{i}"));
            }
        }
        (a, b) => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn published_reports_round_trip() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tlsrpt");
    let mut seen = 0;
    for name in ["rpt01.json", "rpt02.json", "rpt03.json"] {
        let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        let first = TlsReport::from_json(&text).unwrap();
        let json = first.to_json().unwrap();
        let second = TlsReport::from_json(&json).unwrap();
        assert_eq!(first, second, "{name}");
        let original: Value = serde_json::from_str(&text).unwrap();
        contained(&original, &serde_json::from_str(&json).unwrap(), name);
        seen += 1;
    }
    assert_eq!(seen, 3);
    // What the fixtures hold, read as typed values.
    let text = std::fs::read_to_string(format!("{dir}/rpt01.json")).unwrap();
    let r = TlsReport::from_json(&text).unwrap();
    let p = &r.policies[0];
    assert_eq!(p.policy.policy_type, PolicyType::Sts);
    assert_eq!(p.policy.mx_host, ["*.mail.company-y.example"]);
    assert_eq!(
        (
            p.summary.total_successful_session_count,
            p.summary.total_failure_session_count
        ),
        (5326, 303)
    );
    let types: Vec<_> = p
        .failure_details
        .iter()
        .map(|f| f.result_type.clone())
        .collect();
    assert_eq!(
        types,
        [
            ResultType::CertificateExpired,
            ResultType::StarttlsNotSupported,
            ResultType::ValidationFailure
        ]
    );
    let text = std::fs::read_to_string(format!("{dir}/rpt03.json")).unwrap();
    let r = TlsReport::from_json(&text).unwrap();
    assert_eq!(r.policies[0].policy.policy_type, PolicyType::NoPolicyFound);
    assert_eq!(
        r.policies[1].policy.policy_type,
        PolicyType::Other("invalid-policy-type".into())
    );
    // A report missing a required field is an error, not a default.
    assert!(TlsReport::from_json(r#"{"organization-name":"x"}"#).is_err());
}

#[test]
fn dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_459_468_800), "2016-04-01T00:00:00Z");
    assert_eq!(rfc3339(1_459_555_199), "2016-04-01T23:59:59Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
}

/// How a scripted server opens.
#[derive(Clone, Copy, Debug)]
enum Open {
    Tls,
    PlainOnly,
    TlsFails,
    Refused,
}

/// Tallies of what the scripted servers did, per destination.
#[derive(Default, Debug, PartialEq, Eq)]
struct Tally {
    tls: u64,
    tls_failed: u64,
    plaintext: u64,
    refused: u64,
}

const NOW: u64 = 1_800_000_000;

/// A domain's MX records (preference, host) and whether they are signed.
type MxSet<'a> = (Vec<(u16, &'a str)>, bool);

fn policy_body(mx: &[&str]) -> Vec<u8> {
    let mut body = "version: STSv1\nmode: enforce\nmax_age: 86400\n".to_owned();
    for m in mx {
        body.push_str(&format!("mx: {m}\n"));
    }
    body.into_bytes()
}

fn reply(code: u16, text: &str) -> Reply {
    Reply::new(code, vec![text.to_owned()])
}

/// Runs a delivery to one recipient at each of four domains against a
/// scripted world; returns the report and the servers' tallies.
#[allow(clippy::too_many_lines)]
fn scripted_delivery() -> (smtp_mx::engine::Report, HashMap<String, Tally>) {
    let sec = |s| {
        if s {
            Security::Secure
        } else {
            Security::Insecure
        }
    };
    // domain -> (MX records, secure); host -> (address, open); TLSA hosts.
    let mx: HashMap<&str, MxSet> = HashMap::from([
        (
            "a.example",
            (
                vec![
                    (10, "mx3.a.example"),
                    (20, "mx1.a.example"),
                    (30, "mx2.a.example"),
                ],
                false,
            ),
        ),
        ("b.example", (vec![(10, "mx.b.example")], false)),
        (
            "c.example",
            (vec![(10, "mx1.c.example"), (20, "mx2.c.example")], false),
        ),
        ("d.example", (vec![(10, "mx.d.example")], true)),
    ]);
    let hosts: HashMap<&str, (&str, Open)> = HashMap::from([
        ("mx3.a.example", ("192.0.2.13", Open::Tls)),
        ("mx1.a.example", ("192.0.2.11", Open::TlsFails)),
        ("mx2.a.example", ("192.0.2.12", Open::Tls)),
        ("mx.b.example", ("192.0.2.21", Open::PlainOnly)),
        ("mx1.c.example", ("192.0.2.31", Open::Refused)),
        ("mx2.c.example", ("192.0.2.32", Open::Tls)),
        ("mx.d.example", ("192.0.2.41", Open::Tls)),
    ]);
    let domain_of = |ip: IpAddr| {
        let host = hosts
            .iter()
            .find(|(_, (a, _))| a.parse::<IpAddr>().unwrap() == ip)
            .unwrap()
            .0;
        host.split_once('.').unwrap().1.to_owned()
    };
    let tlsa = Tlsa {
        usage: 3,
        selector: 1,
        matching: 1,
        data: vec![0x5a; 32],
    };
    let rcpts = ["u@a.example", "u@b.example", "u@c.example", "u@d.example"];
    let mut d = Delivery::new(
        &rcpts,
        MessageSecurity::default(),
        Config::default(),
        StsCache::new(),
        NOW,
        7,
    );
    let mut tally: HashMap<String, Tally> = HashMap::new();
    while let Some(req) = d.next_request() {
        match req {
            Request::Resolve { id, name, query } => {
                let answer = match query {
                    Query::Mx => Answer::Mx(match mx.get(name.as_str()) {
                        Some((records, secure)) => DnsAnswer::records(
                            records.iter().map(|(p, h)| MxRecord::new(*p, h)).collect(),
                            sec(*secure),
                        ),
                        None => DnsAnswer::empty(Rcode::NxDomain, Security::Insecure),
                    }),
                    Query::A => Answer::Address(match hosts.get(name.as_str()) {
                        Some((a, _)) => DnsAnswer::records(
                            vec![a.parse().unwrap()],
                            sec(name.ends_with("d.example")),
                        ),
                        None => DnsAnswer::empty(Rcode::NxDomain, Security::Insecure),
                    }),
                    Query::Aaaa => {
                        Answer::Address(DnsAnswer::empty(Rcode::NoError, Security::Insecure))
                    }
                    Query::Tlsa => Answer::Tlsa(if name == "_25._tcp.mx.d.example" {
                        DnsAnswer::records(vec![tlsa.clone()], Security::Secure)
                    } else {
                        DnsAnswer::empty(Rcode::NxDomain, Security::Secure)
                    }),
                    Query::Txt => Answer::Txt(if name == "_mta-sts.a.example" {
                        DnsAnswer::records(vec!["v=STSv1; id=1".into()], Security::Insecure)
                    } else {
                        DnsAnswer::empty(Rcode::NxDomain, Security::Insecure)
                    }),
                };
                d.answer(id, answer).unwrap();
            }
            Request::FetchPolicy { id, .. } => {
                let fetch = PolicyFetch::Response {
                    status: 200,
                    content_type: Some("text/plain".into()),
                    body: policy_body(&["mx1.a.example", "mx2.a.example"]),
                };
                d.policy_fetched(id, fetch).unwrap();
            }
            Request::Connect(c) => {
                let (_, open) = hosts[c.host.as_str()];
                let t = tally.entry(domain_of(c.ip)).or_default();
                let plain_plan = c.plan.tls == smtp_mx::plan::TlsPlan::Plain;
                let opening = match open {
                    Open::Refused => {
                        t.refused += 1;
                        Opening::Refused
                    }
                    Open::TlsFails if !plain_plan => {
                        t.tls_failed += 1;
                        Opening::TlsFailed(smtp_mx::TlsFailure::Handshake)
                    }
                    Open::Tls if !plain_plan => {
                        t.tls += 1;
                        Opening::Opened {
                            tls: true,
                            requiretls: false,
                        }
                    }
                    _ => {
                        t.plaintext += 1;
                        Opening::Opened {
                            tls: false,
                            requiretls: false,
                        }
                    }
                };
                d.opened(c.id, opening).unwrap();
            }
            Request::Transaction(t) => {
                let result = TransactionResult {
                    mail_reply: reply(250, "2.1.0 Ok"),
                    recipients: t
                        .addresses
                        .iter()
                        .map(|a| smtp_sansio::RecipientResult {
                            address: Address::new(a.clone()).unwrap(),
                            rcpt_reply: reply(250, "2.1.5 Ok"),
                            final_reply: None,
                        })
                        .collect(),
                    final_reply: Some(reply(250, "2.0.0 queued")),
                    chunked: false,
                };
                d.transaction_done(t.id, Ok(result)).unwrap();
            }
            Request::Close { .. } => {}
        }
    }
    (d.report().unwrap(), tally)
}

#[test]
fn report_counts_match_the_sessions() {
    let (report, tally) = scripted_delivery();
    for r in &report.recipients {
        assert_eq!(r.status.class(), Class::Delivered, "{}", r.address);
    }
    // What the servers saw: a.example one failed handshake (mx1) and one
    // TLS session (mx2), mx3 never contacted (outside the policy);
    // b.example one plaintext session; c.example one refusal, one TLS
    // session; d.example one TLS session under DANE.
    let t = |tls, tls_failed, plaintext, refused| Tally {
        tls,
        tls_failed,
        plaintext,
        refused,
    };
    assert_eq!(tally["a.example"], t(1, 1, 0, 0));
    assert_eq!(tally["b.example"], t(0, 0, 1, 0));
    assert_eq!(tally["c.example"], t(1, 0, 0, 1));
    assert_eq!(tally["d.example"], t(1, 0, 0, 0));

    let mut agg = Aggregator::new(Some("198.51.100.1".parse().unwrap()));
    agg.add_report(&report);
    assert_eq!(
        agg.domains().collect::<Vec<_>>(),
        ["a.example", "b.example", "c.example", "d.example"]
    );
    let meta = ReportMeta {
        organization_name: "Example Sender".into(),
        contact_info: "tlsrpt@sender.example".into(),
        report_id: "r1".into(),
        start: NOW - 86_400,
        end: NOW,
    };
    let reports: HashMap<&str, TlsReport> = ["a.example", "b.example", "c.example", "d.example"]
        .into_iter()
        .map(|d| (d, agg.report(d, &meta).unwrap()))
        .collect();
    assert!(agg.report("e.example", &meta).is_none());

    // Each domain: one policy, its counts those of the sessions above
    // (successes: TLS sessions; failures: failed handshakes, plaintext
    // sessions, attempts the policy refused).
    let summary = |d: &str| {
        let r = &reports[d];
        assert_eq!(r.policies.len(), 1, "{d}");
        let s = r.policies[0].summary;
        (
            r.policies[0].policy.policy_type.clone(),
            s.total_successful_session_count,
            s.total_failure_session_count,
        )
    };
    let skipped_by_policy = 1; // mx3.a.example
    assert_eq!(
        summary("a.example"),
        (
            PolicyType::Sts,
            tally["a.example"].tls,
            tally["a.example"].tls_failed + skipped_by_policy
        )
    );
    assert_eq!(
        summary("b.example"),
        (PolicyType::NoPolicyFound, 0, tally["b.example"].plaintext)
    );
    assert_eq!(
        summary("c.example"),
        (PolicyType::NoPolicyFound, tally["c.example"].tls, 0)
    );
    assert_eq!(
        summary("d.example"),
        (PolicyType::Tlsa, tally["d.example"].tls, 0)
    );

    // The details.
    let a = &reports["a.example"].policies[0];
    assert_eq!(
        a.policy.policy_string,
        [
            "version: STSv1",
            "mode: enforce",
            "mx: mx1.a.example",
            "mx: mx2.a.example",
            "max_age: 86400"
        ]
    );
    assert_eq!(a.policy.policy_domain.as_deref(), Some("a.example"));
    assert_eq!(a.policy.mx_host, ["mx1.a.example", "mx2.a.example"]);
    let details: Vec<_> = a
        .failure_details
        .iter()
        .map(|f| {
            (
                f.result_type.clone(),
                f.receiving_mx_hostname.clone().unwrap(),
                f.receiving_ip.clone().unwrap(),
                f.failed_session_count,
                f.sending_mta_ip.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        details,
        [
            (
                ResultType::ValidationFailure,
                "mx1.a.example".into(),
                "192.0.2.11".into(),
                1,
                "198.51.100.1".into()
            ),
            (
                ResultType::ValidationFailure,
                "mx3.a.example".into(),
                "192.0.2.13".into(),
                1,
                "198.51.100.1".into()
            ),
        ]
    );
    let b = &reports["b.example"].policies[0].failure_details;
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].result_type, ResultType::StarttlsNotSupported);
    let d = &reports["d.example"].policies[0].policy;
    assert_eq!(d.policy_string, [format!("3 1 1 {}", "5a".repeat(32))]);
    assert_eq!(d.mx_host, ["mx.d.example"]);

    // Two deliveries count twice; the report round-trips through JSON.
    agg.add_report(&report);
    let r = agg.report("a.example", &meta).unwrap();
    assert_eq!(r.policies[0].summary.total_successful_session_count, 2);
    assert_eq!(r.policies[0].summary.total_failure_session_count, 4);
    assert_eq!(r.policies[0].failure_details[0].failed_session_count, 2);
    assert_eq!(r.date_range.end_datetime, rfc3339(NOW));
    let json = r.to_json().unwrap();
    assert_eq!(TlsReport::from_json(&json).unwrap(), r);
    assert!(json.contains("\"policy-type\": \"sts\""), "{json}");
}

/// A connection of a hand-made report.
fn connection(
    host: &str,
    ip: &str,
    tls: TlsPlan,
    outcome: TlsOutcome,
    cause: Option<TlsFailure>,
) -> Connection {
    Connection {
        host: host.into(),
        ip: ip.parse().unwrap(),
        tls,
        outcome,
        tls_failure: cause,
    }
}

/// The (result type, MX host, MX address, count, sending address) of each
/// failure detail of `report`'s one policy, and its summary.
type Details = Vec<(ResultType, String, String, u64, String)>;

fn details(report: &TlsReport) -> (PolicyType, u64, u64, Details) {
    assert_eq!(report.policies.len(), 1);
    let p = &report.policies[0];
    let d = p
        .failure_details
        .iter()
        .map(|f| {
            (
                f.result_type.clone(),
                f.receiving_mx_hostname.clone().unwrap(),
                f.receiving_ip.clone().unwrap(),
                f.failed_session_count,
                f.sending_mta_ip.clone().unwrap(),
            )
        })
        .collect();
    (
        p.policy.policy_type.clone(),
        p.summary.total_successful_session_count,
        p.summary.total_failure_session_count,
        d,
    )
}

/// The causes of failed sessions as result types, each session counted
/// once with its MX and address; a domain whose policy fetch failed
/// reports its sessions under an `sts` policy with no text.
#[test]
fn causes_and_fetch_failures_are_counted_per_session() {
    let pkix = || TlsPlan::Pkix {
        names: vec!["mx.a.example".into()],
    };
    let policy = parse_policy(&policy_body(&["*.a.example"])).unwrap();
    let a = DomainReport {
        destination: "a.example".into(),
        connections: vec![
            connection(
                "mx1.a.example",
                "192.0.2.11",
                pkix(),
                TlsOutcome::TlsFailed,
                Some(TlsFailure::CertificateExpired),
            ),
            connection(
                "mx1.a.example",
                "192.0.2.11",
                pkix(),
                TlsOutcome::TlsFailed,
                Some(TlsFailure::CertificateExpired),
            ),
            connection(
                "mx2.a.example",
                "192.0.2.12",
                pkix(),
                TlsOutcome::TlsFailed,
                Some(TlsFailure::HostMismatch),
            ),
            connection(
                "mx2.a.example",
                "192.0.2.12",
                pkix(),
                TlsOutcome::TlsFailed,
                Some(TlsFailure::NotTrusted),
            ),
            connection(
                "mx3.a.example",
                "192.0.2.13",
                pkix(),
                TlsOutcome::StartTlsNotSupported,
                Some(TlsFailure::StartTlsRefused(reply(454, "4.7.0 no"))),
            ),
            connection(
                "mx3.a.example",
                "192.0.2.13",
                pkix(),
                TlsOutcome::TlsFailed,
                None,
            ),
            connection("mx4.a.example", "192.0.2.14", pkix(), TlsOutcome::Tls, None),
            // No session: refused, or no configuration here.
            connection(
                "mx5.a.example",
                "192.0.2.15",
                pkix(),
                TlsOutcome::NotOpened,
                None,
            ),
            connection(
                "mx5.a.example",
                "192.0.2.15",
                pkix(),
                TlsOutcome::NotOpened,
                Some(TlsFailure::Config),
            ),
        ],
        sts: Some(policy.mode),
        sts_policy: Some(policy),
        notices: Vec::new(),
    };
    let b = DomainReport {
        destination: "b.example".into(),
        connections: vec![
            connection(
                "mx.b.example",
                "192.0.2.21",
                TlsPlan::Opportunistic,
                TlsOutcome::Tls,
                None,
            ),
            connection(
                "mx.b.example",
                "192.0.2.21",
                TlsPlan::Opportunistic,
                TlsOutcome::Plaintext,
                None,
            ),
        ],
        sts: None,
        sts_policy: None,
        notices: vec![Notice::StsFetchFailed(FetchError::Transport)],
    };
    let c = DomainReport {
        destination: "c.example".into(),
        connections: vec![connection(
            "mx.c.example",
            "192.0.2.31",
            TlsPlan::Opportunistic,
            TlsOutcome::Tls,
            None,
        )],
        notices: vec![Notice::StsFetchFailed(FetchError::Certificate)],
        ..b.clone()
    };
    let report = Report {
        recipients: Vec::new(),
        domains: vec![a, b, c],
    };
    let mut agg = Aggregator::new(Some("198.51.100.1".parse().unwrap()));
    agg.add_report(&report);
    let meta = ReportMeta {
        organization_name: "Example Sender".into(),
        contact_info: "tlsrpt@sender.example".into(),
        report_id: "r2".into(),
        start: NOW - 86_400,
        end: NOW,
    };
    let row = |r: ResultType, host: &str, ip: &str, n: u64| {
        (
            r,
            host.to_owned(),
            ip.to_owned(),
            n,
            "198.51.100.1".to_owned(),
        )
    };
    let a = agg.report("a.example", &meta).unwrap();
    assert_eq!(
        details(&a),
        (
            PolicyType::Sts,
            1,
            6,
            vec![
                row(
                    ResultType::StarttlsNotSupported,
                    "mx3.a.example",
                    "192.0.2.13",
                    1
                ),
                row(
                    ResultType::CertificateHostMismatch,
                    "mx2.a.example",
                    "192.0.2.12",
                    1
                ),
                row(
                    ResultType::CertificateExpired,
                    "mx1.a.example",
                    "192.0.2.11",
                    2
                ),
                row(
                    ResultType::CertificateNotTrusted,
                    "mx2.a.example",
                    "192.0.2.12",
                    1
                ),
                row(
                    ResultType::ValidationFailure,
                    "mx3.a.example",
                    "192.0.2.13",
                    1
                ),
            ]
        )
    );
    let b = agg.report("b.example", &meta).unwrap();
    assert_eq!(
        details(&b),
        (
            PolicyType::Sts,
            0,
            2,
            vec![row(
                ResultType::StsPolicyFetchError,
                "mx.b.example",
                "192.0.2.21",
                2
            )]
        )
    );
    let policy = &b.policies[0].policy;
    assert!(policy.policy_string.is_empty() && policy.mx_host.is_empty());
    assert_eq!(policy.policy_domain.as_deref(), Some("b.example"));
    let c = agg.report("c.example", &meta).unwrap();
    assert_eq!(
        details(&c).3,
        [row(
            ResultType::StsWebpkiInvalid,
            "mx.c.example",
            "192.0.2.31",
            1
        )]
    );
    let json = a.to_json().unwrap();
    assert!(
        json.contains("\"result-type\": \"certificate-expired\""),
        "{json}"
    );
    assert!(
        c.to_json()
            .unwrap()
            .contains("\"result-type\": \"sts-webpki-invalid\"")
    );
    assert_eq!(TlsReport::from_json(&json).unwrap(), a);
}
