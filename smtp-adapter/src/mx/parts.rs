//! The parts of a delivery driver that are not I/O, shared by the
//! facades' drivers: how an envelope is cut per transaction, how an answer
//! is checked, which TLS configuration a plan asks for, how a facade error
//! is told to the engine.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use smtp_mx::TlsFailure;
use smtp_mx::engine::Opening;

use super::{Answer, DnsAnswer, MAX_POLICY_BODY, PolicyFetch, Query, Rcode, Security};
use crate::tls::ClientConfig;
use crate::{Error, Tls};

/// Seconds since the Unix epoch (0 on a clock set before it).
#[must_use]
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether `answer` is of the kind `query` asks for.
#[must_use]
pub fn kind_fits(answer: &Answer, query: Query) -> bool {
    matches!(
        (answer, query),
        (Answer::Mx(_), Query::Mx)
            | (Answer::Address(_), Query::A | Query::Aaaa)
            | (Answer::Tlsa(_), Query::Tlsa)
            | (Answer::Txt(_), Query::Txt)
    )
}

/// An answer to `query` with no records and `rcode`, of undetermined
/// security.
#[must_use]
pub fn empty_answer(query: Query, rcode: Rcode) -> Answer {
    let security = Security::Indeterminate;
    match query {
        Query::Mx => Answer::Mx(DnsAnswer::empty(rcode, security)),
        Query::A | Query::Aaaa => Answer::Address(DnsAnswer::empty(rcode, security)),
        Query::Tlsa => Answer::Tlsa(DnsAnswer::empty(rcode, security)),
        Query::Txt => Answer::Txt(DnsAnswer::empty(rcode, security)),
    }
}

/// A fetch's response with its body cut one byte past
/// [`MAX_POLICY_BODY`] (so that the engine refuses an oversized body).
#[must_use]
pub fn cut_body(fetch: PolicyFetch) -> PolicyFetch {
    match fetch {
        PolicyFetch::Response {
            status,
            content_type,
            mut body,
        } => {
            body.truncate(MAX_POLICY_BODY + 1);
            PolicyFetch::Response {
                status,
                content_type,
                body,
            }
        }
        other => other,
    }
}

/// The TLS a connection's plan asks for: `None` for a plain plan, else the
/// mode, the configuration and the name to verify (and send as SNI).
/// `pkix`: the configuration of PKIX-verified plans (`None`: the default
/// roots). `Err` when a configuration cannot be built: the connection then
/// fails as a TLS failure, never plaintext instead.
#[allow(clippy::result_unit_err)]
pub fn tls_for_plan(
    plan: &smtp_mx::plan::ConnectionPlan,
    host: &str,
    pkix_config: Option<&Arc<ClientConfig>>,
) -> Result<Option<(Tls, Arc<ClientConfig>, String)>, ()> {
    use smtp_mx::plan::TlsPlan;
    let sni = plan.sni.clone().unwrap_or_else(|| host.to_owned());
    match &plan.tls {
        TlsPlan::Plain => Ok(None),
        TlsPlan::Opportunistic => unverified().map(|t| Some((Tls::Opportunistic, t, sni))),
        TlsPlan::Encrypt => unverified().map(|t| Some((Tls::StartTls, t, sni))),
        TlsPlan::Pkix { names } => {
            let name = names.first().cloned().unwrap_or(sni);
            pkix(pkix_config).map(|t| Some((Tls::StartTls, t, name)))
        }
        TlsPlan::Dane { .. } => dane(&plan.tls).map(|t| Some((Tls::StartTls, t, sni))),
    }
}

/// A configuration that accepts any certificate (opportunistic and
/// `encrypt` TLS: encryption against a passive listener only).
fn unverified() -> Result<Arc<ClientConfig>, ()> {
    crate::tls::dangerous_accept_any_certificate().map_err(|_| ())
}

/// The configuration of PKIX-verified connections.
fn pkix(config: Option<&Arc<ClientConfig>>) -> Result<Arc<ClientConfig>, ()> {
    match config {
        Some(c) => Ok(Arc::clone(c)),
        None => crate::tls::default_config().map_err(|_| ()),
    }
}

/// A configuration verifying the server by the plan's TLSA records inside
/// the handshake.
fn dane(plan: &smtp_mx::plan::TlsPlan) -> Result<Arc<ClientConfig>, ()> {
    let provider = crate::tls::provider().map_err(|_| ())?;
    let verifier = crate::dane::DaneVerifier::from_plan(plan, provider).map_err(|_| ())?;
    verifier.client_config().map_err(|_| ())
}

/// How a failed connect is told to the engine. `connecting`: whether the
/// error came before the session was carried (an I/O error then is a
/// refused or unreachable address). A TLS failure is told with its cause
/// ([`tls_failure_of`]); STARTTLS not offered or refused, which the core
/// reports, as [`TlsFailure::StartTlsNotOffered`] and
/// [`TlsFailure::StartTlsRefused`]; a configuration that cannot be built
/// (no provider, no roots, a name rustls cannot take) as
/// [`TlsFailure::Config`].
#[must_use]
pub fn opening_of(error: &Error, connecting: bool) -> Opening {
    use smtp_sansio::Error as Core;
    match error {
        Error::Connection {
            error, connecting, ..
        } => opening_of(error, *connecting),
        Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => Opening::TimedOut,
        Error::Io(_) if connecting => Opening::Refused,
        Error::Io(_) => Opening::Failed(Core::Transport),
        Error::Tls(e) => Opening::TlsFailed(tls_failure_of(e)),
        Error::TlsUnavailable(_) | Error::InvalidServerName(_) | Error::NoRootCertificates(_) => {
            Opening::TlsFailed(TlsFailure::Config)
        }
        Error::Smtp(Core::Timeout(_)) => Opening::TimedOut,
        Error::Smtp(e) => {
            TlsFailure::of_core(e).map_or_else(|| Opening::Failed(e.clone()), Opening::TlsFailed)
        }
        _ => Opening::Failed(Core::Transport),
    }
}

