//! CRAM-MD5 (RFC 2195): `user SP hex(HMAC-MD5(password, challenge))`.
//!
//! The response is not the password, but it lets anyone who records it test
//! billions of password guesses a second offline, so the client treats it as
//! exposing the secret ([`Mechanism::exposes_secret`] keeps its default,
//! `true`): refused without verified TLS unless the peer is local or the
//! caller opted in (see [the module](super)).

use hmac::{Hmac, Mac};
use md5::Md5;

use super::{Credentials, Mechanism, SaslError};

/// The CRAM-MD5 mechanism.
#[derive(Debug, Clone)]
pub struct CramMd5 {
    credentials: Credentials,
    answered: bool,
}

impl CramMd5 {
    /// CRAM-MD5 with these credentials.
    #[must_use]
    pub fn new(credentials: Credentials) -> CramMd5 {
        CramMd5 {
            credentials,
            answered: false,
        }
    }
}

impl Mechanism for CramMd5 {
    fn name(&self) -> &str {
        "CRAM-MD5"
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Ok(None)
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.answered {
            return Err(SaslError("CRAM-MD5 has a single challenge".into()));
        }
        self.answered = true;
        let mut mac = Hmac::<Md5>::new_from_slice(self.credentials.password.expose().as_bytes())
            .map_err(|_| SaslError("HMAC key rejected".into()))?;
        mac.update(challenge);
        let digest = mac.finalize().into_bytes();
        let mut out = self.credentials.user.clone().into_bytes();
        out.push(b' ');
        for b in digest {
            out.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        Ok(out)
    }
}
