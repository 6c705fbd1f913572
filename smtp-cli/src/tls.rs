//! TLS settings from `--ca-file` and `--insecure`, made by the library's
//! helpers (`smtp_adapter::tls`), which programs use too.

use std::path::Path;
use std::sync::Arc;

use smtp_blocking::tls::{self, ClientConfig};

use crate::Failure;

/// `None` keeps the library's default (the operating system's verifier, or
/// the roots the build chose).
pub(crate) fn config(
    ca_file: Option<&Path>,
    insecure: bool,
) -> Result<Option<Arc<ClientConfig>>, Failure> {
    let config = if insecure {
        // The shared accept-anything configuration: sessions recognise it and
        // count TLS made with it as plaintext for AUTH.
        tls::dangerous_accept_any_certificate()
    } else if let Some(path) = ca_file {
        // Trusts the file's certificates and nothing else.
        tls::config_with_ca_file(path).map_err(|e| match e {
            smtp_blocking::Error::NoRootCertificates(why) => {
                smtp_blocking::Error::NoRootCertificates(format!("--ca-file {why}"))
            }
            smtp_blocking::Error::Io(io) => smtp_blocking::Error::Io(std::io::Error::new(
                io.kind(),
                format!("--ca-file {}: {io}", path.display()),
            )),
            e => e,
        })
    } else {
        return Ok(None);
    };
    config.map(Some).map_err(|e| match e {
        smtp_blocking::Error::TlsUnavailable(_) => Failure {
            status: crate::EXIT_FAILURE,
            kind: "tls",
            code: None,
            message: e.to_string(),
            accepted: Vec::new(),
            refused: Vec::new(),
        },
        e => Failure::usage(e.to_string()),
    })
}
