//! TLS settings from `--ca-file` and `--insecure`.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::Failure;

/// `None` keeps the library's default (the operating system's verifier, or
/// the roots the build chose).
pub(crate) fn config(
    ca_file: Option<&Path>,
    insecure: bool,
) -> Result<Option<Arc<ClientConfig>>, Failure> {
    let provider = smtp_blocking::smtp_adapter::tls::provider().map_err(|e| Failure {
        status: crate::EXIT_FAILURE,
        kind: "tls",
        code: None,
        message: e.to_string(),
        accepted: Vec::new(),
        refused: Vec::new(),
    })?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::usage(e.to_string()))?;
    if insecure {
        let verifier = Arc::new(NoVerification(provider));
        return Ok(Some(Arc::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth(),
        )));
    }
    let Some(path) = ca_file else {
        return Ok(None);
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| Failure::usage(format!("--ca-file {}: {e}", path.display())))?;
    for cert in certs {
        let cert =
            cert.map_err(|e| Failure::usage(format!("--ca-file {}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| Failure::usage(format!("--ca-file {}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(Failure::usage(format!(
            "--ca-file {}: no certificate",
            path.display()
        )));
    }
    Ok(Some(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    )))
}

/// `--insecure`: accepts any certificate (signatures are still checked so the
/// handshake stays well-formed).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
