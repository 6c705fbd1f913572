//! Why required TLS failed, end to end: each cause a testkit server can
//! give (an expired certificate, one not valid yet, one for another name,
//! one from an untrusted CA, STARTTLS not offered, STARTTLS refused with
//! 454, no TLSA record matching), the deferral's reason and text, the
//! connection's cause, and the TLS-RPT result type and counts of the
//! delivery; and the failed MTA-STS policy fetches TLS-RPT reports.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::UnixTime;
use rustls::{ClientConfig, RootCertStore};
use sha2::Digest;
use smtp_adapter::mx::smtp_mx::engine::TlsOutcome;
use smtp_adapter::mx::smtp_mx::tlsrpt::{Aggregator, PolicyType, ReportMeta, ResultType};
use smtp_adapter::mx::smtp_mx::{Reason, TlsFailure};
use smtp_adapter::mx::{
    Class, FinalStatus, MxRecord, PolicyFetch, Report, Security, StaticPolicyFetcher,
    StaticResolver, Tlsa,
};
use smtp_adapter::sansio::Reply;
use smtp_testkit::{MockServer, Script, ServerConfig, ServerTls, TestPki};

use super::{Driver, MSG, envelope, ip, saw_mail_from, server_on, setup};

/// The sending address written into the reports.
const SENDER_IP: &str = "192.0.2.99";

/// A clock for certificate verification that says `at`.
#[derive(Debug)]
struct Clock(UnixTime);

impl rustls::time_provider::TimeProvider for Clock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

