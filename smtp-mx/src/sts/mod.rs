//! MTA-STS (RFC 8461): the `_mta-sts` TXT record, the policy body, MX
//! pattern matching, and a serialisable policy cache.
//!
//! Parsing follows the ABNF of RFC 8461 sections 3.1 and 3.2 strictly
//! (field names and keywords are case-sensitive; an unknown field is
//! ignored only if it is well formed), with two tolerances stated here:
//! blank lines in a policy are skipped, and a `max_age` over the RFC's
//! bound of 31,557,600 seconds is cut to that bound rather than voiding the
//! policy (voiding it would let one typo turn enforcement off). The
//! `version` field must come first. A field other than `mx` given twice
//! makes the policy invalid.
//!
//! The cache ([`StsCache`]) keeps, per policy domain, the last policy
//! fetched (with its id and the time of the fetch) and the last failed
//! fetch. Its rules, all driven by the caller's `now`:
//!
//! * A TXT record with the id of a fresh cached policy: the cached policy,
//!   no fetch. So there is one fetch per (domain, id).
//! * A TXT record with a new id, or a cached policy that expired: fetch.
//!   A failed fetch is not retried for the same (domain, id) before
//!   [`FETCH_RETRY_SECS`].
//! * No TXT record, or a failed TXT lookup: the cached policy while it is
//!   fresh; never a fetch (RFC 8461 section 3.3).
//! * A failed fetch: the cached policy while it is fresh.
//! * An expired policy (`now` at or past `fetched_at + max_age`) is never
//!   used.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::name::a_label;

mod cache;
pub mod http;

pub use cache::{CachedPolicy, StsCache, StsDecision, TxtLookup};

/// The largest `max_age` RFC 8461 section 3.2 allows, in seconds (a year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

/// The largest policy body accepted, in bytes (64 KiB, as mox and
/// Google's documentation have it).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// How long a failed policy fetch is not retried for the same (domain, id),
/// in seconds.
pub const FETCH_RETRY_SECS: u64 = 300;

/// The path of the policy on the policy host (RFC 8461 section 3.3).
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

/// The name of the TXT record of `domain` (A-label form):
/// `_mta-sts.<domain>`.
#[must_use]
pub fn record_name(domain: &str) -> String {
    format!("_mta-sts.{domain}")
}

/// The host serving the policy of `domain`: `mta-sts.<domain>`.
#[must_use]
pub fn policy_host(domain: &str) -> String {
    format!("mta-sts.{domain}")
}

/// The URL of the policy of `domain`.
#[must_use]
pub fn policy_url(domain: &str) -> String {
    format!("https://mta-sts.{domain}{POLICY_PATH}")
}

/// A parsed `_mta-sts` TXT record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StsRecord {
    /// The policy id: 1 to 32 letters and digits.
    pub id: String,
    /// The extension fields, name and value, in order.
    pub extensions: Vec<(String, String)>,
}

/// Why TXT records gave no MTA-STS record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// No record begins with `v=STSv1`.
    NotFound,
    /// More than one record begins with `v=STSv1` (RFC 8461 section 3.1:
    /// then the domain has no policy).
    Multiple,
    /// The record is not well formed: what is wrong.
    Syntax(&'static str),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::NotFound => f.write_str("no MTA-STS TXT record"),
            RecordError::Multiple => f.write_str("more than one MTA-STS TXT record"),
            RecordError::Syntax(why) => write!(f, "invalid MTA-STS TXT record: {why}"),
        }
    }
}

impl std::error::Error for RecordError {}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits `name *WSP "=" *WSP value` (record fields).
fn split_eq(field: &str) -> Option<(&str, &str)> {
    let (name, value) = field.split_once('=')?;
    Some((
        name.trim_end_matches(is_wsp),
        value.trim_start_matches(is_wsp),
    ))
}

