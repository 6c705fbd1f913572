//! PLAIN (RFC 4616): `authzid NUL authcid NUL password` in one message.

use super::{Credentials, Mechanism, SaslError};

/// The PLAIN mechanism.
#[derive(Debug, Clone)]
pub struct Plain {
    authzid: String,
    credentials: Credentials,
    sent: bool,
}

impl Plain {
    /// PLAIN with no authorisation identity.
    #[must_use]
    pub fn new(credentials: Credentials) -> Plain {
        Plain::with_authzid("", credentials)
    }

    /// PLAIN acting as `authzid` (an empty one means the user itself).
    #[must_use]
    pub fn with_authzid(authzid: impl Into<String>, credentials: Credentials) -> Plain {
        Plain {
            authzid: authzid.into(),
            credentials,
            sent: false,
        }
    }

    fn message(&self) -> Vec<u8> {
        let c = &self.credentials;
        let mut m =
            Vec::with_capacity(self.authzid.len() + c.user.len() + c.password.expose().len() + 2);
        m.extend_from_slice(self.authzid.as_bytes());
        m.push(0);
        m.extend_from_slice(c.user.as_bytes());
        m.push(0);
        m.extend_from_slice(c.password.expose().as_bytes());
        m
    }
}

impl Mechanism for Plain {
    fn name(&self) -> &str {
        "PLAIN"
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        self.sent = true;
        Ok(Some(self.message()))
    }

    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.sent {
            return Err(SaslError("PLAIN has a single message".into()));
        }
        self.sent = true;
        Ok(self.message())
    }
}