/// A PKIX configuration trusting `ca` (DER), verifying certificates at
/// `at` seconds since the epoch (`None`: now).
fn pkix(ca: &rustls::pki_types::CertificateDer<'static>, at: Option<u64>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let builder = match at {
        Some(secs) => {
            let clock = Clock(UnixTime::since_unix_epoch(Duration::from_secs(secs)));
            ClientConfig::builder_with_details(provider, Arc::new(clock))
        }
        None => ClientConfig::builder_with_provider(provider),
    };
    Arc::new(
        builder
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// The testkit's certificates are valid from 1975 to 4096 (rcgen's
/// defaults): a clock in 4188 finds them expired, one in 1971 not valid
/// yet.
const AFTER_4096: u64 = 70_000_000_000;
const IN_1971: u64 = 40_000_000;

/// The deferral of recipient 0: its code, reason and text.
fn deferral(report: &Report) -> (String, Reason, String) {
    match &report.recipients[0].status {
        FinalStatus::Deferred(p) => {
            let reason = p.reason.clone().expect("a reason");
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

/// The TLS-RPT report of `domain` after `report`: its one policy's type,
/// its success and failure counts, and its failure details (result type,
/// sending address, MX host, MX address, count).
type Rpt = (
    PolicyType,
    u64,
    u64,
    Vec<(ResultType, String, String, String, u64)>,
);

fn rpt(report: &Report, domain: &str) -> Rpt {
    let mut agg = Aggregator::new(Some(SENDER_IP.parse().unwrap()));
    agg.add_report(report);
    let meta = ReportMeta {
        organization_name: "sender.test".into(),
        contact_info: "tlsrpt@sender.test".into(),
        report_id: "1".into(),
        start: 0,
        end: 86_400,
    };
    let r = agg.report(domain, &meta).expect("a report for the domain");
    assert_eq!(r.policies.len(), 1, "{r:?}");
    let p = &r.policies[0];
    let details = p
        .failure_details
        .iter()
        .map(|f| {
            (
                f.result_type.clone(),
                f.sending_mta_ip.clone().unwrap_or_default(),
                f.receiving_mx_hostname.clone().unwrap_or_default(),
                f.receiving_ip.clone().unwrap_or_default(),
                f.failed_session_count,
            )
        })
        .collect();
    (
        p.policy.policy_type.clone(),
        p.summary.total_successful_session_count,
        p.summary.total_failure_session_count,
        details,
    )
}

/// One failed session of `result` to `host` at `at`.
fn one_failure(policy: PolicyType, result: ResultType, host: &str, at: IpAddr) -> Rpt {
    (
        policy,
        0,
        1,
        vec![(
            result,
            SENDER_IP.to_owned(),
            host.to_owned(),
            at.to_string(),
            1,
        )],
    )
}

/// The domain `sts.test` under an MTA-STS policy in enforce mode for
/// `*.sts.test` and `localhost`, its one MX `host` at 127.0.0.`last`
/// served by `server`; the client's PKIX configuration is `pkix` of the
/// server's certificates.
fn sts_case(
    d: impl Driver,
    (host, last): (&str, u8),
    server: ServerConfig,
    pkix: impl FnOnce(&TestPki) -> Arc<ClientConfig>,
) -> Report {
    const POLICY: &str =
        "version: STSv1\nmode: enforce\nmx: *.sts.test\nmx: localhost\nmax_age: 86400\n";
    let mx = server_on(ip(last), server);
    let resolver = StaticResolver::new()
        .mx("sts.test", &[MxRecord::new(10, host)], Security::Insecure)
        .address(host, &[ip(last)], Security::Insecure)
        .txt("_mta-sts.sts.test", &["v=STSv1; id=7;"], Security::Insecure);
    let fetcher = StaticPolicyFetcher::new().policy("sts.test", POLICY);
    let mut c = setup(resolver, fetcher, &[(ip(last), mx.addr().port())]);
    c.pkix = Some(pkix(mx.pki()));
    let report = d.deliver(&c, &envelope(&["b@sts.test"]), MSG);
    mx.wait_for_closed(1, Duration::from_secs(5));
    assert_eq!(mx.connections(), 1);
    assert!(!saw_mail_from(&mx), "{:?}", mx.transcript());
    assert!(mx.messages().is_empty());
    report
}

/// The domain `dane.test`, DNSSEC-signed, its one MX `mx.dane.test` at
/// 127.0.0.`last` served by `server`, publishing `3 1 1` of `key` (the
/// SHA-256 of a public key; `None`: the server's own).
fn dane_case(d: impl Driver, last: u8, server: ServerConfig, key: Option<Vec<u8>>) -> Report {
    let mx = server_on(ip(last), server);
    let data = key.unwrap_or_else(|| {
        let cert = mx.pki().server_cert_der();
        let spki = smtp_adapter::mx::smtp_mx::dane::subject_public_key_info(cert).unwrap();
        sha2::Sha256::digest(spki).to_vec()
    });
    let tlsa = Tlsa {
        usage: 3,
        selector: 1,
        matching: 1,
        data,
    };
    let resolver = StaticResolver::new()
        .mx(
            "dane.test",
            &[MxRecord::new(10, "mx.dane.test")],
            Security::Secure,
        )
        .address("mx.dane.test", &[ip(last)], Security::Secure)
        .tlsa("_25._tcp.mx.dane.test", &[tlsa], Security::Secure);
    let c = setup(
        resolver,
        StaticPolicyFetcher::new(),
        &[(ip(last), mx.addr().port())],
    );
    let report = d.deliver(&c, &envelope(&["b@dane.test"]), MSG);
    mx.wait_for_closed(1, Duration::from_secs(5));
    assert_eq!(mx.connections(), 1);
    assert!(!saw_mail_from(&mx), "{:?}", mx.transcript());
    report
}

/// Checks a delivery that failed once at TLS for `cause` with `host` at
/// 127.0.0.`last`: deferred 4.7.5 with the cause and `text`, the
/// connection marked, and one failed session of `result` under `policy`.
fn check(
    report: &Report,
    (host, last): (&str, u8),
    (cause, text): (TlsFailure, &str),
    (policy, result): (PolicyType, ResultType),
) {
    let (code, reason, shown) = deferral(report);
    assert_eq!(code, "4.7.5");
    assert_eq!(reason, tls(host, cause.clone()));
    assert_eq!(shown, text);
    let c = &report.domains[0].connections;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].tls_failure.as_ref(), Some(&cause));
    let outcome = if cause.is_starttls() {
        TlsOutcome::StartTlsNotSupported
    } else {
        TlsOutcome::TlsFailed
    };
    assert_eq!(c[0].outcome, outcome);
    let domain = report.domains[0].destination.clone();
    assert_eq!(
        rpt(report, &domain),
        one_failure(policy, result, host, ip(last))
    );
}

fn starttls() -> ServerConfig {
    ServerConfig::default().tls(ServerTls::StartTls)
}

pub fn sts_expired(d: impl Driver) {
    let report = sts_case(d, ("localhost", 30), starttls(), |pki| {
        pkix(pki.ca_der(), Some(AFTER_4096))
    });
    check(
        &report,
        ("localhost", 30),
        (
            TlsFailure::CertificateExpired,
            "the certificate of localhost has expired",
        ),
        (PolicyType::Sts, ResultType::CertificateExpired),
    );
}

pub fn sts_not_yet_valid(d: impl Driver) {
    let report = sts_case(d, ("localhost", 31), starttls(), |pki| {
        pkix(pki.ca_der(), Some(IN_1971))
    });
    check(
        &report,
        ("localhost", 31),
        (
            TlsFailure::CertificateNotYetValid,
            "the certificate of localhost is not valid yet",
        ),
        (PolicyType::Sts, ResultType::ValidationFailure),
    );
}

/// The MX `mx.sts.test` presents the testkit's certificate, for
/// `localhost`.
pub fn sts_wrong_name(d: impl Driver) {
    let report = sts_case(d, ("mx.sts.test", 32), starttls(), |pki| {
        pkix(pki.ca_der(), None)
    });
    check(
        &report,
        ("mx.sts.test", 32),
        (
            TlsFailure::HostMismatch,
            "the certificate of mx.sts.test is not valid for its name",
        ),
        (PolicyType::Sts, ResultType::CertificateHostMismatch),
    );
}

/// The client trusts another CA than the server's.
pub fn sts_untrusted_ca(d: impl Driver) {
    let other = TestPki::generate().unwrap();
    let report = sts_case(d, ("localhost", 33), starttls(), |_| {
        pkix(other.ca_der(), None)
    });
    check(
        &report,
        ("localhost", 33),
        (
            TlsFailure::NotTrusted,
            "the certificate of localhost is not trusted",
        ),
        (PolicyType::Sts, ResultType::CertificateNotTrusted),
    );
}

/// STARTTLS offered and refused with 454 under MTA-STS enforce.
pub fn sts_starttls_454(d: impl Driver) {
    let script = Script::new(Vec::new())
        .send("220 localhost ESMTP")
        .expect_line()
        .send("250-localhost\r\n250 STARTTLS")
        .expect_line()
        .send("454 4.7.0 TLS not available due to temporary reason")
        .expect_line()
        .send("221 2.0.0 bye");
    let report = sts_case(
        d,
        ("localhost", 34),
        ServerConfig::scripted(script),
        |pki| pkix(pki.ca_der(), None),
    );
    let reply = Reply::new(
        454,
        vec!["4.7.0 TLS not available due to temporary reason".into()],
    );
    check(
        &report,
        ("localhost", 34),
        (
            TlsFailure::StartTlsRefused(reply),
            "localhost refused STARTTLS, which is required: 454 4.7.0 TLS not available due \
             to temporary reason",
        ),
        (PolicyType::Sts, ResultType::StarttlsNotSupported),
    );
}

/// A DANE MX that does not offer STARTTLS.
pub fn dane_no_starttls(d: impl Driver) {
    let report = dane_case(d, 35, ServerConfig::default(), Some(vec![0x5a; 32]));
    check(
        &report,
        ("mx.dane.test", 35),
        (
            TlsFailure::StartTlsNotOffered,
            "mx.dane.test does not offer STARTTLS, which is required",
        ),
        (PolicyType::Tlsa, ResultType::StarttlsNotSupported),
    );
}

/// A DANE MX whose certificate no TLSA record matches.
pub fn dane_tlsa_mismatch(d: impl Driver) {
    let report = dane_case(d, 36, starttls(), Some(vec![0x5a; 32]));
    check(
        &report,
        ("mx.dane.test", 36),
        (
            TlsFailure::TlsaMismatch,
            "no TLSA record of mx.dane.test matches its certificate",
        ),
        (PolicyType::Tlsa, ResultType::TlsaInvalid),
    );
}

/// Three domains with an MTA-STS record whose policy cannot be had: no
/// response, a body that is not a policy, a policy host whose certificate
/// did not verify. Each delivers over opportunistic TLS, and TLS-RPT
/// reports its session under an `sts` policy with the fetch's result type.
pub fn sts_policy_fetch_failures(d: impl Driver) {
    let cases = [
        ("down.test", 37, ResultType::StsPolicyFetchError),
        ("invalid.test", 38, ResultType::StsPolicyInvalid),
        ("webpki.test", 39, ResultType::StsWebpkiInvalid),
    ];
    let servers: Vec<MockServer> = cases
        .iter()
        .map(|(_, last, _)| server_on(ip(*last), starttls()))
        .collect();
    let mut resolver = StaticResolver::new();
    for (domain, last, _) in &cases {
        let host = format!("mx.{domain}");
        resolver = resolver
            .mx(domain, &[MxRecord::new(10, &host)], Security::Insecure)
            .address(&host, &[ip(*last)], Security::Insecure)
            .txt(
                &format!("_mta-sts.{domain}"),
                &["v=STSv1; id=1;"],
                Security::Insecure,
            );
    }
    let fetcher = StaticPolicyFetcher::new()
        .policy("invalid.test", "version: STSv1\nmode: sometimes\n")
        .response(
            &smtp_adapter::mx::smtp_mx::sts::policy_url("webpki.test"),
            PolicyFetch::CertificateInvalid,
        );
    let ports: Vec<_> = cases
        .iter()
        .zip(&servers)
        .map(|((_, last, _), s)| (ip(*last), s.addr().port()))
        .collect();
    let c = setup(resolver, fetcher, &ports);
    let to = ["a@down.test", "b@invalid.test", "c@webpki.test"];
    let report = d.deliver(&c, &envelope(&to), MSG);
    for (k, (domain, last, result)) in cases.iter().enumerate() {
        assert_eq!(report.recipients[k].status.class(), Class::Delivered);
        let got = servers[k].wait_for_messages(1, Duration::from_secs(5));
        assert!(got[0].tls, "{domain}: opportunistic TLS");
        let host = format!("mx.{domain}");
        let (policy, ok, failed, details) = rpt(&report, domain);
        assert_eq!(
            (policy, ok, failed, details),
            one_failure(PolicyType::Sts, result.clone(), &host, ip(*last)),
            "{domain}"
        );
    }
}
