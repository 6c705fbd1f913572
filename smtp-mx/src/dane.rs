//! DANE for SMTP (RFC 7672, with RFC 7671 and RFC 6698): TLSA records, their
//! usability, the digest-agility filter, the DANE state of an MX host, and
//! the TLSA names.
//!
//! Usability (RFC 7672 section 3.1): only usages 2 (DANE-TA) and 3
//! (DANE-EE) are usable for SMTP; 0 (PKIX-TA) and 1 (PKIX-EE) are not.
//! The selector must be 0 (certificate) or 1 (SubjectPublicKeyInfo), the
//! matching type 0 (exact), 1 (SHA-256, 32 octets) or 2 (SHA-512, 64
//! octets), and the data non-empty and of the digest's length. A set of
//! records none of which is usable still means the server is expected to
//! offer TLS: the plan is "encrypt" (RFC 7672 section 2.2).
//!
//! Digest agility (RFC 7671 section 9): for each usage and selector, only
//! the records with the most preferred matching type present are kept, in
//! the order SHA-512, SHA-256, exact.
//!
//! Matching a presented chain ([`match_chain`]) is here; the signature and
//! name checks a DANE-TA match needs belong to the verifier in the TLS
//! adapter.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::dns::DnsAnswer;
use crate::plan::DaneState;

/// One TLSA record (RFC 6698 section 2.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tlsa {
    /// The certificate usage: 2 (DANE-TA) and 3 (DANE-EE) are the ones SMTP
    /// uses (RFC 7672 section 3.1).
    pub usage: u8,
    /// The selector: 0 (the whole certificate) or 1 (its
    /// SubjectPublicKeyInfo).
    pub selector: u8,
    /// The matching type: 0 (exact), 1 (SHA-256) or 2 (SHA-512).
    pub matching: u8,
    /// The association data.
    pub data: Vec<u8>,
}

/// Why a TLSA record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsaError {
    /// Fewer than the three fixed octets (wire form), or not four fields
    /// (presentation form).
    Truncated,
    /// A field is not a number from 0 to 255.
    BadField,
    /// The association data is not hexadecimal.
    BadHex,
}

impl fmt::Display for TlsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsaError::Truncated => "the TLSA record is truncated",
            TlsaError::BadField => "a TLSA field is not a number from 0 to 255",
            TlsaError::BadHex => "the TLSA association data is not hexadecimal",
        })
    }
}

impl std::error::Error for TlsaError {}

/// Usage 2: a trust anchor (RFC 7218's DANE-TA).
pub const DANE_TA: u8 = 2;
/// Usage 3: the end-entity certificate or key (DANE-EE).
pub const DANE_EE: u8 = 3;

impl Tlsa {
    /// Reads the record's RDATA (wire form): usage, selector, matching type,
    /// then the data.
    ///
    /// # Errors
    ///
    /// [`TlsaError::Truncated`] under three octets.
    pub fn from_rdata(rdata: &[u8]) -> Result<Tlsa, TlsaError> {
        match rdata {
            [usage, selector, matching, data @ ..] => Ok(Tlsa {
                usage: *usage,
                selector: *selector,
                matching: *matching,
                data: data.to_vec(),
            }),
            _ => Err(TlsaError::Truncated),
        }
    }

    /// Whether SMTP can use the record (see the module documentation).
    #[must_use]
    pub fn is_usable(&self) -> bool {
        let length_ok = match self.matching {
            0 => !self.data.is_empty(),
            1 => self.data.len() == 32,
            2 => self.data.len() == 64,
            _ => false,
        };
        matches!(self.usage, DANE_TA | DANE_EE) && self.selector <= 1 && length_ok
    }
}

impl FromStr for Tlsa {
    type Err = TlsaError;

    /// Reads the presentation form: `3 1 1 <hex>`, the hexadecimal data
    /// possibly split by white space.
    fn from_str(s: &str) -> Result<Tlsa, TlsaError> {
        let mut fields = s.split_ascii_whitespace();
        let mut number = || -> Result<u8, TlsaError> {
            fields
                .next()
                .ok_or(TlsaError::Truncated)?
                .parse()
                .map_err(|_| TlsaError::BadField)
        };
        let (usage, selector, matching) = (number()?, number()?, number()?);
        let hex: String = fields.collect();
        if hex.is_empty() {
            return Err(TlsaError::Truncated);
        }
        if hex.len() % 2 != 0 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(TlsaError::BadHex);
        }
        let data = hex
            .as_bytes()
            .chunks(2)
            .map(|pair| {
                let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                digit(pair[0]) << 4 | digit(pair[1])
            })
            .collect();
        Ok(Tlsa {
            usage,
            selector,
            matching,
            data,
        })
    }
}

