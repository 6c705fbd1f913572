//! TLS configuration shared by every connection of the process.
//!
//! What is built depends on the crate's features:
//!
//! | feature | what it brings |
//! |---|---|
//! | `tls` | rustls; off, no TLS code is built and every TLS request fails with [`Error::TlsUnavailable`](crate::Error::TlsUnavailable) |
//! | `ring` (default) | the `ring` crypto provider |
//! | `aws-lc-rs` | the `aws-lc-rs` crypto provider (rustls' own default, and its FIPS route); it wins when `ring` is on too |
//! | `rustls-platform-verifier` (default) | certificates checked by the operating system's verifier (corporate CAs, revocation, the user's trust settings on macOS and Windows) |
//! | `webpki-roots` | Mozilla's root certificates compiled in (containers without a certificate store) |
//! | `rustls-native-certs` | the roots the platform's store holds, read once |
//!
//! [`default_config`] uses the first that works of: the platform verifier;
//! then the roots of `rustls-native-certs` and `webpki-roots` together. So
//! `webpki-roots` beside the default features is a fallback for a system
//! whose store is empty.
//!
//! # TLS that verifies nothing
//!
//! [`dangerous_accept_any_certificate`] makes the one configuration of the
//! process that accepts any certificate (`smtp-send --insecure`; a test
//! server with a self-signed certificate). Sessions recognise it by pointer
//! ([`verifies_certificates`]) and count TLS made with it as plaintext for
//! AUTH: an attacker in the path can present any certificate, so a password
//! sent over it is as good as sent in the clear (KumoMTA's
//! `allow_smtp_auth_plain_without_valid_certificate`). Only
//! `allow_plaintext_auth` lets a password through it. A configuration that
//! verifies nothing and was made otherwise (your own verifier, or a copy of
//! this one) cannot be recognised and counts as verified: make it with this
//! function.

#[cfg(feature = "tls")]
pub use enabled::*;

#[cfg(not(feature = "tls"))]
pub use disabled::*;

/// Whether this build has TLS (the `tls` feature).
pub const AVAILABLE: bool = cfg!(feature = "tls");

#[cfg(feature = "tls")]
mod enabled {
    use std::path::Path;
    use std::sync::{Arc, Mutex, PoisonError};

    pub use rustls::ClientConfig;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    use crate::Error;

    /// A TLS failure: rustls' error.
    pub type TlsError = rustls::Error;

    /// The crypto provider connections use: the process-wide one when the
    /// application installed one (`CryptoProvider::install_default`), else the
    /// one the crate's features chose (`aws-lc-rs`, else `ring`). Without
    /// either feature and without an installed provider, there is none:
    /// [`Error::TlsUnavailable`].
    pub fn provider() -> Result<Arc<CryptoProvider>, Error> {
        if let Some(p) = CryptoProvider::get_default() {
            return Ok(p.clone());
        }
        #[cfg(feature = "aws-lc-rs")]
        return Ok(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
        return Ok(Arc::new(rustls::crypto::ring::default_provider()));
        #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
        return Err(Error::TlsUnavailable(
            "no crypto provider: enable the ring or aws-lc-rs feature, or install one \
             with rustls::crypto::CryptoProvider::install_default",
        ));
    }

    /// The client configuration connections use when given none, built on
    /// first use and then shared by every connection of the process, so that
    /// rustls' session cache lets a later connection to the same server resume
    /// the TLS session (an abbreviated handshake).
    ///
    /// Trust comes from the operating system's verifier
    /// (`rustls-platform-verifier`), else from the roots of
    /// `rustls-native-certs` and `webpki-roots` (see the [module](crate::tls)). When
    /// none of them yields a root certificate, the error is
    /// [`Error::NoRootCertificates`], and the next call tries again;
    /// certificates a store holds but cannot parse are skipped, as browsers do.
    pub fn default_config() -> Result<Arc<ClientConfig>, Error> {
        static CONFIG: Mutex<Option<Arc<ClientConfig>>> = Mutex::new(None);
        let mut slot = CONFIG.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(config) = slot.as_ref() {
            return Ok(config.clone());
        }
        let config = Arc::new(build_default()?);
        *slot = Some(config.clone());
        Ok(config)
    }

    fn build_default() -> Result<ClientConfig, Error> {
        let provider = provider()?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        // Why each source gave nothing, for the error.
        #[allow(unused_mut)]
        let mut why: Vec<String> = Vec::new();

        #[cfg(feature = "rustls-platform-verifier")]
        match rustls_platform_verifier::Verifier::new(provider.clone()) {
            Ok(verifier) => {
                return Ok(builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
                    .with_no_client_auth());
            }
            Err(e) => why.push(format!("the platform verifier: {e}")),
        }

        #[allow(unused_mut)]
        let mut roots = rustls::RootCertStore::empty();
        #[cfg(feature = "rustls-native-certs")]
        {
            let found = rustls_native_certs::load_native_certs();
            let (_added, _unparsable) = roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                why.push(match found.errors.first() {
                    Some(e) => format!("the platform's store: {e}"),
                    None => "the platform's store holds none".to_owned(),
                });
            }
        }
        #[cfg(feature = "webpki-roots")]
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());

