//! TLS settings from `--ca-file` and `--insecure`.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

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
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::usage(e.to_string()))?;
    if insecure {
        // The shared accept-anything configuration: sessions recognise it and
        // count TLS made with it as plaintext for AUTH.
        let config = smtp_blocking::smtp_adapter::tls::dangerous_accept_any_certificate()
            .map_err(|e| Failure::usage(e.to_string()))?;
        return Ok(Some(config));
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
