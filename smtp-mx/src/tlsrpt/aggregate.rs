//! Result events from a delivery's report, and their aggregation per
//! policy (RFC 8460 section 4).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{
    DateRange, FailureDetails, PolicyDetails, PolicyReport, PolicyType, ResultType, Summary,
    TlsReport,
};
use crate::engine::{DomainReport, Notice, Report, TlsOutcome};
use crate::failure::{Reason, TlsFailure};
use crate::plan::TlsPlan;
use crate::sts::{FetchError, Mode, Policy};

/// One session's result: the policy applied and how TLS went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultEvent {
    /// The recipient domain (the report goes to its `_smtp._tls` record).
    pub domain: String,
    /// The policy applied.
    pub policy: PolicyDetails,
    /// The MX host.
    pub mx_host: String,
    /// Its address.
    pub ip: IpAddr,
    /// `None` for a success, else what failed.
    pub failure: Option<ResultType>,
}

/// The policy text of an MTA-STS policy, line by line.
fn sts_lines(policy: &Policy) -> Vec<String> {
    let mode = match policy.mode {
        Mode::Enforce => "enforce",
        Mode::Testing => "testing",
        Mode::None => "none",
    };
    let mut lines = vec!["version: STSv1".to_owned(), format!("mode: {mode}")];
    lines.extend(policy.mx.iter().map(|p| format!("mx: {p}")));
    lines.push(format!("max_age: {}", policy.max_age));
    lines
}

/// The policy of a destination's connection with `plan` to `host`: TLSA
/// records for a DANE plan (DANE beats MTA-STS), else its MTA-STS policy
/// unless that is `none`, else none found.
fn policy_for(report: &DomainReport, plan: Option<&TlsPlan>, host: &str) -> PolicyDetails {
    let domain = Some(report.destination.clone());
    if let Some(TlsPlan::Dane { tlsa, .. }) = plan {
        let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        return PolicyDetails {
            policy_type: PolicyType::Tlsa,
            policy_string: tlsa
                .iter()
                .map(|t| format!("{} {} {} {}", t.usage, t.selector, t.matching, hex(&t.data)))
                .collect(),
            policy_domain: domain,
            mx_host: vec![host.to_owned()],
        };
    }
    match &report.sts_policy {
        Some(p) if p.mode != Mode::None => PolicyDetails {
            policy_type: PolicyType::Sts,
            policy_string: sts_lines(p),
            policy_domain: domain,
            mx_host: p.mx.iter().map(ToString::to_string).collect(),
        },
        _ => PolicyDetails {
            policy_type: PolicyType::NoPolicyFound,
            policy_string: Vec::new(),
            policy_domain: domain,
            mx_host: Vec::new(),
        },
    }
}

impl ResultType {
    /// The result type of a session whose TLS failed for `cause` (RFC 8460
    /// section 4.3): STARTTLS not offered or refused is
    /// `starttls-not-supported`; a certificate expired, not for the host
    /// or not trusted has its own type; no TLSA record matching is
    /// `tlsa-invalid`; any other failure of the handshake or the
    /// certificate (a certificate not valid yet included) is
    /// `validation-failure`. `None` for [`TlsFailure::Config`], a local
    /// fault with no session.
    #[must_use]
    pub fn of_tls_failure(cause: &TlsFailure) -> Option<ResultType> {
        Some(match cause {
            TlsFailure::StartTlsNotOffered | TlsFailure::StartTlsRefused(_) => {
                ResultType::StarttlsNotSupported
            }
            TlsFailure::CertificateExpired => ResultType::CertificateExpired,
            TlsFailure::HostMismatch => ResultType::CertificateHostMismatch,
            TlsFailure::NotTrusted => ResultType::CertificateNotTrusted,
            TlsFailure::TlsaMismatch => ResultType::TlsaInvalid,
            TlsFailure::Config => return None,
            _ => ResultType::ValidationFailure,
        })
    }

    /// The result type of a failed MTA-STS policy fetch (RFC 8460 section
    /// 4.3.2.2): the policy host's certificate not verifying is
    /// `sts-webpki-invalid`; a body that came and is not a valid policy
    /// (its media type, its size, its text) is `sts-policy-invalid`; no
    /// response, a redirect or another status than 200 is
    /// `sts-policy-fetch-error`.
    #[must_use]
    pub fn of_fetch_error(error: &FetchError) -> ResultType {
        match error {
            FetchError::Certificate => ResultType::StsWebpkiInvalid,
            FetchError::ContentType(_) | FetchError::TooLarge | FetchError::Policy(_) => {
                ResultType::StsPolicyInvalid
            }
            _ => ResultType::StsPolicyFetchError,
        }
    }
}

/// The failed policy fetch of a destination that applied no MTA-STS
/// policy: its result type, if there was one.
fn fetch_failure(report: &DomainReport) -> Option<ResultType> {
    if report.sts_policy.is_some() {
        return None;
    }
    report.notices.iter().rev().find_map(|n| match n {
        Notice::StsFetchFailed(e) => Some(ResultType::of_fetch_error(e)),
        _ => None,
    })
}