/// Whether the text begins with the version field `v *WSP "=" *WSP "STSv1"`
/// followed by a separator or the end.
fn has_sts_version(txt: &str) -> bool {
    let first = txt.split(';').next().unwrap_or("");
    matches!(
        split_eq(first.trim_end_matches(is_wsp)),
        Some(("v", "STSv1"))
    )
}

/// Whether `name` is an extension name: a letter or digit, then up to 31
/// letters, digits, `_`, `-` or `.`.
fn is_ext_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// Parses one TXT record (its strings already joined).
///
/// # Errors
///
/// [`RecordError::NotFound`] when it does not begin with the version
/// field, [`RecordError::Syntax`] when it is not well formed or has no
/// (or two) `id`.
pub fn parse_record(txt: &str) -> Result<StsRecord, RecordError> {
    if !has_sts_version(txt) {
        return Err(RecordError::NotFound);
    }
    let mut fields: Vec<&str> = txt.split(';').collect();
    // A trailing separator leaves an empty last piece.
    if fields.len() > 1
        && fields
            .last()
            .is_some_and(|l| l.trim_matches(is_wsp).is_empty())
    {
        fields.pop();
    }
    let mut id = None;
    let mut extensions = Vec::new();
    for field in fields.iter().skip(1) {
        let field = field.trim_matches(is_wsp);
        let (name, value) = split_eq(field).ok_or(RecordError::Syntax("a field without '='"))?;
        if name == "id" {
            if id.is_some() {
                return Err(RecordError::Syntax("two id fields"));
            }
            if value.is_empty()
                || value.len() > 32
                || !value.bytes().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(RecordError::Syntax(
                    "the id is not 1 to 32 letters and digits",
                ));
            }
            id = Some(value.to_owned());
        } else {
            if !is_ext_name(name) {
                return Err(RecordError::Syntax("an invalid field name"));
            }
            if value.is_empty()
                || !value
                    .bytes()
                    .all(|c| (0x21..=0x7e).contains(&c) && c != b'=' && c != b';')
            {
                return Err(RecordError::Syntax("an invalid field value"));
            }
            extensions.push((name.to_owned(), value.to_owned()));
        }
    }
    let id = id.ok_or(RecordError::Syntax("no id field"))?;
    Ok(StsRecord { id, extensions })
}

/// The MTA-STS record among the TXT records of `_mta-sts.<domain>` (each
/// with its strings joined): records not beginning with the version field
/// are discarded, and exactly one must remain, well formed (RFC 8461
/// section 3.1).
///
/// # Errors
///
/// A [`RecordError`]: then the domain has no available policy.
pub fn select_record<S: AsRef<str>>(txts: &[S]) -> Result<StsRecord, RecordError> {
    let mut sts = txts
        .iter()
        .map(AsRef::as_ref)
        .filter(|t| has_sts_version(t));
    let one = sts.next().ok_or(RecordError::NotFound)?;
    if sts.next().is_some() {
        return Err(RecordError::Multiple);
    }
    parse_record(one)
}

/// A policy's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// `enforce`: deliver only to matching MX hosts over authenticated TLS.
    Enforce,
    /// `testing`: report failures (TLS-RPT), deliver anyway.
    Testing,
    /// `none`: the domain has withdrawn its policy.
    None,
}

/// One `mx` pattern: a host name, or `*.` and a domain, matching exactly
/// one more label on the left.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MxPattern {
    wildcard: bool,
    domain: String,
}

impl MxPattern {
    /// Parses a pattern: `host.example` or `*.example`; the name is brought
    /// to A-label form.
    ///
    /// # Errors
    ///
    /// [`PolicyError::BadMx`] for anything else.
    pub fn parse(text: &str) -> Result<MxPattern, PolicyError> {
        let (wildcard, rest) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if rest.contains('*') || rest.ends_with('.') {
            return Err(PolicyError::BadMx);
        }
        let domain = a_label(rest).map_err(|_| PolicyError::BadMx)?;
        Ok(MxPattern { wildcard, domain })
    }

