//! DKIM signing (RFC 6376; Ed25519-SHA256 from RFC 8463) with the `mail-auth`
//! crate, for every adapter: [`DkimSigner::sign`] takes any [`Message`] and
//! returns it with a `DKIM-Signature` header field in front, which the send
//! calls take as they take bytes:
//!
//! ```no_run
//! use smtp_adapter::dkim::{DkimKey, DkimSigner};
//! # struct Smtp;
//! # impl Smtp { fn send_message<'m>(&mut self, _: impl Into<smtp_adapter::Message<'m>>) -> Result<(), smtp_adapter::Error> { Ok(()) } }
//! # let mut smtp = Smtp;
//!
//! let key = DkimKey::from_pem_file("/etc/dkim/mail.pem")?;
//! let signer = DkimSigner::new(key, "example.org", "mail")?;
//! let message = b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello\r\n";
//! // `smtp` is a session of any adapter (`.await` the call on the async ones).
//! smtp.send_message(signer.sign(message)?)?;
//! # Ok::<(), smtp_adapter::Error>(())
//! ```
//!
//! The signature is computed over the message as the server stores it: bare CR
//! and bare LF are turned into CRLF first (the same normalisation the body
//! encoder applies on the wire; the message is copied only when it has any),
//! and dot-stuffing, which happens on the wire after signing, is undone by the
//! server. Headers and body are canonicalised `relaxed/relaxed`. `Bcc`, which
//! `send_message` removes, is never among the signed fields.
//!
//! The signature is written in front of the message rather than into it, so a
//! message in memory is not copied to sign it; signing a signed message again
//! (with a second key, say) puts the new signature in front of the first.

use std::borrow::Cow;
use std::path::Path;

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::Done;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use crate::Error;
use crate::message::{Message, Rendered};

/// A private key for DKIM: RSA (signing `rsa-sha256`) or Ed25519
/// (`ed25519-sha256`). Its `Debug` shows the algorithm only.
pub struct DkimKey {
    key: mail_auth::common::crypto::DkimKey,
    record: String,
}

impl std::fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKey")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

fn key_error(what: impl std::fmt::Display) -> Error {
    Error::Dkim(format!("the DKIM key cannot be used: {what}"))
}

impl DkimKey {
    /// Reads a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, RSA or Ed25519,
    /// as `openssl genpkey` writes them) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    /// RSA keys of 2048 to 8192 bits (RFC 8301 section 3.2 asks for at least
    /// 1024 and recommends 2048; `ring`, which signs, takes 2048 and more).
    pub fn from_pem(pem: &[u8]) -> Result<DkimKey, Error> {
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| key_error(pem_error(&e)))?;
        match der {
            PrivateKeyDer::Pkcs8(ref p) => {
                // PKCS#8 v1 (OpenSSL's form) has no public key to check.
                if let Ok(key) = Ed25519Key::from_pkcs8_maybe_unchecked_der(p.secret_pkcs8_der()) {
                    return Ok(DkimKey::ed25519(key));
                }
                DkimKey::rsa(der)
            }
            PrivateKeyDer::Pkcs1(_) => DkimKey::rsa(der),
            _ => Err(key_error(
                "not an RSA or Ed25519 key (EC keys cannot sign DKIM)",
            )),
        }
    }

    /// Reads a PEM private key file (see [`DkimKey::from_pem`]).
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<DkimKey, Error> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|e| Error::Dkim(format!("reading {}: {e}", path.display())))?;
        DkimKey::from_pem(&pem)
    }

    fn rsa(der: PrivateKeyDer<'_>) -> Result<DkimKey, Error> {
        let key = RsaKey::<Sha256>::from_key_der(der).map_err(key_error)?;
        let public = key.public_key();
        let record = format!(
            "v=DKIM1; k=rsa; p={}",
            base64(&subject_public_key_info(&public))
        );
        Ok(DkimKey {
            key: key.into(),
            record,
        })
    }

    fn ed25519(key: Ed25519Key) -> DkimKey {
        let record = format!("v=DKIM1; k=ed25519; p={}", base64(&key.public_key()));
        DkimKey {
            key: key.into(),
            record,
        }
    }

    /// The signature algorithm: `rsa-sha256` or `ed25519-sha256`.
    #[must_use]
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            mail_auth::common::crypto::DkimKey::Ed25519(_) => "ed25519-sha256",
            _ => "rsa-sha256",
        }
    }

    /// The key record to publish as TXT at `<selector>._domainkey.<domain>`
    /// (`v=DKIM1; k=rsa; p=...` with the RSA key's SubjectPublicKeyInfo, or
    /// `k=ed25519` with the raw 32-byte key, RFC 8463 section 4.2).
    #[must_use]
    pub fn dns_record(&self) -> &str {
        &self.record
    }
}

/// A PEM error without key material in it.
fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::NoItemsFound => "no private key in the PEM data".to_owned(),
        E::MissingSectionEnd { .. } => "a PEM section has no END line".to_owned(),
        E::IllegalSectionStart { .. } => "a malformed PEM BEGIN line".to_owned(),
        E::Base64Decode(_) => "bad base64 in the PEM data".to_owned(),
        _ => "unreadable PEM data".to_owned(),
    }
}