        if roots.is_empty() {
            if why.is_empty() {
                why.push(
                    "no source of roots was built in (features rustls-platform-verifier, \
                     rustls-native-certs, webpki-roots)"
                        .to_owned(),
                );
            }
            return Err(Error::NoRootCertificates(why.join("; ")));
        }
        Ok(builder.with_root_certificates(roots).with_no_client_auth())
    }

    /// A configuration that verifies servers against the CA certificates in
    /// `pem` (one or more PEM `CERTIFICATE` blocks; other blocks are
    /// skipped) and nothing else: not the platform's verifier nor any root
    /// of the default configuration, as `curl --cacert` and `smtp-send
    /// --ca-file` do. For a private CA, an internal relay, a test server
    /// ([`smtp_testkit`'s CA](https://docs.rs/smtp-testkit), say). Host
    /// names are checked as with the default configuration, and TLS made
    /// with it counts as verified ([`verifies_certificates`]).
    ///
    /// Each call builds a new configuration with its own session cache:
    /// build it once and share the `Arc` (a pool's connect function clones
    /// it), so that later connections resume the TLS session.
    ///
    /// ```
    /// # let pem = rcgen::generate_simple_self_signed(vec!["relay.internal".into()])
    /// #     .map_err(|e| smtp_adapter::Error::NoRootCertificates(e.to_string()))?
    /// #     .cert
    /// #     .pem();
    /// // let pem = std::fs::read("private-ca.pem")?;
    /// let config = smtp_adapter::tls::config_with_ca_pem(pem.as_bytes())?;
    /// assert!(smtp_adapter::tls::verifies_certificates(&config));
    /// // smtp_blocking::SmtpClient::builder(host).tls_config(config)...
    /// # Ok::<(), smtp_adapter::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NoRootCertificates`] when `pem` holds no certificate, a
    /// malformed PEM block, or a certificate rustls refuses as a root;
    /// [`Error::TlsUnavailable`] without a crypto provider.
    pub fn config_with_ca_pem(pem: &[u8]) -> Result<Arc<ClientConfig>, Error> {
        use rustls::pki_types::pem::PemObject as _;

        let bad =
            |e: &dyn std::fmt::Display| Error::NoRootCertificates(format!("CA certificates: {e}"));
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
        }
        if roots.is_empty() {
            return Err(bad(&"no PEM CERTIFICATE block"));
        }
        let config = ClientConfig::builder_with_provider(provider()?)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// [`config_with_ca_pem`] with the PEM read from the file at `path`
    /// (`smtp-send --ca-file`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read; those of
    /// [`config_with_ca_pem`], naming the file.
    pub fn config_with_ca_file(path: impl AsRef<Path>) -> Result<Arc<ClientConfig>, Error> {
        let path = path.as_ref();
        let pem = std::fs::read(path)?;
        config_with_ca_pem(&pem).map_err(|e| match e {
            Error::NoRootCertificates(why) => {
                Error::NoRootCertificates(format!("{}: {why}", path.display()))
            }
            e => e,
        })
    }

    /// `config` when given, else [`default_config`].
    pub fn config_or_default(
        config: Option<&Arc<ClientConfig>>,
    ) -> Result<Arc<ClientConfig>, Error> {
        match config {
            Some(c) => Ok(c.clone()),
            None => default_config(),
        }
    }

    /// The name a server's certificate is checked against.
    pub fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
        ServerName::try_from(host.to_owned()).map_err(|_| Error::InvalidServerName(host.to_owned()))
    }

    /// The one configuration of the process that accepts any certificate for
    /// any name (signatures are still checked, so the handshake stays
    /// well-formed), built on first use with [`provider`]. TLS made with it
    /// encrypts but authenticates nothing, so sessions count it as plaintext
    /// for AUTH ([`verifies_certificates`]; see the [module](crate::tls)).
    pub fn dangerous_accept_any_certificate() -> Result<Arc<ClientConfig>, Error> {
        let mut slot = INSECURE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(config) = slot.as_ref() {
            return Ok(config.clone());
        }
        let provider = provider()?;
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth();
        let config = Arc::new(config);
        *slot = Some(config.clone());
        Ok(config)
    }

    /// The configuration [`dangerous_accept_any_certificate`] made, once made.
    static INSECURE: Mutex<Option<Arc<ClientConfig>>> = Mutex::new(None);

    /// Whether TLS made with `config` verifies the server's certificate:
    /// false for the configuration of [`dangerous_accept_any_certificate`]
    /// (recognised by pointer), true for every other.
    #[must_use]
    pub fn verifies_certificates(config: &Arc<ClientConfig>) -> bool {
        let slot = INSECURE.lock().unwrap_or_else(PoisonError::into_inner);
        !slot
            .as_ref()
            .is_some_and(|insecure| Arc::ptr_eq(insecure, config))
    }

    /// A TLS version's handshake signature scheme.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum TlsVersion {
        /// TLS 1.2.
        V12,
        /// TLS 1.3.
        V13,
    }

    /// The handshake signature checked with `provider`'s algorithms: what
    /// every certificate verifier of ours does for it, whatever it trusts.
    pub(crate) fn handshake_signature(
        version: TlsVersion,
        provider: &CryptoProvider,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &provider.signature_verification_algorithms;
        match version {
            TlsVersion::V12 => {
                rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
            }
            TlsVersion::V13 => {
                rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
            }
        }
    }

    /// Accepts any certificate; checks the handshake signatures.
    #[derive(Debug)]
    struct AcceptAnyCertificate(Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAnyCertificate {
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
            handshake_signature(TlsVersion::V12, &self.0, message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            handshake_signature(TlsVersion::V13, &self.0, message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

#[cfg(not(feature = "tls"))]
mod disabled {
    use std::sync::Arc;

    use crate::Error;

    const WHY: &str = "this build has no TLS (the tls feature is off)";

    /// Stands for rustls' `ClientConfig` in a build without the `tls` feature:
    /// a type with no values, so that the signatures that take a configuration
    /// stay the same and no call can pass one.
    #[derive(Debug)]
    pub enum ClientConfig {}

    /// Stands for rustls' error in a build without the `tls` feature: a type
    /// with no values, as no TLS can fail.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum TlsError {}

    impl std::fmt::Display for TlsError {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match *self {}
        }
    }

    impl std::error::Error for TlsError {}

    /// Without the `tls` feature there is no configuration:
    /// [`Error::TlsUnavailable`].
    pub fn default_config() -> Result<Arc<ClientConfig>, Error> {
        Err(Error::TlsUnavailable(WHY))
    }

    /// Without the `tls` feature there is no configuration:
    /// [`Error::TlsUnavailable`].
    pub fn config_or_default(
        _config: Option<&Arc<ClientConfig>>,
    ) -> Result<Arc<ClientConfig>, Error> {
        Err(Error::TlsUnavailable(WHY))
    }

    /// The error of every TLS request in a build without the `tls` feature.
    #[must_use]
    pub fn unavailable() -> Error {
        Error::TlsUnavailable(WHY)
    }

    /// Without the `tls` feature there is no configuration:
    /// [`Error::TlsUnavailable`].
    pub fn dangerous_accept_any_certificate() -> Result<Arc<ClientConfig>, Error> {
        Err(Error::TlsUnavailable(WHY))
    }

    /// Without the `tls` feature there is no configuration:
    /// [`Error::TlsUnavailable`].
    pub fn config_with_ca_pem(_pem: &[u8]) -> Result<Arc<ClientConfig>, Error> {
        Err(Error::TlsUnavailable(WHY))
    }

    /// Without the `tls` feature there is no configuration:
    /// [`Error::TlsUnavailable`].
    pub fn config_with_ca_file(
        _path: impl AsRef<std::path::Path>,
    ) -> Result<Arc<ClientConfig>, Error> {
        Err(Error::TlsUnavailable(WHY))
    }

    /// Without the `tls` feature no configuration exists to ask about.
    #[must_use]
    pub fn verifies_certificates(config: &Arc<ClientConfig>) -> bool {
        match **config {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::Error;

    /// The default configuration is built once: a second call returns the
    /// same one (whose session cache then serves every connection). Where
    /// no source yields a root certificate the error says so.
    #[test]
    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    fn default_config_is_built_once() {
        match default_config() {
            Ok(first) => {
                let second = default_config().unwrap();
                assert!(std::sync::Arc::ptr_eq(&first, &second));
            }
            Err(e) => assert!(matches!(e, Error::NoRootCertificates(_)), "{e}"),
        }
    }

    /// Mozilla's roots never fail to load.
    #[test]
    #[cfg(all(feature = "webpki-roots", any(feature = "ring", feature = "aws-lc-rs")))]
    fn webpki_roots_always_give_a_config() {
        assert!(default_config().is_ok());
    }

    /// The provider the features chose.
    #[test]
    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    fn the_features_choose_the_provider() {
        let p = provider().unwrap();
        #[cfg(feature = "aws-lc-rs")]
        let expected = rustls::crypto::aws_lc_rs::default_provider();
        #[cfg(not(feature = "aws-lc-rs"))]
        let expected = rustls::crypto::ring::default_provider();
        // The providers' own types show in their Debug ("Ring", "AwsLcRs").
        assert_eq!(
            format!("{:?}", p.key_provider),
            format!("{:?}", expected.key_provider)
        );
    }

    /// The accept-anything configuration is made once and recognised by
    /// pointer; every other configuration counts as verifying, a copy of the
    /// insecure one included (which is why the module says to make it with
    /// the function).
    #[test]
    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    fn the_insecure_configuration_is_recognised() {
        let insecure = dangerous_accept_any_certificate().unwrap();
        assert!(std::sync::Arc::ptr_eq(
            &insecure,
            &dangerous_accept_any_certificate().unwrap()
        ));
        assert!(!verifies_certificates(&insecure));
        let copy = std::sync::Arc::new((*insecure).clone());
        assert!(verifies_certificates(&copy));
        if let Ok(default) = default_config() {
            assert!(verifies_certificates(&default));
        }
    }

    /// TLS without a provider feature, and none installed: the typed error.
    #[test]
    #[cfg(all(feature = "tls", not(any(feature = "ring", feature = "aws-lc-rs"))))]
    fn without_a_provider_tls_is_unavailable() {
        assert!(matches!(provider(), Err(Error::TlsUnavailable(_))));
        assert!(matches!(default_config(), Err(Error::TlsUnavailable(_))));
    }

    /// Without TLS, asking for a configuration is the typed error.
    #[test]
    #[cfg(not(feature = "tls"))]
    fn without_tls_asking_for_it_is_a_typed_error() {
        assert!(matches!(default_config(), Err(Error::TlsUnavailable(_))));
        assert!(matches!(
            config_or_default(None),
            Err(Error::TlsUnavailable(_))
        ));
    }
}