/// The preference of a matching type under digest agility (higher wins).
fn matching_rank(matching: u8) -> u8 {
    match matching {
        2 => 3,
        1 => 2,
        0 => 1,
        _ => 0,
    }
}

/// The usable records of `records`, after the digest-agility filter, in
/// their original order (duplicates dropped).
#[must_use]
pub fn usable(records: &[Tlsa]) -> Vec<Tlsa> {
    let usable: Vec<&Tlsa> = records.iter().filter(|r| r.is_usable()).collect();
    let mut kept: Vec<Tlsa> = Vec::new();
    for r in &usable {
        let best = usable
            .iter()
            .filter(|o| o.usage == r.usage && o.selector == r.selector)
            .map(|o| matching_rank(o.matching))
            .max()
            .unwrap_or(0);
        if matching_rank(r.matching) == best && !kept.contains(r) {
            kept.push((*r).clone());
        }
    }
    kept
}

/// The DANE state of an MX host from its TLSA answer. DANE applies only
/// when the MX answer and the host's address answer were both validated
/// (RFC 7672 section 2.2); then a failed or bogus TLSA lookup is
/// [`DaneState::LookupFailed`], a validated denial [`DaneState::NoTlsa`],
/// an unsigned TLSA answer [`DaneState::Insecure`], and records are
/// [`DaneState::Usable`] or [`DaneState::Unusable`].
#[must_use]
pub fn dane_state(mx_secure: bool, address_secure: bool, answer: &DnsAnswer<Tlsa>) -> DaneState {
    if !(mx_secure && address_secure) {
        return DaneState::Insecure;
    }
    if answer.failed() {
        return DaneState::LookupFailed;
    }
    if !answer.security.is_secure() {
        return DaneState::Insecure;
    }
    if answer.records.is_empty() {
        return DaneState::NoTlsa;
    }
    let records = usable(&answer.records);
    if records.is_empty() {
        DaneState::Unusable
    } else {
        DaneState::Usable(records)
    }
}

/// The TLSA query name of `host` on `port`: `_<port>._tcp.<host>` (RFC 6698
/// section 3).
#[must_use]
pub fn tlsa_name(host: &str, port: u16) -> String {
    format!("_{port}._tcp.{host}")
}

/// The TLSA base domains of MX host `host` (RFC 7672 section 2.2.2), in the
/// order to query them: when the host's address lookup followed a
/// validated CNAME chain to `cname_target`, that target first, then `host`
/// itself (Postfix's order); else `host` alone.
#[must_use]
pub fn tlsa_base_domains(host: &str, cname_target: Option<&str>) -> Vec<String> {
    let mut names = Vec::with_capacity(2);
    if let Some(target) = cname_target.filter(|t| !t.eq_ignore_ascii_case(host)) {
        names.push(target.to_ascii_lowercase());
    }
    names.push(host.to_ascii_lowercase());
    names
}

/// The reference identifiers a DANE-TA certificate must match one of (RFC
/// 7672 section 3.2.3): the TLSA base domain the records came from, and the
/// MX host name when it differs.
#[must_use]
pub fn reference_names(base_domain: &str, host: &str) -> Vec<String> {
    let mut names = vec![base_domain.to_ascii_lowercase()];
    if !host.eq_ignore_ascii_case(base_domain) {
        names.push(host.to_ascii_lowercase());
    }
    names
}

/// How a presented chain matched the TLSA records (RFC 7672 section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DaneMatch {
    /// A DANE-EE record (index `record`) matches the leaf certificate. The
    /// server is authenticated once the handshake proves it holds the
    /// leaf's key; neither names nor validity dates are checked (RFC 7672
    /// section 3.1.1).
    EndEntity {
        /// The index of the matching record.
        record: usize,
    },
    /// A DANE-TA record (index `record`) matches the certificate at `depth`
    /// (1 or more) of the presented chain. That certificate is the only
    /// trust anchor: the verifier must build the chain from the leaf up to
    /// it, check every signature, and check the leaf's name against the
    /// reference names (RFC 7672 section 3.1.2). A match alone proves
    /// nothing: a genuine anchor can be sent above a forged leaf.
    TrustAnchorCert {
        /// The index of the matching record.
        record: usize,
        /// The depth of the matching certificate (0 is the leaf).
        depth: usize,
    },
    /// A DANE-TA record of a full public key (`2 1 0`, index `record`) that
    /// no presented certificate holds: that key is the trust anchor, with the
    /// same checks as [`DaneMatch::TrustAnchorCert`].
    TrustAnchorKey {
        /// The index of the matching record.
        record: usize,
    },
}

