//! SMTP TLS Reporting (RFC 8460, feature `tlsrpt`): the `_smtp._tls` TXT
//! record ([`parse_record`]), the aggregate report's JSON types
//! ([`TlsReport`], section 4.4), the result types of section 4.3
//! ([`ResultType`]), the result events a delivery's
//! [`DomainReport`](crate::engine::DomainReport) holds ([`events`]), and an
//! [`Aggregator`] that counts them per policy into a report.
//!
//! What counts as a session: a connection whose TLS plan was not plain
//! and which opened (or failed its STARTTLS or handshake); a connection
//! refused, timed out or turned away before TLS came into question is no
//! TLS session, nor is one never made because the TLS configuration could
//! not be built here. An attempt the policy refused before connecting (an
//! MX host outside an MTA-STS policy, DANE required without usable TLSA
//! records, a failed TLSA lookup) is a failed session. Each session counts
//! once.
//!
//! A failed session's result type comes from the cause the driver told
//! ([`ResultType::of_tls_failure`]): `starttls-not-supported`,
//! `certificate-expired`, `certificate-host-mismatch`,
//! `certificate-not-trusted`, `tlsa-invalid` (under DANE, no TLSA record
//! matches), `validation-failure` (the rest); `dnssec-invalid` for a
//! failed TLSA lookup and `dane-required` come from the policy's refusals.
//!
//! A destination with an MTA-STS record whose policy fetch failed, and
//! with no cached policy to apply, reports each of its sessions (but those
//! under DANE, which beats MTA-STS) as failed under an `sts` policy with no
//! text, with the fetch's result type ([`ResultType::of_fetch_error`]):
//! `sts-policy-fetch-error`, `sts-policy-invalid` or `sts-webpki-invalid`.
//! A fetch that failed while a fresh cached policy applied is not
//! reported: the sessions are counted under that policy.

use serde::{Deserialize, Serialize};

mod aggregate;
mod record;

pub use aggregate::{Aggregator, ReportMeta, ResultEvent, events, rfc3339};
pub use record::{RecordError, ReportUri, TlsRptRecord, parse_record, record_name, select_record};

/// An aggregate report (RFC 8460 section 4.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TlsReport {
    /// The reporting organisation.
    pub organization_name: String,
    /// The period covered.
    pub date_range: DateRange,
    /// Whom to contact about the report.
    pub contact_info: String,
    /// The report's unique id.
    pub report_id: String,
    /// One entry per policy applied.
    pub policies: Vec<PolicyReport>,
}

impl TlsReport {
    /// The report as JSON.
    ///
    /// # Errors
    ///
    /// serde_json's (not expected: every field is a string, a number or a
    /// list of them).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// A report from its JSON.
    ///
    /// # Errors
    ///
    /// serde_json's, for malformed JSON or a missing required field.
    pub fn from_json(json: &str) -> Result<TlsReport, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// The period a report covers (RFC 3339 date-times).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DateRange {
    /// The start.
    pub start_datetime: String,
    /// The end.
    pub end_datetime: String,
}

/// The sessions under one policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyReport {
    /// The policy.
    pub policy: PolicyDetails,
    /// The counts.
    pub summary: Summary,
    /// The failures, grouped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure_details: Vec<FailureDetails>,
}

/// A policy as a report names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyDetails {
    /// Its type.
    pub policy_type: PolicyType,
    /// Its text: the MTA-STS policy's lines, or the TLSA records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_string: Vec<String>,
    /// The domain the policy is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_domain: Option<String>,
    /// The MX patterns of an MTA-STS policy, or the MX host of a TLSA one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mx_host: Vec<String>,
}

/// The session counts of a policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Summary {
    /// Sessions that negotiated TLS as the policy asked.
    #[serde(default)]
    pub total_successful_session_count: u64,
    /// Sessions that failed.
    #[serde(default)]
    pub total_failure_session_count: u64,
}

/// Failed sessions of one kind, to one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FailureDetails {
    /// What failed.
    pub result_type: ResultType,
    /// The sender's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_mta_ip: Option<String>,
    /// The MX host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiving_mx_hostname: Option<String>,
    /// The name the MX gave in its greeting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiving_mx_helo: Option<String>,
    /// The MX's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiving_ip: Option<String>,
    /// How many sessions failed so.
    pub failed_session_count: u64,
    /// A URI or text with more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_information: Option<String>,
    /// The implementation's own code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason_code: Option<String>,
}

/// Generates an enum of names with an `Other` for unknown ones, carried
/// through JSON as its string.
macro_rules! named {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A name this crate does not know, as sent.
            Other(String),
        }

        impl $name {
            /// The name as a report writes it.
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> $name {
                match s.as_str() {
                    $($text => $name::$variant,)*
                    _ => $name::Other(s),
                }
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_owned()
            }
        }
    };
}

named! {
    /// A policy type (RFC 8460 section 4.4).
    PolicyType {
        /// An MTA-STS policy.
        Sts = "sts",
        /// DANE TLSA records.
        Tlsa = "tlsa",
        /// Neither.
        NoPolicyFound = "no-policy-found",
    }
}

named! {
    /// A failure's result type (RFC 8460 section 4.3).
    ResultType {
        /// The server does not offer STARTTLS.
        StarttlsNotSupported = "starttls-not-supported",
        /// The certificate is not for the MX host.
        CertificateHostMismatch = "certificate-host-mismatch",
        /// The certificate expired.
        CertificateExpired = "certificate-expired",
        /// The certificate is not trusted.
        CertificateNotTrusted = "certificate-not-trusted",
        /// Another failure to validate (the handshake, the chain, the MX
        /// host against an MTA-STS policy).
        ValidationFailure = "validation-failure",
        /// No TLSA record is valid.
        TlsaInvalid = "tlsa-invalid",
        /// No valid DNSSEC answer came.
        DnssecInvalid = "dnssec-invalid",
        /// DANE is required and the host has no usable TLSA record.
        DaneRequired = "dane-required",
        /// The MTA-STS policy could not be fetched.
        StsPolicyFetchError = "sts-policy-fetch-error",
        /// The MTA-STS policy is invalid.
        StsPolicyInvalid = "sts-policy-invalid",
        /// The policy host's certificate did not validate.
        StsWebpkiInvalid = "sts-webpki-invalid",
    }
}