/// The header fields signed by default: those RFC 6376 section 5.4.1 names
/// that a composed message carries, and the MIME ones.
pub const DEFAULT_HEADERS: &[&str] = &[
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// Signs messages with one key for one domain and selector.
pub struct DkimSigner {
    signer: mail_auth::dkim::DkimSigner<mail_auth::common::crypto::DkimKey, Done>,
    domain: String,
    selector: String,
    algorithm: &'static str,
}

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A domain or selector: DNS labels in ASCII (A-labels for an IDN).
fn dns_name(what: &str, name: &str) -> Result<String, Error> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(Error::Dkim(format!("not a DKIM {what}: {name:?}")))
    }
}

impl DkimSigner {
    /// A signer for `domain` (the `d=` tag) and `selector` (`s=`) signing
    /// [`DEFAULT_HEADERS`].
    pub fn new(key: DkimKey, domain: &str, selector: &str) -> Result<DkimSigner, Error> {
        DkimSigner::with_headers(key, domain, selector, DEFAULT_HEADERS)
    }

    /// A signer that signs the header fields named in `headers` (`From` is
    /// added when missing: RFC 6376 section 5.4 requires it). A named field the
    /// message lacks is signed as absent, so it cannot be added later.
    pub fn with_headers(
        key: DkimKey,
        domain: &str,
        selector: &str,
        headers: &[&str],
    ) -> Result<DkimSigner, Error> {
        let domain = dns_name("domain", domain)?;
        let selector = dns_name("selector", selector)?;
        let mut names: Vec<String> = Vec::with_capacity(headers.len() + 1);
        if !headers.iter().any(|h| h.eq_ignore_ascii_case("From")) {
            names.push("From".to_owned());
        }
        for h in headers {
            let valid = !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            if !valid {
                return Err(Error::Dkim(format!("not a header field name: {h:?}")));
            }
            names.push((*h).to_owned());
        }
        let algorithm = key.algorithm();
        let signer = mail_auth::dkim::DkimSigner::from_key(key.key)
            .domain(domain.clone())
            .selector(selector.clone())
            .headers(names);
        Ok(DkimSigner {
            signer,
            domain,
            selector,
            algorithm,
        })
    }

    /// `message` with a `DKIM-Signature` header field in front of it, ready for
    /// any send call. A composed message is rendered first; bare line endings
    /// are normalised (see the [module](self) documentation).
    pub fn sign<'m>(&self, message: impl Into<Message<'m>>) -> Result<Message<'m>, Error> {
        let rendered = message.into().render()?;
        let (prefix, bytes) = rendered.into_parts();
        let bytes = match bytes {
            Cow::Borrowed(b) => smtp_sansio::body::normalize_line_endings(b),
            Cow::Owned(v) => match smtp_sansio::body::normalize_line_endings(&v) {
                Cow::Borrowed(_) => Cow::Owned(v),
                Cow::Owned(n) => Cow::Owned(n),
            },
        };
        let prefix = smtp_sansio::body::normalize_line_endings(&prefix).into_owned();
        let signature = self
            .signer
            .sign_chained([prefix.as_slice(), &bytes])
            .map_err(|e| Error::Dkim(format!("signing failed: {e}")))?;
        let mut header = signature.to_header().into_bytes();
        header.extend_from_slice(&prefix);
        Ok(Rendered::new(header, bytes).into())
    }
}

/// The SubjectPublicKeyInfo of an RSA key given as RSAPublicKey (both DER).
fn subject_public_key_info(rsa_public_key: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption, NULL }
    const ALGORITHM: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0u8];
    bits.extend_from_slice(rsa_public_key);
    let mut body = ALGORITHM.to_vec();
    der(&mut body, 0x03, &bits);
    let mut out = Vec::with_capacity(body.len() + 4);
    der(&mut out, 0x30, &body);
    out
}

/// Appends a DER element (tag, definite length, contents).
fn der(out: &mut Vec<u8>, tag: u8, contents: &[u8]) {
    out.push(tag);
    let len = contents.len();
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    match bytes.get(skip..) {
        Some(significant) if len >= 0x80 => {
            // At most 8 length bytes: 0x80 | n fits in a byte.
            out.push(0x80 | significant.len() as u8);
            out.extend_from_slice(significant);
        }
        _ => out.push(len as u8),
    }
    out.extend_from_slice(contents);
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        let mut out = Vec::new();
        der(&mut out, 0x04, &[0; 0x7f]);
        assert_eq!(out[..2], [0x04, 0x7f]);
        out.clear();
        der(&mut out, 0x04, &[0; 0x80]);
        assert_eq!(out[..3], [0x04, 0x81, 0x80]);
        out.clear();
        der(&mut out, 0x04, &[0; 0x10e]);
        assert_eq!(out[..4], [0x04, 0x82, 0x01, 0x0e]);
    }

    #[test]
    fn names_are_checked() {
        assert!(dns_name("domain", "example.org").is_ok());
        assert!(dns_name("selector", "s1._x-y").is_ok());
        assert!(dns_name("domain", "").is_err());
        assert!(dns_name("domain", "a\r\nb").is_err());
        assert!(dns_name("selector", "a;b=c").is_err());
    }

    #[test]
    fn ec_and_garbage_keys_are_refused_without_echoing_them() {
        let e = DkimKey::from_pem(
            b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("c2VjcmV0"), "{e}");
        assert!(DkimKey::from_pem(b"no pem here").is_err());
    }
}
