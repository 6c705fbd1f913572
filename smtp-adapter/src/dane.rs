//! DANE for SMTP (RFC 7672) inside the TLS handshake: [`DaneVerifier`], a
//! rustls [`ServerCertVerifier`] that authenticates the server against the
//! usable TLSA records of its MX host, so that a certificate the records
//! refuse fails the handshake itself, before a byte of mail is sent (never
//! "accept now, check later").
//!
//! Built with the `dane` feature, which brings the `smtp-mx` crate (the
//! records, their usability and the matching of a chain against them) and,
//! through it, `idna`, `serde` and `sha2`; the default build carries none of
//! them.
//!
//! What is checked, for each kind of record (RFC 7672 section 3.1):
//!
//! | record | matched against | then checked |
//! |---|---|---|
//! | DANE-EE (usage 3) | the leaf certificate, or its public key (selector 1) | nothing else: neither names nor validity dates (section 3.1.1); the handshake proves the server holds the key |
//! | DANE-TA (usage 2) | a certificate above the leaf, or (`2 1 0`) a full public key | the chain from the leaf up to that anchor (signatures, validity dates, CA and key-usage constraints, through rustls' webpki), and the leaf's name against one of the reference names (section 3.2.2) |
//!
//! One usable record that matches is enough. DANE-EE matches are taken
//! first; then DANE-TA matches, shallowest first, each verified with its
//! matched certificate (or key) as the only trust anchor. A DANE-TA record
//! that matches only the leaf (the leaf's certificate, or a certificate or
//! key holding the leaf's own key) authenticates nothing. As with any trust
//! anchor (RFC 5280 section 6.1.1), the anchor's own validity dates are not
//! read; those of the leaf and of the certificates between are. Records of other usages (PKIX-TA, PKIX-EE) are
//! ignored, and digest agility (RFC 7671 section 9) applies:
//! [`smtp_mx::dane::usable`].
//!
//! Names are matched as rustls' webpki matches them: DNS names of the
//! subjectAltName extension, a wildcard only as the whole left-most label.
//! A certificate without DNS names in a subjectAltName never matches (the
//! common name is not read).
//!
//! The TLS 1.2 and TLS 1.3 handshake signatures are checked by the crypto
//! provider's algorithms, as rustls' own verifier checks them.
//!
//! # Resumption
//!
//! A resumed TLS session is not verified again: rustls skips the verifier.
//! [`DaneVerifier::client_config`] makes a configuration with its own
//! session store, so only a connection made with that configuration can be
//! resumed by it; do not give a configuration built on one set of TLSA
//! records a session store shared with others.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, DnsName, ServerName, TrustAnchor, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
pub use smtp_mx::dane::{DANE_EE, DANE_TA, DaneMatch, Tlsa};
use smtp_mx::plan::TlsPlan;

use crate::tls::ClientConfig;

/// The most certificates of a presented chain (the leaf included) the
/// verifier looks at; those after them are ignored. Real chains hold two to
/// four.
pub const MAX_CHAIN: usize = 16;

/// Why a [`DaneVerifier`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DaneError {
    /// None of the records is usable for SMTP (RFC 7672 section 3.1): the
    /// plan for such a host is "encrypt", not DANE.
    NoUsableRecords,
    /// DANE-TA records and no reference name to check the leaf against.
    NoReferenceNames,
    /// A reference name that is not a DNS name.
    InvalidName(String),
    /// [`DaneVerifier::from_plan`] was given a plan other than
    /// [`TlsPlan::Dane`].
    NotDanePlan,
}

impl fmt::Display for DaneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaneError::NoUsableRecords => f.write_str("no TLSA record is usable for SMTP"),
            DaneError::NoReferenceNames => {
                f.write_str("DANE-TA records need at least one reference name")
            }
            DaneError::InvalidName(name) => write!(f, "{name:?} is not a DNS name"),
            DaneError::NotDanePlan => f.write_str("the TLS plan is not DANE"),
        }
    }
}

impl std::error::Error for DaneError {}

/// The refusal of a chain that no usable TLSA record matches, carried in
/// the handshake's error as
/// `rustls::Error::InvalidCertificate(CertificateError::Other(..))`
/// ([`is_tlsa_mismatch`] recognises it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsaMismatch;

impl fmt::Display for TlsaMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no usable TLSA record matches the server's certificate chain")
    }
}

impl std::error::Error for TlsaMismatch {}

impl From<TlsaMismatch> for rustls::Error {
    fn from(mismatch: TlsaMismatch) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(mismatch))))
    }
}

