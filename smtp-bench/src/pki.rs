//! The certificates of the TLS rows, made at run time with rcgen: a CA and a
//! server certificate it signed for `localhost` and `127.0.0.1`, written as PEM
//! files that the sink (`--tls-cert`, `--tls-key`), aiosmtpd and every client
//! (`--tls-ca`) read. Nothing secret is checked in; the key lives in the output
//! directory of the run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::clients::BoxError;

/// Where [`write_certificates`] put its files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate (PEM): what clients trust.
    pub ca: PathBuf,
    /// The server certificate followed by the CA's (PEM).
    pub chain: PathBuf,
    /// The server's private key (PKCS#8 PEM).
    pub key: PathBuf,
}

/// The crypto provider every TLS configuration of the benchmark uses (ring,
/// as the adapters, lettre and mail-send are built here).
#[must_use]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes a CA and a server certificate for `localhost` and `127.0.0.1` (ECDSA
/// P-256) and writes `sink-ca.pem`, `sink-chain.pem` and `sink-key.pem` into
/// `dir`.
pub fn write_certificates(dir: &Path) -> Result<TlsFiles, BoxError> {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "smtp-bench sink CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = rcgen::KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    // rcgen makes an IP address entry of a name that parses as an address.
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;

    let files = TlsFiles {
        ca: dir.join("sink-ca.pem"),
        chain: dir.join("sink-chain.pem"),
        key: dir.join("sink-key.pem"),
    };
    std::fs::write(&files.ca, ca_cert.pem())?;
    std::fs::write(&files.chain, format!("{}{}", cert.pem(), ca_cert.pem()))?;
    std::fs::write(&files.key, key.serialize_pem())?;
    Ok(files)
}

/// The sink's rustls configuration from a PEM chain and key: TLS 1.3 and 1.2,
/// rustls' defaults otherwise (a server-side session cache, so that clients
/// that keep their configuration resume).
pub fn server_config(chain: &Path, key: &Path) -> Result<Arc<ServerConfig>, BoxError> {
    let certs = CertificateDer::pem_file_iter(chain)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// The certificates of a PEM file (the CA a client trusts).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, BoxError> {
    let certs = CertificateDer::pem_file_iter(path)?.collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", path.display()).into());
    }
    Ok(certs)
}

/// A client configuration trusting only `roots`, rustls' defaults otherwise
/// (among them an in-memory session cache: connections made with the same
/// configuration resume their TLS session).
pub fn client_config(roots: &[CertificateDer<'static>]) -> Result<Arc<ClientConfig>, BoxError> {
    let mut store = RootCertStore::empty();
    for r in roots {
        store.add(r.clone())?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
