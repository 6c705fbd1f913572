//! Why required TLS failed, from the driver's [`Opening`] to the report:
//! each [`TlsFailure`] under a PKIX (MTA-STS enforce) plan, a DANE plan, a
//! REQUIRETLS message and opportunistic TLS; the core's STARTTLS errors
//! read as their causes; the deferral's reason, its text and enhanced
//! code; the connection's `tls_failure`; and (feature `tlsrpt`) the result
//! type each session is reported with.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::IpAddr;

use smtp_mx::dane::Tlsa;
use smtp_mx::dns::{DnsAnswer, Rcode, Security};
use smtp_mx::engine::{
    Answer, Class, Config, FinalStatus, MessageSecurity, Opening, PolicyFetch, Query, Report,
    Request, TlsOutcome,
};
use smtp_mx::plan::TlsPlan;
use smtp_mx::route::MxRecord;
use smtp_mx::sts::{FetchError, StsCache};
use smtp_mx::{Delivery, Reason, TlsFailure};
use smtp_sansio::{Address, Error, Reply, SecurityError, TransactionResult};

const NOW: u64 = 1_800_000_000;
const ENFORCE: &str = "version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n";

fn reply(code: u16, text: &str) -> Reply {
    Reply::new(code, vec![text.to_owned()])
}

/// How the domain `example.com` is set up.
#[derive(Clone)]
struct World {
    /// MX hosts in preference order, each with its address and what its
    /// connection gives.
    mx: Vec<(&'static str, &'static str, Opening)>,
    /// The MTA-STS policy fetch's result; `None`: no `_mta-sts` record.
    sts: Option<PolicyFetch>,
    /// TLSA records of every host (the zone then DNSSEC-signed).
    tlsa: Option<Tlsa>,
    message: MessageSecurity,
}

fn enforce() -> PolicyFetch {
    PolicyFetch::Response {
        status: 200,
        content_type: Some("text/plain".into()),
        body: ENFORCE.as_bytes().to_vec(),
    }
}

fn tlsa() -> Tlsa {
    Tlsa {
        usage: 3,
        selector: 1,
        matching: 1,
        data: vec![0x5a; 32],
    }
}

fn opened(tls: bool) -> Opening {
    Opening::Opened {
        tls,
        requiretls: tls,
    }
}

impl World {
    fn one(open: Opening) -> World {
        World {
            mx: vec![("mx1.example.com", "192.0.2.1", open)],
            sts: Some(enforce()),
            tlsa: None,
            message: MessageSecurity::default(),
        }
    }