/// The cause of a failed handshake, from rustls' error: the certificate's
/// dates, its names, its chain (WebPKI's `UnknownIssuer`, `BadSignature`,
/// a revocation), the DANE verifier's
/// [`TlsaMismatch`](crate::dane::TlsaMismatch) (a DANE-TA match whose chain
/// or name failed carries the chain's or the name's own error), another
/// certificate error, or the handshake itself.
#[must_use]
pub fn tls_failure_of(error: &crate::tls::TlsError) -> TlsFailure {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(cert) = error else {
        return TlsFailure::Handshake;
    };
    match cert {
        C::Expired | C::ExpiredContext { .. } => TlsFailure::CertificateExpired,
        C::NotValidYet | C::NotValidYetContext { .. } => TlsFailure::CertificateNotYetValid,
        C::NotValidForName | C::NotValidForNameContext { .. } => TlsFailure::HostMismatch,
        C::UnknownIssuer
        | C::BadSignature
        | C::Revoked
        | C::UnknownRevocationStatus
        | C::ExpiredRevocationList
        | C::ExpiredRevocationListContext { .. } => TlsFailure::NotTrusted,
        _ if crate::dane::is_tlsa_mismatch(error) => TlsFailure::TlsaMismatch,
        _ => TlsFailure::CertificateInvalid,
    }
}

/// The core's error within a facade error (a transport failure as
/// [`smtp_sansio::Error::Transport`]).
#[must_use]
pub fn core_error(error: Error) -> smtp_sansio::Error {
    match error {
        Error::Smtp(e) => e,
        Error::Connection { error, .. } => core_error(*error),
        _ => smtp_sansio::Error::Transport,
    }
}

#[cfg(test)]
mod tests {
    use rustls::CertificateError as C;
    use smtp_mx::TlsFailure as F;
    use smtp_sansio::{Reply, SecurityError};

    use super::*;

    fn cert(e: C) -> F {
        tls_failure_of(&rustls::Error::InvalidCertificate(e))
    }

    #[test]
    fn rustls_errors_are_read_as_causes() {
        let t = rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::ZERO);
        assert_eq!(cert(C::Expired), F::CertificateExpired);
        let expired = C::ExpiredContext {
            time: t,
            not_after: t,
        };
        assert_eq!(cert(expired), F::CertificateExpired);
        assert_eq!(cert(C::NotValidYet), F::CertificateNotYetValid);
        assert_eq!(cert(C::NotValidForName), F::HostMismatch);
        for e in [C::UnknownIssuer, C::BadSignature, C::Revoked] {
            assert_eq!(cert(e), F::NotTrusted);
        }
        for e in [
            C::BadEncoding,
            C::InvalidPurpose,
            C::ApplicationVerificationFailure,
        ] {
            assert_eq!(cert(e), F::CertificateInvalid);
        }
        let mismatch: rustls::Error = crate::dane::TlsaMismatch.into();
        assert_eq!(tls_failure_of(&mismatch), F::TlsaMismatch);
        let other = rustls::OtherError(std::sync::Arc::new(std::io::Error::other("x")));
        assert_eq!(cert(C::Other(other)), F::CertificateInvalid);
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert_eq!(tls_failure_of(&alert), F::Handshake);
    }

    #[test]
    fn facade_errors_are_told_with_their_cause() {
        let server = crate::Server::new("mx.example.com", Some(25));
        let named =
            Error::Tls(rustls::Error::InvalidCertificate(C::UnknownIssuer)).with_server(&server);
        assert_eq!(opening_of(&named, true), Opening::TlsFailed(F::NotTrusted));
        let reply = Reply::new(454, vec!["4.7.0 not now".into()]);
        let refused = Error::Smtp(smtp_sansio::Error::StartTlsRefused(reply.clone()));
        assert_eq!(
            opening_of(&refused, false),
            Opening::TlsFailed(F::StartTlsRefused(reply))
        );
        let stripped = Error::Smtp(SecurityError::StartTlsNotOffered.into());
        assert_eq!(
            opening_of(&stripped, false),
            Opening::TlsFailed(F::StartTlsNotOffered)
        );
        for local in [
            Error::TlsUnavailable("none"),
            Error::NoRootCertificates("none".into()),
            Error::InvalidServerName("-".into()),
        ] {
            assert_eq!(opening_of(&local, true), Opening::TlsFailed(F::Config));
        }
        let greeting = Error::Smtp(smtp_sansio::Error::ConnectRefused(Reply::new(
            554,
            vec!["no".into()],
        )));
        assert!(matches!(
            opening_of(&greeting, false),
            Opening::Failed(smtp_sansio::Error::ConnectRefused(_))
        ));
    }
}