/// The result events of one destination of a delivery (see the
/// [module](super) for what counts): one per TLS session, in the order
/// of the connections, then one per attempt the policy refused.
#[must_use]
pub fn events(report: &DomainReport) -> Vec<ResultEvent> {
    // An address literal has no policy domain.
    if report.destination.starts_with('[') {
        return Vec::new();
    }
    let fetch = fetch_failure(report);
    let mut out = Vec::new();
    for c in &report.connections {
        let failed = |cause: &Option<TlsFailure>, default: ResultType| {
            cause
                .as_ref()
                .and_then(ResultType::of_tls_failure)
                .unwrap_or(default)
        };
        let failure = match (c.tls == TlsPlan::Plain, c.outcome) {
            (true, _) | (_, TlsOutcome::Pending | TlsOutcome::NotOpened) => continue,
            (false, TlsOutcome::Tls) => None,
            (false, TlsOutcome::Plaintext | TlsOutcome::StartTlsNotSupported) => {
                Some(failed(&c.tls_failure, ResultType::StarttlsNotSupported))
            }
            (false, TlsOutcome::TlsFailed) => {
                Some(failed(&c.tls_failure, ResultType::ValidationFailure))
            }
        };
        let dane = matches!(c.tls, TlsPlan::Dane { .. });
        let (policy, failure) = match &fetch {
            // The domain has an MTA-STS record and its policy could not be
            // had: the session failed that policy, however TLS went.
            Some(result) if !dane => (fetch_policy(report), Some(result.clone())),
            _ => (policy_for(report, Some(&c.tls), &c.host), failure),
        };
        out.push(ResultEvent {
            domain: report.destination.clone(),
            policy,
            mx_host: c.host.clone(),
            ip: c.ip,
            failure,
        });
    }
    for n in &report.notices {
        let Notice::Skipped { host, ip, failure } = n else {
            continue;
        };
        let (policy, result) = match failure.reason {
            Reason::StsMxMismatch => (
                policy_for(report, None, host),
                ResultType::ValidationFailure,
            ),
            Reason::DaneRequired => (policy_for(report, None, host), ResultType::DaneRequired),
            Reason::TlsaLookupFailed => (
                PolicyDetails {
                    policy_type: PolicyType::Tlsa,
                    policy_string: Vec::new(),
                    policy_domain: Some(report.destination.clone()),
                    mx_host: vec![host.clone()],
                },
                ResultType::DnssecInvalid,
            ),
            _ => continue,
        };
        out.push(ResultEvent {
            domain: report.destination.clone(),
            policy,
            mx_host: host.clone(),
            ip: *ip,
            failure: Some(result),
        });
    }
    out
}

/// The policy of a destination whose MTA-STS policy could not be had: an
/// `sts` policy with no text and no MX patterns.
fn fetch_policy(report: &DomainReport) -> PolicyDetails {
    PolicyDetails {
        policy_type: PolicyType::Sts,
        policy_string: Vec::new(),
        policy_domain: Some(report.destination.clone()),
        mx_host: Vec::new(),
    }
}

/// The counts of one policy.
#[derive(Debug, Clone, Default)]
struct Counts {
    summary: Summary,
    /// Failed sessions by (result type, MX host, address).
    failures: BTreeMap<(ResultType, String, IpAddr), u64>,
}

/// What a report says of its sender and period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportMeta {
    /// The reporting organisation.
    pub organization_name: String,
    /// Whom to contact.
    pub contact_info: String,
    /// The report's unique id.
    pub report_id: String,
    /// The start of the period, in seconds since the Unix epoch.
    pub start: u64,
    /// Its end.
    pub end: u64,
}

/// Counts result events per recipient domain and policy.
#[derive(Debug, Clone, Default)]
pub struct Aggregator {
    sending_mta_ip: Option<IpAddr>,
    domains: BTreeMap<String, BTreeMap<PolicyDetails, Counts>>,
}

impl Aggregator {
    /// An empty aggregator; `sending_mta_ip` is written into each failure
    /// detail when given.
    #[must_use]
    pub fn new(sending_mta_ip: Option<IpAddr>) -> Aggregator {
        Aggregator {
            sending_mta_ip,
            domains: BTreeMap::new(),
        }
    }

    /// Counts one event.
    pub fn add_event(&mut self, event: &ResultEvent) {
        let counts = self
            .domains
            .entry(event.domain.clone())
            .or_default()
            .entry(event.policy.clone())
            .or_default();
        match &event.failure {
            None => counts.summary.total_successful_session_count += 1,
            Some(r) => {
                counts.summary.total_failure_session_count += 1;
                *counts
                    .failures
                    .entry((r.clone(), event.mx_host.clone(), event.ip))
                    .or_default() += 1;
            }
        }
    }

    /// Counts the events of every destination of a delivery's report.
    pub fn add_report(&mut self, report: &Report) {
        for d in &report.domains {
            for e in events(d) {
                self.add_event(&e);
            }
        }
    }

    /// The recipient domains with events.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.domains.keys().map(String::as_str)
    }

    /// The aggregate report for `domain`, if it has events.
    #[must_use]
    pub fn report(&self, domain: &str, meta: &ReportMeta) -> Option<TlsReport> {
        let policies = self.domains.get(domain)?;
        let sending = self.sending_mta_ip.map(|ip| ip.to_string());
        let policies = policies
            .iter()
            .map(|(policy, counts)| PolicyReport {
                policy: policy.clone(),
                summary: counts.summary,
                failure_details: counts
                    .failures
                    .iter()
                    .map(|((result, host, ip), n)| FailureDetails {
                        result_type: result.clone(),
                        sending_mta_ip: sending.clone(),
                        receiving_mx_hostname: Some(host.clone()),
                        receiving_mx_helo: None,
                        receiving_ip: Some(ip.to_string()),
                        failed_session_count: *n,
                        additional_information: None,
                        failure_reason_code: None,
                    })
                    .collect(),
            })
            .collect();
        Some(TlsReport {
            organization_name: meta.organization_name.clone(),
            date_range: DateRange {
                start_datetime: rfc3339(meta.start),
                end_datetime: rfc3339(meta.end),
            },
            contact_info: meta.contact_info.clone(),
            report_id: meta.report_id.clone(),
            policies,
        })
    }
}

/// `unix` seconds as an RFC 3339 date-time in UTC (`2016-04-01T00:00:00Z`).
#[must_use]
pub fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}
