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

    fn message(&self) -> Result<Vec<u8>, SaslError> {
        let c = &self.credentials;
        // RFC 4616 section 2: NUL separates the fields and may not occur in them.
        if [self.authzid.as_str(), c.user.as_str(), c.password.expose()]
            .iter()
            .any(|f| f.contains('\0'))
        {
            return Err(SaslError("PLAIN field contains NUL".into()));
        }
        let mut m =
            Vec::with_capacity(self.authzid.len() + c.user.len() + c.password.expose().len() + 2);
        m.extend_from_slice(self.authzid.as_bytes());
        m.push(0);
        m.extend_from_slice(c.user.as_bytes());
        m.push(0);
        m.extend_from_slice(c.password.expose().as_bytes());
        Ok(m)
    }
}

impl Mechanism for Plain {
    fn name(&self) -> &str {
        "PLAIN"
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        let m = self.message()?;
        self.sent = true;
        Ok(Some(m))
    }

    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.sent {
            return Err(SaslError("PLAIN has a single message".into()));
        }
        let m = self.message()?;
        self.sent = true;
        Ok(m)
    }
}
