//! The `_smtp._tls` TXT record (RFC 8460 section 3).

use std::fmt;

/// The name of the TLS-RPT record of `domain` (A-label form):
/// `_smtp._tls.<domain>`.
#[must_use]
pub fn record_name(domain: &str) -> String {
    format!("_smtp._tls.{domain}")
}

/// Where reports go: one `rua` URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReportUri {
    /// `mailto:`: the address (percent-encoding left as it is).
    Mailto(String),
    /// `https:`: the whole URI, to POST the report to.
    Https(String),
}

/// A TLS-RPT record: where aggregate reports go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRptRecord {
    /// The report URIs, in the record's order (schemes other than
    /// `mailto:` and `https:` left out).
    pub rua: Vec<ReportUri>,
}

/// Why a TXT record is no TLS-RPT record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// It does not start with `v=TLSRPTv1`.
    Version,
    /// A field is not `name=value` with a well-formed name.
    Field,
    /// No `rua` field, or more than one.
    Rua,
    /// The `rua` field holds no `mailto:` or `https:` URI, or a malformed one.
    Uri,
    /// Not exactly one of the TXT records is a TLS-RPT record (RFC 8460
    /// section 3: the domain then does not take reports).
    Count(usize),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Version => f.write_str("the record does not start with v=TLSRPTv1"),
            RecordError::Field => f.write_str("a field of the record is malformed"),
            RecordError::Rua => f.write_str("the record needs exactly one rua field"),
            RecordError::Uri => f.write_str("the rua field holds no usable mailto: or https: URI"),
            RecordError::Count(n) => write!(f, "{n} TLS-RPT records, not one"),
        }
    }
}

impl std::error::Error for RecordError {}

/// Parses one TXT record: `v=TLSRPTv1` first, then `;`-separated fields
/// (spaces around `;` allowed, a final `;` too), exactly one `rua` with
/// comma-separated URIs; other well-formed fields are ignored (RFC 8460
/// section 3's `tlsrpt-ext`). URIs of other schemes are skipped; at least
/// one `mailto:` or `https:` URI must remain.
///
/// # Errors
///
/// A [`RecordError`].
pub fn parse_record(txt: &str) -> Result<TlsRptRecord, RecordError> {
    let mut fields = txt.split(';').map(|f| f.trim_matches([' ', '\t']));
    if fields.next() != Some("v=TLSRPTv1") {
        return Err(RecordError::Version);
    }
    let mut rua: Option<Vec<ReportUri>> = None;
    let mut fields = fields.peekable();
    while let Some(field) = fields.next() {
        if field.is_empty() {
            // Only a final delimiter may be empty.
            if fields.peek().is_none() {
                break;
            }
            return Err(RecordError::Field);
        }
        let (name, value) = field.split_once('=').ok_or(RecordError::Field)?;
        let name_ok = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        if !name_ok
            || value
                .bytes()
                .any(|b| !(0x21..=0x7e).contains(&b) || b == b';')
        {
            return Err(RecordError::Field);
        }
        if name == "rua" {
            if rua.is_some() {
                return Err(RecordError::Rua);
            }
            rua = Some(parse_uris(value)?);
        }
    }
    let rua = rua.ok_or(RecordError::Rua)?;
    Ok(TlsRptRecord { rua })
}

fn parse_uris(value: &str) -> Result<Vec<ReportUri>, RecordError> {
    let mut uris = Vec::new();
    for uri in value.split(',') {
        let scheme = uri.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("mailto") => {
                let address = &uri["mailto:".len()..];
                if !address.contains('@') {
                    return Err(RecordError::Uri);
                }
                uris.push(ReportUri::Mailto(address.to_owned()));
            }
            Some("https") => {
                if !uri
                    .get(6..)
                    .is_some_and(|r| r.starts_with("//") && r.len() > 2)
                {
                    return Err(RecordError::Uri);
                }
                uris.push(ReportUri::Https(uri.to_owned()));
            }
            Some(s) if !s.is_empty() => {}
            _ => return Err(RecordError::Uri),
        }
    }
    if uris.is_empty() {
        return Err(RecordError::Uri);
    }
    Ok(uris)
}

/// The TLS-RPT record among a name's TXT records: the records that start
/// with `v=TLSRPTv1` are counted, and there must be exactly one (RFC 8460
/// section 3).
///
/// # Errors
///
/// [`RecordError::Count`], or the one record's error.
pub fn select_record<S: AsRef<str>>(txts: &[S]) -> Result<TlsRptRecord, RecordError> {
    let found: Vec<&str> = txts
        .iter()
        .map(AsRef::as_ref)
        .filter(|t| {
            t.split(';')
                .next()
                .is_some_and(|v| v.trim_matches([' ', '\t']) == "v=TLSRPTv1")
        })
        .collect();
    match found.as_slice() {
        [one] => parse_record(one),
        other => Err(RecordError::Count(other.len())),
    }
}
