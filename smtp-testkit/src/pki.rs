//! Certificates made at run time: a CA, and a server certificate it signed for
//! `localhost`, `127.0.0.1` and `::1`. Nothing secret is ever checked in.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The error of [`TestPki::generate`].
pub type PkiError = Box<dyn std::error::Error + Send + Sync>;

/// A test certificate authority, a server certificate it signed, and the
/// rustls configurations for both ends (ring provider).
#[derive(Debug, Clone)]
pub struct TestPki {
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    server_der: CertificateDer<'static>,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TestPki {
    /// Generates the CA and the server certificate (ECDSA P-256 keys).
    ///
    /// # Errors
    /// When rcgen or rustls refuse a parameter (not expected).
    pub fn generate() -> Result<TestPki, PkiError> {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "smtp-testkit test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = rcgen::KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        // rcgen makes IP address entries of the names that parse as addresses.
        let mut params = rcgen::CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;

        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        TestPki::from_parts(
            ca_cert.der().clone(),
            ca_cert.pem(),
            vec![cert.der().clone(), ca_cert.der().clone()],
            key_der,
        )
    }

    /// Certificates made elsewhere: the CA (DER and PEM), the server's
    /// chain (its own certificate first, then what it sends with it) and
    /// its private key. For a server with a certificate for chosen names
    /// (a mail exchanger's, say) signed by a CA shared with other servers.
    ///
    /// # Errors
    /// When rustls refuses the key or the CA certificate.
    pub fn from_parts(
        ca_der: CertificateDer<'static>,
        ca_pem: String,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<TestPki, PkiError> {
        let server_der = chain.first().cloned().ok_or("an empty certificate chain")?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;

        let mut roots = RootCertStore::empty();
        roots.add(ca_der.clone())?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TestPki {
            ca_der,
            ca_pem,
            server_der,
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// The CA certificate, DER.
    #[must_use]
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// The CA certificate, PEM.
    #[must_use]
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The server certificate, DER.
    #[must_use]
    pub fn server_cert_der(&self) -> &CertificateDer<'static> {
        &self.server_der
    }

    /// Writes the CA certificate as PEM (for a command line's `--ca-file`).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write_ca_pem(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, &self.ca_pem)
    }

    /// A client configuration (ring provider) that trusts only this CA.
    #[must_use]
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// The server's configuration (ring provider, no client certificates).
    #[must_use]
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }
}