/// Whether `error` is the verifier's [`TlsaMismatch`] (no record matched,
/// as opposed to a DANE-TA match whose chain or name failed, which carry
/// rustls' own certificate errors).
#[must_use]
pub fn is_tlsa_mismatch(error: &rustls::Error) -> bool {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<TlsaMismatch>().is_some()
        }
        _ => false,
    }
}

/// A rustls server-certificate verifier that authenticates the server by its
/// TLSA records (see the [module](crate::dane)). One verifier holds the
/// records of one MX host, so a connection gets its own verifier and
/// [`ClientConfig`] ([`DaneVerifier::client_config`]); share the crypto
/// provider.
///
/// ```
/// use smtp_adapter::dane::{DaneVerifier, Tlsa};
///
/// // The usable records of the MX host, from a DNSSEC-validated TLSA lookup
/// // (smtp_mx::dane::dane_state), and its reference names: the TLSA base
/// // domain and the MX host name (RFC 7672 section 3.2.2).
/// let tlsa: Tlsa =
///     "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6".parse()?;
/// let names = smtp_mx::dane::reference_names("mx.example.net", "mx.example.net");
/// let verifier = DaneVerifier::new(&[tlsa], &names, smtp_adapter::tls::provider()?)?;
/// let config = verifier.client_config()?;
/// assert!(smtp_adapter::tls::verifies_certificates(&config));
///
/// // SNI: the TLSA base domain (RFC 7672 section 8.1). The handshake fails
/// // unless the server's chain matches a record; a facade takes the
/// // configuration as its TLS configuration for STARTTLS.
/// let tls = rustls::ClientConnection::new(config, "mx.example.net".try_into()?)?;
/// assert!(tls.is_handshaking());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct DaneVerifier {
    records: Vec<Tlsa>,
    names: Vec<ServerName<'static>>,
    provider: Arc<CryptoProvider>,
}