    fn run(&self) -> Report {
        let mut d = Delivery::new(
            &["b@example.com"],
            self.message,
            Config::default(),
            StsCache::new(),
            NOW,
            7,
        );
        let security = if self.tlsa.is_some() {
            Security::Secure
        } else {
            Security::Insecure
        };
        let by_ip: HashMap<IpAddr, Opening> = self
            .mx
            .iter()
            .map(|(_, ip, o)| (ip.parse().unwrap(), o.clone()))
            .collect();
        while let Some(req) = d.next_request() {
            match req {
                Request::Resolve { id, name, query } => {
                    let answer = match query {
                        Query::Mx => Answer::Mx(DnsAnswer::records(
                            (0u16..)
                                .zip(&self.mx)
                                .map(|(k, (h, _, _))| MxRecord::new(10 * (k + 1), h))
                                .collect(),
                            security,
                        )),
                        Query::A => {
                            Answer::Address(match self.mx.iter().find(|(h, _, _)| *h == name) {
                                Some((_, ip, _)) => {
                                    DnsAnswer::records(vec![ip.parse().unwrap()], security)
                                }
                                None => DnsAnswer::empty(Rcode::NxDomain, security),
                            })
                        }
                        Query::Aaaa => Answer::Address(DnsAnswer::empty(Rcode::NoError, security)),
                        Query::Tlsa => Answer::Tlsa(match &self.tlsa {
                            Some(t) => DnsAnswer::records(vec![t.clone()], Security::Secure),
                            None => DnsAnswer::empty(Rcode::NxDomain, Security::Secure),
                        }),
                        Query::Txt => Answer::Txt(match self.sts {
                            Some(_) => {
                                DnsAnswer::records(vec!["v=STSv1; id=1".into()], Security::Insecure)
                            }
                            None => DnsAnswer::empty(Rcode::NxDomain, Security::Insecure),
                        }),
                    };
                    d.answer(id, answer).unwrap();
                }
                Request::FetchPolicy { id, .. } => {
                    let fetch = self.sts.clone().unwrap_or(PolicyFetch::Failed);
                    d.policy_fetched(id, fetch).unwrap();
                }
                Request::Connect(c) => {
                    // The plaintext retry of opportunistic TLS opens.
                    let opening = if c.plan.tls == TlsPlan::Plain {
                        opened(false)
                    } else {
                        by_ip[&c.ip].clone()
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
        d.report().unwrap()
    }
}

/// The deferral of the one recipient: its code, its reason and its text.
fn deferral(report: &Report) -> (String, Reason, String) {
    match &report.recipients[0].status {
        FinalStatus::Deferred(p) => {
            let reason = p.reason.clone().unwrap();
            (p.status.to_string(), reason.clone(), reason.to_string())
        }
        other => panic!("not deferred: {other:?}"),
    }
}

fn tls(host: &str, failure: TlsFailure) -> Reason {
    Reason::Tls {
        host: host.to_owned(),
        failure,
    }
}

/// Every cause under MTA-STS enforce (a PKIX plan): deferred 4.7.5 with
/// the cause and its text, the connection marked with it.
#[test]
fn each_cause_is_the_deferrals_reason_under_a_pkix_plan() {
    let refused = reply(454, "4.7.0 TLS not available");
    let cases: Vec<(TlsFailure, &str, TlsOutcome)> = vec![
        (
            TlsFailure::StartTlsNotOffered,
            "mx1.example.com does not offer STARTTLS, which is required",
            TlsOutcome::StartTlsNotSupported,
        ),
        (
            TlsFailure::StartTlsRefused(refused.clone()),
            "mx1.example.com refused STARTTLS, which is required: 454 4.7.0 TLS not available",
            TlsOutcome::StartTlsNotSupported,
        ),
        (
            TlsFailure::Handshake,
            "the TLS handshake with mx1.example.com failed",
            TlsOutcome::TlsFailed,
        ),
        (
            TlsFailure::CertificateExpired,
            "the certificate of mx1.example.com has expired",
            TlsOutcome::TlsFailed,
        ),
        (
            TlsFailure::CertificateNotYetValid,
            "the certificate of mx1.example.com is not valid yet",
            TlsOutcome::TlsFailed,
        ),
        (
            TlsFailure::HostMismatch,
            "the certificate of mx1.example.com is not valid for its name",
            TlsOutcome::TlsFailed,
        ),
        (
            TlsFailure::NotTrusted,
            "the certificate of mx1.example.com is not trusted",
            TlsOutcome::TlsFailed,
        ),
        (
            TlsFailure::CertificateInvalid,
            "the certificate of mx1.example.com is invalid",
            TlsOutcome::TlsFailed,
        ),
        (
            TlsFailure::Config,
            "no TLS configuration could be built here for mx1.example.com (a local fault)",
            TlsOutcome::NotOpened,
        ),
    ];
    for (cause, text, outcome) in cases {
        let report = World::one(Opening::TlsFailed(cause.clone())).run();
        let (code, reason, shown) = deferral(&report);
        assert_eq!(code, "4.7.5", "{cause:?}");
        assert_eq!(reason, tls("mx1.example.com", cause.clone()));
        assert_eq!(reason.tls_failure(), Some(&cause));
        assert!(reason.is_tls_failure());
        assert_eq!(shown, text);
        let c = &report.domains[0].connections;
        assert_eq!(c.len(), 1, "{cause:?}: no plaintext retry");
        assert!(matches!(c[0].tls, TlsPlan::Pkix { .. }));
        assert_eq!(c[0].tls_failure.as_ref(), Some(&cause));
        assert_eq!(c[0].outcome, outcome, "{cause:?}");
    }
}

/// The core's STARTTLS errors, as a driver may pass them in
/// `Opening::Failed`, are read as their causes.
#[test]
fn the_cores_starttls_errors_are_read_as_causes() {
    let refused = reply(454, "4.7.0 TLS not available");
    let cases = [
        (
            Opening::Failed(Error::StartTlsRefused(refused.clone())),
            TlsFailure::StartTlsRefused(refused),
        ),
        (
            Opening::Failed(Error::Security(SecurityError::StartTlsNotOffered)),
            TlsFailure::StartTlsNotOffered,
        ),
    ];
    for (opening, cause) in cases {
        assert_eq!(opening.tls_failure(), Some(cause.clone()));
        let report = World::one(opening).run();
        let (code, reason, _) = deferral(&report);
        assert_eq!(
            (code.as_str(), reason),
            ("4.7.5", tls("mx1.example.com", cause.clone()))
        );
        let c = &report.domains[0].connections[0];
        assert_eq!(c.tls_failure, Some(cause));
        assert_eq!(c.outcome, TlsOutcome::StartTlsNotSupported);
    }
    // Other failures carry no cause.
    assert_eq!(Opening::Failed(Error::Transport).tls_failure(), None);
    assert_eq!(Opening::Refused.tls_failure(), None);
}

/// Under DANE: no TLSA record matching, and a DANE-TA chain for another
/// name, each with its cause.
#[test]
fn dane_failures_keep_their_cause() {
    for cause in [TlsFailure::TlsaMismatch, TlsFailure::HostMismatch] {
        let mut w = World::one(Opening::TlsFailed(cause.clone()));
        w.tlsa = Some(tlsa());
        w.sts = None;
        let report = w.run();
        let (code, reason, _) = deferral(&report);
        assert_eq!(
            (code.as_str(), reason),
            ("4.7.5", tls("mx1.example.com", cause.clone()))
        );
        let c = &report.domains[0].connections[0];
        assert!(matches!(c.tls, TlsPlan::Dane { .. }));
        assert_eq!(c.tls_failure, Some(cause));
    }
    assert_eq!(
        tls("mx.dane.test", TlsFailure::TlsaMismatch).to_string(),
        "no TLSA record of mx.dane.test matches its certificate"
    );
}

/// A REQUIRETLS message: the same cause, with 5.7.10 (a bounce after the
/// last MX).
#[test]
fn a_requiretls_message_bounces_with_the_cause() {
    let mut w = World::one(Opening::TlsFailed(TlsFailure::CertificateExpired));
    w.message.requiretls = true;
    let report = w.run();
    match &report.recipients[0].status {
        FinalStatus::Bounced(p) => {
            assert_eq!(p.status.to_string(), "5.7.10");
            assert_eq!(
                p.reason,
                Some(tls("mx1.example.com", TlsFailure::CertificateExpired))
            );
        }
        other => panic!("{other:?}"),
    }
}

/// The first MX's certificate expired, the second delivers: the first
/// connection keeps the cause.
#[test]
fn a_failed_mx_keeps_its_cause_when_the_next_delivers() {
    let w = World {
        mx: vec![
            (
                "mx1.example.com",
                "192.0.2.1",
                Opening::TlsFailed(TlsFailure::CertificateExpired),
            ),
            ("mx2.example.com", "192.0.2.2", opened(true)),
        ],
        ..World::one(opened(true))
    };
    let report = w.run();
    assert_eq!(report.recipients[0].status.class(), Class::Delivered);
    let c = &report.domains[0].connections;
    assert_eq!(c[0].tls_failure, Some(TlsFailure::CertificateExpired));
    assert_eq!(c[1].tls_failure, None);
    assert_eq!(c[1].outcome, TlsOutcome::Tls);
}

/// Opportunistic TLS: a failed handshake is retried in plaintext, the
/// failed connection keeping its cause.
#[test]
fn opportunistic_tls_keeps_the_cause_of_the_failed_handshake() {
    let mut w = World::one(Opening::TlsFailed(TlsFailure::Handshake));
    w.sts = None;
    let report = w.run();
    assert_eq!(report.recipients[0].status.class(), Class::Delivered);
    let c = &report.domains[0].connections;
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].tls, TlsPlan::Opportunistic);
    assert_eq!(c[0].tls_failure, Some(TlsFailure::Handshake));
    assert_eq!(
        (c[1].tls.clone(), c[1].tls_failure.clone()),
        (TlsPlan::Plain, None)
    );
}

/// A policy host whose certificate did not verify is a fetch error of its
/// own.
#[test]
fn a_policy_hosts_certificate_failure_is_its_own_fetch_error() {
    let mut w = World::one(opened(true));
    w.sts = Some(PolicyFetch::CertificateInvalid);
    let report = w.run();
    assert_eq!(report.recipients[0].status.class(), Class::Delivered);
    assert_eq!(
        report.domains[0].notices,
        [smtp_mx::engine::Notice::StsFetchFailed(
            FetchError::Certificate
        )]
    );
    assert_eq!(
        FetchError::Certificate.to_string(),
        "the policy host's certificate did not verify (WebPKI)"
    );
}

/// The result type of each session (feature `tlsrpt`).
#[cfg(feature = "tlsrpt")]
mod tlsrpt {
    use smtp_mx::tlsrpt::{PolicyType, ResultType, events};

    use super::*;

    /// The (policy type, result type) of each event of `w`'s delivery.
    fn results(w: &World) -> Vec<(PolicyType, Option<ResultType>)> {
        let report = w.run();
        events(&report.domains[0])
            .into_iter()
            .map(|e| (e.policy.policy_type, e.failure))
            .collect()
    }

    #[test]
    fn each_cause_gives_its_result_type_once() {
        use ResultType as R;
        let refused = reply(454, "4.7.0 TLS not available");
        let cases = [
            (TlsFailure::StartTlsNotOffered, R::StarttlsNotSupported),
            (
                TlsFailure::StartTlsRefused(refused),
                R::StarttlsNotSupported,
            ),
            (TlsFailure::Handshake, R::ValidationFailure),
            (TlsFailure::CertificateExpired, R::CertificateExpired),
            (TlsFailure::CertificateNotYetValid, R::ValidationFailure),
            (TlsFailure::HostMismatch, R::CertificateHostMismatch),
            (TlsFailure::NotTrusted, R::CertificateNotTrusted),
            (TlsFailure::CertificateInvalid, R::ValidationFailure),
        ];
        for (cause, result) in cases {
            let w = World::one(Opening::TlsFailed(cause.clone()));
            assert_eq!(
                results(&w),
                [(PolicyType::Sts, Some(result.clone()))],
                "{cause:?}"
            );
            assert_eq!(ResultType::of_tls_failure(&cause), Some(result));
        }
        // A local fault is no session.
        let w = World::one(Opening::TlsFailed(TlsFailure::Config));
        assert_eq!(results(&w), []);
        assert_eq!(ResultType::of_tls_failure(&TlsFailure::Config), None);
    }

    #[test]
    fn dane_causes_give_tlsa_results() {
        for (cause, result) in [
            (TlsFailure::TlsaMismatch, ResultType::TlsaInvalid),
            (
                TlsFailure::HostMismatch,
                ResultType::CertificateHostMismatch,
            ),
            (
                TlsFailure::StartTlsNotOffered,
                ResultType::StarttlsNotSupported,
            ),
        ] {
            let mut w = World::one(Opening::TlsFailed(cause));
            w.tlsa = Some(tlsa());
            assert_eq!(results(&w), [(PolicyType::Tlsa, Some(result))]);
        }
    }

    /// A failed policy fetch: each session of the domain is reported
    /// under an `sts` policy with the fetch's result type, however TLS
    /// went; a session under DANE is reported under its TLSA policy.
    #[test]
    fn a_failed_policy_fetch_is_reported_by_its_sessions() {
        let fetches = [
            (PolicyFetch::Failed, ResultType::StsPolicyFetchError),
            (
                PolicyFetch::Response {
                    status: 404,
                    content_type: Some("text/plain".into()),
                    body: Vec::new(),
                },
                ResultType::StsPolicyFetchError,
            ),
            (
                PolicyFetch::Response {
                    status: 200,
                    content_type: Some("text/plain".into()),
                    body: b"version: STSv1\nmode: sometimes\n".to_vec(),
                },
                ResultType::StsPolicyInvalid,
            ),
            (
                PolicyFetch::Response {
                    status: 200,
                    content_type: Some("text/html".into()),
                    body: ENFORCE.as_bytes().to_vec(),
                },
                ResultType::StsPolicyInvalid,
            ),
            (
                PolicyFetch::CertificateInvalid,
                ResultType::StsWebpkiInvalid,
            ),
        ];
        for (fetch, result) in fetches {
            let mut w = World::one(opened(true));
            w.sts = Some(fetch.clone());
            assert_eq!(
                results(&w),
                [(PolicyType::Sts, Some(result.clone()))],
                "{fetch:?}"
            );
            w.tlsa = Some(tlsa());
            assert_eq!(results(&w), [(PolicyType::Tlsa, None)], "{fetch:?}");
        }
        // No `_mta-sts` record: no fetch, no policy.
        let mut w = World::one(opened(true));
        w.sts = None;
        assert_eq!(results(&w), [(PolicyType::NoPolicyFound, None)]);
    }
}
