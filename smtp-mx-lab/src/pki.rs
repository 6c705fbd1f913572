//! The lab's certificates: a CA made at run time, a certificate for each
//! mail exchanger address (127.0.0.11 to .19, for its MX names) and one for
//! the MTA-STS policy server (every `mta-sts.<domain>` of the lab).
//!
//! `prepare` makes them and writes them (DER) with the TLSA digests the
//! zones need (`digests.env`); `run` reads them back, so that the zones NSD
//! serves and the servers the scenarios start agree.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256, Sha512};
use smtp_testkit::TestPki;

use crate::Failure;

/// The mail exchanger whose certificate is forged (see [`prepare`]); no
/// other scenario needs its certificate (it is the refusing MX).
pub const FORGED: u8 = 12;

/// The last octets of the mail exchangers' addresses.
pub const MX_ADDRESSES: std::ops::RangeInclusive<u8> = 11..=19;

/// The certificates the lab's servers use.
pub struct LabPki {
    /// Each mail exchanger's certificates, by the last octet of its address.
    pub mx: Vec<(u8, Arc<TestPki>)>,
    /// The policy server's.
    pub policy: Arc<TestPki>,
}

impl LabPki {
    /// The certificates of the mail exchanger on 127.0.0.`last`.
    pub fn mx(&self, last: u8) -> Arc<TestPki> {
        self.mx
            .iter()
            .find(|(n, _)| *n == last)
            .map_or_else(|| self.policy.clone(), |(_, p)| p.clone())
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure(format!("{what}: {e}"))
}

/// The names on the certificate of the mail exchanger on 127.0.0.`last`.
fn mx_names(last: u8) -> Vec<String> {
    vec![
        format!("mx{last}.signed.test"),
        format!("mx{last}.unsigned.test"),
        "*.signed.test".to_owned(),
        "*.unsigned.test".to_owned(),
    ]
}

fn key_pair() -> Result<rcgen::KeyPair, Failure> {
    rcgen::KeyPair::generate().map_err(|e| err("key generation", e))
}

/// A CA named `name`: its certificate and its issuer.
fn make_ca(
    name: &str,
) -> Result<(rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>), Failure> {
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| err("CA parameters", e))?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let key = key_pair()?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| err("CA certificate", e))?;
    Ok((cert, rcgen::Issuer::new(params, key)))
}

/// Makes the CA and every certificate, and writes them and the digests to
/// `dir`. The server on [`FORGED`] gets a leaf signed by another CA (with
/// the same name): it sends it with the genuine lab CA above it, a chain
/// that a DANE-TA record of the lab CA must not accept (Stalwart #2287).
pub fn prepare(dir: &Path, policy_names: &[String]) -> Result<(), Failure> {
    let (ca, issuer) = make_ca("smtp-mx-lab CA")?;
    let (_, rogue) = make_ca("smtp-mx-lab CA")?;
    write(dir, "ca.der", ca.der())?;
    write(dir, "ca.pem", ca.pem().as_bytes())?;
    let ca_spki = smtp_mx::dane::subject_public_key_info(ca.der())
        .ok_or_else(|| Failure("the CA certificate has no readable key".into()))?;
    let mut digests = format!("CASPKI256={}\n", hex(&Sha256::digest(ca_spki)));

    let leaf = |name: &str, names: Vec<String>, issuer: &rcgen::Issuer<'_, rcgen::KeyPair>| {
        let mut params =
            rcgen::CertificateParams::new(names).map_err(|e| err("certificate names", e))?;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = key_pair()?;
        let cert = params
            .signed_by(&key, issuer)
            .map_err(|e| err("certificate", e))?;
        write(dir, &format!("{name}.der"), cert.der())?;
        write(dir, &format!("{name}.key"), &key.serialize_der())?;
        Ok::<_, Failure>(cert.der().to_vec())
    };
    for last in MX_ADDRESSES {
        let by = if last == FORGED { &rogue } else { &issuer };
        let der = leaf(&format!("mx{last}"), mx_names(last), by)?;
        let spki = smtp_mx::dane::subject_public_key_info(&der)
            .ok_or_else(|| Failure("a certificate without a readable key".into()))?;
        let _ = writeln!(digests, "SPKI256_{last}={}", hex(&Sha256::digest(spki)));
        let _ = writeln!(digests, "SPKI512_{last}={}", hex(&Sha512::digest(spki)));
        let _ = writeln!(digests, "CERT256_{last}={}", hex(&Sha256::digest(&der)));
    }
    leaf("policy", policy_names.to_vec(), &issuer)?;
    write(dir, "digests.env", digests.as_bytes())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Failure> {
    fs::write(dir.join(name), bytes).map_err(|e| err(&format!("writing {name}"), e))
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, Failure> {
    fs::read(dir.join(name)).map_err(|e: io::Error| err(&format!("reading {name}"), e))
}

/// Reads back what [`prepare`] wrote.
pub fn load(dir: &Path) -> Result<LabPki, Failure> {
    let ca_der = CertificateDer::from(read(dir, "ca.der")?);
    let ca_pem = String::from_utf8(read(dir, "ca.pem")?).map_err(|e| err("ca.pem", e))?;
    let pki = |name: &str| -> Result<Arc<TestPki>, Failure> {
        let cert = CertificateDer::from(read(dir, &format!("{name}.der"))?);
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(read(dir, &format!("{name}.key"))?));
        TestPki::from_parts(
            ca_der.clone(),
            ca_pem.clone(),
            vec![cert, ca_der.clone()],
            key,
        )
        .map(Arc::new)
        .map_err(|e| err(name, e))
    };
    let mut mx = Vec::new();
    for last in MX_ADDRESSES {
        mx.push((last, pki(&format!("mx{last}"))?));
    }
    let policy = pki("policy")?;
    Ok(LabPki { mx, policy })
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