    /// Whether `host` (an MX host name, in any case, with or without the
    /// trailing dot) matches: equal to the name, or for a wildcard, one
    /// non-empty label followed by the domain (RFC 8461 section 4.1).
    #[must_use]
    pub fn matches(&self, host: &str) -> bool {
        let Ok(host) = a_label(host) else {
            return false;
        };
        if !self.wildcard {
            return host == self.domain;
        }
        match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == self.domain,
            None => false,
        }
    }

    /// Whether the pattern starts with `*.`.
    #[must_use]
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }
}

impl fmt::Display for MxPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.domain)
    }
}

impl From<MxPattern> for String {
    fn from(p: MxPattern) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for MxPattern {
    type Error = PolicyError;
    fn try_from(s: String) -> Result<MxPattern, PolicyError> {
        MxPattern::parse(&s)
    }
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The mode.
    pub mode: Mode,
    /// How long the policy may be cached, in seconds (at most
    /// [`MAX_AGE_LIMIT`]).
    pub max_age: u64,
    /// The MX patterns, in order (none only under [`Mode::None`]).
    pub mx: Vec<MxPattern>,
}

impl Policy {
    /// Whether `host` matches one of the `mx` patterns.
    #[must_use]
    pub fn matches(&self, host: &str) -> bool {
        self.mx.iter().any(|p| p.matches(host))
    }
}

/// Why a policy body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// Over [`MAX_POLICY_BYTES`].
    TooLarge,
    /// Not UTF-8, or a line that is not `name: value`, or a control
    /// character.
    Syntax,
    /// The first field is not `version: STSv1`.
    Version,
    /// A required field is missing (`mode`, `max_age`, or `mx` unless the
    /// mode is `none`).
    Missing(&'static str),
    /// A field other than `mx` appears twice.
    Duplicate(&'static str),
    /// `mode` is not `enforce`, `testing` or `none`.
    BadMode,
    /// `max_age` is not 1 to 10 digits.
    BadMaxAge,
    /// An `mx` value is not a host name or `*.` and a domain.
    BadMx,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::TooLarge => write!(f, "the policy is over {MAX_POLICY_BYTES} bytes"),
            PolicyError::Syntax => f.write_str("the policy is not well formed"),
            PolicyError::Version => f.write_str("the policy does not begin with version: STSv1"),
            PolicyError::Missing(field) => write!(f, "the policy has no {field} field"),
            PolicyError::Duplicate(field) => write!(f, "the policy has two {field} fields"),
            PolicyError::BadMode => {
                f.write_str("the policy's mode is not enforce, testing or none")
            }
            PolicyError::BadMaxAge => {
                f.write_str("the policy's max_age is not a number of seconds")
            }
            PolicyError::BadMx => f.write_str("an mx pattern of the policy is not valid"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// Parses a policy body (RFC 8461 section 3.2): lines ending in LF or CRLF,
/// each `name: value`.
///
/// # Errors
///
/// A [`PolicyError`]: then the domain has no usable policy from this body.
pub fn parse_policy(body: &[u8]) -> Result<Policy, PolicyError> {
    if body.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| PolicyError::Syntax)?;
    let mut version_seen = false;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(PolicyError::Syntax);
        }
        let (name, value) = line.split_once(':').ok_or(PolicyError::Syntax)?;
        let value = value.trim_matches(is_wsp);
        if !version_seen {
            if name != "version" || value != "STSv1" {
                return Err(PolicyError::Version);
            }
            version_seen = true;
            continue;
        }
        match name {
            "version" => return Err(PolicyError::Duplicate("version")),
            "mode" => {
                if mode.is_some() {
                    return Err(PolicyError::Duplicate("mode"));
                }
                mode = Some(match value {
                    "enforce" => Mode::Enforce,
                    "testing" => Mode::Testing,
                    "none" => Mode::None,
                    _ => return Err(PolicyError::BadMode),
                });
            }
            "max_age" => {
                if max_age.is_some() {
                    return Err(PolicyError::Duplicate("max_age"));
                }
                if value.is_empty()
                    || value.len() > 10
                    || !value.bytes().all(|c| c.is_ascii_digit())
                {
                    return Err(PolicyError::BadMaxAge);
                }
                let n: u64 = value.parse().map_err(|_| PolicyError::BadMaxAge)?;
                max_age = Some(n.min(MAX_AGE_LIMIT));
            }
            "mx" => mx.push(MxPattern::parse(value)?),
            other => {
                if !is_ext_name(other)
                    || value.is_empty()
                    || !value.bytes().all(|c| (0x20..=0x7e).contains(&c))
                {
                    return Err(PolicyError::Syntax);
                }
            }
        }
    }
    if !version_seen {
        return Err(PolicyError::Version);
    }
    let mode = mode.ok_or(PolicyError::Missing("mode"))?;
    let max_age = max_age.ok_or(PolicyError::Missing("max_age"))?;
    if mx.is_empty() && mode != Mode::None {
        return Err(PolicyError::Missing("mx"));
    }
    Ok(Policy { mode, max_age, mx })
}

/// Why a policy fetch gave no policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// The connection, the TLS handshake (WebPKI, for the name
    /// `mta-sts.<domain>`) or the HTTP exchange failed, or the time limit
    /// passed: the adapter's own error, summarised.
    Transport,
    /// A redirect (3xx): never followed (RFC 8461 section 3.3).
    Redirect(u16),
    /// Any other status than 200.
    Status(u16),
    /// The media type is not `text/plain` (the value sent, escaped).
    ContentType(String),
    /// The body is over [`MAX_POLICY_BYTES`].
    TooLarge,
    /// The body is not a valid policy.
    Policy(PolicyError),
    /// The policy host's certificate did not verify (WebPKI for
    /// `mta-sts.<domain>`): TLS-RPT's `sts-webpki-invalid`.
    Certificate,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Transport => f.write_str("the policy could not be fetched"),
            FetchError::Redirect(code) => write!(
                f,
                "the policy server redirected ({code}); redirects are not followed"
            ),
            FetchError::Status(code) => write!(f, "the policy server answered {code}"),
            FetchError::ContentType(t) => {
                write!(f, "the policy's media type is {t}, not text/plain")
            }
            FetchError::TooLarge => write!(f, "the policy is over {MAX_POLICY_BYTES} bytes"),
            FetchError::Policy(e) => e.fmt(f),
            FetchError::Certificate => {
                f.write_str("the policy host's certificate did not verify (WebPKI)")
            }
        }
    }
}

impl std::error::Error for FetchError {}

/// The policy from an HTTP response to the policy fetch: the status must be
/// 200 (a redirect is refused, not followed), the media type `text/plain`
/// (parameters such as `charset` allowed, case ignored), and the body at
/// most [`MAX_POLICY_BYTES`] (an adapter stops reading past that and passes
/// what it read, which is then too large).
///
/// # Errors
///
/// A [`FetchError`]; pass it to [`StsCache::fetched`] as the result.
pub fn policy_from_response(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Policy, FetchError> {
    match status {
        200 => {}
        300..=399 => return Err(FetchError::Redirect(status)),
        _ => return Err(FetchError::Status(status)),
    }
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim_matches(|c: char| c == ' ' || c == '\t');
    if !media.eq_ignore_ascii_case("text/plain") {
        let shown: String = content_type
            .unwrap_or("(none)")
            .chars()
            .take(100)
            .flat_map(char::escape_default)
            .collect();
        return Err(FetchError::ContentType(shown));
    }
    if body.len() > MAX_POLICY_BYTES {
        return Err(FetchError::TooLarge);
    }
    parse_policy(body).map_err(FetchError::Policy)
}