/// The most octets a DER length this reader accepts may take (4: 4 GiB).
const MAX_LENGTH_OCTETS: usize = 4;

/// One DER element: its tag, its content, the whole element (header
/// included) and what follows it.
struct Element<'a> {
    tag: u8,
    whole: &'a [u8],
    content: &'a [u8],
    rest: &'a [u8],
}

/// The DER element at the start of `input`; `None` when malformed or
/// truncated.
fn der_element(input: &[u8]) -> Option<Element<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > MAX_LENGTH_OCTETS || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    Some(Element {
        tag,
        whole: &input[..header + len],
        content: &rest[..len],
        rest: &rest[len..],
    })
}

/// The DER SubjectPublicKeyInfo of an X.509 certificate (RFC 5280 section
/// 4.1), or `None` when the certificate is not well formed that far.
#[must_use]
pub fn subject_public_key_info(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    let outer = der_element(cert).filter(|e| e.tag == SEQUENCE)?;
    let tbs = der_element(outer.content).filter(|e| e.tag == SEQUENCE)?;
    let mut fields = tbs.content;
    // [0] EXPLICIT version, when present.
    if fields.first() == Some(&0xa0) {
        fields = der_element(fields)?.rest;
    }
    // serialNumber INTEGER, signature, issuer, validity, subject.
    for want in [0x02, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE] {
        fields = der_element(fields).filter(|e| e.tag == want)?.rest;
    }
    der_element(fields)
        .filter(|e| e.tag == SEQUENCE)
        .map(|e| e.whole)
}

/// Whether `record` matches certificate `cert` (DER).
fn record_matches(record: &Tlsa, cert: &[u8]) -> bool {
    use sha2::Digest;
    let selected = match record.selector {
        0 => cert,
        1 => match subject_public_key_info(cert) {
            Some(spki) => spki,
            None => return false,
        },
        _ => return false,
    };
    match record.matching {
        0 => selected == record.data.as_slice(),
        1 => sha2::Sha256::digest(selected).as_slice() == record.data.as_slice(),
        2 => sha2::Sha512::digest(selected).as_slice() == record.data.as_slice(),
        _ => false,
    }
}

/// Matches a presented chain (DER certificates, the leaf first) against
/// TLSA records: every match, DANE-EE ones first, then DANE-TA by depth,
/// then full-key DANE-TA anchors not found in the chain. Unusable records
/// are ignored. An empty result means the server is not authenticated.
///
/// DANE-EE records are matched against the leaf only, DANE-TA records
/// against the certificates above it (a DANE-TA record that matches only
/// the leaf does not authenticate it). Only the DANE-EE results are final;
/// each DANE-TA result must then be verified as its documentation says.
#[must_use]
pub fn match_chain<C: AsRef<[u8]>>(records: &[Tlsa], chain: &[C]) -> Vec<DaneMatch> {
    let mut found = Vec::new();
    let Some(leaf) = chain.first() else {
        return found;
    };
    for (i, r) in records.iter().enumerate() {
        if r.is_usable() && r.usage == DANE_EE && record_matches(r, leaf.as_ref()) {
            found.push(DaneMatch::EndEntity { record: i });
        }
    }
    for (depth, cert) in chain.iter().enumerate().skip(1) {
        for (i, r) in records.iter().enumerate() {
            if r.is_usable() && r.usage == DANE_TA && record_matches(r, cert.as_ref()) {
                found.push(DaneMatch::TrustAnchorCert { record: i, depth });
            }
        }
    }
    for (i, r) in records.iter().enumerate() {
        let full_key = r.is_usable() && r.usage == DANE_TA && r.selector == 1 && r.matching == 0;
        let in_chain = found
            .iter()
            .any(|m| matches!(m, DaneMatch::TrustAnchorCert { record, .. } if *record == i));
        if full_key && !in_chain {
            found.push(DaneMatch::TrustAnchorKey { record: i });
        }
    }
    found
}
