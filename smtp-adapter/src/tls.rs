//! TLS configuration shared by every connection of the process.

use std::sync::{Arc, Mutex, PoisonError};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;

use crate::Error;

/// A client configuration trusting the platform's root certificates, built on
/// first use and then shared by every connection of the process, so that
/// rustls' session cache lets a later connection to the same server resume the
/// TLS session. A store from which no certificate loads is
/// [`Error::NoRootCertificates`] (and is tried again on the next call);
/// certificates the store holds but cannot parse are skipped, as browsers do.
pub fn default_config() -> Result<Arc<ClientConfig>, Error> {
    static CONFIG: Mutex<Option<Arc<ClientConfig>>> = Mutex::new(None);
    let mut slot = CONFIG.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(config) = slot.as_ref() {
        return Ok(config.clone());
    }
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (_added, _unparsable) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = match found.errors.first() {
            Some(e) => e.to_string(),
            None => "the platform's store holds none".to_owned(),
        };
        return Err(Error::NoRootCertificates(why));
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    let config = Arc::new(config);
    *slot = Some(config.clone());
    Ok(config)
}

/// `config` when given, else [`default_config`].
pub fn config_or_default(config: Option<&Arc<ClientConfig>>) -> Result<Arc<ClientConfig>, Error> {
    match config {
        Some(c) => Ok(c.clone()),
        None => default_config(),
    }
}

/// The name a server's certificate is checked against.
pub fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_owned()).map_err(|_| Error::InvalidServerName(host.to_owned()))
}