impl DaneVerifier {
    /// A verifier for the usable records among `records` (usability and
    /// digest agility: [`smtp_mx::dane::usable`]), checking a DANE-TA
    /// leaf against `names` (the reference identifiers:
    /// [`smtp_mx::dane::reference_names`]), with `provider`'s signature
    /// algorithms.
    ///
    /// # Errors
    ///
    /// [`DaneError::NoUsableRecords`] when no record is usable;
    /// [`DaneError::InvalidName`] for a name that is not a DNS name (one
    /// final dot is allowed); [`DaneError::NoReferenceNames`] when a usable
    /// record is DANE-TA and `names` is empty.
    pub fn new<S: AsRef<str>>(
        records: &[Tlsa],
        names: &[S],
        provider: Arc<CryptoProvider>,
    ) -> Result<DaneVerifier, DaneError> {
        let records = smtp_mx::dane::usable(records);
        if records.is_empty() {
            return Err(DaneError::NoUsableRecords);
        }
        let names = names
            .iter()
            .map(|n| reference_name(n.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if names.is_empty() && records.iter().any(|r| r.usage == DANE_TA) {
            return Err(DaneError::NoReferenceNames);
        }
        Ok(DaneVerifier {
            records,
            names,
            provider,
        })
    }

    /// A verifier for a [`TlsPlan::Dane`] plan: its records and names.
    ///
    /// # Errors
    ///
    /// [`DaneError::NotDanePlan`] for any other plan; those of
    /// [`DaneVerifier::new`].
    pub fn from_plan(
        plan: &TlsPlan,
        provider: Arc<CryptoProvider>,
    ) -> Result<DaneVerifier, DaneError> {
        match plan {
            TlsPlan::Dane { tlsa, names } => DaneVerifier::new(tlsa, names, provider),
            _ => Err(DaneError::NotDanePlan),
        }
    }

    /// The records the verifier checks (the usable ones, after digest
    /// agility). The `record` indices of a [`DaneMatch`] index this list.
    #[must_use]
    pub fn records(&self) -> &[Tlsa] {
        &self.records
    }

    /// The reference names a DANE-TA leaf is checked against.
    #[must_use]
    pub fn names(&self) -> &[ServerName<'static>] {
        &self.names
    }

    /// Checks a presented chain (`end_entity` and the certificates the
    /// server sent after it) at time `now` (validity dates of a DANE-TA
    /// chain), and says which record authenticated it: what
    /// [`ServerCertVerifier::verify_server_cert`] does.
    ///
    /// # Errors
    ///
    /// [`TlsaMismatch`] (see [`is_tlsa_mismatch`]) when no usable record
    /// matches; when only DANE-TA records match, the error of the first
    /// one's chain (`UnknownIssuer`, `BadSignature`, `Expired`, ...) or of
    /// the name check (`NotValidForName`), as rustls reports them.
    pub fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<DaneMatch, rustls::Error> {
        let intermediates = &intermediates[..intermediates.len().min(MAX_CHAIN - 1)];
        let chain: Vec<&[u8]> = std::iter::once(end_entity.as_ref())
            .chain(intermediates.iter().map(|c| c.as_ref()))
            .collect();
        let leaf_key = smtp_mx::dane::subject_public_key_info(end_entity.as_ref());
        let mut first_error = None;
        for found in smtp_mx::dane::match_chain(&self.records, &chain) {
            let roots = match found {
                DaneMatch::EndEntity { .. } => return Ok(found),
                DaneMatch::TrustAnchorCert { depth, .. } => {
                    let mut roots = RootCertStore::empty();
                    let Some(anchor) = chain.get(depth) else {
                        continue;
                    };
                    // The leaf's own key anchors nothing, sent twice or not.
                    if leaf_key.is_some()
                        && smtp_mx::dane::subject_public_key_info(anchor) == leaf_key
                    {
                        continue;
                    }
                    if let Err(e) = roots.add(CertificateDer::from(*anchor)) {
                        first_error.get_or_insert(e);
                        continue;
                    }
                    roots
                }
                DaneMatch::TrustAnchorKey { record } => {
                    let key = self.records.get(record).map(|r| r.data.as_slice());
                    // The leaf's own key anchors nothing (see the module).
                    if key.is_none() || key == leaf_key {
                        continue;
                    }
                    key_anchors(key.unwrap_or_default(), &chain)
                }
            };
            match self.verify_chain(end_entity, intermediates, &roots, now) {
                Ok(()) => return self.verify_name(end_entity).map(|()| found),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| TlsaMismatch.into()))
    }

    /// A client configuration that verifies servers with this verifier
    /// only, with the provider's safe default protocol versions and its
    /// own session store (see [Resumption](crate::dane#resumption)). TLS
    /// made with it counts as verified
    /// ([`tls::verifies_certificates`](crate::tls::verifies_certificates)).
    ///
    /// # Errors
    ///
    /// [`Error::Tls`](crate::Error::Tls) when the provider supports no safe
    /// protocol version.
    pub fn client_config(self) -> Result<Arc<ClientConfig>, crate::Error> {
        let config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(self))
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// The chain from `end_entity` to one of `roots`, at `now`.
    fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        roots: &RootCertStore,
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        let leaf = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &leaf,
            roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )
    }

    /// The leaf against the reference names: the first that matches, else
    /// the error of the first.
    fn verify_name(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let leaf = ParsedCertificate::try_from(end_entity)?;
        let mut first_error = None;
        for name in &self.names {
            match verify_server_name(&leaf, name) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        )))
    }
}

impl ServerCertVerifier for DaneVerifier {
    /// [`DaneVerifier::check`]. The name rustls was given for the
    /// connection (the SNI) is not used: the reference names are the
    /// verifier's own.
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, now)
            .map(|_| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crate::tls::handshake_signature(
            crate::tls::TlsVersion::V12,
            &self.provider,
            message,
            cert,
            dss,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crate::tls::handshake_signature(
            crate::tls::TlsVersion::V13,
            &self.provider,
            message,
            cert,
            dss,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A reference name as rustls matches it: lower case, without a final dot.
fn reference_name(name: &str) -> Result<ServerName<'static>, DaneError> {
    let bare = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    DnsName::try_from(bare)
        .map(ServerName::DnsName)
        .map_err(|_| DaneError::InvalidName(name.to_owned()))
}

/// The trust anchors a full public key (`2 1 0`, DER SubjectPublicKeyInfo)
/// stands for: webpki finds an anchor by the issuer name of the certificate
/// it signed, which the record does not give, so one anchor per issuer name
/// in the chain, each with that key. Empty when the key is not a DER
/// SEQUENCE.
fn key_anchors(spki: &[u8], chain: &[&[u8]]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let Some(key) = der::element(spki)
        .filter(|e| e.tag == der::SEQUENCE && e.rest.is_empty())
        .map(|e| e.content)
    else {
        return roots;
    };
    for issuer in chain.iter().filter_map(|cert| der::issuer(cert)) {
        if roots.roots.iter().any(|a| a.subject.as_ref() == issuer) {
            continue;
        }
        roots.roots.push(TrustAnchor {
            subject: issuer.to_vec().into(),
            subject_public_key_info: key.to_vec().into(),
            name_constraints: None,
        });
    }
    roots
}

/// Just enough DER to find a certificate's issuer name and a key's content.
mod der {
    /// The tag of a SEQUENCE.
    pub(super) const SEQUENCE: u8 = 0x30;
    /// The tag of an INTEGER.
    const INTEGER: u8 = 0x02;
    /// The tag of a certificate's `[0] EXPLICIT` version.
    const VERSION: u8 = 0xa0;
    /// The most octets of a long-form length read (4 GiB).
    const MAX_LENGTH_OCTETS: usize = 4;

    /// One element: its tag, its content and what follows it.
    pub(super) struct Element<'a> {
        pub(super) tag: u8,
        pub(super) content: &'a [u8],
        pub(super) rest: &'a [u8],
    }

    /// The element at the start of `input`; `None` when it is truncated or
    /// its length is malformed (indefinite, or over 4 octets).
    pub(super) fn element(input: &[u8]) -> Option<Element<'_>> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > MAX_LENGTH_OCTETS || rest.len() < n {
                return None;
            }
            let (octets, rest) = rest.split_at(n);
            let len = octets
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, rest)
        };
        if rest.len() < len {
            return None;
        }
        let (content, rest) = rest.split_at(len);
        Some(Element { tag, content, rest })
    }

    /// The content of the issuer Name of certificate `cert` (RFC 5280
    /// section 4.1), the form webpki compares with an anchor's subject.
    pub(super) fn issuer(cert: &[u8]) -> Option<&[u8]> {
        let outer = element(cert).filter(|e| e.tag == SEQUENCE)?;
        let tbs = element(outer.content).filter(|e| e.tag == SEQUENCE)?;
        let mut fields = tbs.content;
        if fields.first() == Some(&VERSION) {
            fields = element(fields)?.rest;
        }
        // serialNumber, then signature (an AlgorithmIdentifier).
        for want in [INTEGER, SEQUENCE] {
            fields = element(fields).filter(|e| e.tag == want)?.rest;
        }
        element(fields)
            .filter(|e| e.tag == SEQUENCE)
            .map(|e| e.content)
    }
}

#[cfg(test)]
mod tests {
    use super::der;

    #[test]
    fn der_lengths_are_bounded_and_checked() {
        // Short form, long form, truncated, indefinite, over 4 octets.
        assert_eq!(
            der::element(&[0x30, 0x01, 0xaa]).map(|e| e.content),
            Some(&[0xaa][..])
        );
        let long = [0x30, 0x81, 0x02, 0xaa, 0xbb, 0xcc];
        let e = der::element(&long).map(|e| (e.content, e.rest));
        assert_eq!(e, Some((&[0xaa, 0xbb][..], &[0xcc][..])));
        assert!(der::element(&[0x30, 0x02, 0xaa]).is_none());
        assert!(der::element(&[0x30, 0x80, 0x00, 0x00]).is_none());
        assert!(der::element(&[0x30, 0x85, 0, 0, 0, 0, 1, 0]).is_none());
        assert!(der::element(&[0x30]).is_none());
        assert!(der::element(&[]).is_none());
    }

    #[test]
    fn the_issuer_is_found_and_a_malformed_certificate_has_none() {
        // Certificate { tbs { serial 1, signature {}, issuer { 0xaa } } }
        let cert = [
            0x30, 0x0a, 0x30, 0x08, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x01, 0xaa,
        ];
        assert_eq!(der::issuer(&cert), Some(&[0xaa][..]));
        // With a version field before the serial number.
        let cert = [
            0x30, 0x0f, 0x30, 0x0d, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x01, 0x30, 0x00,
            0x30, 0x01, 0xbb,
        ];
        assert_eq!(der::issuer(&cert), Some(&[0xbb][..]));
        // Truncated anywhere: no issuer.
        for end in 0..12 {
            let mut short = cert[..end.min(cert.len())].to_vec();
            if short.len() > 1 {
                short[1] = u8::try_from(short.len() - 2).unwrap_or(0);
            }
            assert_eq!(der::issuer(&short), None, "{short:02x?}");
        }
        // The serial number missing: the signature's place is wrong.
        let cert = [0x30, 0x07, 0x30, 0x05, 0x30, 0x00, 0x30, 0x01, 0xaa];
        assert_eq!(der::issuer(&cert), None);
    }
}
